"""conform(): a served request shaped to its schema, with lossless conversions only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.errors import SchemaViolation
from framework.schema import conform

SCHEMA = {
    "type": "object",
    "properties": {
        "x": {"type": "number"},
        "n": {"type": "integer", "minimum": 0},
        "opt": {"type": ["number", "null"]},
        "label": {"enum": ["a", "b"]},
    },
    "required": ["x", "n"],
    "additionalProperties": False,
}


def test_orders_columns_drops_extras_and_converts_losslessly():
    df = pd.DataFrame({"extra": [1, 2], "n": [1.0, 2.0], "label": ["a", "b"], "x": [1, 2]})
    out = conform(df, SCHEMA)
    assert list(out.columns) == ["x", "n", "label"]   # absent optional 'opt' stays absent
    assert out["x"].dtype == np.float64 and out["n"].dtype == np.int64
    assert out["x"].tolist() == [1.0, 2.0] and out["n"].tolist() == [1, 2]
    assert list(df.columns) == ["extra", "n", "label", "x"]  # the input is left alone


def test_nullable_ints_become_floats_and_integral_floats_with_nulls_become_Int64():
    df = pd.DataFrame({"x": [1, 2], "opt": pd.array([1, None], dtype="Int64"),
                       "n": [3.0, np.nan]})
    schema = {**SCHEMA, "properties": {**SCHEMA["properties"],
                                       "n": {"type": ["integer", "null"]}}}
    out = conform(df, schema)
    assert out["opt"].dtype == np.float64 and np.isnan(out["opt"][1])
    assert str(out["n"].dtype) == "Int64" and out["n"].isna().tolist() == [False, True]


def test_extra_columns_kept_when_additional_properties_allowed():
    df = pd.DataFrame({"z": [0], "n": [1], "x": [0.5]})
    out = conform(df, {**SCHEMA, "additionalProperties": True})
    assert list(out.columns) == ["x", "n", "z"]


def test_no_unsafe_conversions():
    df = pd.DataFrame({"x": ["1.5"], "n": [1.5]})   # a numeric string; a non-integral float
    with pytest.raises(SchemaViolation, match=r"^request: 1 row: 2 violations") as info:
        conform(df, SCHEMA)
    assert [(v.column, v.rule) for v in info.value.report.violations] == [
        ("x", "type"), ("n", "type")]


def test_large_ints_stay_ints():
    df = pd.DataFrame({"x": [2**53 + 1], "n": [1]})
    out = conform(df, SCHEMA)
    assert out["x"].dtype == np.int64 and out["x"][0] == 2**53 + 1


def test_missing_required_column_raises_with_the_report():
    with pytest.raises(SchemaViolation, match=r"'n'  required  1 row  is required but absent"
                       ) as info:
        conform(pd.DataFrame({"x": [1.0]}), SCHEMA, what="POST /invocations")
    assert str(info.value).startswith("POST /invocations: 1 row: 1 violation")
    assert info.value.report.violations[0].rule == "required"


def test_values_out_of_range_raise():
    with pytest.raises(SchemaViolation, match=r"'n'\s+minimum 0\s+1 row\s+\(rows 1: -4\)"):
        conform(pd.DataFrame({"x": [1.0, 2.0], "n": [1, -4]}), SCHEMA)
