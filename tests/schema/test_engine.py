"""The engine on hand-picked cases: each is compared with jsonschema row by row and with the
failure we expect, so a reader sees the semantics (nulls, ints vs floats, inf, booleans)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from schema_oracle import engine_failures, reference_failures

from framework.schema import check_table, compile_schema

INF = float("inf")


def failing(series, subschema) -> list[tuple[int, str]]:
    """(row, rule) failures of one column; asserts jsonschema agrees."""
    df = pd.DataFrame({"c": series})
    schema = {"type": "object", "properties": {"c": subschema}}
    got = engine_failures(compile_schema(schema), df)
    assert got == reference_failures(df, schema)
    return sorted((row, rule) for row, _, rule in got)


CASES = [
    # (id, cells, dtype, subschema, failing (row, rule))
    ("3.0 and -0.0 are integers, inf is not", [3.0, -0.0, INF, 1.5], "float64",
     {"type": "integer"}, [(2, "type"), (3, "type")]),
    ("booleans are not integers", [True, 1, 2.0], object, {"type": "integer"}, [(0, "type")]),
    ("booleans are not numbers", [True, False], bool, {"type": "number"},
     [(0, "type"), (1, "type")]),
    ("a boolean never equals 1", [True, False], bool, {"enum": [1, 0]},
     [(0, "enum"), (1, "enum")]),
    ("1 equals 1.0", [1, 2], "int64", {"enum": [1.0]}, [(1, "enum")]),
    ("nan is null", [1.0, np.nan], "float64", {"type": "number"}, [(1, "type")]),
    ("null allowed by a type union", [1.0, np.nan], "float64", {"type": ["number", "null"]}, []),
    ("pd.NA is null", [1, None], "Int64", {"type": "integer", "minimum": 0}, [(1, "type")]),
    ("null passes bounds", [np.nan], "float64", {"minimum": 0, "maximum": 1}, []),
    ("null fails an enum without null", ["a", None], "str", {"enum": ["a"]}, [(1, "enum")]),
    ("null passes an enum with null", ["a", None], "str", {"enum": ["a", None]}, []),
    ("int above a float bound, exactly", [2**53 + 1], "int64", {"maximum": 2.0**53},
     [(0, "maximum")]),
    ("float below an int bound floats cannot hold", [2.0**53], "float64",
     {"minimum": 2**53 + 1}, [(0, "minimum")]),
    ("bound beyond int64", [2**63 - 1], "int64", {"minimum": 2**63}, [(0, "minimum")]),
    ("exclusive bound between ints", [2, 3], "int64", {"exclusiveMaximum": 2.5},
     [(1, "exclusiveMaximum")]),
    ("inf is beyond every bound", [INF, -INF], "float64", {"minimum": -1e308, "maximum": 1e308},
     [(0, "maximum"), (1, "minimum")]),
    ("multipleOf uses float division as jsonschema does", [0.3, 0.2], "float64",
     {"multipleOf": 0.1}, [(0, "multipleOf")]),
    ("multipleOf with an int divisor", [4, 6, 7], "int64", {"multipleOf": 2},
     [(2, "multipleOf")]),
    ("inf is a multiple of nothing", [INF, 4.0], "float64", {"multipleOf": 2},
     [(0, "multipleOf")]),
    ("huge quotient: exact fractions", [1e308], "float64", {"multipleOf": 1e-300},
     [(0, "multipleOf")]),
    ("lengths count code points", ["é", "ab"], "str", {"maxLength": 1}, [(1, "maxLength")]),
    ("pattern searches, Python re", ["xa", "b"], object, {"pattern": "a"}, [(1, "pattern")]),
    ("format date", ["2020-02-29", "2021-02-29", "2020-1-1"], "str", {"format": "date"},
     [(1, "format"), (2, "format")]),
    ("format date-time needs an offset", ["2020-01-01T00:00:00Z", "2020-01-01T00:00:00"],
     "str", {"format": "date-time"}, [(1, "format")]),
    ("other formats are annotations", ["not an email"], "str", {"format": "email"}, []),
    ("string keywords ignore numbers", [1, 2], "int64", {"maxLength": 0, "pattern": "x"}, []),
    ("numeric keywords ignore strings", ["a"], "str", {"minimum": 5, "multipleOf": 2}, []),
    ("const", [1.0, 2.0], "float64", {"const": 1}, [(1, "const")]),
    ("categorical cells are their category", ["a", "z", None], "category",
     {"enum": ["a", "b"]}, [(1, "enum"), (2, "enum")]),
    ("mixed objects, value by value", [1, "a", None, [1]], object,
     {"type": ["integer", "string"], "maxLength": 0}, [(1, "maxLength"), (2, "type"),
                                                       (3, "type")]),
    ("python ints beyond int64", [2**64, 1], object, {"maximum": 2**64 - 1}, [(0, "maximum")]),
    ("uint64 beyond int64", [2**64 - 1, 1], "uint64", {"maximum": 2**64 - 2}, [(0, "maximum")]),
    ("a false subschema fails every row", [1, None], object, False, [(0, "false"), (1, "false")]),
    ("unknown x- keywords are ignored", [1], "int64", {"x-role": "target", "type": "integer"}, []),
]


@pytest.mark.parametrize("cells, dtype, subschema, expected",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_semantics_match_jsonschema(cells, dtype, subschema, expected):
    assert failing(pd.Series(cells, dtype=dtype), subschema) == expected


def test_datetimes_are_iso_strings():
    naive = pd.Series(pd.to_datetime(["2020-01-01 10:00"]))
    assert failing(naive, {"type": "string", "format": "date-time"}) == [(0, "format")]
    assert failing(naive.dt.tz_localize("UTC"), {"type": "string", "format": "date-time"}) == []
    assert failing(naive, {"pattern": "^2020-01-01T10:00:00$"}) == []


def test_columns_absent_extra_and_required():
    df = pd.DataFrame({"a": [1, 2], "extra": [None, None]})
    schema = {"type": "object", "properties": {"a": {}, "b": {}, "c": {}},
              "required": ["a", "b"], "additionalProperties": False}
    report = check_table(df, schema)
    assert [(v.column, v.rule, v.count) for v in report.violations] == [
        ("b", "required", 2), ("extra", "additionalProperties", 2)]
    assert report.violations[0].message == (
        "column 'b': is required but absent from the table (all 2 rows)")
    # an absent optional column is fine; an empty table breaks no row rule
    assert check_table(df[["a"]], {**schema, "required": ["a"]}).ok
    assert check_table(df.iloc[:0], schema).ok


def test_patternproperties_and_additionalproperties_schema():
    df = pd.DataFrame({"x_1": [1, -1], "x_2": ["a", "b"], "other": [-5, 5]})
    schema = {"type": "object", "patternProperties": {"^x_": {"type": "integer"}},
              "additionalProperties": {"minimum": 0}}
    compiled = compile_schema(schema)
    assert engine_failures(compiled, df) == reference_failures(df, schema) == {
        (0, "x_2", "type"), (1, "x_2", "type"), (0, "other", "minimum")}


def test_root_keywords_fall_back_to_rows():
    df = pd.DataFrame({"kind": ["a", "b", "b"], "size": [1, 2, None]})
    schema = {"type": "object", "properties": {"kind": {"enum": ["a", "b"]}},
              "if": {"properties": {"kind": {"const": "b"}}},
              "then": {"properties": {"size": {"type": "number"}}},
              "minProperties": 3}
    compiled = compile_schema(schema)
    assert engine_failures(compiled, df) == reference_failures(df, schema)
    assert "rows via jsonschema for root if" in compiled.describe()
    assert "minProperties (checked once)" in compiled.describe()


def test_fallback_columns_are_named_with_the_reason():
    schema = {"type": "object", "$defs": {"pos": {"minimum": 0}}, "properties": {
        "a": {"type": "number", "minimum": 0},
        "b": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "c": {"$ref": "#/$defs/pos"},
    }}
    compiled = compile_schema(schema, source="schemas/x.json")
    assert compiled.fallback_columns == {"b": "anyOf not vectorized",
                                         "c": "$ref not vectorized"}
    plan = compiled.describe()
    assert plan.splitlines()[0] == "schemas/x.json: 3 columns, 1 vectorized, 2 via jsonschema"
    assert "'a'  type \"number\"; minimum 0" in plan
    df = pd.DataFrame({"a": [1.0, -1.0], "b": ["x", 3], "c": [-1, 1]})
    assert engine_failures(compiled, df) == reference_failures(df, schema) == {
        (1, "a", "minimum"), (1, "b", "anyOf"), (0, "c", "minimum")}


def test_table_keywords():
    df = pd.DataFrame({"id": [1, 2, 2, None, None], "a": [1, 1, 1, 2, 2],
                       "b": ["x", "y", "y", "x", "x"]})
    schema = {"type": "object", "x-min-rows": 6, "x-max-rows": 10,
              "x-unique": ["id", ["a", "b"]], "x-not-null": ["id", "a"]}
    report = check_table(df, schema)
    got = {(v.column, v.rule): (v.count, v.rows) for v in report.violations}
    assert got == {
        (None, "x-min-rows"): (1, []),
        ("id", "x-unique"): (1, [2]),           # nulls are not compared (as in SQL)
        (None, "x-unique"): (2, [2, 4]),         # composite key (a, b)
        ("id", "x-not-null"): (2, [3, 4]),
    }
    messages = [v.message for v in report.violations]
    assert "table: 5 rows, fewer than x-min-rows 6" in messages
    assert "columns 'a', 'b': 2 rows repeat the key of an earlier row (x-unique) " \
           "(rows 2, 4: [1, \"y\"], [2, \"x\"])" in messages
    assert check_table(df.iloc[:0], {"type": "object", "x-max-rows": 0}).ok
    lists = pd.DataFrame({"l": [[1], [1], [2]]})  # unhashable cells compare by JSON text
    (v,) = check_table(lists, {"type": "object", "x-unique": ["l"]}).violations
    assert (v.rule, v.rows, v.values) == ("x-unique", [1], [[1]])


def test_duplicate_and_non_string_column_names():
    df = pd.DataFrame([[1, 2, 3]], columns=["a", "a", 5])
    report = check_table(df, {"type": "object", "properties": {"5": {"type": "string"}}})
    assert [(v.column, v.rule) for v in report.violations] == [("a", "columns"), ("5", "type")]


def test_failing_rows_lists_every_row():
    df = pd.DataFrame({"x": np.arange(1000)})
    rows = compile_schema({"type": "object", "properties": {"x": {"maximum": 10}}}
                          ).failing_rows(df)
    assert list(rows) == [("x", "maximum")]
    assert rows[("x", "maximum")].tolist() == list(range(11, 1000))


def test_compile_is_memoized_by_content():
    a = compile_schema({"type": "object", "properties": {"x": {"minimum": 0}}})
    b = compile_schema({"type": "object", "properties": {"x": {"minimum": 0}}})
    assert a is b


def test_inf_with_float_multipleof_is_a_violation_where_jsonschema_raises():
    report = check_table(pd.DataFrame({"x": [INF, 1.0]}),
                         {"type": "object", "properties": {"x": {"multipleOf": 0.5}}})
    assert [(v.rule, v.rows) for v in report.violations] == [("multipleOf", [0])]


def test_a_large_valid_table_passes():
    n = 200_000
    df = pd.DataFrame({f"f{i}": np.random.default_rng(i).random(n) for i in range(5)})
    df["cat"] = pd.Categorical(["a", "b"] * (n // 2))
    schema = {"type": "object", "properties": {
        **{f"f{i}": {"type": "number", "minimum": 0, "maximum": 1} for i in range(5)},
        "cat": {"enum": ["a", "b"]}}, "required": list(df.columns)}
    assert check_table(df, schema).ok


def test_the_keyword_list_is_jsonschemas() -> None:
    from jsonschema import Draft202012Validator

    from framework.schema.engine import DRAFT_2020_12_KEYWORDS

    assert frozenset(Draft202012Validator.VALIDATORS) == DRAFT_2020_12_KEYWORDS


def test_checking_plain_columns_never_imports_jsonschema() -> None:
    # a server checks every request this way: jsonschema is imported only for what needs it
    code = (
        "import sys, pandas as pd\n"
        "from framework.schema import compile_schema, validate\n"
        "schema = {'type': 'object', 'required': ['x'], 'properties': {\n"
        "    'x': {'type': 'number', 'minimum': 0}, 's': {'type': 'string', 'enum': ['a']}}}\n"
        "validate(pd.DataFrame({'x': [1.0, 2.0], 's': ['a', 'a']}),\n"
        "         compile_schema(schema, checked=True), what='t')\n"
        "assert 'jsonschema' not in sys.modules, 'jsonschema imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
