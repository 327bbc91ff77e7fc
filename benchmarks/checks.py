"""Benchmark: the generated checks of the bundled pipeline, against rebuilding it.

    python benchmarks/checks.py [--runs 3]

In a fresh clone of this repository (in a temporary folder, with git and DVC), after one run of
the pipeline: ``python -m framework test`` (every generated check, on the outputs in the
workspace), against ``dvc repro -f`` (rebuilding every stage: what exercising the pipeline end to
end costs without the generated checks), alternated ``--runs`` times; then ``framework test`` in
a clone where the pipeline never ran (each stage's contract run feeding the next). Target: the
whole suite in at most 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
                         f"{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
        ran, fresh = Path(tmp) / "ran", Path(tmp) / "fresh"
        for where in (ran, fresh):
            subprocess.run(["git", "clone", "-q", str(REPO), str(where)], check=True)
        timed([py, "-m", "framework"], ran)
        checks, repro, cold = [], [], []
        for _ in range(args.runs):
            checks.append(timed([py, "-m", "framework", "test"], ran))
            repro.append(timed([py, "-m", "dvc", "repro", "-f"], ran))
            cold.append(timed([py, "-m", "framework", "test"], fresh))
    c, r, f = (statistics.median(x) for x in (checks, repro, cold))
    print(f"framework test, after a run:        {c:6.2f} s (median of {args.runs})")
    print(f"framework test, before any run:     {f:6.2f} s")
    print(f"dvc repro -f (rebuild every stage): {r:6.2f} s")
    print(f"the checks take {c / r:.2f}x the time of a rebuild; target: at most 30 s")


if __name__ == "__main__":
    main()
