"""Distribution sketches and the drift statistics computed from them, in numpy.

A reference column is kept as a sketch, never as its rows, so monitoring never rereads the
training data:

* :class:`NumericSketch`: up to :data:`MAX_EDGES` points of the column's distribution (its
  quantiles; every distinct value when there are fewer) with the exact count of values at or
  below each point, plus count, missing, mean, std, min and max;
* :class:`CategoricalSketch`: the count of each value (the :data:`MAX_CATEGORIES` most frequent;
  the rest counted together), plus missing.

A current column is compared with its sketch after one sort: ``searchsorted`` of the reference's
points into the sorted values gives the current CDF at those points exactly, from which
come the two-sample Kolmogorov-Smirnov statistic (on the reference's grid: it can only
underestimate the true statistic, so its p-value errs on the side of "no drift"), the
Wasserstein-1 distance normalised by the reference's standard deviation (the tails beyond the
reference's range exactly, the inside by linear interpolation between points), and the
population stability index on ten equal-frequency bins. Categorical columns get a chi-squared
test of homogeneity (the rarest categories pooled until Cochran's rule holds) and the
Jensen-Shannon distance (natural logarithm, as :func:`scipy.spatial.distance.jensenshannon` and
Evidently).

:func:`benjamini_hochberg` adjusts the p-values of one family of tests (all columns of one
check), so a batch with no drift raises an alarm in at most ``alpha`` of the cases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Points kept of a numeric reference column (its 0.5% quantiles, min and max included).
MAX_EDGES = 201
#: Values kept of a categorical reference column; the others are counted as one.
MAX_CATEGORIES = 200
#: Bins of the population stability index (equal-frequency in the reference).
PSI_BINS = 10
#: Proportions below this are raised to it in the PSI (an empty bin would be infinite).
PSI_FLOOR = 1e-4
#: Expected count below which chi-squared categories are merged.
MIN_EXPECTED = 5.0
#: The key under which categories outside the reference's kept values are counted.
OTHER = "(other)"


def _finite_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


# -- sketches ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NumericSketch:
    """The distribution of a numeric column, in at most :data:`MAX_EDGES` points."""

    count: int           # values that are not missing
    missing: int
    mean: float
    std: float
    min: float
    max: float
    edges: np.ndarray    # strictly increasing points
    cum: np.ndarray      # how many values are <= each point (int64)
    exact: bool          # the points are every distinct value: the CDF is exact between them

    kind = "numeric"

    @classmethod
    def of(cls, values: Any) -> NumericSketch:
        x = np.asarray(values, dtype=np.float64)
        finite = x[np.isfinite(x)]
        missing = int(x.size - finite.size)
        if not finite.size:
            empty = np.empty(0)
            return cls(0, missing, math.nan, math.nan, math.nan, math.nan, empty,
                       np.empty(0, dtype=np.int64), True)
        ordered = np.sort(finite)
        distinct = np.unique(ordered)
        exact = distinct.size <= MAX_EDGES
        if exact:
            edges = distinct
        else:
            edges = np.unique(np.quantile(ordered, np.linspace(0.0, 1.0, MAX_EDGES)))
        cum = np.searchsorted(ordered, edges, side="right").astype(np.int64)
        return cls(int(ordered.size), missing, float(ordered.mean()), float(ordered.std()),
                   float(ordered[0]), float(ordered[-1]), edges, cum, bool(exact))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "missing": self.missing,
                "mean": _finite_float(self.mean), "std": _finite_float(self.std),
                "min": _finite_float(self.min), "max": _finite_float(self.max),
                "exact": self.exact, "edges": self.edges.tolist(), "cum": self.cum.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NumericSketch:
        def num(key: str) -> float:
            v = d.get(key)
            return math.nan if v is None else float(v)

        edges = np.asarray(d["edges"], dtype=np.float64)
        cum = np.asarray(d["cum"], dtype=np.int64)
        if edges.shape != cum.shape or edges.ndim != 1 or (edges.size and (
                np.any(np.diff(edges) <= 0) or np.any(np.diff(cum) < 0)
                or cum[-1] != int(d["count"]))):
            raise ValueError("a numeric sketch needs increasing edges and cumulative counts "
                             "ending at its count")
        return cls(int(d["count"]), int(d["missing"]), num("mean"), num("std"), num("min"),
                   num("max"), edges, cum, bool(d.get("exact", False)))

    @property
    def scale(self) -> float:
        """What distances are divided by: the std, or a stand-in for a constant column."""
        if self.std > 0:
            return self.std
        return abs(self.mean) if self.mean else 1.0

    def histogram(self, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """``(edges, shares)`` of about ``bins`` equal-width bins over the reference's range, the
        shares read off the sketch (for pictures)."""
        if not self.count:
            return np.empty(0), np.empty(0)
        if self.exact and self.edges.size <= bins:
            counts = np.diff(self.cum, prepend=0)
            return self.edges.copy(), counts / self.count
        grid = np.linspace(self.min, self.max, bins + 1)
        cdf = self.cdf(grid)
        cdf[0] = 0.0
        return grid, np.diff(cdf)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The reference's CDF at ``x`` (exact at the edges, interpolated between them)."""
        f = self.cum / self.count
        if self.exact:
            idx = np.searchsorted(self.edges, x, side="right") - 1
            return np.where(idx >= 0, f[np.clip(idx, 0, None)], 0.0)
        return np.interp(x, self.edges, f, left=0.0, right=1.0)


