"""Reading a schema file and checking that it is a valid row schema (no pandas, no numpy)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from framework.errors import SchemaError, did_you_mean

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _where(source: str | None) -> str:
    return source or "schema"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def load_schema(path: str | os.PathLike) -> dict:
    """Read a JSON Schema file and check it is a valid draft 2020-12 schema for table rows."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise SchemaError(f"{source}: schema file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{source}: cannot read the schema file ({exc})") from None
    try:
        schema = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                          f"{exc.msg}") from None
    except ValueError as exc:  # NaN / Infinity
        raise SchemaError(f"{source}: invalid JSON: {exc}") from None
    validate_row_schema(schema, source=source)
    return schema


def _path(parts: Any) -> str:
    return "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in parts) or "(root)"


def validate_row_schema(schema: Any, *, source: str | None = None, meta: bool = True) -> None:
    """Raise :class:`SchemaError` unless ``schema`` is a valid draft 2020-12 schema describing an
    object (a table row), with well-formed table-level ``x-`` keywords. ``meta=False`` skips the
    check against the draft 2020-12 meta-schema (and the import of jsonschema), for a schema
    that passed it before (one stored in the registry)."""
    where = _where(source)
    if not isinstance(schema, dict):
        raise SchemaError(f"{where}: a table schema must be a JSON object describing one row, "
                          f"found {type(schema).__name__}")
    declared = schema.get("$schema")
    if declared is not None and str(declared).rstrip("#") != DRAFT_2020_12:
        raise SchemaError(f"{where}: $schema is {declared!r}; only draft 2020-12 "
                          f"({DRAFT_2020_12!r}) is supported")
    if meta:
        from jsonschema import Draft202012Validator, exceptions

        try:
            Draft202012Validator.check_schema(schema)
        except exceptions.SchemaError as exc:
            raise SchemaError(f"{where}: not a valid JSON Schema (draft 2020-12) at "
                              f"{_path(exc.absolute_path)}: {exc.message}") from None
    root_type = schema.get("type")
    types = [root_type] if isinstance(root_type, str) else (root_type or ["object"])
    if "object" not in types:
        raise SchemaError(f"{where}: a table schema describes a row, an object; its type is "
                          f"{json.dumps(root_type)} (set \"type\": \"object\")")
    _check_numbers(schema, where, [])
    _check_table_keywords(schema, where)


def _check_numbers(node: Any, where: str, path: list) -> None:
    if isinstance(node, float) and not math.isfinite(node):
        raise SchemaError(f"{where}: {_path(path)} is {node}, which is not valid JSON")
    if isinstance(node, dict):
        for k, v in node.items():
            _check_numbers(v, where, [*path, k])
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_numbers(v, where, [*path, i])


def _check_table_keywords(schema: dict, where: str) -> None:
    for key in ("x-min-rows", "x-max-rows"):
        value = schema.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise SchemaError(f"{where}: {key} must be a non-negative integer, found "
                              f"{json.dumps(value)}")
    low, high = schema.get("x-min-rows"), schema.get("x-max-rows")
    if low is not None and high is not None and low > high:
        raise SchemaError(f"{where}: x-min-rows {low} is above x-max-rows {high}")
    names: list[str] = []
    not_null = schema.get("x-not-null", [])
    if not isinstance(not_null, list) or not all(isinstance(c, str) for c in not_null):
        raise SchemaError(f"{where}: x-not-null must be a list of column names, found "
                          f"{json.dumps(not_null)}")
    names += not_null
    unique = schema.get("x-unique", [])
    ok = isinstance(unique, list) and all(
        isinstance(k, str) or (isinstance(k, list) and k and all(isinstance(c, str) for c in k))
        for k in unique)
    if not ok:
        raise SchemaError(f"{where}: x-unique must be a list whose items are column names or "
                          f"non-empty lists of column names (composite keys), found "
                          f"{json.dumps(unique)}")
    for k in unique:
        names += [k] if isinstance(k, str) else k
    properties = schema.get("properties", {})
    if schema.get("additionalProperties", True) is False and not schema.get("patternProperties"):
        for name in names:
            if name not in properties:
                hint = did_you_mean(name, properties)
                raise SchemaError(f"{where}: column {name!r} in x-not-null/x-unique is not in "
                                  f"properties, and additionalProperties is false"
                                  + (f"; {hint}" if hint else ""))
