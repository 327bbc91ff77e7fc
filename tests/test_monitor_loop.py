"""The closed loop of the README's monitoring tour, end to end in a real project: the pipeline
registers a champion, a real server logs its traffic, the monitor stays quiet on normal traffic
and alarms on shifted traffic, labels arrive, ``--retrain`` runs the pipeline on them, and the
server switches to the new champion by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, cli_env, run_cli
from tests.serve.serve_testlib import start

pytestmark = pytest.mark.dvc

MODEL = "breast_cancer"


def traffic(root: Path, port: int, *args: str) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "traffic.py"), "--port",
                           str(port), *args], cwd=root, env=cli_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def served_version(client: object) -> str:
    r = client.post("/invocations", json={"dataframe_split": {  # type: ignore[attr-defined]
        "columns": COLUMNS, "data": [ROW]}})
    assert r.status_code == 200, r.text
    return r.headers["x-model-version"]


COLUMNS: list[str] = []
ROW: list[float] = []


def test_serve_monitor_label_retrain_and_serve_the_new_champion(dvc_project: Path) -> None:
    import pandas as pd

    root = dvc_project
    run_cli(root, check=True)
    raw = pd.read_parquet(root / "data/raw.parquet").drop(columns=["target"])
    COLUMNS[:] = list(raw.columns)
    ROW[:] = raw.iloc[0].tolist()
    server = start(f"{MODEL}@champion", "--poll-interval", "0.2", cwd=root)
    try:
        port = int(server.url.rsplit(":", 1)[1])
        traffic(root, port, "--rows", "300", "--labels", "normal.csv")
        time.sleep(1.5)  # the log is flushed at least once a second
        quiet = run_cli(root, "monitor", f"{MODEL}@champion")
        assert quiet.returncode == 0, quiet.stdout + quiet.stderr

        traffic(root, port, "--rows", "300", "--seed", "1", "--shift", "mean_texture=1.4",
                "--shift", "worst_texture=1.4", "--shifted-clinic", "B", "--labels",
                "shifted.csv")
        time.sleep(1.5)
        alarm = run_cli(root, "monitor", f"{MODEL}@champion", "--last", "300", "--json")
        assert alarm.returncode == 3, alarm.stdout + alarm.stderr
        report = json.loads(alarm.stdout)
        drift = next(c for c in report["checks"] if c["name"] == "data_drift")
        assert {"mean_texture", "worst_texture"} <= set(drift["numbers"]["drifted"])
        assert set(drift["numbers"]["drifted"]) <= {"mean_texture", "worst_texture",
                                                    "texture_error"}
        fairness = [c for c in report["checks"] if c["name"].startswith("fairness")]
        assert fairness and fairness[0]["numbers"]["groups"]  # clinic was logged alongside

        for name in ("normal.csv", "shifted.csv"):
            labelled = run_cli(root, "monitor", "label", name)
            assert labelled.returncode == 0, labelled.stderr
            assert "600" not in labelled.stdout and "300 join logged predictions" in \
                labelled.stdout, labelled.stdout

        # with tests.required, a retrain of a pipeline that fails its checks registers nothing
        required = root / "conf/config.yaml"
        original = required.read_text()
        stage = root / "pipelines/tabular.py"
        code = stage.read_text()
        required.write_text(original + "\ntests:\n  required: true\n")
        stage.write_text(code.replace("random_state=seed,", "random_state=None,"))
        run_cli(root, "compile", check=True)
        refused = run_cli(root, "monitor", f"{MODEL}@champion", "--last", "300", "--retrain")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "determinism[split]" in refused.stderr
        assert "the retrain (the champion stays v1) registers nothing" in refused.stderr
        assert not (root / "data/feedback.parquet").exists()
        stage.write_text(code)  # fixed: the same required checks now pass

        with server.client() as c:
            assert served_version(c) == f"{MODEL}/1"
            retrain = run_cli(root, "monitor", f"{MODEL}@champion", "--last", "300",
                              "--retrain")
            assert retrain.returncode == 3, retrain.stdout + retrain.stderr  # the alarm was real
            assert "retrained on 600 labelled production rows" in retrain.stdout, retrain.stdout
            assert f"{MODEL} v2 is the new champion" in retrain.stdout, retrain.stdout
            deadline = time.monotonic() + 30
            while served_version(c) != f"{MODEL}/2" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert served_version(c) == f"{MODEL}/2"  # the server followed the alias
    finally:
        server.stop()

    # the feedback table is data under DVC, and the new version knows what triggered it
    assert (root / "data/feedback.parquet.dvc").is_file()
    assert len(pd.read_parquet(root / "data/feedback.parquet")) == 600
    shown = run_cli(root, "registry", "show", f"{MODEL}/2", "--json")
    assert shown.returncode == 0, shown.stderr
    lineage = json.loads(shown.stdout)["lineage"]
    history = json.loads(run_cli(root, "monitor", "history", MODEL, "--json").stdout)
    assert lineage["triggered_by"]["monitor_run"] == history[-1]["id"]
    assert history[-1]["retrained_version"] == 2
    assert "data/feedback.parquet" in yaml.safe_load((root / "dvc.yaml").read_text())[
        "stages"]["split"]["deps"]
