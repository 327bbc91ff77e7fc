"""Compile a JSON Schema describing one table row into vectorized checks over a DataFrame.

A row is a JSON object whose keys are the DataFrame's columns (every row has every column; a
missing cell is ``null``, see :mod:`framework.schema.columns`). The verdict is the one jsonschema's
``Draft202012Validator`` (``date`` and ``date-time`` formats asserted) gives row by row; the work is
done once per column with numpy.

How a schema is compiled (:meth:`CompiledSchema.describe` prints it):

* keywords that depend on the set of keys only (``required``, ``additionalProperties: false``,
  ``minProperties``, ``propertyNames``, ...) hold for every row or for none: they are decided once;
* each column gets the subschemas that apply to it (``properties``, matching ``patternProperties``,
  else ``additionalProperties``); ``type``, ``enum``, ``const``, the numeric bounds,
  ``multipleOf``, ``minLength``, ``maxLength``, ``pattern`` and ``format`` run vectorized;
* a subschema with any other keyword jsonschema acts on (``anyOf``, ``$ref``, ``items``, ...) is
  checked value by value by jsonschema for that column alone (distinct values once); so is a column
  of mixed Python objects;
* root keywords that look at whole rows (``allOf``, ``if``, ``$ref``, ...) are checked row by row by
  jsonschema; a root ``unevaluatedProperties`` sends the whole schema row by row;
* ``x-min-rows``, ``x-max-rows``, ``x-not-null``, ``x-unique`` at the root are table-level rules;
  other ``x-`` keywords are ignored, as jsonschema ignores them.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import numpy as np
import pandas as pd

from framework.schema import checks as C
from framework.schema.columns import CATEGORICAL, OTHER, Column, column_from_series, to_json_value
from framework.schema.formats import ASSERTED_FORMATS, format_checker, string_predicate
from framework.schema.loading import validate_row_schema
from framework.schema.report import (
    MAX_EXAMPLES,
    Report,
    Violation,
    examples_phrase,
    rows_phrase,
    show,
    short,
)

VECTORIZED = frozenset({
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minLength", "maxLength", "pattern", "format",
})
# Keywords that never apply to an object: a no-op at the root, where every instance is a row
# (the root's own "type" must admit "object": validate_row_schema refuses a schema otherwise).
_ROOT_NOOP = frozenset({
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
    "maxLength", "pattern", "format", "items", "prefixItems", "contains", "minItems", "maxItems",
    "uniqueItems", "minContains", "maxContains", "unevaluatedItems",
})
_ROOT_KEYS_ONLY = frozenset({"minProperties", "maxProperties", "propertyNames", "dependentRequired"})
_ROOT_HANDLED = frozenset({"type", "properties", "patternProperties", "additionalProperties",
                           "required"})
TABLE_KEYWORDS = ("x-min-rows", "x-max-rows", "x-not-null", "x-unique")
@lru_cache(maxsize=1)
def _null1() -> Column:
    """A one-row column holding null: what a check says about a categorical's missing cells."""
    return column_from_series(pd.Series([None], dtype=object))


#: The keywords draft 2020-12 validates with (jsonschema's ``Draft202012Validator.VALIDATORS``,
#: spelled out so that compiling a schema does not import jsonschema; a test keeps them equal).
DRAFT_2020_12_KEYWORDS = frozenset({
    "$dynamicRef", "$ref", "additionalProperties", "allOf", "anyOf", "const", "contains",
    "dependentRequired", "dependentSchemas", "enum", "exclusiveMaximum", "exclusiveMinimum",
    "format", "if", "items", "maxItems", "maxLength", "maxProperties", "maximum", "minItems",
    "minLength", "minProperties", "minimum", "multipleOf", "not", "oneOf", "pattern",
    "patternProperties", "prefixItems", "properties", "propertyNames", "required", "type",
    "unevaluatedItems", "unevaluatedProperties", "uniqueItems",
})


@dataclass
class Check:
    rule: str
    expected: Any
    run: Any  # checks.CheckFn: Column -> failing rows mask, or None

    def allows_column(self, name: str) -> bool:
        """Whether a column ``name`` may appear (False: additionalProperties forbids it)."""
        return self._plans_for(name) is not None

    def describe(self) -> str:
        return f"{self.rule} {short(show(self.expected), 40)}" if self.rule != "false" else "false"


