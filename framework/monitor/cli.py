"""``python -m framework monitor ...``: drift, decay and fairness of a served model; labels; history.

::

    monitor MODEL [--data FILE] [--last N | --since 24h] [--json] [--html FILE]
                  [--retrain [-- OVERRIDES ...]] [--no-record]
    monitor label FILE [--model NAME] [--column NAME]
    monitor history NAME [--limit N] [--json]
    monitor compare NAME [--last N | --since 24h] [--promote] [--json]

Exit codes, the retrain trigger for a scheduler or CI: 0 no alarm, 3 an alarm under the policy
(also after a retrain: the alarm was real), 2 a user error (unknown model, unreadable batch, bad
policy), 1 a failure of the run itself. The policy is ``monitor:`` of ``params.yaml``
(:mod:`framework.monitor.policy`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from framework.errors import UsageError, UsageParser

PROG = "python -m framework monitor"
EXIT_ALARM = 3



def build_parser() -> argparse.ArgumentParser:
    p = UsageParser(prog=PROG, description="Watch a served model: data drift, prediction drift, "
                "schema violations, realized and estimated performance, fairness. Exit 0: no "
                "alarm, 3: an alarm, 2: a user error, 1: a failure. Also: `monitor label FILE`, "
                "`monitor history NAME`.")
    p.add_argument("model", metavar="MODEL", help="NAME@ALIAS or NAME/VERSION, e.g. "
                   "breast_cancer@champion")
    p.add_argument("--registry", default=None, metavar="PATH",
                   help="registry folder (default: registry.path in params.yaml)")
    p.add_argument("--data", default=None, metavar="FILE",
                   help="a batch (Parquet, CSV or JSON lines) to check instead of the "
                        "prediction log; a target column gives labels")
    p.add_argument("--last", type=int, default=None, metavar="N",
                   help="the latest N logged rows (default: monitor.window of params.yaml)")
    p.add_argument("--since", default=None, metavar="DURATION",
                   help="logged in the last DURATION (30m, 24h, 7d)")
    p.add_argument("--json", action="store_true", help="print every number as JSON")
    p.add_argument("--html", default=None, metavar="FILE",
                   help="write a self-contained HTML report with distribution plots")
    p.add_argument("--retrain", action="store_true",
                   help="on an alarm among monitor.retrain.when: write the labelled production "
                        "rows as the feedback table, run the pipeline, let gates and the "
                        "champion comparison decide (overrides for the run after --)")
    p.add_argument("--no-record", action="store_true",
                   help="do not record this run in the registry (monitor history)")
    return p


def _label_parser() -> argparse.ArgumentParser:
    p = UsageParser(prog=f"{PROG} label", description="Store ground truth for logged predictions: "
                "a CSV or Parquet file of request_id[,row],<label> rows.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--model", default=None, help="the model whose log the ids belong to "
                   "(default: any); its target names the label column")
    p.add_argument("--column", default=None, help="the label column (default: the model's "
                   "target, else the one column beside request_id and row)")
    p.add_argument("--registry", default=None, metavar="PATH")
    p.add_argument("--json", action="store_true")
    return p


def _history_parser() -> argparse.ArgumentParser:
    p = UsageParser(prog=f"{PROG} history", description="Every recorded monitor run of a model.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="the latest N runs")
    p.add_argument("--registry", default=None, metavar="PATH")
    p.add_argument("--json", action="store_true")
    return p


def main(argv: list[str]) -> int:
    if argv[:1] == ["label"]:
        return label_main(argv[1:])
    if argv[:1] == ["history"]:
        return history_main(argv[1:])
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:])
    overrides: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, overrides = argv[:at], argv[at + 1:]
    args = build_parser().parse_args(argv)
    if overrides and not args.retrain:
        raise UsageError(f"{PROG}: overrides after -- are for --retrain's pipeline run")
    if args.last is not None and args.last < 1:
        raise UsageError(f"{PROG}: --last must be at least 1, found {args.last}")
    if args.data and (args.last or args.since):
        raise UsageError(f"{PROG}: --data checks a batch; --last and --since choose rows of "
                         "the prediction log")
    if args.data and args.retrain:
        raise UsageError(f"{PROG}: --retrain uses the labelled rows of the prediction log, not "
                         "a --data batch")

    from framework.monitor.core import monitor
    from framework.monitor.policy import parse_duration, project_policy
    from framework.registry import open_registry

    policy = project_policy()
    since = parse_duration(args.since, key="--since") if args.since else None
    policy = policy.with_window(last=args.last, since=since)
    with open_registry(args.registry, create=False) as reg:
        mv = reg.resolve(args.model)
        from framework.io import project_trusted

        report, run_id = monitor(reg, mv, policy, data=args.data, trusted=project_trusted(),
                                 record=not args.no_record)
        if args.html:
            from framework.monitor.html import render
            from framework.report.vega import write

            write(args.html, render(report))
        retrained = None
        if args.retrain:
            from framework.monitor.retrain import retrain

            if not args.json:
                _print_report(report, args.model, run_id)
                print()
            retrained = retrain(Path.cwd(), reg, mv, policy, report, run_id,
                                overrides=overrides)
    if args.json:
        out: dict[str, Any] = {**report.to_dict(), "run_id": run_id}
        if args.retrain:
            out["retrain"] = retrained.to_dict() if retrained else None
        print(json.dumps(out, indent=2))
    else:
        if not args.retrain:
            _print_report(report, args.model, run_id)
        if retrained is not None:
            _print_retrain(retrained, mv.name)
        if args.html:
            print(f"wrote {args.html}")
    return EXIT_ALARM if report.alarm else 0


# -- printing ------------------------------------------------------------------------------------

def _num(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    if isinstance(x, float):
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
            return f"{x:.2e}"
        return f"{x:.{digits}g}"
    return str(x)


def _print_report(report: Any, ref: str, run_id: int | None) -> None:
    from framework.console import Out, table

    out = Out()
    w = report.window
    head = (f"{report.model} v{report.version} ({ref}) · {w['description']}: {w['rows']} rows, "
            f"{w['requests']} {'requests' if w.get('source') != 'batch' else 'rows sent'}, "
            f"{w['labelled']} labelled")
    print(head)
    print()
    out.print(table(None, ["check", "verdict", "what was found"],
                    [[c.name, c.status, c.message] for c in report.checks]))
    drift = report.check("data_drift")
    if drift is not None and drift.findings:
        findings = drift.findings
        # every drifted column, then the ten nearest to drifting (findings come in that order)
        shown = findings if len(findings) <= 15 else \
            [f for f in findings if f.status == "drift"] + \
            [f for f in findings if f.status != "drift"][:10]
        rows = [[f.subject, f.numbers.get("kind", ""), f.test, _num(f.statistic),
                 _num(f.threshold), _num(f.numbers.get("p_value_adjusted"), 2), f.status]
                for f in shown]
        out.print(table("data drift", ["column", "kind", "test", "statistic", "threshold",
                                       "p (adjusted)", "verdict"], rows,
                        right=["statistic", "threshold", "p (adjusted)"]))
        if len(shown) < len(findings):
            print(f" … and {len(findings) - len(shown)} more columns without drift "
                  "(--json or --html for every column)")
            print()
    for name in ("prediction_drift", "performance", "estimated_performance"):
        c = report.check(name)
        if c is None or not c.findings:
            continue
        out.print(table(name.replace("_", " "), ["subject", "test", "value", "threshold",
                                                  "verdict", "detail"],
                        [[f.subject, f.test, _num(f.statistic), _num(f.threshold), f.status,
                          f.detail] for f in c.findings], right=["value", "threshold"]))
    recorded = f" (monitor run {run_id})" if run_id is not None else ""
    if report.alarm:
        print(f"ALARM: {', '.join(report.alarms)}{recorded}; exit {EXIT_ALARM}")
    else:
        print(f"no alarm{recorded}")


def _print_retrain(result: Any, name: str) -> None:
    if not result.ran:
        print(f"retrain: {result.reason}")
        return
    if result.promoted:
        print(f"retrained on {result.feedback_rows} labelled production rows "
              f"({result.feedback_path}, tracked by DVC: commit its .dvc file): {name} "
              f"v{result.version} is the new champion; servers following {name}@champion "
              "switch to it by themselves")
    else:
        print(f"retrained on {result.feedback_rows} labelled production rows "
              f"({result.feedback_path}): {name} v{result.version} was {result.status}, the "
              f"champion stays v{result.champion}")
    for reason in result.reasons:
        print(f"  - {reason}")


def label_main(argv: list[str]) -> int:
    args = _label_parser().parse_args(argv)
    from framework.monitor.labels import label_file
    from framework.registry import open_registry

    with open_registry(args.registry, create=False) as reg:
        result = label_file(reg, args.file, model=args.model, column=args.column)
    if args.json:
        print(json.dumps(result.__dict__, indent=2))
        return 0
    waiting = result.rows - result.joined
    print(f"labelled {result.rows} rows from {args.file} (column {result.column!r}): "
          f"{result.joined} join logged predictions"
          + (f", {waiting} wait for theirs" if waiting else "")
          + f"; {result.added} new, {result.changed} changed, {result.unchanged} already "
          "labelled")
    if result.unknown:
        shown = ", ".join(result.unknown[:5]) + (" …" if len(result.unknown) > 5 else "")
        print(f"{len(result.unknown)} unknown request id(s), in no prediction log (yet): kept; "
              f"they join when those requests are logged ({shown})", file=sys.stderr)
    return 0


def history_main(argv: list[str]) -> int:
    args = _history_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"{PROG} history: --limit must be at least 1")
    from framework.registry import open_registry

    with open_registry(args.registry, create=False) as reg:
        reg.versions(args.name)  # an unknown model: exit 2 with a did-you-mean
        runs = reg.store.monitor_runs(args.name, limit=args.limit)
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=2))
        return 0
    if not runs:
        print(f"no monitor runs of {args.name} yet: python -m framework monitor "
              f"{args.name}@champion")
        return 0
    from framework.console import Out, table

    rows = []
    for r in runs:
        s = r.summary
        drift = s.get("data_drift", {})
        drifted = drift.get("drifted") or []
        columns = drift.get("columns")
        perf = s.get("performance", {})
        metrics = perf.get("metrics") or {}
        est = s.get("estimated_performance", {})
        estimates = est.get("estimates") or {}
        rows.append([
            r.id, r.created_at[:19].replace("T", " "), f"v{r.version}", r.rows,
            f"{len(drifted)}/{columns}" if columns else drift.get("status", "-"),
            _spark(len(drifted) / columns if columns else 0.0),
            s.get("prediction_drift", {}).get("status", "-"),
            _num(s.get("schema", {}).get("share")),
            ", ".join(f"{k} {_num(v)}" for k, v in metrics.items()) or perf.get("status", "-"),
            ", ".join(f"{k} {_num(v.get('value'))}" for k, v in estimates.items())
            or est.get("status", "-"),
            "ALARM" if r.alarm else "ok",
            f"v{r.retrained_version}" if r.retrained_version else ""])
    Out().print(table(f"monitor history of {args.name}",
                      ["run", "time (UTC)", "version", "rows", "drifted", "", "predictions",
                       "schema refused", "realized", "estimated", "verdict", "retrained"],
                      rows, right=["run", "rows", "drifted", "schema refused"]))
    return 0


def _spark(share: float) -> str:
    """A bar of eight cells for a share of drifted columns."""
    filled = round(max(0.0, min(1.0, share)) * 8)
    return "█" * filled + "·" * (8 - filled)


def compare_main(argv: list[str]) -> int:
    p = UsageParser(prog=f"{PROG} compare", description="The versions of a model that served "
                    "traffic (serve --split, --shadow) side by side: requests, latency, "
                    "predictions, agreement, realized metrics, and a sequential test of the "
                    "challenger against the champion (monitor.ab of params.yaml).")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--last", type=int, default=None, metavar="N", help="the latest N logged "
                   "rows (default: every row)")
    p.add_argument("--since", default=None, metavar="DURATION", help="logged in the last "
                   "DURATION (30m, 24h, 7d)")
    p.add_argument("--promote", action="store_true", help="move the champion alias to the "
                   "challenger when it wins (also: monitor.ab.promote: true)")
    p.add_argument("--registry", default=None, metavar="PATH")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.last is not None and args.last < 1:
        raise UsageError(f"{PROG} compare: --last must be at least 1, found {args.last}")
    import time

    from framework.monitor.ab import compare, promote_if_won
    from framework.monitor.policy import parse_duration, project_policy
    from framework.registry import open_registry
    from framework.registry.core import check_name

    check_name(args.name)
    ab = project_policy().ab
    since = time.time() - parse_duration(args.since, key="--since") if args.since else None
    with open_registry(args.registry, create=False) as reg:
        reg.resolve(f"{args.name}/latest")  # an unknown model is exit 2, naming it
        result = compare(reg, args.name, ab, last=args.last, since=since)
        if args.promote or ab.promote:
            promote_if_won(reg, result, ab)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return 0
    from framework.console import Out, table

    rows = []
    for g in result.groups:
        preds = ", ".join(f"{k} {v:.0%}" if k not in ("mean", "std") else f"{k} {v:g}"
                          for k, v in g.predictions.items())
        rows.append((g.label, g.requests, g.rows, _num(g.latency_p50, 3),
                     _num(g.latency_p95, 3), preds, g.labelled, _num(g.metric),
                     "" if g.agreement is None else f"{g.agreement:.1%}"))
    metric = result.test.metric if result.test else (ab.metric or "metric")
    print(f"{args.name}: {result.rows} logged rows" + (f", the latest {args.last}"
                                                       if args.last else ""))
    Out().print(table(None, ["alias", "requests", "rows", "p50 ms", "p95 ms", "predictions",
                             "labelled", metric, "agreement"], rows,
                      right=["requests", "rows", "p50 ms", "p95 ms", "labelled", metric,
                             "agreement"]))
    if result.test is None:
        print(f"no test: the log holds no {ab.champion} and {ab.challenger} traffic "
              "(monitor.ab.champion, .challenger)")
    else:
        t = result.test
        kind = "paired, the same rows" if t.paired else "independent samples"
        print(f"{t.challenger} against {t.champion} ({kind}, mSPRT): {t.message}")
    if result.promotion_note:
        print(result.promotion_note)
    return 0
