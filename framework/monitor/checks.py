"""The monitor's checks: what production looks like against a version's reference, and whether
that is an alarm under the policy.

:func:`run` takes the observed window (:class:`Observed`: input rows, predictions, probabilities,
labels where they arrived, the groups logged alongside, the refused requests), the version's
reference :class:`~framework.monitor.profile.Profile`, its registered metrics and a
:class:`~framework.monitor.policy.Policy`, and returns a :class:`Report`: one
:class:`CheckResult` per check, each with its :class:`Finding` rows (column or metric, test,
statistic, threshold, verdict) and every number behind them.

Verdicts: ``ok``, ``drift`` / ``alarm`` (the check alarms), ``not enough data`` (fewer rows than
the policy's minimum: never an alarm), ``off`` (turned off, or nothing to check it with).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from framework.errors import ConfigError
from framework.monitor.policy import (AUTO_CATEGORICAL_THRESHOLD, AUTO_NUMERIC_THRESHOLD,
                                      CATEGORICAL_TESTS, DISTANCE_THRESHOLDS, NUMERIC_TESTS,
                                      P_VALUE_TESTS, ColumnTest, Policy)
from framework.monitor.profile import Profile, numeric_values, score_of
from framework.monitor.stats import (NumericSketch, benjamini_hochberg, compare_categorical,
                                     compare_numeric)

OK, DRIFT, ALARM, NOT_ENOUGH, OFF = "ok", "drift", "alarm", "not enough data", "off"
#: Bins of the distribution pictures of a numeric column.
PICTURE_BINS = 20


@dataclass
class Observed:
    """What production sent and got in the window."""

    features: Any                      # DataFrame: the input columns of the scored rows
    predictions: np.ndarray | None     # what predict returned, one per row
    proba: np.ndarray | None = None    # rows x classes
    labels: np.ndarray | None = None   # ground truth per row (object array), None: unlabelled
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # columns logged alongside
    requests: int = 0                  # requests answered (scored and refused)
    refused: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    start: str | None = None
    end: str | None = None
    source: str = "prediction log"

    @property
    def rows(self) -> int:
        return int(len(self.features))

    def labelled(self) -> np.ndarray:
        """The mask of rows whose label arrived."""
        if self.labels is None:
            return np.zeros(self.rows, dtype=bool)
        return np.array([v is not None and not (isinstance(v, float) and math.isnan(v))
                         for v in self.labels], dtype=bool)


@dataclass
class Finding:
    check: str
    subject: str                       # the column, metric or group column
    test: str
    statistic: float | None
    threshold: float | None
    status: str
    detail: str = ""
    p_value: float | None = None
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


@dataclass
class CheckResult:
    name: str
    status: str
    message: str
    findings: list[Finding] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def alarm(self) -> bool:
        return self.status in (ALARM, DRIFT)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "alarm": self.alarm,
                "message": self.message, "numbers": _json_safe(self.numbers),
                "findings": [f.to_dict() for f in self.findings]}


@dataclass
class Report:
    model: str
    version: int
    window: dict[str, Any]
    checks: list[CheckResult]

    @property
    def alarm(self) -> bool:
        return any(c.alarm for c in self.checks)

    @property
    def alarms(self) -> list[str]:
        return [c.name for c in self.checks if c.alarm]

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "alarm": self.alarm,
                "alarms": self.alarms, "window": _json_safe(self.window),
                "checks": [c.to_dict() for c in self.checks]}

    def summary(self) -> dict[str, Any]:
        """What the registry keeps of a run (``monitor history``): per check, its status, what
        alarmed and the headline numbers."""
        out: dict[str, Any] = {}
        for c in self.checks:
            entry: dict[str, Any] = {"status": c.status}
            entry.update({k: v for k, v in c.numbers.items() if not isinstance(v, (list, dict))
                          or k in ("drifted", "metrics", "estimates", "gaps")})
            out[c.name] = _json_safe(entry)
        return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (np.floating,)):
        return _json_safe(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    return value


def run(profile: Profile, policy: Policy, observed: Observed, *, model: str, version: int,
        registered: Mapping[str, Any], primary_metric: str | None,
        window: Mapping[str, Any], test_predictions: Any = None) -> Report:
    """Every check of ``policy`` on ``observed`` against ``profile`` (``test_predictions``: the
    version's per-row test predictions, which calibrate the label-free estimate)."""
    checks = [
        data_drift(profile, policy, observed),
        prediction_drift(profile, policy, observed),
        schema_violations(policy, observed),
        performance(profile, policy, observed, registered, primary_metric),
        estimated_performance(profile, policy, observed, registered, test_predictions),
        *fairness(profile, policy, observed),
    ]
    full_window = {**window, "rows": observed.rows, "requests": observed.requests,
                   "labelled": int(observed.labelled().sum()), "start": observed.start,
                   "end": observed.end, "source": observed.source}
    return Report(model, version, full_window, checks)


# -- drift ---------------------------------------------------------------------------------------

def _threshold(spec: ColumnTest, kind: str, alpha: float) -> float:
    if spec.threshold is not None:
        return spec.threshold
    if spec.test in P_VALUE_TESTS:
        return alpha
    if spec.test == "auto":
        return AUTO_NUMERIC_THRESHOLD if kind == "numeric" else AUTO_CATEGORICAL_THRESHOLD
    return DISTANCE_THRESHOLDS[spec.test]


def _picture(sketch: Any, comparison: Any) -> dict[str, Any]:
    """Reference and current shares on the same bins, for the HTML report."""
    if isinstance(sketch, NumericSketch):
        edges, ref_shares = sketch.histogram(PICTURE_BINS)
        if not edges.size or comparison is None:
            return {}
        k = max(int(comparison.values.size), 1)
        if sketch.exact and edges.size == ref_shares.size:  # one bar per distinct value
            cur = comparison.counts_of(edges) / k
            return {"kind": "bars", "labels": [f"{e:g}" for e in edges.tolist()],
                    "reference": ref_shares.tolist(), "current": cur.tolist()}
        values = comparison.values
        outside = (np.searchsorted(values, edges[0], side="left")
                   + values.size - np.searchsorted(values, edges[-1], side="right"))
        return {"kind": "histogram", "edges": edges.tolist(), "reference": ref_shares.tolist(),
                "current": (comparison.counts(edges) / k).tolist(),
                "outside": float(outside / k)}
    ref = sketch.shares()
    cur = comparison.shares if comparison is not None else {}
    keys = list(dict.fromkeys([*ref, *cur]))[:30]
    return {"kind": "bars", "labels": keys, "reference": [ref.get(k, 0.0) for k in keys],
            "current": [cur.get(k, 0.0) for k in keys]}


def _compare(name: str, sketch: Any, values: Any, spec: ColumnTest, alpha: float,
             key: str) -> tuple[str, float | None, float | None, float, dict[str, Any], Any]:
    """``(test shown, statistic, p-value or None, threshold, numbers, comparison)``."""
    kind = sketch.kind
    allowed = NUMERIC_TESTS if kind == "numeric" else CATEGORICAL_TESTS
    if spec.test not in allowed:
        raise ConfigError(f"{spec.test!r} cannot test {kind} column {name!r}; its tests: "
                          f"{', '.join(sorted(allowed))}", key=key)
    threshold = _threshold(spec, kind, alpha)
    if kind == "numeric":
        c = compare_numeric(sketch, values)
        distances = {"wasserstein": c.wasserstein, "psi": c.psi}
        numbers = {"ks": c.ks, "ks_p_value": c.ks_p, "wasserstein": c.wasserstein, "psi": c.psi,
                   "reference_mean": sketch.mean, "current_mean": c.mean,
                   "reference_std": sketch.std, "current_std": c.std, "rows": c.count,
                   "missing": c.missing, "reference_missing_share":
                   sketch.missing / max(sketch.count + sketch.missing, 1)}
        p_test, p = "ks", c.ks_p
        auto = "wasserstein"
    else:
        c = compare_categorical(sketch, values)
        distances = {"jensenshannon": c.jensenshannon, "psi": c.psi}
        numbers = {"chi2": c.chi2, "chi2_p_value": c.chi2_p, "dof": c.dof,
                   "jensenshannon": c.jensenshannon, "psi": c.psi, "rows": c.count,
                   "missing": c.missing, "new_values": c.new}
        p_test, p = "chi2", c.chi2_p
        auto = "jensenshannon"
    if spec.test == "auto":
        return f"{p_test} + {auto}", distances[auto], p, threshold, numbers, c
    if spec.test in P_VALUE_TESTS:
        return spec.test, p, p, threshold, numbers, c
    return spec.test, distances[spec.test], None, threshold, numbers, c


def data_drift(profile: Profile, policy: Policy, observed: Observed) -> CheckResult:
    cfg = policy.data_drift
    if not cfg.enabled:
        return CheckResult("data_drift", OFF, "turned off (monitor.data_drift: false)")
    n = observed.rows
    if n < policy.min_rows:
        return CheckResult("data_drift", NOT_ENOUGH, f"{n} rows, fewer than min_rows "
                                                     f"{policy.min_rows}", numbers={"rows": n})
    findings: list[Finding] = []
    tests: list[tuple[Finding, float | None, str]] = []  # finding, p-value, how it is decided
    for name, sketch in profile.columns.items():
        spec = cfg.test_for(name, sketch.kind)
        key = f"monitor.data_drift.columns.{name}.test" if name in cfg.columns else \
            f"monitor.data_drift.{sketch.kind}.test"
        if spec.test == "none":
            continue
        if name not in observed.features.columns:
            f = Finding("data_drift", name, "presence", None, None, DRIFT,
                        "absent from the current data")
            findings.append(f)
            tests.append((f, None, "absent"))
            continue
        series = observed.features[name]
        values = numeric_values(series) if sketch.kind == "numeric" else series
        shown, statistic, p, threshold, numbers, comparison = _compare(
            name, sketch, values, spec, cfg.alpha, key)
        numbers["picture"] = _picture(sketch, comparison)
        f = Finding("data_drift", name, shown, statistic, threshold, OK, p_value=p,
                    numbers={"kind": sketch.kind, **numbers})
        findings.append(f)
        mode = "auto" if spec.test == "auto" else ("p" if spec.test in P_VALUE_TESTS
                                                   else "distance")
        tests.append((f, p, mode))
    adjusted = benjamini_hochberg([p if p is not None and mode in ("auto", "p") else math.nan
                                   for _, p, mode in tests])
    for (f, _p, mode), q in zip(tests, adjusted):
        if mode == "absent":
            continue
        f.numbers["p_value_adjusted"] = None if math.isnan(q) else q
        if mode == "p":
            drifted = not math.isnan(q) and q < (f.threshold or cfg.alpha)
            f.statistic = q
        elif mode == "auto":
            drifted = (not math.isnan(q) and q < cfg.alpha and f.statistic is not None
                       and f.statistic >= (f.threshold or 0.0))
        else:
            drifted = f.statistic is not None and f.statistic >= (f.threshold or 0.0)
        f.status = DRIFT if drifted else OK
        f.detail = _drift_detail(f, q, cfg.alpha)
    checked = findings
    drifted = [f.subject for f in checked if f.status == DRIFT]
    share = len(drifted) / len(checked) if checked else 0.0
    alarm = bool(drifted) and share > cfg.share
    order = sorted(findings, key=lambda f: (f.status != DRIFT, -(f.statistic or 0.0)))
    rule = "any drifted column" if cfg.share == 0 else f"more than {cfg.share:.0%} of columns"
    message = (f"{len(drifted)} of {len(checked)} columns drifted"
               + (f": {', '.join(drifted[:8])}{' …' if len(drifted) > 8 else ''}"
                  if drifted else "") + f" (alarm on {rule})")
    return CheckResult("data_drift", ALARM if alarm else OK, message, order,
                       {"rows": n, "columns": len(checked), "drifted": drifted,
                        "share": share, "alpha": cfg.alpha})


def _drift_detail(f: Finding, q: float, alpha: float) -> str:
    n = f.numbers
    if n.get("kind") == "numeric":
        move = f"mean {n['reference_mean']:.4g} → {n['current_mean']:.4g}" \
            if n.get("reference_mean") is not None and n.get("current_mean") is not None \
            and math.isfinite(n["current_mean"]) else ""
    else:
        move = f"new values: {', '.join(map(str, n['new_values'][:3]))}" \
            if n.get("new_values") else ""
    p = f"p {q:.2g} (adjusted)" if not math.isnan(q) else ""
    return "; ".join(x for x in (p, move) if x)


def prediction_drift(profile: Profile, policy: Policy, observed: Observed) -> CheckResult:
    cfg = policy.prediction_drift
    pred = profile.prediction
    if not cfg.enabled:
        return CheckResult("prediction_drift", OFF, "turned off (monitor.prediction_drift: false)")
    if pred is None or observed.predictions is None:
        return CheckResult("prediction_drift", OFF, "the version has no test predictions to "
                                                    "compare with")
    n = observed.rows
    if n < policy.min_rows:
        return CheckResult("prediction_drift", NOT_ENOUGH,
                           f"{n} rows, fewer than min_rows {policy.min_rows}", numbers={"rows": n})
    findings = []
    pvalues = []
    if pred.score is not None:
        current = None
        if pred.task == "classification" and observed.proba is not None:
            current = score_of(observed.proba)
        elif pred.task == "regression":
            current = np.asarray(observed.predictions, dtype=np.float64)
        if current is not None:
            c = compare_numeric(pred.score, current)
            subject = "prediction" if pred.task == "regression" else (
                "P(" + str(pred.classes[1]) + ")" if pred.classes and len(pred.classes) == 2
                else "top probability")
            f = Finding("prediction_drift", subject, "ks + wasserstein", c.wasserstein,
                        cfg.threshold, OK, p_value=c.ks_p,
                        numbers={"kind": "numeric", "ks": c.ks, "ks_p_value": c.ks_p,
                                 "wasserstein": c.wasserstein,
                                 "reference_mean": pred.score.mean, "current_mean": c.mean,
                                 "picture": _picture(pred.score, c)})
            findings.append(f)
            pvalues.append(c.ks_p)
    if pred.labels is not None:
        labels = np.asarray(observed.predictions)
        cc = compare_categorical(pred.labels, labels)
        f = Finding("prediction_drift", "predicted class", "chi2 + jensenshannon",
                    cc.jensenshannon, AUTO_CATEGORICAL_THRESHOLD, OK, p_value=cc.chi2_p,
                    numbers={"kind": "categorical", "chi2": cc.chi2, "chi2_p_value": cc.chi2_p,
                             "jensenshannon": cc.jensenshannon, "shares": cc.shares,
                             "reference_shares": pred.labels.shares(),
                             "picture": _picture(pred.labels, cc)})
        findings.append(f)
        pvalues.append(cc.chi2_p)
    adjusted = benjamini_hochberg(pvalues)
    for f, q in zip(findings, adjusted):
        f.numbers["p_value_adjusted"] = None if math.isnan(q) else q
        drifted = (not math.isnan(q) and q < cfg.alpha and f.statistic is not None and
                   f.statistic >= (f.threshold or 0.0))
        f.status = DRIFT if drifted else OK
        f.detail = f"p {q:.2g} (adjusted)" if not math.isnan(q) else ""
    drifted = [f.subject for f in findings if f.status == DRIFT]
    message = ("the predictions' distribution moved: " + ", ".join(drifted)) if drifted else \
        "the predictions look like those on the test set"
    return CheckResult("prediction_drift", ALARM if drifted else OK, message, findings,
                       {"rows": n, "drifted": drifted})


# -- schema ----------------------------------------------------------------------------------

def schema_violations(policy: Policy, observed: Observed) -> CheckResult:
    cfg = policy.schema
    if not cfg.enabled:
        return CheckResult("schema", OFF, "turned off (monitor.schema: false)")
    requests = observed.requests
    if requests < policy.min_rows:
        return CheckResult("schema", NOT_ENOUGH, f"{requests} requests, fewer than min_rows "
                                                 f"{policy.min_rows}",
                           numbers={"requests": requests})
    by_column: dict[str, int] = {}
    refused_schema = 0
    other = 0
    for code, columns in observed.refused:
        if columns:
            refused_schema += 1
            for c in columns:
                by_column[c] = by_column.get(c, 0) + 1
        else:
            other += 1
    share = refused_schema / requests
    findings = [Finding("schema", column, "refused", count / requests, cfg.max_share,
                        ALARM if count / requests > cfg.max_share else OK,
                        f"{count} of {requests} requests")
                for column, count in sorted(by_column.items(), key=lambda kv: -kv[1])]
    alarm = share > cfg.max_share
    unit = "rows" if observed.source != "prediction log" else "requests"
    message = (f"{refused_schema} of {requests} {unit} ({share:.1%}) broke the input schema "
               f"(alarm above {cfg.max_share:.1%})")
    if other:
        message += f"; {other} more refused for other reasons (malformed bodies)"
    return CheckResult("schema", ALARM if alarm else OK, message, findings,
                       {"requests": requests, "refused": refused_schema, "share": share,
                        "malformed": other, "by_column": by_column})


# -- performance -----------------------------------------------------------------------------

def _direction(metric: str) -> str:
    from framework.registry.gates import metric_direction

    return metric_direction(metric)


def performance(profile: Profile, policy: Policy, observed: Observed,
                registered: Mapping[str, Any], primary_metric: str | None) -> CheckResult:
    cfg = policy.performance
    if not cfg.enabled:
        return CheckResult("performance", OFF, "turned off (monitor.performance: false)")
    tolerance = dict(cfg.tolerance)
    if not tolerance and primary_metric:
        tolerance = {primary_metric: 0.02}
    if not tolerance:
        return CheckResult("performance", OFF, "no metric to watch: set "
                                               "monitor.performance.tolerance")
    mask = observed.labelled()
    n = int(mask.sum())
    if n < cfg.min_rows:
        return CheckResult("performance", NOT_ENOUGH,
                           f"{n} labelled rows, fewer than min_rows {cfg.min_rows} "
                           "(label them with `monitor label FILE`)", numbers={"labelled": n})
    pred = profile.prediction
    classes = pred.classes if pred is not None else None
    y_true = _typed_labels(observed.labels[mask], classes)
    y_pred = np.asarray(observed.predictions)[mask]
    proba = observed.proba[mask] if observed.proba is not None else None
    findings = []
    values: dict[str, Any] = {}
    for metric, tol in tolerance.items():
        value = compute_metric_safe(metric, y_true, y_pred, proba, classes)
        reference = registered.get(metric)
        values[metric] = value
        if value is None or not isinstance(reference, (int, float)):
            findings.append(Finding("performance", metric, "realized", value, None, OFF,
                                    "cannot compare" if value is not None else
                                    "cannot be computed from what was logged"))
            continue
        direction = _direction(metric)
        drop = (reference - value) if direction == "maximize" else (value - reference)
        status = ALARM if drop > tol else OK
        findings.append(Finding("performance", metric, "realized", value,
                                reference - tol if direction == "maximize" else reference + tol,
                                status, f"registered {reference:.4g}, "
                                        f"{'drop' if direction == 'maximize' else 'rise'} "
                                        f"{drop:+.4g} (tolerance {tol:g})",
                                numbers={"registered": reference, "drop": drop,
                                         "tolerance": tol, "direction": direction}))
    alarms = [f.subject for f in findings if f.status == ALARM]
    message = (f"on {n} labelled rows: " + ", ".join(
        f"{f.subject} {f.statistic:.4g}" for f in findings if f.statistic is not None)
        + (f"; below tolerance: {', '.join(alarms)}" if alarms else ""))
    return CheckResult("performance", ALARM if alarms else OK, message, findings,
                       {"labelled": n, "metrics": values})


def compute_metric_safe(metric: str, y_true: Any, y_pred: Any, proba: Any,
                        classes: Any) -> float | None:
    from framework.monitor.performance import compute_metric

    try:
        return compute_metric(metric, y_true, y_pred, proba, classes)
    except (ValueError, TypeError):
        return None


def _typed_labels(labels: np.ndarray, classes: list[Any] | None) -> np.ndarray:
    """Labels as the model's classes are typed (labels arrive as JSON values)."""
    values = list(labels)
    if classes:
        kind = np.asarray(classes).dtype.kind
        try:
            if kind in "iu":
                return np.array([int(v) for v in values])
            if kind == "f":
                return np.array([float(v) for v in values])
            if kind == "b":
                return np.array([bool(v) for v in values])
        except (TypeError, ValueError):
            pass
        return np.array([str(v) for v in values], dtype=object) if kind in "OUS" else \
            np.array(values, dtype=object)
    try:
        return np.array([float(v) for v in values])
    except (TypeError, ValueError):
        return np.array(values, dtype=object)


def estimated_performance(profile: Profile, policy: Policy, observed: Observed,
                          registered: Mapping[str, Any], test_predictions: Any = None
                          ) -> CheckResult:
    cfg = policy.estimated_performance
    name = "estimated_performance"
    if not cfg.enabled:
        return CheckResult(name, OFF, "turned off (monitor.estimated_performance: false)")
    pred = profile.prediction
    if pred is None or not pred.has_proba or not pred.classes:
        return CheckResult(name, OFF, "needs a classifier with probabilities")
    n = observed.rows
    if n < cfg.min_rows:
        return CheckResult(name, NOT_ENOUGH, f"{n} rows, fewer than min_rows {cfg.min_rows}",
                           numbers={"rows": n})
    if observed.proba is None:
        return CheckResult(name, OFF, "the window has no probabilities (logged by a server "
                                      "that could not compute them)")
    from framework.monitor.performance import estimate, fit_calibration

    calibration = None
    on_test: dict[str, Any] = {}  # the same estimate on the version's own test predictions
    tp = test_predictions
    columns = [f"proba_{j}" for j in range(len(pred.classes))]
    if tp is not None and all(c in tp.columns for c in columns):
        test_proba = tp[columns].to_numpy(dtype=np.float64)
        if "y_true" in tp.columns:
            calibration = fit_calibration(test_proba,
                                          _typed_labels(tp["y_true"].to_numpy(dtype=object),
                                                        pred.classes), pred.classes)
        if "y_pred" in tp.columns:
            on_test = estimate(test_proba, _typed_labels(tp["y_pred"].to_numpy(dtype=object),
                                                         pred.classes),
                               pred.classes, list(cfg.tolerance), calibration)
    estimates = estimate(observed.proba, np.asarray(observed.predictions), pred.classes,
                         list(cfg.tolerance), calibration)
    mask = observed.labelled()
    findings = []
    for metric, tol in cfg.tolerance.items():
        e = estimates.get(metric)
        registered_value = registered.get(metric)
        # The baseline is the estimate on the test set, as NannyML's reference period is: a
        # model whose probabilities could not be calibrated (too few test rows) is off by the
        # same bias on both, so only a change alarms; without test predictions, the registered
        # value is the baseline.
        reference = on_test[metric].value if metric in on_test else registered_value
        if e is None or not isinstance(reference, (int, float)):
            findings.append(Finding(name, metric, "cbpe", None, None, OFF,
                                    "not estimable for this model" if e is None else
                                    "no registered value to compare with"))
            continue
        drop = reference - e.value
        status = ALARM if drop > tol else OK
        realized = None
        if mask.sum() >= policy.performance.min_rows:
            realized = compute_metric_safe(metric, _typed_labels(observed.labels[mask],
                                                                 pred.classes),
                                           np.asarray(observed.predictions)[mask],
                                           observed.proba[mask], pred.classes)
        baseline = (f"estimated {reference:.4g} on the test set" if metric in on_test
                    else f"registered {reference:.4g}")
        findings.append(Finding(
            name, metric, "cbpe", e.value, reference - tol, status,
            f"95% interval {e.low:.3f}–{e.high:.3f}; {baseline}"
            + (f"; realized {realized:.4g} on labelled rows" if realized is not None else ""),
            numbers={"low": e.low, "high": e.high, "baseline": reference,
                     "baseline_from": "test set estimate" if metric in on_test else
                     "registered", "registered": registered_value, "drop": drop,
                     "tolerance": tol, "realized": realized}))
    ece = pred.calibration_error
    alarms = [f.subject for f in findings if f.status == ALARM]
    message = "without labels: " + ", ".join(
        f"{f.subject} ≈ {f.statistic:.3f}" for f in findings if f.statistic is not None)
    if calibration is not None:
        message += f" (probabilities calibrated on the version's {calibration.rows} test rows)"
    elif ece is not None and ece > 0.05:
        message += (f"; the model's probabilities are not well calibrated (expected "
                    f"calibration error {ece:.3f} on its test set, too few rows to calibrate "
                    "them), so the estimate may be off")
    return CheckResult(name, ALARM if alarms else OK, message, findings,
                       {"rows": n, "calibration_error": ece,
                        "calibrated_on": calibration.rows if calibration else None,
                        "estimates": {k: {"value": e.value, "low": e.low, "high": e.high}
                                      for k, e in estimates.items()}})


# -- fairness ----------------------------------------------------------------------------------

def fairness(profile: Profile, policy: Policy, observed: Observed) -> list[CheckResult]:
    out = []
    pred = profile.prediction
    classes = pred.classes if pred is not None else None
    for rule in policy.fairness:
        label = f"fairness[{rule.group_by}]"
        groups = observed.groups.get(rule.group_by)
        if observed.rows < rule.min_group_size * 2:
            out.append(CheckResult(label, NOT_ENOUGH, f"{observed.rows} rows, fewer than two "
                                                      f"groups of min_group_size "
                                                      f"{rule.min_group_size}"))
            continue
        if groups is None:
            out.append(CheckResult(label, OFF, f"no column {rule.group_by!r} in the window "
                                               "(send it with the requests; the server logs "
                                               "the fairness columns of monitor: itself)"))
            continue
        if not classes or observed.predictions is None:
            out.append(CheckResult(label, OFF, "fairness metrics need a classifier"))
            continue
        positive = rule.positive if rule.positive is not None else classes[-1]
        predicted = np.asarray(observed.predictions)
        needs_labels = rule.metric != "selection_rate"
        mask = observed.labelled() if needs_labels else np.ones(observed.rows, dtype=bool)
        keys = np.array([None if g is None else str(g) for g in groups], dtype=object)
        present = mask & np.array([k is not None for k in keys], dtype=bool)
        y_true = _typed_labels(observed.labels[present], classes) if needs_labels else None
        sub_keys, sub_pred = keys[present], predicted[present]
        values: dict[str, float] = {}
        sizes: dict[str, int] = {}
        small: dict[str, int] = {}
        for g in sorted(set(sub_keys.tolist())):
            sel = sub_keys == g
            size = int(sel.sum())
            if size < rule.min_group_size:
                small[g] = size
                continue
            sizes[g] = size
            values[g] = _group_metric(rule.metric, sub_pred[sel],
                                      None if y_true is None else y_true[sel], positive)
        values = {g: v for g, v in values.items() if not math.isnan(v)}
        if len(values) < 2:
            out.append(CheckResult(label, NOT_ENOUGH,
                                   f"fewer than two groups of {rule.group_by!r} with at least "
                                   f"{rule.min_group_size} {'labelled ' if needs_labels else ''}"
                                   f"rows (sizes: {sizes | small or 'none'})",
                                   numbers={"sizes": sizes | small}))
            continue
        hi = max(values, key=values.get)  # type: ignore[arg-type]
        lo = min(values, key=values.get)  # type: ignore[arg-type]
        gap = values[hi] - values[lo]
        findings = [Finding(label, f"{rule.group_by}={g}", rule.metric, v, None, OK,
                            f"{sizes[g]} rows") for g, v in sorted(values.items())]
        alarm = gap > rule.max_gap
        message = (f"{rule.metric} by {rule.group_by}: {hi} {values[hi]:.3f}, {lo} "
                   f"{values[lo]:.3f}; gap {gap:.3f} (alarm above {rule.max_gap:g})"
                   + (f"; groups below {rule.min_group_size} rows left out: "
                      f"{', '.join(small)}" if small else ""))
        out.append(CheckResult(label, ALARM if alarm else OK, message, findings,
                               {"metric": rule.metric, "gap": gap, "max_gap": rule.max_gap,
                                "groups": values, "sizes": sizes, "gaps": {"max": hi,
                                                                           "min": lo}}))
    return out


def _group_metric(metric: str, predicted: np.ndarray, y_true: np.ndarray | None,
                  positive: Any) -> float:
    pos_pred = np.array([str(p) == str(positive) for p in predicted])
    if metric == "selection_rate":
        return float(pos_pred.mean()) if len(pos_pred) else math.nan
    assert y_true is not None
    pos_true = np.array([str(t) == str(positive) for t in y_true])
    if metric == "accuracy":
        return float(np.mean(np.array([str(a) == str(b) for a, b in zip(predicted, y_true)])))
    if metric == "tpr":
        return float(pos_pred[pos_true].mean()) if pos_true.any() else math.nan
    if metric == "fpr":
        return float(pos_pred[~pos_true].mean()) if (~pos_true).any() else math.nan
    if metric == "precision":
        return float(pos_true[pos_pred].mean()) if pos_pred.any() else math.nan
    raise ValueError(metric)