@dataclass
class ColumnPlan:
    """One subschema applied to one column: vectorized checks, or the jsonschema fallback."""

    origin: str
    schema: Any
    checks: list[Check]
    fallback: str | None
    validator: Any = field(default=None, repr=False)


@dataclass
class _Finding:
    column: str | None
    rule: str
    expected: Any
    mask: np.ndarray | None = None   # failing rows; None: every row (structural rules)
    message: str | None = None       # for rules whose message is not "N rows violate ..."
    value_cols: tuple[int, ...] = ()
    count: int | None = None         # table-level rules: the count to report


def _compile_subschema(schema: Any, origin: str) -> ColumnPlan:
    if schema is True:
        return ColumnPlan(origin, schema, [], None)
    if schema is False:
        return ColumnPlan(origin, schema, [Check("false", None, C.check_false)], None)
    other = [k for k in schema if k in DRAFT_2020_12_KEYWORDS and k not in VECTORIZED]
    if other:
        return ColumnPlan(origin, schema, [], f"{', '.join(other)} not vectorized")
    checks: list[Check] = []
    for key, value in schema.items():
        if key == "type":
            types = frozenset([value] if isinstance(value, str) else value)
            checks.append(Check(key, value, partial(C.check_type, types=types)))
        elif key == "enum":
            checks.append(Check(key, value, partial(C.check_enum, members=list(value))))
        elif key == "const":
            checks.append(Check(key, value, partial(C.check_enum, members=[value])))
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            checks.append(Check(key, value, partial(C.check_bound, keyword=key, bound=value)))
        elif key == "multipleOf":
            checks.append(Check(key, value, partial(C.check_multiple_of, divisor=value)))
        elif key in ("minLength", "maxLength"):
            checks.append(Check(key, value, partial(C.check_length, keyword=key, limit=value)))
        elif key == "pattern":
            rx = re.compile(value)
            checks.append(Check(key, value, partial(C.check_strings,
                                                    predicate=lambda s, rx=rx: bool(rx.search(s)))))
        elif key == "format" and value in ASSERTED_FORMATS:
            checks.append(Check(key, value, partial(C.check_strings,
                                                    predicate=string_predicate(value))))
    return ColumnPlan(origin, schema, checks, None)


def _rule_of(error: Any) -> str:
    return error.validator if error.validator is not None else "false"


