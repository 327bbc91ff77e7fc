"""Vectorized JSON Schema keywords over one :class:`~framework.schema.columns.Column`.

Each check returns a boolean mask of the failing rows, or None when it knows no row fails.
Numbers are compared exactly, as Python compares an ``int`` with a ``float`` (jsonschema's
semantics): a bound that is not representable in the column's dtype is first rounded to the
nearest representable value on the right side, never compared after a lossy cast.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from framework.schema.columns import BOOLEAN, I64_MAX, NULL, NUMBER, STRING, Column

I64_MIN = -(2**63)
_DBL_MAX = 1.7976931348623157e308

CheckFn = Callable[[Column], "np.ndarray | None"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _nonnull(col: Column, mask: np.ndarray | None) -> np.ndarray | None:
    """Restrict ``mask`` to non-null rows (needed where nulls hold filler values)."""
    if mask is None or not col.has_null:
        return mask
    return mask & ~col.null


def _all_nonnull(col: Column) -> np.ndarray:
    return ~col.null if col.has_null else np.ones(col.n, dtype=bool)


def _or(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


# -- type ----------------------------------------------------------------------------------
def check_type(col: Column, types: frozenset[str]) -> np.ndarray | None:
    fail = col.null if "null" not in types and col.has_null else None
    kind = col.kind
    if kind == NULL:
        return fail
    if kind == NUMBER:
        if "number" in types or (col.integral and "integer" in types):
            return fail
        if "integer" in types:  # float values: integral and finite
            x = col.values
            with np.errstate(invalid="ignore"):
                bad = (np.trunc(x) != x) | np.isinf(x)
            return _or(fail, _nonnull(col, bad))
        return _or(fail, _all_nonnull(col))
    if kind == BOOLEAN:
        return fail if "boolean" in types else _or(fail, _all_nonnull(col))
    if kind == STRING:
        return fail if "string" in types else _or(fail, _all_nonnull(col))
    raise AssertionError(kind)  # categorical/other never reach the vectorized checks


def check_false(col: Column, _: object = None) -> np.ndarray:
    return np.ones(col.n, dtype=bool)


# -- enum / const ----------------------------------------------------------------------------
def check_enum(col: Column, members: list) -> np.ndarray | None:
    null_ok = any(m is None for m in members)
    fail = col.null if not null_ok and col.has_null else None
    kind = col.kind
    if kind == NULL:
        return fail
    if kind == NUMBER:
        ok = _number_isin(col, [m for m in members if _is_number(m)])
    elif kind == BOOLEAN:
        bools = {m for m in members if isinstance(m, bool)}
        if bools == {True, False}:
            return fail
        ok = col.values.copy() if True in bools else (~col.values if False in bools else None)
    elif kind == STRING:
        strs = [m for m in members if isinstance(m, str)]
        ok = col.strings.isin(strs).to_numpy() if strs else None
    else:
        raise AssertionError(kind)
    bad = _all_nonnull(col) if ok is None else _nonnull(col, ~ok)
    return _or(fail, bad)


def _number_isin(col: Column, members: list) -> np.ndarray | None:
    """Rows equal (as Python compares numbers) to one of ``members``; None if none can be."""
    x = col.values
    if col.integral:
        keys = []
        for m in members:
            if isinstance(m, float):
                if not (math.isfinite(m) and m.is_integer()):
                    continue
                m = int(m)
            if I64_MIN <= m <= I64_MAX:
                keys.append(m)
        dtype = np.int64
    else:
        keys = []
        for m in members:
            if isinstance(m, int):
                try:
                    f = float(m)
                except OverflowError:
                    continue
                if f != m:  # exact int/float comparison: no float equals this int
                    continue
                m = f
            keys.append(m)
        dtype = np.float64
    if not keys:
        return None
    if len(keys) == 1:
        return x == dtype(keys[0])
    return np.isin(x, np.array(keys, dtype=dtype))


# -- numeric bounds --------------------------------------------------------------------------
def ceil_float(m: int | float) -> float:
    """The smallest float >= ``m`` (exact for ints that floats cannot hold)."""
    if isinstance(m, float):
        return m
    try:
        f = float(m)
    except OverflowError:
        return math.inf if m > 0 else -_DBL_MAX
    return f if f >= m else math.nextafter(f, math.inf)


def floor_float(m: int | float) -> float:
    """The largest float <= ``m``."""
    if isinstance(m, float):
        return m
    try:
        f = float(m)
    except OverflowError:
        return _DBL_MAX if m > 0 else -math.inf
    return f if f <= m else math.nextafter(f, -math.inf)


_BOUNDS: dict[str, tuple[Callable, str]] = {
    # keyword: (failing comparison of value with bound, which side to round the bound to)
    "minimum": (operator.lt, "ceil"),
    "maximum": (operator.gt, "floor"),
    "exclusiveMinimum": (operator.le, "floor"),
    "exclusiveMaximum": (operator.ge, "ceil"),
}


def check_bound(col: Column, keyword: str, bound: int | float) -> np.ndarray | None:
    if col.kind != NUMBER:
        return None
    op, side = _BOUNDS[keyword]
    x = col.values
    low_side = op in (operator.lt, operator.le)
    if not col.integral:
        threshold = ceil_float(bound) if side == "ceil" else floor_float(bound)
        # the extreme non-null value decides for the whole column (NaN: no non-null value)
        if col.n and not op(col.extremes()[0 if low_side else 1], threshold):
            return None
        # NaN (null) compares False: nulls never fail
        return op(x, threshold)
    if isinstance(bound, float) and not math.isfinite(bound):
        return _nonnull(col, op(x.astype(np.float64), bound))
    t = math.ceil(bound) if side == "ceil" else math.floor(bound)
    if t > I64_MAX or t < I64_MIN:
        # every int64 is on one side of t: `x < t`, `x <= t` hold for all iff t is above
        return _all_nonnull(col) if (t > I64_MAX) == low_side else None
    if col.n and not col.has_null and not op(int(col.extremes()[0 if low_side else 1]), t):
        return None
    return _nonnull(col, op(x, np.int64(t)))


# -- multipleOf -------------------------------------------------------------------------------
def check_multiple_of(col: Column, divisor: int | float) -> np.ndarray | None:
    if col.kind != NUMBER:
        return None
    x = col.values
    with np.errstate(all="ignore"):
        if isinstance(divisor, float):
            q = x / divisor
            bad = np.trunc(q) != q  # jsonschema: int(q) != q
            over = np.isinf(q)
            if over.any():  # jsonschema falls back on exact fractions when q overflows
                for i in np.flatnonzero(_nonnull(col, over)).tolist():
                    v = x[i].item()
                    bad[i] = (not math.isfinite(v)
                              or (Fraction(v) / Fraction(divisor)).denominator != 1)
        elif col.integral:
            bad = (x % divisor) != 0 if divisor <= I64_MAX else x != 0
        else:
            try:
                d = float(divisor)
            except OverflowError:
                d = math.inf
            bad = np.fmod(x, d) != 0 if math.isfinite(d) else ~np.isfinite(x) | (x != 0)
    return _nonnull(col, bad)


# -- strings ------------------------------------------------------------------------------------
def check_length(col: Column, keyword: str, limit: int) -> np.ndarray | None:
    if col.kind != STRING:
        return None
    lengths = col.lengths()
    return lengths < limit if keyword == "minLength" else lengths > limit


def check_strings(col: Column, predicate: Callable[[str], bool]) -> np.ndarray | None:
    if col.kind != STRING:
        return None
    return col.string_failures(predicate)

