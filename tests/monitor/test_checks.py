"""The monitor's checks on synthetic production windows: what alarms, what does not, and why."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from framework.monitor import checks
from framework.monitor.checks import Observed
from framework.monitor.policy import ColumnTest, Fairness, Policy, parse
from framework.monitor.profile import build

NUMERIC = [f"x{i}" for i in range(8)]
SCHEMA = {"type": "object", "properties": {
    **{c: {"type": "number"} for c in NUMERIC},
    "colour": {"type": "string", "enum": ["red", "green", "blue", "grey"]},
    "size": {"type": "integer", "minimum": 0},
    "y": {"type": "integer", "enum": [0, 1]}}}
SHARES = [0.4, 0.3, 0.2, 0.1]


def make(n: int, rng: np.random.Generator, *, shift: dict[str, float] | None = None,
         shares: list[float] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({c: rng.normal(size=n) for c in NUMERIC})
    for column, by in (shift or {}).items():
        frame[column] += by
    frame["colour"] = rng.choice(["red", "green", "blue", "grey"], p=shares or SHARES, size=n)
    frame["size"] = rng.integers(0, 5, size=n)
    logit = frame["x0"] - frame["x1"] + 0.5 * frame["x2"]
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


class Fitted:
    """A logistic regression on x0..x7: calibrated by construction (the data are logistic)."""

    def __init__(self, train: pd.DataFrame) -> None:
        self.model = LogisticRegression(max_iter=1000).fit(train[NUMERIC], train["y"])
        self.classes_ = self.model.classes_

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict(x[NUMERIC])

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(x[NUMERIC])


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    train, test = make(20_000, rng), make(5_000, rng)
    model = Fitted(train)
    profile, predictions = build(train, schema=SCHEMA, target="y", model=model, test=test)
    from framework.monitor.profile import read_test_predictions

    return {"profile": profile, "model": model, "rng": rng,
            "test_predictions": read_test_predictions(predictions)}


def observed(world: dict[str, Any], frame: pd.DataFrame, *, labels: bool = False,
             groups: dict[str, Any] | None = None) -> Observed:
    model = world["model"]
    x = frame.drop(columns=["y"])
    return Observed(features=x, predictions=model.predict(x), proba=model.predict_proba(x),
                    labels=frame["y"].to_numpy(dtype=object) if labels else None,
                    groups=groups or {}, requests=len(frame))


def run(world: dict[str, Any], obs: Observed, policy: Policy | None = None) -> checks.Report:
    return checks.run(world["profile"], policy or Policy(), obs, model="m", version=1,
                      registered={"accuracy": 0.74, "roc_auc": 0.82}, primary_metric="roc_auc",
                      window={"description": "test"},
                      test_predictions=world["test_predictions"])


def test_the_profile_knows_each_columns_kind(world: dict[str, Any]) -> None:
    kinds = {n: s.kind for n, s in world["profile"].columns.items()}
    assert kinds == {**dict.fromkeys(NUMERIC, "numeric"), "colour": "categorical",
                     "size": "categorical"}  # an integer with five values is a category


def test_no_drift_batches_raise_no_alarm(world: dict[str, Any]) -> None:
    rng = np.random.default_rng(11)
    alarms = [run(world, observed(world, make(1000, rng))).check("data_drift").alarm
              for _ in range(100)]
    assert sum(alarms) <= 5, f"{sum(alarms)} of 100 no-drift batches alarmed"


def test_shifted_columns_are_found_and_named(world: dict[str, Any]) -> None:
    rng = np.random.default_rng(12)
    frame = make(5_000, rng, shift={"x3": 0.3, "x5": -0.3}, shares=[0.3, 0.3, 0.25, 0.15])
    result = run(world, observed(world, frame)).check("data_drift")
    assert result.status == checks.ALARM
    assert sorted(result.numbers["drifted"]) == ["colour", "x3", "x5"]
    assert result.findings[0].status == checks.DRIFT  # drifted columns come first
    assert "x3" in result.message and "3 of 10 columns drifted" in result.message


def test_a_larger_share_of_columns_can_be_required(world: dict[str, Any]) -> None:
    frame = make(5_000, np.random.default_rng(13), shift={"x3": 0.5})
    policy = parse({"data_drift": {"share": 0.2}})
    result = run(world, observed(world, frame), policy).check("data_drift")
    assert result.numbers["drifted"] == ["x3"] and result.status == checks.OK


def test_per_column_tests(world: dict[str, Any]) -> None:
    frame = make(5_000, np.random.default_rng(14), shift={"x3": 0.5, "x4": 0.05})
    policy = parse({"data_drift": {"columns": {"x3": {"test": "none"},
                                               "x4": {"test": "ks", "threshold": 0.9},
                                               "colour": "psi"}}},
                   columns=list(SCHEMA["properties"]))
    result = run(world, observed(world, frame), policy).check("data_drift")
    by = {f.subject: f for f in result.findings}
    assert "x3" not in by  # not checked
    assert by["x4"].test == "ks" and by["x4"].status == checks.DRIFT  # any p below 0.9
    assert by["colour"].test == "psi" and by["colour"].threshold == 0.1


def test_a_test_for_the_wrong_kind_of_column_names_its_key(world: dict[str, Any]) -> None:
    policy = replace(Policy(), data_drift=replace(Policy().data_drift,
                                                  columns={"colour": ColumnTest("ks")}))
    with pytest.raises(Exception, match="monitor.data_drift.columns.colour.test"):
        run(world, observed(world, make(500, np.random.default_rng(1))), policy)


def test_too_few_rows_is_not_enough_data_never_an_alarm(world: dict[str, Any]) -> None:
    frame = make(50, np.random.default_rng(15), shift={"x0": 3.0})
    report = run(world, observed(world, frame))
    assert report.check("data_drift").status == checks.NOT_ENOUGH
    assert not report.alarm


def test_realized_performance_against_the_registered_metrics(world: dict[str, Any]) -> None:
    rng = np.random.default_rng(16)
    frame = make(2_000, rng)
    ok = run(world, observed(world, frame, labels=True)).check("performance")
    assert ok.status == checks.OK and ok.numbers["labelled"] == 2000
    assert ok.numbers["metrics"]["roc_auc"] == pytest.approx(0.82, abs=0.03)
    flipped = frame.copy()
    flipped["y"] = 1 - flipped["y"]  # the concept moved: the model is now wrong
    bad = run(world, observed(world, flipped, labels=True)).check("performance")
    assert bad.status == checks.ALARM and "roc_auc" in bad.message


def test_the_label_free_estimate_tracks_realized_accuracy(world: dict[str, Any]) -> None:
    rng = np.random.default_rng(17)
    for shift in ({}, {"x0": 1.0, "x1": -1.0}, {"x2": -1.5}):  # covariate shift: P(y|x) holds
        frame = make(10_000, rng, shift=shift)
        obs = observed(world, frame)
        result = run(world, obs).check("estimated_performance")
        estimate = result.findings[0].statistic
        realized = float(np.mean(obs.predictions == frame["y"].to_numpy()))
        assert abs(estimate - realized) < 0.02, (shift, estimate, realized)
        low, high = result.findings[0].numbers["low"], result.findings[0].numbers["high"]
        assert low < estimate < high and high - low < 0.05


class Underconfident(Fitted):
    """Probabilities pulled halfway to 0.5, as a random forest's often are: not calibrated."""

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return 0.5 + 0.5 * (super().predict_proba(x) - 0.5)


