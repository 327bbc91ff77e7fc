"""JSON Schema for tables: one schema file describes a row; checks run vectorized over a DataFrame.

The same file validates a stage's input or output, a served request and a drift batch::

    schema = load_schema("schemas/features.json")
    report = check_table(df, schema)          # Report: ok, violations by column and rule
    validate(df, schema, what="stage 'split', output 'train' (data/train.parquet)")  # raises
    request = conform(request_df, schema)     # serving: columns in schema order, safe casts

Semantics: the verdict is jsonschema's (``Draft202012Validator``, formats ``date`` and
``date-time`` asserted) on each row converted to a JSON object, where

* a missing cell (NaN, None, pd.NA, NaT) is ``null``: the key is there, with value null, so
  ``{"type": ["number", "null"]}`` declares a nullable column;
* a column absent from the DataFrame is an absent key: a ``required`` violation if required,
  otherwise nothing about it is checked; a column not in ``properties`` is an extra key
  (``additionalProperties``); an empty table breaks no row rule (use ``x-min-rows``);
* ``3.0`` is an integer, ``True`` is not a number, ints and floats compare exactly (``2**53 + 1``
  is above ``9007199254740992.0``), ``±inf`` is a number beyond every bound, not an integer, a
  multiple of nothing (jsonschema itself raises on inf with a float ``multipleOf``);
* datetimes are ISO 8601 strings (a naive one has no offset, so it is not a ``date-time``);
* rows are numbered by position, from 0; column labels that are not strings are ``str()``-ed.

Table-level keywords at the root: ``x-min-rows``, ``x-max-rows``, ``x-not-null`` (columns without
nulls), ``x-unique`` (columns, or lists of columns for composite keys; rows whose key has a null are
not compared, as in SQL). Other ``x-`` keywords are ignored.

Importing this package is cheap: pandas, numpy and jsonschema are imported on first use.
See :mod:`framework.schema.engine` for how a schema is compiled and
:mod:`framework.schema.columns` for how cells map to JSON values.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from framework.errors import SchemaViolation
from framework.schema.loading import load_schema
from framework.schema.report import Report, Violation

if TYPE_CHECKING:
    import pandas as pd

    from framework.schema.engine import CompiledSchema

__all__ = [
    "CompiledSchema",
    "Report",
    "Violation",
    "check_table",
    "compile_schema",
    "conform",
    "infer_schema",
    "load_schema",
    "number_columns",
    "validate",
]

_CACHE: OrderedDict[tuple[str, str | None], CompiledSchema] = OrderedDict()
_CACHE_SIZE = 64
_CACHE_LOCK = threading.Lock()


def __getattr__(name: str) -> Any:
    if name == "CompiledSchema":
        from framework.schema.engine import CompiledSchema

        return CompiledSchema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def compile_schema(schema: dict, *, source: str | None = None,
                   checked: bool = False) -> CompiledSchema:
    """Compile a row schema (validated first; :class:`~framework.errors.SchemaError` if invalid).
    ``checked=True``: the schema passed the meta-schema check before (it comes from the
    registry), only the framework's own rules are checked again.

    Compiled schemas are memoized by content (and source), so calling this per request is cheap.
    """
    from framework.schema.engine import CompiledSchema

    try:
        key = (json.dumps(schema, allow_nan=True), source)
    except (TypeError, ValueError):
        return CompiledSchema(schema, source=source, checked=checked)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    compiled = CompiledSchema(schema, source=source, checked=checked)
    with _CACHE_LOCK:
        _CACHE[key] = compiled
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled


def _compiled(schema: dict | CompiledSchema) -> CompiledSchema:
    return schema if not isinstance(schema, dict) else compile_schema(schema)


def check_table(df: pd.DataFrame, schema: dict | CompiledSchema) -> Report:
    """Check every row of ``df`` against a row schema (a dict or a compiled schema)."""
    return _compiled(schema).check(df)


def validate(df: pd.DataFrame, schema: dict | CompiledSchema, *, what: str) -> None:
    """Raise :class:`~framework.errors.SchemaViolation` (with ``.report``) unless ``df`` conforms.

    ``what`` names the data, e.g. ``"stage 'split', output 'train' (data/train.parquet)"``; the
    message is ``what``, a colon, then the report's lines.
    """
    compiled = _compiled(schema)
    report = compiled.check(df)
    if not report.ok:
        raise violation(report, what=what, source=compiled.source)


def violation(report: Report, *, what: str, source: str | None = None) -> SchemaViolation:
    """The exception for a failed report; ``.report`` carries the :class:`Report`."""
    against = f" (schema {source})" if source else ""
    lines = report.format().split("\n")
    text = "\n".join([f"{what.rstrip(': ')}: {lines[0]}{against}", *lines[1:]])
    exc = SchemaViolation(text)
    exc.report = report  # type: ignore[attr-defined]
    return exc


def _declared_types(subschema: Any) -> set[str]:
    """The JSON types a column's subschema names (none: it says nothing of its type)."""
    t = subschema.get("type") if isinstance(subschema, dict) else None
    return {t} if isinstance(t, str) else set(t) if isinstance(t, list) else set()


def number_columns(schema: dict) -> list[str]:
    """The columns whose schema admits numbers (and null) only: where a CSV reader should read
    numbers, and keep a cell that is not one as the text it is (so that only its row fails)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    out = []
    for name, sub in (props or {}).items():
        types = _declared_types(sub)
        if types and types <= {"number", "integer", "null"} and types & {"number", "integer"}:
            out.append(name)
    return out


def typed_columns(schema: dict) -> list[str]:
    """The columns whose schema admits something besides text (and null): the ones a CSV reader
    should let pandas type; the others, and the columns the schema does not name, stay text."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    return [name for name, sub in (props or {}).items()
            if _declared_types(sub) - {"string", "null"}]


def infer_schema(df: pd.DataFrame) -> dict:
    """A row schema describing ``df`` (types, nullability, observed ranges, small enums)."""
    from framework.schema.infer import infer_schema as _infer

    return _infer(df)


def conform(df: pd.DataFrame, schema: dict | CompiledSchema, *,
            what: str = "request") -> pd.DataFrame:
    """``df`` shaped for serving: the schema's properties as columns, in schema order.

    Columns not in ``properties`` are dropped when ``additionalProperties`` is false (kept after
    the schema's columns otherwise); absent optional properties stay absent. Only lossless
    conversions are applied: integers to float for ``number`` columns, integral floats to
    integers for ``integer`` columns. Raises :class:`~framework.errors.SchemaViolation` (with
    ``.report``) when a required column is missing or a value breaks the schema.
    """
    from framework.schema.conform import conform as _conform

    return _conform(df, _compiled(schema), what=what)

