"""Sweeps through submitit, on its local executor (the same job files and pickles a SLURM
cluster gets, run as local processes): the same trial table as the local launcher."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import copy_project, run_cli
from tests.test_sweep import show

pytestmark = pytest.mark.dvc

SUBMITIT = ("sweep.launcher=submitit", "sweep.submitit.cluster=local")


def _trials(root: Path) -> dict[str, dict[str, float]]:
    data = show(root)
    assert all(t["status"] == "ok" for t in data["trials"]), data["trials"]
    return {" ".join(t["overrides"]): t["metrics"] for t in data["trials"]}


def test_a_sweep_through_submitit_gives_the_local_launchers_trial_table(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    sweep = "model.C=0.01,1"
    local = copy_project(tmp_path / "local")
    run_cli(local, "-m", sweep, check=True)
    jobs = copy_project(tmp_path / "jobs")
    proc = run_cli(jobs, "-m", sweep, *SUBMITIT, check=True)
    assert proc.stdout.count("✓ model.C=") == 2
    assert _trials(jobs) == _trials(local)
    assert list((jobs / ".framework/submitit").glob("*/*_submitted.pkl"))  # real job files


def test_a_failing_job_is_recorded_and_a_bad_block_is_a_config_error(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    root = copy_project(tmp_path / "p")
    run_cli(root, "-m", "model.C=0.1,1", "+model.l1_ratio=1", *SUBMITIT)
    trials = show(root)["trials"]
    assert [t["status"] for t in trials] == ["failed", "failed"]
    assert "l1" in trials[0]["error"]
    proc = run_cli(root, "-m", "model.C=0.1,1", "sweep.launcher=submitit",
                   "sweep.submitit.cluster=slurmm")
    assert proc.returncode == 2
    assert "sweep.submitit.cluster: expected slurm, local or null" in proc.stderr
