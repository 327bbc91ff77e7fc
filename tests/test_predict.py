"""``python -m framework predict``: batch scoring of a file, in chunks, against the schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from framework.errors import UsageError
from framework.predict import predict_file
from tests.conftest import cli_env


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from framework.registry import open_registry
    from framework.schema import infer_schema

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    root = tmp_path_factory.mktemp("predict")
    with open_registry(root / "registry") as reg:
        reg.register("bc", model, metrics={"roc_auc": 0.99}, input_schema=infer_schema(X))
    return root / "registry", model, X


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework", "predict", *args], cwd=cwd,
                          env=cli_env(), capture_output=True, text=True, timeout=300)


def test_scores_a_parquet_file_in_chunks_as_the_model_does(registered: Any,
                                                          tmp_path: Path) -> None:
    registry, model, X = registered
    source = tmp_path / "new.parquet"
    # a column the schema does not name rides along, unchecked and unseen by the model
    X.assign(sample_id=[f"s{i}" for i in range(len(X))]).to_parquet(source, row_group_size=100)
    one = predict_file("bc@champion", str(source), str(tmp_path / "one.parquet"),
                       registry=str(registry), chunk_rows=1_000_000, progress=False)
    many = predict_file("bc@champion", str(source), str(tmp_path / "many.parquet"),
                        registry=str(registry), chunk_rows=64, progress=False)
    assert one.rows == many.rows == one.scored == len(X) and one.invalid == 0
    a = pd.read_parquet(tmp_path / "one.parquet")
    b = pd.read_parquet(tmp_path / "many.parquet")
    pd.testing.assert_frame_equal(a, b)  # chunking changes nothing
    assert list(a.columns) == [*X.columns, "sample_id", "prediction", "score_0", "score_1"]
    assert a["sample_id"].tolist() == [f"s{i}" for i in range(len(X))]
    assert (a["prediction"].to_numpy() == model.predict(X)).all()
    # the same numbers, to the last bits BLAS may order differently for another batch size
    np.testing.assert_allclose(a[["score_0", "score_1"]].to_numpy(), model.predict_proba(X),
                               rtol=1e-12, atol=1e-15)
    pd.testing.assert_frame_equal(a[list(X.columns)], X)
    assert not list(tmp_path.glob(".*.tmp"))
    slim = predict_file("bc@champion", str(source), str(tmp_path / "slim.parquet"),
                        registry=str(registry), chunk_rows=64, progress=False,
                        keep=["sample_id"])
    assert slim.scored == len(X)
    c = pd.read_parquet(tmp_path / "slim.parquet")
    assert list(c.columns) == ["sample_id", "prediction", "score_0", "score_1"]
    assert (c["prediction"] == a["prediction"]).all()
    with pytest.raises(UsageError, match=r"--keep sample: no such column"):
        predict_file("bc@champion", str(source), str(tmp_path / "x.parquet"),
                     registry=str(registry), progress=False, keep=["sample"])


def test_a_csv_with_an_invalid_row_is_refused_or_split_off(registered: Any,
                                                          tmp_path: Path) -> None:
    registry, model, X = registered
    frame = X.head(50).copy()
    column = X.columns[3]
    frame[column] = frame[column].astype(object)
    frame.loc[7, column] = "oops"
    source = tmp_path / "new.csv"
    frame.to_csv(source, index=False)
    out = tmp_path / "scored.csv"
    out.write_text("the previous scores\n")

    proc = _cli("bc@champion", str(source), "-o", str(out), "--registry", str(registry),
                "--chunk-rows", "20", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"new.csv, row 7: {column}: type" in proc.stderr and "nothing was written" in proc.stderr
    assert out.read_text() == "the previous scores\n"  # kept as it was
    assert not list(tmp_path.glob(".*.tmp"))

    proc = _cli("bc@champion", str(source), "-o", str(out), "--registry", str(registry),
                "--chunk-rows", "20", "--skip-invalid", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "scored 49 of 50 rows" in proc.stdout and "1 invalid row(s)" in proc.stdout
    scored = pd.read_csv(out)
    invalid = pd.read_csv(tmp_path / "scored.invalid.csv")
    assert len(scored) == 49 and invalid[column].tolist() == ["oops"]
    assert invalid["invalid_reason"].tolist() == [f"{column}: type"]
    valid = X.head(50).drop(index=7)
    assert (scored["prediction"].to_numpy() == model.predict(valid)).all()

    # once the data is fixed, the invalid file says so: no stale rows stay behind
    frame.loc[7, column] = X.loc[7, column]
    frame.to_csv(source, index=False)
    proc = _cli("bc@champion", str(source), "-o", str(out), "--registry", str(registry),
                "--skip-invalid", cwd=tmp_path)
    assert proc.returncode == 0 and "scored 50 of 50 rows" in proc.stdout, proc.stderr
    assert len(pd.read_csv(tmp_path / "scored.invalid.csv")) == 0


def test_bad_inputs_are_clear_errors(registered: Any, tmp_path: Path) -> None:
    registry, _, X = registered
    shifted = tmp_path / "shifted.csv"  # a row with more fields than the header
    shifted.write_text(",".join(X.columns) + "\n" + ",".join(["1"] * (len(X.columns) + 1))
                       + "\n")
    with pytest.raises(UsageError, match=r"input .*shifted\.csv: cannot read as csv"):
        predict_file("bc@champion", str(shifted), str(tmp_path / "o.parquet"),
                     registry=str(registry), progress=False)
    # outside pytest's warnings-as-errors too: pandas only warns of a block's first row (here
    # the file's) and drops its extra field, so the reader checks that row itself
    proc = _cli("bc@champion", str(shifted), "-o", "o.parquet", "--registry", str(registry),
                cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "shifted.csv: cannot read as csv: Expected 30 fields in line 2, saw 31" in proc.stderr
    clash = tmp_path / "clash.parquet"
    X.assign(prediction=1).to_parquet(clash)
    with pytest.raises(UsageError, match=r"already has the column\(s\) prediction"):
        predict_file("bc@champion", str(clash), str(tmp_path / "o.parquet"),
                     registry=str(registry), progress=False)
    with pytest.raises(UsageError, match=r"cannot tell the format"):
        predict_file("bc@champion", str(clash), str(tmp_path / "o.xlsx"),
                     registry=str(registry), progress=False)
    assert not (tmp_path / "o.parquet").exists()
    proc = _cli("bc@champoin", str(clash), "-o", "o.parquet", "--registry", str(registry),
                cwd=tmp_path)
    assert proc.returncode == 2 and "no alias 'champoin'" in proc.stderr
    assert "did you mean 'champion'" in proc.stderr


def test_an_error_after_chunks_were_written_leaves_the_previous_output(registered: Any,
                                                                        tmp_path: Path) -> None:
    """The reading and writing run in threads of their own: an error the reader meets late in
    the file still stops the run with the file named, and discards what was written."""
    registry, _, X = registered
    source = tmp_path / "late.csv"
    X.to_csv(source, index=False)
    with open(source, "a") as f:  # a row with more fields than the header, after 569 good ones
        f.write(",".join(["1"] * (len(X.columns) + 1)) + "\n")
    out = tmp_path / "scored.parquet"
    out.write_bytes(b"the previous scores")
    # the line is the file's (the header is line 1), though the block holding it began later
    with pytest.raises(UsageError, match=r"input .*late\.csv: cannot read as csv: .*"
                                         r"in line 571, saw 31"):
        predict_file("bc@champion", str(source), str(out), registry=str(registry),
                     chunk_rows=50, progress=False)
    assert out.read_bytes() == b"the previous scores"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_regressor_outside_a_pipeline_scores_without_probabilities(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from framework.registry import open_registry
    from framework.schema import infer_schema

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(X, y)
    with open_registry(tmp_path / "registry") as reg:
        reg.register("diabetes", model, metrics={"r2": 0.5}, input_schema=infer_schema(X))
    X.to_parquet(tmp_path / "in.parquet")
    summary = predict_file("diabetes@champion", str(tmp_path / "in.parquet"),
                           str(tmp_path / "out.csv"), registry=str(tmp_path / "registry"),
                           chunk_rows=100, progress=False, keep=[])
    assert summary.scored == len(X)
    scored = pd.read_csv(tmp_path / "out.csv")
    assert list(scored.columns) == ["prediction"]
    np.testing.assert_allclose(scored["prediction"].to_numpy(), model.predict(X), rtol=1e-12)


def test_csv_blocks_are_read_as_pandas_reads_the_whole_file(registered: Any,
                                                             tmp_path: Path) -> None:
    """CSV is cut into blocks of whole records and parsed in threads: a quoted field holding
    newlines, commas and quotes never splits a record, and every block reads as pandas reads
    the file in one go (CRLF line ends too). The columns the schema does not name are carried
    as the text they are, even when they are empty in the first rows."""
    registry, model, X = registered
    frame = X.head(300).assign(
        note=[f'line one, of row {i}\n"quoted" line two' if i > 40 and i % 3 else None
              for i in range(300)],
        visits=[f"{i:03d}" if i % 7 else None for i in range(300)])
    source = tmp_path / "quoted.csv"
    frame.to_csv(source, index=False, lineterminator="\r\n")
    expected = pd.read_csv(source, index_col=False, dtype={"note": "str", "visits": "str"})
    assert expected["visits"].iloc[1] == "001"
    for rows in (1, 7, 64, 10_000):
        out = tmp_path / f"scored-{rows}.parquet"
        summary = predict_file("bc@champion", str(source), str(out), registry=str(registry),
                               chunk_rows=rows, progress=False)
        assert summary.rows == summary.scored == 300
        scored = pd.read_parquet(out)
        pd.testing.assert_frame_equal(scored[list(expected.columns)], expected)
        assert (scored["prediction"].to_numpy() == model.predict(X.head(300))).all()


def test_a_csv_without_rows_gives_its_columns_and_an_empty_one_is_refused(
        registered: Any, tmp_path: Path) -> None:
    registry, _, X = registered
    header = tmp_path / "header.csv"
    header.write_text(",".join(X.columns))  # no newline either
    summary = predict_file("bc@champion", str(header), str(tmp_path / "o.csv"),
                           registry=str(registry), progress=False)
    assert summary.rows == 0
    assert list(pd.read_csv(tmp_path / "o.csv").columns) == [*X.columns, "prediction",
                                                             "score_0", "score_1"]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UsageError, match=r"input .*empty\.csv: cannot read as csv"):
        predict_file("bc@champion", str(empty), str(tmp_path / "e.csv"),
                     registry=str(registry), progress=False)
    assert not (tmp_path / "e.csv").exists()
