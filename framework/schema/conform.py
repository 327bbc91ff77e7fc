"""Shape a served request to its schema: columns in schema order, lossless casts only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from framework.schema.engine import CompiledSchema

_EXACT = 2**53  # integers a float64 holds exactly


def _types(subschema: Any) -> set[str]:
    if not isinstance(subschema, dict):
        return set()
    t = subschema.get("type")
    return {t} if isinstance(t, str) else set(t or [])


def conform(df: pd.DataFrame, compiled: CompiledSchema, *, what: str = "request") -> pd.DataFrame:
    from framework.schema import violation

    position: dict[str, int] = {}
    for j, c in enumerate(df.columns):
        position.setdefault(c if isinstance(c, str) else str(c), j)
    order = [p for p in compiled.properties if p in position]
    extra = [n for n in position if n not in compiled.properties
             and compiled.allows_column(n)]
    out = pd.DataFrame({name: df.iloc[:, position[name]] for name in order + extra},
                       index=df.index)
    for name in order:
        types = _types(compiled.properties[name])
        if "number" in types and "integer" not in types:
            out[name] = _to_float(out[name])
        elif "integer" in types and "number" not in types:
            out[name] = _to_int(out[name])
    report = compiled.check(out)
    if not report.ok:
        raise violation(report, what=what, source=compiled.source)
    return out


def _to_float(s: pd.Series) -> pd.Series:
    """Integers -> float64 (nulls -> NaN) when every value is exactly representable."""
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pdt.is_bool_dtype(dtype):
        return s
    if pdt.is_integer_dtype(dtype):
        present = s.dropna()
        if len(present) and (int(present.min()) < -_EXACT or int(present.max()) > _EXACT):
            return s
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    elif dtype == object and pdt.infer_dtype(s, skipna=True) in (
            "integer", "floating", "mixed-integer-float"):
        null = s.isna().to_numpy()
        raw = s.to_numpy()
        values = np.full(len(s), np.nan)
        try:
            values[~null] = raw[~null].astype(np.float64)
        except (OverflowError, TypeError, ValueError):
            return s
        if any(isinstance(v, int) and abs(v) > _EXACT for v in raw[~null].tolist()):
            return s
    else:
        return s
    return pd.Series(values, index=s.index, name=s.name)


def _to_int(s: pd.Series) -> pd.Series:
    """Floats with integral values -> int64 (Int64 when there are nulls), only if lossless."""
    if not pdt.is_float_dtype(s.dtype):
        return s
    values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    null = np.isnan(values)
    present = values[~null]
    if not (np.isfinite(present).all() and (np.trunc(present) == present).all()
            and (np.abs(present) <= _EXACT).all()):
        return s
    ints = np.where(null, 0, values).astype(np.int64)
    if null.any():
        return pd.Series(pd.arrays.IntegerArray(ints, null), index=s.index, name=s.name)
    return pd.Series(ints, index=s.index, name=s.name)
