"""The ``serve`` verb: start-up errors, command-line checks, several workers."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from serve_testlib import MODEL, Data, launch, register, server_env, wait_ready

JSON = {"Content-Type": "application/json"}


def run_serve(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework", "serve", *args], cwd=cwd,
                          env=server_env(), capture_output=True, text=True, timeout=60)


def test_unknown_model_fails_fast_with_a_message(tmp_path: Path, registry_dir: Path) -> None:
    proc = run_serve("breast_cancr@champion", "--registry", str(registry_dir), cwd=tmp_path)
    assert proc.returncode == 2  # a user error, as an unknown model is in every verb
    assert "no model 'breast_cancr'" in proc.stderr and "did you mean 'breast_cancer'" in \
        proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_a_hostile_model_file_is_refused_at_start_up(tmp_path: Path,
                                                     features_schema: dict[str, Any]) -> None:
    from trustlib import runstring_model

    from framework.registry import open_registry

    marker = tmp_path / "MARKER"
    with open_registry(tmp_path / "registry") as reg:
        reg.register(MODEL, runstring_model(tmp_path / "evil.skops", marker),
                     metrics={"roc_auc": 0.9}, input_schema=features_schema, target="target",
                     actor="tests", check_types=False)
    proc = run_serve(f"{MODEL}@champion", "--registry", str(tmp_path / "registry"), "--port",
                     "0", cwd=tmp_path)
    assert proc.returncode == 1
    assert "refusing" in proc.stderr and "numpy.testing._private.utils.runstring" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not marker.exists()


def test_a_modified_artifact_is_refused(tmp_path: Path, model_file: Path,
                                        features_schema: dict[str, Any]) -> None:
    # bytes appended to the stored artifact: the hash check refuses it before skops reads it
    registry = tmp_path / "registry"
    register(registry, model_file, features_schema, 0.99)
    artifact = next((registry / "artifacts").rglob("*"))
    while artifact.is_dir():
        artifact = next(artifact.iterdir())
    artifact.chmod(0o644)
    with artifact.open("ab") as f:
        f.write(b"tampered")
    proc = run_serve(f"{MODEL}@champion", "--registry", str(registry), "--port", "0", cwd=tmp_path)
    assert proc.returncode == 1
    assert "was modified after registration; refusing to load it" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_port_in_use(tmp_path: Path, registry_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_serve(f"{MODEL}@champion", "--registry", str(registry_dir), "--port",
                         str(port), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be at least 1"),
    (["--port", "70000"], "--port must be between"),
    (["--max-body-bytes", "0"], "--max-body-bytes must be at least 1, found 0"),
    (["--max-cells", "-5"], "--max-cells must be at least 1, found -5"),
    (["--header-timeout", "0"], "--header-timeout must be positive, found 0.0"),
    (["--trust", "numpy.*"], "--trust[0] = 'numpy.*': expected an exact dotted name"),
    (["--trust", "os.system"], "a model file may never name this"),
    (["--port", "eighty"], "invalid int value"),
])
def test_bad_command_lines(tmp_path: Path, registry_dir: Path, args: list[str],
                           message: str) -> None:
    from framework.cli import run_verb

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_verb("serve", [f"{MODEL}@champion", "--registry", str(registry_dir), *args])
    assert code == 2
    assert message in err.getvalue()


def test_two_workers(tmp_path: Path, registry_dir: Path, data: Data) -> None:
    server = wait_ready(launch(f"{MODEL}@champion", "--registry", str(registry_dir),
                               "--workers", "2", cwd=tmp_path))
    try:
        assert server.ready_line.startswith(f"serving {MODEL} v1 (champion) on ")
        with server.client() as c:
            for _ in range(10):
                r = c.post("/invocations", content=json.dumps({"inputs": data.records(3)}),
                           headers=JSON)
                assert r.status_code == 200 and len(r.json()["predictions"]) == 3
    finally:
        assert server.stop() == 0, server.log()
