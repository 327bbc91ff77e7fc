"""Sweeps: `python -m framework +experiment=x` and `-m key=a,b`, run as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from framework.sweep.warm import looks_like_sweep
from tests.conftest import cli_env, run, run_cli


def show(root: Path, *args: str) -> dict:
    proc = run_cli(root, "sweep", "show", *args, "--json", check=True)
    return json.loads(proc.stdout)


def test_grid_sweep_records_registers_and_shares_stages(project: Path) -> None:
    proc = run_cli(project, "-m", "model.C=0.01,0.1,1", check=True)
    assert "shared stages ran once for the sweep: ingest, split" in proc.stdout
    assert proc.stdout.count("✓ model.C=") == 3  # a progress line per trial
    data = show(project)
    trials = data["trials"]
    assert [t["status"] for t in trials] == ["ok"] * 3
    assert sorted(t["version"] for t in trials) == [1, 2, 3]  # each trial registered
    assert all(set(t["metrics"]) >= {"roc_auc", "accuracy", "log_loss"} for t in trials)
    # the winner is the best trial on the primary metric among those that passed the gates
    passing = [t for t in trials if t["gates_passed"]]
    best = max(passing, key=lambda t: t["metrics"]["roc_auc"])
    assert data["winner"] == best["index"]
    table = run_cli(project, "sweep", "show", check=True).stdout
    assert "★" in table and "roc_auc" in table

    # a trial's params are exactly what the compiler writes to params.yaml for its overrides
    run_cli(project, "compile", "model.C=0.1", check=True)
    compiled = yaml.safe_load((project / "params.yaml").read_text())
    trial = next(t for t in trials if t["overrides"] == ["model.C=0.1"])
    assert trial["params"] == compiled


def test_optuna_sweep_declared_in_an_experiment_file(project: Path) -> None:
    proc = run_cli(project, "+experiment=optuna_logreg", "hydra.sweeper.n_trials=4", check=True)
    assert "[  4/4]" in proc.stdout
    data = show(project)
    assert data["sweep"]["id"].startswith("optuna_logreg-")
    values = [t["params"]["model"]["C"] for t in data["trials"]]
    assert len(set(values)) == 4 and all(0.001 <= c <= 100 for c in values)  # sampled, in bounds
    assert all(t["status"] == "ok" and t["version"] for t in data["trials"])
    # the experiment's trial params are what the compiler writes for the same overrides
    trial = data["trials"][0]
    run_cli(project, "compile", "+experiment=optuna_logreg", *trial["overrides"], check=True)
    assert trial["params"] == yaml.safe_load((project / "params.yaml").read_text())


def test_failed_trial_is_recorded_and_the_sweep_goes_on(project: Path) -> None:
    # l1_ratio=1 asks lbfgs for an l1 penalty: scikit-learn refuses it when fitting
    proc = run_cli(project, "-m", "+model.l1_ratio=0,1")
    assert proc.returncode == 0, proc.stderr
    trials = {t["overrides"][0]: t for t in show(project)["trials"]}
    assert trials["+model.l1_ratio=0"]["status"] == "ok"
    failed = trials["+model.l1_ratio=1"]
    assert failed["status"] == "failed" and "only 'l2' or None penalties" in failed["error"]
    assert "failed" in run_cli(project, "sweep", "show", check=True).stdout


def test_sweep_outside_its_range_is_refused_before_anything_runs(project: Path) -> None:
    proc = run_cli(project, "-m", "model.C=0.1,100000")
    assert proc.returncode == 2
    assert ("command line override 'model.C=0.1,100000': model.C = 100000 is above its range "
            "maximum 10000.0 (ranges.model.C)") in proc.stderr
    experiment = project / "conf/experiment/wide.yaml"
    experiment.write_text("# @package _global_\nhydra:\n  mode: MULTIRUN\n  sweeper:\n"
                          "    params:\n      split.test_size: 0.2,0.7\n")
    proc = run_cli(project, "+experiment=wide")
    assert proc.returncode == 2
    assert ("conf/experiment/wide.yaml: hydra.sweeper.params.split.test_size: split.test_size = "
            "0.7 is above its range maximum 0.5") in proc.stderr
    assert not (project / ".framework/sweeps").exists()
    assert not (project / ".framework/registry").exists()


def start_sweep(root: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m framework ARGS`` in a process group of its own (the sweep's processes)."""
    return subprocess.Popen([sys.executable, "-m", "framework", *args], cwd=root, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def read_until_trials(proc: subprocess.Popen[str], count: int) -> list[str]:
    """The lines printed until ``count`` trials have finished."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        lines.append(line)
        if sum(x.startswith("[") and " ✓ " in x for x in lines) == count \
                or time.monotonic() > deadline:
            break
    return lines


def group_ends(pgid: int, within: float = 30.0) -> bool:
    """Whether every process of the group has ended within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_looks_like_sweep_decides_on_the_command_line_alone(project: Path) -> None:
    conf = project / "conf"
    assert looks_like_sweep(conf, ["+experiment=tune_logreg"])  # the file sets MULTIRUN
    assert looks_like_sweep(conf, ["-m", "model.C=0.1,1"])
    assert looks_like_sweep(conf, ["hydra.mode=MULTIRUN"])
    assert not looks_like_sweep(conf, [])
    assert not looks_like_sweep(conf, ["model=random_forest", "model.n_estimators=10"])
    assert not looks_like_sweep(conf, ["+experiment=tune_logreg", "--cfg", "job"])
    assert not looks_like_sweep(conf, ["+experiment=no_such_file"])


def test_experiment_sweep_resumes_after_a_kill(project: Path) -> None:
    proc = start_sweep(project, "+experiment=tune_logreg", "sweep.jobs=1")
    lines = read_until_trials(proc, 3)
    proc.send_signal(signal.SIGKILL)  # the main process only, as an out-of-memory killer would
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()
    assert sum(" ✓ " in line for line in lines) == 3, "".join(lines)
    assert group_ends(proc.pid)  # the sweep's other processes notice, and end
    done_before = show(project)["trials"]
    assert 3 <= len(done_before) < 20

    again = run_cli(project, "+experiment=tune_logreg", check=True)
    assert again.stdout.count("(recorded earlier)") == len(done_before)
    data = show(project)
    assert len(data["trials"]) == 20 and all(t["status"] == "ok" for t in data["trials"])
    versions = [t["version"] for t in data["trials"]]
    assert len(set(versions)) == 20  # no trial registered twice
    assert data["sweep"]["id"].startswith("tune_logreg-")


def test_an_experiment_chosen_in_the_defaults_list_sweeps_too(project: Path) -> None:
    # nothing on the command line says "sweep": no warm process, the trials run from the main one
    config = project / "conf/config.yaml"
    text = config.read_text()
    config.write_text(text.replace("  - override hydra/sweeper:",
                                   "  - experiment: tune_logreg\n  - override hydra/sweeper:", 1))
    assert not looks_like_sweep(project / "conf", [])
    proc = run_cli(project, check=True)
    assert "shared stages ran once for the sweep: ingest, split" in proc.stdout
    trials = show(project)["trials"]
    assert len(trials) == 20 and all(t["status"] == "ok" and t["version"] for t in trials)


def test_ctrl_c_stops_the_sweep_cleanly_and_it_resumes(project: Path) -> None:
    proc = start_sweep(project, "+experiment=tune_logreg")
    lines = read_until_trials(proc, 2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest
    assert proc.returncode == 130, output
    assert "interrupted:" in output and "the same command resumes it" in output
    assert "Traceback" not in output
    assert group_ends(proc.pid)
    recorded = len(show(project)["trials"])
    assert 2 <= recorded < 20
    again = run_cli(project, "+experiment=tune_logreg", check=True)
    assert again.stdout.count("(recorded earlier)") == recorded
    assert len(show(project)["trials"]) == 20


def test_apply_writes_the_winner_into_conf_and_dvc_repro_reproduces_it(dvc_project: Path) -> None:
    root = dvc_project
    proc = run_cli(root, "-m", "model.C=0.02,0.05", "split.test_size=0.3", "--save-dvc-experiments",
                   check=True)
    assert "saved 2 DVC experiments" in proc.stdout
    listed = json.loads(run(root, "dvc", "exp", "show", "--json").stdout)
    experiments = [e["name"] for base in listed for e in (base.get("experiments") or [])]
    assert sorted(experiments) == [f"{show(root)['sweep']['id']}-000", f"{show(root)['sweep']['id']}-001"]
    assert run(root, "git", "status", "--porcelain").stdout.strip() == ""  # workspace untouched
    data = show(root)
    best = next(t for t in data["trials"] if t["index"] == data["winner"])
    proc = run_cli(root, "sweep", "apply", check=True)
    assert "conf/model/logistic_regression.yaml: C: 1.0 ->" in proc.stdout
    assert "conf/config.yaml: split.test_size: 0.25 -> 0.3" in proc.stdout
    model_file = (root / "conf/model/logistic_regression.yaml").read_text()
    assert f"C: {best['params']['model']['C']}" in model_file
    assert "# The default pipeline" in (root / "conf/config.yaml").read_text()  # comments kept
    assert run_cli(root, "compile", "--check").returncode == 0
    run(root, "dvc", "repro")
    metrics = json.loads((root / "metrics/evaluate.json").read_text())
    assert metrics == best["metrics"]


def test_a_hostile_model_input_fails_every_trial_and_runs_nothing(project: Path) -> None:
    """A trial's stage reads a model file from outside the pipeline: every trial refuses it by
    name, in the sweep's own workers, and the file's code never runs."""
    from tests.trustlib import runstring_model

    marker = project / "MARKER"
    runstring_model(project / "models/reference.skops", marker)
    (project / "pipelines/reference.py").write_text(
        "def baseline(reference, test, *, target, model):\n"
        "    return {'score': {'accuracy': float(reference.score(test.drop(columns=[target]),"
        " test[target]))}}\n")
    pipeline = project / "conf/pipeline/tabular_classification.yaml"
    pipeline.write_text(pipeline.read_text() + (
        "  baseline:\n"
        "    run: pipelines.reference.baseline\n"
        "    params: [dataset.target, model]\n"
        "    ins: {reference: {path: models/reference.skops}, test: split.test}\n"
        "    outs: {score: {path: metrics/baseline.json}}\n"))
    proc = run_cli(project, "-m", "model.C=0.1,1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    trials = show(project)["trials"]
    assert [t["status"] for t in trials] == ["failed", "failed"]
    assert all("refusing" in t["error"] and "runstring" in t["error"] for t in trials)
    assert not marker.exists()


def test_a_killed_sweeps_temporary_files_are_removed_and_one_run_at_a_time(
        project: Path) -> None:
    from framework.errors import UsageError
    from framework.sweep.store import SweepStore

    run_cli(project, "-m", "model.C=0.1,1", check=True)
    sweep_id = show(project)["sweep"]["id"]
    leftover = project / ".framework/sweeps" / sweep_id / "trial-001" / ".model.skops.x1y2.tmp"
    leftover.write_bytes(b"half a model")  # what a SIGKILL in the middle of a save leaves
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from framework.sweep.store import SweepStore; "
         f"SweepStore(Path({str(project)!r}), {sweep_id!r}).acquire(); print('held', flush=True);"
         " time.sleep(60)"], cwd=project, env=cli_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not leftover.exists()  # removed by the run that took the lock
        leftover.write_bytes(b"half a model")
        try:
            SweepStore(project, sweep_id).acquire()
        except UsageError as exc:
            assert f"sweep {sweep_id} is running in another process" in str(exc)
        else:
            raise AssertionError("a second run of the sweep took its lock")
        assert leftover.exists()  # nothing touched while the other run holds it
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    proc = run_cli(project, "-m", "model.C=0.1,1", check=True)  # resumes: both trials recorded
    assert "all 2 trials were recorded earlier: nothing ran" in proc.stdout
    assert not leftover.exists()


def test_a_sweep_never_moves_the_champion_and_promote_gates_its_winner(
        dvc_project: Path) -> None:
    project = dvc_project
    run_cli(project, "model.C=0.01", check=True)  # a weak champion, v1
    run_cli(project, "-m", "model.C=0.1,0.3", check=True)
    listing = json.loads(run_cli(project, "registry", "list", "--json", check=True).stdout)
    (model,) = listing["models"]
    assert model["aliases"] == {"champion": 1}  # the trials beat it; they are only candidates
    assert [v["status"] for v in model["versions"]][1:] == ["candidate", "candidate"]
    data = show(project)
    best = next(t for t in data["trials"] if t["index"] == data["winner"])
    proc = run_cli(project, "sweep", "promote", check=True)
    assert f"running the winner of {data['sweep']['id']}: python -m framework " \
           f"{best['overrides'][0]}" in proc.stdout
    # the winner's run trains the same bytes as its trial: that version is judged, not a new one
    assert f"registry breast_cancer v{best['version']}: promoted to champion" in proc.stdout
    listing = json.loads(run_cli(project, "registry", "list", "--json", check=True).stdout)
    assert listing["models"][0]["aliases"] == {"champion": best["version"]}
    assert len(listing["models"][0]["versions"]) == 3


def test_ties_put_the_trial_that_passes_its_gates_first() -> None:
    from framework.sweep.store import TrialResult, ranked, winner

    rejected = TrialResult(index=0, overrides=["a=1"], status="ok", metrics={"m": 0.9},
                           gates_passed=False)
    passing = TrialResult(index=1, overrides=["a=2"], status="ok", metrics={"m": 0.9},
                          gates_passed=True)
    failed = TrialResult(index=2, overrides=["a=3"], status="failed")
    assert [r.index for r in ranked([rejected, failed, passing], "m", "maximize")] == [1, 0, 2]
    assert winner([rejected, passing], "m", "maximize") is passing


def test_a_shared_stage_that_raises_is_one_clear_error(project: Path) -> None:
    """With one trial every stage is shared, and runs in the sweep's warm process: the user's
    error crosses back to the command as the stage's message, not as a pickling traceback."""
    proc = run_cli(project, "-m", "model.C=0.1", "+model.l1_ratio=1")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: stage 'train': pipelines.tabular.train raised "
                                  "ValueError"), proc.stderr
    assert 'File "pipelines/tabular.py"' in proc.stderr and "Traceback" not in proc.stderr
