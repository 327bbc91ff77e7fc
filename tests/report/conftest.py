"""Fixtures of the report tests: a registry with versions as the register step stores them, a
recorded sweep, and a real headless Chromium driven through chromedriver."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from report_testlib import MODEL, REGRESSOR

BROWSER_ENV = "FRAMEWORK_REQUIRE_BROWSER"


def _fit(train: pd.DataFrame, C: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(
        train.drop(columns=["target"]), train["target"])


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with a registry of four versions (one archived), each with its test
    predictions and the pipeline's plots, an alias history, a monitor run, and a sweep."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split

    from framework.monitor.profile import PROFILE, TEST_PREDICTIONS, build
    from framework.registry import open_registry, parse_gates
    from framework.registry.step import plot_companions
    from framework.registry.store import MonitorRun
    from framework.sweep.store import SweepStore, TrialResult

    root = tmp_path_factory.mktemp("report-project")
    frame = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    train, test = train_test_split(frame, test_size=0.3, random_state=0, stratify=frame["target"])
    schema = {"type": "object", "properties": {c: {"type": "number"} for c in frame.columns
                                               if c != "target"}}
    (root / "plots").mkdir()
    (root / "dvc.yaml").write_text(
        "stages:\n  evaluate:\n    plots:\n"
        "    - plots/confusion.csv: {template: confusion, x: actual, y: predicted, "
        "title: Confusion matrix}\n"
        "    - plots/roc.csv: {template: simple, x: fpr, y: tpr, title: ROC}\n")
    with open_registry(root / "registry") as reg:
        for i, C in enumerate((0.01, 1.0, 100.0, 0.1)):
            model = _fit(train, C)
            proba = model.predict_proba(test.drop(columns=["target"]))[:, 1]
            predicted = model.predict(test.drop(columns=["target"]))
            pd.DataFrame({"actual": test["target"], "predicted": predicted}).to_csv(
                root / "plots/confusion.csv", index=False)
            from sklearn.metrics import roc_curve

            fpr, tpr, _ = roc_curve(test["target"], proba)
            pd.DataFrame({"fpr": fpr, "tpr": tpr}).to_csv(root / "plots/roc.csv", index=False)
            profile, predictions = build(train, schema=schema, target="target", model=model,
                                         test=test)
            companions = {PROFILE: profile.to_bytes(), TEST_PREDICTIONS: predictions}
            cwd = os.getcwd()
            os.chdir(root)
            try:
                companions.update(plot_companions(["plots/confusion.csv", "plots/roc.csv"],
                                                  "evaluate"))
            finally:
                os.chdir(cwd)
            metrics = {"roc_auc": roc_auc_score(test["target"], proba),
                       "accuracy": accuracy_score(test["target"], predicted),
                       "log_loss": log_loss(test["target"], proba)}
            reg.register(MODEL, model, metrics=metrics, input_schema=schema, target="target",
                         primary_metric="roc_auc", actor="tests",
                         params={"model": {"C": C, "max_iter": 2000}, "seed": 0},
                         lineage={"evaluation": {"sha256": "same-test-set", "path": "test"},
                                  "packages": {"scikit-learn": "1"}},
                         companions=companions,
                         gates=parse_gates([{"metric": "roc_auc", "min": 0.9}],
                                           known_metrics=None, file="tests"))
        _register_regressors(reg)
        unaliased = [mv.version for mv in reg.versions(MODEL) if not mv.aliases]
        reg.archive(MODEL, unaliased[:1])
        reg.store.add_monitor_run(MonitorRun(
            MODEL, 2, "2026-12-01T10:00:00+00:00", 300, True, {"last": 300},
            {"data_drift": {"status": "alarm", "drifted": ["mean_texture"], "columns": 30},
             "performance": {"status": "ok", "metrics": {"accuracy": 0.95}}}))
    store = SweepStore(root, "20261201-100000-abcd")
    store.start({"id": store.sweep_id, "primary_metric": "roc_auc", "direction": "maximize",
                 "command": "python -m framework +experiment=tune"})
    rng = np.random.default_rng(0)
    for i in range(12):
        C = float(10 ** rng.uniform(-3, 3))
        ok = i != 5
        store.append(TrialResult(i, [f"model.C={C:.4g}", f"model.penalty={'l1' if i % 2 else 'l2'}"],
                                 "ok" if ok else "failed", duration=0.5,
                                 metrics={"roc_auc": 0.9 + 0.05 * rng.random()} if ok else {},
                                 error=None if ok else "ValueError: solver lbfgs supports only "
                                 "'l2' penalties"))
    return root


def _register_regressors(reg: Any) -> None:
    """Two versions of a regressor (``REGRESSOR``), for the residual plots."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import train_test_split

    from framework.monitor.profile import PROFILE, TEST_PREDICTIONS, build

    frame = load_diabetes(as_frame=True).frame
    train, test = train_test_split(frame, test_size=0.3, random_state=0)
    schema = {"type": "object", "properties": {c: {"type": "number"} for c in frame.columns
                                               if c != "target"}}
    for alpha in (0.1, 10.0):
        model = Ridge(alpha=alpha).fit(train.drop(columns=["target"]), train["target"])
        profile, predictions = build(train, schema=schema, target="target", model=model,
                                     test=test)
        residual = test["target"] - model.predict(test.drop(columns=["target"]))
        reg.register(REGRESSOR, model, metrics={"rmse": float(np.sqrt((residual ** 2).mean()))},
                     input_schema=schema, target="target", primary_metric="rmse",
                     direction="minimize", actor="tests", params={"model": {"alpha": alpha}},
                     lineage={"evaluation": {"sha256": "diabetes-test", "path": "test"}},
                     companions={PROFILE: profile.to_bytes(), TEST_PREDICTIONS: predictions})


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package) through chromedriver, with its console and network
    logs. Without it the browser tests are skipped, unless $FRAMEWORK_REQUIRE_BROWSER is set
    (as ``.ci/run`` sets it), where its absence fails them."""
    paths = chromium_paths()
    if paths is None:
        if os.environ.get(BROWSER_ENV):
            pytest.fail("chromium and chromedriver are required ($FRAMEWORK_REQUIRE_BROWSER)")
        pytest.skip("chromium and chromedriver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1300,1800", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--disable-sync"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the browser tests write their screenshots (kept after the run)."""
    path = Path(os.environ.get("FRAMEWORK_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
