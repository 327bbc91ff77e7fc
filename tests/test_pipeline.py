"""End to end: `python -m framework` in a real git + DVC repository, as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, cli_env, run, run_cli

pytestmark = pytest.mark.dvc

STAGES = ["ingest", "split", "train", "evaluate"]
METRICS = {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
#: and the same per clinic (the grouping column of conf/dataset/breast_cancer.yaml)
GROUPED = {f"{m}@clinic={g}" for m in (*METRICS, "rows") for g in "ABC"}


def statuses(stdout: str) -> dict[str, str]:
    """Stage -> status, read from the summary table."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in ("✓", "·", "↺", "✗"):
            parts = parts[1:]
        if len(parts) >= 2 and parts[0] in STAGES and parts[1] in ("ran", "skipped", "restored", "failed"):
            found[parts[0]] = parts[1]
    return found


def test_run_rerun_and_change_one_param(dvc_project: Path) -> None:
    root = dvc_project
    proc = run_cli(root, check=True)
    assert statuses(proc.stdout) == dict.fromkeys(STAGES, "ran")
    metrics = json.loads((root / "metrics/evaluate.json").read_text())
    assert set(metrics) == METRICS | GROUPED
    assert metrics["roc_auc"] > 0.95
    assert sum(metrics[f"rows@clinic={g}"] for g in "ABC") == 143  # every test row, once
    for name in sorted(METRICS):
        assert name in proc.stdout  # the summary shows the metrics
    assert "registry breast_cancer v1: promoted to champion" in proc.stdout
    receipt = json.loads((root / ".framework/registry/receipts/breast_cancer.json").read_text())
    assert (receipt["version"], receipt["promoted"]) == (1, True)
    assert (root / "plots/confusion.csv").read_text().startswith("actual,predicted")
    assert (root / "plots/roc.csv").read_text().startswith("fpr,tpr,threshold")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "first run")

    # nothing changed: nothing reruns
    proc = run_cli(root, check=True)
    assert statuses(proc.stdout) == dict.fromkeys(STAGES, "skipped")

    # one param of the model: only train and evaluate rerun
    lock_before = yaml.safe_load((root / "dvc.lock").read_text())
    proc = run_cli(root, "model.C=0.05", check=True)
    assert statuses(proc.stdout) == {"ingest": "skipped", "split": "skipped", "train": "ran",
                                     "evaluate": "ran"}
    assert "registry breast_cancer v2:" in proc.stdout
    lock_after = yaml.safe_load((root / "dvc.lock").read_text())
    for name in ("ingest", "split"):
        assert lock_after["stages"][name] == lock_before["stages"][name]
    assert lock_after["stages"]["train"]["params"]["params.yaml"]["model"]["C"] == 0.05

    # DVC's own commands work on the generated files
    assert run(root, "dvc", "status").stdout.strip() == "Data and pipelines are up to date."
    diff = run(root, "dvc", "params", "diff").stdout
    assert "model.C" in diff and "1.0" in diff and "0.05" in diff
    dag = run(root, "dvc", "dag").stdout
    assert all(name in dag for name in STAGES)
    shown = run(root, "dvc", "metrics", "show", "--json").stdout
    assert "roc_auc" in shown
    run(root, "dvc", "plots", "show", "-o", "dvc_plots")
    html = (root / "dvc_plots/index.html").read_text()
    assert "plots_confusion_csv" in html and "plots_roc_csv" in html
    assert "Confusion matrix (test set)" in html and "ROC curve (test set)" in html

    # another model from its config group
    proc = run_cli(root, "model=random_forest", check=True)
    assert statuses(proc.stdout)["train"] == "ran"
    assert yaml.safe_load((root / "params.yaml").read_text())["model"]["n_estimators"] == 200

    # another test set: the champion is scored again on it, and compared on the same rows
    run_cli(root, "split.test_size=0.3", check=True)
    decision = json.loads((root / ".framework/registry/receipts/breast_cancer.json").read_text())
    assert decision["compared_with"]["rescored"] is True
    assert decision["compared_with"]["test_set"].startswith("data/test.parquet (sha256 ")
    assert any("scored on this run's test set" in r for r in decision["reasons"])


