"""``python -m framework test``: the generated checks pass on the bundled pipeline, and each one
fails, naming the stage, the check and the evidence, on a project broken the way it guards
against."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import cli_env, copy_project, init_repo, run_cli

pytestmark = pytest.mark.dvc


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled project in its own repository, after one run of the pipeline."""
    root = init_repo(copy_project(tmp_path_factory.mktemp("checks") / "project"))
    run_cli(root, check=True)
    return root


@pytest.fixture
def project(ran: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(ran, copy, symlinks=True)
    return copy


def test_checks(root: Path, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    proc = subprocess.run([sys.executable, "-m", "framework", "test", "--json", *args],
                          cwd=root, env=cli_env(), capture_output=True, text=True, timeout=300)
    records = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else []
    return proc.returncode, records, proc.stderr


test_checks.__test__ = False  # a helper, not a test


def by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in records}


def test_the_bundled_pipeline_passes_every_check(ran: Path, tmp_path: Path) -> None:
    junit = tmp_path / "checks.xml"
    code, records, err = test_checks(ran, "--junit", str(junit))
    assert code == 0, err
    checks = by_name(records)
    for name in ("contract[split]", "edges[train]", "determinism[train]", "range[model.C]",
                 "leakage[duplicate rows]", "leakage[target proxy]", "scaling[preprocess]",
                 "serving[registered model]", "drift[train vs test]", "gates",
                 "fairness[recall by clinic]"):
        assert checks[name]["status"] in ("pass", "warn"), checks[name]
    assert not [r for r in records if r["status"] == "fail"]
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == str(len(records)) and suite.get("failures") == "0"
    human = run_cli(ran, "test")
    assert human.returncode == 0 and "checks in" in human.stdout and "0 failed" in human.stdout


def test_pytest_runs_the_same_checks(ran: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "framework.testing",
                           "dvc.yaml", "-q", "-p", "no:cacheprovider"], cwd=ran, env=cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout


def test_test_rows_in_the_train_table_are_leakage(project: Path) -> None:
    train = pd.read_parquet(project / "data/train.parquet")
    test = pd.read_parquet(project / "data/test.parquet")
    pd.concat([test, train.head(7)], ignore_index=True).to_parquet(project / "data/test.parquet")
    code, records, _ = test_checks(project)
    assert code == 1
    found = by_name(records)["leakage[duplicate rows]"]
    assert found["status"] == "fail" and found["evidence"]["shared"] == 7
    assert "7 of 150 rows of data/test.parquet are also in data/train.parquet" in found["message"]


def test_a_feature_that_copies_the_target_is_a_proxy(project: Path) -> None:
    for name in ("train", "test"):
        frame = pd.read_parquet(project / f"data/{name}.parquet")
        frame["diagnosis_code"] = frame["target"] * 2 + 1
        frame.to_parquet(project / f"data/{name}.parquet")
    code, records, _ = test_checks(project)
    found = by_name(records)["leakage[target proxy]"]
    assert code == 1 and found["status"] == "fail"
    assert found["message"].startswith("diagnosis_code alone predicts target")
    assert "accuracy 1.000" in found["message"]


def test_a_scaler_fitted_on_all_the_data_is_caught(project: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from framework.io import save_model

    train = pd.read_parquet(project / "data/train.parquet")
    test = pd.read_parquet(project / "data/test.parquet")
    both = pd.concat([train, test])
    x, y = train.drop(columns=["target", "clinic"]), train["target"]
    scaler = StandardScaler().fit(both.drop(columns=["target", "clinic"]))  # the mistake
    model = Pipeline([("preprocess", scaler), ("model", LogisticRegression(max_iter=1000))])
    model.steps[1][1].fit(scaler.transform(x), y)
    save_model(model, project / "models/model.skops")
    code, records, _ = test_checks(project)
    found = by_name(records)["scaling[preprocess]"]
    assert code == 1 and found["status"] == "fail"
    assert "StandardScaler was fitted on train and test together" in found["message"]
    assert "fitted on data/train.parquet alone it is" in found["message"]


def _patch(project: Path, old: str, new: str) -> None:
    path = project / "pipelines/tabular.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_an_output_its_schema_refuses_fails_the_contract(project: Path) -> None:
    _patch(project, '    return {"train": train.reset_index(drop=True), "test": test.reset_index'
                    '(drop=True)}',
           '    train = train.assign(mean_radius=-1.0)\n'
           '    return {"train": train.reset_index(drop=True), "test": test.reset_index'
           '(drop=True)}')
    code, records, _ = test_checks(project)
    found = by_name(records)["contract[split]"]
    assert code == 1 and found["status"] == "fail" and found["stage"] == "split"
    assert "output 'train'" in found["message"] and "schema features.json" in found["message"]


def test_a_stage_that_is_not_deterministic_is_caught(project: Path) -> None:
    _patch(project, "random_state=seed,", "random_state=None,")
    code, records, _ = test_checks(project)
    found = by_name(records)["determinism[split]"]
    assert code == 1 and found["status"] == "fail"
    assert "different test, train" in found["message"] and "random_state" in found["message"]


def test_a_default_outside_its_range_is_a_user_error(project: Path) -> None:
    config = project / "conf/config.yaml"
    config.write_text(config.read_text().replace("  test_size: 0.25", "  test_size: 0.75"))
    code, _, err = test_checks(project)
    assert code == 2
    assert "split.test_size = 0.75 is above its range maximum 0.5" in err


def test_before_the_pipeline_ever_ran_the_stages_feed_each_other(tmp_path: Path) -> None:
    """A fresh clone in CI, before `dvc repro`: each stage's contract run hands its outputs to
    the next, so every check but the registered model's runs."""
    root = copy_project(tmp_path / "fresh")
    code, records, err = test_checks(root)
    assert code == 0, err
    checks = by_name(records)
    assert not (root / "data").exists()  # nothing was written
    for name in ("contract[evaluate]", "determinism[train]", "leakage[duplicate rows]",
                 "scaling[preprocess]", "gates"):
        assert checks[name]["status"] == "pass", checks[name]
    assert checks["serving[registered model]"]["status"] == "skip" if \
        "serving[registered model]" in checks else checks["serving"]["status"] == "skip"


def test_with_tests_required_a_failing_check_stops_a_sweep_from_registering(
        project: Path) -> None:
    from framework.registry import open_registry

    config = project / "conf/config.yaml"
    config.write_text(config.read_text() + "\ntests:\n  required: true\n")
    run_cli(project, "compile", check=True)
    with open_registry(project / ".framework/registry", create=False) as reg:
        before = len(reg.versions("breast_cancer"))
    _patch(project, "random_state=seed,", "random_state=None,")
    proc = run_cli(project, "+experiment=tune_logreg")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "tests.required is set" in proc.stderr and "determinism[split]" in proc.stderr
    assert "the sweep registers nothing" in proc.stderr
    with open_registry(project / ".framework/registry", create=False) as reg:
        assert len(reg.versions("breast_cancer")) == before


def test_a_model_unfair_by_construction_fails_its_fairness_gate(project: Path) -> None:
    """Clinic B's diagnoses are recorded the other way round: one model cannot serve every clinic
    well, and the fairness gate, in `framework test` and in the register step, says so."""
    from framework.registry import open_registry

    _patch(project, '    return {"raw": frame}\n',
           '    flip = frame["clinic"] == "B"\n'
           '    frame.loc[flip, dataset["target"]] = 1 - frame.loc[flip, dataset["target"]]\n'
           '    return {"raw": frame}\n')
    config = project / "conf/config.yaml"
    config.write_text(config.read_text().replace("  - {metric: roc_auc, min: 0.95}\n", "")
                      .replace("  - {metric: log_loss, max: 0.2}\n", ""))
    proc = run_cli(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL  recall" in proc.stdout and "gap <= 0.1 by clinic: A " in proc.stdout
    with open_registry(project / ".framework/registry", create=False) as reg:
        latest = reg.versions("breast_cancer")[-1]
    assert latest.status == "rejected" and latest.version > 1
    (fair,) = [g for g in latest.gates if g.get("by") == "clinic"]
    assert not fair["passed"] and set(fair["groups"]) == {"A", "B", "C"}
    worst = min(fair["groups"], key=lambda g: fair["groups"][g]["value"])
    assert worst == "B" and "- B) > max_gap 0.1" in fair["message"]

    code, records, _ = test_checks(project)
    found = by_name(records)["fairness[recall by clinic]"]
    assert code == 1 and found["status"] == "fail"
    assert "recall by clinic: A " in found["message"] and "> max_gap 0.1" in found["message"]
    assert found["evidence"]["groups"]["B"]["rows"] >= 30


def test_the_checks_need_no_test_dependency() -> None:
    """`python -m framework test` runs where only the project is installed (no pytest)."""
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.modules['pytest'] = None; "
                           "import framework.testing.cli, framework.testing.checks"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
