"""What a comparison of versions is made of, computed from what the registry stores.

Nothing here refits or rescores a model: metric deltas, curves, confusion matrices and residuals
come from each version's per-row test predictions (``test_predictions``, stored with the version
by the register step: ``y_true``, ``y_pred`` and ``proba_<j>`` per class).

Confidence intervals of metric deltas are percentile bootstrap intervals. When two versions were
scored on the same test table (the same sha256 in ``lineage.evaluation``, the same rows), the
bootstrap is *paired*: each resample draws the same rows for both, so the interval reflects the
difference on the same cases, as a paired test does; otherwise the two are resampled apart.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bootstrap resamples per interval.
RESAMPLES = 1000
_SEED = 20261201
#: Points a curve keeps (ROC and precision-recall curves of big test sets are thinned).
CURVE_POINTS = 200
CLASSIFICATION = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION = ("rmse", "mae", "r2")


@dataclass
class Predictions:
    """One version's per-row test predictions."""

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    classes: list[Any] | None  # None: a regressor
    test_sha256: str | None = None

    @property
    def rows(self) -> int:
        return int(len(self.y_true))


@dataclass
class VersionData:
    """Everything the report shows of one version, and what it lacks."""

    mv: Any
    predictions: Predictions | None = None
    plots: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _classes_of(registry: Any, mv: Any, y_true: np.ndarray, y_pred: np.ndarray,
                has_proba: bool) -> list[Any] | None:
    from framework.monitor.profile import PROFILE, Profile

    raw = registry.companion(mv, PROFILE) if PROFILE in mv.extras else None
    if raw is not None:
        pred = Profile.from_bytes(raw).prediction
        if pred is not None:
            return None if pred.task == "regression" else list(pred.classes or [])
    if not has_proba and y_true.dtype.kind == "f":
        return None
    return sorted(set(np.concatenate([y_true, y_pred]).tolist()), key=str)


def version_data(registry: Any, mv: Any, *, plots: bool = True) -> VersionData:
    """What ``registry`` stores of ``mv`` for a report (missing pieces named, never an error)."""
    from framework.monitor.profile import TEST_PREDICTIONS, read_test_predictions

    data = VersionData(mv)
    if mv.removed_at:
        data.missing.append("its artifacts were removed by `registry gc`")
        return data
    raw = registry.companion(mv, TEST_PREDICTIONS) if TEST_PREDICTIONS in mv.extras else None
    if raw is None:
        data.missing.append("per-row test predictions (registered without them: a sweep's "
                            "trial, or registered before they were stored)")
    else:
        frame = read_test_predictions(raw)
        if "y_true" not in frame.columns:
            data.missing.append("the test set's labels")
        else:
            columns = sorted((c for c in frame.columns if c.startswith("proba_")),
                             key=lambda c: int(c.split("_", 1)[1]))
            y_true = frame["y_true"].to_numpy()
            y_pred = frame["y_pred"].to_numpy()
            proba = frame[columns].to_numpy(dtype=np.float64) if columns else None
            classes = _classes_of(registry, mv, y_true, y_pred, proba is not None)
            evaluation = (mv.lineage or {}).get("evaluation") or {}
            data.predictions = Predictions(y_true, y_pred, proba, classes,
                                           evaluation.get("sha256"))
    if plots:
        from framework.registry.step import PLOTS

        index = registry.companion(mv, PLOTS) if PLOTS in mv.extras else None
        for entry in json.loads(index) if index else []:
            item = dict(entry)
            if "key" in item and item["key"] in mv.extras:
                item["data"] = registry.companion(mv, item["key"])
            elif "missing" not in item:
                item["missing"] = "not stored"
            data.plots.append(item)
    return data


# -- metrics --------------------------------------------------------------------------------------

def metric_names(p: Predictions) -> tuple[str, ...]:
    if p.classes is None:
        return REGRESSION
    return tuple(m for m in CLASSIFICATION if m not in ("roc_auc", "log_loss") or
                 p.proba is not None)


def metric(name: str, p: Predictions, rows: np.ndarray | None = None) -> float | None:
    from framework.monitor.performance import compute_metric

    y_true, y_pred, proba = p.y_true, p.y_pred, p.proba
    if rows is not None:
        y_true, y_pred = y_true[rows], y_pred[rows]
        proba = proba[rows] if proba is not None else None
    try:
        value = compute_metric(name, y_true, y_pred, proba, p.classes)
    except ValueError:  # a resample with one class only
        return None
    return None if value is None or not np.isfinite(value) else float(value)


@dataclass(frozen=True)
class Delta:
    metric: str
    base: float | None
    other: float | None
    delta: float | None
    low: float | None
    high: float | None
    paired: bool


def paired(a: Predictions, b: Predictions) -> bool:
    return (a.test_sha256 is not None and a.test_sha256 == b.test_sha256 and a.rows == b.rows
            and bool(np.array_equal(a.y_true, b.y_true)))