def test_schema_violation_stops_the_stage_and_loses_nothing(dvc_project: Path) -> None:
    root = dvc_project
    run_cli(root, check=True)
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "first run")
    lock = (root / "dvc.lock").read_bytes()

    schema_path = root / "schemas/features.json"
    schema = json.loads(schema_path.read_text())
    schema["properties"]["mean_radius"]["maximum"] = 15.0
    schema_path.write_text(json.dumps(schema, indent=2))
    proc = run_cli(root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = proc.stderr
    assert "stage 'ingest', output 'raw' (data/raw.parquet)" in message
    assert "mean_radius" in message and "maximum" in message
    assert statuses(proc.stdout)["ingest"] == "failed"
    assert (root / "dvc.lock").read_bytes() == lock
    assert not list((root / "data").glob("*.tmp")) and not list((root / "data").glob(".*.tmp"))
    # DVC removed the output before the stage ran; the previous one is back from its cache
    assert "restored data/raw.parquet as dvc.lock records them: the workspace matches " \
           "dvc.lock" in proc.stderr
    assert outputs_match_lock(root) == []


def outputs_match_lock(root: Path) -> list[str]:
    """The outputs whose bytes are not those dvc.lock records (or that are missing)."""
    import hashlib

    wrong = []
    for name, stage in yaml.safe_load((root / "dvc.lock").read_text())["stages"].items():
        for out in stage.get("outs", []):
            path = root / out["path"]
            if not path.exists() or hashlib.md5(path.read_bytes()).hexdigest() != out["md5"]:
                wrong.append(f"{name}: {out['path']}")
    return wrong


@pytest.mark.parametrize("break_it, stage", [
    (lambda root: ["+model.l1_ratio=1"], "train"),  # scikit-learn refuses it when fitting
    (lambda root: _require_a_metric(root), "evaluate"),  # its metrics break their schema
], ids=["train", "evaluate"])
def test_a_failed_stage_leaves_the_workspace_as_dvc_lock_records_it(dvc_project: Path,
                                                                   break_it, stage) -> None:
    root = dvc_project
    run_cli(root, check=True)
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "first run")
    lock = (root / "dvc.lock").read_bytes()
    overrides = break_it(root) or []
    proc = run_cli(root, *overrides)
    assert proc.returncode in (1, 2), proc.stdout + proc.stderr
    assert statuses(proc.stdout)[stage] == "failed"
    assert (root / "dvc.lock").read_bytes() == lock
    assert "the workspace matches dvc.lock" in proc.stderr
    assert outputs_match_lock(root) == []
    status = run(root, "git", "status", "--porcelain").stdout.splitlines()
    assert not any("metrics/evaluate.json" in line for line in status)  # the git-tracked metrics


#: A first line for `train` that kills the stage's process, as an out-of-memory killer would.
_KILL_ITSELF = "    import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n"
#: A first line for `train` that says it started and then takes long enough to be interrupted.
_WAIT = "    import pathlib, time; pathlib.Path('train.started').touch(); time.sleep(60)\n"


