"""Benchmark: a report over 1,000 versions and a 200-trial sweep, against MLflow's search_runs.

    python benchmarks/report.py [--versions 1000] [--trials 200] [--big-trials 10000] \
        [--mlflow-python .venv-mlflow/bin/python] [--no-browser]

* ours: a registry of ``--versions`` versions of one model (each with five metrics, two params
  that vary, an alias history) and a recorded sweep of ``--trials`` trials; the measure is the
  whole ``report`` of the registry and the sweep (``index_page(...).render()``, in its own
  process, the registry read from SQLite), its size, and, in headless Chromium, the time from
  navigation to the load event and to the last chart drawn. Then the same for one sweep of
  ``--big-trials`` trials (paged table, binned charts).
* MLflow 3 (its own venv): the same number of runs, with the same metrics and params, logged
  into a SQLite tracking store; the measure is ``mlflow.search_runs`` returning all of them,
  which is what its compare page starts from (and all it does before drawing anything).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
METRICS = ("roc_auc", "accuracy", "f1", "log_loss", "precision")


def _metrics(i: int) -> dict[str, float]:
    import math

    return {m: round(0.9 + 0.05 * math.sin(i * (k + 1) * 0.37), 6) for k, m in enumerate(METRICS)}


def build_ours(root: Path, versions: int, trials: int, sweep_id: str) -> None:
    """A registry of ``versions`` versions (rows written through the store, as the register step
    writes them) and a sweep of ``trials`` trials."""
    from sklearn.linear_model import LogisticRegression

    from framework.registry import open_registry
    from framework.sweep.store import SweepStore, TrialResult

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with open_registry(root / "registry") as reg:
        for i in range(versions):
            reg.register("bench", model if i == 0 else _model(i), metrics=_metrics(i),
                         params={"model": {"C": 10 ** ((i % 13) - 6), "max_iter": 100 + i % 7},
                                 "seed": 0},
                         input_schema=None, primary_metric="roc_auc", actor="bench")
    store = SweepStore(root, sweep_id)
    store.start({"id": sweep_id, "primary_metric": "roc_auc", "direction": "maximize"})
    for i in range(trials):  # each trial its own overrides (a sweep keys its trials by them)
        store.append(TrialResult(i, [f"model.C={10 ** ((i % 37) / 6 - 3):.4g}",
                                     f"model.penalty={'l1' if i % 2 else 'l2'}", f"seed={i}"],
                                 "ok" if i % 50 != 7 else "failed", duration=0.4,
                                 metrics=_metrics(i) if i % 50 != 7 else {},
                                 error=None if i % 50 != 7 else "ValueError: bad penalty"))



def _model(i: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0 + i).fit([[0.0], [1.0 + i]], [0, 1])


def worker_ours(root: Path, out: Path, sweep_id: str | None, repeat: int) -> dict[str, Any]:
    from framework.registry import open_registry
    from framework.report import pages
    from framework.report.vega import bundle
    from framework.sweep.store import open_sweep

    bundle()  # cached on disk after the first report of a machine
    times = []
    text = ""
    for _ in range(repeat):
        t = time.perf_counter()
        if sweep_id is None:
            with open_registry(root / "registry", create=False) as reg:
                text = pages.index_page(reg, open_sweep(root), pages.Links()).render()
        else:
            text = pages.sweep_page(open_sweep(root, sweep_id), pages.Links()).render()
        times.append(time.perf_counter() - t)
    out.write_text(text)
    return {"seconds": statistics.median(times), "bytes": len(text.encode())}


def worker_mlflow(workdir: Path, runs: int) -> dict[str, Any]:
    import mlflow
    from mlflow.entities import Metric, Param

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("bench")
    now = int(time.time() * 1000)
    for i in range(runs):
        run = client.create_run(experiment)
        client.log_batch(run.info.run_id,
                         metrics=[Metric(k, v, now, 0) for k, v in _metrics(i).items()],
                         params=[Param("model.C", str(10 ** ((i % 13) - 6))),
                                 Param("model.max_iter", str(100 + i % 7))])
        client.set_terminated(run.info.run_id)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        frame = mlflow.search_runs(experiment_ids=[experiment], max_results=runs)
        times.append(time.perf_counter() - t)
    assert len(frame) == runs, len(frame)
    return {"seconds": statistics.median(times)}


def _worker(python: str, *args: str) -> dict[str, Any]:
    fd, result = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    proc = subprocess.run([python, str(Path(__file__).resolve()), "--worker", *args,
                           "--result", result], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker {args[0]} failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    out = json.loads(Path(result).read_text())
    os.unlink(result)
    return out


def browser_times(path: Path, runs: int = 3) -> tuple[float, float, int]:
    """Median seconds to the load event and to the last chart drawn, and the charts drawn."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"),
                              options=options)
    loads, draws, charts = [], [], 0
    try:
        for _ in range(runs):
            driver.get("about:blank")
            t = time.perf_counter()
            driver.get(path.resolve().as_uri())  # returns at the load event
            loads.append(time.perf_counter() - t)
            while True:
                state = driver.execute_script(
                    "return [document.querySelectorAll('[data-chart]').length,"
                    "document.querySelectorAll('[data-drawn]').length]")
                if state[1] >= state[0]:
                    break
                if time.perf_counter() - t > 60:
                    raise SystemExit(f"charts not drawn after 60 s: {state}")
                time.sleep(0.02)
            draws.append(time.perf_counter() - t)
            charts = state[0]
    finally:
        driver.quit()
    return statistics.median(loads), statistics.median(draws), charts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--versions", type=int, default=1000)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--big-trials", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--mlflow-python", default=str(REPO / ".venv-mlflow" / "bin" / "python"))
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "build":
            build_ours(Path(rest[0]), int(rest[1]), int(rest[2]), rest[3])
            out: dict[str, Any] = {}
        elif kind == "ours":
            out = worker_ours(Path(rest[0]), Path(rest[1]), rest[2] if rest[2] != "-" else None,
                              int(rest[3]))
        else:
            out = worker_mlflow(Path(rest[0]), int(rest[1]))
        Path(args.result).write_text(json.dumps(out))
        return

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        _worker(args.python, "build", str(work), str(args.versions), str(args.trials),
                "20261201-000000-bench")
        big = work / "big"
        _worker(args.python, "build", str(big), "1", str(args.big_trials), "20261201-000000-big")
        print(f"built {args.versions} versions, a {args.trials}-trial and a {args.big_trials}-"
              f"trial sweep in {time.perf_counter() - t:.0f} s", flush=True)
        ours = _worker(args.python, "ours", str(work), str(work / "report.html"), "-",
                       str(args.repeat))
        big_ours = _worker(args.python, "ours", str(big), str(work / "big.html"),
                           "20261201-000000-big", str(args.repeat))
        theirs = None
        if Path(args.mlflow_python).exists():
            (work / "mlflow").mkdir()
            theirs = _worker(args.mlflow_python, "mlflow", str(work / "mlflow"),
                             str(args.versions))
        rows = [("report of the registry and the sweep", f"{ours['seconds']:.2f} s",
                 f"{ours['seconds'] / args.versions * 1000:.2f} ms per version",
                 f"{ours['bytes'] / 1e6:.2f} MB")]
        rows.append((f"report of a {args.big_trials:,}-trial sweep", f"{big_ours['seconds']:.2f} s",
                     "", f"{big_ours['bytes'] / 1e6:.2f} MB"))
        if theirs:
            rows.append((f"MLflow search_runs of {args.versions} runs",
                         f"{theirs['seconds']:.2f} s",
                         f"{theirs['seconds'] / args.versions * 1000:.2f} ms per run", ""))
        if not args.no_browser and shutil.which("chromedriver"):
            load, drawn, charts = browser_times(work / "report.html")
            rows.append(("headless Chromium, the report", f"load {load:.2f} s",
                         f"{charts} charts drawn at {drawn:.2f} s", ""))
            load, drawn, charts = browser_times(work / "big.html")
            rows.append((f"headless Chromium, {args.big_trials:,}-trial sweep",
                         f"load {load:.2f} s", f"{charts} charts drawn at {drawn:.2f} s", ""))
    width = max(len(r[0]) for r in rows)
    print()
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:>12}  {r[2]:<32}  {r[3]}")
    if theirs:
        print(f"\nours {ours['seconds']:.2f} s for the whole page vs MLflow's query alone "
              f"{theirs['seconds']:.2f} s: {theirs['seconds'] / ours['seconds']:.1f}x")


if __name__ == "__main__":
    main()
