"""What a schema check found: violations grouped by column and rule, bounded in size.

A :class:`Report` is the one result of a check. It renders as aligned text for people
(:meth:`Report.format`) and as a JSON-serializable dict for ``--json`` and HTTP error bodies
(:meth:`Report.to_dict`). Its size depends on the schema, never on the number of rows: each
violation keeps a count and the first few failing rows with their values.

This module imports only the standard library.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

#: How many failing rows (and their values) a violation keeps.
MAX_EXAMPLES = 5
#: How many violations :meth:`Report.to_dict` keeps.
MAX_VIOLATIONS_IN_DICT = 100
_MAX_TEXT = 60


def short(text: str, width: int = _MAX_TEXT) -> str:
    """Cut ``text`` to ``width`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def json_safe(value: Any) -> Any:
    """A JSON-serializable, bounded stand-in for a cell value or keyword value.

    Numbers, strings, booleans and None stay as they are (strings are shortened); non-finite floats
    become the strings ``"inf"``, ``"-inf"``, ``"nan"``; anything else becomes a shortened repr.
    """
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                    ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return short(value)
    if isinstance(value, (list, tuple, dict)):
        try:
            text = json.dumps(value, allow_nan=False, default=str)
        except ValueError:
            text = repr(value)
        return short(text)
    return short(repr(value))


def show(value: Any) -> str:
    """A cell or keyword value as JSON-like text for messages: ``null``, ``"a"``, ``1.5``,
    ``inf``, ``["a", "b"]`` (shortened)."""
    if isinstance(value, float) and not math.isfinite(value):
        return json_safe(value)
    if isinstance(value, (list, tuple, dict)):
        return json_safe(value)
    value = json_safe(value)
    if isinstance(value, (str, bool)) or value is None:
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass
class Violation:
    """One rule broken by one column (``column`` is None for a table-level or whole-row rule).

    ``count`` is how many rows break the rule; ``rows`` are the first few of them (0-based
    positions) and ``values`` their cell values (a list per row for a composite ``x-unique``).
    ``expected`` is the keyword's value in the schema. When every row fails for a reason of
    shape (a required column is absent, a column is not allowed) ``rows`` and ``values`` are
    empty; for ``x-min-rows``/``x-max-rows`` ``count`` is 1 (the table).
    """

    column: str | None
    rule: str
    count: int
    rows: list[int]
    values: list
    message: str
    expected: Any = None

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "rule": self.rule,
            "expected": json_safe(self.expected),
            "count": self.count,
            "rows": list(self.rows),
            "values": [json_safe(v) for v in self.values],
            "message": self.message,
        }


@dataclass
class Report:
    """The result of checking one table against one schema."""

    n_rows: int
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        rows = f"{self.n_rows:,} row{'s' if self.n_rows != 1 else ''}"
        if self.ok:
            return f"{rows}: conforms to the schema"
        n = len(self.violations)
        return f"{rows}: {n} violation{'s' if n != 1 else ''}"

    def format(self, *, limit: int = 20) -> str:
        """Aligned, human-readable lines: a summary line, then one line per violation (at most
        ``limit``; the rest is counted on a last line). Bounded whatever the table size."""
        lines = [self.summary()]
        if self.ok:
            return lines[0]
        shown = self.violations[: max(limit, 0)]
        cells = [(short(_where(v), 32), short(_rule_text(v), 40), _count(v), _detail(v))
                 for v in shown]
        widths = [max((len(c[i]) for c in cells), default=0) for i in range(3)]
        for where, rule, count, detail in cells:
            line = f"  {where:<{widths[0]}}  {rule:<{widths[1]}}  {count:>{widths[2]}}  {detail}"
            lines.append(line.rstrip())
        if len(self.violations) > len(shown):
            lines.append(f"  … and {len(self.violations) - len(shown)} more violations")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-serializable dict, bounded in size (at most 100 violations are listed)."""
        kept = self.violations[:MAX_VIOLATIONS_IN_DICT]
        out: dict[str, Any] = {
            "ok": self.ok,
            "n_rows": self.n_rows,
            "n_violations": len(self.violations),
            "violations": [v.to_dict() for v in kept],
        }
        if len(kept) < len(self.violations):
            out["truncated"] = len(self.violations) - len(kept)
        return out

    def __str__(self) -> str:
        return self.format()


def _where(v: Violation) -> str:
    if v.column is not None:
        return repr(v.column)
    if v.rule == "x-unique" and isinstance(v.expected, list):
        return ", ".join(map(repr, v.expected))
    return "table" if v.rule.startswith("x-") else "rows"


def _rule_text(v: Violation) -> str:
    if v.expected is None or v.rule in ("x-unique", "x-not-null"):
        return v.rule
    return f"{v.rule} {short(show(v.expected), 30)}"


def _count(v: Violation) -> str:
    if not v.rows and (v.rule in ("x-min-rows", "x-max-rows") or v.count == 0):
        return ""
    return f"{v.count:,} row{'s' if v.count != 1 else ''}"


def _detail(v: Violation) -> str:
    if v.rows:
        more = ", …" if v.count > len(v.rows) else ""
        pairs = ", ".join(f"{r}: {short(show(x), 24)}" for r, x in zip(v.rows, v.values))
        return f"(rows {pairs}{more})"
    # structural rules: the message without its "column 'x': " head and "(all N rows)" tail
    text = v.message.split(": ", 1)[1] if ": " in v.message else v.message
    return short(re.sub(r" \(all [\d,]+ rows\)$", "", text), 100)


def rows_phrase(count: int) -> str:
    return f"{count:,} row{'s' if count != 1 else ''} violate{'s' if count == 1 else ''}"


def examples_phrase(rows: list[int], values: list, count: int) -> str:
    """``(rows 4, 17, 90: -1, -3, -2)`` -- the parenthesis of a one-line message."""
    if not rows:
        return ""
    more = ", …" if count > len(rows) else ""
    return (f" (rows {', '.join(map(str, rows))}{more}: "
            f"{', '.join(short(show(x), 24) for x in values)})")
