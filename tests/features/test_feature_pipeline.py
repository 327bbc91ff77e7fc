"""A pipeline publishes its table; another one reads it by name, pinned in dvc.yaml (real DVC)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from framework.features.catalog import open_catalog
from tests.conftest import copy_project, init_repo, run, run_cli

pytestmark = pytest.mark.dvc


def split_cmd(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["split"]


def test_publish_pin_rerun_only_when_the_pin_moves(tmp_path: Path) -> None:
    producer = init_repo(copy_project(tmp_path / "producer"))
    registry = producer / ".framework" / "registry"
    run_cli(producer, check=True)  # the default pipeline: ingest publishes breast_cancer
    with open_catalog(registry) as cat:
        v1 = cat.resolve("breast_cancer@latest")
    assert v1.version == 1 and v1.rows == 569 and v1.lineage["stage"] == "ingest"
    assert v1.lineage["git"]["commit"]
    # another registry: ingest is up to date and skipped, and its table is published all the same
    second = tmp_path / "second-registry"
    again = run_cli(producer, f"registry.path={second}", check=True)
    assert "ingest    skipped" in again.stdout and "published breast_cancer@1" in again.stdout
    with open_catalog(second) as cat:
        assert cat.resolve("breast_cancer").sha256 == v1.sha256

    consumer = init_repo(copy_project(tmp_path / "consumer"))
    over = ["pipeline=from_features", "registry.model_name=bc_fs", f"registry.path={registry}"]
    out = run_cli(consumer, *over, check=True)
    assert "promoted to champion" in out.stdout, out.stdout
    split = split_cmd(consumer)
    assert f"--feature 'raw=breast_cancer@1#{v1.sha256}'" in split["cmd"]
    assert not any(".framework" in d for d in split["deps"])  # pinned in the command alone
    local = consumer / ".framework" / "features" / "breast_cancer" / f"1-{v1.sha256[:12]}.parquet"
    assert pd.read_parquet(local).shape == (569, 32)
    shown = json.loads(run_cli(consumer, "registry", "show", "bc_fs", "--registry",
                               str(registry), "--json", check=True).stdout)
    assert [(f["name"], f["version"], f["sha256"]) for f in
            shown["lineage"]["feature_sets"]] == [("breast_cancer", 1, v1.sha256)]
    # a sweep's trials read the pinned version too, and their versions record it
    swept = run_cli(consumer, "-m", *over, "model.C=0.1,1", check=True)
    assert "2 trials ran" in swept.stdout, swept.stdout
    trial = json.loads(run_cli(consumer, "registry", "show", "bc_fs/3", "--registry",
                               str(registry), "--json", check=True).stdout)
    assert [f["sha256"] for f in trial["lineage"]["feature_sets"]] == [v1.sha256]
    run(consumer, "git", "add", "-A")
    run(consumer, "git", "commit", "-qm", "consume breast_cancer@1")

    # nothing new published: compiling again changes nothing, and nothing reruns
    assert run_cli(consumer, "compile", "--check", *over).returncode == 0
    assert "up to date" in run(consumer, "dvc", "status").stdout

    # the producer publishes a new version: the check says so, and only then does split rerun
    run_cli(producer, "dataset.synthetic_group.seed=1", check=True)
    with open_catalog(registry) as cat:
        v2 = cat.resolve("breast_cancer@latest")
    assert v2.version == 2
    check = run_cli(consumer, "compile", "--check", *over)
    assert check.returncode == 1
    assert "feature set breast_cancer: dvc.yaml pins v1; conf/ now resolves to v2" in check.stderr
    run_cli(consumer, "compile", *over, check=True)
    assert f"breast_cancer@2#{v2.sha256}" in split_cmd(consumer)["cmd"]
    status = run(consumer, "dvc", "status").stdout
    assert "split:" in status and "changed command" in status
    # a consumer pinned to version 1 stays where it is
    pinned = [*over, "pipeline.stages.split.ins.raw.feature_set=breast_cancer@1"]
    run_cli(consumer, "compile", *pinned, check=True)
    assert f"breast_cancer@1#{v1.sha256}" in split_cmd(consumer)["cmd"]


def test_a_consumer_schema_that_no_longer_fits_is_a_compile_error(tmp_path: Path) -> None:
    consumer = copy_project(tmp_path / "consumer")
    registry = tmp_path / "registry"
    frame = pd.DataFrame({"mean_radius": ["large", "small"], "target": [0, 1]})
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    with open_catalog(registry, create=True) as cat:
        cat.publish("breast_cancer", tmp_path / "t.parquet")
    over = ["pipeline=from_features", f"registry.path={registry}"]
    proc = run_cli(consumer, "compile", *over)
    assert proc.returncode == 2, proc.stderr
    assert "schemas/features.json does not fit feature set breast_cancer@1" in proc.stderr
    assert "column 'mean_texture' is not in breast_cancer@1" in proc.stderr
    assert "column 'mean_radius' is number there but string in breast_cancer@1" in proc.stderr
    assert "pipeline.stages.split.ins.raw" in proc.stderr
    missing = run_cli(consumer, "compile", "pipeline=from_features",
                      f"registry.path={tmp_path / 'nowhere'}")
    assert missing.returncode == 2 and "no feature set is published yet" in missing.stderr
    unknown = run_cli(consumer, "compile", *over,
                      "pipeline.stages.split.ins.raw.feature_set=breast_cancr")
    assert unknown.returncode == 2 and "did you mean 'breast_cancer'" in unknown.stderr


JOINED_PIPELINE = """
stages:
  train_rows:
    run: pipelines.joined.rows
    ins:
      rows:
        join:
          entities: {path: data/events.parquet}
          features: [cells, {feature_set: labs@1, max_age: 2d}]
          on: patient
          as_of: event_time
    outs:
      table: {path: data/train_rows.parquet}