def test_an_uncalibrated_model_is_judged_against_its_own_estimate_on_the_test_set() -> None:
    """With too few test rows to calibrate on, the estimate is biased (here low by ~0.1): the
    baseline is then the same estimate on the test set, so unchanged data does not alarm and a
    real drop still does."""
    from framework.monitor.profile import read_test_predictions

    rng = np.random.default_rng(21)
    train, test = make(5_000, rng), make(60, rng)  # fewer than 100 rows: no calibration
    model = Underconfident(train)
    profile, predictions = build(train, schema=SCHEMA, target="y", model=model, test=test)
    world = {"profile": profile, "model": model,
             "test_predictions": read_test_predictions(predictions)}
    frame = make(5_000, rng)
    result = run(world, observed(world, frame)).check("estimated_performance")
    accuracy = result.findings[0]
    realized = float(np.mean(model.predict(frame.drop(columns=["y"])) == frame["y"]))
    assert realized - accuracy.statistic > 0.05  # biased: it is not calibrated
    assert result.status == checks.OK, result.message
    assert accuracy.numbers["baseline_from"] == "test set estimate"
    assert "on the test set" in accuracy.detail
    harder = make(5_000, rng)
    harder[["x0", "x1", "x2"]] *= 0.3  # rows crowd the decision boundary: harder to call
    logit = harder["x0"] - harder["x1"] + 0.5 * harder["x2"]
    harder["y"] = (rng.random(5_000) < 1 / (1 + np.exp(-logit))).astype(int)
    worse = run(world, observed(world, harder)).check("estimated_performance")
    assert worse.status == checks.ALARM, worse.message


def test_fairness_gap_between_groups(world: dict[str, Any]) -> None:
    rng = np.random.default_rng(18)
    frame = make(3_000, rng)
    obs = observed(world, frame)
    fair = np.where(rng.random(3_000) < 0.5, "a", "b").astype(object)
    policy = replace(Policy(), fairness=(Fairness("group", "selection_rate", 0.1, 30),))
    result = run(world, replace(obs, groups={"group": fair}), policy).checks[-1]
    assert result.name == "fairness[group]" and result.status == checks.OK
    # group b is the half whose x0 is high: the model selects it far more often
    unfair = np.where(frame["x0"].to_numpy() > 0, "b", "a").astype(object)
    result = run(world, replace(obs, groups={"group": unfair}), policy).checks[-1]
    assert result.status == checks.ALARM and result.numbers["gap"] > 0.3
    tiny = np.array(["a"] * 2_990 + ["b"] * 10, dtype=object)
    result = run(world, replace(obs, groups={"group": tiny}), policy).checks[-1]
    assert result.status == checks.NOT_ENOUGH and "b" in str(result.numbers["sizes"])


def test_schema_violations_share(world: dict[str, Any]) -> None:
    obs = observed(world, make(500, np.random.default_rng(19)))
    obs = replace(obs, requests=600, refused=[("INVALID_PARAMETER_VALUE", ("x1",))] * 90
                  + [("BAD_REQUEST", ())] * 10)
    result = run(world, obs).check("schema")
    assert result.status == checks.ALARM
    assert result.numbers["by_column"] == {"x1": 90} and result.numbers["malformed"] == 10
    assert "90 of 600 requests (15.0%)" in result.message


def test_prediction_drift(world: dict[str, Any]) -> None:
    rng = np.random.default_rng(20)
    same = run(world, observed(world, make(3_000, rng))).check("prediction_drift")
    assert same.status == checks.OK
    moved = run(world, observed(world, make(3_000, rng, shift={"x0": 1.5}))).check(
        "prediction_drift")
    assert moved.status == checks.ALARM
    assert {f.subject for f in moved.findings} == {"P(1)", "predicted class"}


def test_the_report_is_json_ready(world: dict[str, Any]) -> None:
    import json

    report = run(world, observed(world, make(1_000, np.random.default_rng(21)), labels=True))
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert '"data_drift"' in text
    assert set(report.summary()) >= {"data_drift", "performance", "estimated_performance"}
