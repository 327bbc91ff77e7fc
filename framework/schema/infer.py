"""Infer a row schema from a DataFrame: a starting point to edit and commit.

Every column becomes a required property; its type follows the dtype (``integer``, ``number``,
``boolean``, ``string``), with ``"null"`` added when the column has missing values. Numbers get
the observed finite ``minimum``/``maximum`` (a side with an infinity gets none); strings with at
most 20 distinct values get an ``enum``; other strings get ``format: date``/``date-time`` when every
value is one. ``additionalProperties`` is false. The table conforms to the schema inferred from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from framework.schema.columns import (
    BOOLEAN,
    CATEGORICAL,
    NULL,
    NUMBER,
    STRING,
    Column,
    column_from_series,
)
from framework.schema.formats import string_predicate
from framework.schema.loading import DRAFT_2020_12

MAX_ENUM = 20
_TYPE_ORDER = ["integer", "number", "boolean", "string", "array", "object", "null"]


def infer_schema(df: pd.DataFrame) -> dict:
    properties: dict[str, Any] = {}
    for j, label in enumerate(df.columns):
        name = label if isinstance(label, str) else str(label)
        if name not in properties:
            properties[name] = _infer_column(df.iloc[:, j])
    return {
        "$schema": DRAFT_2020_12,
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _with_null(kind: str | list[str], nullable: bool) -> str | list[str]:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    if nullable and "null" not in kinds:
        kinds.append("null")
    return kinds[0] if len(kinds) == 1 else kinds


def _infer_column(s: pd.Series) -> dict:
    col = column_from_series(s)
    if col.kind == CATEGORICAL:
        return _infer_categorical(s, col)
    nullable = col.has_null
    out: dict[str, Any] = {}
    if col.kind == NULL:
        return {"type": "null"}
    if col.kind == NUMBER:
        out["type"] = _with_null("integer" if col.integral else "number", nullable)
        out.update(_bounds(col))
    elif col.kind == BOOLEAN:
        out["type"] = _with_null("boolean", nullable)
    elif col.kind == STRING:
        out["type"] = _with_null("string", nullable)
        out.update(_string_extras(col, nullable, is_datetime=not (
            s.dtype == object or pdt.is_string_dtype(s.dtype))))
    else:
        out.update(_observed_types(col.json_values()))
    return out


def _observed_types(values: list) -> dict:
    """``{"type": ...}`` covering every value; ``{}`` when a value has no JSON type."""
    kinds = {_json_type(v) for v in values}
    if None in kinds or not kinds:
        return {}
    if "number" in kinds:
        kinds.discard("integer")
    listed = sorted(kinds, key=_TYPE_ORDER.index)
    return {"type": listed[0] if len(listed) == 1 else listed}


def _json_type(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return None  # not a JSON value (Decimal, bytes, ...): no type fits


def _bounds(col: Column) -> dict:
    x = col.values[~col.null] if col.has_null else col.values
    if not x.size:
        return {}
    if col.integral:
        return {"minimum": int(x.min()), "maximum": int(x.max())}
    low, high = float(x.min()), float(x.max())
    out = {}
    if np.isfinite(low):
        out["minimum"] = low
    if np.isfinite(high):
        out["maximum"] = high
    return out


def _distinct_strings(col: Column) -> list[str]:
    _, uniques = pd.factorize(col.strings)
    return [str(u) for u in uniques]


def _string_extras(col: Column, nullable: bool, *, is_datetime: bool) -> dict:
    distinct = _distinct_strings(col)
    if not distinct:
        return {}
    if not is_datetime and len(distinct) <= MAX_ENUM:
        return {"enum": sorted(distinct) + ([None] if nullable else [])}
    for fmt in ("date", "date-time"):
        ok = string_predicate(fmt)
        if all(ok(v) for v in distinct):
            return {"format": fmt}
    return {}


def _infer_categorical(s: pd.Series, col: Column) -> dict:
    cats = col.categories
    nullable = col.has_null
    kind = {NUMBER: "integer" if cats.integral else "number", BOOLEAN: "boolean",
            STRING: "string"}.get(cats.kind)
    out: dict[str, Any] = {}
    if kind is None:  # mixed categories
        values = cats.json_values() + ([None] if nullable else [])
        out.update(_observed_types(values))
    else:
        out["type"] = _with_null(kind, nullable)
    values = cats.json_values()
    if 0 < len(values) <= MAX_ENUM:
        out["enum"] = values + ([None] if nullable else [])
    elif cats.kind == NUMBER:
        out.update(_bounds(cats))
    return out