class CompiledSchema:
    """A row schema compiled into per-column checks; :meth:`check` a DataFrame against it."""

    def __init__(self, schema: dict, *, source: str | None = None, checked: bool = False) -> None:
        validate_row_schema(schema, source=source, meta=not checked)
        schema = copy.deepcopy(schema)  # the caller may go on editing theirs
        self.schema = schema
        self.source = source
        self._root_validator: Any = None
        self.properties: dict[str, Any] = dict(schema.get("properties", {}))
        self.required: list[str] = list(schema.get("required", []))
        self._patterns = [(p, re.compile(p), s)
                          for p, s in schema.get("patternProperties", {}).items()]
        self.additional: Any = schema.get("additionalProperties", True)
        keywords = DRAFT_2020_12_KEYWORDS
        root_keys = [k for k in schema if k in keywords]
        self._full_fallback = "unevaluatedProperties" in schema
        self._key_only = [k for k in root_keys if k in _ROOT_KEYS_ONLY]
        self._row_fallback = [k for k in root_keys
                              if k not in _ROOT_HANDLED | _ROOT_KEYS_ONLY | _ROOT_NOOP]
        self.table_rules = {k: schema[k] for k in TABLE_KEYWORDS if k in schema}
        self._plans: dict[str, list[ColumnPlan] | None] = {}
        self.fallback_columns: dict[str, str] = {}
        for name in self.properties:
            for plan in self._plans_for(name) or []:
                if plan.fallback:
                    self.fallback_columns.setdefault(name, plan.fallback)
                    break

    @property
    def _validator(self) -> Any:
        """jsonschema's validator of the whole schema, made (and jsonschema imported) on first
        use: the vectorized checks never need it."""
        if self._root_validator is None:
            from jsonschema import Draft202012Validator

            self._root_validator = Draft202012Validator(self.schema,
                                                        format_checker=format_checker())
        return self._root_validator

    def _plan_validator(self, plan: ColumnPlan) -> Any:
        if plan.validator is None:
            plan.validator = self._validator.evolve(schema=plan.schema)
        return plan.validator

    # -- planning ------------------------------------------------------------------------------
    def _plans_for(self, name: str) -> list[ColumnPlan] | None:
        """The subschemas for column ``name``; None when ``additionalProperties`` forbids it."""
        if name in self._plans:
            return self._plans[name]
        schemas = []
        if name in self.properties:
            schemas.append(("properties", self.properties[name]))
        schemas += [(f"patternProperties {p!r}", s) for p, rx, s in self._patterns
                    if rx.search(name)]
        plans: list[ColumnPlan] | None
        if schemas:
            plans = [_compile_subschema(s, origin) for origin, s in schemas]
        elif self.additional is False:
            plans = None
        else:
            plans = [_compile_subschema(self.additional, "additionalProperties")]
        if len(self._plans) < 10_000:
            self._plans[name] = plans
        return plans

    def allows_column(self, name: str) -> bool:
        """Whether a column ``name`` may appear (False: additionalProperties forbids it)."""
        return self._plans_for(name) is not None

    def describe(self) -> str:
        """The compiled plan, one line per column and per table-level rule."""
        head = self.source or "schema"
        lines = [f"{head}: {len(self.properties)} columns, "
                 f"{len(self.properties) - len(self.fallback_columns)} vectorized, "
                 f"{len(self.fallback_columns)} via jsonschema"]
        width = max((len(repr(n)) for n in self.properties), default=0)
        for name in self.properties:
            parts = []
            for plan in self._plans_for(name) or []:
                if plan.fallback:
                    parts.append(f"jsonschema per value ({plan.fallback})")
                else:
                    parts.extend(c.describe() for c in plan.checks)
            lines.append(f"  {name!r:<{width}}  {'; '.join(parts) or 'anything'}")
        for p, _, s in self._patterns:
            plan = _compile_subschema(s, "")
            what = (f"jsonschema per value ({plan.fallback})" if plan.fallback
                    else "; ".join(c.describe() for c in plan.checks) or "anything")
            lines.append(f"  columns matching {p!r}: {what}")
        if self.additional is False:
            lines.append("  other columns: not allowed (additionalProperties false)")
        elif self.additional is not True:
            plan = _compile_subschema(self.additional, "")
            what = (f"jsonschema per value ({plan.fallback})" if plan.fallback
                    else "; ".join(c.describe() for c in plan.checks) or "anything")
            lines.append(f"  other columns: {what}")
        if self.required:
            lines.append(f"  required: {', '.join(map(repr, self.required))}")
        if self._full_fallback:
            lines.append("  whole rows via jsonschema (unevaluatedProperties at the root)")
        elif self._row_fallback:
            lines.append(f"  rows via jsonschema for root {', '.join(self._row_fallback)}")
        if self._key_only:
            lines.append(f"  column names: {', '.join(self._key_only)} (checked once)")
        for key, value in self.table_rules.items():
            lines.append(f"  table: {key} {json.dumps(value)}")
        return "\n".join(lines)

    # -- checking ------------------------------------------------------------------------------
    def check(self, df: pd.DataFrame) -> Report:
        """Check every row of ``df``; the report lists each (column, rule) that fails."""
        n = len(df)
        violations = []
        for f in self._evaluate(df):
            if f.count is not None:  # table-level
                violations.append(Violation(f.column, f.rule, f.count, [], [], f.message or "",
                                            f.expected))
                continue
            if f.mask is None:
                count, rows = n, []
            else:
                idx = np.flatnonzero(f.mask)
                count, rows = len(idx), idx[:MAX_EXAMPLES].tolist()
            values = [self._cell(df, r, f.value_cols) for r in rows]
            message = f.message or _message(f, count, rows, values)
            violations.append(Violation(f.column, f.rule, count, rows, values, message,
                                        f.expected))
        return Report(n, violations)

    def failing_rows(self, df: pd.DataFrame) -> dict[tuple[str | None, str], np.ndarray]:
        """Every failing row position, per (column, rule): for dropping or counting bad rows.

        Table-level rules (``x-min-rows``, ``x-max-rows``) are not row failures and are left out.
        """
        out: dict[tuple[str | None, str], np.ndarray] = {}
        for f in self._evaluate(df):
            if f.count is not None:
                continue
            rows = np.arange(len(df)) if f.mask is None else np.flatnonzero(f.mask)
            key = (f.column, f.rule)
            out[key] = np.union1d(out[key], rows) if key in out else rows
        return out

    @staticmethod
    def _cell(df: pd.DataFrame, row: int, cols: tuple[int, ...]) -> Any:
        if len(cols) == 1:
            return to_json_value(df.iat[row, cols[0]])
        return [to_json_value(df.iat[row, j]) for j in cols]

    def _evaluate(self, df: pd.DataFrame) -> list[_Finding]:
        n = len(df)
        names = [c if isinstance(c, str) else str(c) for c in df.columns]
        position: dict[str, int] = {}
        for j, name in enumerate(names):
            position.setdefault(name, j)
        found: list[_Finding] = []
        cols: dict[int, Column] = {}
        series = [s for _, s in df.items()]  # much cheaper than df.iloc[:, j] per column

        def column(j: int) -> Column:
            if j not in cols:
                cols[j] = column_from_series(series[j])
            return cols[j]

        self._table_rows(n, found)
        for name, k in Counter(names).items():
            if k > 1:
                found.append(_Finding(name, "columns", None, None, message=(
                    f"column {name!r} appears {k} times; a row cannot hold a key twice "
                    f"(only the first is checked)")))
        if self._full_fallback:
            self._rows_fallback(df, names, position, column, self.schema, found)
            self._table_columns(df, position, column, found)
            return found
        if n:
            for name in self.required:
                if name not in position:
                    found.append(_Finding(name, "required", None, None, message=(
                        f"column {name!r}: is required but absent from the table "
                        f"(all {n:,} rows)")))
            if self._key_only:
                self._keys_once(position, found)
        for name, j in position.items():
            plans = self._plans_for(name)
            if plans is None:
                if n:
                    found.append(_Finding(name, "additionalProperties", False, None, message=(
                        f"column {name!r}: not in the schema's properties and additionalProperties"
                        f" is false (all {n:,} rows)")))
                continue
            merged: dict[str, _Finding] = {}
            for plan in plans:
                if not plan.checks and not plan.fallback:
                    continue
                for rule, expected, mask in self._run_plan(plan, column(j)):
                    if rule in merged:
                        merged[rule].mask = merged[rule].mask | mask
                    else:
                        merged[rule] = _Finding(name, rule, expected, mask, value_cols=(j,))
            found.extend(merged.values())
        if self._row_fallback and n:
            subset = {k: self.schema[k] for k in self._row_fallback}
            if "if" in subset:  # then/else act through if
                subset.update({k: self.schema[k] for k in ("then", "else") if k in self.schema})
            self._rows_fallback(df, names, position, column, subset, found)
        self._table_columns(df, position, column, found)
        # group by column: table-wide findings, then columns in table order, then whole rows
        missing = [r for r in self.required if r not in position]
        order = {name: i for i, name in reversed(list(enumerate([*missing, *names])))}
        return sorted(found, key=lambda f: (
            order.get(f.column, len(order)) if f.column is not None
            else (-1 if f.mask is None or f.count is not None else len(order))))

    def _run_plan(self, plan: ColumnPlan, col: Column) -> list[tuple[str, Any, np.ndarray]]:
        if plan.fallback or col.kind == OTHER or (
                col.kind == CATEGORICAL and col.categories.kind == OTHER):
            return self._per_value(plan, col)
        out = []
        for check in plan.checks:
            if col.kind == CATEGORICAL:
                on_cats = check.run(col.categories)
                on_null = check.run(_null1())
                lut = np.zeros(col.categories.n + 1, dtype=bool)
                if on_cats is not None:
                    lut[:-1] = on_cats
                lut[-1] = on_null is not None and bool(on_null[0])
                if lut[:-1].any():
                    mask = lut[col.codes]
                else:  # only nulls can fail
                    mask = col.null if lut[-1] and col.has_null else None
            else:
                mask = check.run(col)
            if mask is not None and mask.any():
                out.append((check.rule, check.expected, mask))
        return out

    def _per_value(self, plan: ColumnPlan, col: Column) -> list[tuple[str, Any, np.ndarray]]:
        """jsonschema on each cell (each distinct hashable value once)."""
        validator = self._plan_validator(plan)
        cache: dict[tuple[type, Any], tuple[str, ...]] = {}
        hits: dict[str, list[int]] = {}
        for i, value in enumerate(col.json_values()):
            try:
                key = (value.__class__, value)
                rules = cache.get(key)
            except TypeError:  # unhashable (list, dict)
                key, rules = None, None
            if rules is None:
                try:
                    rules = tuple(dict.fromkeys(_rule_of(e) for e in validator.iter_errors(value)))
                except (ArithmeticError, ValueError, TypeError):
                    rules = ("invalid",)  # jsonschema itself fails on this value (e.g. inf)
                if key is not None and len(cache) < 100_000:
                    cache[key] = rules
            for rule in rules:
                hits.setdefault(rule, []).append(i)
        schema = plan.schema if isinstance(plan.schema, dict) else {}
        out = []
        for rule, rows in hits.items():
            mask = np.zeros(col.n, dtype=bool)
            mask[rows] = True
            out.append((rule, schema.get(rule), mask))
        return out

    def _keys_once(self, position: dict[str, int], found: list[_Finding]) -> None:
        validator = self._validator.evolve(schema={k: self.schema[k] for k in self._key_only})
        keys = dict.fromkeys(position)
        for error in validator.iter_errors(keys):
            found.append(_Finding(None, _rule_of(error), self.schema.get(error.validator), None,
                                  message=f"column names: {error.message} (all rows)"))

    def _rows_fallback(self, df, names, position, column, schema, found) -> None:
        """jsonschema on whole rows for root keywords that look across columns."""
        n = len(df)
        if not n:
            return
        validator = self._validator.evolve(schema=schema)
        keys = list(position)
        columns = [column(position[k]).json_values() for k in keys]
        hits: dict[tuple[str | None, str], list[int]] = {}
        for i, row in enumerate(zip(*columns) if columns else ([()] * n)):
            for error in validator.iter_errors(dict(zip(keys, row))):
                col = error.path[0] if error.path else None
                hits.setdefault((col, _rule_of(error)), []).append(i)
        for (col, rule), rows in hits.items():
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            cols = (position[col],) if col in position else ()
            found.append(_Finding(col, rule, None, mask, value_cols=cols))

    # -- table-level x- keywords -----------------------------------------------------------------
    def _table_rows(self, n: int, found: list[_Finding]) -> None:
        low, high = self.table_rules.get("x-min-rows"), self.table_rules.get("x-max-rows")
        if low is not None and n < low:
            found.append(_Finding(None, "x-min-rows", low, count=1, message=(
                f"table: {n:,} rows, fewer than x-min-rows {low:,}")))
        if high is not None and n > high:
            found.append(_Finding(None, "x-max-rows", high, count=1, message=(
                f"table: {n:,} rows, more than x-max-rows {high:,}")))

    def _table_columns(self, df, position, column, found) -> None:
        for name in self.table_rules.get("x-not-null", []):
            if name in position:
                col = column(position[name])
                if col.has_null:
                    found.append(_Finding(name, "x-not-null", None, col.null,
                                          value_cols=(position[name],)))
        for key in self.table_rules.get("x-unique", []):
            key = [key] if isinstance(key, str) else list(key)
            if not all(k in position for k in key):
                continue
            js = [position[k] for k in key]
            nulls = np.zeros(len(df), dtype=bool)
            for j in js:
                nulls |= column(j).null
            try:
                dup = df.iloc[:, js].duplicated(keep="first").to_numpy()
            except TypeError:  # unhashable cells (lists): compare their JSON text
                texts = [[json.dumps(v, sort_keys=True, default=str)
                          for v in column(j).json_values()] for j in js]
                dup = pd.Series(list(zip(*texts))).duplicated(keep="first").to_numpy()
            dup = dup & ~nulls
            if dup.any():
                label = key[0] if len(key) == 1 else None
                found.append(_Finding(label, "x-unique", key, dup, value_cols=tuple(js)))


def _message(f: _Finding, count: int, rows: list[int], values: list) -> str:
    """``column 'age': 3 rows violate minimum 0 (rows 4, 17, 90: -1, -3, -2)``"""
    examples = examples_phrase(rows, values, count)
    n = f"{count:,} row{'s' if count != 1 else ''}"
    if f.rule == "x-not-null":
        verb = "is" if count == 1 else "are"
        return f"column {f.column!r}: {n} {verb} null, which x-not-null forbids{examples}"
    if f.rule == "x-unique":
        where = ", ".join(map(repr, f.expected))
        where = f"column {where}" if len(f.expected) == 1 else f"columns {where}"
        verb = "repeats" if count == 1 else "repeat"
        return f"{where}: {n} {verb} the key of an earlier row (x-unique){examples}"
    where = f"column {f.column!r}" if f.column is not None else "rows"
    what = f.rule if f.expected is None else f"{f.rule} {short(show(f.expected), 60)}"
    return f"{where}: {rows_phrase(count)} {what}{examples}"
