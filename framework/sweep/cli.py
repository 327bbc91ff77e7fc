"""``python -m framework sweep show|list|apply|promote``: look at sweeps and adopt a winner.

A sweep never moves an alias: its trials are registered as ``candidate`` versions. Its winner
(the best trial among those that pass their own gates) becomes champion only through ``sweep
apply`` and a run, or ``sweep promote``, which runs the pipeline with the winner's values (conf/
unchanged) and registers and gates it like any run, against the champion on the same test set.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from framework.sweep.store import SweepStore, list_sweeps, open_sweep, ranked, winner


def print_table(store: SweepStore, out: Any, *, limit: int | None = None) -> None:
    """The trials of a sweep as a table, best first on the primary metric, the winner marked."""
    meta = store.meta()
    metric, direction = meta.get("primary_metric"), meta.get("direction", "maximize")
    results = store.results()
    best = winner(results, metric, direction)
    rows = ranked(results, metric, direction)
    others = sorted({m for r in results for m in r.metrics if "@" not in m} - {metric})[:4]
    header = ["", "#", "overrides", str(metric), *others, "time", "version", "status"]
    right = {1, *range(3, 4 + len(others)), 4 + len(others)}
    lines = []
    shown = rows if limit is None else rows[:limit]
    for r in shown:
        mark = "★" if best is not None and r.key == best.key else ""
        if r.status == "ok":
            cells = [f"{r.metrics[m]:.4f}" if isinstance(r.metrics.get(m), int | float) else "-"
                     for m in (metric, *others)]
            status = r.decision or "ok"
        else:
            cells = ["-"] * (1 + len(others))
            status = "failed: " + (r.error or "").splitlines()[0][:60]
        lines.append([mark, str(r.index), " ".join(r.overrides) or "(defaults)", *cells,
                      f"{r.duration:.2f} s", f"v{r.version}" if r.version else "-", status])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    ok = sum(r.status == "ok" for r in results)
    planned = meta.get("planned_trials") or len(results)
    out.print(f"[bold]sweep {store.sweep_id}[/]  {ok} ok, {len(results) - ok} failed, "
              f"{planned} planned; ranked by {metric} ({direction})")
    out.print(fmt(header), style="bold", markup=False)
    for row in lines:
        out.print(fmt(row), markup=False)
    if limit is not None and len(rows) > limit:
        out.print(f"  ... {len(rows) - limit} more: python -m framework sweep show {store.sweep_id}")
    if best is not None:
        out.print(f"winner: trial {best.index} ({' '.join(best.overrides) or 'defaults'}), "
                  f"{metric} {best.value(metric):.4f}, registry v{best.version} ({best.decision})")
        out.print(f"promote it (gated against the champion): python -m framework sweep promote "
                  f"{store.sweep_id}; or write it into conf/: python -m framework sweep apply "
                  f"{store.sweep_id}")
    else:
        out.print("no trial passed its gates: no winner")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m framework sweep",
                                     description="Look at recorded sweeps and adopt a winner.")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="the trials of a sweep (default: the latest), best first")
    show.add_argument("sweep_id", nargs="?")
    show.add_argument("--json", action="store_true")
    sub.add_parser("list", help="the recorded sweeps")
    apply = sub.add_parser("apply", help="write the winner's values into conf/ and recompile")
    apply.add_argument("sweep_id", nargs="?")
    apply.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
    promote = sub.add_parser("promote", help="run the pipeline with the winner's values and "
                                             "register it like any run (conf/ unchanged)")
    promote.add_argument("sweep_id", nargs="?")
    args = parser.parse_args(argv)

    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)
    root = Path.cwd()
    if args.command == "list":
        for sweep in list_sweeps(root):
            store = SweepStore(root, sweep)
            results = store.results()
            out.print(f"{sweep}  {len(results)} trials  {store.meta().get('created_at', '')}")
        return 0
    store = open_sweep(root, args.sweep_id)
    if args.command == "show":
        if args.json:
            meta = store.meta()
            results = store.results()
            best = winner(results, meta.get("primary_metric"), meta.get("direction", "maximize"))
            print(json.dumps({"sweep": meta, "winner": best.index if best else None,
                              "trials": [asdict(r) for r in results]}, indent=2, default=str))
        else:
            print_table(store, out)
        return 0

    if args.command == "promote":
        from framework.app import run_app
        from framework.sweep.apply import winner_overrides

        overrides = winner_overrides(store)
        out.print(f"running the winner of {store.sweep_id}: python -m framework "
                  f"{' '.join(overrides) or '(conf/ as it is)'}")
        code = run_app(overrides)
        if code == 0:
            out.print("conf/ is unchanged: `python -m framework sweep apply` writes these values "
                      "into it")
        return code

    from framework.sweep.apply import apply_winner

    changes = apply_winner(store, dry_run=args.dry_run)
    for change in changes:
        out.print(f"{change.file}: {change.key}: {change.old!r} -> {change.new!r}")
    if not changes:
        out.print("conf/ already holds the winner's values")
    out.print("(dry run: nothing written)" if args.dry_run else
              "recompiled dvc.yaml and params.yaml; `dvc repro` reproduces the winner")
    return 0
