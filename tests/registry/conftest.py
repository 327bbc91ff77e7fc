"""Fixtures for the registry tests: a real fitted model, saved with skops, and project folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def dataset() -> Any:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True)


@pytest.fixture(scope="session")
def fitted(dataset: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        dataset.data, dataset.target)


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory, fitted: Any) -> Path:
    import skops.io as sio

    path = tmp_path_factory.mktemp("model") / "model.skops"
    sio.dump(fitted, path)
    return path


@pytest.fixture(autouse=True)
def _no_registry_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAMEWORK_REGISTRY", raising=False)
    monkeypatch.delenv("FRAMEWORK_REGISTRY_URL", raising=False)
    monkeypatch.delenv("FRAMEWORK_REGISTRY_ARTIFACTS", raising=False)
    monkeypatch.delenv("FRAMEWORK_SWEEP_ID", raising=False)
    monkeypatch.delenv("FRAMEWORK_REGISTRY_CRASH_AT", raising=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on each registry backend: the local SQLite file, and a fresh database of a
    real PostgreSQL server (through ``$FRAMEWORK_REGISTRY_URL``, as a team would configure it)."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        monkeypatch.setenv("FRAMEWORK_REGISTRY_URL", server.create_database())
    return str(request.param)
