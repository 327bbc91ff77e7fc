"""``python -m framework test``: every generated check on the current pipeline.

::

    test [--json] [--junit FILE] [--sample-rows N] [OVERRIDES ...]

Exit 0 when nothing fails (warnings included), 1 when a check fails, 2 for a user error.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from framework.errors import UsageError, UsageParser

PROG = "python -m framework test"



def main(argv: list[str]) -> int:
    p = UsageParser(prog=PROG, description="Run the checks generated from the pipeline's config: "
                "stage contracts and schema edges, determinism, ranges, leakage, scaling, "
                "serving skew, train/test drift, gates. Exit 0: nothing failed, 1: a check "
                "failed, 2: a user error.")
    p.add_argument("--json", action="store_true", help="one JSON record per check")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report (for CI)")
    p.add_argument("--sample-rows", type=int, default=None, metavar="N",
                   help="rows of each input table a stage is run on (default 500)")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides")
    args = p.parse_args(argv)
    from framework.testing.checks import FAIL, SAMPLE_ROWS, context, junit, run

    if args.sample_rows is not None and args.sample_rows < 10:
        raise UsageError(f"{PROG}: --sample-rows must be at least 10")
    start = time.perf_counter()
    ctx = context(Path.cwd(), args.overrides, sample_rows=args.sample_rows or SAMPLE_ROWS)
    out = None
    if not args.json:
        from framework.console import Out

        out = Out()

    def shown(r: object) -> None:
        if out is not None:
            mark = {"pass": "ok  ", "fail": "FAIL", "warn": "warn", "skip": "skip"}[r.status]
            print(f"  {mark}  {r.name:<34} {r.message}", flush=True)

    results = run(ctx, on_result=shown)
    elapsed = time.perf_counter() - start
    if args.junit:
        from framework.io import write_text

        write_text(args.junit, junit(results))
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "warn", "skip")}
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, default=str))
    else:
        print(f"\n{len(results)} checks in {elapsed:.1f} s: {counts['pass']} passed, "
              f"{counts['fail']} failed, {counts['warn']} warnings, {counts['skip']} skipped"
              + (f"; JUnit report in {args.junit}" if args.junit else ""))
    return 1 if any(r.status == FAIL for r in results) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
