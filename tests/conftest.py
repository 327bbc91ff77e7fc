"""Shared fixtures: copies of the example project in temporary folders, real git and DVC."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT_PARTS = ("conf", "pipelines", "schemas")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_cli(root: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``python -m framework ARGS`` in ``root`` as a user would."""
    proc = subprocess.run([sys.executable, "-m", "framework", *args], cwd=root, env=cli_env(),
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def run(root: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    """Run a command (git, dvc) in ``root``; fail the test if it fails."""
    if cmd[0] == "dvc":
        cmd = (sys.executable, "-m", "dvc", *cmd[1:])
    proc = subprocess.run(cmd, cwd=root, env=cli_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        shutil.copytree(REPO / part, dest / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".gitignore", dest / ".gitignore")
    return dest


def init_repo(root: Path) -> Path:
    run(root, "git", "init", "-q", "-b", "main")
    run(root, "git", "config", "user.email", "ci@example.com")
    run(root, "git", "config", "user.name", "CI")
    if not (root / ".dvc").is_dir():
        run(root, "dvc", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "project")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example project (conf/, pipelines/, schemas/), not under git."""
    return copy_project(tmp_path / "project")


@pytest.fixture
def dvc_project(project: Path) -> Path:
    """The example project in its own git repository with DVC initialised."""
    return init_repo(project)


@pytest.fixture(scope="session")
def postgres() -> Any:
    """A real PostgreSQL server on 127.0.0.1 for the session (see tests/postgres.py)."""
    from tests.postgres import postgres_server

    with postgres_server() as server:
        yield server
