"""Reports people can act on: grouped by column and rule, bounded, the same as text and JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from framework.errors import SchemaViolation
from framework.schema import Report, Violation, check_table, validate

AGE = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}


def test_one_line_message_names_column_rule_rows_and_values():
    ages = [5] * 100
    ages[4], ages[17], ages[90] = -1, -3, -2
    report = check_table(pd.DataFrame({"age": ages}), AGE)
    (v,) = report.violations
    assert (v.column, v.rule, v.count, v.rows, v.values) == ("age", "minimum", 3, [4, 17, 90],
                                                             [-1, -3, -2])
    assert v.message == "column 'age': 3 rows violate minimum 0 (rows 4, 17, 90: -1, -3, -2)"


def test_report_is_bounded_whatever_the_table_size():
    df = pd.DataFrame({"age": -np.arange(1, 1_000_001)})
    report = check_table(df, AGE)
    (v,) = report.violations
    assert v.count == 1_000_000 and v.rows == [0, 1, 2, 3, 4] and len(v.values) == 5
    assert v.message.endswith("(rows 0, 1, 2, 3, 4, …: -1, -2, -3, -4, -5)")
    assert len(json.dumps(report.to_dict())) < 1000
    assert len(report.format()) < 300


def test_format_lines_up_and_respects_limit():
    df = pd.DataFrame({"age": [-1, 1.5, None], "name": ["a", "bb", "ccc"]})
    schema = {"type": "object", "properties": {
        "age": {"type": "integer", "minimum": 0}, "name": {"maxLength": 2}}}
    text = check_table(df, schema).format()
    assert text == "\n".join([
        "3 rows: 3 violations",
        "  'age'   type \"integer\"  2 rows  (rows 1: 1.5, 2: null)",
        "  'age'   minimum 0        1 row  (rows 0: -1.0)",
        "  'name'  maxLength 2      1 row  (rows 2: \"ccc\")",
    ])
    limited = check_table(df, schema).format(limit=1).splitlines()
    assert len(limited) == 3 and limited[-1] == "  … and 2 more violations"


def test_to_dict_is_json_and_marks_non_finite_values():
    df = pd.DataFrame({"x": [float("inf"), 1.0]})
    report = check_table(df, {"type": "object", "properties": {"x": {"maximum": 2}}})
    body = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert body == {"ok": False, "n_rows": 2, "n_violations": 1, "violations": [{
        "column": "x", "rule": "maximum", "expected": 2, "count": 1, "rows": [0],
        "values": ["inf"], "message": "column 'x': 1 row violates maximum 2 (rows 0: inf)"}]}


def test_to_dict_caps_the_number_of_violations():
    report = Report(1, [Violation(f"c{i}", "type", 1, [0], [None], "m") for i in range(150)])
    body = report.to_dict()
    assert len(body["violations"]) == 100 and body["truncated"] == 50


def test_ok_report():
    report = check_table(pd.DataFrame({"age": [1, 2]}), AGE)
    assert report.ok and report.format() == "2 rows: conforms to the schema"
    assert report.to_dict() == {"ok": True, "n_rows": 2, "n_violations": 0, "violations": []}


def test_long_values_are_shortened():
    df = pd.DataFrame({"s": ["x" * 500]})
    report = check_table(df, {"type": "object", "properties": {"s": {"maxLength": 3}}})
    assert len(report.violations[0].message) < 160
    assert len(report.to_dict()["violations"][0]["values"][0]) <= 60


def test_validate_raises_with_what_first_and_the_report_attached():
    df = pd.DataFrame({"age": [1, -1]})
    what = "stage 'split', output 'train' (data/train.parquet)"
    with pytest.raises(SchemaViolation, match=r"^stage 'split', output 'train' "
                       r"\(data/train\.parquet\): 2 rows: 1 violation\n  'age'") as info:
        validate(df, AGE, what=what)
    assert info.value.report.violations[0].rows == [1]
    assert validate(df.iloc[:1], AGE, what=what) is None
