"""Sweep benchmark: a 20-trial grid of logistic regression on the default dataset, three ways.

1. a bare Python loop: the same fits and evaluations (the pipeline's metrics, overall and per
   clinic), in one fresh process (imports included);
2. this framework: ``python -m framework +experiment=tune_logreg`` in a fresh copy of the project
   (composition, checks, shared stages once, parallel trials, each trial recorded, its model
   saved and registered);
3. DVC's own way: ``dvc exp run -S ...`` for each trial (on a few trials, extrapolated per trial:
   it costs seconds each).

It prints seconds per trial for each, the framework's overhead per trial
((framework time - bare loop time) / trials; also as the median of the differences within each
alternated pair of runs, steadier on a noisy machine) and the ratios.

With ``--ray``, on a one-node Ray cluster it starts (``ray start --head``) and stops, two more:

4. the framework on Ray: the same grid with ``sweep.launcher=ray sweep.ray.address=...``;
5. a plain ``ray.remote`` loop of the same fits and evaluations, connecting to the same cluster;

each on the 20-trial grid and on a 40-trial one (20 values of C). The Ray launcher's overhead per
trial over the plain loop (target < 50 ms) is the difference of their costs per additional trial,
``(time(40) - time(20)) / 20``: what one more trial costs, apart from what a sweep pays once
(the command's start, composition and checks, shipping the project to the cluster, the shared
stages, the workers' first imports), which is printed apart.

    python benchmarks/sweep.py [--dvc-trials 4] [--repeat 3] [--ray]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
C_VALUES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30]
#: the larger grid of the Ray runs: 20 values of C, 40 trials
C_VALUES_LARGE = [round(c * f, 6) for c in C_VALUES for f in (1, 1.5)]
WEIGHTS = [None, "balanced"]

#: The evaluation both loops run, the same as the example pipeline's evaluate stage: six
#: metrics overall and on each clinic's rows (the grouping column conf/dataset draws), a ROC
#: curve.
EVALUATE = r"""
import numpy as np
from sklearn import metrics as skm


def scores(yt, predicted, proba):
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        yt, predicted, average="binary", zero_division=0)
    out = {"accuracy": skm.accuracy_score(yt, predicted), "precision": precision,
           "recall": recall, "f1": f1}
    if len(np.unique(yt)) == 2:
        out["roc_auc"] = skm.roc_auc_score(yt, proba[:, 1])
    out["log_loss"] = skm.log_loss(yt, proba, labels=[0, 1])
    return out


def evaluate(model, Xt, yt, clinic):
    predicted, proba = model.predict(Xt), model.predict_proba(Xt)
    result = scores(yt, predicted, proba)
    for group in sorted(set(clinic)):
        rows = clinic == group
        result[f"rows@clinic={group}"] = int(rows.sum())
        result.update({f"{k}@clinic={group}": v
                       for k, v in scores(yt[rows], predicted[rows], proba[rows]).items()})
    skm.roc_curve(yt, proba[:, 1])
    return result


def load():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    frame["clinic"] = np.random.default_rng(0).choice(np.array(["A", "B", "C"], dtype=object),
                                                      len(frame))
    train, test = train_test_split(frame, test_size=0.25, random_state=42,
                                   stratify=frame["target"])
    return (train.drop(columns=["target", "clinic"]), train["target"],
            test.drop(columns=["target", "clinic"]), test["target"].to_numpy(),
            test["clinic"].to_numpy())
"""

BARE_LOOP = r"""
import time
t0 = time.perf_counter()
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
%(evaluate)s
X, y, Xt, yt, clinic = load()
results = []
for C in %(cs)r:
    for weight in %(weights)r:
        model = Pipeline([("preprocess", StandardScaler()),
                          ("model", LogisticRegression(C=C, class_weight=weight, max_iter=1000))])
        model.fit(X, y)
        results.append(evaluate(model, Xt, yt, clinic))
