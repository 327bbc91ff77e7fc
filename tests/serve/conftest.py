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
    """The input schema the register step records for the bundled model: the features table's
    schema without ``clinic``, which is not a model input (``dataset.exclude_from_features``)."""
    from framework.registry.step import serving_schema

    return serving_schema(json.loads((REPO / "schemas" / "features.json").read_text()),
                          ["clinic"], file="params.yaml", source="schemas/features.json")


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory: pytest.TempPathFactory, model_file: Path,
                 features_schema: dict[str, Any]) -> Path:
    root = tmp_path_factory.mktemp("registry") / "registry"
    assert register(root, model_file, features_schema, 0.99) == 1
    return root


@pytest.fixture(scope="session")
def monitored(tmp_path_factory: pytest.TempPathFactory, data: Data,
              features_schema: dict[str, Any]) -> Path:
    """A registry whose version has its reference profile, as the register stage stores it."""
    import pandas as pd

    from framework.monitor.profile import build
    from framework.registry import open_registry

    frame = pd.DataFrame(data.rows, columns=data.columns)
    frame["target"] = data.target
    frame = frame.sample(frac=1.0, random_state=0)  # the bundled rows are not in random order
    model = fit(data)
    profile, predictions = build(frame.iloc[:400], schema=features_schema, target="target",
                                 model=model, test=frame.iloc[400:])
    root = tmp_path_factory.mktemp("monitored") / "registry"
    with open_registry(root) as reg:
        reg.register(MODEL, model, metrics={"roc_auc": 0.99, "accuracy": 0.95},
                     input_schema=features_schema, target="target", primary_metric="roc_auc",
                     actor="tests", companions={"profile": profile.to_bytes(),
                                                "test_predictions": predictions})
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
