"""A team's flow on one shared registry: two clones of a project point at one PostgreSQL
database (``$FRAMEWORK_REGISTRY_URL``) and one artifact folder (``registry.artifacts``); what one
registers the other lists, compares and serves, and a server of one follows an alias the other
moves."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run, run_cli
from tests.serve.serve_testlib import start

pytestmark = pytest.mark.dvc

MODEL = "breast_cancer"


def test_two_clones_share_one_registry(dvc_project: Path, tmp_path: Path, postgres: Any,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    monkeypatch.setenv("FRAMEWORK_REGISTRY_URL", postgres.create_database("team"))
    shared = tmp_path / "shared-artifacts"
    a = dvc_project
    config = a / "conf/config.yaml"
    config.write_text(config.read_text().replace(
        "  path: .framework/registry\n",
        f"  path: .framework/registry\n  artifacts: {shared}\n"))
    run_cli(a, "compile", check=True)
    run(a, "git", "add", "-A")
    run(a, "git", "commit", "-qm", "a shared registry")
    b = tmp_path / "clone-b"
    run(tmp_path, "git", "clone", "-q", str(a), str(b))

    run_cli(a, check=True)                       # v1, the champion, registered from A
    run_cli(a, "model.C=0.01", check=True)       # v2, from A too
    listed = json.loads(run_cli(b, "registry", "list", "--json", check=True).stdout)
    (model,) = listed["models"]
    assert [v["version"] for v in model["versions"]] == [1, 2]
    assert model["aliases"] == {"champion": 1}
    compared = json.loads(run_cli(b, "registry", "compare", MODEL, "1", "2", "--json",
                                  check=True).stdout)
    assert {p["key"] for p in compared["params"]} == {"model.C"}
    assert not (b / ".framework/registry/artifacts").exists()  # B holds no artifact of its own
    assert list(shared.glob("artifacts/sha256/*/*"))

    row = pd.read_parquet(a / "data/test.parquet").drop(columns=["target"]).head(1)
    body = {"dataframe_split": {"columns": list(row.columns), "data": row.values.tolist()}}
    server = start(f"{MODEL}@champion", "--poll-interval", "0.2", cwd=b)
    try:
        with server.client() as c:
            r = c.post("/invocations", json=body)
            assert r.status_code == 200 and r.headers["x-model-version"] == f"{MODEL}/1", r.text
            run_cli(a, "registry", "promote", MODEL, "2", "--alias", "champion", "--reason",
                    "moved from clone A", check=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = c.post("/invocations", json=body)
                if r.headers.get("x-model-version") == f"{MODEL}/2":
                    break
                time.sleep(0.2)
            assert r.status_code == 200 and r.headers["x-model-version"] == f"{MODEL}/2"
    finally:
        server.stop()
    history = json.loads(run_cli(b, "registry", "history", MODEL, "--json", check=True).stdout)
    assert history[-1]["reason"] == "moved from clone A" and history[-1]["to_version"] == 2