@dataclass(frozen=True)
class CategoricalSketch:
    """The value counts of a categorical column (values as strings)."""

    count: int
    missing: int
    counts: dict[str, int]  # the kept values, most frequent first
    other: int              # values beyond the kept ones

    kind = "categorical"

    @classmethod
    def of(cls, values: Any) -> CategoricalSketch:
        counts, missing = value_counts(values)
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = dict(ordered[:MAX_CATEGORIES])
        other = sum(n for _, n in ordered[MAX_CATEGORIES:])
        return cls(sum(counts.values()), missing, kept, other)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "missing": self.missing,
                "counts": dict(self.counts), "other": self.other}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CategoricalSketch:
        counts = {str(k): int(v) for k, v in dict(d["counts"]).items()}
        if any(v < 0 for v in counts.values()) or sum(counts.values()) + int(d["other"]) != \
                int(d["count"]):
            raise ValueError("a categorical sketch's counts must add up to its count")
        return cls(int(d["count"]), int(d["missing"]), counts, int(d["other"]))

    def shares(self) -> dict[str, float]:
        total = self.count or 1
        out = {k: v / total for k, v in self.counts.items()}
        if self.other:
            out[OTHER] = self.other / total
        return out


Sketch = NumericSketch | CategoricalSketch


def sketch_from_dict(d: Mapping[str, Any]) -> Sketch:
    kind = d.get("kind")
    if kind == "numeric":
        return NumericSketch.from_dict(d)
    if kind == "categorical":
        return CategoricalSketch.from_dict(d)
    raise ValueError(f"unknown sketch kind {kind!r}")


def value_counts(values: Any) -> tuple[dict[str, int], int]:
    """``({value as str: count}, missing)`` of a column (a pandas Series, array or list)."""
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(values)
    counts = series.value_counts(dropna=True, sort=False)
    missing = int(len(series) - int(counts.sum()))
    out: dict[str, int] = {}
    for value, n in zip(counts.index.tolist(), counts.to_numpy().tolist()):
        key = category_key(value)
        out[key] = out.get(key, 0) + int(n)
    return out, missing


