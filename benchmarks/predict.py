"""Benchmark: batch scoring of one file, ``framework predict`` against ``mlflow models predict``.

    python benchmarks/predict.py [--rows 10000000] [--runs 3]
                                 [--mlflow-python .venv-mlflow/bin/python]

The model is the breast-cancer pipeline (standard scaler + logistic regression, seed 0), fitted
with the same code on each side: ours registered with its input schema, MLflow's saved with
``mlflow.sklearn.save_model``. The input is ``--rows`` rows of the 30 feature columns (the
dataset's rows drawn with replacement, with noise, kept inside the dataset's ranges; the same
rows for both), as a CSV file, and as Parquet for our other runs. Each command runs in a fresh
process, timed from start to exit; its peak memory (maximum resident set size) is read from
``getrusage`` of the finished child. Every command runs once, then the two scores-only runs and
MLflow's ``--runs - 1`` more times, alternated: the ratio printed is the median of the ratios
within each round, with their range.

* ``mlflow models predict -m MODEL -i input.csv -t csv -o out.json --env-manager local``: MLflow
  reads the whole file, scores it, and writes the predictions (JSON);
* ``python -m framework predict bc@champion input.csv -o out.csv``: the same CSV, checked against
  the schema chunk by chunk, written with the input's columns and the scores;
* the same from Parquet to Parquet;
* both again with ``--keep none``: the scores alone, as MLflow writes them.

The predictions are compared (they must agree on every row). MLflow lives in its own venv
(``python3 -m venv .venv-mlflow && .venv-mlflow/bin/pip install mlflow scikit-learn skops``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCORES_PARQUET = "ours, Parquet -> Parquet, scores only (--keep none)"
SCORES_CSV = "ours, CSV -> CSV, scores only (--keep none)"
MLFLOW = "mlflow models predict, CSV -> JSON"
FIT = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0)).fit(X, y)
"""
MLFLOW_SAVE = FIT + """
import sys, mlflow.sklearn
mlflow.sklearn.save_model(model, sys.argv[1])
"""


