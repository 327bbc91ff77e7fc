"""``registry.artifacts: <a DVC remote>``: the artifact store is a remote DVC pushes to, reached
through the project's own ``dvc remote`` configuration, still content-addressed and checked by
sha256 on load. Two clones share one PostgreSQL registry and one local-folder remote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from framework.errors import RegistryError
from framework.registry import open_registry

pytestmark = pytest.mark.dvc


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with git and DVC initialised, copied for each clone (``dvc init`` once)."""
    path = tmp_path_factory.mktemp("template")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=path, check=True, capture_output=True, timeout=120)
    return path


def _project(template: Path, path: Path, remote: Path, artifacts: str, url: str) -> Path:
    """A clone, the remote ``store`` in its DVC config as ``dvc remote add store`` writes it,
    registry.artifacts naming it."""
    shutil.copytree(template, path, symlinks=True)
    with open(path / ".dvc" / "config", "a") as config:
        config.write(f"['remote \"store\"']\n    url = {remote}\n")
    (path / "params.yaml").write_text(f"registry:\n  path: .framework/registry\n"
                                      f"  url: {url}\n  artifacts: {artifacts}\n")
    return path


@pytest.fixture
def clones(postgres: Any, template: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    url = postgres.create_database()
    remote = tmp_path / "remote"
    a = _project(template, tmp_path / "a", remote, "store", url)
    b = _project(template, tmp_path / "b", remote, "remote://store", url)
    return a, b, remote


def _remote_files(remote: Path) -> list[Path]:
    return sorted(p for p in (remote / "framework-registry").rglob("*") if p.is_file())


def test_artifacts_travel_through_a_dvc_remote(clones: tuple[Path, Path, Path],
                                               model_file: Path, fitted: Any,
                                               dataset: Any, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    a, b, remote = clones
    with open_registry(project_dir=a) as reg:
        reg.register("bc", model_file, metrics={"roc_auc": 0.97}, companions={"profile": b"{}"})
        assert "DVC remote 'store'" in reg.artifacts.where
    stored = _remote_files(remote)
    assert len(stored) == 2 and not [p for p in stored if p.name.endswith(".part")]
    assert {p.name for p in stored} == {p.name for p in
                                        (a / ".framework/registry/artifacts/sha256").rglob("*")
                                        if p.is_file()}

    # clone B has none of it locally: loading downloads, checks and keeps a local copy
    with open_registry(project_dir=b) as reg:
        mv = reg.resolve("bc@champion")
        assert not Path(mv.artifact_path).exists()
        model = reg.load("bc@champion")
        assert (model.predict(dataset.data[:20]) == fitted.predict(dataset.data[:20])).all()
        assert Path(mv.artifact_path).exists() and str(b) in mv.artifact_path
        assert reg.companion(mv, "profile") == b"{}"
        assert reg.check() == []

    # a file changed on the remote is refused, and never takes the artifact's name here
    monkeypatch.chdir(b)
    for p in (b / ".framework/registry/artifacts/sha256").rglob("*"):
        if p.is_file():
            p.chmod(0o644)
            p.unlink()
    target = next(p for p in stored if p.name == mv.sha256)
    target.chmod(0o644)
    data = target.read_bytes()
    target.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    with open_registry() as reg, pytest.raises(RegistryError, match=r"on the DVC remote 'store'"
                                                r".*modified after registration"):
        reg.load("bc@champion")
    assert not Path(mv.artifact_path).exists()


def test_serve_from_a_clone_that_only_has_the_remote(clones: tuple[Path, Path, Path],
                                                     model_file: Path) -> None:
    """``framework serve`` in clone B finds the model A registered, through the remote."""
    import json
    import socket
    import time
    import urllib.request

    a, b, _ = clones
    with open_registry(project_dir=a) as reg:
        reg.register("bc", model_file, metrics={"roc_auc": 0.97})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "framework", "serve", "bc@champion",
                             "--port", str(port)], cwd=b, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("FRAMEWORK_REGISTRY")})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metadata", timeout=2) as r:
                    info = json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None, "the server exited"
                time.sleep(0.2)
        else:
            pytest.fail("the server did not answer")
        assert info["name"] == "bc" and info["version"] == 1
        assert (b / ".framework/registry/artifacts/sha256").exists()  # downloaded into B
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_gc_removes_from_the_remote_and_errors_name_the_remote(
        clones: tuple[Path, Path, Path], model_file: Path, tmp_path: Path,
        dataset: Any) -> None:
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    a, _, remote = clones
    other = tmp_path / "other.skops"
    sio.dump(DecisionTreeClassifier(max_depth=2, random_state=0).fit(dataset.data,
                                                                     dataset.target), other)
    with open_registry(project_dir=a) as reg:
        reg.register("bc", model_file, metrics={"roc_auc": 0.97}, primary_metric="roc_auc")
        reg.register("bc", other, metrics={"roc_auc": 0.96}, primary_metric="roc_auc")
        assert len(_remote_files(remote)) == 2
        reg.archive("bc", [2])
        (done, freed), = reg.gc()
        assert done.version == 2 and freed > 0
        assert [p.name for p in _remote_files(remote)] == [reg.resolve("bc@champion").sha256]

    (a / "params.yaml").write_text((a / "params.yaml").read_text().replace(
        "artifacts: store", "artifacts: remote://nowhere"))
    with open_registry(project_dir=a) as reg, \
            pytest.raises(RegistryError, match=r"no DVC remote 'nowhere' .*\(remotes: store;"):
        reg.register("bc", model_file, metrics={"roc_auc": 0.98}, params={"x": 1})
    with open_registry(project_dir=a) as reg:
        assert reg.store.latest_version("bc") == 2  # nothing recorded
