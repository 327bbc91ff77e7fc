"""Gates: the validation rules a model's metrics must pass before it may become champion.

A gate entry in config names one metric and one or more rules::

    gates:
      - {metric: roc_auc, min: 0.95}
      - {metric: log_loss, max: 0.2}
      - {metric: accuracy, max_drop_vs_champion: 0.005}
      - {metric: latency_ms, max_drop_vs_champion: 2, direction: minimize}

Rules:

``min``                   value >= threshold
``max``                   value <= threshold
``max_drop_vs_champion``  how much worse than the current champion the value may be,
                          direction-aware: ``champion - value`` when higher is better,
                          ``value - champion`` when lower is better; passes when that drop
                          <= threshold. Without a champion (or when the champion has no value
                          for the metric) it passes.

Which way is better for a metric (used by ``max_drop_vs_champion`` only) is decided, in order, by:
the entry's own ``direction`` (``maximize`` / ``minimize``); ``registry.direction`` when the metric
is the registry's primary metric; otherwise ``minimize`` for names that contain ``loss`` or
``error`` or whose name is (or ends in ``_``) one of ``mse``, ``rmse``, ``mae``, ``mape``, and
``maximize`` for everything else.

This module imports only the standard library: the compiler calls :func:`parse_gates` at compile
time, which must start fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from framework.errors import ConfigError, did_you_mean

RULES: tuple[str, ...] = ("min", "max", "max_drop_vs_champion")
CHAMPION_RULES: frozenset[str] = frozenset({"max_drop_vs_champion"})
DIRECTIONS: tuple[str, ...] = ("maximize", "minimize")
_ENTRY_KEYS: tuple[str, ...] = ("metric", "direction", *RULES)
_MINIMIZE_TOKENS = ("mse", "rmse", "mae", "mape")


@dataclass(frozen=True)
class Gate:
    """One rule on one metric. ``direction`` is None unless the config said it."""

    metric: str
    rule: str
    threshold: float
    direction: str | None = None

    def describe(self) -> str:
        op = {"min": ">=", "max": "<="}.get(self.rule)
        if op:
            return f"{self.metric} {op} {self.threshold:g}"
        return f"{self.metric} drop vs champion <= {self.threshold:g}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one gate on one set of metrics (JSON-ready through :meth:`to_dict`)."""

    metric: str
    rule: str
    value: float | None
    threshold: float
    passed: bool
    message: str
    champion_value: float | None = None
    champion_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def metric_direction(metric: str, *, gate_direction: str | None = None,
                     primary_metric: str | None = None,
                     primary_direction: str | None = None) -> str:
    """Return ``"maximize"`` or ``"minimize"`` for ``metric`` (see the module docstring)."""
    if gate_direction:
        return gate_direction
    if primary_metric is not None and metric == primary_metric and primary_direction:
        return primary_direction
    low = metric.lower()
    if "loss" in low or "error" in low:
        return "minimize"
    if any(low == t or low.endswith("_" + t) for t in _MINIMIZE_TOKENS):
        return "minimize"
    return "maximize"


