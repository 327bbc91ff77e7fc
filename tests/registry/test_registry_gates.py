"""Gates: parsing config at compile time and evaluating metrics at register time."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from framework.errors import ConfigError
from framework.registry.gates import Gate, evaluate, metric_direction, parse_gates

KNOWN = {"roc_auc", "accuracy", "log_loss", "f1"}


def test_parse_gates_one_gate_per_rule() -> None:
    gates = parse_gates([{"metric": "roc_auc", "min": 0.95},
                         {"metric": "log_loss", "max": 0.2},
                         {"metric": "accuracy", "min": 0.9, "max_drop_vs_champion": 0.005,
                          "direction": "maximize"}],
                        known_metrics=KNOWN, file="conf/config.yaml")
    assert gates == [Gate("roc_auc", "min", 0.95), Gate("log_loss", "max", 0.2),
                     Gate("accuracy", "min", 0.9, "maximize"),
                     Gate("accuracy", "max_drop_vs_champion", 0.005, "maximize")]
    assert parse_gates(None, known_metrics=None, file="x") == []


@pytest.mark.parametrize("raw, key, match", [
    pytest.param([{"metric": "roc_aux", "min": 0.9}], "gates[0].metric",
                 r"unknown metric 'roc_aux'.*\n  hint: did you mean 'roc_auc'\?",
                 id="unknown-metric"),
    pytest.param([{"metric": "roc_auc", "min": 0.9}, {"metric": "f1", "minn": 0.5}],
                 "gates[1].minn", r"unknown gate key 'minn'.*\n  hint: did you mean 'min'\?",
                 id="unknown-rule"),
    pytest.param([{"metric": "f1", "min": "high"}], "gates[0].min",
                 r"threshold must be a finite number, found 'high'", id="non-numeric"),
    pytest.param([{"metric": "f1", "min": True}], "gates[0].min",
                 r"threshold must be a finite number, found True", id="bool-threshold"),
    pytest.param([{"metric": "f1", "max": float("nan")}], "gates[0].max",
                 r"finite number", id="nan-threshold"),
    pytest.param([{"metric": "f1"}], "gates[0]", r"gate on 'f1' has no rule", id="no-rule"),
    pytest.param([{"min": 0.5}], "gates[0].metric", r"expected a metric name", id="no-metric"),
    pytest.param([{"metric": "f1", "max_drop_vs_champion": -0.1}],
                 "gates[0].max_drop_vs_champion", r"must be >= 0", id="negative-drop"),
    pytest.param([{"metric": "f1", "min": 0.5, "direction": "up"}], "gates[0].direction",
                 r"direction must be 'maximize' or 'minimize'", id="bad-direction"),
    pytest.param(["roc_auc >= 0.9"], "gates[0]", r"expected a mapping", id="not-a-mapping"),
    pytest.param({"metric": "f1"}, "gates", r"expected a list of gates", id="not-a-list"),
])
def test_parse_gates_refuses(raw: object, key: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_gates(raw, known_metrics=KNOWN, file="conf/config.yaml")
    assert info.value.key == key
    assert info.value.file == "conf/config.yaml"
    assert str(info.value).startswith(f"conf/config.yaml: {key}: ")


def test_parse_gates_custom_key_and_unknown_metrics_allowed_without_list() -> None:
    with pytest.raises(ConfigError, match=r"^p.yaml: pipeline.gates\[0\]: gate on 'x' has no rule"):
        parse_gates([{"metric": "x"}], known_metrics=None, file="p.yaml", key="pipeline.gates")
    assert parse_gates([{"metric": "anything", "min": 1}], known_metrics=None, file="p.yaml")


def test_gates_module_imports_only_stdlib() -> None:
    code = ("import sys; import framework.registry.gates; "
            "bad = [m for m in ('sklearn', 'pandas', 'numpy', 'skops', 'yaml', 'sqlite3', 'rich',"
            " 'framework.registry.core') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name, expected", [
    ("roc_auc", "maximize"), ("accuracy", "maximize"), ("log_loss", "minimize"),
    ("mean_squared_error", "minimize"), ("val_error_rate", "minimize"), ("rmse", "minimize"),
    ("test_mae", "minimize"), ("r2", "maximize"), ("maestro", "maximize"),
])
def test_default_direction(name: str, expected: str) -> None:
    assert metric_direction(name) == expected


def test_direction_precedence() -> None:
    assert metric_direction("log_loss", gate_direction="maximize") == "maximize"
    assert metric_direction("cost", primary_metric="cost", primary_direction="minimize") == \
        "minimize"
    assert metric_direction("cost", primary_metric="other", primary_direction="minimize") == \
        "maximize"


def test_evaluate_absolute_rules() -> None:
    gates = parse_gates([{"metric": "roc_auc", "min": 0.95}, {"metric": "log_loss", "max": 0.2}],
                        known_metrics=None, file="x")
    ok = evaluate(gates, {"roc_auc": 0.97, "log_loss": 0.2})
    assert [v.passed for v in ok] == [True, True]
    bad = evaluate(gates, {"roc_auc": 0.94, "log_loss": 0.25})
    assert [v.passed for v in bad] == [False, False]
    assert bad[0].message == "roc_auc 0.94 < min 0.95"
    assert bad[1].message == "log_loss 0.25 > max 0.2"
    assert bad[0].to_dict()["value"] == 0.94 and bad[0].to_dict()["threshold"] == 0.95


def test_evaluate_missing_or_nan_metric_fails() -> None:
    gates = parse_gates([{"metric": "roc_auc", "min": 0.5}], known_metrics=None, file="x")
    (v,) = evaluate(gates, {"roc_au": 0.9})
    assert not v.passed and "roc_auc is not in the metrics (did you mean 'roc_au'?)" in v.message
    (v,) = evaluate(gates, {"roc_auc": float("nan")})
    assert not v.passed and "not a number" in v.message


@pytest.mark.parametrize("metric, direction, value, champion, passed", [
    ("accuracy", None, 0.965, 0.97, True),      # drop 0.005 == threshold
    ("accuracy", None, 0.96, 0.97, False),      # drop 0.01
    ("accuracy", None, 0.99, 0.97, True),       # improvement
    ("log_loss", None, 0.104, 0.1, True),       # lower is better: +0.004 is a drop of 0.004
    ("log_loss", None, 0.11, 0.1, False),
    ("log_loss", None, 0.05, 0.1, True),
    ("latency", "minimize", 0.11, 0.1, False),  # the gate's own direction
])
def test_drop_vs_champion_is_direction_aware(metric: str, direction: str | None, value: float,
                                             champion: float, passed: bool) -> None:
    entry = {"metric": metric, "max_drop_vs_champion": 0.005}
    if direction:
        entry["direction"] = direction
    gates = parse_gates([entry], known_metrics=None, file="x")
    (v,) = evaluate(gates, {metric: value}, champion_metrics={metric: champion},
                    champion_version=4)
    assert v.passed is passed, v.message
    assert v.champion_value == champion and v.champion_version == 4


def test_drop_uses_primary_direction() -> None:
    gates = parse_gates([{"metric": "cost", "max_drop_vs_champion": 0.0}], known_metrics=None,
                        file="x")
    (v,) = evaluate(gates, {"cost": 5.0}, champion_metrics={"cost": 6.0}, champion_version=1,
                    primary_metric="cost", primary_direction="minimize")
    assert v.passed
    (v,) = evaluate(gates, {"cost": 5.0}, champion_metrics={"cost": 6.0}, champion_version=1)
    assert not v.passed  # "cost" defaults to maximize


def test_champion_relative_gates_pass_without_champion() -> None:
    gates = parse_gates([{"metric": "accuracy", "max_drop_vs_champion": 0.0}],
                        known_metrics=None, file="x")
    (v,) = evaluate(gates, {"accuracy": 0.1})
    assert v.passed and v.message == "accuracy: nothing to compare with (the first version)"
    (v,) = evaluate(gates, {"accuracy": 0.1}, champion_metrics={"roc_auc": 1.0},
                    champion_version=2)
    assert v.passed and "champion v2 has no value" in v.message


# -- per-group (fairness) gates ------------------------------------------------------------------

COLUMNS = {"clinic", "mean_radius", "target"}


def grouped(metric: str, values: dict[str, float], rows: dict[str, int]) -> dict[str, float]:
    """Flat metrics as the evaluate stage writes them: ``recall@clinic=A``, ``rows@clinic=A``."""
    out: dict[str, float] = {metric: 0.9}
    out.update({f"{metric}@clinic={g}": v for g, v in values.items()})
    out.update({f"rows@clinic={g}": n for g, n in rows.items()})
    return out


def test_parse_per_group_gates() -> None:
    gates = parse_gates([{"metric": "f1", "by": "clinic", "max_gap": 0.05, "min_group_size": 20},
                         {"metric": "accuracy", "by": "clinic", "min": 0.9}],
                        known_metrics=KNOWN, file="conf/config.yaml", columns=COLUMNS)
    assert gates == [Gate("f1", "max_gap", 0.05, None, "clinic", 20),
                     Gate("accuracy", "min", 0.9, None, "clinic", 30)]


@pytest.mark.parametrize("raw, key, match", [
    pytest.param([{"metric": "f1", "by": "clinik", "max_gap": 0.1}], "gates[0].by",
                 r"no column 'clinik' in the evaluated table.*\n  hint: did you mean 'clinic'\?",
                 id="unknown-column"),
    pytest.param([{"metric": "f1", "max_gap": 0.1}], "gates[0].max_gap",
                 r"max_gap compares groups: add by: <column>", id="gap-without-by"),
    pytest.param([{"metric": "f1", "by": "clinic", "max_drop_vs_champion": 0.1}],
                 "gates[0].max_drop_vs_champion", r"compares with the champion, not groups",
                 id="champion-rule-by-group"),
    pytest.param([{"metric": "f1", "by": "clinic", "max_gap": -0.1}], "gates[0].max_gap",
                 r"must be >= 0", id="negative-gap"),
    pytest.param([{"metric": "f1", "by": "clinic", "max_gap": 0.1, "min_group_size": 0}],
                 "gates[0].min_group_size", r"whole number >= 1", id="zero-group-size"),
    pytest.param([{"metric": "f1", "min": 0.5, "min_group_size": 10}],
                 "gates[0].min_group_size", r"per-group gate only", id="size-without-by"),
    pytest.param([{"metric": "f1", "by": "a@b", "min": 0.5}], "gates[0].by",
                 r"cannot hold '@' or '='", id="separator-in-column"),
])
def test_per_group_gates_refuse(raw: object, key: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_gates(raw, known_metrics=KNOWN, file="conf/config.yaml", columns=COLUMNS)
    assert info.value.key == key


def test_max_gap_names_the_groups_and_the_two_numbers_compared() -> None:
    gate = Gate("recall", "max_gap", 0.05, by="clinic", min_group_size=30)
    metrics = grouped("recall", {"A": 0.98, "B": 0.80, "C": 0.95}, {"A": 50, "B": 40, "C": 45})
    (v,) = evaluate([gate], metrics)
    assert not v.passed and v.value == pytest.approx(0.18)
    assert "A 0.98, B 0.8, C 0.95" in v.message and "gap 0.18 (A - B) > max_gap 0.05" in v.message
    assert v.groups == {"A": {"value": 0.98, "rows": 50.0}, "B": {"value": 0.8, "rows": 40.0},
                        "C": {"value": 0.95, "rows": 45.0}}
    assert v.to_dict()["by"] == "clinic"
    (ok,) = evaluate([Gate("recall", "max_gap", 0.2, by="clinic", min_group_size=30)], metrics)
    assert ok.passed


def test_small_groups_are_left_out_and_named() -> None:
    metrics = grouped("recall", {"A": 0.98, "B": 0.10, "C": 0.96}, {"A": 50, "B": 4, "C": 45})
    (v,) = evaluate([Gate("recall", "max_gap", 0.05, by="clinic", min_group_size=30)], metrics)
    assert v.passed and "left out, fewer than 30 rows: B (4 rows)" in v.message


def test_every_group_must_reach_min() -> None:
    metrics = grouped("accuracy", {"A": 0.95, "B": 0.85, "C": 0.92}, {"A": 50, "B": 40, "C": 45})
    (v,) = evaluate([Gate("accuracy", "min", 0.9, by="clinic", min_group_size=30)], metrics)
    assert not v.passed and v.value == 0.85 and "B below min 0.9" in v.message
    (v,) = evaluate([Gate("accuracy", "min", 0.8, by="clinic", min_group_size=30)], metrics)
    assert v.passed and "every group >= min 0.8" in v.message


@pytest.mark.parametrize("metrics, match", [
    pytest.param({"recall": 0.9}, r"no per-group values \(recall@clinic=<group>\)",
                 id="no-group-metrics"),
    pytest.param(grouped("recall", {"A": 0.9, "B": 0.5}, {"A": 50, "B": 10}),
                 r"1 group\(s\) with at least 30 rows, 2 needed", id="one-group-left"),
    pytest.param(grouped("recall", {"A": 0.9}, {}), r"rows@clinic=A = None",
                 id="no-row-count"),
])
def test_a_gate_without_evidence_fails(metrics: dict[str, float], match: str) -> None:
    (v,) = evaluate([Gate("recall", "max_gap", 0.1, by="clinic", min_group_size=30)], metrics)
    assert not v.passed
    assert re.search(match, v.message), v.message
