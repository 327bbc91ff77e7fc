"""load_schema / compile_schema refuse what is not a valid row schema, naming file and place."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from framework.errors import SchemaError
from framework.schema import compile_schema, load_schema
from framework.schema.formats import is_rfc3339_datetime

ROW = {"type": "object", "properties": {"id": {"type": "integer"}}}


def write(tmp_path, content, name="s.json") -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_loads_a_valid_schema(tmp_path):
    assert load_schema(write(tmp_path, ROW)) == ROW


BAD = [
    ("syntax", '{"type": "object",\n  "properties": {]}',
     r"s\.json: invalid JSON at line 2, column 18: Expecting property name"),
    ("nan", '{"type": "object", "properties": {"x": {"maximum": NaN}}}',
     r"s\.json: invalid JSON: NaN is not valid JSON"),
    ("not-object", "[1, 2]", r"s\.json: a table schema must be a JSON object describing one row"),
    ("bad-type", {"type": "object", "properties": {"x": {"type": "float"}}},
     r"s\.json: not a valid JSON Schema \(draft 2020-12\) at \['properties'\]\['x'\]\['type'\]"),
    ("bad-minimum", {"properties": {"x": {"minimum": "0"}}},
     r"at \['properties'\]\['x'\]\['minimum'\]: '0' is not of type 'number'"),
    ("bad-regex", {"properties": {"x": {"pattern": "("}}},
     r"at \['properties'\]\['x'\]\['pattern'\]: '\(' is not a 'regex'"),
    ("row-not-object", {"type": "array"},
     r"a table schema describes a row, an object; its type is \"array\""),
    ("other-draft", {"$schema": "http://json-schema.org/draft-07/schema#"},
     r"only draft 2020-12 .* is supported"),
    ("min-rows", {"type": "object", "x-min-rows": -1},
     r"x-min-rows must be a non-negative integer, found -1"),
    ("rows-order", {"type": "object", "x-min-rows": 5, "x-max-rows": 2},
     r"x-min-rows 5 is above x-max-rows 2"),
    ("unique-shape", {"type": "object", "x-unique": "id"},
     r"x-unique must be a list whose items are column names or non-empty lists"),
    ("not-null-shape", {"type": "object", "x-not-null": [1]},
     r"x-not-null must be a list of column names"),
    ("unknown-column", {"type": "object", "properties": {"user_id": {}},
                        "additionalProperties": False, "x-unique": ["userid"]},
     r"column 'userid' in x-not-null/x-unique is not in properties.*did you mean 'user_id'\?"),
]


@pytest.mark.parametrize("content, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_rejects_with_a_message_naming_the_file(tmp_path, content, message):
    with pytest.raises(SchemaError, match=message):
        load_schema(write(tmp_path, content))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(SchemaError, match=r"nope\.json: schema file not found"):
        load_schema(tmp_path / "nope.json")
    with pytest.raises(SchemaError, match=r"bin\.json: cannot read the schema file"):
        (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
        load_schema(tmp_path / "bin.json")


def test_compile_schema_checks_too():
    with pytest.raises(SchemaError, match=r"^schemas/f\.json: not a valid JSON Schema"):
        compile_schema({"properties": {"x": {"maximum": "high"}}}, source="schemas/f.json")
    with pytest.raises(SchemaError, match=r"^schema: \['properties'\]\['x'\]\['maximum'\] is "
                                          r"inf, which is not valid JSON"):
        compile_schema({"properties": {"x": {"maximum": float("inf")}}})


@pytest.mark.parametrize("text, ok", [
    ("2020-01-01T10:00:00Z", True), ("2020-01-01t10:00:00z", True),
    ("2020-01-01T10:00:00.123+05:30", True), ("2020-01-01T10:00:00", False),
    ("2020-02-30T10:00:00Z", False), ("0000-01-01T00:00:00Z", False),
    ("2020-01-01T24:00:00Z", False), ("2020-01-01T10:00:60Z", False), ("2020-01-01", False),
    ("1985-04-12T23:20:50Z\n", False), ("1985-04-12T23:20:50.52Z\n", False),
])
def test_rfc3339_date_time(text, ok):
    assert is_rfc3339_datetime(text) is ok


SUITE = json.loads((Path(__file__).parent / "data" / "format_suite.json").read_text())


@pytest.mark.parametrize("fmt", ["date-time", "date"])
def test_formats_follow_the_json_schema_test_suite(fmt):
    """Every string case of the official suite, through the predicate and through the engine
    (both must agree with the suite, whatever optional packages are installed)."""
    import pandas as pd

    from framework.schema import check_table
    from framework.schema.formats import string_predicate

    cases = SUITE[fmt]
    predicate = string_predicate(fmt)
    wrong = [(data, valid, why) for data, valid, why in cases if predicate(data) is not valid]
    assert wrong == []
    report = check_table(pd.DataFrame({"x": [data for data, _, _ in cases]}),
                         {"type": "object", "properties": {"x": {"format": fmt}}})
    failing = set(report.violations[0].rows) if report.violations else set()
    counted = report.violations[0].count if report.violations else 0
    assert counted == sum(not valid for _, valid, _ in cases)
    assert failing <= {i for i, (_, valid, _) in enumerate(cases) if not valid}


def test_importing_the_package_does_not_import_pandas():
    code = ("import sys, framework.schema, framework.schema.cli; "
            "heavy = {'pandas', 'numpy', 'jsonschema'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