def is_better(value: float, than: float, direction: str) -> bool:
    """Strictly better, direction-aware."""
    return value > than if direction == "maximize" else value < than


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_gates(raw: Any, *, known_metrics: set[str] | None = None, file: str = "params.yaml",
                key: str = "gates") -> list[Gate]:
    """Check the ``gates`` list of a config and return one :class:`Gate` per rule.

    ``known_metrics``, when given, is the set of metric names the pipeline produces; a gate on any
    other name is refused with a did-you-mean hint. Raises :class:`ConfigError` naming ``file`` and
    the key path (``gates[2].metric``) of the first mistake.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"expected a list of gates like [{{metric: roc_auc, min: 0.9}}], "
                          f"found {type(raw).__name__}", file=file, key=key)
    gates: list[Gate] = []
    for i, entry in enumerate(raw):
        where = f"{key}[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"expected a mapping like {{metric: roc_auc, min: 0.9}}, found "
                              f"{type(entry).__name__} {entry!r}", file=file, key=where)
        for k in entry:
            if k not in _ENTRY_KEYS:
                raise ConfigError(f"unknown gate key {k!r}; a gate has 'metric', an optional "
                                  f"'direction' and rules {', '.join(RULES)}", file=file,
                                  key=f"{where}.{k}", hint=did_you_mean(str(k), _ENTRY_KEYS))
        metric = entry.get("metric")
        if not isinstance(metric, str) or not metric:
            raise ConfigError(f"expected a metric name (a string), found {metric!r}", file=file,
                              key=f"{where}.metric")
        if known_metrics is not None and metric not in known_metrics:
            known = ", ".join(sorted(known_metrics)) or "none"
            raise ConfigError(f"unknown metric {metric!r}; the pipeline's metrics are: {known}",
                              file=file, key=f"{where}.metric",
                              hint=did_you_mean(metric, known_metrics))
        direction = entry.get("direction")
        if direction is not None and direction not in DIRECTIONS:
            raise ConfigError(f"direction must be 'maximize' or 'minimize', found {direction!r}",
                              file=file, key=f"{where}.direction",
                              hint=did_you_mean(str(direction), DIRECTIONS))
        rules = [r for r in RULES if r in entry]
        if not rules:
            raise ConfigError(f"gate on {metric!r} has no rule; add one of {', '.join(RULES)}",
                              file=file, key=where)
        for rule in rules:
            threshold = entry[rule]
            if not _is_number(threshold) or not math.isfinite(threshold):
                raise ConfigError(f"threshold must be a finite number, found {threshold!r}",
                                  file=file, key=f"{where}.{rule}")
            if rule in CHAMPION_RULES and threshold < 0:
                raise ConfigError(f"{rule} must be >= 0, found {threshold!r}", file=file,
                                  key=f"{where}.{rule}")
            gates.append(Gate(metric, rule, float(threshold), direction))
    return gates


def gates_from_dicts(raw: list[Mapping[str, Any]]) -> list[Gate]:
    """Rebuild gates from the flat ``{metric, rule, threshold, direction}`` records we store."""
    return [Gate(d["metric"], d["rule"], float(d["threshold"]), d.get("direction")) for d in raw]


def gates_from_verdicts(raw: list[Mapping[str, Any]]) -> list[Verdict]:
    """Rebuild verdicts from the dicts a version stores (:meth:`Verdict.to_dict`)."""
    fields = Verdict.__dataclass_fields__
    return [Verdict(**{k: v for k, v in d.items() if k in fields}) for d in raw]


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def evaluate(gates: list[Gate], metrics: Mapping[str, Any], *,
             champion_metrics: Mapping[str, Any] | None = None,
             champion_version: int | None = None,
             primary_metric: str | None = None,
             primary_direction: str | None = None) -> list[Verdict]:
    """Evaluate every gate on ``metrics``; a champion-relative gate passes without a champion."""
    verdicts: list[Verdict] = []
    for gate in gates:
        value = metrics.get(gate.metric)
        if not _is_number(value) or (isinstance(value, float) and math.isnan(value)):
            if gate.metric not in metrics:
                hint = did_you_mean(gate.metric, metrics)
                msg = f"{gate.metric} is not in the metrics" + (f" ({hint})" if hint else "")
            else:
                msg = f"{gate.metric} = {value!r} is not a number"
            verdicts.append(Verdict(gate.metric, gate.rule, None, gate.threshold, False, msg))
            continue
        value = float(value)
        if gate.rule == "min":
            ok = value >= gate.threshold
            msg = f"{gate.metric} {_fmt(value)} {'>=' if ok else '<'} min {_fmt(gate.threshold)}"
            verdicts.append(Verdict(gate.metric, gate.rule, value, gate.threshold, ok, msg))
        elif gate.rule == "max":
            ok = value <= gate.threshold
            msg = f"{gate.metric} {_fmt(value)} {'<=' if ok else '>'} max {_fmt(gate.threshold)}"
            verdicts.append(Verdict(gate.metric, gate.rule, value, gate.threshold, ok, msg))
        else:  # max_drop_vs_champion
            verdicts.append(_drop_verdict(gate, value, champion_metrics, champion_version,
                                          primary_metric, primary_direction))
    return verdicts


def _drop_verdict(gate: Gate, value: float, champion_metrics: Mapping[str, Any] | None,
                  champion_version: int | None, primary_metric: str | None,
                  primary_direction: str | None) -> Verdict:
    if champion_metrics is None:
        return Verdict(gate.metric, gate.rule, value, gate.threshold, True,
                       f"{gate.metric}: nothing to compare with (the first version)")
    champ = champion_metrics.get(gate.metric)
    if not _is_number(champ) or math.isnan(champ):
        return Verdict(gate.metric, gate.rule, value, gate.threshold, True,
                       f"{gate.metric}: champion v{champion_version} has no value to compare",
                       None, champion_version)
    direction = metric_direction(gate.metric, gate_direction=gate.direction,
                                 primary_metric=primary_metric, primary_direction=primary_direction)
    drop = champ - value if direction == "maximize" else value - champ
    # a tolerance of a few ulps so that "equal to the champion" never fails a 0 threshold
    ok = drop <= gate.threshold + 1e-12 * max(1.0, abs(champ))
    msg = (f"{gate.metric} {_fmt(value)} vs champion v{champion_version} {_fmt(champ)}: "
           f"drop {_fmt(max(drop, 0.0))} {'<=' if ok else '>'} max {_fmt(gate.threshold)}"
           f" ({direction})")
    return Verdict(gate.metric, gate.rule, value, gate.threshold, ok, msg, float(champ),
                   champion_version)