def _per_row(name: str, p: Predictions) -> dict[str, np.ndarray] | None:
    """The per-row pieces from which ``name`` is a sum over any resample of rows, or None where
    the metric is not one of those (then it is computed per resample)."""
    if p.classes is None:
        t, q = p.y_true.astype(np.float64), p.y_pred.astype(np.float64)
        if name == "rmse":
            return {"sq": (t - q) ** 2}
        if name == "mae":
            return {"abs": np.abs(t - q)}
        if name == "r2":
            return {"sq": (t - q) ** 2, "t": t, "t2": t * t}
        return None
    labels = np.asarray([str(c) for c in p.classes])
    truth = np.asarray([str(v) for v in p.y_true.tolist()])
    pred = np.asarray([str(v) for v in p.y_pred.tolist()])
    if name == "accuracy":
        return {"hit": (truth == pred).astype(np.float64)}
    if name == "f1" and len(labels) == 2:
        pos_t, pos_p = truth == labels[1], pred == labels[1]
        return {"tp": (pos_t & pos_p).astype(np.float64), "fp": (~pos_t & pos_p).astype(
            np.float64), "fn": (pos_t & ~pos_p).astype(np.float64)}
    if name == "log_loss" and p.proba is not None:
        col = np.searchsorted(labels, truth) if list(labels) == sorted(labels) else \
            np.array([list(labels).index(v) if v in labels else -1 for v in truth])
        ok = (col >= 0) & (col < len(labels))
        if not ok.all():
            return None
        prob = np.clip(p.proba[np.arange(len(truth)), col], 1e-15, 1.0)
        return {"loss": -np.log(prob)}
    if name == "roc_auc" and p.proba is not None and len(labels) == 2:
        return {"score": p.proba[:, 1], "pos": (truth == labels[1]).astype(np.float64)}
    return None


def _vector(name: str, parts: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """``name`` on each resample (a row of ``rows``), from :func:`_per_row`'s pieces."""
    n = rows.shape[1]
    if name == "rmse":
        return np.sqrt(parts["sq"][rows].mean(axis=1))
    if name == "mae":
        return parts["abs"][rows].mean(axis=1)
    if name == "r2":
        t = parts["t"][rows]
        ss_tot = (parts["t2"][rows].sum(axis=1) - t.sum(axis=1) ** 2 / n)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ss_tot > 0, 1 - parts["sq"][rows].sum(axis=1) / ss_tot, np.nan)
    if name == "accuracy":
        return parts["hit"][rows].mean(axis=1)
    if name == "f1":
        tp, fp, fn = (parts[k][rows].sum(axis=1) for k in ("tp", "fp", "fn"))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    if name == "log_loss":
        return parts["loss"][rows].mean(axis=1)
    # roc_auc by Mann-Whitney: the rank sum of the positives, ties given their mean rank
    score, pos = parts["score"][rows], parts["pos"][rows]
    order = np.argsort(score, axis=1, kind="stable")
    ranked = np.take_along_axis(score, order, axis=1)
    ranks = np.empty_like(score)
    idx = np.arange(1, n + 1, dtype=np.float64)
    # mean rank within runs of ties
    for r in range(rows.shape[0]):
        s = ranked[r]
        starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
        ends = np.r_[starts[1:], n]
        mean_rank = (idx[starts] + idx[ends - 1]) / 2
        ranks[r, order[r]] = np.repeat(mean_rank, ends - starts)
    n_pos = pos.sum(axis=1)
    n_neg = n - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = ((ranks * pos).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _resampled(name: str, p: Predictions, rows: np.ndarray) -> np.ndarray:
    parts = _per_row(name, p)
    if parts is not None:
        return _vector(name, parts, rows)
    values = [metric(name, p, r) for r in rows]
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def deltas(base: Predictions, other: Predictions, *, resamples: int = RESAMPLES,
           seed: int = _SEED) -> list[Delta]:
    """``other`` minus ``base`` for each metric both have, with a 95% bootstrap interval."""
    names = [m for m in metric_names(base) if m in metric_names(other)]
    same = paired(base, other)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {m: [] for m in names}
    chunk = max(1, min(resamples, 2_000_000 // max(base.rows, other.rows, 1)))
    done = 0
    while done < resamples:
        k = min(chunk, resamples - done)
        rows_a = rng.integers(0, base.rows, (k, base.rows))
        rows_b = rows_a if same else rng.integers(0, other.rows, (k, other.rows))
        for m in names:
            draws[m].append(_resampled(m, other, rows_b) - _resampled(m, base, rows_a))
        done += k
    out = []
    for m in names:
        a, b = metric(m, base), metric(m, other)
        d = np.concatenate(draws[m]) if draws[m] else np.empty(0)
        d = d[np.isfinite(d)]
        low, high = (float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))) \
            if len(d) >= resamples // 2 else (None, None)
        out.append(Delta(m, a, b, None if a is None or b is None else b - a, low, high, same))
    return out


# -- curves, matrices, residuals ----------------------------------------------------------------

def _thin(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    if len(x) > CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, CURVE_POINTS).round().astype(int))
        x, y = x[keep], y[keep]
    return [round(float(v), 5) for v in x], [round(float(v), 5) for v in y]


