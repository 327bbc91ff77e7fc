"""The model card of a package: what the model predicts, from which data, how well, which gates it
passed and what it is for; as Markdown (the wheel's description, what PyPI-like indexes show)
and as a self-contained HTML page (no script, no remote asset)."""

from __future__ import annotations

import html
from typing import Any

DEFAULT_USE = ("Scoring rows like those of its training table, through the REST server or "
               "load(). It was evaluated only on the test table named below; judge it again "
               "before using it on other populations.")


def _facts(mv: Any, loaded: Any, names: Any, intended_use: str | None) -> dict[str, Any]:
    lineage = mv.lineage or {}
    classes = loaded.classes
    task = "classification" if classes is not None else "regression"
    evaluation = lineage.get("evaluation") or {}
    git = lineage.get("git") or {}
    props = (loaded.schema or {}).get("properties") or {}
    columns = []
    for name, sub in props.items():
        sub = sub if isinstance(sub, dict) else {}
        kind = sub.get("type", "any")
        kind = "/".join(kind) if isinstance(kind, list) else str(kind)
        bounds = []
        for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                          ("exclusiveMaximum", "<")):
            if key in sub:
                bounds.append(f"{sign} {sub[key]}")
        if "enum" in sub:
            bounds.append("one of " + ", ".join(map(str, sub["enum"][:10])))
        columns.append((name, kind, "; ".join(bounds)))
    metrics = [(k, v) for k, v in sorted((mv.metrics or {}).items())
               if "@" not in k and isinstance(v, (int, float))]
    gates = [(g.get("message") or g.get("metric", ""), bool(g.get("passed"))) for g in mv.gates]
    return {
        "title": f"{mv.name} v{mv.version}",
        "estimator": f"{type(loaded.estimator).__module__}.{type(loaded.estimator).__name__}",
        "task": task, "target": mv.target or "(not recorded)",
        "classes": classes, "metrics": metrics, "primary": mv.primary_metric,
        "gates": gates, "status": mv.status, "created_at": mv.created_at,
        "test_table": evaluation.get("path"), "test_sha256": evaluation.get("sha256"),
        "commit": git.get("commit"), "dirty": git.get("dirty"),
        "packages": lineage.get("packages") or {}, "columns": columns,
        "use": intended_use or DEFAULT_USE, "script": names.script, "module": names.module,
        "params": mv.params or {},
    }


def card_markdown(mv: Any, loaded: Any, names: Any, intended_use: str | None = None) -> str:
    f = _facts(mv, loaded, names, intended_use)
    out = [f"# {f['title']}", "",
           f"A `{f['estimator']}` ({f['task']}) predicting **{f['target']}**"
           + (f", one of {', '.join(map(str, f['classes']))}" if f["classes"] else "") + ".", "",
           "## Intended use", "", f["use"], "",
           "## Serving", "", "```bash", f"{f['script']} --port 8080", "```", "",
           f"or `import {f['module']}; model = {f['module']}.load()`.", "",
           "## Metrics", ""]
    if f["test_table"]:
        out += [f"On the test table `{f['test_table']}` (sha256 {str(f['test_sha256'])[:12]}).",
                ""]
    out += ["| metric | value |", "|---|---|"]
    out += [f"| {k}{' (primary)' if k == f['primary'] else ''} | {v:.6g} |"
            for k, v in f["metrics"]]
    out += ["", f"## Gates ({f['status']})", ""]
    out += [f"- {'PASS' if ok else 'FAIL'} {msg}" for msg, ok in f["gates"]] or ["- none"]
    out += ["", "## Input", "", "| column | type | rule |", "|---|---|---|"]
    out += [f"| {n} | {k} | {r} |" for n, k, r in f["columns"]]
    out += ["", "## Lineage", "",
            f"- registered {f['created_at']}",
            f"- commit {f['commit'] or '(unknown)'}" + (" (with uncommitted changes)"
                                                        if f["dirty"] else ""),
            "- " + ", ".join(f"{k} {v}" for k, v in f["packages"].items()), ""]
    return "\n".join(out)


_STYLE = """body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;
color:#1d2330}h1{margin-bottom:.2rem}table{border-collapse:collapse;margin:.5rem 0}
td,th{border-bottom:1px solid #dde2ea;padding:.25rem .8rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.pass{color:#17803d}.fail{color:#b42318}
code{background:#f3f5f8;padding:.1rem .3rem;border-radius:3px}"""


def card_html(mv: Any, loaded: Any, names: Any, intended_use: str | None = None) -> str:
    f = _facts(mv, loaded, names, intended_use)
    e = html.escape
    classes = (", one of " + ", ".join(e(str(c)) for c in f["classes"])) if f["classes"] else ""
    rows = "".join(f"<tr><td>{e(k)}{' <b>(primary)</b>' if k == f['primary'] else ''}</td>"
                   f"<td class=num>{v:.6g}</td></tr>" for k, v in f["metrics"])
    gates = "".join(f"<li class={'pass' if ok else 'fail'}>{'PASS' if ok else 'FAIL'} "
                    f"{e(msg)}</li>" for msg, ok in f["gates"]) or "<li>none</li>"
    cols = "".join(f"<tr><td>{e(n)}</td><td>{e(k)}</td><td>{e(r)}</td></tr>"
                   for n, k, r in f["columns"])
    test = (f"<p>On the test table <code>{e(str(f['test_table']))}</code> (sha256 "
            f"{e(str(f['test_sha256'])[:12])}).</p>") if f["test_table"] else ""
    packages = e(", ".join(f"{k} {v}" for k, v in f["packages"].items()))
    dirty = " (with uncommitted changes)" if f["dirty"] else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(f['title'])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_STYLE}</style></head><body>
<h1>{e(f['title'])}</h1>
<p>A <code>{e(f['estimator'])}</code> ({e(f['task'])}) predicting
<b>{e(str(f['target']))}</b>{classes}.</p>
<h2>Intended use</h2><p>{e(f['use'])}</p>
<h2>Serving</h2><p><code>{e(f['script'])} --port 8080</code>, or
<code>import {e(f['module'])}; model = {e(f['module'])}.load()</code>.</p>
<h2>Metrics</h2>{test}<table><tr><th>metric</th><th>value</th></tr>{rows}</table>
<h2>Gates ({e(f['status'])})</h2><ul>{gates}</ul>
<h2>Input</h2><table><tr><th>column</th><th>type</th><th>rule</th></tr>{cols}</table>
<h2>Lineage</h2><ul><li>registered {e(str(f['created_at']))}</li>
<li>commit {e(str(f['commit'] or '(unknown)'))}{dirty}</li>
<li>{packages}</li></ul>
</body></html>
"""
