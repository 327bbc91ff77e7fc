"""infer_schema(): a schema to edit and commit, which the table itself conforms to."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from framework.schema import check_table, infer_schema
from framework.schema.loading import validate_row_schema


def test_types_nullability_bounds_enums_and_formats():
    df = pd.DataFrame({
        "id": [3, 1, 2],
        "score": [0.5, np.nan, -1.25],
        "big": [1.0, np.inf, 2.0],
        "flag": [True, False, True],
        "opt": pd.array([1, None, 3], dtype="Int64"),
        "color": pd.Series(["red", "blue", None], dtype="str"),
        "level": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "mid", "hi"]),
        "day": [f"2020-01-{d:02d}" for d in (1, 2, 3)],
        "mixed": [1, "a", None],
        "empty": [None, None, None],
        "at": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]).tz_localize("UTC"),
    })
    df["day"] = df["day"].astype(object)
    schema = infer_schema(df)
    props = schema["properties"]
    assert props["id"] == {"type": "integer", "minimum": 1, "maximum": 3}
    assert props["score"] == {"type": ["number", "null"], "minimum": -1.25, "maximum": 0.5}
    assert props["big"] == {"type": "number", "minimum": 1.0}   # no bound at an infinity
    assert props["flag"] == {"type": "boolean"}
    assert props["opt"] == {"type": ["integer", "null"], "minimum": 1, "maximum": 3}
    assert props["color"] == {"type": ["string", "null"], "enum": ["blue", "red", None]}
    assert props["level"] == {"type": "string", "enum": ["lo", "mid", "hi"]}
    assert props["day"] == {"type": "string", "enum": ["2020-01-01", "2020-01-02", "2020-01-03"]}
    assert props["mixed"] == {"type": ["integer", "string", "null"]}
    assert props["empty"] == {"type": "null"}
    assert props["at"] == {"type": "string", "format": "date-time"}
    assert schema["required"] == list(df.columns)
    assert schema["additionalProperties"] is False
    assert list(schema) == ["$schema", "type", "properties", "required", "additionalProperties"]
    validate_row_schema(json.loads(json.dumps(schema)))
    assert check_table(df, schema).ok


def test_many_distinct_strings_get_no_enum_but_a_format_when_every_value_has_one():
    dates = pd.Series(pd.date_range("2020-01-01", periods=30).strftime("%Y-%m-%d"), dtype=object)
    names = pd.Series([f"user{i}" for i in range(30)], dtype="str")
    props = infer_schema(pd.DataFrame({"d": dates, "n": names}))["properties"]
    assert props == {"d": {"type": "string", "format": "date"}, "n": {"type": "string"}}


def test_empty_table():
    df = pd.DataFrame({"a": pd.Series([], dtype="float64"), "b": pd.Series([], dtype="str")})
    schema = infer_schema(df)
    assert schema["properties"] == {"a": {"type": "number"}, "b": {"type": "string"}}
    assert check_table(df, schema).ok
