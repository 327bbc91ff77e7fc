"""``python -m framework monitor`` as a user runs it: on the prediction log of a real server and on
batches; labels that arrive later, history, and the exit codes a scheduler acts on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from serve_testlib import MODEL, Data, fit, fresh, register, server_env, start, wait_rows

SHIFTED = ("mean_texture", "worst_texture")


def monitor(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework", "monitor", *args], cwd=cwd,
                          env=server_env(), capture_output=True, text=True, timeout=300)


def frame_of(data: Data, *, shift: float = 1.0) -> pd.DataFrame:
    frame = pd.DataFrame(data.rows, columns=data.columns)
    for column in SHIFTED:
        frame[column] = frame[column] * shift
    frame["target"] = data.target
    return frame


@pytest.fixture(scope="module")
def logged(monitored: Path, tmp_path_factory: pytest.TempPathFactory,
           data: Data) -> tuple[Path, list[int]]:
    """A registry whose server logged 300 single-row requests of unshifted rows, with the ids
    ``n-0`` ... ``n-299``; and which rows of the data they were."""
    tmp = tmp_path_factory.mktemp("logged")
    root = fresh(monitored, tmp)
    picked = np.random.default_rng(0).integers(0, len(data.rows), 300).tolist()
    server = start(f"{MODEL}@champion", "--registry", str(root), cwd=tmp)
    try:
        with server.client() as c:
            for k, i in enumerate(picked):
                r = c.post("/invocations", json={"dataframe_split": {
                    "columns": data.columns, "data": [data.rows[i]]}},
                    headers={"x-request-id": f"n-{k}"})
                assert r.status_code == 200, r.text
    finally:
        server.stop()  # a graceful stop flushes the log
    table = wait_rows(root, 300, timeout=2)
    assert table is not None and table.num_rows == 300
    return root, picked


def copy_of(logged: tuple[Path, list[int]], tmp_path: Path) -> Path:
    return fresh(logged[0], tmp_path)


def as_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.lstrip().startswith("{"), proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in report["checks"] if c["name"] == name]
    assert found, [c["name"] for c in report["checks"]]
    return found[0]


def test_a_window_of_normal_traffic_raises_no_alarm(logged: tuple[Path, list[int]],
                                                     tmp_path: Path) -> None:
    root = copy_of(logged, tmp_path)
    proc = monitor(tmp_path, f"{MODEL}@champion", "--registry", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "data_drift" in proc.stdout and "no alarm" in proc.stdout
    report = as_json(monitor(tmp_path, f"{MODEL}@champion", "--registry", str(root), "--json"))
    assert report["alarm"] is False and report["window"]["rows"] == 300
    drift = check(report, "data_drift")
    assert drift["status"] == "ok" and drift["numbers"]["columns"] == 30
    assert all(f["p_value"] is None or 0 <= f["p_value"] <= 1 for f in drift["findings"])
    estimate = check(report, "estimated_performance")
    assert estimate["status"] == "ok"
    accuracy = estimate["numbers"]["estimates"]["accuracy"]
    assert accuracy["low"] <= accuracy["value"] <= accuracy["high"]
    assert check(report, "performance")["status"] == "not enough data"  # no labels yet


def test_a_shifted_batch_alarms_naming_the_shifted_columns(monitored: Path, tmp_path: Path,
                                                           data: Data) -> None:
    batch = tmp_path / "batch.parquet"
    frame_of(data, shift=1.4).to_parquet(batch)
    root = fresh(monitored, tmp_path)
    proc = monitor(tmp_path, f"{MODEL}@champion", "--registry", str(root), "--data", str(batch),
                   "--html", str(tmp_path / "monitor.html"))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert re.search(r"2 of 30 columns drifted: (mean|worst)_texture, (mean|worst)_texture",
                     proc.stdout), proc.stdout
    page = (tmp_path / "monitor.html").read_text()
    assert "mean_texture" in page and "vegaEmbed" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from the network
    report = as_json(monitor(tmp_path, f"{MODEL}@champion", "--registry", str(root), "--data",
                             str(batch), "--json", "--no-record"))
    assert sorted(check(report, "data_drift")["numbers"]["drifted"]) == sorted(SHIFTED)
    assert report["window"]["source"].startswith("batch")
    # the batch's target column gave labels: realized performance is measured on every row
    realized = check(report, "performance")
    assert realized["status"] in ("ok", "alarm") and realized["numbers"]["labelled"] == len(data.rows)
    unshifted = monitor(tmp_path, f"{MODEL}@champion", "--registry", str(root), "--data",
                        str(_write(frame_of(data), tmp_path / "same.parquet")))
    assert unshifted.returncode == 0, unshifted.stdout


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path)
    return path


def test_labels_join_by_request_id_and_labelling_twice_adds_nothing(
        logged: tuple[Path, list[int]], tmp_path: Path, data: Data) -> None:
    root = copy_of(logged, tmp_path)
    picked = logged[1]
    labels = pd.DataFrame({"request_id": [f"n-{k}" for k in range(200)] + ["ghost-1", "ghost-2"],
                           "target": [data.target[i] for i in picked[:200]] + [0, 1]})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    first = monitor(tmp_path, "label", str(tmp_path / "labels.csv"), "--registry", str(root))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "labelled 202 rows" in first.stdout and "200 join logged predictions, 2 wait" in \
        first.stdout, first.stdout
    assert "2 unknown request id(s)" in first.stderr and "ghost-1, ghost-2" in first.stderr
    again = monitor(tmp_path, "label", str(tmp_path / "labels.csv"), "--registry", str(root),
                    "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["unknown"] == ["ghost-1", "ghost-2"] and summary["joined"] == 200
    assert summary["added"] == 0 and summary["changed"] == 0 and summary["unchanged"] == 202
    report = as_json(monitor(tmp_path, f"{MODEL}@champion", "--registry", str(root), "--json"))
    assert report["window"]["labelled"] == 200  # not 400: nothing duplicated
    realized = check(report, "performance")
    assert realized["status"] == "ok", realized
    by = {f["subject"]: f for f in realized["findings"]}
    truth = np.array([data.target[i] for i in picked[:200]])
    model = fit(data)
    rows = np.array([data.rows[i] for i in picked[:200]])
    from sklearn.metrics import roc_auc_score

    scores = model.predict_proba(pd.DataFrame(rows, columns=data.columns))[:, 1]
    # without a policy in params.yaml, the primary metric is watched (tolerance 0.02)
    assert list(by) == ["roc_auc"]
    assert by["roc_auc"]["statistic"] == pytest.approx(roc_auc_score(truth, scores))


def test_history_shows_every_recorded_run(logged: tuple[Path, list[int]],
                                          tmp_path: Path) -> None:
    root = copy_of(logged, tmp_path)
    for args in ((), ("--last", "150"), ("--no-record",)):
        assert monitor(tmp_path, f"{MODEL}@champion", "--registry", str(root),
                       *args).returncode == 0
    runs = json.loads(monitor(tmp_path, "history", MODEL, "--registry", str(root),
                              "--json").stdout)
    assert [r["rows"] for r in runs] == [300, 150]  # oldest first; --no-record left no trace
    assert all(r["version"] == 1 and r["alarm"] is False for r in runs)
    table = monitor(tmp_path, "history", MODEL, "--registry", str(root))
    assert table.returncode == 0 and table.stdout.count("v1") >= 2, table.stdout


def test_user_errors_exit_2_naming_what_is_wrong(logged: tuple[Path, list[int]],
                                                 tmp_path: Path, data: Data,
                                                 model_file: Path,
                                                 features_schema: dict[str, Any]) -> None:
    root = copy_of(logged, tmp_path)
    base = ("--registry", str(root))
    cases: list[tuple[tuple[str, ...], str]] = [
        (("breast_cancr@champion", *base), "breast_cancr"),
        ((f"{MODEL}@champion", *base, "--data", str(tmp_path / "missing.parquet")),
         "missing.parquet"),
        ((f"{MODEL}@champion", *base, "--last", "0"), "--last"),
        ((f"{MODEL}@champion", *base, "--since", "yesterday"), "--since"),
        (("label", str(tmp_path / "nothing.csv"), *base), "nothing.csv"),
    ]
    no_column = frame_of(data).drop(columns=["mean_radius"])
    cases.append(((f"{MODEL}@champion", *base, "--data",
                   str(_write(no_column, tmp_path / "short.parquet"))), "mean_radius"))
    for args, named in cases:
        proc = monitor(tmp_path, *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert named in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    # a bad policy in the project's params.yaml: file, key and the key it resembles
    (tmp_path / "params.yaml").write_text("monitor:\n  data_drift: {alpah: 0.1}\n")
    proc = monitor(tmp_path, f"{MODEL}@champion", *base)
    assert proc.returncode == 2
    assert "params.yaml" in proc.stderr and "monitor.data_drift.alpah" in proc.stderr
    assert "alpha" in proc.stderr
    (tmp_path / "params.yaml").unlink()
    # a version registered without a profile cannot be monitored, and the error says why
    plain = tmp_path / "plain"
    from framework.io import load_model

    register(plain, load_model(model_file), features_schema, 0.9)
    proc = monitor(tmp_path, f"{MODEL}@champion", "--registry", str(plain))
    assert proc.returncode == 2 and "profile" in proc.stderr, proc.stderr
