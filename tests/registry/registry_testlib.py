"""Helpers shared by the registry tests (imported as a plain module, not collected)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
WORKER = HERE / "worker.py"

PARAMS_TEMPLATE = """\
seed: 0
model:
  _target_: sklearn.linear_model.LogisticRegression
  C: {C}
registry:
  path: .framework/registry
  model_name: breast_cancer
  primary_metric: roc_auc
  direction: maximize
  target: target
gates:
  - {{metric: roc_auc, min: 0.95}}
  - {{metric: log_loss, max: 0.2}}
  - {{metric: accuracy, max_drop_vs_champion: 0.005}}
"""


def input_schema(dataset: Any) -> dict[str, Any]:
    props = {c: {"type": "number"} for c in dataset.data.columns}
    props["target"] = {"type": "integer", "enum": [0, 1]}
    return {"type": "object", "properties": props, "required": list(props)}


def make_project(root: Path, model_file: Path, dataset: Any, *,
                 metrics: dict[str, float] | None = None, C: float = 1.0,
                 params_text: str | None = None) -> Path:
    """A project folder as the register stage sees it inside ``dvc repro``."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "metrics").mkdir(exist_ok=True)
    (root / "schemas").mkdir(exist_ok=True)
    (root / "models" / "model.skops").write_bytes(model_file.read_bytes())
    write_metrics(root, metrics or {"roc_auc": 0.99, "log_loss": 0.1, "accuracy": 0.97})
    (root / "schemas" / "features.json").write_text(json.dumps(input_schema(dataset)))
    (root / "params.yaml").write_text(params_text or PARAMS_TEMPLATE.format(C=C))
    return root


def write_metrics(root: Path, metrics: dict[str, float]) -> None:
    (root / "metrics" / "evaluate.json").write_text(json.dumps(metrics))


REGISTER_ARGS = ["--model", "models/model.skops", "--metrics", "metrics/evaluate.json",
                 "--input-schema", "schemas/features.json", "--receipt", "metrics/register.json"]


def run_framework(cwd: Path, *args: str, env: dict[str, str] | None = None,
                  timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m framework ARGS`` in ``cwd``, as a user would run it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWORK_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "framework", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
