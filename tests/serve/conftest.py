"""Fixtures for the serving tests: a real fitted Pipeline in a temporary registry, and a real server
(``python -m framework serve ... --port 0``) shared by the HTTP tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_testlib import MODEL, REPO, Data, Server, fit, load_data, register, start


@pytest.fixture(scope="session")
def data() -> Data:
    return load_data()


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory, data: Data) -> Path:
    from framework.io import save_model

    path = tmp_path_factory.mktemp("model") / "model.skops"
    save_model(fit(data), path)
    return path


@pytest.fixture(scope="session")
def features_schema() -> dict[str, Any]:
    return json.loads((REPO / "schemas" / "features.json").read_text())


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory: pytest.TempPathFactory, model_file: Path,
                 features_schema: dict[str, Any]) -> Path:
    root = tmp_path_factory.mktemp("registry") / "registry"
    assert register(root, model_file, features_schema, 0.99) == 1
    return root


@pytest.fixture(scope="session")
def server(registry_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared server: breast_cancer@champion, 1 MB body limit."""
    s = start(f"{MODEL}@champion", "--registry", str(registry_dir), "--max-body-bytes",
              "1000000", cwd=tmp_path_factory.mktemp("cwd"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(autouse=True)
def _no_registry_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAMEWORK_REGISTRY", raising=False)
    monkeypatch.delenv("FRAMEWORK_SERVE_CONFIG", raising=False)
