"""The real server over HTTP: every payload format, every error, the side endpoints."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

import framework
from serve_testlib import MODEL, Data, Server

JSON = {"Content-Type": "application/json"}


def post(client: httpx.Client, payload: Any, headers: dict[str, str] | None = None,
         **kwargs: Any) -> httpx.Response:
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return client.post("/invocations", content=body, headers=headers or JSON, **kwargs)


@pytest.fixture(scope="module")
def expected(data: Data, model_file: Any) -> dict[str, Any]:
    """What the registered model itself says for the first 5 rows."""
    import pandas as pd

    from framework.io import load_model

    model = load_model(model_file)
    X = pd.DataFrame(data.rows[:5], columns=data.columns)
    return {"predict": model.predict(X).tolist(), "proba": model.predict_proba(X).tolist()}


# -- payload formats ---------------------------------------------------------------------------

def _formats(data: Data) -> dict[str, Any]:
    records = data.records(5)
    split = data.split(5)
    return {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_split_with_index": {"dataframe_split": {**split, "index": list(range(5))}},
        "dataframe_split_reordered_columns": {"dataframe_split": {
            "columns": data.columns[::-1], "data": [row[::-1] for row in data.rows[:5]]}},
        "dataframe_split_extra_column": {"dataframe_split": {
            "columns": ["patient_id", *data.columns],
            "data": [[i, *row] for i, row in enumerate(data.rows[:5])]}},
        "dataframe_split_positional": {"dataframe_split": {"data": data.rows[:5]}},
        "dataframe_records": {"dataframe_records": records},
        "dataframe_records_extra_key": {"dataframe_records": [{**r, "note": "x"}
                                                              for r in records]},
        "instances_records": {"instances": records},
        "instances_rows": {"instances": data.rows[:5]},
        "inputs_records": {"inputs": records},
        "inputs_columns": {"inputs": {c: [row[j] for row in data.rows[:5]]
                                      for j, c in enumerate(data.columns)}},
        "inputs_rows": {"inputs": data.rows[:5]},
        "integers_for_numbers": {"dataframe_split": {
            "columns": data.columns, "data": [[round(v) for v in row] for row in data.rows[:5]]}},
    }


FORMAT_IDS = ["dataframe_split", "dataframe_split_with_index", "dataframe_split_reordered_columns",
              "dataframe_split_extra_column", "dataframe_split_positional", "dataframe_records",
              "dataframe_records_extra_key", "instances_records", "instances_rows",
              "inputs_records", "inputs_columns", "inputs_rows", "integers_for_numbers"]


@pytest.mark.parametrize("fmt", FORMAT_IDS)
def test_every_json_format_scores(client: httpx.Client, data: Data, expected: dict[str, Any],
                                  fmt: str) -> None:
    r = post(client, _formats(data)[fmt])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    predictions = r.json()["predictions"]
    assert len(predictions) == 5
    if fmt != "integers_for_numbers":
        assert predictions == expected["predict"]


def test_one_record_as_dict_of_scalars(client: httpx.Client, data: Data,
                                       expected: dict[str, Any]) -> None:
    r = post(client, {"inputs": data.records(1)[0]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected["predict"][:1]}


@pytest.mark.parametrize("content_type", ["text/csv", "application/csv",
                                          "text/csv; charset=utf-8"])
def test_csv_with_header(client: httpx.Client, data: Data, expected: dict[str, Any],
                         content_type: str) -> None:
    lines = [",".join(data.columns)] + [",".join(map(repr, row)) for row in data.rows[:5]]
    r = post(client, "\n".join(lines) + "\n", {"Content-Type": content_type})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected["predict"]}


def test_predict_proba(client: httpx.Client, data: Data, expected: dict[str, Any]) -> None:
    r = post(client, {"dataframe_split": data.split(5), "params": {"predict_method":
                                                                    "predict_proba"}})
    assert r.status_code == 200, r.text
    proba = r.json()["predictions"]
    assert len(proba) == 5 and all(len(p) == 2 for p in proba)
    for got, want in zip(proba, expected["proba"]):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-15)


def test_large_batch_goes_through(client: httpx.Client, data: Data) -> None:
    r = post(client, {"dataframe_split": {"columns": data.columns, "data": data.rows}})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert len(predictions) == len(data.rows)
    accuracy = sum(p == t for p, t in zip(predictions, data.target)) / len(data.target)
    assert accuracy > 0.95


def test_empty_batch(client: httpx.Client, data: Data) -> None:
    r = post(client, {"dataframe_split": {"columns": data.columns, "data": []}})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": []}


def test_response_names_the_version(client: httpx.Client, data: Data) -> None:
    r = post(client, {"dataframe_split": data.split(1)})
    assert r.headers["x-model-version"] == f"{MODEL}/1"


# -- errors --------------------------------------------------------------------------------------

def _with(data: Data, n: int, column: str, rows: tuple[int, ...], value: Any) -> dict[str, Any]:
    """dataframe_split of the first ``n`` rows with ``value`` in ``column`` at ``rows``."""
    table = [list(r) for r in data.rows[:n]]
    for i in rows:
        table[i][data.columns.index(column)] = value
    return {"dataframe_split": {"columns": data.columns, "data": table}}


CSV = {"Content-Type": "text/csv"}
# id -> (payload built from the data, headers, status, error_code, part of the message)
BAD: dict[str, tuple[Any, dict[str, str], int, str, str]] = {
    "not_json": (lambda d: b"{'dataframe_split':", JSON, 400, "BAD_REQUEST", "not valid JSON"),
    "not_utf8": (lambda d: b'{"inputs": "\xff\xfe"}', JSON, 400, "BAD_REQUEST",
                 "not valid JSON"),
    "nan_literal": (lambda d: '{"inputs": [[NaN]]}', JSON, 400, "BAD_REQUEST", "not valid JSON"),
    "json_list": (lambda d: [1, 2], JSON, 400, "BAD_REQUEST", "received a list"),
    "no_input_key": (lambda d: {"data": d.rows[:1]}, JSON, 400, "BAD_REQUEST", "exactly one"),
    "two_input_keys": (lambda d: {"inputs": d.rows[:1], "instances": d.rows[:1]}, JSON, 400,
                       "BAD_REQUEST", "exactly one"),
    "split_not_object": (lambda d: {"dataframe_split": d.rows[:1]}, JSON, 400, "BAD_REQUEST",
                         "dataframe_split must be an object"),
    "split_ragged": (lambda d: {"dataframe_split": {"columns": d.columns,
                                                    "data": [d.rows[0], d.rows[1][:3]]}},
                     JSON, 400, "BAD_REQUEST", "row 1 has 3 values, expected 30"),
    "split_unknown_field": (lambda d: {"dataframe_split": {"data": d.rows[:1], "dtypes": {}}},
                            JSON, 400, "BAD_REQUEST", "unexpected: dtypes"),
    "records_not_list": (lambda d: {"dataframe_records": {"a": 1}}, JSON, 400, "BAD_REQUEST",
                         "must be a list of records"),
    "inputs_scalar": (lambda d: {"inputs": 3}, JSON, 400, "BAD_REQUEST", "inputs must be a list"),
    "inputs_uneven_columns": (lambda d: {"inputs": {"a": [1, 2], "b": [1]}}, JSON, 400,
                              "BAD_REQUEST", "different lengths"),
    "positional_wrong_width": (lambda d: {"inputs": [d.rows[0][:5]]}, JSON, 400, "BAD_REQUEST",
                               "positional rows have 5 values"),
    "missing_column": (lambda d: {"dataframe_split": {"columns": d.columns[1:],
                                                      "data": [r[1:] for r in d.rows[:2]]}},
                       JSON, 400, "INVALID_PARAMETER_VALUE", "column 'mean_radius': is required"),
    "below_minimum": (lambda d: _with(d, 4, "mean_area", (2,), -5.0), JSON, 400,
                      "INVALID_PARAMETER_VALUE",
                      "column 'mean_area': 1 row violates minimum 0 (rows 2: -5"),
    "string_in_number_column": (lambda d: _with(d, 3, "worst_texture", (1,), "abc"), JSON, 400,
                                "INVALID_PARAMETER_VALUE",
                                "column 'worst_texture', row 1: expected a number, received a "
                                "string 'abc'"),
    "null_cell": (lambda d: _with(d, 2, "mean_radius", (0,), None), JSON, 400,
                  "INVALID_PARAMETER_VALUE", "column 'mean_radius'"),
    "boolean_cell": (lambda d: _with(d, 2, "mean_radius", (1,), True), JSON, 400,
                     "INVALID_PARAMETER_VALUE", "column 'mean_radius'"),
    "bad_predict_method": (lambda d: {"inputs": d.rows[:1], "params": {"predict_method": "fit"}},
                           JSON, 400, "INVALID_PARAMETER_VALUE", "predict_method must be one of"),
    "params_not_object": (lambda d: {"inputs": d.rows[:1], "params": [1]}, JSON, 400,
                          "INVALID_PARAMETER_VALUE", "'params' must be a JSON object"),
    "csv_empty": (lambda d: "", CSV, 400, "BAD_REQUEST", "CSV body is empty"),
    "csv_text_cell": (lambda d: ",".join(d.columns) + "\n" + ",".join(["x"] * 30) + "\n", CSV,
                      400, "INVALID_PARAMETER_VALUE",
                      "CSV column 'mean_radius', line 2: expected a number, received 'x'"),
    "text_plain": (lambda d: "a,b\n1,2\n", {"Content-Type": "text/plain"}, 415, "BAD_REQUEST",
                   "unsupported Content-Type 'text/plain'"),
    "form": (lambda d: "a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415,
             "BAD_REQUEST", "unsupported Content-Type"),
    "latin1": (lambda d: "{}", {"Content-Type": "application/json; charset=latin-1"}, 415,
               "BAD_REQUEST", "unsupported charset"),
    "old_mlflow_format": (lambda d: "{}", {"Content-Type": "application/json; format=pandas-split"},
                          415, "BAD_REQUEST", "unrecognized Content-Type parameter 'format'"),
}


@pytest.mark.parametrize("case_id", list(BAD))
def test_bad_requests_are_refused_clearly(client: httpx.Client, data: Data,
                                          case_id: str) -> None:
    build, headers, status, code, message = BAD[case_id]
    r = post(client, build(data), headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error_code"] == code
    assert message in body["message"]


def test_schema_error_names_column_rule_and_row_without_echoing_payload(
        client: httpx.Client, data: Data) -> None:
    rows = [list(r) for r in data.rows[:300]]
    for i in (7, 123, 250):
        rows[i][data.columns.index("worst_radius")] = -1.5
    r = post(client, {"dataframe_split": {"columns": data.columns, "data": rows}})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "column 'worst_radius': 3 rows violate minimum 0 (rows 7, 123, 250: -1.5" in \
        body["message"]
    assert len(body["message"]) < 1000 and len(r.content) < 5000
    violation = body["details"]["violations"][0]
    assert (violation["column"], violation["rule"], violation["rows"]) == \
        ("worst_radius", "minimum", [7, 123, 250])


def test_missing_content_type_is_415(client: httpx.Client, data: Data) -> None:
    r = client.post("/invocations", content=json.dumps({"inputs": data.rows[:1]}),
                    headers={"Content-Type": ""})
    assert r.status_code == 415
    assert r.json()["error_code"] == "BAD_REQUEST"


def test_body_over_the_limit_by_content_length(client: httpx.Client) -> None:
    r = post(client, b"x" * 1_000_001)
    assert r.status_code == 413
    assert r.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
    assert "over the limit of 1000000 bytes" in r.json()["message"]


def test_body_over_the_limit_while_streaming(client: httpx.Client) -> None:
    def chunks() -> Any:  # chunked transfer: no Content-Length to check up front
        for _ in range(40):
            yield b" " * 50_000

    r = client.post("/invocations", content=chunks(), headers=JSON)
    assert r.status_code == 413
    assert "over the limit" in r.json()["message"]


def test_model_refusal_is_a_400_not_a_500(client: httpx.Client, data: Data) -> None:
    # schema-valid (no maximum) but the scaler overflows to inf, which the estimator refuses
    row = list(data.rows[0])
    row[0] = 1e308
    row[1] = 1e308
    r = post(client, {"dataframe_split": {"columns": data.columns, "data": [row]},
                      "params": {"predict_method": "predict_proba"}})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error_code"] == "BAD_REQUEST"
        assert "could not score this input" in r.json()["message"]


def test_unknown_route_and_method(client: httpx.Client) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    r = client.get("/invocations")
    assert r.status_code == 405
    assert "POST" in r.headers["allow"]
    assert r.json()["error_code"] == "BAD_REQUEST"


def test_server_survives_every_error(client: httpx.Client, data: Data) -> None:
    for build, headers, *_ in BAD.values():
        post(client, build(data), headers)
    assert client.get("/ping").status_code == 200
    assert post(client, {"inputs": data.rows[:2]}).status_code == 200


# -- the other endpoints -------------------------------------------------------------------------

def test_ping_health_version(client: httpx.Client) -> None:
    for path in ("/ping", "/health"):
        assert client.get(path).status_code == 200
    r = client.get("/version")
    assert r.status_code == 200 and r.text == framework.__version__


def test_metadata(client: httpx.Client, data: Data) -> None:
    meta = client.get("/metadata").json()
    assert (meta["name"], meta["version"], meta["alias"]) == (MODEL, 1, "champion")
    assert meta["metrics"] == {"roc_auc": 0.99, "accuracy": 0.95}
    schema = meta["input_schema"]
    assert list(schema["properties"]) == data.columns  # the target is not an input
    assert "target" not in schema["required"]
    assert meta["classes"] == [0, 1]
    assert "predict_proba" in meta["predict_methods"]


def test_openapi_document(client: httpx.Client, data: Data) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert set(spec["paths"]) == {"/invocations", "/ping", "/health", "/version", "/metadata",
                                  "/metrics", "/openapi.json"}
    assert list(spec["components"]["schemas"]["Row"]["properties"]) == data.columns


def test_prometheus_metrics(server: Server, data: Data) -> None:
    with server.client() as c:
        post(c, {"inputs": data.rows[:3]})
        post(c, b"nope")
        c.get("/definitely/not/here")
        text = c.get("/metrics").text
    assert "# TYPE framework_serve_requests_total counter" in text
    ok = re.search(r'framework_serve_requests_total\{path="/invocations",method="POST",'
                   r'status="200"\} (\d+)', text)
    assert ok and int(ok.group(1)) >= 1
    assert re.search(r'framework_serve_errors_total\{path="/invocations",'
                     r'error_code="BAD_REQUEST"\} [1-9]', text)
    assert 'framework_serve_requests_total{path="other",method="GET",status="404"}' in text
    assert "# TYPE framework_serve_request_duration_seconds histogram" in text
    assert re.search(r'framework_serve_request_duration_seconds_bucket\{path="/invocations",'
                     r'method="POST",le="\+Inf"\} \d+', text)
    assert f'framework_serve_model_version{{model="{MODEL}",alias="champion"}} 1' in text
    # every sample line is NAME{labels} VALUE with a numeric value
    for line in text.splitlines():
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1].replace("+Inf", "inf"))
