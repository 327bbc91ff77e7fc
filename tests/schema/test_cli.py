"""``python -m framework schema ...`` as a real subprocess: output, files and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

SCHEMA = {
    "type": "object",
    "properties": {"age": {"type": "integer", "minimum": 0}, "name": {"type": "string"}},
    "required": ["age", "name"],
    "additionalProperties": False,
}


def run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "framework", "schema", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def files(tmp_path):
    pd.DataFrame({"age": [30, -1, 40], "name": ["a", "b", "c"]}).to_parquet(
        tmp_path / "bad.parquet")
    pd.DataFrame({"age": [30, 41], "name": ["a", "b"]}).to_csv(tmp_path / "good.csv",
                                                              index=False)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    return tmp_path


def test_infer_prints_stable_pretty_json(files):
    result = run("infer", "good.csv", cwd=files)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["properties"] == {"age": {"type": "integer", "minimum": 30, "maximum": 41},
                                    "name": {"type": "string", "enum": ["a", "b"]}}
    assert result.stdout == json.dumps(schema, indent=2) + "\n"


def test_infer_writes_the_file_atomically(files):
    result = run("infer", "bad.parquet", "-o", "out/inferred.json", cwd=files)
    assert result.returncode == 2 and "out/inferred.json: cannot write" in result.stderr
    (files / "out").mkdir()
    result = run("infer", "bad.parquet", "-o", "out/inferred.json", cwd=files)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert os.listdir(files / "out") == ["inferred.json"]   # no temporary file left behind
    written = json.loads((files / "out" / "inferred.json").read_text())
    assert written["required"] == ["age", "name"]


def test_check_conforming_table_exits_0(files):
    result = run("check", "good.csv", "schema.json", cwd=files)
    assert (result.returncode, result.stdout) == (0, "good.csv: 2 rows: conforms to the schema\n")


def test_check_failing_table_exits_1_with_the_report(files):
    result = run("check", "bad.parquet", "schema.json", cwd=files)
    assert result.returncode == 1
    assert result.stdout == ("bad.parquet: 3 rows: 1 violation\n"
                             "  'age'  minimum 0  1 row  (rows 1: -1)\n")


def test_check_json(files):
    result = run("check", "bad.parquet", "schema.json", "--json", cwd=files)
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["table"] == "bad.parquet" and body["ok"] is False
    assert body["violations"][0]["message"] == (
        "column 'age': 1 row violates minimum 0 (rows 1: -1)")


@pytest.mark.parametrize("args, message", [
    (("check", "good.csv", "missing.json"), "error: missing.json: schema file not found"),
    (("check", "good.csv", "broken.json"), "error: broken.json: invalid JSON at line 1, column"),
    (("check", "good.csv", "invalid.json"), "error: invalid.json: not a valid JSON Schema"),
    (("check", "nope.parquet", "schema.json"), "error: nope.parquet: file not found"),
    (("check", "corrupt.parquet", "schema.json"), "error: corrupt.parquet: cannot read as "
                                                  "parquet"),
    (("infer", "table.xlsx"), "error: table.xlsx: cannot tell the table format"),
], ids=["schema-missing", "schema-syntax", "schema-invalid", "table-missing", "table-corrupt",
        "table-format"])
def test_user_errors_exit_2_naming_the_file(files, args, message):
    (files / "broken.json").write_text("{")
    (files / "invalid.json").write_text('{"properties": {"age": {"minimum": "zero"}}}')
    (files / "corrupt.parquet").write_bytes(b"not parquet")
    result = run(*args, cwd=files)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr


def test_usage_errors_exit_2(files):
    result = run(cwd=files)
    assert result.returncode == 2 and "usage: python -m framework schema" in result.stderr
    assert run("--help", cwd=files).returncode == 0


def test_describe_prints_the_plan(files):
    result = run("describe", "schema.json", cwd=files)
    assert result.returncode == 0
    assert result.stdout.splitlines()[:3] == [
        "schema.json: 2 columns, 2 vectorized, 0 via jsonschema",
        "  'age'   type \"integer\"; minimum 0",
        "  'name'  type \"string\"",
    ]
