"""The ``format`` values the engine asserts, shared by the vectorized path and the jsonschema path.

Only ``date`` and ``date-time`` are asserted; every other format is an annotation (ignored), as
in jsonschema without extra format packages. ``date`` is jsonschema's own check. ``date-time`` is
jsonschema's check when its optional ``rfc3339-validator`` dependency is installed; otherwise
(jsonschema then silently skips ``date-time``) it is :func:`is_rfc3339_datetime`, which follows
``rfc3339-validator`` rule for rule, so the answer does not depend on what happens to be installed.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from functools import lru_cache

ASSERTED_FORMATS = ("date", "date-time")

_RFC3339 = re.compile(
    r"""
    ^
    (\d{4}) - (0[1-9]|1[0-2]) - (\d{2})     # date
    T
    (?:[01]\d|2[0123]) : [0-5]\d : [0-5]\d  # time
    (?:\.\d+)?                              # fraction
    (?: Z | [+-](?:[01]\d|2[0123]):[0-5]\d )  # offset
    $
    """,
    re.VERBOSE | re.ASCII,
)


def is_rfc3339_datetime(instance: object) -> bool:
    """RFC 3339 ``date-time`` (upper-cased first, as jsonschema does), as ``rfc3339-validator``."""
    if not isinstance(instance, str):
        return True
    match = _RFC3339.match(instance.upper())
    if match is None:
        return False
    year, month, day = map(int, match.groups())
    if not year:
        return False
    return 1 <= day <= calendar.monthrange(year, month)[1]


@lru_cache(maxsize=1)
def format_checker():
    """A ``jsonschema.FormatChecker`` asserting exactly :data:`ASSERTED_FORMATS`."""
    import jsonschema

    stock = jsonschema.FormatChecker().checkers
    checker = jsonschema.FormatChecker(formats=())
    for name in ASSERTED_FORMATS:
        func, raises = stock.get(name, (is_rfc3339_datetime, ()))
        checker.checks(name, raises=raises)(func)
    return checker


def string_predicate(fmt: str) -> Callable[[str], bool] | None:
    """``str -> bool`` for an asserted format (exceptions count as invalid); None otherwise."""
    if fmt not in ASSERTED_FORMATS:
        return None
    func, raises = format_checker().checkers[fmt]

    def check(value: str) -> bool:
        try:
            return bool(func(value))
        except raises:
            return False

    return check
