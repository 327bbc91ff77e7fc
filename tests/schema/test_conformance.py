"""Property-based conformance: the engine's verdict equals jsonschema's, row by row.

Hypothesis draws tables (numpy, nullable and pyarrow-backed dtypes, categoricals, object columns
of mixed Python values; NaN, None, pd.NA, -0.0, inf, ints beyond 2**53 and near 2**63) and schemas
(every vectorized keyword, bounds that floats or int64 cannot hold exactly, enums mixing types,
fallback keywords, root applicators), and compares the set of (row, column, keyword) failures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schema_oracle import engine_failures, reference_failures

from framework.schema import compile_schema, infer_schema

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

BIG_INTS = [0, 1, -1, 3, 2**53, 2**53 + 1, -(2**53) - 1, 2**62, 2**63 - 1, -(2**63)]
SPECIAL_FLOATS = [0.0, -0.0, 0.5, 1.5, 3.0, -2.0, 0.1, 2.0**53, 1e300, -1e300, 5e-324,
                  float("inf"), float("-inf"), float("nan")]
TEXT = st.one_of(
    st.text(alphabet="abc019-:TZtz é\n", max_size=8),
    st.sampled_from(["2020-01-01", "2020-02-30", "0000-01-01", "2020-1-01", "2024-02-29",
                     "2020-01-01T10:00:00Z", "2020-01-01t10:00:00z", "2020-01-01T10:00:00",
                     "2020-01-01T24:00:00+01:00", "2020-01-01T10:00:00.5-05:30",
                     "2020-01-01T10:00:60Z", "2021-02-29T00:00:00Z", "2020-01-01\n", "a\n"]),
)
SMALL_INTS = st.one_of(st.integers(-5, 5), st.sampled_from(BIG_INTS))
FLOATS = st.one_of(st.floats(-10, 10), st.sampled_from(SPECIAL_FLOATS),
                   st.floats(allow_nan=True, allow_infinity=True))
NULLS = st.sampled_from([None, np.nan, pd.NA])

FAMILIES = ["float64", "float32", "int64", "Int64", "uint8", "bool", "boolean", "Float64",
            "str", "object-str", "object-mixed", "object-ints", "object-lists", "category",
            "category-int", "datetime", "datetime-tz", "int64[pyarrow]", "string[pyarrow]",
            "all-null"]


def _maybe_null(values: st.SearchStrategy, p_null: bool) -> st.SearchStrategy:
    return st.one_of(values, NULLS) if p_null else values


@st.composite
def column(draw, family: str, n: int) -> pd.Series:
    nulls = draw(st.booleans())
    cells = lambda strat: draw(st.lists(strat, min_size=n, max_size=n))  # noqa: E731
    if family == "float64":
        return pd.Series(cells(FLOATS), dtype="float64")
    if family == "float32":
        return pd.Series(cells(st.floats(width=32)), dtype="float32")
    if family == "int64":
        return pd.Series(cells(SMALL_INTS), dtype="int64")
    if family == "Int64":
        return pd.Series(cells(_maybe_null(SMALL_INTS, nulls)), dtype="Int64")
    if family == "uint8":
        return pd.Series(cells(st.integers(0, 255)), dtype="uint8")
    if family == "bool":
        return pd.Series(cells(st.booleans()), dtype=bool)
    if family == "boolean":
        return pd.Series(cells(_maybe_null(st.booleans(), nulls)), dtype="boolean")
    if family == "Float64":
        return pd.Series(cells(_maybe_null(st.floats(-10, 10), nulls)), dtype="Float64")
    if family == "str":
        return pd.Series(cells(_maybe_null(TEXT, nulls)), dtype="str")
    if family == "object-str":
        return pd.Series(cells(_maybe_null(TEXT, nulls)), dtype=object)
    if family == "object-mixed":
        mixed = st.one_of(SMALL_INTS, FLOATS, TEXT, st.booleans(), NULLS,
                          st.sampled_from([np.int64(7), np.float32(0.5), np.bool_(True)]))
        return pd.Series(cells(mixed), dtype=object)
    if family == "object-ints":
        return pd.Series(cells(_maybe_null(st.one_of(SMALL_INTS, st.sampled_from(
            [2**64, -(2**70)])), nulls)), dtype=object)
    if family == "object-lists":
        items = st.one_of(st.lists(st.integers(-3, 3), max_size=3), st.integers(-3, 3), NULLS)
        return pd.Series(cells(items), dtype=object)
    if family == "category":
        return pd.Series(cells(st.sampled_from(["a", "b", "2020-01-01", "", None])),
                         dtype="category")
    if family == "category-int":
        return pd.Series(cells(st.sampled_from([1, 2, -3, None])), dtype="category")
    if family in ("datetime", "datetime-tz"):
        stamps = st.one_of(st.datetimes(min_value=pd.Timestamp("1900-01-01").to_pydatetime(),
                                        max_value=pd.Timestamp("2200-01-01").to_pydatetime()),
                           st.none())
        s = pd.Series(pd.to_datetime(cells(stamps)))
        return s.dt.tz_localize("UTC") if family == "datetime-tz" else s
    if family == "int64[pyarrow]":
        return pd.Series(cells(_maybe_null(SMALL_INTS, nulls)), dtype="int64[pyarrow]")
    if family == "string[pyarrow]":
        return pd.Series(cells(_maybe_null(TEXT, nulls)), dtype="string[pyarrow]")
    if family == "all-null":
        return pd.Series([None] * n, dtype=object)
    raise AssertionError(family)


BOUNDS = st.one_of(st.integers(-5, 5), st.floats(-5, 5), st.sampled_from(
    [2**53 + 1, -(2**53) - 1, 2**63, 2**63 - 1, -(2**63) - 1, 10**30, 0.5, -0.0, 1e300,
     9007199254740993, 2.5, 10**400]))
ENUM_ITEMS = st.one_of(st.none(), st.booleans(), SMALL_INTS, st.floats(-5, 5),
                       st.sampled_from([0.5, -0.0, 3.0, 2**53 + 1, 10**30]),
                       st.sampled_from(["a", "b", "", "2020-01-01"]),
                       st.lists(st.integers(-3, 3), max_size=2))
TYPES = ["integer", "number", "string", "boolean", "null", "array", "object"]
FALLBACKS = [
    {"anyOf": [{"type": "string"}, {"minimum": 0}]},
    {"not": {"const": 1}},
    {"$ref": "#/$defs/small"},
    {"allOf": [{"maximum": 2}, {"type": ["number", "null"]}]},
    {"items": {"minimum": 0}},
    {"if": {"type": "number"}, "then": {"multipleOf": 2}},
]


@st.composite
def column_schema(draw) -> dict | bool:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.booleans())
    schema: dict = {}
    if draw(st.booleans()):
        types = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True))
        schema["type"] = types[0] if len(types) == 1 and draw(st.booleans()) else types
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if draw(st.integers(0, 3)) == 0:
            schema[key] = draw(BOUNDS)
    if draw(st.integers(0, 3)) == 0:
        schema["multipleOf"] = draw(st.sampled_from([1, 2, 3, 0.5, 0.1, 2.0, 1.5, 2**64,
                                                     1e-300, 7]))
    if draw(st.integers(0, 3)) == 0:
        schema["enum"] = draw(st.lists(ENUM_ITEMS, min_size=1, max_size=4))
    if draw(st.integers(0, 6)) == 0:
        schema["const"] = draw(ENUM_ITEMS)
    for key in ("minLength", "maxLength"):
        if draw(st.integers(0, 4)) == 0:
            schema[key] = draw(st.integers(0, 4))
    if draw(st.integers(0, 4)) == 0:
        schema["pattern"] = draw(st.sampled_from(["^a", "b$", "\\d", "^[a-c]*$", "é", "^$",
                                                  "^\\w+$"]))
    if draw(st.integers(0, 3)) == 0:
        schema["format"] = draw(st.sampled_from(["date", "date-time", "email"]))
    if draw(st.integers(0, 8)) == 0:
        schema.update(draw(st.sampled_from(FALLBACKS)))
    if draw(st.integers(0, 6)) == 0:
        schema["x-role"] = "target"
    return schema


def _no_inf_with_float_multiple(series: pd.Series, subschema) -> pd.Series:
    """jsonschema itself raises on inf with a float multipleOf; keep that pair out."""
    if isinstance(subschema, dict) and isinstance(subschema.get("multipleOf"), float):
        if series.dtype == object:
            return series.map(lambda v: 1.0 if isinstance(v, float) and np.isinf(v) else v)
        if series.dtype.kind == "f":
            return series.replace([np.inf, -np.inf], 1.0)
    if isinstance(subschema, dict) and subschema.get("multipleOf") == 2**64:
        if series.dtype == object or series.dtype.kind == "f":
            return series.map(lambda v: 1.0 if isinstance(v, float) and np.isinf(v) else v)
    return series


@st.composite
def table_and_schema(draw):
    n = draw(st.integers(0, 8))
    families = draw(st.lists(st.sampled_from(FAMILIES), min_size=1, max_size=4))
    names = [f"c{i}" for i in range(len(families))]
    properties = {}
    for name in names:
        if draw(st.integers(0, 4)):
            properties[name] = draw(column_schema())
    if draw(st.booleans()):
        properties["absent"] = draw(column_schema())
    data = {}
    for name, family in zip(names, families):
        data[name] = _no_inf_with_float_multiple(draw(column(family, n)), properties.get(name))
    df = pd.DataFrame(data, index=range(n))
    schema: dict = {"type": "object", "properties": properties,
                    "$defs": {"small": {"maximum": 3}}}
    if draw(st.booleans()):
        schema["required"] = draw(st.lists(st.sampled_from([*names, "absent", "other"]),
                                           max_size=3, unique=True))
    extra = draw(st.integers(0, 5))
    if extra == 1:
        schema["additionalProperties"] = False
    elif extra == 2:
        schema["additionalProperties"] = {"type": ["number", "null"], "minimum": 0}
    elif extra == 3:
        schema["patternProperties"] = {"^c[02]": {"type": ["string", "null"]}}
    root = draw(st.integers(0, 10))
    if root == 1:
        schema["allOf"] = [{"required": [names[0]]}, {"properties": {names[0]: {"minimum": 1}}}]
    elif root == 2:
        schema["minProperties"] = 3
        schema["propertyNames"] = {"maxLength": 2}
    elif root == 3:
        schema["if"] = {"properties": {names[0]: {"type": "number"}}}
        schema["then"] = {"properties": {names[-1]: {"type": "string"}}}
    elif root == 4:
        schema["dependentRequired"] = {names[0]: ["zz"]}
    elif root == 5:
        schema["unevaluatedProperties"] = False
    if draw(st.integers(0, 4)) == 0:
        schema["x-min-rows"] = 1
    return df, schema


@SETTINGS
@given(table_and_schema())
def test_engine_agrees_with_jsonschema_row_by_row(case):
    df, schema = case
    compiled = compile_schema(schema)
    expected = reference_failures(df, schema)
    assert engine_failures(compiled, df) == expected
    report = compiled.check(df)
    row_rules = [v for v in report.violations if not v.rule.startswith("x-")]
    assert (not row_rules) == (not expected)


TYPE_KEYWORDS = st.one_of(
    st.builds(lambda t: {"type": t}, st.one_of(
        st.sampled_from(TYPES), st.lists(st.sampled_from(TYPES), min_size=1, max_size=3,
                                         unique=True))),
    st.builds(lambda e: {"enum": e}, st.lists(ENUM_ITEMS, min_size=1, max_size=5)),
    st.builds(lambda c: {"const": c}, ENUM_ITEMS),
)
NUMBER_KEYWORDS = st.one_of(
    TYPE_KEYWORDS,
    st.builds(lambda k, b: {k: b}, st.sampled_from(
        ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]), BOUNDS),
    st.builds(lambda d: {"multipleOf": d}, st.sampled_from([1, 2, 3, 7, 2**64, 2.0, 1.5, 0.1])),
)
STRING_KEYWORDS = st.one_of(
    TYPE_KEYWORDS,
    st.builds(lambda k, n: {k: n}, st.sampled_from(["minLength", "maxLength"]),
              st.integers(0, 4)),
    st.builds(lambda p: {"pattern": p}, st.sampled_from(["^a", "\\d", "^[a-c]*$", "^$"])),
    st.builds(lambda f: {"format": f}, st.sampled_from(["date", "date-time"])),
)
NUMBER_FAMILIES = ["float64", "float32", "int64", "Int64", "uint8", "Float64", "object-mixed",
                   "object-ints", "category-int", "int64[pyarrow]", "bool", "boolean"]
STRING_FAMILIES = ["str", "object-str", "object-mixed", "category", "datetime", "datetime-tz",
                   "string[pyarrow]"]


def _family_and_keyword(families, keywords):
    return st.sampled_from(families).flatmap(lambda f: st.tuples(
        st.integers(1, 12).flatmap(lambda n: column(f, n)), keywords))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_family_and_keyword(NUMBER_FAMILIES, NUMBER_KEYWORDS),
                 _family_and_keyword(STRING_FAMILIES, STRING_KEYWORDS),
                 _family_and_keyword(FAMILIES, TYPE_KEYWORDS)))
def test_each_keyword_on_each_dtype_agrees_with_jsonschema(case):
    series, subschema = case
    series = _no_inf_with_float_multiple(series, subschema)
    df = pd.DataFrame({"c": series})
    schema = {"type": "object", "properties": {"c": subschema}}
    assert engine_failures(compile_schema(schema), df) == reference_failures(df, schema)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 8).flatmap(lambda n: st.lists(
    st.sampled_from(FAMILIES).flatmap(lambda f: column(f, n)), min_size=1, max_size=5)))
def test_a_table_conforms_to_the_schema_inferred_from_it(columns):
    df = pd.DataFrame({f"c{i}": s for i, s in enumerate(columns)})
    schema = infer_schema(df)
    assert compile_schema(schema).check(df).ok
    assert not reference_failures(df, schema)

