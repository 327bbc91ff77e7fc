"""Benchmark: a deployable model, ``framework package`` against ``mlflow models build-docker``.

    python benchmarks/package.py [--mlflow-python .venv-mlflow/bin/python]

The model is the breast-cancer pipeline (standard scaler + logistic regression), fitted with the
same code on each side: ours registered with its schema and input example, MLflow's saved with
``mlflow.sklearn.save_model``. Measured, each in the same run:

* **build**: ``python -m framework package bc@champion -o DIR``, once with an empty wheelhouse
  (pip downloads every locked wheel) and once with the wheelhouse of the first build; against
  ``mlflow models generate-dockerfile`` (the context ``build-docker`` builds, without a Docker
  daemon);
* **size**: our wheel and build context against MLflow's context;
* **the installed environment**: what each image adds to the same ``python:3.11-slim`` base.
  Ours is the Dockerfile's install step, run here into a fresh virtual environment (the same
  step ``package verify`` runs). MLflow's Dockerfile runs ``pip install mlflow==VERSION`` and
  then the model's ``requirements.txt``; the same two installs go into a fresh virtual
  environment with this machine's pip configuration. Its Dockerfile also installs nginx with apt,
  which is not counted here. Sizes are the bytes of every file in the environment.

MLflow lives in its own venv (``python3 -m venv .venv-mlflow && .venv-mlflow/bin/pip install
mlflow scikit-learn skops``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIT = """
import sys
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
"""
MLFLOW_SAVE = FIT + """
import mlflow.sklearn
mlflow.sklearn.save_model(model, sys.argv[1], input_example=X.head(3))
"""


def register(root: Path) -> None:
    """``bc`` v1 in ``root``, as the register stage records it (with its input example)."""
    sys.path.insert(0, str(REPO))
    from framework.monitor.profile import build, example_bytes
    from framework.registry import open_registry
    from framework.schema import infer_schema

    scope: dict = {}
    exec(FIT, scope)
    X, y, model = scope["X"], scope["y"], scope["model"]
    frame = X.assign(target=y)
    schema = infer_schema(X)
    profile, predictions = build(frame, schema=schema, target="target", model=model, test=frame)
    with open_registry(root) as reg:
        reg.register("bc", model, metrics={"roc_auc": 0.99}, input_schema=schema,
                     target="target", companions={
                         "profile": profile.to_bytes(), "test_predictions": predictions,
                         "input_example": example_bytes(frame, schema, "target")})


def run(cmd: list[str], **kwargs: object) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def mb(n: float) -> str:
    return f"{n / 1e3:,.1f} KB" if n < 1e6 else f"{n / 1e6:,.1f} MB"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mlflow-python", default=str(REPO / ".venv-mlflow" / "bin" / "python"))
    args = p.parse_args()
    mlflow_bin = Path(args.mlflow_python).parent / "mlflow"
    if not mlflow_bin.exists():
        raise SystemExit(f"no MLflow at {mlflow_bin}: python3 -m venv .venv-mlflow && "
                         ".venv-mlflow/bin/pip install mlflow scikit-learn skops")
    from framework.deploy.verify import _offline_env, install_command
    from framework.deploy.verify import folder_bytes as du

    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        work = Path(tmp)
        registry = work / "registry"
        register(registry)
        cli = [sys.executable, "-m", "framework", "package", "bc@champion",
               "--registry", str(registry)]
        cold = run([*cli, "-o", str(work / "cold")], cwd=work)
        warm = run([*cli, "-o", str(work / "warm"), "--wheelhouse",
                    str(work / "cold" / "wheelhouse")], cwd=work)
        wheel_size = next((work / "warm").glob("*.whl")).stat().st_size
        context = next((work / "warm").glob("*.tar.gz"))
        context_size = context.stat().st_size
        ours_ctx = work / "ctx"
        shutil.unpack_archive(context, ours_ctx)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(work / "ours")],
                       check=True)
        ours_install = run(install_command(work / "ours" / "bin" / "python", ours_ctx / "wheels",
                                           ours_ctx / "requirements.lock"), env=_offline_env())
        ours_env = du(work / "ours")
        print("ours done", flush=True)

        model_dir = work / "mlflow-model"
        run([args.mlflow_python, "-c", MLFLOW_SAVE, str(model_dir)])
        ml_build = run([str(mlflow_bin), "models", "generate-dockerfile", "-m", str(model_dir),
                        "-d", str(work / "mlflow-ctx")])
        version = subprocess.run([args.mlflow_python, "-c", "import mlflow; "
                                  "print(mlflow.__version__)"], capture_output=True,
                                 text=True).stdout.strip()
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(work / "theirs")],
                       check=True)
        pip = [sys.executable, "-m", "pip", "--python", str(work / "theirs" / "bin" / "python"),
               "install", "--quiet", "--disable-pip-version-check"]
        ml_install = run([*pip, f"mlflow=={version}"])
        ml_install += run([*pip, "-r", str(model_dir / "requirements.txt")])
        ml_env = du(work / "theirs")
        ml_ctx = du(work / "mlflow-ctx")
        print("MLflow done", flush=True)

    rows = [
        ("build, wheels downloaded", f"{cold:.1f} s", "", ""),
        ("build, wheelhouse reused", f"{warm:.1f} s", f"{ml_build:.1f} s",
         f"{ml_build / warm:.2f}x"),
        ("package (wheel)", mb(wheel_size), "", ""),
        ("build context", mb(context_size), mb(ml_ctx),
         "(ours carries every wheel: builds offline)"),
        ("install in the image", f"{ours_install:.1f} s", f"{ml_install:.1f} s",
         f"{ml_install / ours_install:.2f}x"),
        ("environment the image adds", mb(ours_env), mb(ml_env), f"{ml_env / ours_env:.2f}x"),
    ]
    print(f"\nbreast-cancer pipeline: framework package against MLflow {version} "
          "(generate-dockerfile, the context of build-docker)")
    width = max(len(r[0]) for r in rows)
    print(f"{'':<{width}}  {'ours':>12}  {'MLflow':>12}  ratio (MLflow / ours)")
    for name, a, b, ratio in rows:
        print(f"{name:<{width}}  {a:>12}  {b:>12}  {ratio}")
    print(json.dumps({"build_cold_s": cold, "build_warm_s": warm, "mlflow_build_s": ml_build,
                      "install_s": ours_install, "mlflow_install_s": ml_install,
                      "env_bytes": ours_env, "mlflow_env_bytes": ml_env}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