def write_inputs(rows: int, folder: Path, *, csv_too: bool = True) -> tuple[Path, Path]:
    """``rows`` rows as CSV (unless not ``csv_too``) and Parquet, written chunk by chunk (never
    all in memory)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer(as_frame=True).data
    base = X.to_numpy()
    scale = X.std().to_numpy() * 0.05
    low, high = X.min().to_numpy(), X.max().to_numpy()
    rng = np.random.default_rng(0)
    csv, parquet = folder / "input.csv", folder / "input.parquet"
    writer = csv_writer = None
    chunk = 500_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        values = base[rng.integers(0, len(base), n)] + rng.normal(0, 1, (n, 30)) * scale
        # inside the training data's ranges, which the inferred schema holds the rows to
        values = np.round(np.clip(values, low, high), 6)
        table = pa.Table.from_pandas(pd.DataFrame(values, columns=X.columns),
                                     preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(parquet, table.schema)
            if csv_too:  # Arrow's writer: pandas' to_csv takes minutes for 10M rows
                csv_writer = pcsv.CSVWriter(csv, table.schema)
        writer.write_table(table, row_group_size=100_000)
        if csv_writer is not None:
            csv_writer.write_table(table)
    if csv_writer is not None:
        csv_writer.close()
    assert writer is not None
    writer.close()
    return csv, parquet


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Seconds from start to exit, and the child's peak RSS in MB (run in its own helper
    process, so that getrusage's maximum is this command's alone)."""
    helper = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
              "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
              "stderr=subprocess.PIPE, text=True); took = time.perf_counter() - t; "
              "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; "
              "print(json.dumps({'rc': p.returncode, 'seconds': took, 'rss': rss, "
              "'err': p.stderr[-2000:]}))")
    proc = subprocess.run([sys.executable, "-c", helper, *cmd], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})})
    data = json.loads(proc.stdout)
    if data["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{data['err']}")
    return data["seconds"], data["rss"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--mlflow-python", default=str(REPO / ".venv-mlflow" / "bin" / "python"))
    p.add_argument("--runs", type=int, default=3,
                   help="rounds of the scores-only runs and MLflow's, alternated (default 3)")
    p.add_argument("--no-mlflow", action="store_true",
                   help="only ours, from Parquet (the memory bound at scale)")
    args = p.parse_args()
    mlflow_bin = Path(args.mlflow_python).parent / "mlflow"
    if not args.no_mlflow and not mlflow_bin.exists():
        raise SystemExit(f"no MLflow at {mlflow_bin}; see the module's docstring")

    import numpy as np
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        csv, parquet = write_inputs(args.rows, root, csv_too=not args.no_mlflow)
        sizes = (f"CSV {csv.stat().st_size / 1e6:.0f} MB, " if csv.exists() else "") + \
            f"Parquet {parquet.stat().st_size / 1e6:.0f} MB"
        print(f"{args.rows:,} rows x 30 columns: {sizes} (written in "
              f"{time.perf_counter() - t:.0f} s)", flush=True)

        from framework.registry import open_registry
        from framework.schema import infer_schema

        scope: dict = {}
        exec(FIT, scope)  # noqa: S102 - the benchmark's own fitting code, shared with MLflow's
        with open_registry(root / "registry") as reg:
            reg.register("bc", scope["model"], metrics={"roc_auc": 0.99},
                         input_schema=infer_schema(scope["X"]))
        env = {"FRAMEWORK_REGISTRY": str(root / "registry")}
        ours = [sys.executable, "-m", "framework", "predict", "bc@champion"]
        runs: dict[str, list[list[str]]] = {}  # name: command, cwd env
        if csv.exists():
            runs["ours, CSV -> CSV"] = [*ours, str(csv), "-o", str(root / "ours.csv"), "--quiet"]
        runs["ours, Parquet -> Parquet"] = [*ours, str(parquet), "-o", str(root / "ours.parquet"),
                                            "--quiet"]
        runs[SCORES_PARQUET] = [*ours, str(parquet), "-o", str(root / "ours-scores.parquet"),
                                "--quiet", "--keep", "none"]
        if csv.exists():
            runs[SCORES_CSV] = [*ours, str(csv), "-o", str(root / "ours-scores.csv"), "--quiet",
                                "--keep", "none"]
        if not args.no_mlflow:
            subprocess.run([args.mlflow_python, "-c", MLFLOW_SAVE, str(root / "mlflow-model")],
                           check=True, capture_output=True)
            runs[MLFLOW] = [str(mlflow_bin), "models", "predict", "-m", str(root / "mlflow-model"),
                            "-i", str(csv), "-t", "csv", "-o", str(root / "mlflow.json"),
                            "--env-manager", "local"]
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for name, cmd in runs.items():  # every contender once
            results[name].append(timed(cmd, root, None if name == MLFLOW else env))
            print(f"{name}: {results[name][-1][0]:.2f} s", flush=True)
        # the scores-only pairs again, alternated with MLflow: this machine's speed swings by a
        # third from one minute to the next, so a ratio is taken within each round
        paired = [n for n in (SCORES_PARQUET, SCORES_CSV, MLFLOW) if n in runs]
        for _ in range(args.runs - 1):
            for name in paired:
                results[name].append(timed(runs[name], root, None if name == MLFLOW else env))
                print(f"{name}: {results[name][-1][0]:.2f} s", flush=True)
        if not args.no_mlflow:
            with open(root / "mlflow.json") as f:
                theirs = np.asarray(json.load(f)["predictions"])
            mine = pd.read_parquet(root / "ours.parquet", columns=["prediction"])["prediction"]
            agree = int((mine.to_numpy() == theirs).sum())
            print(f"predictions agree on {agree:,} of {args.rows:,} rows")

    print(f"\nscoring {args.rows:,} rows x 30 columns (wall time, peak RSS; the median of "
          f"{args.runs} runs for the scores-only ones and MLflow's; the ratio: the median of "
          "the rounds)")
    width = max(len(k) for k in results)
    ref = results.get(MLFLOW)
    for name, measured in results.items():
        seconds = statistics.median(m[0] for m in measured)
        rss = max(m[1] for m in measured)
        ratio = ""
        if ref and name != MLFLOW:
            rounds = [theirs[0] / mine[0] for theirs, mine in zip(ref, measured)]
            ratio = f"{statistics.median(rounds):6.1f}x"
            if len(rounds) > 1:
                ratio += f" ({min(rounds):.1f}-{max(rounds):.1f}x)"
        spread = (f" ({min(m[0] for m in measured):.2f}-{max(m[0] for m in measured):.2f})"
                  if len(measured) > 1 else "")
        print(f"{name:<{width}}  {seconds:8.2f} s{spread:<16}  {args.rows / seconds:12,.0f} "
              f"rows/s  {rss:8,.0f} MB  {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