def category_key(value: Any) -> str:
    """How a category is named in a sketch: ``True``/``False`` for booleans, integers without a
    decimal point, everything else as ``str``."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


# -- comparing a current column with a sketch ----------------------------------------------------

@dataclass(frozen=True)
class NumericComparison:
    """A current numeric column against a reference sketch."""

    count: int
    missing: int
    ks: float            # the Kolmogorov-Smirnov statistic on the reference's grid
    ks_p: float          # its asymptotic two-sample p-value
    wasserstein: float   # Wasserstein-1 distance / the reference's std
    psi: float
    mean: float
    std: float
    #: the finite current values, sorted: what any further count over them starts from
    values: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)

    def counts(self, edges: np.ndarray) -> np.ndarray:
        """Counts of the current values in the bins of ``edges`` (values outside them count in
        the first or last bin, the last bin closed), as ``np.histogram`` of the clipped values
        would give them, without sorting again."""
        inner = np.searchsorted(self.values, edges[1:-1], side="left")
        return np.diff(np.concatenate(([0], inner, [self.values.size])))

    def counts_of(self, points: np.ndarray) -> np.ndarray:
        """How many current values equal each of the sorted ``points``."""
        return (np.searchsorted(self.values, points, side="right")
                - np.searchsorted(self.values, points, side="left"))


def compare_numeric(ref: NumericSketch, values: Any) -> NumericComparison:
    """Compare the current ``values`` with the reference ``ref`` (both non-empty)."""
    y = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(y)
    missing = int(y.size - np.count_nonzero(finite))
    # sorting is cheaper than searching each unsorted value among the edges (cache-friendly)
    ys = np.sort(y[finite] if missing else y)
    k = int(ys.size)
    if not k or not ref.count:
        return NumericComparison(k, missing, math.nan, math.nan, math.nan, math.nan, math.nan,
                                 math.nan)
    edges = ref.edges
    f_ref = ref.cum / ref.count
    f_cur = np.searchsorted(ys, edges, side="right") / k  # the current CDF at the edges, exactly
    lo, hi = edges[0], edges[-1]
    below = int(np.searchsorted(ys, lo, side="left"))     # F_cur just before the reference's min
    above = int(np.searchsorted(ys, hi, side="right"))
    diff = f_cur - f_ref
    ks = max(float(np.max(np.abs(diff))), below / k)
    n_eff = ref.count * k / (ref.count + k)
    ks_p = ks_pvalue(ks, n_eff)

    # Wasserstein-1 = integral of |F_cur - F_ref|: outside the reference's range exactly ...
    tails = (below * lo - float(np.sum(ys[:below])) + float(np.sum(ys[above:])) -
             (k - above) * hi) / k
    # ... inside, between consecutive points: both CDFs are steps for an exact sketch, lines
    # otherwise
    widths = np.diff(edges)
    if ref.exact:
        inside = float(np.sum(np.abs(diff[:-1]) * widths))
    else:
        a, b = diff[:-1], diff[1:]
        same_sign = a * b >= 0
        trapezoid = 0.5 * (np.abs(a) + np.abs(b)) * widths
        denom = np.abs(a) + np.abs(b)
        crossing = np.where(denom > 0, 0.5 * (a * a + b * b) / np.where(denom > 0, denom, 1.0),
                            0.0) * widths
        inside = float(np.sum(np.where(same_sign, trapezoid, crossing)))
    wasserstein = float((inside + tails) / ref.scale)

    psi_value = _psi_from_cdf(ref, f_ref, f_cur)
    return NumericComparison(k, missing, ks, ks_p, wasserstein, psi_value, float(ys.mean()),
                             float(ys.std()), ys)


def _psi_edges(ref: NumericSketch) -> np.ndarray:
    """Indices of the edges closing :data:`PSI_BINS` equal-frequency bins of the reference."""
    targets = ref.count * np.arange(1, PSI_BINS) / PSI_BINS
    picks = np.unique(np.searchsorted(ref.cum, targets, side="left"))
    picks = picks[picks < ref.edges.size - 1]
    return np.append(picks, ref.edges.size - 1)


def _psi_from_cdf(ref: NumericSketch, f_ref: np.ndarray, f_cur: np.ndarray) -> float:
    picks = _psi_edges(ref)
    p = np.diff(np.concatenate(([0.0], f_ref[picks])))
    q = np.diff(np.concatenate(([0.0], f_cur[picks])))
    q[-1] += 1.0 - f_cur[picks[-1]]  # current mass above the reference's maximum
    return psi(p, q)


def psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index of the shares ``q`` against ``p``."""
    p = np.maximum(np.asarray(p, dtype=np.float64), PSI_FLOOR)
    q = np.maximum(np.asarray(q, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_pvalue(statistic: float, n_eff: float) -> float:
    """The asymptotic two-sample Kolmogorov-Smirnov p-value at the effective sample size
    ``n_eff = n m / (n + m)``, with Stephens' small-sample correction of the argument
    (``(sqrt(n_eff) + 0.12 + 0.11 / sqrt(n_eff)) * D``): within a few percent of
    ``scipy.stats.ks_2samp``'s, in microseconds rather than its half millisecond."""
    from scipy.special import kolmogorov

    root = math.sqrt(max(n_eff, 1.0))
    return float(min(1.0, max(0.0, kolmogorov((root + 0.12 + 0.11 / root) * statistic))))


@dataclass(frozen=True)
class CategoricalComparison:
    count: int
    missing: int
    chi2: float
    chi2_p: float
    dof: int
    jensenshannon: float
    psi: float
    shares: dict[str, float]    # the current shares of the reference's categories (+ other)
    new: list[str]              # values the reference never saw (a few of them)


def compare_categorical(ref: CategoricalSketch, values: Any) -> CategoricalComparison:
    counts, missing = value_counts(values)
    return compare_categorical_counts(ref, counts, missing)


def compare_categorical_counts(ref: CategoricalSketch, counts: Mapping[str, int],
                               missing: int = 0) -> CategoricalComparison:
    """Compare current value counts with the reference's."""
    keys = list(ref.counts)
    r = np.array([ref.counts[k] for k in keys] + [ref.other], dtype=np.float64)
    c = np.array([counts.get(k, 0) for k in keys] + [0], dtype=np.float64)
    new = [k for k in counts if k not in ref.counts]
    c[-1] = sum(counts[k] for k in new)
    k_total = float(c.sum())
    if not k_total or not r.sum():
        return CategoricalComparison(int(k_total), missing, math.nan, math.nan, 0, math.nan,
                                     math.nan, {}, new[:10])
    shares = {key: float(v / k_total) for key, v in zip([*keys, OTHER], c) if v or key != OTHER}
    stat, p, dof = chi2_homogeneity(r, c)
    p_ref, p_cur = r / r.sum(), c / k_total
    return CategoricalComparison(int(k_total), missing, stat, p, dof,
                                 jensen_shannon(p_ref, p_cur), psi(p_ref, p_cur), shares,
                                 sorted(new)[:10])


def chi2_homogeneity(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, int]:
    """Chi-squared test that two count vectors come from one distribution: ``(stat, p, dof)``.

    Small expected counts are handled by Cochran's rule: while any expected count is below 1, or
    more than a fifth of them are below :data:`MIN_EXPECTED`, the two rarest categories are
    merged (so rare categories pool their evidence, and a value never seen before still counts).
    Fewer than two categories is p = 1."""
    from scipy.special import chdtrc  # chi2's survival function, without scipy.stats's 1.5 s

    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    n = table.sum()
    rows = table.sum(axis=1, keepdims=True)
    while True:
        expected = rows * table.sum(axis=0, keepdims=True) / n
        if table.shape[1] <= 2 or not ((expected < 1).any() or
                                       (expected < MIN_EXPECTED).mean() > 0.2):
            break
        order = np.argsort(table.sum(axis=0), kind="stable")
        a, b = int(order[0]), int(order[1])
        table[:, b] += table[:, a]
        table = np.delete(table, a, axis=1)
    dof = table.shape[1] - 1
    if dof < 1 or n == 0:
        return 0.0, 1.0, 0
    stat = float(np.sum((table - expected) ** 2 / expected))
    return stat, float(chdtrc(dof, stat)), int(dof)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, natural log) of two share
    vectors; 0 for equal shares, at most sqrt(ln 2) = 0.833."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / m[mask])))

    return math.sqrt(max(0.0, 0.5 * kl(p) + 0.5 * kl(q)))


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN and does not count)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if not valid.size:
        return out.tolist()
    order = valid[np.argsort(p[valid], kind="stable")]
    m = valid.size
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out[order] = np.clip(adjusted, 0.0, 1.0)
    return out.tolist()
