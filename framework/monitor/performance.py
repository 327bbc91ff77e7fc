"""Model performance from logged predictions: realized on labelled rows, estimated without labels.

Realized metrics use scikit-learn's definitions, as the bundled ``evaluate`` stage does: for two
classes the positive class is the model's second class (``classes[1]``), for more the average is
``macro`` (``f1_weighted``, ``precision_micro`` and the like average as scikit-learn's scorers
of those names do); ``roc_auc`` and ``log_loss`` need probabilities.

The estimate without labels is confidence-based performance estimation (CBPE, as in NannyML):
when the model's probabilities are calibrated, a row predicted positive with probability ``p`` is
a true positive with probability ``p``, so the expected confusion matrix is a sum of
probabilities, and with it the expected accuracy, precision, recall and F1. Its uncertainty comes
from the same model of the labels: the true positives among the rows predicted positive are a sum
of independent Bernoulli(p) draws, so their count is close to normal with variance
``sum p (1 - p)``; :data:`DRAWS` draws of both counts give a 95% interval for each metric. For
more than two classes only accuracy is estimated (the mean probability of the predicted class).
The estimate is as good as the calibration, so the probabilities are first calibrated, as
NannyML does, on the version's own test predictions (stored with it at registration): an
isotonic map from the score (P(positive), or the top probability for more classes) to how often
it was right, fitted when the test set has at least :data:`MIN_CALIBRATION_ROWS` rows. Under
covariate shift (the inputs move, the relation to the label stays) that map still holds; under
concept drift nothing without labels can tell, which is what the realized check is for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DRAWS = 2000
_SEED = 20260101
#: Labelled test rows needed to calibrate the probabilities before estimating.
MIN_CALIBRATION_ROWS = 100


def compute_metric(name: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
                   classes: list[Any] | None) -> float | None:
    """One metric of the labelled rows (None when it cannot be computed from what is there)."""
    from sklearn import metrics as skm

    if not len(y_true):
        return None
    if name in ("rmse", "mse", "mae", "r2"):
        t = np.asarray(y_true, dtype=np.float64)
        p = np.asarray(y_pred, dtype=np.float64)
        if name == "mse":
            return float(skm.mean_squared_error(t, p))
        if name == "rmse":
            return float(math.sqrt(skm.mean_squared_error(t, p)))
        if name == "mae":
            return float(skm.mean_absolute_error(t, p))
        return float(skm.r2_score(t, p)) if len(t) > 1 else None
    classes_arr = np.asarray(classes) if classes is not None else np.unique(
        np.concatenate([y_true, y_pred]))
    binary = len(classes_arr) == 2
    if name == "accuracy":
        return float(skm.accuracy_score(y_true, y_pred))
    if name == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(y_true, y_pred))
    base, _, average = name.partition("_")
    if base in ("precision", "recall", "f1") and average in ("", "macro", "micro", "weighted"):
        fn = {"precision": skm.precision_score, "recall": skm.recall_score,
              "f1": skm.f1_score}[base]
        kwargs: dict[str, Any] = {"zero_division": 0}
        if average:
            kwargs.update(average=average, labels=classes_arr)
        elif binary:
            kwargs.update(average="binary", pos_label=classes_arr[1])
        else:
            kwargs.update(average="macro", labels=classes_arr)
        return float(fn(y_true, y_pred, **kwargs))
    if proba is None:
        return None
    if name == "roc_auc":
        if len(np.unique(y_true)) < 2:
            return None
        if binary:
            return float(skm.roc_auc_score(y_true == classes_arr[1], proba[:, 1]))
        try:
            return float(skm.roc_auc_score(y_true, proba, multi_class="ovr",
                                           labels=classes_arr))
        except ValueError:
            return None
    if name == "log_loss":
        return float(skm.log_loss(y_true, proba, labels=classes_arr))
    return None


@dataclass(frozen=True)
class Calibration:
    """An isotonic map from a score to the probability of being right (see the docstring)."""

    binary: bool
    x: np.ndarray
    y: np.ndarray
    rows: int

    def apply(self, score: np.ndarray) -> np.ndarray:
        return np.interp(score, self.x, self.y)


def fit_calibration(proba: np.ndarray, y_true: np.ndarray,
                    classes: list[Any]) -> Calibration | None:
    """The calibration of a version's probabilities on its labelled test rows (None with fewer
    than :data:`MIN_CALIBRATION_ROWS` rows or a single class)."""
    from sklearn.isotonic import IsotonicRegression

    classes_arr = np.asarray(classes)
    if len(y_true) < MIN_CALIBRATION_ROWS or len(np.unique(y_true)) < 2:
        return None
    binary = len(classes_arr) == 2
    if binary:
        score, hit = proba[:, 1], (y_true == classes_arr[1])
    else:
        score, hit = proba.max(axis=1), classes_arr[proba.argmax(axis=1)] == y_true
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(score.astype(np.float64), hit.astype(np.float64))
    return Calibration(binary, np.asarray(iso.X_thresholds_, dtype=np.float64),
                       np.asarray(iso.y_thresholds_, dtype=np.float64), int(len(y_true)))


@dataclass(frozen=True)
class Estimate:
    metric: str
    value: float
    low: float
    high: float


def estimate(proba: np.ndarray, predicted: np.ndarray, classes: list[Any],
             metrics: list[str], calibration: Calibration | None = None) -> dict[str, Estimate]:
    """Confidence-based estimates (and 95% intervals) of ``metrics`` from probabilities alone
    (calibrated first with ``calibration``)."""
    classes_arr = np.asarray(classes)
    n = len(proba)
    out: dict[str, Estimate] = {}
    if not n:
        return out
    rng = np.random.default_rng(_SEED)
    if len(classes_arr) != 2:
        if "accuracy" in metrics:
            top = proba.max(axis=1)
            if calibration is not None:
                top = calibration.apply(top)
            value = float(top.mean())
            sd = math.sqrt(float(np.sum(top * (1 - top)))) / n
            out["accuracy"] = Estimate("accuracy", value, max(0.0, value - 1.96 * sd),
                                       min(1.0, value + 1.96 * sd))
        return out
    p = proba[:, 1] if calibration is None else calibration.apply(proba[:, 1])
    positive = predicted == classes_arr[1]
    n_pos = int(positive.sum())
    n_neg = n - n_pos
    tp_mean, tp_var = float(p[positive].sum()), float((p * (1 - p))[positive].sum())
    fn_mean, fn_var = float(p[~positive].sum()), float((p * (1 - p))[~positive].sum())

    def metrics_of(tp: Any, fn: Any) -> dict[str, Any]:
        fp = n_pos - tp
        tn = n_neg - fn
        with np.errstate(divide="ignore", invalid="ignore"):
            return {"accuracy": (tp + tn) / n,
                    "precision": np.where(n_pos > 0, tp / max(n_pos, 1), 0.0),
                    "recall": np.where(tp + fn > 0, tp / np.where(tp + fn > 0, tp + fn, 1), 0.0),
                    "f1": np.where(2 * tp + fp + fn > 0,
                                   2 * tp / np.where(2 * tp + fp + fn > 0, 2 * tp + fp + fn, 1),
                                   0.0)}

    point = metrics_of(np.float64(tp_mean), np.float64(fn_mean))
    tp_draws = np.clip(rng.normal(tp_mean, math.sqrt(tp_var), DRAWS), 0, n_pos)
    fn_draws = np.clip(rng.normal(fn_mean, math.sqrt(fn_var), DRAWS), 0, n_neg)
    drawn = metrics_of(tp_draws, fn_draws)
    for name in metrics:
        if name in point:
            lo, hi = np.percentile(drawn[name], [2.5, 97.5])
            out[name] = Estimate(name, float(point[name]), float(lo), float(hi))
    return out