print(len(results), max(r["roc_auc"] for r in results))
"""


RAY_LOOP = r"""
import sys, time
import ray
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
%(evaluate)s
ray.init(address=sys.argv[1], include_dashboard=False, logging_level="warning",
         log_to_driver=False)
data = ray.put(load())


@ray.remote(num_cpus=1)
def trial(data, C, weight):
    X, y, Xt, yt, clinic = data
    model = Pipeline([("preprocess", StandardScaler()),
                      ("model", LogisticRegression(C=C, class_weight=weight, max_iter=1000))])
    model.fit(X, y)
    return evaluate(model, Xt, yt, clinic)


results = ray.get([trial.remote(data, C, w) for C in %(cs)r for w in %(weights)r])
print(len(results), max(r["roc_auc"] for r in results))
"""


def ray_cluster(base: Path) -> tuple[str, list[str]]:
    """Start a one-node Ray cluster on 127.0.0.1; its address and the command that stops it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import secrets

    ray_bin = str(Path(sys.executable).parent / "ray")
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    # a token of its own, for the cluster and every client this script starts (env() copies it)
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                       "RAY_USAGE_STATS_ENABLED": "0"})
    sh([ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
        f"--num-cpus={os.cpu_count()}", f"--temp-dir={temp}", "--include-dashboard=false",
        "--disable-usage-stats"], base)
    return f"127.0.0.1:{port}", [ray_bin, "stop", "--force"]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e["DVC_NO_ANALYTICS"] = "1"
    # Python's own bytecode cache, as an installed user has it: with PYTHONDONTWRITEBYTECODE
    # set, every run would compile the framework's modules again (the bare loop imports only
    # packages compiled when they were installed).
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    return e


