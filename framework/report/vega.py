"""Self-contained HTML pages with Vega-Lite charts: no CDN, no request of any kind.

Charts are Vega-Lite specs (the grammar ``dvc plots`` uses), drawn in the browser by Vega, Vega-Lite
and vega-embed, whose JavaScript is inlined into the page. The bundle comes from ``vl-convert``
(the Vega project's own packaging of those libraries); building it takes a few seconds, so it is
cached per ``vl-convert`` version in the user's cache folder. Every table of a page is plain HTML,
so a page stays readable where scripts are blocked; each chart says so in a ``<noscript>``.

Untrusted text (column names, values, messages) is escaped for HTML, and the specs embedded in
``<script type="application/json">`` blocks have every ``<`` escaped, so no value can close the
block or open a tag.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"

STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0;
        --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1180px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: var(--muted); margin: 0 0 16px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; }
.verdict.alarm, .status-alarm, .status-drift { color: #fff; background: var(--bad); }
.verdict.ok, .status-ok { color: #fff; background: var(--ok); }
.status-not-enough-data, .status-off { color: var(--ink); background: var(--bg); }
td span[class^="status-"] { padding: 1px 8px; border-radius: 10px; font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
         vertical-align: top; overflow-wrap: anywhere; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap;
                 overflow-wrap: normal; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; }
.card h3 { font-size: 13px; margin: 0 0 2px; } .card p { margin: 0; color: var(--muted);
  font-size: 12px; }
.card.drift { border-color: var(--bad); }
.chart, .chart.vega-embed { display: block; width: 100%; min-height: 40px; }
noscript p { color: var(--muted); font-size: 12px; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
th[data-sort] { cursor: pointer; user-select: none; } th[data-sort]:after { content: " ↕";
  color: var(--muted); font-weight: 400; }
.tools { display: flex; gap: 12px; align-items: center; margin: 6px 0; }
.tools input[type=search] { padding: 4px 8px; border: 1px solid var(--line); border-radius: 6px;
  width: 260px; }
.pager button { margin: 0 2px; } .winner td { background: #dafbe1; }
.missing { color: var(--warn); } .muted { color: var(--muted); }
.side { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; }
details > summary { cursor: pointer; color: var(--muted); margin: 8px 0; }
"""

#: Sorting, filtering and paging of ``<table data-table>`` (plain DOM, no library): a click on a
#: header sorts (numbers as numbers, by ``data-v`` when a cell has one), the search box above a
#: table hides the rows that do not contain its text, ``data-page`` pages long tables.
TABLE_JS = """(function(){
function val(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent.trim();
 var n=parseFloat(v);return (v!==''&&!isNaN(n)&&isFinite(v))?n:v.toLowerCase();}
document.querySelectorAll('table[data-table]').forEach(function(t){
 var body=t.tBodies[0];if(!body)return;var rows=Array.prototype.slice.call(body.rows);
 var size=parseInt(t.getAttribute('data-page')||'0',10);var page=0;var shown=rows;
 var tools=document.createElement('div');tools.className='tools';
 var box=document.createElement('input');box.type='search';box.placeholder='filter rows';
 tools.appendChild(box);var count=document.createElement('span');count.className='muted';
 tools.appendChild(count);var pager=document.createElement('span');pager.className='pager';
 tools.appendChild(pager);t.parentNode.insertBefore(tools,t);
 function draw(){rows.forEach(function(r){r.style.display='none';});
  var from=size?page*size:0;var to=size?from+size:shown.length;
  shown.slice(from,to).forEach(function(r){r.style.display='';});
  count.textContent=shown.length+' of '+rows.length+' rows';pager.innerHTML='';
  if(size&&shown.length>size){var pages=Math.ceil(shown.length/size);
   [['«',0],['‹',Math.max(0,page-1)],['›',Math.min(pages-1,page+1)],['»',pages-1]].forEach(
    function(b){var e=document.createElement('button');e.textContent=b[0];
     e.onclick=function(){page=b[1];draw();};pager.appendChild(e);});
   var at=document.createElement('span');at.textContent=' page '+(page+1)+' of '+pages;
   pager.appendChild(at);}}
 box.addEventListener('input',function(){var q=box.value.toLowerCase();page=0;
  shown=rows.filter(function(r){return r.textContent.toLowerCase().indexOf(q)>=0;});draw();});
 Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){
  th.setAttribute('data-sort','');var asc=true;th.addEventListener('click',function(){
   var k=rows.map(function(r){return [val(r.cells[i]),r];});
   k.sort(function(a,b){if(typeof a[0]!==typeof b[0])return typeof a[0]==='number'?-1:1;
    return (a[0]<b[0]?-1:a[0]>b[0]?1:0)*(asc?1:-1);});asc=!asc;
   rows=k.map(function(x){return x[1];});rows.forEach(function(r){body.appendChild(r);});
   var q=box.value.toLowerCase();shown=rows.filter(function(r){
    return r.textContent.toLowerCase().indexOf(q)>=0;});page=0;draw();});});
 draw();});})();"""


