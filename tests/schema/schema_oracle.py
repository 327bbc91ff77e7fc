"""The reference the engine must agree with: jsonschema, row by row, on rows converted to JSON.

Written independently of the engine's column code: each cell is read with ``Series.iloc`` and
converted on its own (NaN/None/NA/NaT -> None, numpy scalars -> Python, timestamps -> ISO text).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
from jsonschema import Draft202012Validator

from framework.schema.formats import format_checker

# rules the engine attaches to a column but jsonschema reports with an empty path (a `false`
# subschema yields its error before descend() prepends the key)
ROOT_RULES = {"required", "additionalProperties", "false"}


def json_cell(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (float, np.floating)) and math.isnan(v):
        return None
    if isinstance(v, (np.datetime64, np.timedelta64)) and np.isnat(v):
        return None
    if isinstance(v, (pd.Timestamp, dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, pd.Timedelta):
        return v.isoformat()
    if isinstance(v, np.generic):
        return json_cell(v.item())
    if isinstance(v, (list, tuple)):
        return [json_cell(x) for x in v]
    if isinstance(v, dict):
        return {k: json_cell(x) for k, x in v.items()}
    return v


def rows_as_json(df: pd.DataFrame) -> list[dict]:
    columns = [(str(c), df.iloc[:, j]) for j, c in enumerate(df.columns)]
    return [{name: json_cell(s.iloc[i]) for name, s in columns} for i in range(len(df))]


def reference_failures(df: pd.DataFrame, schema: dict) -> set[tuple[int, str | None, str]]:
    """(row, column or None, keyword) for every error jsonschema reports, row by row."""
    validator = Draft202012Validator(schema, format_checker=format_checker())
    out = set()
    for i, row in enumerate(rows_as_json(df)):
        for error in validator.iter_errors(row):
            column = error.path[0] if error.path else None
            out.add((i, column, error.validator if error.validator is not None else "false"))
    return out


def engine_failures(compiled, df: pd.DataFrame) -> set[tuple[int, str | None, str]]:
    out = set()
    for (column, rule), rows in compiled.failing_rows(df).items():
        if rule.startswith("x-"):
            continue
        key = None if rule in ROOT_RULES else column
        out.update((int(r), key, rule) for r in rows)
    return out
