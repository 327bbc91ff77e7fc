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


def _blocks() -> list[dict]:
    """Every ``_target_`` block the bundled config can compose, resolved (``${seed}`` and all)."""
    import yaml

    root = Path(__file__).resolve().parents[1] / "conf"
    blocks = []
    for path in sorted([*root.glob("model/*.yaml"), *root.glob("preprocess/*.yaml")]):
        block = yaml.safe_load(path.read_text())
        if isinstance(block, dict) and "_target_" in block:
            blocks.append({k: 42 if v == "${seed}" else v for k, v in block.items()})
    return blocks


@pytest.mark.parametrize("block", _blocks(), ids=lambda b: b["_target_"].rsplit(".", 1)[-1])
def test_instantiate_builds_what_hydra_builds(block: dict) -> None:
    from hydra.utils import instantiate as hydra_instantiate

    from framework.stage import instantiate

    ours, hydras = instantiate(block), hydra_instantiate(block, _convert_="all")
    assert type(ours) is type(hydras)
    assert ours.get_params() == hydras.get_params()


def test_instantiate_leaves_hydra_what_only_hydra_does() -> None:
    import functools

    from hydra.errors import InstantiationException

    from framework.stage import instantiate

    block = {"_target_": "sklearn.preprocessing.FunctionTransformer", "_partial_": True,
             "validate": True}
    partial = instantiate(block)
    assert isinstance(partial, functools.partial) and partial().validate is True
    nested = instantiate({"_target_": "sklearn.pipeline.make_pipeline", "_args_": [
        {"_target_": "sklearn.preprocessing.StandardScaler"}]})
    assert type(nested.steps[0][1]).__name__ == "StandardScaler"
    # a call that fails is reported in Hydra's words, naming the target
    with pytest.raises(InstantiationException, match=r"LogisticRegression.*no_such_option"):
        instantiate({"_target_": "sklearn.linear_model.LogisticRegression", "no_such_option": 1})
    with pytest.raises(InstantiationException, match=r"sklearn.linear_model.NoSuchModel"):
        instantiate({"_target_": "sklearn.linear_model.NoSuchModel"})


def test_a_plain_block_is_built_without_importing_hydra() -> None:
    import subprocess
    import sys

    code = ("import sys; from framework.stage import instantiate_params; "
            "p = instantiate_params({'model': {'_target_': 'sklearn.linear_model.LogisticRegression',"
            " 'C': 0.5, 'class_weight': {0: 1, 1: 2}}, 'seed': 1}); "
            "print(p['model'].C, p['model'].class_weight == {0: 1, 1: 2}, 'hydra' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0.5", "True", "False"]


def test_a_hostile_model_input_is_refused_before_anything_runs(stage_project: Path) -> None:
    from tests.trustlib import runstring_model

    marker = stage_project / "MARKER"
    runstring_model(stage_project / "models/evil.skops", marker)
    (stage_project / "steps/use.py").write_text("def use(model):\n    return {}\n")
    (stage_project / "params.yaml").write_text("{}\n")
    proc = run_cli(stage_project, "stage", "use", "--run", "steps.use.use",
                   "--in", "model=models/evil.skops")
    assert proc.returncode == 2, proc.stderr
    assert "refusing" in proc.stderr and "numpy.testing._private.utils.runstring" in proc.stderr
    assert not marker.exists()


RAISES = '''
def helper(rows):
    return rows[0]["missing"]

def broken(*, rows):
    return {"table": helper(rows)}
'''


def test_an_error_in_a_stage_function_shows_the_users_frames(stage_project: Path) -> None:
    (stage_project / "steps/broken.py").write_text(RAISES)
    params(stage_project, [{"age": 3, "city": "a"}])
    args = ["stage", "broken", "--run", "steps.broken.broken", "--params", "rows",
            "--out", "table=data/out.parquet"]
    proc = run_cli(stage_project, *args)
    assert proc.returncode == 1
    err = proc.stderr
    assert err.startswith("error: stage 'broken': steps.broken.broken raised KeyError: 'missing'")
    assert 'File "steps/broken.py", line 6, in broken' in err
    assert 'File "steps/broken.py", line 3, in helper' in err
    assert "framework/stage.py" not in err and "Traceback" not in err
    assert "hidden: run with --verbose or HYDRA_FULL_ERROR=1" in err
    import os

    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    import subprocess
    import sys

    full = subprocess.run([sys.executable, "-m", "framework", *args], cwd=stage_project,
                          env=env, capture_output=True, text=True)
    assert "framework/stage.py" in full.stderr and "hidden" not in full.stderr


def test_one_bad_cell_in_a_numeric_csv_column_is_one_row(stage_project: Path) -> None:
    rows = [f"{i},a" for i in range(178)]
    rows[17] = "seventeen,a"
    (stage_project / "data").mkdir()
    (stage_project / "data/in.csv").write_text("age,city\n" + "\n".join(rows) + "\n")
    params(stage_project, [])
    proc = run_cli(stage_project, "stage", "copy", "--run", "steps.table.copy",
                   "--in", "table=data/in.csv", "--out", "table=data/out.parquet",
                   "--metrics", "metrics.json", "--schema", "table=table.json")
    assert proc.returncode == 2, proc.stderr
    assert "'age'  type \"integer\"  1 row  (rows 17: \"seventeen\")" in proc.stderr
    assert 'type "integer"  178 rows' not in proc.stderr  # what pandas' text column gave
