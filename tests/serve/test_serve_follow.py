"""Following the registry: an alias move while requests flow, a pinned version, a bad version."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from serve_testlib import MODEL, Data, Server, fit, launch, register, wait_ready

JSON = {"Content-Type": "application/json"}


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def metadata_version(server: Server) -> int:
    with server.client() as c:
        return c.get("/metadata").json()["version"]


def test_alias_move_while_requests_flow(tmp_path: Path, model_file: Path, data: Data,
                                        features_schema: dict[str, Any]) -> None:
    registry = tmp_path / "registry"
    assert register(registry, model_file, features_schema, 0.97) == 1
    common = ("--registry", str(registry), "--poll-interval", "0.2")
    # both servers start at once (start-up is most of this test's time)
    champion = launch(f"models:/{MODEL}@champion", *common, cwd=tmp_path)
    pinned = launch(f"{MODEL}/1", *common, cwd=tmp_path)
    try:
        wait_ready(champion)
        wait_ready(pinned)
        assert champion.ready_line.startswith(f"serving {MODEL} v1 (champion) on http://127.0.0.1:")
        assert pinned.ready_line.startswith(f"serving {MODEL} v1 (fixed version) on ")

        body = json.dumps({"dataframe_split": data.split(20)})
        seen: Counter[str] = Counter()
        failures: list[str] = []
        stop = threading.Event()

        def client_loop() -> None:
            with champion.client() as c:
                while not stop.is_set():
                    try:
                        r = c.post("/invocations", content=body, headers=JSON)
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        continue
                    if r.status_code != 200 or len(r.json()["predictions"]) != 20:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                    else:
                        seen[r.headers["x-model-version"]] += 1

        threads = [threading.Thread(target=client_loop) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: sum(seen.values()) >= 20, 30, "requests on v1")
            # a better version is registered and promoted by the gates while requests flow
            assert register(registry, fit(data, C=0.5), features_schema, 0.995) == 2
            wait_for(lambda: metadata_version(champion) == 2, 30, "the switch to v2")
            before = sum(seen.values())
            wait_for(lambda: sum(seen.values()) >= before + 20, 30, "requests on v2")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert failures == []
        assert seen[f"{MODEL}/1"] > 0 and seen[f"{MODEL}/2"] > 0
        with champion.client() as c:
            meta = c.get("/metadata").json()
            assert (meta["version"], meta["alias"], meta["metrics"]["roc_auc"]) == \
                (2, "champion", 0.995)
            assert "framework_serve_model_switches_total 1" in c.get("/metrics").text

        # the pinned server never moves
        assert metadata_version(pinned) == 1
        with pinned.client() as c:
            r = c.post("/invocations", content=body, headers=JSON)
            assert r.headers["x-model-version"] == f"{MODEL}/1"

        # a champion that cannot be served (no predict method): keep serving v2, count it
        import pandas as pd
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(pd.DataFrame(data.rows, columns=data.columns))
        assert register(registry, scaler, features_schema, 0.999) == 3
        with champion.client() as c:
            wait_for(lambda: "framework_serve_model_load_failures_total 1" in
                     c.get("/metrics").text, 30, "the failed switch to be counted")
            r = c.post("/invocations", content=body, headers=JSON)
            assert r.status_code == 200
            assert r.headers["x-model-version"] == f"{MODEL}/2"
            meta = c.get("/metadata").json()
            assert meta["version"] == 2 and "v3" in meta["last_switch_error"]
        assert "cannot switch" in champion.log() and "still serving v2" in champion.log()

        # a hostile model file becomes champion (registered by a client that skipped the
        # check): the running server refuses it by name, runs nothing, keeps serving v2
        from trustlib import runstring_model

        from framework.registry import open_registry

        marker = tmp_path / "MARKER"
        with open_registry(registry) as reg:
            reg.register(MODEL, runstring_model(tmp_path / "evil.skops", marker),
                         metrics={"roc_auc": 0.9999, "accuracy": 1.0},
                         input_schema=features_schema, target="target",
                         primary_metric="roc_auc", actor="tests", check_types=False)
        with champion.client() as c:
            wait_for(lambda: "framework_serve_model_load_failures_total 2" in
                     c.get("/metrics").text, 30, "the refused switch to be counted")
            assert c.post("/invocations", content=body,
                          headers=JSON).headers["x-model-version"] == f"{MODEL}/2"
            assert "runstring" in c.get("/metadata").json()["last_switch_error"]
        assert not marker.exists()
    finally:
        champion.stop()
        pinned.stop()
