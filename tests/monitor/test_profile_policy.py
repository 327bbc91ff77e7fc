"""Reference profiles (deterministic bytes, round trip) and the ``monitor:`` policy (defaults,
every mistake named by file and key)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from framework.errors import ConfigError
from framework.monitor.policy import Policy, parse, parse_duration
from framework.monitor.profile import Profile, build, read_test_predictions


def frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=3000), "b": rng.choice(["x", "y"], 3000),
                         "n": rng.integers(0, 3, 3000), "t": rng.integers(0, 2, 3000)})


def test_the_same_table_gives_the_same_profile_bytes() -> None:
    one, _ = build(frame(), schema=None, target="t")
    two, _ = build(frame(), schema=None, target="t")
    assert one.to_bytes() == two.to_bytes()
    assert list(json.loads(one.to_bytes())["columns"][i]["name"] for i in range(3)) == \
        ["a", "b", "n"]  # the table's order, not sorted
    again = Profile.from_bytes(one.to_bytes())
    assert again.to_bytes() == one.to_bytes() and again.rows == 3000


def test_a_profile_of_another_version_is_refused() -> None:
    data = json.loads(build(frame(), schema=None, target="t")[0].to_bytes())
    data["profile_version"] = 99
    with pytest.raises(ValueError, match="profile version 99"):
        Profile.from_dict(data)


def test_test_predictions_of_a_classifier() -> None:
    from sklearn.linear_model import LogisticRegression

    train = frame(1)
    model = LogisticRegression().fit(train[["a", "n"]], train["t"])

    class OnTwo:  # scores on the two numeric columns, as a pipeline would select them
        classes_ = model.classes_

        def predict(self, x: pd.DataFrame) -> np.ndarray:
            return model.predict(x[["a", "n"]])

        def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
            return model.predict_proba(x[["a", "n"]])

    profile, data = build(train, schema=None, target="t", model=OnTwo(), test=frame(2))
    assert profile.prediction is not None and profile.prediction.classes == [0, 1]
    assert profile.prediction.calibration_error is not None
    table = read_test_predictions(data)
    assert list(table.columns) == ["y_true", "y_pred", "proba_0", "proba_1"]
    assert len(table) == 3000 and np.allclose(table["proba_0"] + table["proba_1"], 1.0)


def test_the_defaults() -> None:
    policy = parse(None)
    assert policy == Policy()
    assert policy.window.last == 10_000 and policy.min_rows == 100
    assert policy.retrain.when == ("data_drift", "performance")


@pytest.mark.parametrize("raw, key, message", [
    ({"data_drft": {}}, "monitor.data_drft", "did you mean 'data_drift'"),
    ({"data_drift": {"alpha": 0}}, "monitor.data_drift.alpha", "above 0"),
    ({"data_drift": {"numeric": {"test": "chi2"}}}, "monitor.data_drift.numeric.test",
     "a test for categories"),
    ({"data_drift": {"columns": {"mean_radus": "psi"}}}, "monitor.data_drift.columns.mean_radus",
     "did you mean 'mean_radius'"),
    ({"data_drift": {"numeric": {"test": "wasserstien"}}}, "monitor.data_drift.numeric.test",
     "did you mean 'wasserstein'"),
    ({"window": {"since": "yesterday"}}, "monitor.window.since", "30m, 24h or 7d"),
    ({"window": {}}, "monitor.window", "'last'"),
    ({"performance": {"tolerance": {"acuracy": 0.02}}}, "monitor.performance.tolerance.acuracy",
     "did you mean 'accuracy'"),
    ({"performance": {"tolerance": {"r2": 0.02}}}, "monitor.performance.tolerance.r2",
     "not among the pipeline's metrics"),
    ({"fairness": [{"metric": "tpr"}]}, "monitor.fairness[0].group_by", "column"),
    ({"fairness": {"group_by": "sex", "metric": "parity"}}, "monitor.fairness.metric",
     "unknown fairness metric"),
    ({"retrain": {"when": ["drift"]}}, "monitor.retrain.when[0]", "did you mean 'data_drift'"),
    ({"retrain": {"input": "feedback"}}, "monitor.retrain.input", "STAGE.INPUT"),
    ({"min_rows": 0}, "monitor.min_rows", "at least 1"),
], ids=lambda x: x if isinstance(x, str) and x.startswith("monitor") else None)
def test_a_mistake_names_the_file_and_key(raw: dict, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse(raw, file="conf/config.yaml", columns=["mean_radius", "mean_area"],
              metrics=["accuracy", "roc_auc"])
    assert info.value.file == "conf/config.yaml" and info.value.key == key


def test_yaml_reads_an_unquoted_on_as_true_and_it_still_means_on() -> None:
    import yaml

    raw = yaml.safe_load("retrain: {on: [performance]}")
    assert True in raw["retrain"]
    assert parse(raw).retrain.when == ("performance",)


def test_durations_and_windows() -> None:
    assert parse_duration("24h") == 86400 and parse_duration("30m") == 1800
    policy = parse({"window": {"since": "7d"}})
    assert policy.window.since == 7 * 86400 and policy.window.describe() == "since 1w ago"
    assert parse(None).with_window(last=5).window.describe() == "the latest 5 rows"


def test_the_columns_the_server_logs() -> None:
    policy = parse({"log_columns": ["region"], "fairness": [{"group_by": "sex"},
                                                            {"group_by": "region"}]})
    assert policy.logged_columns() == ("region", "sex")
