"""A small profile of every column of a published table, and the shift between two profiles.

Numbers keep their count of empty cells, min, max, mean, standard deviation and 21 quantiles
(0%, 5%, ..., 100%); other columns keep their empty cells, distinct count and the frequencies of
their 20 commonest values. Between two versions, :func:`shift` gives:

* numbers: the Wasserstein-1 distance of the two distributions, computed from the quantiles
  (the mean absolute gap between the two quantile functions) and divided by the older version's
  standard deviation, which is the "normalised Wasserstein" Evidently uses above 1,000 rows;
* others: the Jensen-Shannon distance (base 2, 0 to 1) of the two value frequencies, the other
  values pooled into one bucket.

Both are called drifted above :data:`THRESHOLD` (0.1, Evidently's default for both).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

QUANTILES = tuple(i / 20 for i in range(21))
TOP = 20
THRESHOLD = 0.1
OTHER = "(other)"


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def profile_table(frame: Any) -> dict[str, Any]:
    """Column name → its profile (see the module)."""
    import pandas as pd

    out: dict[str, Any] = {}
    for name in frame.columns:
        s = frame[name]
        nulls = int(s.isna().sum())
        if pd.api.types.is_bool_dtype(s) or not (pd.api.types.is_numeric_dtype(s) or
                                                 pd.api.types.is_datetime64_any_dtype(s)):
            counts = s.dropna().astype(str).value_counts()
            top = counts.head(TOP)
            out[str(name)] = {"kind": "category", "dtype": str(s.dtype), "nulls": nulls,
                              "distinct": int(len(counts)),
                              "top": {str(k): int(v) for k, v in top.items()},
                              "other": int(counts.iloc[TOP:].sum())}
            continue
        if pd.api.types.is_datetime64_any_dtype(s):
            values = s.dropna()
            out[str(name)] = {"kind": "datetime", "dtype": str(s.dtype), "nulls": nulls,
                              "min": str(values.min()) if len(values) else None,
                              "max": str(values.max()) if len(values) else None}
            continue
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        values = values[np.isfinite(values)]
        entry: dict[str, Any] = {"kind": "number", "dtype": str(s.dtype), "nulls": nulls}
        if len(values):
            entry.update(min=_finite(values.min()), max=_finite(values.max()),
                         mean=_finite(values.mean()), std=_finite(values.std()),
                         quantiles=[float(q) for q in np.quantile(values, QUANTILES)])
        out[str(name)] = entry
    return out


def _wasserstein(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    qa, qb = a.get("quantiles"), b.get("quantiles")
    if not qa or not qb:
        return None
    # the quantile functions, as step functions between the 21 points (trapezoids)
    gap = np.abs(np.asarray(qa) - np.asarray(qb))
    distance = float(((gap[1:] + gap[:-1]) / 2).mean())
    scale = a.get("std") or 0.0
    if scale <= 0:
        return 0.0 if distance == 0 else math.inf
    return distance / scale


def _jensen_shannon(a: dict[str, Any], b: dict[str, Any]) -> float:
    keys = sorted(set(a["top"]) | set(b["top"]))

    def freq(p: dict[str, Any]) -> np.ndarray:
        counts = np.array([p["top"].get(k, 0) for k in keys] + [p["other"]], dtype=float)
        total = counts.sum()
        return counts / total if total else counts

    p, q = freq(a), freq(b)
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        mask = x > 0
        return float((x[mask] * np.log2(x[mask] / m[mask])).sum())

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def shift(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Per column present in both: ``{"method", "distance", "drifted"}`` (None when one side has
    no values)."""
    out: dict[str, Any] = {}
    for name in old:
        if name not in new or old[name]["kind"] != new[name]["kind"]:
            continue
        a, b = old[name], new[name]
        if a["kind"] == "number":
            distance, method = _wasserstein(a, b), "wasserstein (normed)"
        elif a["kind"] == "category":
            distance, method = _jensen_shannon(a, b), "jensen-shannon"
        else:
            continue
        out[name] = {"method": method, "distance": distance,
                     "drifted": None if distance is None else bool(distance > THRESHOLD)}
    return out
