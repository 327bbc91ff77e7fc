"""Sweeps on a real Ray cluster: ``ray start --head`` on 127.0.0.1 in a temporary folder, the
same sweep on it and on the local launcher, the same trial table; stopped at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cli_env, copy_project, run_cli
from tests.test_sweep import show

pytestmark = pytest.mark.dvc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """The address of a one-node Ray cluster started for these tests."""
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).parent / "ray"
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths
    port = _free_port()
    # Token authentication with a token of its own, given to the cluster and to every client
    # (the sweeps inherit the environment): nothing depends on a ~/.ray/auth_token left by
    # another cluster, and no other process can use this one.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    env = cli_env()
    subprocess.run([str(ray_bin), "start", "--head", "--node-ip-address=127.0.0.1",
                    f"--port={port}", "--num-cpus=2", f"--temp-dir={temp}",
                    "--include-dashboard=false", "--disable-usage-stats"],
                   env=env, check=True, capture_output=True, text=True, timeout=180)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True,
                       timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _trials(root: Path) -> dict[str, dict[str, float]]:
    data = show(root)
    assert all(t["status"] == "ok" for t in data["trials"]), data["trials"]
    return {" ".join(t["overrides"]): t["metrics"] for t in data["trials"]}


def test_a_sweep_on_ray_gives_the_local_launchers_trial_table(ray_cluster: str,
                                                              tmp_path: Path) -> None:
    sweep = "model.C=0.01,0.1,1"
    local = copy_project(tmp_path / "local")
    run_cli(local, "-m", sweep, check=True)
    on_ray = copy_project(tmp_path / "ray")
    proc = run_cli(on_ray, "-m", sweep, "sweep.launcher=ray",
                   f"sweep.ray.address={ray_cluster}", check=True)
    assert "shared stages ran once for the sweep: ingest, split" in proc.stdout
    assert proc.stdout.count("✓ model.C=") == 3  # each trial recorded as it finished
    assert _trials(on_ray) == _trials(local)  # same seeds, same metrics, to the last digit
    registered = run_cli(on_ray, "registry", "list", "--json", check=True).stdout
    assert '"candidate"' in registered
    again = run_cli(on_ray, "-m", sweep, "sweep.launcher=ray",
                    f"sweep.ray.address={ray_cluster}", check=True)
    assert "recorded earlier" in again.stdout  # the same command resumes: nothing reruns


def test_optunas_batches_run_as_ray_tasks(ray_cluster: str, tmp_path: Path) -> None:
    root = copy_project(tmp_path / "p")
    proc = run_cli(root, "+experiment=optuna_logreg", "hydra.sweeper.n_trials=4",
                   "sweep.launcher=ray", f"sweep.ray.address={ray_cluster}", check=True)
    assert "4 trials ran" in proc.stdout
    data = show(root)
    assert len(data["trials"]) == 4 and all(t["status"] == "ok" for t in data["trials"])


def test_a_failing_trial_on_ray_is_recorded_and_the_sweep_goes_on(ray_cluster: str,
                                                                  tmp_path: Path) -> None:
    root = copy_project(tmp_path / "p")
    proc = run_cli(root, "-m", "model.C=0.1,1", "+model.l1_ratio=1", "sweep.launcher=ray",
                   f"sweep.ray.address={ray_cluster}")
    data = show(root)
    assert [t["status"] for t in data["trials"]] == ["failed", "failed"], proc.stdout
    assert "l1" in data["trials"][0]["error"]


def test_a_bad_launcher_is_a_config_error(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "p")
    proc = run_cli(root, "-m", "model.C=0.1,1", "sweep.launcher=rey")
    assert proc.returncode == 2
    assert "sweep.launcher: unknown launcher 'rey'" in proc.stderr and "'ray'" in proc.stderr
    proc = run_cli(root, "-m", "model.C=0.1,1", "sweep.launcher=ray",
                   f"sweep.ray.address=127.0.0.1:{_free_port()}")
    assert proc.returncode == 2 and "sweep.ray.address" in proc.stderr, proc.stderr
    assert os.path.exists(root)


def test_ctrl_c_cancels_the_trials_running_on_the_cluster(ray_cluster: str,
                                                         tmp_path: Path) -> None:
    """Ctrl-C in the terminal that runs the sweep ends it, and the trials it started on the
    cluster are killed there too (Ray's workers are processes of this machine here)."""
    import signal
    import time

    root = copy_project(tmp_path / "p")
    markers = tmp_path / "started"
    markers.mkdir()
    stages = root / "pipelines/tabular.py"
    stages.write_text(stages.read_text().replace(
        '    pipeline = Pipeline([("preprocess", preprocess), ("model", model)])\n',
        '    import os, time\n'
        f'    open(os.path.join({str(markers)!r}, str(os.getpid())), "w").close()\n'
        '    time.sleep(300)  # a long fit\n'
        '    pipeline = Pipeline([("preprocess", preprocess), ("model", model)])\n', 1))
    proc = subprocess.Popen([sys.executable, "-m", "framework", "-m", "model.C=0.1,1",
                             "sweep.launcher=ray", f"sweep.ray.address={ray_cluster}",
                             "sweep.ray.num_cpus=1"], cwd=root, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while len(os.listdir(markers)) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.2)
        workers = [int(name) for name in os.listdir(markers)]
        assert len(workers) == 2, "both trials should be running on the cluster"
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    deadline = time.monotonic() + 30
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _running(pid)]
        time.sleep(0.2)
    assert not alive, f"trial workers {alive} still run on the cluster after Ctrl-C"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has ended; only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
