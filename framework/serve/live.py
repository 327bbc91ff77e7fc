"""Rolling-window monitoring gauges for ``/metrics``: drift per feature, prediction shares,
schema violations, computed from what the prediction log flushes.

The window holds the latest ``capacity`` logged rows (and outcomes of the latest ``capacity``
requests) of the version being served; it starts afresh when the served version changes, because
the reference changes with it. Each flush of the log (at most once a second) appends to it; a
scrape of ``/metrics`` then compares the window with the version's reference profile
(:mod:`framework.monitor.stats`, the same statistics as ``monitor``) in a worker thread, if it
changed since the last scrape, so a server nobody scrapes spends nothing on it.

Gauges (labels bounded by the version's own columns and classes):

* ``framework_serve_drift_score{feature}``: normalised Wasserstein distance (numeric) or
  Jensen-Shannon distance (categorical) of the window against the training profile;
* ``framework_serve_drift_p_value{feature}``: the KS or chi-squared p-value, Benjamini-Hochberg
  adjusted over the features;
* ``framework_serve_prediction_share{class}`` (classifiers) or ``framework_serve_prediction_mean``
  (regressors), and ``framework_serve_prediction_drift_score`` (the score's distribution);
* ``framework_serve_schema_violation_rate``: the share of the window's requests refused because
  a value broke the input schema; ``framework_serve_schema_violations_total{column}``;
* ``framework_serve_monitor_window_rows``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter, deque
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 1000
#: At most this many columns keep their own violation counter; the rest count as "other".
MAX_COLUMN_LABELS = 512


class LiveWindow:
    """The latest logged rows of the served version, and the gauges computed from them."""

    def __init__(self, capacity: int = DEFAULT_WINDOW) -> None:
        self.capacity = max(1, int(capacity))
        self._lock = threading.Lock()
        self._version: tuple[str, int] | None = None
        self._chunks: deque[tuple[Any, Any, Any]] = deque()  # (features, predictions, proba)
        self._rows = 0
        self._outcomes: deque[bool] = deque(maxlen=self.capacity)  # True: refused by schema
        self.violations: Counter[str] = Counter()
        self._model: Any = None
        self._dirty = False
        self.gauges: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = {}

    # -- fed by the prediction log's flusher -----------------------------------------------------

    def add(self, batch: Any) -> None:
        model = batch.model
        key = (model.version.name, model.version.version)
        with self._lock:
            if key != self._version:
                self._version = key
                self._chunks.clear()
                self._rows = 0
                self._outcomes.clear()
            if batch.accepted_requests:
                self._chunks.append((batch.features, batch.predictions, batch.proba))
                self._rows += len(batch.features)
                while self._chunks and self._rows - len(self._chunks[0][0]) >= self.capacity:
                    self._rows -= len(self._chunks.popleft()[0])
            self._outcomes.extend([False] * batch.accepted_requests)
            for _code, columns in batch.refused:
                schema = bool(columns)  # values broke the schema (others: malformed bodies)
                self._outcomes.append(schema)
                if schema:
                    for column in columns or ("(unknown)",):
                        label = column if (column in self.violations or
                                           len(self.violations) < MAX_COLUMN_LABELS) else "other"
                        self.violations[label] += 1
            self._model = model
            self._dirty = True

    def refresh(self) -> None:
        """Compute the gauges from the window if it changed since the last time (called by a
        scrape, in a worker thread: a flush only appends)."""
        with self._lock:
            if not self._dirty or self._model is None:
                return
            self._dirty = False
            model = self._model
            chunks = list(self._chunks)
            outcomes = list(self._outcomes)
        try:
            self.gauges = _compute(model, chunks, outcomes, self.capacity)
        except Exception:  # a gauge must never break a scrape
            log.exception("monitoring gauges could not be computed")

    # -- rendered by /metrics --------------------------------------------------------------------

    def render(self, prefix: str) -> list[str]:
        from framework.serve.metrics import _labels, _number

        out: list[str] = []
        helps = {
            "drift_score": "Drift of each feature in the rolling window against the training "
                           "profile (normalised Wasserstein or Jensen-Shannon distance).",
            "drift_p_value": "P-value of each feature's drift test in the rolling window "
                             "(KS or chi-squared, Benjamini-Hochberg adjusted).",
            "prediction_share": "Share of each predicted class in the rolling window.",
            "prediction_mean": "Mean prediction in the rolling window.",
            "prediction_drift_score": "Drift of the model's score in the rolling window "
                                      "against its test-set predictions.",
            "schema_violation_rate": "Share of the window's requests refused because a value "
                                     "broke the input schema.",
            "monitor_window_rows": "Rows in the rolling monitoring window.",
        }
        gauges = self.gauges
        for name, help_text in helps.items():
            samples = gauges.get(name)
            if not samples:
                continue
            full = f"{prefix}_{name}"
            out.append(f"# HELP {full} {help_text}")
            out.append(f"# TYPE {full} gauge")
            for labels, value in samples:
                out.append(f"{full}{_labels(labels)} {_number(value)}")
        full = f"{prefix}_schema_violations_total"
        out.append(f"# HELP {full} Requests refused because a value broke the input schema, by "
                   "column.")
        out.append(f"# TYPE {full} counter")
        for column, n in sorted(self.violations.items()):
            out.append(f"{full}{_labels((('column', column),))} {n}")
        return out


def _compute(model: Any, chunks: list[tuple[Any, Any, Any]], outcomes: list[bool],
             capacity: int) -> dict[str, list[tuple[tuple[tuple[str, str], ...], float]]]:
    import numpy as np
    import pandas as pd

    from framework.monitor.profile import numeric_values, score_of
    from framework.monitor.stats import (NumericSketch, benjamini_hochberg,
                                         compare_categorical, compare_numeric)

    gauges: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = {}
    refused = sum(outcomes)
    if outcomes:
        gauges["schema_violation_rate"] = [((), refused / len(outcomes))]
    if not chunks:
        gauges["monitor_window_rows"] = [((), 0.0)]
        return gauges
    features = pd.concat([c[0] for c in chunks], ignore_index=True).tail(capacity)
    predictions = np.concatenate([np.asarray(c[1]) for c in chunks])[-capacity:]
    probas = [c[2] for c in chunks if c[2] is not None]
    proba = np.vstack(probas)[-capacity:] if len(probas) == len(chunks) else None
    gauges["monitor_window_rows"] = [((), float(len(features)))]
    profile = getattr(model, "profile", None)
    if model.classes is not None:
        values, counts = np.unique(predictions.astype(str), return_counts=True)
        gauges["prediction_share"] = [((("class", v),), c / len(predictions))
                                      for v, c in zip(values.tolist(), counts.tolist())]
    else:
        gauges["prediction_mean"] = [((), float(np.mean(predictions.astype(np.float64))))]
    if profile is None:
        return gauges
    scores, pvalues = [], []
    for name, sketch in profile.columns.items():
        if name not in features:
            continue
        if isinstance(sketch, NumericSketch):
            c = compare_numeric(sketch, numeric_values(features[name]))
            score, p = c.wasserstein, c.ks_p
        else:
            cc = compare_categorical(sketch, features[name])
            score, p = cc.jensenshannon, cc.chi2_p
        scores.append((name, score))
        pvalues.append(p)
    adjusted = benjamini_hochberg(pvalues)
    gauges["drift_score"] = [((("feature", n),), s) for n, s in scores if not math.isnan(s)]
    gauges["drift_p_value"] = [((("feature", n),), p) for (n, _), p in zip(scores, adjusted)
                               if not math.isnan(p)]
    pred = profile.prediction
    if pred is not None and pred.score is not None:
        if pred.task == "classification" and proba is not None:
            current = score_of(proba)
        elif pred.task == "regression":
            current = predictions.astype(np.float64)
        else:
            current = None
        if current is not None:
            c = compare_numeric(pred.score, current)
            if not math.isnan(c.wasserstein):
                gauges["prediction_drift_score"] = [((), c.wasserstein)]
    return gauges