@pytest.mark.parametrize("first_line", [_KILL_ITSELF, _WAIT], ids=["killed", "interrupted"])
def test_a_killed_or_interrupted_stage_leaves_the_workspace_as_dvc_lock_records_it(
        dvc_project: Path, first_line: str) -> None:
    """A stage whose process dies, and a run stopped by Ctrl-C while a stage runs: DVC has
    removed the stage's outputs before running it, and the run puts them back."""
    import os
    import signal
    import sys
    import time

    root = dvc_project
    run_cli(root, check=True)
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "first run")
    lock = (root / "dvc.lock").read_text()
    source = root / "pipelines" / "tabular.py"
    text = source.read_text()
    head = '    column but the target and ``exclude_from_features``)."""\n'  # train's docstring ends
    assert head in text
    source.write_text(text.replace(head, head + first_line))
    proc = subprocess.Popen([sys.executable, "-m", "framework"], cwd=root, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    if first_line is _WAIT:
        deadline = time.monotonic() + 120
        while not (root / "train.started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        assert not (root / "models" / "model.skops").exists()  # DVC removed it to run train
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    stdout, stderr = proc.communicate(timeout=120)
    if first_line is _WAIT:
        assert proc.returncode == 130, stdout + stderr
        assert "interrupted in stage 'train'" in stderr
    else:
        assert proc.returncode == 1, stdout + stderr
        assert statuses(stdout)["train"] == "failed"
    # the stages before it ran with the edited file and are recorded; train's entry is the old one
    assert yaml.safe_load((root / "dvc.lock").read_text())["stages"]["train"] == \
        yaml.safe_load(lock)["stages"]["train"]
    assert "restored models/model.skops" in stderr and "the workspace matches dvc.lock" in stderr
    assert outputs_match_lock(root) == []
    assert not list(root.glob("models/*.tmp")) and not list(root.glob("models/.*.tmp"))


WHO = '''
import os

def _cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\\0", b" ").decode()

def _seen():
    return {"seen": {"pid": os.getpid(), "parent": os.getppid(), "cmd": _cmdline(os.getpid()),
                     "parent_cmd": _cmdline(os.getppid())}}

def who(raw):
    return _seen()

def who_too(raw):
    return _seen()
'''


def test_a_runs_stages_share_one_warm_parent_and_plain_dvc_runs_them_alone(
        dvc_project: Path) -> None:
    root = dvc_project
    (root / "pipelines/who.py").write_text(WHO)
    pipeline = root / "conf/pipeline/tabular_classification.yaml"
    pipeline.write_text(pipeline.read_text() + "".join(
        f"  {name}:\n    run: pipelines.who.{name}\n    ins: {{raw: ingest.raw}}\n"
        f"    outs: {{seen: {{path: metrics/{name}.json}}}}\n" for name in ("who", "who_too")))
    run_cli(root, check=True)
    first, second = (json.loads((root / f"metrics/{n}.json").read_text()) for n in
                     ("who", "who_too"))
    assert first["pid"] != second["pid"]  # each stage a process of its own ...
    assert first["parent"] == second["parent"]  # ... forked by the one warm process
    assert "framework" in first["parent_cmd"] and "dvc" not in first["parent_cmd"]
    run(root, "dvc", "repro", "-f", "who", "who_too")
    first = json.loads((root / "metrics/who.json").read_text())
    # plain DVC: the stage ran in the process of the command dvc.yaml holds (whether dvc
    # started it directly or through /bin/sh), not in a child forked from a warm process
    assert " stage who " in first["cmd"], first
    # a warm process that cannot be reached: the command runs the stage itself
    proc = subprocess.run([*cli_env_command(), "stage", "who", "--run", "pipelines.who.who",
                           "--in", "raw=data/raw.parquet", "--out", "seen=metrics/who.json"],
                          cwd=root, env={**cli_env(), "FRAMEWORK_STAGE_SERVER": "/nonexistent"},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def cli_env_command() -> list[str]:
    import sys

    return [sys.executable, "-m", "framework"]


def _require_a_metric(root: Path) -> list[str]:
    path = root / "schemas/metrics.json"
    schema = json.loads(path.read_text())
    schema["required"] = [*schema.get("required", []), "brier"]
    path.write_text(json.dumps(schema, indent=2))
    return []


def test_a_fresh_clones_first_run_leaves_git_status_clean(dvc_project: Path,
                                                          tmp_path: Path) -> None:
    """The same config on the same data gives the same bytes for every output DVC records:
    the model (skops, canonical), the tables, the plots, the metrics and the register step's
    receipt, so the committed dvc.lock is what a new clone produces."""
    root = dvc_project
    run_cli(root, "compile", check=True)
    run(root, "dvc", "repro")  # plain DVC: every stage a process of its own, as in CI
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "first run")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(root), str(clone))
    proc = run_cli(clone, check=True)  # the stages in the warm process: the same bytes
    assert statuses(proc.stdout) == dict.fromkeys(STAGES, "ran")  # no cache in a new clone
    assert "registry breast_cancer v1: promoted to champion" in proc.stdout  # its own registry
    assert run(clone, "git", "status", "--porcelain").stdout == ""
    # and a run with nothing changed registers nothing new
    assert "registry" not in run_cli(clone, check=True).stdout.split("metrics")[-1]


def test_ci_recipe_in_a_fresh_clone(dvc_project: Path, tmp_path: Path) -> None:
    root = dvc_project
    shutil.copytree(REPO / ".github", root / ".github")
    run_cli(root, "compile", check=True)
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "compiled")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(root), str(clone))

    workflow = yaml.safe_load((clone / ".github/workflows/pipeline.yml").read_text())
    steps = [s["run"] for s in workflow["jobs"]["reproduce"]["steps"] if "run" in s]
    assert steps[0].startswith("pip install")  # the environment is this one, already installed
    assert steps[-1] == "dvc metrics diff main"  # needs main's metrics: not run here
    for step in steps[1:-1]:
        proc = subprocess.run(step, shell=True, cwd=clone, env=cli_env(), capture_output=True, text=True)
        assert proc.returncode == 0, f"{step}:\n{proc.stdout}\n{proc.stderr}"
    assert set(json.loads((clone / "metrics/evaluate.json").read_text())) == METRICS | GROUPED


