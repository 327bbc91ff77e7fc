"""Drift statistics from sketches: equal to scipy's on the full data where they can be, within a
stated error where the sketch approximates, and calibrated: no-drift batches rarely alarm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from framework.monitor.stats import (MAX_EDGES, CategoricalSketch, NumericSketch,
                                     benjamini_hochberg, chi2_homogeneity, compare_categorical,
                                     compare_numeric, psi)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.random.default_rng(0).normal(size=50_000)


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.3, 1.0])
def test_numeric_statistics_match_scipy_on_the_full_data(reference: np.ndarray,
                                                         shift: float) -> None:
    current = np.random.default_rng(1).normal(shift, 1.0, size=5_000)
    sketch = NumericSketch.of(reference)
    assert sketch.edges.size == MAX_EDGES and not sketch.exact
    c = compare_numeric(sketch, current)
    exact = stats.ks_2samp(reference, current)
    # on the reference's grid the statistic can only be lower, by at most a grid step's mass
    assert exact.statistic - 2.0 / (MAX_EDGES - 1) <= c.ks <= exact.statistic + 1e-12
    wasserstein = stats.wasserstein_distance(reference, current) / reference.std()
    assert c.wasserstein == pytest.approx(wasserstein, abs=0.01 + 0.03 * wasserstein)
    assert c.mean == pytest.approx(current.mean())


def test_a_column_with_few_values_is_kept_exactly() -> None:
    rng = np.random.default_rng(2)
    ref, cur = rng.integers(0, 40, 4_000), rng.integers(0, 40, 3_000) + 1
    sketch = NumericSketch.of(ref)
    assert sketch.exact and sketch.edges.tolist() == sorted(set(ref.tolist()))
    c = compare_numeric(sketch, cur)
    assert c.ks == pytest.approx(stats.ks_2samp(ref, cur).statistic)
    assert c.wasserstein == pytest.approx(stats.wasserstein_distance(ref, cur) / ref.std())


def test_values_outside_the_reference_count_in_full() -> None:
    sketch = NumericSketch.of(np.linspace(0, 1, 1001))
    c = compare_numeric(sketch, np.full(100, 11.0))  # all ten units beyond the maximum
    assert c.ks == pytest.approx(1.0)
    assert c.wasserstein * sketch.std == pytest.approx(stats.wasserstein_distance(
        np.linspace(0, 1, 1001), np.full(100, 11.0)), rel=0.01)


def test_missing_and_infinite_values_are_missing_not_values() -> None:
    sketch = NumericSketch.of([1.0, 2.0, np.nan, 3.0])
    assert (sketch.count, sketch.missing) == (3, 1)
    c = compare_numeric(sketch, [1.0, np.inf, np.nan, 2.0])
    assert (c.count, c.missing) == (2, 2)


def test_a_sketch_survives_json_and_refuses_a_broken_one() -> None:
    sketch = NumericSketch.of(np.random.default_rng(3).exponential(size=1000))
    again = NumericSketch.from_dict(sketch.to_dict())
    assert np.array_equal(again.edges, sketch.edges) and np.array_equal(again.cum, sketch.cum)
    broken = sketch.to_dict()
    broken["cum"] = broken["cum"][::-1]
    with pytest.raises(ValueError, match="increasing"):
        NumericSketch.from_dict(broken)


def test_categorical_statistics_match_scipy() -> None:
    rng = np.random.default_rng(4)
    ref = rng.choice(list("abcd"), p=[0.4, 0.3, 0.2, 0.1], size=20_000)
    cur = rng.choice(list("abcd"), p=[0.35, 0.3, 0.2, 0.15], size=10_000)
    c = compare_categorical(CategoricalSketch.of(ref), cur)
    table = np.array([[np.sum(ref == k) for k in "abcd"], [np.sum(cur == k) for k in "abcd"]])
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    assert (c.chi2, c.dof) == (pytest.approx(chi2), dof)
    assert c.chi2_p == pytest.approx(p, rel=1e-6, abs=1e-300)
    assert c.jensenshannon == pytest.approx(jensenshannon(table[0] / table[0].sum(),
                                                          table[1] / table[1].sum()))
    assert 0.05 < c.jensenshannon < 0.1  # a rare category grew by half: below Evidently's 0.1


def test_categories_never_seen_and_rare_ones() -> None:
    ref = CategoricalSketch.of(["a"] * 500 + ["b"] * 500 + ["c"] * 2)
    c = compare_categorical(ref, ["a"] * 40 + ["b"] * 40 + ["z"] * 20)
    assert c.new == ["z"] and c.shares["(other)"] == pytest.approx(0.2)
    assert c.chi2_p < 1e-6  # a fifth of the rows is something new
    stat, p, dof = chi2_homogeneity(np.array([10.0, 0.0]), np.array([0.0, 0.0]))
    assert (p, dof) == (1.0, 0)


def test_benjamini_hochberg() -> None:
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.2, math.nan])
    assert adjusted[:4] == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])
    assert math.isnan(adjusted[4])


def test_psi() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert psi([0.5, 0.5], [0.4, 0.6]) == pytest.approx(0.1 * math.log(0.6 / 0.5)
                                                        - 0.1 * math.log(0.4 / 0.5))


@pytest.mark.parametrize("n, m, shift", [(400, 150, 0.3), (5_000, 2_000, 0.08), (300, 300, 0.0)])
def test_the_ks_p_value_agrees_with_scipy(n: int, m: int, shift: float) -> None:
    rng = np.random.default_rng(n + m)
    ref, cur = rng.normal(size=n), rng.normal(shift, 1.0, size=m)
    from framework.monitor.stats import ks_pvalue

    statistic = stats.ks_2samp(ref, cur).statistic
    ours = ks_pvalue(statistic, n * m / (n + m))
    theirs = stats.ks_2samp(ref, cur, method="asymp").pvalue
    assert ours == pytest.approx(theirs, rel=0.15, abs=0.01)
