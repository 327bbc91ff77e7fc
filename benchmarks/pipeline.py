"""Benchmark: the default pipeline's first run, ``python -m framework`` in a fresh clone, against a
hand-written script doing the same work in one process.

    python benchmarks/pipeline.py [--runs 5]

The script (:data:`SCRIPT`) does what the five stages do: load the breast cancer table and write
it as Parquet, split it (stratified, the same seed) and write both parts, fit the same scaler and
logistic regression and save it with skops, load it back and score the test set, write the
metrics; no schema checks, no registry, no DVC. Each framework run is a new clone of a committed
project (no DVC cache, no registry), exactly as a user's first ``python -m framework``. The two
alternate, run by run, so a busy moment of the machine hits both alike; the medians and their
ratio are printed.

Then plain ``dvc repro`` (no framework process around it: what CI runs) reproduces a clone, and
its outputs must be byte-identical to the framework run's (every md5 of dvc.lock).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import json, sys
from pathlib import Path
import pandas as pd
import skops.io
from sklearn import metrics
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

out = Path(sys.argv[1])
for d in ("data", "models", "metrics"):
    (out / d).mkdir(parents=True, exist_ok=True)
frame = load_breast_cancer(as_frame=True).frame
frame.columns = [str(c).strip().replace(" ", "_") for c in frame.columns]
frame.to_parquet(out / "data/raw.parquet", index=False)
raw = pd.read_parquet(out / "data/raw.parquet")
train, test = train_test_split(raw, test_size=0.25, random_state=42, stratify=raw["target"])
train.reset_index(drop=True).to_parquet(out / "data/train.parquet", index=False)
test.reset_index(drop=True).to_parquet(out / "data/test.parquet", index=False)
train = pd.read_parquet(out / "data/train.parquet")
model = Pipeline([("preprocess", StandardScaler()),
                  ("model", LogisticRegression(C=1.0, max_iter=1000))])
model.fit(train.drop(columns=["target"]), train["target"])
skops.io.dump(model, out / "models/model.skops")
model = skops.io.load(out / "models/model.skops",
                      trusted=skops.io.get_untrusted_types(file=out / "models/model.skops"))
test = pd.read_parquet(out / "data/test.parquet")
X, y = test.drop(columns=["target"]), test["target"]
proba = model.predict_proba(X)
scores = {"accuracy": metrics.accuracy_score(y, model.predict(X)),
          "roc_auc": metrics.roc_auc_score(y, proba[:, 1]),
          "log_loss": metrics.log_loss(y, proba)}
(out / "metrics/evaluate.json").write_text(json.dumps(scores))
'''


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWORK_")}
    e.update(extra)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e["DVC_NO_ANALYTICS"] = "1"
    e.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed user has the bytecode cache on
    return e


def sh(cwd: Path, *cmd: str, **extra: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env(**extra), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def committed_project(base: Path) -> Path:
    """The example project in a git repository with DVC, its generated files committed."""
    root = base / "origin"
    root.mkdir()
    for part in ("conf", "pipelines", "schemas"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, sys.executable, "-m", "dvc", "init", "-q")
    sh(root, sys.executable, "-m", "framework")  # the committed dvc.lock a clone starts from
    sh(root, "git", "add", "-A")
    sh(root, "git", "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "p")
    return root


def clone(origin: Path, dest: Path) -> Path:
    sh(origin.parent, "git", "clone", "-q", str(origin), str(dest))
    return dest


def timed(cwd: Path, *cmd: str, **extra: str) -> float:
    t0 = time.perf_counter()
    sh(cwd, *cmd, **extra)
    return time.perf_counter() - t0


def lock_md5s(root: Path) -> dict[str, str]:
    import yaml

    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for s in lock["stages"].values() for o in s.get("outs", [])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs of each, alternated (default 5)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        base = Path(tmp)
        origin = committed_project(base)
        script = base / "script.py"
        script.write_text(SCRIPT)
        ours: list[float] = []
        theirs: list[float] = []
        cold: list[float] = []
        for i in range(args.runs):
            work = base / f"script-{i}"
            theirs.append(timed(base, sys.executable, str(script), str(work)))
            project = clone(origin, base / f"clone-{i}")
            ours.append(timed(project, sys.executable, "-m", "framework"))
            if sh(project, "git", "status", "--porcelain"):
                raise SystemExit(f"the first run changed committed files:\n"
                                 f"{sh(project, 'git', 'status', '--porcelain')}")
            # a machine that never ran the framework: no user cache of estimator constraints
            fresh = clone(origin, base / f"cold-{i}")
            cold.append(timed(fresh, sys.executable, "-m", "framework",
                              FRAMEWORK_CACHE_DIR=str(base / f"cache-{i}")))
        plain = clone(origin, base / "plain")
        t_plain = timed(plain, sys.executable, "-m", "dvc", "repro")
        same = lock_md5s(plain) == lock_md5s(base / "clone-0") == lock_md5s(origin)
        if not same:
            raise SystemExit("plain dvc repro and python -m framework gave different outputs")
    import platform

    o, t, c = statistics.median(ours), statistics.median(theirs), statistics.median(cold)
    print(f"pipeline benchmark: the default pipeline's first run in a fresh clone, {args.runs} "
          f"runs each, alternated; Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"  python -m framework (5 stages, fresh clone) {o:6.2f} s   runs: "
          + ", ".join(f"{x:.2f}" for x in ours))
    print(f"  hand-written script (same work, 1 process)  {t:6.2f} s   runs: "
          + ", ".join(f"{x:.2f}" for x in theirs))
    print(f"  ratio {o / t:.2f}x (target: at most 1.5x)")
    print(f"  on a machine's very first run (no user cache of scikit-learn's constraints): "
          f"{c:.2f} s, {c / t:.2f}x; runs: " + ", ".join(f"{x:.2f}" for x in cold))
    print(f"  plain dvc repro in a fresh clone: {t_plain:.2f} s; its outputs are byte-identical "
          "to the framework run's (every md5 in dvc.lock)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
