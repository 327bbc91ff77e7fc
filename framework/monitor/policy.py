"""The ``monitor:`` block of a config: what to check, how strictly, and when to retrain.

Checked at compile time like ``gates:`` (every mistake is a ConfigError naming the file and the
key, with a did-you-mean), and read again from ``params.yaml`` by ``monitor``. Every key has a
default, so a project without a ``monitor:`` block is monitored with the defaults below::

    monitor:
      window: {last: 10000}          # the latest rows, or {since: 24h}; --last / --since
      min_rows: 100                  # below it a check says "not enough data", never an alarm
      data_drift:                    # false turns a check off
        alpha: 0.05                  # p-value tests, Benjamini-Hochberg corrected over columns
        share: 0.0                   # alarm when more than this share of columns drift (0: one)
        numeric: {test: auto, threshold: 0.1}
        categorical: {test: auto, threshold: 0.05}
        columns: {}                  # per column: {test: psi, threshold: 0.2}, {test: none}
      prediction_drift: {alpha: 0.05, threshold: 0.1}
      schema: {max_share: 0.01}      # share of requests refused for breaking the input schema
      performance:                   # realized, on labelled rows, against the registered value
        min_rows: 50
        tolerance: {}                # {accuracy: 0.02}; default: the primary metric, 0.02
      estimated_performance:         # without labels (confidence-based), classifiers with
        min_rows: 100                # probabilities
        tolerance: {accuracy: 0.02}
      fairness: []                   # [{group_by: sex, metric: selection_rate, max_gap: 0.1,
                                     #   min_group_size: 30}]
      log_columns: []                # request columns the server logs beside the model inputs
      retrain:
        when: [data_drift, performance]   # `on:` works too (YAML reads it as true: accepted)
        input: split.feedback        # the pipeline input the labelled production rows go to
        min_rows: 100

Tests (``test:``): ``auto`` (numeric: Kolmogorov-Smirnov p-value *and* normalised Wasserstein
distance at least ``threshold``; categorical: chi-squared p-value *and* Jensen-Shannon distance at
least ``threshold``), ``ks`` and ``chi2`` (p-value below ``threshold``, default ``alpha``),
``wasserstein``, ``psi`` and ``jensenshannon`` (distance at least ``threshold``, default 0.1 as in
Evidently), ``none`` (not checked).

This module imports only the standard library: the compiler calls :func:`parse` at compile time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from framework.errors import ConfigError, did_you_mean

TESTS = ("auto", "ks", "chi2", "wasserstein", "psi", "jensenshannon", "none")
P_VALUE_TESTS = frozenset({"ks", "chi2"})
NUMERIC_TESTS = frozenset({"auto", "ks", "wasserstein", "psi", "none"})
CATEGORICAL_TESTS = frozenset({"auto", "chi2", "jensenshannon", "psi", "none"})
#: Thresholds of the distance tests used alone (Evidently's defaults).
DISTANCE_THRESHOLDS = {"wasserstein": 0.1, "psi": 0.1, "jensenshannon": 0.1}
#: The distance an ``auto`` test also needs: a tenth of a standard deviation for a number; for a
#: category, about a share moving from 10% to 15%.
AUTO_NUMERIC_THRESHOLD = 0.1
AUTO_CATEGORICAL_THRESHOLD = 0.05

#: scikit-learn's scorer names: ``f1_macro`` is F1 averaged over the classes, and so on
AVERAGED_METRICS = tuple(f"{m}_{a}" for m in ("precision", "recall", "f1")
                         for a in ("macro", "micro", "weighted"))
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1",
                          *AVERAGED_METRICS, "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mse", "mae", "r2")
PERFORMANCE_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1")
FAIRNESS_METRICS = ("selection_rate", "accuracy", "tpr", "fpr", "precision")
LABEL_FREE_FAIRNESS = frozenset({"selection_rate"})
CHECKS = ("data_drift", "prediction_drift", "schema", "performance", "estimated_performance",
          "fairness")
TOP_KEYS = ("window", "min_rows", *CHECKS, "log_columns", "retrain", "ab")
#: What ``monitor compare`` tests per labelled row: a classifier's correctness, a regressor's
#: absolute or squared error.
AB_METRICS = ("accuracy", "mae", "mse")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class ColumnTest:
    test: str = "auto"
    threshold: float | None = None  # None: the test's default


@dataclass(frozen=True)
class DataDrift:
    enabled: bool = True
    alpha: float = 0.05
    share: float = 0.0
    numeric: ColumnTest = ColumnTest("auto", AUTO_NUMERIC_THRESHOLD)
    categorical: ColumnTest = ColumnTest("auto", AUTO_CATEGORICAL_THRESHOLD)
    columns: dict[str, ColumnTest] = field(default_factory=dict)

    def test_for(self, column: str, kind: str) -> ColumnTest:
        return self.columns.get(column) or (self.numeric if kind == "numeric"
                                            else self.categorical)


@dataclass(frozen=True)
class PredictionDrift:
    enabled: bool = True
    alpha: float = 0.05
    threshold: float = AUTO_NUMERIC_THRESHOLD


@dataclass(frozen=True)
class SchemaCheck:
    enabled: bool = True
    max_share: float = 0.01


@dataclass(frozen=True)
class Performance:
    enabled: bool = True
    min_rows: int = 50
    tolerance: dict[str, float] = field(default_factory=dict)  # empty: the primary metric


@dataclass(frozen=True)
class Estimated:
    enabled: bool = True
    min_rows: int = 100
    tolerance: dict[str, float] = field(default_factory=lambda: {"accuracy": 0.02})


@dataclass(frozen=True)
class Fairness:
    group_by: str
    metric: str = "selection_rate"
    max_gap: float = 0.1
    min_group_size: int = 30
    positive: Any = None  # the positive class (default: the model's last class)


@dataclass(frozen=True)
class AB:
    """``monitor.ab``: how ``serve --split`` assigns requests and ``monitor compare`` judges
    the challenger against the champion on their realized labels."""

    key: str | None = None           # the header requests are assigned by (X-Request-ID)
    champion: str = "champion"
    challenger: str = "challenger"
    metric: str | None = None        # accuracy (classifiers) or mae/mse (regressors)
    confidence: float = 0.95
    min_labels: int = 100            # labelled rows each arm needs before a verdict
    tau: float = 0.05                # the mixture's scale: the size of difference expected
    promote: bool = False            # move the champion alias when the challenger wins


@dataclass(frozen=True)
class Window:
    last: int | None = 10_000
    since: float | None = None  # seconds before now

    def describe(self) -> str:
        if self.since is not None:
            return f"since {format_duration(self.since)} ago" + (
                f", the latest {self.last} rows" if self.last else "")
        return f"the latest {self.last} rows" if self.last else "every logged row"


@dataclass(frozen=True)
class Retrain:
    when: tuple[str, ...] = ("data_drift", "performance")  # the checks whose alarm retrains
    input: str = "split.feedback"
    min_rows: int = 100


@dataclass(frozen=True)
class Policy:
    window: Window = Window()
    min_rows: int = 100
    data_drift: DataDrift = DataDrift()
    prediction_drift: PredictionDrift = PredictionDrift()
    schema: SchemaCheck = SchemaCheck()
    performance: Performance = Performance()
    estimated_performance: Estimated = Estimated()
    fairness: tuple[Fairness, ...] = ()
    log_columns: tuple[str, ...] = ()
    retrain: Retrain = Retrain()
    ab: AB = AB()

    def logged_columns(self) -> tuple[str, ...]:
        """The request columns the server logs beside the model inputs: ``log_columns`` and
        the fairness groups."""
        return tuple(dict.fromkeys([*self.log_columns, *(f.group_by for f in self.fairness)]))

    def with_window(self, *, last: int | None = None, since: float | None = None) -> Policy:
        if last is None and since is None:
            return self
        return replace(self, window=Window(last=last, since=since))


def parse_duration(text: Any, *, file: str = "", key: str = "") -> float:
    """``30s``, ``15m``, ``24h``, ``7d``, ``2w`` as seconds."""
    m = _DURATION.match(str(text))
    if not m or float(m[1]) <= 0:
        raise ConfigError(f"expected a duration such as 30m, 24h or 7d, found {text!r}",
                          file=file or None, key=key or None)
    return float(m[1]) * _UNIT_SECONDS[m[2]]


def format_duration(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# -- parsing -------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, key: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, key=key, hint=hint)

    def mapping(self, raw: Any, key: str, allowed: Iterable[str]) -> Mapping[str, Any]:
        if not isinstance(raw, Mapping):
            raise self.error(key, f"expected a mapping, found {type(raw).__name__} {raw!r}")
        allowed = tuple(allowed)
        for k in raw:
            if k not in allowed:
                raise self.error(f"{key}.{k}", f"unknown key {k!r}; known: {', '.join(allowed)}",
                                 hint=did_you_mean(str(k), allowed))
        return raw

    def number(self, raw: Any, key: str, *, lo: float, hi: float | None = None,
               lo_open: bool = False) -> float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw != raw:
            raise self.error(key, f"expected a number, found {raw!r}")
        if raw < lo or (lo_open and raw == lo) or (hi is not None and raw > hi):
            bounds = f"{'above' if lo_open else 'at least'} {lo:g}" + (
                f" and at most {hi:g}" if hi is not None else "")
            raise self.error(key, f"expected a number {bounds}, found {raw!r}")
        return float(raw)

    def integer(self, raw: Any, key: str, *, lo: int = 1) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < lo:
            raise self.error(key, f"expected an integer of at least {lo}, found {raw!r}")
        return int(raw)

    def names(self, raw: Any, key: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
            raise self.error(key, f"expected a list of column names, found {raw!r}")
        return tuple(raw)

    def enabled(self, raw: Any) -> bool:
        return raw is not False and raw is not None


def parse(raw: Any, *, file: str = "params.yaml", key: str = "monitor",
          columns: Iterable[str] | None = None, metrics: Iterable[str] | None = None) -> Policy:
    """The :class:`Policy` a ``monitor:`` block declares (None or absent: the defaults).

    ``columns`` (the model's input columns) and ``metrics`` (what the pipeline's evaluation
    produces) are checked against when given."""
    r = _Reader(file)
    if raw is None:
        return Policy()
    block = r.mapping(raw, key, TOP_KEYS)
    known_columns = None if columns is None else list(columns)
    known_metrics = None if metrics is None else set(metrics)
    policy = Policy()

    window = policy.window
    if block.get("window") is not None:
        wkey = f"{key}.window"
        w = r.mapping(block["window"], wkey, ("last", "since"))
        last = r.integer(w["last"], f"{wkey}.last") if w.get("last") is not None else None
        since = parse_duration(w["since"], file=file, key=f"{wkey}.since") \
            if w.get("since") is not None else None
        if last is None and since is None:
            raise r.error(wkey, "expected 'last' (rows) or 'since' (a duration such as 24h)")
        window = Window(last=last, since=since)
    min_rows = r.integer(block["min_rows"], f"{key}.min_rows") \
        if block.get("min_rows") is not None else policy.min_rows

    drift = _data_drift(r, block.get("data_drift", {}), f"{key}.data_drift", known_columns)
    pred = policy.prediction_drift
    if "prediction_drift" in block:
        pkey = f"{key}.prediction_drift"
        raw_p = block["prediction_drift"]
        if not r.enabled(raw_p):
            pred = PredictionDrift(enabled=False)
        else:
            p = r.mapping(raw_p if raw_p is not True else {}, pkey, ("alpha", "threshold"))
            pred = PredictionDrift(
                alpha=r.number(p.get("alpha", pred.alpha), f"{pkey}.alpha", lo=0, hi=1,
                               lo_open=True),
                threshold=r.number(p.get("threshold", pred.threshold), f"{pkey}.threshold",
                                   lo=0))
    schema = policy.schema
    if "schema" in block:
        skey = f"{key}.schema"
        raw_s = block["schema"]
        if not r.enabled(raw_s):
            schema = SchemaCheck(enabled=False)
        else:
            s = r.mapping(raw_s if raw_s is not True else {}, skey, ("max_share",))
            schema = SchemaCheck(max_share=r.number(s.get("max_share", schema.max_share),
                                                    f"{skey}.max_share", lo=0, hi=1))
    performance = policy.performance
    if "performance" in block:
        performance = _performance(r, block["performance"], f"{key}.performance",
                                   known_metrics, PERFORMANCE_METRICS, Performance)
    estimated = policy.estimated_performance
    if "estimated_performance" in block:
        estimated = _performance(r, block["estimated_performance"],
                                 f"{key}.estimated_performance", None, ESTIMATED_METRICS,
                                 Estimated)
    fairness = _fairness(r, block.get("fairness"), f"{key}.fairness")
    log_columns = r.names(block.get("log_columns"), f"{key}.log_columns")
    retrain = policy.retrain
    if block.get("retrain") is not None:
        rkey = f"{key}.retrain"
        raw_rt = block["retrain"]
        if isinstance(raw_rt, Mapping) and True in raw_rt:
            # YAML 1.1 (PyYAML, OmegaConf) reads an unquoted `on:` key as the boolean true
            raw_rt = {("on" if k is True else k): v for k, v in raw_rt.items()}
        rt = r.mapping(raw_rt, rkey, ("when", "on", "input", "min_rows"))
        on = rt.get("when", rt.get("on", list(retrain.when)))
        if isinstance(on, str):
            on = [on]
        if not isinstance(on, list) or not on:
            raise r.error(f"{rkey}.when", f"expected a list of checks among "
                                          f"{', '.join(CHECKS)}, found {on!r}")
        for i, name in enumerate(on):
            if name not in CHECKS:
                raise r.error(f"{rkey}.when[{i}]", f"unknown check {name!r}; checks: "
                                                 f"{', '.join(CHECKS)}",
                              hint=did_you_mean(str(name), CHECKS))
        target = rt.get("input", retrain.input)
        if not isinstance(target, str) or target.count(".") != 1:
            raise r.error(f"{rkey}.input", f"expected STAGE.INPUT (e.g. split.feedback), found "
                                           f"{target!r}")
        retrain = Retrain(when=tuple(on), input=target,
                          min_rows=r.integer(rt.get("min_rows", retrain.min_rows),
                                             f"{rkey}.min_rows"))
    ab = _ab(r, block["ab"], f"{key}.ab") if block.get("ab") is not None else policy.ab
    return Policy(window=window, min_rows=min_rows, data_drift=drift, prediction_drift=pred,
                  schema=schema, performance=performance, estimated_performance=estimated,
                  fairness=fairness, log_columns=log_columns, retrain=retrain, ab=ab)


def _ab(r: _Reader, raw: Any, key: str) -> AB:
    from framework.registry.core import check_alias

    d = AB()
    b = r.mapping(raw, key, ("key", "champion", "challenger", "metric", "confidence",
                             "min_labels", "tau", "promote"))
    header = b.get("key", d.key)
    if header is not None and (not isinstance(header, str) or not re.fullmatch(
            r"[A-Za-z0-9][A-Za-z0-9_-]*", header)):
        raise r.error(f"{key}.key", f"expected a request header name such as X-User-ID, "
                                    f"found {header!r}")
    aliases = {}
    for k in ("champion", "challenger"):
        value = b.get(k, getattr(d, k))
        try:
            aliases[k] = check_alias(str(value))
        except Exception as exc:
            raise r.error(f"{key}.{k}", str(exc)) from None
    if aliases["champion"] == aliases["challenger"]:
        raise r.error(f"{key}.challenger", "the challenger must be another alias than the "
                                           "champion")
    metric = b.get("metric", d.metric)
    if metric is not None and metric not in AB_METRICS:
        raise r.error(f"{key}.metric", f"unknown metric {metric!r}; known: "
                                       f"{', '.join(AB_METRICS)}",
                      hint=did_you_mean(str(metric), AB_METRICS))
    promote = b.get("promote", d.promote)
    if not isinstance(promote, bool):
        raise r.error(f"{key}.promote", f"expected true or false, found {promote!r}")
    return AB(key=header, metric=metric, promote=promote,
              confidence=r.number(b.get("confidence", d.confidence), f"{key}.confidence",
                                  lo=0.5, hi=0.9999),
              min_labels=r.integer(b.get("min_labels", d.min_labels), f"{key}.min_labels"),
              tau=r.number(b.get("tau", d.tau), f"{key}.tau", lo=0, lo_open=True),
              **aliases)


def _column_test(r: _Reader, raw: Any, key: str, default: ColumnTest) -> ColumnTest:
    if isinstance(raw, str):
        raw = {"test": raw}
    t = r.mapping(raw, key, ("test", "threshold"))
    test = t.get("test", default.test)
    if test not in TESTS:
        raise r.error(f"{key}.test", f"unknown test {test!r}; tests: {', '.join(TESTS)}",
                      hint=did_you_mean(str(test), TESTS))
    threshold = t.get("threshold")
    if threshold is None:
        threshold = default.threshold if test == default.test else None
    else:
        hi = 1.0 if test in P_VALUE_TESTS else None
        threshold = r.number(threshold, f"{key}.threshold", lo=0, hi=hi, lo_open=True)
    return ColumnTest(test, threshold)


def _data_drift(r: _Reader, raw: Any, key: str, columns: list[str] | None) -> DataDrift:
    base = DataDrift()
    if not r.enabled(raw):
        return DataDrift(enabled=False)
    d = r.mapping(raw if raw is not True else {}, key,
                  ("alpha", "share", "numeric", "categorical", "columns"))
    alpha = r.number(d.get("alpha", base.alpha), f"{key}.alpha", lo=0, hi=1, lo_open=True)
    share = r.number(d.get("share", base.share), f"{key}.share", lo=0, hi=1)
    numeric = _column_test(r, d["numeric"], f"{key}.numeric", base.numeric) \
        if d.get("numeric") is not None else base.numeric
    if numeric.test not in NUMERIC_TESTS:
        raise r.error(f"{key}.numeric.test", f"{numeric.test!r} is a test for categories; "
                                             f"numeric tests: {', '.join(sorted(NUMERIC_TESTS))}")
    categorical = _column_test(r, d["categorical"], f"{key}.categorical", base.categorical) \
        if d.get("categorical") is not None else base.categorical
    if categorical.test not in CATEGORICAL_TESTS:
        raise r.error(f"{key}.categorical.test",
                      f"{categorical.test!r} is a test for numbers; categorical tests: "
                      f"{', '.join(sorted(CATEGORICAL_TESTS))}")
    per_column: dict[str, ColumnTest] = {}
    raw_columns = d.get("columns") or {}
    if not isinstance(raw_columns, Mapping):
        raise r.error(f"{key}.columns", f"expected a mapping of column names to tests, found "
                                        f"{raw_columns!r}")
    for name, spec in raw_columns.items():
        ckey = f"{key}.columns.{name}"
        if columns is not None and name not in columns:
            raise r.error(ckey, f"{name!r} is not an input column of the model",
                          hint=did_you_mean(str(name), columns))
        per_column[str(name)] = _column_test(r, spec, ckey, ColumnTest("auto", None))
    return DataDrift(alpha=alpha, share=share, numeric=numeric, categorical=categorical,
                     columns=per_column)


def _performance(r: _Reader, raw: Any, key: str, known: set[str] | None,
                 allowed: tuple[str, ...], cls: type) -> Any:
    if not r.enabled(raw):
        return cls(enabled=False)
    base = cls()
    p = r.mapping(raw if raw is not True else {}, key, ("min_rows", "tolerance"))
    tolerance = dict(base.tolerance)
    if p.get("tolerance") is not None:
        t = p["tolerance"]
        if not isinstance(t, Mapping) or not t:
            raise r.error(f"{key}.tolerance", "expected a mapping of metric names to the drop "
                                              "allowed, e.g. {accuracy: 0.02}")
        tolerance = {}
        for metric, value in t.items():
            mkey = f"{key}.tolerance.{metric}"
            if metric not in allowed:
                raise r.error(mkey, f"cannot compute {metric!r} from logged predictions; "
                                    f"known: {', '.join(allowed)}",
                              hint=did_you_mean(str(metric), allowed))
            if known is not None and metric not in known:
                raise r.error(mkey, f"{metric!r} is not among the pipeline's metrics "
                                    f"({', '.join(sorted(known))}): nothing to compare with",
                              hint=did_you_mean(str(metric), known))
            tolerance[str(metric)] = r.number(value, mkey, lo=0)
    min_rows = r.integer(p.get("min_rows", base.min_rows), f"{key}.min_rows")
    return cls(min_rows=min_rows, tolerance=tolerance)


def _fairness(r: _Reader, raw: Any, key: str) -> tuple[Fairness, ...]:
    if raw is None or raw is False:
        return ()
    entries = raw if isinstance(raw, list) else [raw]
    out = []
    for i, entry in enumerate(entries):
        fkey = f"{key}[{i}]" if isinstance(raw, list) else key
        f = r.mapping(entry, fkey, ("group_by", "metric", "max_gap", "min_group_size",
                                    "positive"))
        group_by = f.get("group_by")
        if not isinstance(group_by, str) or not group_by:
            raise r.error(f"{fkey}.group_by", "expected the name of the column whose groups are "
                                              "compared (e.g. sex)")
        metric = f.get("metric", "selection_rate")
        if metric not in FAIRNESS_METRICS:
            raise r.error(f"{fkey}.metric", f"unknown fairness metric {metric!r}; metrics: "
                                            f"{', '.join(FAIRNESS_METRICS)}",
                          hint=did_you_mean(str(metric), FAIRNESS_METRICS))
        out.append(Fairness(group_by=group_by, metric=metric,
                            max_gap=r.number(f.get("max_gap", 0.1), f"{fkey}.max_gap", lo=0,
                                             hi=1),
                            min_group_size=r.integer(f.get("min_group_size", 30),
                                                     f"{fkey}.min_group_size"),
                            positive=f.get("positive")))
    return tuple(out)


def project_policy(project_dir: str = ".") -> Policy:
    """The policy of ``params.yaml`` in ``project_dir`` (the defaults without one)."""
    from pathlib import Path

    path = Path(project_dir) / "params.yaml"
    if not path.exists():
        return Policy()
    from framework.registry.lineage import read_yaml

    try:
        data = read_yaml(path)
    except Exception as exc:
        raise ConfigError(f"cannot parse: {exc}", file=str(path)) from None
    raw = data.get("monitor") if isinstance(data, dict) else None
    return parse(raw, file=str(path))
