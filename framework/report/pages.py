"""The report's pages: the registry, a model's versions, a comparison of versions, a sweep.

Each page is one HTML string built by :class:`~framework.report.vega.Page`: tables in plain
HTML (sortable and filterable where scripts run), charts as Vega-Lite specs. The same functions
make the self-contained file of ``report`` and the pages of ``ui``; a :class:`Links` tells them
how one page points at another (anchors and nothing in a file, URLs in the ``ui``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from framework.report.compare import (VersionData, confusion, curves, deltas, differing,
                                      flatten, lineage_view, read_plot_table, residuals,
                                      version_data)
from framework.report.vega import Page, escape, table
from framework.registry.gates import gate_label

#: Above this many points a chart shows binned counts instead of every point.
MAX_POINTS = 2000
#: Rows of a long table shown per page in a browser.
PAGE_SIZE = 100
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6",
           "#9d755d", "#bab0ac", "#eeca3b"]


@dataclass(frozen=True)
class Links:
    """How pages link to each other: ``base`` None makes no links (a file of one page)."""

    base: str | None = None

    def model(self, name: str) -> str | None:
        return None if self.base is None else f"{self.base}models/{quote(name)}"

    def compare(self, name: str, versions: list[int]) -> str | None:
        if self.base is None:
            return None
        return f"{self.base}models/{quote(name)}/compare?v={','.join(map(str, versions))}"

    def sweep(self, sweep_id: str) -> str | None:
        return None if self.base is None else f"{self.base}sweeps/{quote(sweep_id)}"


def _a(text: Any, href: str | None) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>' if href else escape(text)


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:.{digits}g}"
    return str(x)


def _status(status: str) -> str:
    cls = {"promoted": "ok", "champion": "ok", "rejected": "alarm", "failed": "alarm",
           "ok": "ok"}.get(status, "off")
    return f'<span class="status-{cls}">{escape(status)}</span>'


def _gates(mv: Any) -> str:
    if not mv.gates:
        return ""
    failed = [g.get("metric", "?") for g in mv.gates if not g.get("passed")]
    return (f"{len(mv.gates) - len(failed)}/{len(mv.gates)} passed"
            + (f" (failed: {', '.join(failed)})" if failed else ""))


# -- a model's versions ---------------------------------------------------------------------------

def _metric_names(versions: list[Any], primary: str | None) -> list[str]:
    """The overall metrics (the per-group ones, ``recall@clinic=A``, have their own table)."""
    names = sorted({k for mv in versions for k, v in mv.metrics.items()
                    if isinstance(v, int | float) and not isinstance(v, bool) and "@" not in k})
    if primary in names:
        names.remove(primary)
        names.insert(0, primary)
    return names


def _key_params(versions: list[Any], limit: int = 6) -> list[str]:
    """The params that differ between versions (the ones worth a column)."""
    if len(versions) < 2:
        return []
    flat = [flatten(mv.params or {}) for mv in versions]
    keys = [k for k, _ in differing(flat) if not k.startswith(("registry.", "gates", "monitor."))]
    return keys[:limit]


def versions_section(page: Page, registry: Any, name: str, links: Links) -> None:
    versions = registry.versions(name)
    primary = next((mv.primary_metric for mv in reversed(versions) if mv.primary_metric), None)
    metrics = _metric_names(versions, primary)
    params = _key_params(versions)
    live = [mv for mv in versions if not mv.archived_at]
    archived = [mv for mv in versions if mv.archived_at]
    columns = ["version", "aliases", "status", "gates", *metrics, *params, "created",
               "sweep"]

    def rows(items: list[Any]) -> list[list[Any]]:
        out = []
        for mv in sorted(items, key=lambda m: -m.version):
            flat = flatten(mv.params or {})
            out.append([mv.version, ", ".join(mv.aliases), _status(mv.status), _gates(mv),
                        *(_num(mv.metrics.get(m)) for m in metrics),
                        *(_num(flat.get(k)) for k in params), mv.created_at[:19].replace(
                            "T", " "), (mv.lineage or {}).get("sweep_id") or ""])
        return out

    compare = links.compare(name, [mv.version for mv in sorted(live, key=lambda m: -m.version)
                                   [:3]]) if len(live) > 1 else None
    page.add(f'<h2 id="model-{escape(name)}">{_a(name, links.model(name))}</h2>'
             f'<p class="meta">{len(versions)} versions ({len(archived)} archived); primary '
             f'metric {escape(primary or "-")}'
             + (f" · {_a('compare the latest three', compare)}" if compare else "") + "</p>")
    page.add(table(columns, rows(live), numeric=["version", *metrics], raw=["status"],
                   page=page, page_size=PAGE_SIZE))
    if archived:
        page.add(f"<details><summary>{len(archived)} archived versions</summary>"
                 + table(columns, rows(archived), numeric=["version", *metrics],
                         raw=["status"], page=page, page_size=PAGE_SIZE) + "</details>")
    if primary and live:
        # field names of our own: Vega-Lite reads a dot in a field name as a nested field
        values = [{"version": mv.version, "value": mv.metrics.get(primary),
                   "status": mv.status} for mv in live
                  if isinstance(mv.metrics.get(primary), int | float)]
        if values:
            page.add(page.chart({
                "title": f"{primary} by version", "data": {"values": values},
                "width": "container", "height": 180,
                "mark": {"type": "point", "filled": True, "tooltip": True},
                "encoding": {"x": {"field": "version", "type": "quantitative"},
                             "y": {"field": "value", "type": "quantitative", "title": primary,
                                   "scale": {"zero": False}},
                             "color": {"field": "status", "type": "nominal"}}},
                label=f"{primary} by version"))


def timeline_section(page: Page, registry: Any, name: str) -> None:
    moves = registry.history(name)
    if not moves:
        return
    values = [{"time": m.time, "alias": m.alias, "version": m.to_version,
               "from": m.from_version, "actor": m.actor, "reason": m.reason} for m in moves]
    page.add("<h3>Alias history</h3>" + page.chart({
        "data": {"values": values}, "width": "container", "height": 60 + 30 * len(
            {m.alias for m in moves}),
        "layer": [
            {"mark": {"type": "line", "interpolate": "step-after", "opacity": 0.4},
             "encoding": {"x": {"field": "time", "type": "temporal"},
                          "y": {"field": "alias", "type": "nominal"},
                          "detail": {"field": "alias"}}},
            {"mark": {"type": "point", "filled": True, "size": 80, "tooltip": True},
             "encoding": {"x": {"field": "time", "type": "temporal", "title": None},
                          "y": {"field": "alias", "type": "nominal", "title": None},
                          "color": {"field": "version", "type": "ordinal"},
                          "tooltip": [{"field": k} for k in ("time", "alias", "version",
                                                              "from", "actor", "reason")]}},
            {"mark": {"type": "text", "dy": -12},
             "encoding": {"x": {"field": "time", "type": "temporal"},
                          "y": {"field": "alias", "type": "nominal"},
                          "text": {"field": "version"}}}]}, label="alias timeline")
        + table(["time", "alias", "from", "to", "by", "why"],
                [[m.time[:19].replace("T", " "), m.alias, m.from_version or "",
                  m.to_version or "", m.actor, m.reason] for m in reversed(moves)],
                page=page, page_size=20))


def monitor_section(page: Page, registry: Any, name: str) -> None:
    runs = registry.store.monitor_runs(name)
    if not runs:
        return
    values = []
    for r in runs:
        s = r.summary
        drift = s.get("data_drift") or {}
        columns = drift.get("columns") or 0
        values.append({"time": r.created_at, "version": r.version, "series": "drifted share",
                       "value": len(drift.get("drifted") or []) / columns if columns else None})
        for metric, v in ((s.get("performance") or {}).get("metrics") or {}).items():
            values.append({"time": r.created_at, "version": r.version,
                           "series": f"{metric} (realized)", "value": v})
        for metric, e in ((s.get("estimated_performance") or {}).get("estimates") or {}).items():
            values.append({"time": r.created_at, "version": r.version,
                           "series": f"{metric} (estimated)", "value": e.get("value")})
    values = [v for v in values if isinstance(v["value"], int | float)]
    page.add("<h3>Monitoring</h3>" + page.chart({
        "data": {"values": values}, "width": "container", "height": 200,
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {"x": {"field": "time", "type": "temporal", "title": None},
                     "y": {"field": "value", "type": "quantitative"},
                     "color": {"field": "series", "type": "nominal"}}}, label="monitor runs")
        + table(["run", "time", "version", "rows", "verdict", "retrained"],
                [[r.id, r.created_at[:19].replace("T", " "), f"v{r.version}", r.rows,
                  "ALARM" if r.alarm else "ok",
                  f"v{r.retrained_version}" if r.retrained_version else ""]
                 for r in reversed(runs)], numeric=["run", "rows"], page=page, page_size=20))


def model_page(registry: Any, name: str, links: Links, page: Page | None = None) -> Page:
    page = page or Page(f"{name}: versions")
    page.add(f"<h1>{escape(name)}</h1>")
    versions_section(page, registry, name, links)
    timeline_section(page, registry, name)
    monitor_section(page, registry, name)
    return page


# -- comparing versions ---------------------------------------------------------------------------

def _delta_text(d: Any) -> str:
    if d.delta is None:
        return ""
    ci = f" [{d.low:+.4f}, {d.high:+.4f}]" if d.low is not None else ""
    return f"{d.delta:+.4f}{ci}"


def _confusion_spec(matrix: dict[str, Any], title: str, normalised: bool) -> dict[str, Any]:
    values = []
    for i, actual in enumerate(matrix["labels"]):
        total = sum(matrix["counts"][i]) or 1
        for j, predicted in enumerate(matrix["labels"]):
            n = matrix["counts"][i][j]
            values.append({"actual": actual, "predicted": predicted, "count": n,
                           "share": round(n / total, 4)})
    field = "share" if normalised else "count"
    return {"title": title, "data": {"values": values}, "width": 220, "height": 220,
            "encoding": {"x": {"field": "predicted", "type": "nominal"},
                         "y": {"field": "actual", "type": "nominal"}},
            "layer": [{"mark": "rect", "encoding": {"color": {
                "field": field, "type": "quantitative", "legend": None,
                "scale": {"scheme": "blues"}}}},
                {"mark": {"type": "text"}, "encoding": {"text": {
                    "field": field, "type": "quantitative",
                    "format": ".2f" if normalised else "d"}}}]}


def _field(name: str) -> str:
    """A column name as a Vega-Lite field (a dot or bracket would mean a nested field)."""
    return name.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[").replace(
        "]", "\\]")


def _dvc_plot_spec(entry: dict[str, Any], rows: list[dict[str, Any]],
                   title: str) -> dict[str, Any] | None:
    """A DVC plot (its ``template``, ``x`` and ``y``) as the Vega-Lite chart ``dvc plots``
    would draw."""
    if not rows:
        return None
    template = entry.get("template") or "linear"
    x, y = entry.get("x"), entry.get("y")
    keys = list(rows[0])
    x = x or ("step" if "step" in keys else keys[0])
    y = y or (keys[-1] if keys[-1] != x else keys[0])
    if x not in keys or y not in keys:
        return None
    x_title = entry.get("x_label") or x
    y_title = entry.get("y_label") or y
    x, y = _field(x), _field(y)
    base = {"title": title, "data": {"values": rows[:MAX_POINTS * 5]}, "width": "container",
            "height": 220}
    if template in ("confusion", "confusion_normalized"):
        norm = template == "confusion_normalized"
        layer_color = {"field": "share" if norm else "count", "type": "quantitative",
                       "legend": None, "scale": {"scheme": "blues"}}
        return {**base, "width": 220, "transform": [
            {"aggregate": [{"op": "count", "as": "count"}], "groupby": [x, y]},
            {"joinaggregate": [{"op": "sum", "field": "count", "as": "total"}],
             "groupby": [x]},
            {"calculate": "datum.count / datum.total", "as": "share"}],
            "encoding": {"x": {"field": y, "type": "nominal", "title": y_title},
                         "y": {"field": x, "type": "nominal", "title": x_title}},
            "layer": [{"mark": "rect", "encoding": {"color": layer_color}},
                      {"mark": "text", "encoding": {"text": {
                          "field": "share" if norm else "count", "type": "quantitative",
                          "format": ".2f" if norm else "d"}}}]}
    enc = {"x": {"field": x, "type": "quantitative", "title": x_title},
           "y": {"field": y, "type": "quantitative", "title": y_title}}
    if template == "scatter":
        return {**base, "mark": {"type": "point", "tooltip": True}, "encoding": enc}
    if template == "smooth":
        return {**base, "layer": [
            {"mark": {"type": "line", "opacity": 0.3}, "encoding": enc},
            {"mark": "line", "transform": [{"loess": y, "on": x, "bandwidth": 0.3}],
             "encoding": enc}]}
    if template in ("bar_horizontal", "bar_horizontal_sorted"):
        return {**base, "mark": "bar", "encoding": {
            "x": enc["x"], "y": {"field": y, "type": "nominal", "title": y_title,
                                 **({"sort": "-x"} if template.endswith("sorted") else {})}}}
    return {**base, "mark": {"type": "line", "point": len(rows) <= 50, "tooltip": True},
            "encoding": enc}


def compare_page(registry: Any, name: str, numbers: list[int], links: Links,
                 page: Page | None = None) -> Page:
    chosen = [registry.get(name, v) for v in numbers]
    data: list[VersionData] = [version_data(registry, mv) for mv in chosen]
    page = page or Page(f"{name}: v{', v'.join(map(str, numbers))}")
    labels = [f"v{mv.version}" for mv in chosen]
    page.add(f"<h1>{_a(name, links.model(name))}: {escape(' · '.join(labels))}</h1>"
             '<p class="meta">' + " · ".join(
                 f"{escape(label)} {escape(mv.status)}"
                 + (f" ({escape(', '.join(mv.aliases))})" if mv.aliases else "")
                 + f", {escape(mv.created_at[:19].replace('T', ' '))}"
                 for label, mv in zip(labels, chosen)) + "</p>")
    for label, d in zip(labels, data):
        for what in d.missing:
            page.add(f'<p class="missing">{escape(label)}: no {escape(what)}; shown with what '
                     "it has.</p>")

    # metrics, and deltas against the first version with bootstrap intervals
    metrics = _metric_names(chosen, chosen[0].primary_metric)
    base = data[0].predictions
    delta_of: dict[tuple[int, str], Any] = {}
    for i, d in enumerate(data[1:], start=1):
        if base is not None and d.predictions is not None:
            for dl in deltas(base, d.predictions):
                delta_of[(i, dl.metric)] = dl
    rows = []
    for m in metrics:
        row = [m, *(_num(mv.metrics.get(m)) for mv in chosen)]
        for i in range(1, len(chosen)):
            dl = delta_of.get((i, m))
            row.append(_delta_text(dl) if dl else "")
        rows.append(row)
    delta_columns = [f"{labels[i]} − {labels[0]} (95% CI)" for i in range(1, len(chosen))]
    paired = {dl.paired for dl in delta_of.values()}
    page.add("<h2>Metrics</h2>" + table(["metric", *labels, *delta_columns], rows,
                                        numeric=labels) +
             ('<p class="muted">Intervals: 1,000 bootstrap resamples of the stored per-row test '
              "predictions, " + ("paired (the same test rows)" if paired == {True} else
                                 "resampled apart where the test sets differ")
              + "; the metric tables hold the registered values.</p>" if delta_of else ""))

    grouped = sorted({k for mv in chosen for k in mv.metrics if "@" in k},
                     key=lambda k: (k.partition("@")[2], k.startswith("rows@"), k))
    if grouped:
        page.add("<h2>Metrics by group</h2>" + table(
            ["metric", *labels], [[k, *(_num(mv.metrics.get(k)) for mv in chosen)]
                                  for k in grouped], numeric=labels) +
                 '<p class="muted">Written by the evaluating stage for each group of a grouping '
                 "column (<code>metric@column=group</code>); the fairness gates judge them.</p>")

    # params and lineage: only what differs
    diff = differing([flatten(mv.params or {}) for mv in chosen])
    page.add("<h2>Params that differ</h2>" + (table(
        ["param", *labels], [[k, *(_num(v) for v in vs)] for k, vs in diff])
        if diff else "<p>The same params.</p>"))
    gate_rows = []
    gate_names = list(dict.fromkeys(gate_label(g) for mv in chosen for g in mv.gates))
    for gname in gate_names:
        cells = []
        for mv in chosen:
            g = next((g for g in mv.gates if gate_label(g) == gname), None)
            cells.append("" if g is None else
                         f"{'pass' if g.get('passed') else 'FAIL'}: {g.get('message', '')}")
        gate_rows.append([gname, *cells])
    if gate_rows:
        page.add("<h2>Gates</h2>" + table(["gate", *labels], gate_rows))

    # curves overlaid
    curve_sets = [(label, curves(d.predictions)) for label, d in zip(labels, data)
                  if d.predictions is not None]
    curve_sets = [(label, c) for label, c in curve_sets if c is not None]
    if curve_sets:
        charts = []
        for kind, x_title, y_title in (("roc", "false positive rate", "true positive rate"),
                                       ("pr", "recall", "precision")):
            values = [{"version": f"{label} (AUC {c[kind]['auc']:.3f})", "x": x, "y": y,
                       "order": i}
                      for label, c in curve_sets for i, (x, y) in
                      enumerate(zip(c[kind]["x"], c[kind]["y"]))]
            charts.append(page.chart({
                "title": "ROC curve" if kind == "roc" else "Precision-recall curve",
                "data": {"values": values}, "width": "container", "height": 260,
                "mark": {"type": "line", "interpolate": "step-after" if kind == "pr"
                         else "linear"},
                "encoding": {"x": {"field": "x", "type": "quantitative", "title": x_title},
                             "y": {"field": "y", "type": "quantitative", "title": y_title},
                             "color": {"field": "version", "type": "nominal",
                                       "scale": {"range": PALETTE}},
                             "order": {"field": "order"}}}, label=f"{kind} curves"))
        page.add("<h2>Curves (test set)</h2>" + '<div class="side">' + "".join(
            f'<div class="card">{c}</div>' for c in charts) + "</div>")

    # confusion matrices side by side
    mats = [(label, confusion(d.predictions)) for label, d in zip(labels, data)
            if d.predictions is not None]
    mats = [(label, m) for label, m in mats if m is not None]
    if mats:
        cards = []
        for label, m in mats:
            cards.append('<div class="card">'
                         + page.chart(_confusion_spec(m, f"{label}: counts", False),
                                      label=f"{label} confusion counts")
                         + page.chart(_confusion_spec(m, f"{label}: share of each actual "
                                                         "class", True),
                                      label=f"{label} confusion normalised") + "</div>")
        page.add("<h2>Confusion matrices (test set)</h2>"
                 + '<div class="side">' + "".join(cards) + "</div>")

    # residuals for regressors
    res = [(label, residuals(d.predictions)) for label, d in zip(labels, data)
           if d.predictions is not None]
    res = [(label, r) for label, r in res if r is not None]
    if res:
        cards = []
        for label, r in res:
            values = [{"predicted": p, "residual": q} for p, q in zip(r["predicted"],
                                                                       r["residual"])]
            cards.append('<div class="card">' + page.chart({
                "title": f"{label}: residuals", "data": {"values": values},
                "width": "container", "height": 220,
                "layer": [{"mark": {"type": "point", "opacity": 0.5},
                           "encoding": {"x": {"field": "predicted", "type": "quantitative",
                                              "scale": {"zero": False}},
                                        "y": {"field": "residual", "type": "quantitative",
                                              "title": "actual − predicted"}}},
                          {"mark": {"type": "rule", "color": "#888"},
                           "encoding": {"y": {"datum": 0}}}]},
                label=f"{label} residuals") + "</div>")
        page.add("<h2>Residuals (test set)</h2>" + '<div class="side">' + "".join(cards)
                 + "</div>")

    # the pipeline's own plots, per version
    plot_cards = []
    for label, d in zip(labels, data):
        for entry in d.plots:
            title = f"{label}: {entry.get('title') or entry.get('path')}"
            if entry.get("missing"):
                plot_cards.append(f'<div class="card"><h3>{escape(title)}</h3><p class="missing">'
                                  f"{escape(entry['missing'])}</p></div>")
                continue
            spec = _dvc_plot_spec(entry, read_plot_table(entry) or [], title)
            if spec is None:
                plot_cards.append(f'<div class="card"><h3>{escape(title)}</h3><p class='
                                  '"missing">cannot draw it (no rows, or no column '
                                  f"{escape(entry.get('x'))}/{escape(entry.get('y'))})</p></div>")
                continue
            plot_cards.append(f'<div class="card">{page.chart(spec, label=title)}</div>')
    if plot_cards:
        for label, d in zip(labels, data):
            if not d.plots and not d.mv.removed_at:
                plot_cards.append(f'<div class="card"><h3>{escape(label)}</h3><p class="missing">'
                                  "no plots stored (registered before plots were kept with "
                                  "their version)</p></div>")
        page.add("<h2>The pipeline's plots</h2>" + '<div class="side">' + "".join(plot_cards)
                 + "</div>")

    lineage = differing([lineage_view(mv) for mv in chosen])
    page.add("<h2>Lineage that differs</h2>" + (table(
        ["what", *labels], [[k, *(_num(v) for v in vs)] for k, vs in lineage])
        if lineage else "<p>The same data, code and packages.</p>"))
    return page


# -- sweeps ---------------------------------------------------------------------------------------

def sweep_page(store: Any, links: Links, registry_name: str | None = None,
               page: Page | None = None) -> Page:
    from framework.sweep.store import winner

    meta = store.meta()
    results = store.results()
    metric = meta.get("primary_metric")
    direction = meta.get("direction") or "maximize"
    best = winner(results, metric, direction)
    page = page or Page(f"sweep {store.sweep_id}")
    ok = [r for r in results if r.status == "ok"]
    failed = [r for r in results if r.status != "ok"]
    page.add(f'<h1 id="sweep">sweep {escape(store.sweep_id)}</h1><p class="meta">'
             f"{len(results)} trials ({len(failed)} failed); primary metric "
             f"{escape(metric or '-')} ({escape(direction)})"
             + (f"; winner: trial {best.index} ({escape(' '.join(best.overrides))}, "
                f"{escape(metric)} {_num(best.value(metric))})" if best else "") + "</p>")
    swept = sorted({o.split("=", 1)[0].lstrip("+~") for r in results for o in r.overrides})
    metric_names = sorted({k for r in ok for k, v in r.metrics.items()
                           if isinstance(v, int | float) and "@" not in k})
    if metric in metric_names:
        metric_names.remove(metric)
        metric_names.insert(0, metric)

    def value_of(r: Any, key: str) -> str:
        for o in r.overrides:
            k, _, v = o.partition("=")
            if k.lstrip("+~") == key:
                return v
        return ""

    rows = []
    classes = []
    for r in sorted(results, key=lambda t: t.index):
        rows.append([r.index, "winner" if best is not None and r.index == best.index else
                     r.status, *(value_of(r, k) for k in swept),
                     *(_num(r.metrics.get(m)) for m in metric_names),
                     "" if r.version is None else _a(f"v{r.version}", links.model(registry_name)
                                                     if registry_name else None),
                     f"{r.duration:.1f} s", (r.error or "")[:200]])
        classes.append("winner" if best is not None and r.index == best.index else "")
    page.add("<h2>Trials</h2>" + table(
        ["trial", "status", *swept, *metric_names, "version", "time", "error"], rows,
        numeric=["trial", *metric_names], raw=["version"], page=page, page_size=PAGE_SIZE,
        row_classes=classes))
    if metric and ok:
        charts = []
        for key in swept:
            # "param" and "metric", not their names: a dot in a field name is a nested field
            values = [{"param": value_of(r, key), "metric": r.value(metric),
                       "trial": r.index, "winner": best is not None and r.index == best.index}
                      for r in ok if r.value(metric) is not None]
            numeric = all(_is_number(v["param"]) for v in values)
            for v in values:
                if numeric:
                    v["param"] = float(v["param"])
            if len(values) > MAX_POINTS:  # aggregated: counts in bins
                spec = {"title": f"{metric} by {key} ({len(values)} trials, binned)",
                        "data": {"values": values}, "width": "container", "height": 220,
                        "mark": "rect", "encoding": {
                            "x": {"field": "param", "title": key,
                                  "type": "quantitative" if numeric else "nominal",
                                  **({"bin": {"maxbins": 40}} if numeric else {})},
                            "y": {"field": "metric", "title": metric, "type": "quantitative",
                                  "bin": {"maxbins": 30}},
                            "color": {"aggregate": "count", "type": "quantitative",
                                      "title": "trials"}}}
            else:
                spec = {"title": f"{metric} by {key}", "data": {"values": values},
                        "width": "container", "height": 220,
                        "mark": {"type": "point", "filled": True, "tooltip": True},
                        "encoding": {
                            "x": {"field": "param", "title": key,
                                  "type": "quantitative" if numeric else "nominal",
                                  **({"scale": {"type": "log"}} if numeric and _log_scale(
                                      [v["param"] for v in values]) else {})},
                            "y": {"field": "metric", "title": metric, "type": "quantitative",
                                  "scale": {"zero": False}},
                            "color": {"field": "winner", "type": "nominal",
                                      "scale": {"domain": [False, True],
                                                "range": ["#4c78a8", "#e45756"]}},
                            "size": {"condition": {"test": "datum.winner", "value": 120},
                                     "value": 40}}}
            charts.append(f'<div class="card">{page.chart(spec, label=f"{metric} by {key}")}'
                          "</div>")
        if charts:
            page.add("<h2>Each swept parameter against the primary metric</h2>"
                     '<div class="side">' + "".join(charts) + "</div>")
    if failed:
        page.add(f"<h2>Failed trials ({len(failed)})</h2>" + table(
            ["trial", *swept, "error"],
            [[r.index, *(value_of(r, k) for k in swept), r.error or ""] for r in failed],
            numeric=["trial"], page=page, page_size=PAGE_SIZE))
    return page


def _is_number(text: Any) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def _log_scale(values: list[float]) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and len(values) > 1 and \
        max(positive) / min(positive) >= 100


# -- the registry ---------------------------------------------------------------------------------

def index_page(registry: Any, sweep: Any, links: Links, page: Page | None = None) -> Page:
    """Every model's versions, history and monitoring, and the latest sweep."""
    page = page or Page("registry report")
    names = registry.model_names()
    page.add("<h1>Registry</h1><p class=\"meta\">" + (", ".join(
        _a(n, links.model(n) or f"#model-{n}") for n in names) or "no models yet")
        + (f" · latest sweep: {_a(sweep.sweep_id, links.sweep(sweep.sweep_id) or '#sweep')}"
           if sweep is not None else "") + "</p>")
    for name in names:
        versions_section(page, registry, name, links)
        timeline_section(page, registry, name)
        monitor_section(page, registry, name)
    if sweep is not None:
        sweep_page(sweep, links, registry_name=None, page=page)
    return page
