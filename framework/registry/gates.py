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

Fairness: a gate with ``by: <column>`` judges the metric per group of that column, from the
per-group metrics the evaluating stage writes (``recall@clinic=A`` and the group's row count
``rows@clinic=A``, see :func:`group_key`)::

      - {metric: recall, by: clinic, max_gap: 0.05, min_group_size: 30}
      - {metric: accuracy, by: clinic, min: 0.9}

``max_gap``               the largest value minus the smallest, over the groups, <= threshold
``min`` / ``max``         every group's value >= / <= threshold

Groups with fewer than ``min_group_size`` rows (default 30) are left out and named in the
message: their metric is noise. A gate that has too few groups left to judge (none, or one for
``max_gap``) fails: a gate passes on evidence, never on its absence.

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

RULES: tuple[str, ...] = ("min", "max", "max_drop_vs_champion", "max_gap")
CHAMPION_RULES: frozenset[str] = frozenset({"max_drop_vs_champion"})
#: The rules a per-group (``by:``) gate can have, and those only a per-group gate can have.
GROUP_RULES: tuple[str, ...] = ("min", "max", "max_gap")
DIRECTIONS: tuple[str, ...] = ("maximize", "minimize")
_ENTRY_KEYS: tuple[str, ...] = ("metric", "direction", "by", "min_group_size", *RULES)
#: The default ``min_group_size`` of a per-group gate.
MIN_GROUP_SIZE = 30
#: The per-group row count the evaluating stage writes beside the per-group metrics.
ROWS = "rows"


def group_key(metric: str, by: str, group: Any) -> str:
    """The flat metrics key of ``metric`` on the rows whose ``by`` column is ``group``:
    ``recall@clinic=A``; the group's row count is ``group_key("rows", by, group)``."""
    return f"{metric}@{by}={group}"


def split_group_key(key: str) -> tuple[str, str, str] | None:
    """``(metric, column, group)`` of a :func:`group_key` key, None for an overall metric."""
    metric, at, rest = key.partition("@")
    column, eq, group = rest.partition("=")
    return (metric, column, group) if at and eq else None


def group_values(metrics: Mapping[str, Any], metric: str, by: str) -> dict[str, Any]:
    """``{group: value}`` of ``metric`` per group of ``by``, from flat :func:`group_key` keys."""
    prefix = f"{metric}@{by}="
    return {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}
_MINIMIZE_TOKENS = ("mse", "rmse", "mae", "mape")