def escape(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _cache_path() -> Path:
    import importlib.metadata

    from framework.constraints import cache_dir

    try:
        version = importlib.metadata.version("vl-convert-python")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        version = "unknown"
    return cache_dir() / f"vega-bundle-vl-convert-{version}.js"


def bundle() -> str:
    """The inlined JavaScript of Vega, Vega-Lite and vega-embed (cached on disk)."""
    path = _cache_path()
    try:
        text = path.read_text(encoding="utf-8")
        if text:
            return text
    except OSError:
        pass
    import vl_convert

    text = vl_convert.javascript_bundle()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vega-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:  # a read-only cache: build it again next time
        pass
    return text


def script_json(data: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` block."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


class Page:
    """A page of sections (HTML strings) and charts (Vega-Lite specs), rendered to one file."""

    def __init__(self, title: str, *, bundle_src: str | None = None) -> None:
        self.title = title
        self.parts: list[str] = []
        self.charts = 0
        self.tables = False
        #: where the page loads the charting bundle from (``ui``: one cached URL of its own
        #: server); None inlines it, so the file works alone
        self.bundle_src = bundle_src

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def chart(self, spec: dict[str, Any], *, label: str = "") -> str:
        """The HTML of one chart (to place inside a section)."""
        self.charts += 1
        spec = {"$schema": SCHEMA, **spec}
        return (f'<div class="chart" data-chart="{self.charts}" data-label="{escape(label)}" '
                f'aria-label="{escape(label)}">'
                f'</div><script type="application/json" id="chart-{self.charts}">'
                f"{script_json(spec)}</script>"
                "<noscript><p>This chart needs JavaScript; the tables hold the same "
                "numbers.</p></noscript>")

    def render(self) -> str:
        runner = ("(function(){var els=document.querySelectorAll('[data-chart]');"
                  "els.forEach(function(el){var s=document.getElementById('chart-'+"
                  "el.getAttribute('data-chart'));if(!s)return;var spec=JSON.parse(s.textContent);"
                  "vegaEmbed(el,spec,{actions:false,renderer:'svg'}).then(function(){"
                  "el.setAttribute('data-drawn','1');}).catch(function(e){el.textContent="
                  "'chart error: '+e;el.setAttribute('data-drawn','error');});});})();")
        scripts = ""
        if self.charts:
            library = (f'<script src="{escape(self.bundle_src)}"></script>' if self.bundle_src
                       else f"<script>{bundle()}</script>")
            scripts = f"{library}<script>{runner}</script>"
        if self.tables:
            scripts += f"<script>{TABLE_JS}</script>"
        own = " 'self'" if self.bundle_src else ""
        return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                f"script-src{own} 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
                "img-src data:\">"
                f"<title>{escape(self.title)}</title><style>{STYLE}</style></head><body>"
                + "".join(self.parts) + scripts + "</body></html>\n")


def write(path: str | os.PathLike[str], text: str) -> None:
    from framework.io import write_text

    write_text(path, text)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
          numeric: Sequence[str] = (), raw: Sequence[str] = (), page: Page | None = None,
          page_size: int = 0, row_classes: Sequence[str] | None = None) -> str:
    """An HTML table; cells are escaped except in the ``raw`` columns (HTML made here). With
    ``page``, the table is sortable and filterable (and paged by ``page_size``) in a browser
    that runs scripts, and plain where scripts are blocked."""
    head = "".join(f'<th class="num">{escape(c)}</th>' if c in numeric else f"<th>{escape(c)}</th>"
                   for c in columns)
    body = []
    for row in rows:
        cells = []
        for c, v in zip(columns, row):
            text = v if c in raw else escape(v)
            cells.append(f'<td class="num">{text}</td>' if c in numeric else f"<td>{text}</td>")
        cls = row_classes[len(body)] if row_classes else ""
        body.append((f'<tr class="{escape(cls)}">' if cls else "<tr>") + "".join(cells)
                    + "</tr>")
    attrs = ""
    if page is not None:
        page.tables = True
        attrs = " data-table" + (f' data-page="{int(page_size)}"' if page_size else "")
    return (f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
            "</table>")
