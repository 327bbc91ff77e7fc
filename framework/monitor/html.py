"""The monitor's HTML report: one self-contained file (works offline, readable without scripts).

Sections: the verdict and window; every check with its message; data drift as a table and, per
column, the reference distribution (the training table's profile) against the current one on the
same bins, drifted columns first; prediction drift likewise; realized and estimated performance;
fairness per group.
"""

from __future__ import annotations

import math
from typing import Any

from framework.monitor.checks import DRIFT, Finding, Report
from framework.report.vega import Page, escape, table

REF_COLOR, CUR_COLOR = "#8c959f", "#0969da"


def _num(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _status(status: str) -> str:
    return f'<span class="status-{escape(status.replace(" ", "-"))}">{escape(status)}</span>'


def distribution_spec(picture: dict[str, Any], title: str) -> dict[str, Any] | None:
    """The Vega-Lite spec of a reference-vs-current picture of one column."""
    if not picture:
        return None
    color = {"field": "data", "type": "nominal",
             "scale": {"domain": ["reference", "current"], "range": [REF_COLOR, CUR_COLOR]},
             "legend": {"orient": "top", "title": None}}
    base = {"title": {"text": title, "fontSize": 12}, "width": "container", "height": 120,
            "config": {"view": {"stroke": None}, "axis": {"labelFontSize": 10,
                                                          "titleFontSize": 10}}}
    if picture["kind"] == "histogram":
        edges = picture["edges"]
        values = []
        for which in ("reference", "current"):
            for lo, hi, share in zip(edges[:-1], edges[1:], picture[which]):
                values.append({"lo": lo, "hi": hi, "share": share, "data": which})
        return {**base, "data": {"values": values},
                "mark": {"type": "bar", "opacity": 0.55, "binSpacing": 0},
                "encoding": {"x": {"field": "lo", "type": "quantitative", "title": None,
                                   "scale": {"zero": False}},
                             "x2": {"field": "hi"},
                             "y": {"field": "share", "type": "quantitative", "title": "share",
                                   "stack": None, "axis": {"format": "%"}},
                             "y2": {"datum": 0},
                             "color": color,
                             "tooltip": [{"field": "data"}, {"field": "lo", "format": ".4g"},
                                         {"field": "hi", "format": ".4g"},
                                         {"field": "share", "format": ".1%"}]}}
    values = [{"value": label, "share": share, "data": which}
              for which in ("reference", "current")
              for label, share in zip(picture["labels"], picture[which])]
    return {**base, "data": {"values": values}, "mark": {"type": "bar"},
            "encoding": {"x": {"field": "value", "type": "nominal", "title": None,
                               "sort": None, "axis": {"labelAngle": -30}},
                         "xOffset": {"field": "data", "sort": ["reference", "current"]},
                         "y": {"field": "share", "type": "quantitative", "title": "share",
                               "axis": {"format": "%"}},
                         "color": color,
                         "tooltip": [{"field": "data"}, {"field": "value"},
                                     {"field": "share", "format": ".1%"}]}}


def _card(page: Page, f: Finding) -> str:
    spec = distribution_spec(f.numbers.get("picture") or {}, f.subject)
    chart = page.chart(spec, label=f"{f.subject}: reference and current") if spec else ""
    stat = _num(f.statistic)
    return (f'<div class="card{" drift" if f.status == DRIFT else ""}">'
            f"<h3>{escape(f.subject)} {_status(f.status)}</h3>"
            f"<p>{escape(f.test)} {escape(stat)} (threshold {escape(_num(f.threshold))})"
            f"{'; ' + escape(f.detail) if f.detail else ''}</p>{chart}</div>")


def render(report: Report, *, title: str | None = None) -> str:
    page = Page(title or f"monitor: {report.model} v{report.version}")
    w = report.window
    verdict = ("alarm: " + ", ".join(report.alarms)) if report.alarm else "no alarm"
    page.add(f"<h1>{escape(report.model)} v{report.version} "
             f'<span class="verdict {"alarm" if report.alarm else "ok"}">{escape(verdict)}'
             "</span></h1>"
             f'<p class="meta">{escape(w.get("description"))}: {w.get("rows", 0)} rows, '
             f'{w.get("requests", 0)} {"requests" if w.get("source") != "batch" else "rows sent"}, '
             f'{w.get("labelled", 0)} labelled'
             + (f" · {escape(w.get('start'))} – {escape(w.get('end'))}" if w.get("start") else "")
             + "</p>")
    page.add("<h2>Checks</h2>" + table(
        ["check", "verdict", "what was found"],
        [[c.name, _status(c.status), c.message] for c in report.checks], raw=["verdict"]))

    drift = report.check("data_drift")
    if drift is not None and drift.findings:
        page.add("<h2>Data drift</h2>" + table(
            ["column", "kind", "test", "statistic", "threshold", "p (adjusted)", "verdict",
             "detail"],
            [[f.subject, f.numbers.get("kind", ""), f.test, _num(f.statistic),
              _num(f.threshold), _num(f.numbers.get("p_value_adjusted"), 2),
              _status(f.status), f.detail] for f in drift.findings],
            numeric=["statistic", "threshold", "p (adjusted)"], raw=["verdict"]))
        page.add('<div class="grid">' + "".join(_card(page, f) for f in drift.findings)
                 + "</div>")
    pred = report.check("prediction_drift")
    if pred is not None and pred.findings:
        page.add("<h2>Prediction drift</h2>" + '<div class="grid">'
                 + "".join(_card(page, f) for f in pred.findings) + "</div>")
    for name, heading in (("performance", "Realized performance"),
                          ("estimated_performance", "Estimated performance (no labels)")):
        c = report.check(name)
        if c is None or not c.findings:
            continue
        page.add(f"<h2>{heading}</h2>" + table(
            ["metric", "value", "alarm below", "verdict", "detail"],
            [[f.subject, _num(f.statistic), _num(f.threshold), _status(f.status), f.detail]
             for f in c.findings], numeric=["value", "alarm below"], raw=["verdict"]))
    for c in report.checks:
        if not c.name.startswith("fairness[") or not c.findings:
            continue
        values = [{"group": f.subject, "value": f.statistic} for f in c.findings]
        spec = {"data": {"values": values}, "width": "container", "height": 140,
                "mark": {"type": "bar", "color": CUR_COLOR},
                "encoding": {"x": {"field": "group", "type": "nominal", "title": None},
                             "y": {"field": "value", "type": "quantitative",
                                   "title": c.numbers.get("metric")}}}
        page.add(f"<h2>Fairness: {escape(c.name[9:-1])}</h2><p>{escape(c.message)}</p>"
                 + table(["group", c.numbers.get("metric", "value"), "rows"],
                         [[f.subject, _num(f.statistic), f.detail] for f in c.findings])
                 + page.chart(spec, label=c.name))
    return page.render()