@dataclass(frozen=True)
class Gate:
    """One rule on one metric. ``direction`` is None unless the config said it."""

    metric: str
    rule: str
    threshold: float
    direction: str | None = None
    by: str | None = None
    min_group_size: int | None = None

    def describe(self) -> str:
        op = {"min": ">=", "max": "<="}.get(self.rule)
        if self.by is not None:
            if op:
                return f"{self.metric} {op} {self.threshold:g} in every group of {self.by}"
            return f"{self.metric} gap between groups of {self.by} <= {self.threshold:g}"
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
    #: a per-group gate's column, and ``{group: {"value", "rows"}}`` of every group it saw
    by: str | None = None
    groups: dict[str, dict[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.by is None:  # the records of plain gates keep the shape they always had
            del d["by"], d["groups"]
        return d


def gate_label(gate: Mapping[str, Any]) -> str:
    """How a stored gate or verdict is named in tables: ``recall max_gap by clinic``."""
    label = f"{gate.get('metric')} {gate.get('rule')}"
    return f"{label} by {gate['by']}" if gate.get("by") else label


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
                key: str = "gates", columns: set[str] | None = None) -> list[Gate]:
    """Check the ``gates`` list of a config and return one :class:`Gate` per rule.

    ``known_metrics``, when given, is the set of metric names the pipeline produces; a gate on any
    other name is refused with a did-you-mean hint. ``columns``, when given, are the columns of the
    evaluated table: a per-group gate's ``by`` must be one of them. Raises :class:`ConfigError`
    naming ``file`` and the key path (``gates[2].metric``) of the first mistake.
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
        by, min_group_size = _group_keys(entry, where, file, columns)
        rules = [r for r in RULES if r in entry]
        allowed = GROUP_RULES if by is not None else tuple(r for r in RULES if r != "max_gap")
        if not rules:
            raise ConfigError(f"gate on {metric!r} has no rule; add one of {', '.join(allowed)}",
                              file=file, key=where)
        for rule in rules:
            if rule not in allowed:
                why = ("compares groups: add by: <column>" if rule == "max_gap" else
                       "compares with the champion, not groups")
                raise ConfigError(f"{rule} {why}; a {'per-group ' if by else ''}gate has "
                                  f"{', '.join(allowed)}", file=file, key=f"{where}.{rule}")
            threshold = entry[rule]
            if not _is_number(threshold) or not math.isfinite(threshold):
                raise ConfigError(f"threshold must be a finite number, found {threshold!r}",
                                  file=file, key=f"{where}.{rule}")
            if (rule in CHAMPION_RULES or rule == "max_gap") and threshold < 0:
                raise ConfigError(f"{rule} must be >= 0, found {threshold!r}", file=file,
                                  key=f"{where}.{rule}")
            gates.append(Gate(metric, rule, float(threshold), direction, by, min_group_size))
    return gates


def _group_keys(entry: Mapping[str, Any], where: str, file: str,
                columns: set[str] | None) -> tuple[str | None, int | None]:
    """``by`` and ``min_group_size`` of a gate entry, checked."""
    by = entry.get("by")
    if by is None:
        if "min_group_size" in entry:
            raise ConfigError("min_group_size applies to a per-group gate only: add by: <column>",
                              file=file, key=f"{where}.min_group_size")
        return None, None
    if not isinstance(by, str) or not by:
        raise ConfigError(f"expected a column name (a string), found {by!r}", file=file,
                          key=f"{where}.by")
    if "@" in by or "=" in by:
        raise ConfigError(f"a grouping column's name cannot hold '@' or '=' (they separate the "
                          f"per-group metric keys), found {by!r}", file=file, key=f"{where}.by")
    if columns is not None and by not in columns:
        raise ConfigError(f"no column {by!r} in the evaluated table; its columns: "
                          f"{', '.join(sorted(columns)) or 'none'}", file=file,
                          key=f"{where}.by", hint=did_you_mean(by, columns))
    size = entry.get("min_group_size", MIN_GROUP_SIZE)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError(f"min_group_size must be a whole number >= 1, found {size!r}",
                          file=file, key=f"{where}.min_group_size")
    return by, size


def gates_from_dicts(raw: list[Mapping[str, Any]]) -> list[Gate]:
    """Rebuild gates from the flat ``{metric, rule, threshold, direction}`` records we store."""
    return [Gate(d["metric"], d["rule"], float(d["threshold"]), d.get("direction"), d.get("by"),
                 d.get("min_group_size")) for d in raw]


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
        if gate.by is not None:
            verdicts.append(_group_verdict(gate, metrics))
            continue
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



def _group_verdict(gate: Gate, metrics: Mapping[str, Any]) -> Verdict:
    """A per-group gate: every group with enough rows, judged on ``gate.metric``."""
    assert gate.by is not None
    by, size = gate.by, gate.min_group_size or MIN_GROUP_SIZE
    values = group_values(metrics, gate.metric, by)
    rows = group_values(metrics, ROWS, by)
    what = f"{gate.metric} by {by}"

    def fail(message: str, groups: dict[str, dict[str, float]] | None = None) -> Verdict:
        return Verdict(gate.metric, gate.rule, None, gate.threshold, False, message,
                       by=by, groups=groups)

    if not values:
        example = group_key(gate.metric, by, "<group>")
        return fail(f"{what}: the metrics hold no per-group values ({example}); the evaluating "
                    f"stage must score each group of {by}")
    groups: dict[str, dict[str, float]] = {}
    for group in sorted(values):
        value, n = values[group], rows.get(group)
        if not _is_number(value) or not _is_number(n):
            return fail(f"{what}: group {group}: {group_key(gate.metric, by, group)} = {value!r}, "
                        f"{group_key(ROWS, by, group)} = {n!r}; both must be numbers")
        groups[group] = {"value": float(value), "rows": float(n)}
    judged = {g: d for g, d in groups.items() if d["rows"] >= size and not math.isnan(d["value"])}
    small = [f"{g} ({int(d['rows'])} rows)" for g, d in groups.items() if g not in judged]
    left_out = f"; left out, fewer than {size} rows: {', '.join(small)}" if small else ""
    shown = ", ".join(f"{g} {_fmt(d['value'])}" for g, d in judged.items())
    need = 2 if gate.rule == "max_gap" else 1
    if len(judged) < need:
        return fail(f"{what}: {len(judged)} group(s) with at least {size} rows, {need} needed to "
                    f"judge{left_out}", groups)
    if gate.rule == "max_gap":
        best = max(judged, key=lambda g: judged[g]["value"])
        worst = min(judged, key=lambda g: judged[g]["value"])
        gap = judged[best]["value"] - judged[worst]["value"]
        ok = gap <= gate.threshold + 1e-12
        msg = (f"{what}: {shown}; gap {_fmt(gap)} ({best} - {worst}) "
               f"{'<=' if ok else '>'} max_gap {_fmt(gate.threshold)}{left_out}")
        return Verdict(gate.metric, gate.rule, gap, gate.threshold, ok, msg, by=by,
                       groups=groups)
    if gate.rule == "min":
        bad = [g for g, d in judged.items() if d["value"] < gate.threshold]
        edge = min(judged.values(), key=lambda d: d["value"])["value"]
    else:
        bad = [g for g, d in judged.items() if d["value"] > gate.threshold]
        edge = max(judged.values(), key=lambda d: d["value"])["value"]
    ok = not bad
    verdict = (f"every group {'>=' if gate.rule == 'min' else '<='} {gate.rule} "
               f"{_fmt(gate.threshold)}" if ok else
               f"{', '.join(bad)} {'below' if gate.rule == 'min' else 'above'} {gate.rule} "
               f"{_fmt(gate.threshold)}")
    return Verdict(gate.metric, gate.rule, edge, gate.threshold, ok,
                   f"{what}: {shown}; {verdict}{left_out}", by=by, groups=groups)
