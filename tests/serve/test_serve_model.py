"""In-process tests of the pieces behind the server: request parsing, the numeric fast path
against the schema engine, numpy mode, models without schemas, metrics rendering."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_testlib import MODEL, Data, fit

from framework.errors import SchemaViolation
from framework.registry import open_registry
from framework.schema import compile_schema, conform
from framework.serve import protocol
from framework.serve.decode import Decoder
from framework.serve.metrics import Metrics
from framework.serve.model import (LoadedModel, NumericPlan, load_version,
                                   quiet_feature_name_warning)
from framework.serve.protocol import RequestError, Table

# -- request bodies ------------------------------------------------------------------------------


def parse(doc: Any, one_column: str | None = None) -> Table:
    return protocol.parse_json(json.dumps(doc).encode(), one_column=one_column)


@pytest.mark.parametrize("doc, columns, rows", [
    ({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}},
     ["a", "b"], [[1, 2], [3, 4]]),
    ({"dataframe_split": {"data": [[1, 2]]}}, None, [[1, 2]]),
    ({"dataframe_records": [{"a": 1, "b": 2}, {"b": 4, "a": 3}]}, ["a", "b"], [[1, 2], [3, 4]]),
    ({"dataframe_records": [{"a": 1}, {"b": 4}]}, ["a", "b"], [[1, None], [None, 4]]),
    ({"instances": [{"a": 1, "b": 2}]}, ["a", "b"], [[1, 2]]),
    ({"instances": [[1, 2], [3, 4]]}, None, [[1, 2], [3, 4]]),
    ({"inputs": {"a": [1, 3], "b": [2, 4]}}, ["a", "b"], [[1, 2], [3, 4]]),
    ({"inputs": {"a": 1, "b": 2}}, ["a", "b"], [[1, 2]]),
    ({"inputs": []}, [], []),
], ids=["split", "split_positional", "records", "records_sparse", "instances_records",
        "instances_rows", "inputs_columns", "inputs_one_row", "inputs_empty"])
def test_input_shapes(doc: Any, columns: list[str] | None, rows: list[list[Any]]) -> None:
    table = parse(doc)
    assert (table.columns, table.rows) == (columns, rows)


def test_flat_list_for_a_one_column_model() -> None:
    table = parse({"inputs": [1.5, 2.5]}, one_column="x")
    assert (table.columns, table.rows) == (["x"], [[1.5], [2.5]])
    with pytest.raises(RequestError, match="list of single values"):
        parse({"inputs": [1.5, 2.5]})


def test_params() -> None:
    table = parse({"inputs": [[1]], "params": {"predict_method": "predict_proba"}})
    assert table.params == {"predict_method": "predict_proba"}


def test_too_many_cells_is_refused_before_decoding() -> None:
    body = json.dumps({"inputs": [[1.0] * 10] * 100}).encode()
    assert protocol.parse_json(body, max_cells=1000).n_rows == 100
    with pytest.raises(RequestError, match=r"100 rows x 10 columns = 1000 cells, over the limit "
                                           r"of 999 \(--max-cells\)") as info:
        protocol.parse_json(body, max_cells=999)
    assert info.value.status == 413


# -- decoding: typed columns from the schema, never a fixed-width unicode array ------------------

DECODER = Decoder.from_schema({"type": "object", "properties": {
    "n": {"type": "number"}, "m": {"type": ["number", "null"]}, "s": {"type": "string"},
    "b": {"type": "boolean"}, "e": {"enum": [1, "a"]}}})


def test_decoded_columns_are_typed_from_the_schema() -> None:
    out = DECODER.rows(["n", "m", "s", "b", "e", "extra"],
                       [[1, None, "x", True, 1, 2.5], [2.5, 3, None, False, "a", 7]],
                       where="t").columns
    assert out["n"].dtype == np.float64 and out["n"].tolist() == [1.0, 2.5]
    assert out["m"].dtype == np.float64 and np.isnan(out["m"][0])
    assert out["s"].dtype == object and out["s"].tolist() == ["x", None]
    assert out["b"].tolist() == [True, False]
    assert out["e"].dtype == object and out["e"].tolist() == [1, "a"]
    assert out["extra"].dtype == np.float64  # a column outside the schema: numbers stay numbers
    big = DECODER.rows(["n"], [[2**60 + 1]], where="t").columns["n"]
    assert big.dtype == object and big[0] == 2**60 + 1  # kept exact for the engine
    numbers = DECODER.rows(["n", "m", "extra"], [[1, 2.5, 3], [4, 5, 6.5]], where="t")
    assert numbers.matrix is not None and numbers.columns["m"].tolist() == [2.5, 5.0]


@pytest.mark.parametrize("column, value, message", [
    ("n", "1.5", r"column 'n', row 1: expected a number, received a string '1.5'"),
    ("n", True, r"column 'n', row 1: expected a number, received a boolean True"),
    ("m", [1], r"column 'm', row 1: expected a number or null, received a list"),
    ("s", 5, r"column 's', row 1: expected a string, received a number 5"),
    ("b", "yes", r"column 'b', row 1: expected a boolean, received a string"),
], ids=["numeric_string", "boolean", "nested", "number_for_string", "string_for_boolean"])
def test_a_wrong_type_is_refused_while_decoding(column: str, value: Any, message: str) -> None:
    good = {"n": 1.0, "m": 1.0, "s": "x", "b": True}[column]
    with pytest.raises(RequestError, match=message) as info:
        DECODER.rows([column], [[good], [value]], where="dataframe_split")
    assert info.value.status == 400 and info.value.code == "INVALID_PARAMETER_VALUE"


def test_a_long_string_among_numbers_costs_no_memory() -> None:
    """numpy would build a rows x columns x 1,000,000 x 4 bytes array from these rows."""
    import tracemalloc

    rows = [[float(i)] * 30 for i in range(2000)]
    rows[1000][7] = "x" * 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(RequestError, match="expected a number"):
            Decoder({f"c{j}": "number" for j in range(30)}).rows([f"c{j}" for j in range(30)],
                                                                rows, where="t")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000  # bytes; numpy's unicode array would take 240 GB


@pytest.mark.parametrize("header, kind", [
    ("application/json", "json"), ("Application/JSON; charset=UTF-8", "json"),
    ("text/csv", "csv"), ("application/csv; header=present", "csv"),
])
def test_content_types(header: str, kind: str) -> None:
    assert protocol.content_kind(header) == kind


@pytest.mark.parametrize("header, message", [
    (None, "missing Content-Type"), ("text/plain", "unsupported Content-Type"),
    ("application/json; charset=utf-16", "unsupported charset"),
    ("application/json; format=records", "unrecognized Content-Type parameter"),
])
def test_refused_content_types(header: str | None, message: str) -> None:
    with pytest.raises(RequestError, match=message) as info:
        protocol.content_kind(header)
    assert info.value.status == 415


@pytest.mark.parametrize("predictions, text", [
    (np.array([0, 1]), "[0,1]"),
    (np.array([[0.25, 0.75]]), "[[0.25,0.75]]"),
    (np.array(["cat", "dog"], dtype=object), '["cat","dog"]'),
    (np.array([1.0, np.nan]), "[1.0,null]"),
    (pd.Series([1, 2]), "[1,2]"),
    (pd.DataFrame({"a": [1], "b": ["x"]}), '[{"a":1,"b":"x"}]'),
], ids=["ints", "proba", "strings", "nan", "series", "frame"])
def test_predictions_as_json(predictions: Any, text: str) -> None:
    assert protocol.dumps({"predictions": predictions}) == f'{{"predictions":{text}}}'.encode()


def test_long_values_are_never_echoed_whole() -> None:
    with pytest.raises(RequestError) as info:
        parse({"x" * 5000: 1})
    assert len(info.value.message) < 600


# -- the numeric fast path never disagrees with the schema engine --------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "a": {"type": "number", "minimum": 0},
        "b": {"type": "number", "exclusiveMinimum": -1, "maximum": 5},
        "c": {"type": "integer", "minimum": -3, "exclusiveMaximum": 10},
        "d": {"type": ["number", "null"], "description": "free"},
    },
    "required": ["a", "b", "c", "d"],
    "additionalProperties": False,
}
COLUMNS = list(SCHEMA["properties"])


def bare_model(schema: dict[str, Any], plan: NumericPlan | None) -> LoadedModel:
    compiled = compile_schema(schema)
    return LoadedModel(version=None, estimator=None, alias=None,  # type: ignore[arg-type]
                       schema=schema, compiled=compiled, columns=list(compiled.properties),
                       features=None, plan=plan, numpy_mode=False, array_input=False,
                       methods=("predict",), decoder=Decoder.from_schema(schema))


def fast(model: LoadedModel, columns: list[str], rows: list[list[Any]]) -> Any:
    return model._fast(model.decoder.rows(columns, rows, where="t"), len(rows))


cells = st.one_of(
    st.integers(-20, 20),
    st.sampled_from([-1, -1.0, 0, -0.0, 5, 5.0, 10, 9.999, -3, -3.5, 2.5, 1e15, -1e15]),
    st.floats(-50, 50, allow_nan=False),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          database=None)
@given(rows=st.lists(st.lists(cells, min_size=4, max_size=4), min_size=1, max_size=6))
def test_fast_path_agrees_with_the_engine(rows: list[list[float]]) -> None:
    plan = NumericPlan.build(SCHEMA)
    assert plan is not None
    model = bare_model(SCHEMA, plan)
    matrix = fast(model, COLUMNS, rows)
    try:
        conformed = conform(pd.DataFrame(rows, columns=COLUMNS), model.compiled)
    except SchemaViolation:
        assert matrix is None  # never accepts what the engine refuses
        return
    assert matrix is not None  # and accepts what it accepts (numbers within 2**53)
    np.testing.assert_array_equal(matrix, conformed.to_numpy(dtype=float))


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"type": "number", "multipleOf": 2}}},
    {"type": "object", "properties": {"a": {"type": "string"}}},
    {"type": "object", "properties": {"a": {"type": "number"}}, "x-unique": ["a"]},
    {"type": "object", "properties": {"a": {"type": "number"}}, "allOf": [{}]},
    {"type": "object", "properties": {"a": {"type": "number", "minimum": True}}},
    {"type": "object", "properties": {}},
], ids=["multipleOf", "string", "x-unique", "allOf", "bool_bound", "no_columns"])
def test_fast_path_only_for_plain_numbers(schema: dict[str, Any]) -> None:
    assert NumericPlan.build(schema) is None


def test_fast_path_steps_aside_for_odd_rows() -> None:
    model = bare_model(SCHEMA, NumericPlan.build(SCHEMA))
    ok = [[1.0, 2.0, 3, 4.0]]
    assert fast(model, COLUMNS, ok) is not None
    assert fast(model, ["a", "b", "c", "c"], ok) is None       # duplicate column
    assert fast(model, ["a", "b", "c", "x"], ok) is None       # a schema column missing
    assert fast(model, COLUMNS, [[1.0, 2.0, 3, None]]) is None  # null
    assert fast(model, COLUMNS, [[1.0, 2.0, 3, 2**60 + 1]]) is None  # would round
    assert fast(model, COLUMNS, [[1, 2, 3, 2**60 + 1]]) is None
    with pytest.raises(RequestError, match="expected a number or null, received a string"):
        fast(model, COLUMNS, [[1.0, 2.0, 3, "4"]])


# -- loading versions: numpy mode, no schema, arrays ---------------------------------------------

@pytest.fixture
def registry(tmp_path: Path) -> Any:
    with open_registry(tmp_path / "registry") as reg:
        yield reg


def add(reg: Any, model: Any, schema: dict[str, Any] | None, name: str = MODEL) -> Any:
    reg.register(name, model, metrics={"roc_auc": 0.9}, input_schema=schema,
                 target="target" if schema else None, actor="tests")
    return reg.resolve(f"{name}@champion")


def test_numpy_mode_gives_the_dataframe_answers(registry: Any, data: Data,
                                                features_schema: dict[str, Any]) -> None:
    quiet_feature_name_warning()  # what create_app does in a serving process (undone by pytest)
    model = fit(data)
    loaded = load_version(registry, add(registry, model, features_schema), alias="champion")
    assert loaded.numpy_mode and loaded.plan is not None
    assert "x-min-rows" not in loaded.schema  # a request may be one row
    table = Table(columns=data.columns[::-1], rows=[r[::-1] for r in data.rows[:50]])
    x = loaded.prepare(table)
    assert isinstance(x, np.ndarray)
    frame = pd.DataFrame(data.rows[:50], columns=data.columns)
    np.testing.assert_array_equal(loaded.predict(x, "predict_proba"), model.predict_proba(frame))
    slow = loaded.prepare(Table(frame=frame))  # the engine's path gives the same input
    assert isinstance(slow, pd.DataFrame)
    np.testing.assert_array_equal(loaded.predict(slow, "predict"), model.predict(frame))


def test_column_selection_by_name_keeps_dataframes(registry: Any, data: Data,
                                                   features_schema: dict[str, Any]) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X = pd.DataFrame(data.rows, columns=data.columns)
    model = make_pipeline(ColumnTransformer([("keep", "passthrough", ["worst_radius",
                                                                      "mean_texture"])]),
                          LogisticRegression(max_iter=1000)).fit(X, data.target)
    loaded = load_version(registry, add(registry, model, features_schema), alias="champion")
    assert loaded.plan is not None and not loaded.numpy_mode  # the probe said no
    x = loaded.prepare(Table(columns=data.columns, rows=data.rows[:20]))
    assert isinstance(x, pd.DataFrame)
    assert loaded.predict(x, "predict").tolist() == model.predict(X.head(20)).tolist()


def test_model_without_schema(registry: Any, data: Data) -> None:
    from sklearn.linear_model import Ridge

    X = pd.DataFrame(data.rows, columns=data.columns)[["mean_radius", "mean_area"]]
    model = Ridge().fit(X, data.target)
    loaded = load_version(registry, add(registry, model, None), alias="champion")
    assert loaded.schema is None and loaded.features == ["mean_radius", "mean_area"]
    table = Table(columns=["x", "mean_area", "mean_radius"], rows=[[0, 500.0, 12.0]])
    assert loaded.predict(loaded.prepare(table), "predict").shape == (1,)
    with pytest.raises(RequestError, match="needs column.* absent from the request: "
                                           "mean_radius"):
        loaded.prepare(Table(columns=["mean_area"], rows=[[500.0]]))
    with pytest.raises(RequestError, match="has no predict_proba") as info:
        loaded.method({"predict_method": "predict_proba"})
    assert info.value.code == "INVALID_PARAMETER_VALUE"


def test_model_fitted_on_arrays(registry: Any, data: Data,
                                features_schema: dict[str, Any]) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=5000).fit(np.array(data.rows), data.target)
    loaded = load_version(registry, add(registry, model, features_schema), alias="champion")
    assert loaded.array_input and loaded.features is None
    records = [dict(zip(data.columns, r)) for r in data.rows[:10]]
    for table in (Table(columns=data.columns, rows=data.rows[:10]),
                  Table(frame=pd.DataFrame(records))):
        # no "X has feature names" warning (warnings are errors here)
        got = loaded.predict(loaded.prepare(table), "predict")
        assert got.tolist() == model.predict(np.array(data.rows[:10])).tolist()


# -- metrics -------------------------------------------------------------------------------------

def test_metrics_exposition_format() -> None:
    m = Metrics(("/invocations", "/ping"))
    m.request("/invocations", "POST", 200, 0.002)
    m.request("/invocations", "POST", 400, 0.0004)
    m.request("/../../etc", "DELETE", 404, 0.0001)
    m.error("/invocations", "BAD_REQUEST")
    m.prediction(100, 0.0015)
    m.model = (MODEL, 3, "champion")
    text = m.render()
    assert text.endswith("\n")
    assert 'framework_serve_requests_total{path="other",method="other",status="404"} 1' in text
    buckets = re.findall(r'framework_serve_request_duration_seconds_bucket\{path="/invocations",'
                         r'method="POST",le="([^"]+)"\} (\d+)', text)
    counts = [int(c) for _, c in buckets]
    assert counts == sorted(counts) and counts[-1] == 2 and buckets[-1][0] == "+Inf"
    assert dict(buckets)["0.0005"] == "1" and dict(buckets)["0.0025"] == "2"
    assert "framework_serve_predict_rows_bucket{le=\"100.0\"} 1" in text
    assert f'framework_serve_model_version{{model="{MODEL}",alias="champion"}} 3' in text
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    for line in text.splitlines():
        if not line.startswith("#"):
            assert re.match(r"^[a-z_]+(\{.*\})? [-+0-9.eInf]+$", line), line
            assert any(line.startswith(n) for n in names)
