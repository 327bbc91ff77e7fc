"""A served model with a text and an integer column (the engine's path, no fast path), whose
estimator refuses some schema-valid input: that refusal is a 400, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serve_testlib import Server, start

JSON = {"Content-Type": "application/json"}
SCHEMA = {
    "type": "object",
    "properties": {
        "colour": {"type": "string", "maxLength": 20},
        "size": {"type": "integer", "minimum": 0},
        "weight": {"type": "number"},
        "label": {"type": "integer"},
    },
    "required": ["colour", "size", "weight", "label"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from framework.registry import open_registry

    X = pd.DataFrame({"colour": ["red", "green", "blue", "red", "green", "blue"] * 5,
                      "size": list(range(30)), "weight": [0.5 * i for i in range(30)]})
    y = [0, 1] * 15
    model = make_pipeline(
        ColumnTransformer([("colour", OneHotEncoder(handle_unknown="error"), ["colour"])],
                          remainder="passthrough"),
        LogisticRegression(max_iter=1000)).fit(X, y)
    root = tmp_path_factory.mktemp("mixed")
    with open_registry(root / "registry") as reg:
        reg.register("fruit", model, metrics={"accuracy": 0.5}, input_schema=SCHEMA,
                     target="label", actor="tests")
    server = start("fruit/1", "--registry", str(root / "registry"), cwd=root)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(mixed: Server) -> Iterator[httpx.Client]:
    with mixed.client() as c:
        yield c


def post(client: httpx.Client, payload: Any) -> httpx.Response:
    return client.post("/invocations", content=json.dumps(payload), headers=JSON)


def test_text_and_integer_columns(client: httpx.Client) -> None:
    r = post(client, {"dataframe_records": [
        {"colour": "red", "size": 3, "weight": 1}, {"weight": 2.5, "size": 4.0, "colour": "blue"}]})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 2
    csv = "weight,colour,size\n1.5,green,2\n"
    r = client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text


def test_unknown_category_is_the_models_refusal(client: httpx.Client) -> None:
    r = post(client, {"inputs": {"colour": ["purple"], "size": [1], "weight": [0.1]}})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "BAD_REQUEST"
    assert body["message"].startswith("fruit v1 could not score this input (ValueError:")
    assert "unknown categor" in body["message"].lower()


@pytest.mark.parametrize("record, message", [
    ({"colour": "red", "size": 1.5, "weight": 1}, "column 'size': 1 row violates type"),
    ({"colour": "red", "size": -1, "weight": 1}, "column 'size': 1 row violates minimum 0"),
    ({"colour": "x" * 500, "size": 1, "weight": 1}, "column 'colour': 1 row violates maxLength"),
    ({"colour": 7, "size": 1, "weight": 1},
     "column 'colour', row 0: expected a string, received a number 7"),
    ({"size": 1, "weight": 1}, "column 'colour': is required"),
], ids=["fractional_integer", "negative_size", "long_text", "number_for_text", "missing"])
def test_schema_violations(client: httpx.Client, record: dict[str, Any], message: str) -> None:
    r = post(client, {"dataframe_records": [record]})
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in r.json()["message"]
    assert "x" * 100 not in r.text  # a long value is shortened, never echoed whole


def test_pinned_version_metadata(client: httpx.Client, mixed: Server) -> None:
    assert mixed.ready_line.startswith("serving fruit v1 (fixed version) on http://127.0.0.1:")
    meta = client.get("/metadata").json()
    assert (meta["name"], meta["version"], meta["alias"]) == ("fruit", 1, None)
    assert meta["follows_alias"] is False
    assert list(meta["input_schema"]["properties"]) == ["colour", "size", "weight"]