def sh(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return took


def make_project(base: Path) -> Path:
    root = base / "project"
    root.mkdir(parents=True)
    for part in ("conf", "pipelines", "schemas"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "bench@example.com"],
                ["git", "config", "user.name", "bench"]):
        sh(cmd, root)
    sh([sys.executable, "-m", "dvc", "init", "-q"], root)
    sh([sys.executable, "-m", "framework", "compile"], root)
    sh(["git", "add", "-A"], root)
    sh(["git", "commit", "-qm", "project"], root)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dvc-trials", type=int, default=4,
                        help="trials to run with `dvc exp run` (0 to skip)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, median kept")
    parser.add_argument("--ray", action="store_true",
                        help="also on a local Ray cluster: the Ray launcher against a plain "
                             "ray.remote loop")
    args = parser.parse_args()
    trials = len(C_VALUES) * len(WEIGHTS)

    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        base = Path(tmp)
        loop_file = base / "loop.py"
        loop_file.write_text(BARE_LOOP % {"cs": C_VALUES, "weights": WEIGHTS,
                                               "evaluate": EVALUATE})
        bare_runs, ours = [], []
        for i in range(args.repeat):  # alternated, so a busy moment hits both alike
            root = make_project(base / f"ours-{i}")
            bare_runs.append(sh([sys.executable, str(loop_file)], base))
            ours.append(sh([sys.executable, "-m", "framework", "+experiment=tune_logreg"], root))
        bare, framework = statistics.median(bare_runs), statistics.median(ours)

        on_ray = plain_ray = None
        ray_fixed: dict[str, float] = {}
        if args.ray:
            address, stop = ray_cluster(base)
            try:
                timings: dict[tuple[str, int], list[float]] = {}
                for i in range(args.repeat):
                    for cs in (C_VALUES, C_VALUES_LARGE):
                        n = len(cs) * len(WEIGHTS)
                        ray_file = base / f"ray_loop_{n}.py"
                        ray_file.write_text(RAY_LOOP % {"cs": cs, "weights": WEIGHTS,
                                                        "evaluate": EVALUATE})
                        root = make_project(base / f"ray-{i}-{n}")
                        timings.setdefault(("plain", n), []).append(
                            sh([sys.executable, str(ray_file), address], base))
                        timings.setdefault(("ours", n), []).append(
                            sh([sys.executable, "-m", "framework", "-m",
                                "model=logistic_regression",
                                f"model.C={','.join(map(str, cs))}",
                                "model.class_weight=null,balanced", "sweep.launcher=ray",
                                f"sweep.ray.address={address}"], root))
                small, large = trials, len(C_VALUES_LARGE) * len(WEIGHTS)
                med = {k: statistics.median(v) for k, v in timings.items()}
                on_ray, plain_ray = med[("ours", small)], med[("plain", small)]
                for who in ("ours", "plain"):
                    per = (med[(who, large)] - med[(who, small)]) / (large - small)
                    ray_fixed[who] = med[(who, small)] - per * small
                    ray_fixed[f"{who}-per-trial"] = per
            finally:
                subprocess.run(stop, capture_output=True, env=env())

        dvc = None
        if args.dvc_trials:
            root = make_project(base / "dvc")
            sh([sys.executable, "-m", "dvc", "repro"], root)  # the baseline experiments start from
            sh(["git", "add", "-A"], root)
            sh(["git", "commit", "-qm", "baseline"], root)
            grid = list(itertools.product(C_VALUES, WEIGHTS))[: args.dvc_trials]
            t0 = time.perf_counter()
            for c, weight in grid:
                sh([sys.executable, "-m", "dvc", "exp", "run", "-S", f"model.C={c}",
                    "-S", f"model.class_weight={'null' if weight is None else weight}"], root)
            dvc = (time.perf_counter() - t0) / len(grid)

    rows = [("bare Python loop (one process)", bare / trials),
            ("framework sweep (+experiment=tune_logreg)", framework / trials)]
    if on_ray is not None and plain_ray is not None:
        rows.append(("plain ray.remote loop (local Ray cluster)", plain_ray / trials))
        rows.append(("framework sweep, sweep.launcher=ray", on_ray / trials))
    if dvc is not None:
        rows.append((f"dvc exp run -S per trial ({args.dvc_trials} trials, per trial)", dvc))
    width = max(len(r[0]) for r in rows)
    print(f"{trials}-trial grid of logistic regression, breast cancer, {os.cpu_count()} cores, "
          f"median of {args.repeat} (wall time of each whole command, imports included)\n")
    print(f"{'way':<{width}}  {'s/trial':>9}  {'total s':>8}")
    for name, per in rows:
        print(f"{name:<{width}}  {per:9.4f}  {per * trials:8.2f}")
    overhead = (framework - bare) / trials
    # each framework run follows its own bare run: the difference within a pair sees the same
    # moment of the machine, so its median is steadier than the difference of the two medians
    paired = statistics.median(o - b for o, b in zip(ours, bare_runs, strict=True)) / trials
    print(f"\nframework overhead per trial: {overhead * 1000:.1f} ms "
          f"((framework - bare loop) / {trials}; target < 25 ms)")
    print(f"  median of the {args.repeat} paired differences: {paired * 1000:.1f} ms per trial")
    if on_ray is not None and plain_ray is not None:
        ours_per, plain_per = ray_fixed["ours-per-trial"], ray_fixed["plain-per-trial"]
        print(f"\non Ray, each additional trial (40-trial grid against the 20-trial one): "
              f"framework {ours_per * 1000:.1f} ms, plain ray.remote {plain_per * 1000:.1f} ms")
        print(f"Ray launcher overhead per trial over a plain ray.remote loop: "
              f"{(ours_per - plain_per) * 1000:.1f} ms (target < 50 ms)")
        print(f"  paid once per sweep: framework {ray_fixed['ours']:.2f} s, plain loop "
              f"{ray_fixed['plain']:.2f} s (start, composition, checks, shipping the project, "
              "shared stages, first imports)")
        print(f"  all included, at 20 trials: {(on_ray - plain_ray) / trials * 1000:.1f} ms "
              "per trial")
    if dvc is not None:
        print(f"framework vs dvc exp run: {dvc / (framework / trials):.0f}x faster per trial "
              "(target >= 50x)")


if __name__ == "__main__":
    main()
