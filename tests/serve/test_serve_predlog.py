"""The prediction log of a real server: every scored and refused request, its id, what a SIGTERM
and a SIGKILL keep, sampling, and the drift gauges it feeds."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from serve_testlib import MODEL, Data, Server, fresh, start, wait_rows

from framework.serve.predlog import read_log


def serve(root: Path, tmp_path: Path, *args: str) -> Server:
    return start(f"{MODEL}@champion", "--registry", str(root), *args, cwd=tmp_path)


def test_every_request_is_logged_with_its_id(monitored: Path, tmp_path: Path,
                                             data: Data) -> None:
    root = fresh(monitored, tmp_path)
    server = serve(root, tmp_path)
    try:
        with server.client() as c:
            sent = []
            for i in range(20):
                headers = {"x-request-id": f"client-{i}"} if i % 2 else {}
                r = c.post("/invocations", json={"dataframe_split": data.split(1) | {
                    "data": [data.rows[i]]}}, headers=headers)
                assert r.status_code == 200
                sent.append((r.headers["x-request-id"], r.json()["predictions"][0]))
                if i % 2:
                    assert r.headers["x-request-id"] == f"client-{i}"
            batch = c.post("/invocations", json={"dataframe_split": data.split(5)},
                           headers={"x-request-id": "batch-1"})
            bad_row = dict(zip(data.columns, data.rows[0]))
            bad_row["mean_radius"] = "big"
            refused = c.post("/invocations", json={"dataframe_records": [bad_row]},
                             headers={"x-request-id": "refused-1"})
            malformed = c.post("/invocations", content=b"{not json",
                               headers={"content-type": "application/json"})
        assert batch.status_code == 200 and refused.status_code == 400
        assert malformed.status_code == 400 and malformed.headers["x-request-id"]
        table = wait_rows(root, 27)
    finally:
        server.stop()
    frame = table.to_pandas()
    ok = frame[frame["status"] == "ok"]
    assert len(ok) == 25 and frame["version"].eq(1).all()
    for rid, prediction in sent:
        row = ok[ok["request_id"] == rid]
        assert len(row) == 1 and row["prediction"].iloc[0] == prediction
    assert ok[ok["request_id"] == "batch-1"]["row"].tolist() == [0, 1, 2, 3, 4]
    assert (ok["proba_0"] + ok["proba_1"]).round(9).eq(1).all()
    assert ok["mean_radius"].iloc[0] == pytest.approx(data.rows[0][0])
    no = frame[frame["status"] == "refused"].set_index("request_id")
    assert no.loc["refused-1", "error_code"] == "INVALID_PARAMETER_VALUE"
    assert list(no.loc["refused-1", "error_columns"]) == ["mean_radius"]
    assert len(no) == 2 and list(no.drop(index="refused-1")["error_columns"].iloc[0]) == []


def test_a_request_id_must_be_one_a_log_can_hold(client: httpx.Client, data: Data) -> None:
    for bad in ("x" * 129, "has space", "-starts-with-dash", "quote'"):
        r = client.post("/invocations", json={"dataframe_split": data.split(1)},
                        headers={"x-request-id": bad})
        assert r.status_code == 400 and "X-Request-ID" in r.json()["message"], bad


def test_sigterm_loses_nothing(monitored: Path, tmp_path: Path, data: Data) -> None:
    root = fresh(monitored, tmp_path)
    server = serve(root, tmp_path)
    with server.client() as c:
        for i in range(150):
            assert c.post("/invocations", json={"dataframe_split": {
                "columns": data.columns, "data": [data.rows[i]]}}).status_code == 200
    server.proc.send_signal(signal.SIGTERM)  # at once: the last second is still buffered
    try:
        # uvicorn shuts down gracefully, then ends by the signal it caught, as `kill` expects
        assert server.proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        server.stop()
    table = read_log(root, MODEL)
    assert table is not None and table.num_rows == 150


def test_sigkill_loses_at_most_the_last_second(monitored: Path, tmp_path: Path,
                                               data: Data) -> None:
    root = fresh(monitored, tmp_path)
    server = serve(root, tmp_path)
    with server.client() as c:
        for i in range(100):
            c.post("/invocations", json={"dataframe_split": {"columns": data.columns,
                                                              "data": [data.rows[i]]}},
                   headers={"x-request-id": f"early-{i}"})
        time.sleep(1.6)  # a flush happens at least once a second
        for i in range(50):
            c.post("/invocations", json={"dataframe_split": {"columns": data.columns,
                                                              "data": [data.rows[i]]}})
    server.proc.send_signal(signal.SIGKILL)
    try:
        server.proc.wait(10)
    finally:
        server.stop()
    ids = set(read_log(root, MODEL).column("request_id").to_pylist())
    assert {f"early-{i}" for i in range(100)} <= ids


@pytest.mark.parametrize("setting, low, high", [("off", 0, 0), ("0.5", 60, 140)])
def test_logging_can_be_off_or_sampled(monitored: Path, tmp_path: Path, data: Data,
                                       setting: str, low: int, high: int) -> None:
    root = fresh(monitored, tmp_path)
    server = serve(root, tmp_path, "--log-predictions", setting)
    try:
        with server.client() as c:
            for i in range(200):
                assert c.post("/invocations", json={"dataframe_split": {
                    "columns": data.columns, "data": [data.rows[i]]}}).status_code == 200
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(30)
        server.stop()
    table = read_log(root, MODEL)
    rows = 0 if table is None else table.num_rows
    assert low <= rows <= high


def test_drift_gauges_on_metrics(monitored: Path, tmp_path: Path, data: Data) -> None:
    root = fresh(monitored, tmp_path)
    server = serve(root, tmp_path, "--monitor-window", "200")
    try:
        with server.client() as c:
            shifted = [[v * (1.5 if j == 0 else 1.0) for j, v in enumerate(row)]
                       for row in data.rows[:200]]
            for row in shifted:
                c.post("/invocations", json={"dataframe_split": {"columns": data.columns,
                                                                  "data": [row]}})
            bad = dict(zip(data.columns, data.rows[0]))
            bad["mean_texture"] = -5.0  # below the schema's minimum
            assert c.post("/invocations", json={"dataframe_records": [bad]}).status_code == 400
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                text = c.get("/metrics").text
                if 'schema_violations_total{column="mean_texture"} 1' in text and \
                        "framework_serve_drift_score" in text:
                    break
                time.sleep(0.2)
    finally:
        server.stop()
    gauges = {}
    for line in text.splitlines():
        if line.startswith("framework_serve_drift_score{"):
            gauges[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    assert len(gauges) == 30
    assert gauges["mean_radius"] > 1.0 and gauges["mean_texture"] < 0.5
    assert 'framework_serve_schema_violations_total{column="mean_texture"} 1' in text
    assert "framework_serve_monitor_window_rows 200" in text
    assert 'framework_serve_prediction_share{class="1"}' in text
    assert "framework_serve_logged_rows_total 201" in text