def test_with_a_dvc_remote_a_new_clone_reruns_nothing(dvc_project: Path, tmp_path: Path,
                                                     postgres: object) -> None:
    """The README's CI recipe with a local folder remote and a shared registry: you run and
    push; a fresh clone pulls and runs the workflow's steps, and no stage of the pipeline
    reruns; its register step finds your version in the shared registry and adds none."""
    import os

    root = dvc_project
    shutil.copytree(REPO / ".github", root / ".github")
    url = postgres.create_database()  # type: ignore[attr-defined]
    env = {**cli_env(), "FRAMEWORK_REGISTRY_URL": url}
    run(root, "dvc", "remote", "add", "-d", "store", str(tmp_path / "dvc-store"))

    def sh(where: Path, command: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(command, shell=True, cwd=where, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, f"{command}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    first = sh(root, "python -m framework")
    assert "registry breast_cancer v1: promoted to champion" in first.stdout
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "train")
    sh(root, "dvc push")

    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(root), str(clone))
    workflow = yaml.safe_load((clone / ".github/workflows/pipeline.yml").read_text())
    steps = [s["run"] for s in workflow["jobs"]["reproduce"]["steps"] if "run" in s]
    repro = ""
    for step in steps[1:-1]:  # as CI runs them (pip install: this environment; diff: main's)
        out = sh(clone, step)
        if step == "dvc repro":
            repro = out.stdout + out.stderr
    for stage in STAGES:
        assert f"'{stage}' didn't change, skipping" in repro, repro
    assert "Running stage 'train'" not in repro
    decision = json.loads(
        (clone / ".framework/registry/receipts/breast_cancer.json").read_text())
    assert decision["version"] == 1 and decision["unchanged"], decision  # v1 of the shared one
    assert run(clone, "git", "status", "--porcelain", "--untracked-files=no").stdout == ""
    assert "up to date" in sh(clone, "dvc status").stdout.lower()
    assert os.listdir(tmp_path / "dvc-store")  # the remote holds the outputs


@pytest.mark.parametrize("template, model, metric, experiment", [
    ("regression", "diabetes", "rmse", "tune_ridge"),
    ("classification", "wine", "f1_macro", "tune_forest"),
])
def test_an_init_project_runs_the_whole_tour(tmp_path: Path, template: str, model: str,
                                              metric: str, experiment: str) -> None:
    """Every verb of the README's tour in a project made by init: run, rerun, sweep, sweep
    show, DVC experiments, serve, schema."""
    root = tmp_path / "new"
    root.mkdir()
    run(root, "git", "init", "-q")
    proc = run_cli(root, "init", "--template", template, check=True)
    assert "dvc init" in proc.stdout
    assert (root / "conf/config.yaml").is_file() and (root / "pipelines/stages.py").is_file()
    assert (root / f"conf/experiment/{experiment}.yaml").is_file()
    ignored = (root / ".gitignore").read_text().splitlines()
    assert (root / "dvc.yaml").is_file() and {".framework/", "dist/"} <= set(ignored)
    proc = run_cli(root, check=True)
    assert metric in json.loads((root / "metrics/evaluate.json").read_text())
    assert f"registry {model} v1: promoted to champion" in proc.stdout
    assert not (root / "outputs").exists() and not list(root.glob("*.log"))  # nothing unasked
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "first run")

    proc = run_cli(root, f"+experiment={experiment}", "--save-dvc-experiments", check=True)
    assert "★" in proc.stdout and "sweep promote" in proc.stdout
    assert not (root / "multirun").exists()
    shown = json.loads(run_cli(root, "sweep", "show", "--json", check=True).stdout)
    assert shown["winner"] is not None and all(t["status"] == "ok" for t in shown["trials"])
    # trials are candidates (one may be the champion itself, registered before): no alias moved
    assert {t["decision"] for t in shown["trials"]} <= {"candidate", "promoted"}
    listing = json.loads(run_cli(root, "registry", "list", "--json", check=True).stdout)
    assert listing["models"][0]["aliases"] == {"champion": 1}
    assert "exp" in run(root, "dvc", "exp", "show", "--no-pager").stdout.lower()

    import os
    import signal
    import urllib.request

    import pandas as pd

    proc = run_cli(root, "serve", f"{model}@champion", "--port", "0", "--detach", check=True)
    url = proc.stdout.splitlines()[0].rsplit(" ", 1)[1]
    pid = int(next((root / ".framework/serve").glob("*.pid")).read_text())
    try:
        target = yaml.safe_load((root / "params.yaml").read_text())["dataset"]["target"]
        frame = pd.read_parquet(root / "data/test.parquet").drop(columns=[target]).head(3)
        body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
        request = urllib.request.Request(f"{url}/invocations", body,
                                         {"Content-Type": "application/json"})
        predictions = json.loads(urllib.request.urlopen(request, timeout=30).read())
        assert len(predictions["predictions"]) == 3
    finally:
        os.kill(pid, signal.SIGINT)
    run_cli(root, "schema", "infer", "data/raw.parquet", "-o", "schemas/inferred.json",
            check=True)
    assert run_cli(root, "schema", "check", "data/raw.parquet",
                   "schemas/features.json").returncode == 0
    proc = run_cli(root, "model=random_forest", check=True)
    assert "train" in proc.stdout
    again = run_cli(root, "init")
    assert again.returncode == 2 and "never overwrites" in again.stderr
