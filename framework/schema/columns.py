"""A DataFrame column seen as JSON values, in the shape the vectorized checks need.

The mapping from pandas to JSON (the same for the vectorized path, the jsonschema path and the
reference conversion in the tests):

* a missing value (``NaN``, ``None``, ``pd.NA``, ``NaT``: whatever :func:`pandas.isna` flags) is
  JSON ``null`` -- the row object has the key, with value null;
* numpy and pandas scalars become the Python value (``np.int64`` -> ``int``, ``np.float32`` ->
  ``float``, ``np.bool_`` -> ``bool``); a ``bool`` is a boolean, never a number;
* ``±inf`` stays a float: a number, not an integer, beyond every bound, a multiple of nothing;
* datetimes become ISO 8601 strings (``Timestamp.isoformat()``; naive ones carry no offset, so they
  are not RFC 3339 ``date-time``), timedeltas their ISO 8601 duration;
* a categorical cell is its category; anything else is passed to jsonschema as it is.

A :class:`Column` has one *kind* for its non-null cells: ``number`` (``values`` is int64 or
float64), ``boolean``, ``string``, ``categorical`` (codes into a :class:`Column` of categories),
``null`` (no non-null cell) or ``other`` (mixed Python objects, checked value by value).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

I64_MAX = 2**63 - 1

NUMBER, BOOLEAN, STRING, CATEGORICAL, NULL, OTHER = (
    "number", "boolean", "string", "categorical", "null", "other")


def to_json_value(value: Any) -> Any:
    """One cell as the Python value a JSON parser would give (see the module docstring)."""
    if value is None or isinstance(value, (str, bool)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [to_json_value(v) for v in value.tolist()]
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.timedelta64):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, np.generic):
        return to_json_value(value.item())
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return pd.Timedelta(value).isoformat()
    return value


class Column:
    """One column (or the categories of a categorical column) ready for checks."""

    def __init__(self, n: int, kind: str, *, values: Any = None, null: np.ndarray | None = None,
                 integral: bool = False, strings: Callable[[], pd.Series] | None = None,
                 codes: np.ndarray | None = None, categories: Column | None = None,
                 objects: list | None = None) -> None:
        self.n = n
        self.kind = kind
        self.values = values          # number: int64/float64 ndarray; boolean: bool ndarray
        self.integral = integral      # number: values are int64 (exact integers)
        self._null = null
        self._strings = strings       # string: thunk giving a Series of str (nulls as NA)
        self._string_series: pd.Series | None = None
        self.codes = codes            # categorical: codes (-1 is null)
        self.categories = categories  # categorical: a Column of the categories
        self._objects = objects       # other: JSON values, None for null
        self._has_null: bool | None = None
        self._extremes: tuple | None = None
        if null is None and (kind == BOOLEAN or (kind == NUMBER and integral)):
            self._has_null = False  # numpy bool/int columns cannot hold a missing value
        self._lengths: np.ndarray | None = None
        self._factorized: tuple[np.ndarray, list] | None = None

    # -- nulls -----------------------------------------------------------------------------
    @property
    def null(self) -> np.ndarray:
        """True where the cell is JSON null."""
        if self._null is None:
            if self.kind == NUMBER and not self.integral:
                self._null = np.isnan(self.values)
            elif self.kind == CATEGORICAL:
                self._null = self.codes < 0
            elif self.kind == NULL:
                self._null = np.ones(self.n, dtype=bool)
            else:
                self._null = np.zeros(self.n, dtype=bool)
        return self._null

    @property
    def has_null(self) -> bool:
        if self._has_null is None:
            if self.kind == NUMBER and not self.integral and self._null is None:
                self.extremes()  # x.min() is NaN iff some value is NaN
                if self._has_null is None:
                    self._has_null = False
            else:
                self._has_null = bool(self.null.any())
        return self._has_null

    def extremes(self) -> tuple:
        """(min, max) of the non-null values of a number column (NaN if there are none).

        Reductions without temporaries: cheaper than comparing every value when, as usual, every
        value is within bounds. For int columns only meaningful without masked nulls.
        """
        if self._extremes is None:
            x = self.values
            if not self.n:
                self._extremes = (np.nan, np.nan)
            elif self.integral:
                self._extremes = (x.min(), x.max())
            else:
                low = x.min()
                if np.isnan(low):  # NaN propagates: the column has nulls; skip them
                    if self._null is None:
                        self._has_null = True
                    self._extremes = (np.fmin.reduce(x), np.fmax.reduce(x))
                else:
                    self._extremes = (low, x.max())
        return self._extremes

    # -- strings ---------------------------------------------------------------------------
    @property
    def strings(self) -> pd.Series:
        if self._string_series is None:
            self._string_series = self._strings()
        return self._string_series

    def lengths(self) -> np.ndarray:
        """Code-point lengths as float64 (NaN for null)."""
        if self._lengths is None:
            self._lengths = self.strings.str.len().to_numpy(dtype=np.float64, na_value=np.nan)
        return self._lengths

    def string_failures(self, ok: Callable[[str], bool]) -> np.ndarray | None:
        """Rows whose string fails ``ok`` (evaluated once per distinct value), or None."""
        if self._factorized is None:
            codes, uniques = pd.factorize(self.strings)
            self._factorized = (codes, list(uniques))
        codes, uniques = self._factorized
        bad = np.array([not ok(u) for u in uniques] + [False], dtype=bool)
        if not bad.any():
            return None
        return bad[codes]

    # -- JSON values -----------------------------------------------------------------------
    def json_values(self) -> list:
        """Every cell as a JSON value (None for null); used by the jsonschema fallback."""
        if self.kind == OTHER:
            return self._objects
        if self.kind == NULL:
            return [None] * self.n
        if self.kind == CATEGORICAL:
            cats = self.categories.json_values() + [None]
            return [cats[c] for c in self.codes.tolist()]
        if self.kind == STRING:
            out = self.strings.to_numpy(dtype=object).tolist()
        else:
            out = self.values.tolist()
        if self.has_null:
            for i in np.flatnonzero(self.null).tolist():
                out[i] = None
        return out


def column_from_series(s: pd.Series) -> Column:
    """View a Series as a :class:`Column` (no copy for plain numpy numeric columns)."""
    dtype = s.dtype
    n = len(s)
    if isinstance(dtype, pd.CategoricalDtype):
        cats = column_from_series(pd.Series(s.cat.categories))
        codes = s.cat.codes.to_numpy()
        return Column(n, CATEGORICAL, codes=codes, categories=cats)
    if isinstance(dtype, pd.SparseDtype):
        return column_from_series(s.sparse.to_dense())
    if dtype == object:
        return _object_column(s)
    if pdt.is_bool_dtype(dtype):
        if isinstance(dtype, np.dtype):
            return Column(n, BOOLEAN, values=s.to_numpy())
        return Column(n, BOOLEAN, values=s.to_numpy(dtype=bool, na_value=False),
                      null=s.isna().to_numpy())
    if pdt.is_integer_dtype(dtype):
        return _integer_column(s)
    if pdt.is_float_dtype(dtype):
        if isinstance(dtype, np.dtype):
            values = s.to_numpy().astype(np.float64, copy=False)
        else:
            values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return Column(n, NUMBER, values=values)
    if pdt.is_string_dtype(dtype):
        null = s.isna().to_numpy()
        return Column(n, STRING, null=null, strings=lambda: s)
    if pdt.is_datetime64_any_dtype(dtype) or pdt.is_timedelta64_dtype(dtype):
        null = s.isna().to_numpy()

        def iso() -> pd.Series:
            items = s.array
            text = [None if isna else items[i].isoformat()
                    for i, isna in enumerate(null.tolist())]
            return pd.Series(text, dtype=object, index=s.index)

        return Column(n, STRING, null=null, strings=iso)
    return _other_column(s)


def _integer_column(s: pd.Series) -> Column:
    n, dtype = len(s), s.dtype
    null = None if isinstance(dtype, np.dtype) else s.isna().to_numpy()
    if pdt.is_unsigned_integer_dtype(dtype):
        raw = s.to_numpy(dtype=np.uint64, na_value=0) if null is not None else s.to_numpy()
        if raw.dtype == np.uint64 and n and raw.max() > I64_MAX:
            return _other_column(s)
        values = raw.astype(np.int64)
    elif null is not None:
        values = s.to_numpy(dtype=np.int64, na_value=0)
    else:
        values = s.to_numpy().astype(np.int64, copy=False)
    return Column(n, NUMBER, values=values, integral=True, null=null)


def _object_column(s: pd.Series) -> Column:
    n = len(s)
    inferred = pdt.infer_dtype(s, skipna=True)
    if inferred == "empty":
        return Column(n, NULL)
    null = s.isna().to_numpy()
    if inferred == "string":
        return Column(n, STRING, null=null, strings=lambda: s)
    raw = s.to_numpy()
    if inferred in ("integer", "floating", "boolean"):
        target = {"integer": np.int64, "floating": np.float64, "boolean": bool}[inferred]
        fill = {"integer": 0, "floating": np.nan, "boolean": False}[inferred]
        values = np.full(n, fill, dtype=target)
        try:
            values[~null] = raw[~null].astype(target)
        except (OverflowError, TypeError, ValueError):
            return _other_column(s)
        kind = BOOLEAN if inferred == "boolean" else NUMBER
        return Column(n, kind, values=values, integral=inferred == "integer", null=null)
    return _other_column(s)


def _other_column(s: pd.Series) -> Column:
    null = s.isna().to_numpy()
    raw = s.to_numpy(dtype=object)
    objects = [None if isna else to_json_value(v) for v, isna in zip(raw.tolist(), null.tolist())]
    return Column(len(s), OTHER, null=null, objects=objects)
