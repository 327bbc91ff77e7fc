"""The stage runner: checks inputs and outputs against their schemas and writes atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_cli

SCHEMA = {
    "type": "object",
    "properties": {"age": {"type": "integer", "minimum": 0}, "city": {"type": "string", "enum": ["a", "b"]}},
    "required": ["age", "city"],
    "additionalProperties": False,
}
STAGES = '''
import pandas as pd

def make(*, rows):
    return {"table": pd.DataFrame(rows)}

def copy(table):
    return {"table": table, "metrics": {"n": len(table)}}

def forgets(table):
    return {"metrics": {"n": len(table)}}
'''


@pytest.fixture
def stage_project(tmp_path: Path) -> Path:
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps/__init__.py").write_text("")
    (tmp_path / "steps/table.py").write_text(STAGES)
    (tmp_path / "table.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "metrics.json").write_text(json.dumps(
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]}))
    return tmp_path


def params(root: Path, rows: list[dict]) -> None:
    (root / "params.yaml").write_text(json.dumps({"rows": rows}))  # JSON is YAML


def make(root: Path, out: str = "data/out.parquet"):
    return run_cli(root, "stage", "make", "--run", "steps.table.make", "--params", "rows",
                   "--out", f"table={out}", "--schema", "table=table.json")


def test_valid_output_is_written(stage_project: Path) -> None:
    params(stage_project, [{"age": 3, "city": "a"}, {"age": 5, "city": "b"}])
    proc = make(stage_project)
    assert proc.returncode == 0, proc.stderr
    assert pd.read_parquet(stage_project / "data/out.parquet")["age"].tolist() == [3, 5]


def test_output_violation_exits_2_names_everything_and_writes_nothing(stage_project: Path) -> None:
    params(stage_project, [{"age": 3, "city": "a"}])
    assert make(stage_project).returncode == 0
    before = (stage_project / "data/out.parquet").read_bytes()
    params(stage_project, [{"age": 3, "city": "a"}, {"age": -1, "city": "a"}, {"age": -7, "city": "c"}])
    proc = make(stage_project)
    assert proc.returncode == 2
    message = proc.stderr
    assert "stage 'make', output 'table' (data/out.parquet)" in message
    assert "age" in message and "minimum" in message and "city" in message and "enum" in message
    assert "-1" in message and "-7" in message  # example values
    assert (stage_project / "data/out.parquet").read_bytes() == before
    assert sorted(p.name for p in (stage_project / "data").iterdir()) == ["out.parquet"]


def test_input_violation_stops_before_the_function_runs(stage_project: Path) -> None:
    (stage_project / "data").mkdir()
    pd.DataFrame({"age": [1, 2], "city": ["a", "zz"]}).to_parquet(stage_project / "data/in.parquet")
    params(stage_project, [])
    proc = run_cli(stage_project, "stage", "copy", "--run", "steps.table.copy",
                   "--in", "table=data/in.parquet", "--out", "table=data/copy.parquet",
                   "--metrics", "metrics/copy.json", "--schema", "table=table.json")
    assert proc.returncode == 2
    assert "stage 'copy', input 'table' (data/in.parquet)" in proc.stderr and "zz" in proc.stderr
    assert not (stage_project / "data/copy.parquet").exists()
    assert not (stage_project / "metrics").exists()


def test_metrics_are_checked_against_their_schema(stage_project: Path) -> None:
    (stage_project / "data").mkdir()
    pd.DataFrame({"age": pd.Series([], dtype="int64"), "city": pd.Series([], dtype="str")}).to_parquet(
        stage_project / "data/in.parquet")
    params(stage_project, [])
    proc = run_cli(stage_project, "stage", "copy", "--run", "steps.table.copy",
                   "--in", "table=data/in.parquet", "--out", "table=data/copy.parquet",
                   "--metrics", "metrics/copy.json", "--schema", "metrics=metrics.json")
    assert proc.returncode == 2
    assert "stage 'copy', metrics (metrics/copy.json)" in proc.stderr
    assert "n: 0 is less than the minimum of 1 (minimum)" in proc.stderr
    assert not (stage_project / "data/copy.parquet").exists()


def test_function_that_returns_too_little_fails_with_the_declared_names(stage_project: Path) -> None:
    (stage_project / "data").mkdir()
    pd.DataFrame({"age": [1], "city": ["a"]}).to_parquet(stage_project / "data/in.parquet")
    params(stage_project, [])
    proc = run_cli(stage_project, "stage", "forgets", "--run", "steps.table.forgets",
                   "--in", "table=data/in.parquet", "--out", "table=data/copy.parquet",
                   "--metrics", "metrics/copy.json")
    assert proc.returncode == 1
    assert "steps.table.forgets returned no 'table' (declared: metrics, table)" in proc.stderr
    assert not (stage_project / "metrics/copy.json").exists()


def test_stale_params_file_is_a_clear_error(stage_project: Path) -> None:
    params(stage_project, [])
    proc = run_cli(stage_project, "stage", "make", "--run", "steps.table.make", "--params", "rowz",
                   "--out", "table=data/out.parquet")
    assert proc.returncode == 2
    assert "params.yaml: no key 'rowz'" in proc.stderr