def curves(p: Predictions) -> dict[str, Any] | None:
    """ROC and precision-recall points of a binary classifier (positive: ``classes[1]``)."""
    if p.classes is None or p.proba is None or len(p.classes) != 2:
        return None
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    positive = p.y_true == np.asarray(p.classes, dtype=object)[1] if p.y_true.dtype == object \
        else p.y_true == p.classes[1]
    if positive.all() or not positive.any():
        return None
    score = p.proba[:, 1]
    fpr, tpr, _ = roc_curve(positive, score)
    precision, recall, _ = precision_recall_curve(positive, score)
    roc_x, roc_y = _thin(fpr, tpr)
    pr_x, pr_y = _thin(recall[::-1], precision[::-1])
    return {"roc": {"x": roc_x, "y": roc_y, "auc": float(auc(fpr, tpr))},
            "pr": {"x": pr_x, "y": pr_y, "auc": float(auc(recall, precision))}}


def confusion(p: Predictions) -> dict[str, Any] | None:
    if p.classes is None:
        return None
    labels = [str(c) for c in p.classes]
    index = {c: i for i, c in enumerate(labels)}
    k = len(labels)
    counts = np.zeros((k, k), dtype=np.int64)
    for t, q in zip(map(str, p.y_true.tolist()), map(str, p.y_pred.tolist())):
        if t in index and q in index:
            counts[index[t], index[q]] += 1
    return {"labels": labels, "counts": counts.tolist()}


def residuals(p: Predictions, limit: int = 2000) -> dict[str, Any] | None:
    if p.classes is not None:
        return None
    actual = p.y_true.astype(np.float64)
    predicted = p.y_pred.astype(np.float64)
    rows = np.arange(len(actual))
    if len(rows) > limit:
        rows = np.random.default_rng(_SEED).choice(rows, limit, replace=False)
    return {"predicted": [round(float(v), 5) for v in predicted[rows]],
            "residual": [round(float(v), 5) for v in (actual - predicted)[rows]]}


# -- params and lineage ---------------------------------------------------------------------------

def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"C": 1}}`` as ``{"model.C": 1}`` (lists kept whole)."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    out[prefix[:-1]] = value
    return out


def differing(items: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """The keys whose values are not the same in every mapping, with each one's value."""
    keys = sorted({k for d in items for k in d})
    missing = object()
    rows = []
    for key in keys:
        values = [d.get(key, missing) for d in items]
        if any(json.dumps(v, sort_keys=True, default=str) !=
               json.dumps(values[0], sort_keys=True, default=str) for v in values[1:]):
            rows.append((key, [None if v is missing else v for v in values]))
    return rows


def lineage_view(mv: Any) -> dict[str, Any]:
    """The parts of a lineage worth comparing: data hashes, code commit, packages."""
    lin = mv.lineage or {}
    out: dict[str, Any] = {}
    git = lin.get("git") or {}
    if git:
        out["git.commit"] = git.get("commit")
        out["git.dirty"] = git.get("dirty")
    for stage, entry in ((lin.get("dvc_lock") or {}).get("stages") or {}).items():
        for kind in ("deps", "outs"):
            for path, md5 in (entry.get(kind) or {}).items():
                if not str(path).endswith(".py"):
                    out[f"data {path}"] = md5
    for name, version in (lin.get("packages") or {}).items():
        out[f"package {name}"] = version
    evaluation = lin.get("evaluation") or {}
    if evaluation.get("sha256"):
        out["test set sha256"] = evaluation["sha256"]
    if lin.get("sweep_id"):
        out["sweep"] = lin["sweep_id"]
    if lin.get("triggered_by"):
        out["triggered by"] = lin["triggered_by"]
    return out


def read_plot_table(entry: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A stored plot file's rows (CSV, TSV or JSON, as DVC reads them)."""
    data = entry.get("data")
    if not data:
        return None
    import pandas as pd

    path = str(entry.get("path", ""))
    try:
        if path.endswith(".json"):
            rows = json.loads(data)
            if isinstance(rows, dict) and len(rows) == 1:
                rows = next(iter(rows.values()))
            return rows if isinstance(rows, list) else None
        frame = pd.read_csv(io.BytesIO(data), sep="\t" if path.endswith(".tsv") else ",")
    except (ValueError, UnicodeDecodeError):
        return None
    return json.loads(frame.to_json(orient="records"))