"""

JOINED_CODE = '''
def rows(rows):
    """The joined table, as it arrives."""
    return {"table": rows}
'''


def test_a_point_in_time_join_runs_in_the_stage(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "conf" / "pipeline").mkdir(parents=True)
    (root / "pipelines").mkdir()
    (root / "data").mkdir()
    # no model, so no registry block: the feature store is the default registry's
    (root / "conf" / "config.yaml").write_text("defaults:\n  - pipeline: joined\n  - _self_\n")
    (root / "conf" / "pipeline" / "joined.yaml").write_text(JOINED_PIPELINE)
    (root / "pipelines" / "__init__.py").write_text("")
    (root / "pipelines" / "joined.py").write_text(JOINED_CODE)
    t = pd.Timestamp
    events = pd.DataFrame({"patient": [2, 1, 1, 3],
                           "event_time": [t("2024-01-05"), t("2024-01-02"), t("2024-01-10"),
                                          t("2024-01-05")],
                           "label": [1, 0, 1, 0]})
    events.to_parquet(root / "data" / "events.parquet", index=False)
    cells = pd.DataFrame({"patient": [1, 1, 2], "measured_at": [t("2024-01-01"), t("2024-01-06"),
                                                                t("2024-01-05")],
                          "radius": [11.0, 16.0, 20.0]})
    labs = pd.DataFrame({"patient": [1, 2], "taken_at": [t("2024-01-01"), t("2024-01-01")],
                         "glucose": [5.5, 7.0]})
    cells.to_parquet(tmp_path / "cells.parquet", index=False)
    labs.to_parquet(tmp_path / "labs.parquet", index=False)
    with open_catalog(root / ".framework" / "registry", create=True, project_dir=root) as cat:
        cat.publish("cells", tmp_path / "cells.parquet", entity="patient",
                    timestamp="measured_at")
        cat.publish("labs", tmp_path / "labs.parquet", entity="patient", timestamp="taken_at")
    init_repo(root)
    out = run_cli(root)
    assert out.returncode == 0, out.stdout + out.stderr
    joined = pd.read_parquet(root / "data" / "train_rows.parquet")
    assert list(joined.columns) == ["patient", "event_time", "label", "radius", "glucose"]
    assert joined["patient"].tolist() == [2, 1, 1, 3]  # the entity rows, in their order
    assert joined["radius"].fillna(-1).tolist() == [20.0, 11.0, 16.0, -1]  # never a later row
    # labs is at most 2 days old: fresh on Jan 2, too old by Jan 5 and Jan 10
    assert joined["glucose"].fillna(-1).tolist() == [-1, 5.5, -1, -1]
    entry = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["train_rows"]
    assert "data/events.parquet" in entry["deps"]
    assert '"max_age_s":172800' in entry["cmd"] and "labs@1#" in entry["cmd"]
