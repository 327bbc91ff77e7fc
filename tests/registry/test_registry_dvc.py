"""The register stage inside a real ``dvc repro``: what ``dvc.lock`` holds when it runs."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from framework import registry
from registry_testlib import REGISTER_ARGS, input_schema

pytestmark = pytest.mark.dvc

TRAIN = '''\
import json, sys
import yaml
import skops.io as sio
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

C = yaml.safe_load(open("params.yaml"))["model"]["C"]
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)).fit(Xtr, ytr)
p = model.predict_proba(Xte)[:, 1]
sio.dump(model, "models/model.skops")
json.dump({"roc_auc": roc_auc_score(yte, p), "log_loss": log_loss(yte, p),
           "accuracy": accuracy_score(yte, p > 0.5)}, open("metrics/evaluate.json", "w"))
'''

PARAMS = """\
model: {{C: {C}}}
registry:
  path: .framework/registry
  model_name: breast_cancer
  primary_metric: roc_auc
  direction: maximize
  target: target
gates:
  - {{metric: roc_auc, min: 0.95}}
  - {{metric: accuracy, max_drop_vs_champion: 0.05}}
"""


def _run(cwd: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env.pop("FRAMEWORK_REGISTRY", None)
    out = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, f"{args}: {out.stdout}\n{out.stderr}"
    return out.stdout


def test_register_stage_in_dvc_repro(tmp_path: Path, dataset: object,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    py = shlex.quote(sys.executable)
    register_args = " ".join(REGISTER_ARGS)
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "params.yaml").write_text(PARAMS.format(C=1.0))
    for d in ("models", "metrics", "schemas"):
        (tmp_path / d).mkdir()
    (tmp_path / "schemas" / "features.json").write_text(json.dumps(input_schema(dataset)))
    (tmp_path / ".gitignore").write_text(".framework/\n")
    (tmp_path / "dvc.yaml").write_text(f"""\
stages:
  train:
    cmd: {py} train.py
    deps: [train.py]
    params: [model]
    outs: [models/model.skops]
    metrics:
      - metrics/evaluate.json: {{cache: false}}
  register:
    cmd: {py} -m framework register {register_args} --tag run=dvc
    deps: [models/model.skops, metrics/evaluate.json, schemas/features.json]
    params: [registry, gates]
    outs:
      - metrics/register.json: {{cache: false}}
""")
    _run(tmp_path, "git", "init", "-q")
    _run(tmp_path, sys.executable, "-m", "dvc", "init", "-q")
    _run(tmp_path, "git", "add", ".")
    _run(tmp_path, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm",
         "pipeline")
    head = _run(tmp_path, "git", "rev-parse", "HEAD").strip()

    out = _run(tmp_path, sys.executable, "-m", "dvc", "repro")
    assert "registered breast_cancer v1" in out and "promoted to champion" in out
    receipt = json.loads((tmp_path / ".framework/registry/receipts/breast_cancer.json")
                         .read_text())
    assert (receipt["version"], receipt["promoted"]) == (1, True)
    recorded = (tmp_path / "metrics" / "register.json").read_bytes()

    monkeypatch.chdir(tmp_path)
    mv = registry.resolve("breast_cancer@champion")
    lock = mv.lineage["dvc_lock"]
    # DVC writes a stage's lock entry as soon as it finishes: train is there, register is not yet
    assert set(lock["stages"]) == {"train"}
    assert set(lock["stages"]["train"]["outs"]) == {"models/model.skops", "metrics/evaluate.json"}
    assert all(len(md5) == 32 for md5 in lock["stages"]["train"]["outs"].values())
    assert mv.lineage["git"]["commit"] == head
    assert mv.lineage["tags"] == {"run": "dvc"}
    assert mv.metrics["roc_auc"] > 0.95

    # a gate change reruns register only: a second version; the lock now has both stages
    (tmp_path / "params.yaml").write_text(PARAMS.format(C=1.0).replace("min: 0.95", "min: 0.9"))
    out = _run(tmp_path, sys.executable, "-m", "dvc", "repro")
    assert "registered breast_cancer v2" in out and "challenger" in out
    v2 = registry.resolve("breast_cancer/2")
    assert v2.sha256 == mv.sha256 and v2.gates[0]["threshold"] == 0.9
    # the register stage's own entry is the previous run's: never recorded as this one's lineage
    assert set(v2.lineage["dvc_lock"]["stages"]) == {"train"}
    assert v2.lineage["dvc_lock"]["stages"]["train"] == lock["stages"]["train"]
    assert (tmp_path / "metrics" / "register.json").read_bytes() != recorded  # the gates
    assert registry.load("breast_cancer@champion").predict(dataset.data[:3]).shape == (3,)
