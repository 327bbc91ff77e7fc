"""The ``format`` values the engine asserts, shared by the vectorized path and the jsonschema path.

Only ``date`` and ``date-time`` are asserted; every other format is an annotation (ignored), as
in jsonschema without extra format packages. Both are checked here, never by whatever optional
package happens to be installed (jsonschema asserts ``date-time`` only with ``rfc3339-validator``,
which refuses leap seconds), so the verdict is the same everywhere. They follow RFC 3339 as the
official JSON-Schema-Test-Suite reads it (a test runs its cases):

* ``date``: ``YYYY-MM-DD``, ASCII digits, a real calendar day (year 0001 to 9999, as Python's
  ``datetime``);
* ``date-time``: a date, ``T`` (any case), ``hh:mm:ss`` with an optional fraction, and ``Z`` or an
  offset ``±hh:mm``; second 60 only as a leap second, at 23:59:60 UTC once the offset applied.

Patterns are anchored with ``\\A`` and ``\\Z``: ``$`` would accept a trailing newline.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from functools import lru_cache

ASSERTED_FORMATS = ("date", "date-time")

_DATE = re.compile(r"\A(\d{4})-(\d{2})-(\d{2})\Z", re.ASCII)
_DATE_TIME = re.compile(
    r"""
    \A
    (\d{4}) - (\d{2}) - (\d{2})                 # date
    T
    (\d{2}) : (\d{2}) : (\d{2})                 # time
    (?:\.\d+)?                                  # fraction
    (?: Z | ([+-]) (\d{2}) : (\d{2}) )          # offset
    \Z
    """,
    re.VERBOSE | re.ASCII,
)


def _real_day(year: int, month: int, day: int) -> bool:
    """A day of the calendar Python's ``datetime`` knows (year 1 to 9999)."""
    return year >= 1 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def is_rfc3339_date(instance: object) -> bool:
    """RFC 3339 ``full-date``; non-strings pass (formats apply to strings only)."""
    if not isinstance(instance, str):
        return True
    match = _DATE.match(instance)
    return match is not None and _real_day(*map(int, match.groups()))


def is_rfc3339_datetime(instance: object) -> bool:
    """RFC 3339 ``date-time`` (``T`` and ``Z`` in any case); non-strings pass."""
    if not isinstance(instance, str):
        return True
    match = _DATE_TIME.match(instance.upper())
    if match is None:
        return False
    year, month, day, hour, minute, second = map(int, match.groups()[:6])
    sign, off_hour, off_minute = match.group(7), match.group(8), match.group(9)
    if not _real_day(year, month, day) or hour > 23 or minute > 59 or second > 60:
        return False
    offset = 0
    if sign is not None:
        off_h, off_m = int(off_hour), int(off_minute)
        if off_h > 23 or off_m > 59:
            return False
        offset = (off_h * 60 + off_m) * (1 if sign == "+" else -1)
    if second == 60:  # a leap second: the last second of a UTC day
        return (hour * 60 + minute - offset) % (24 * 60) == 23 * 60 + 59
    return True


_PREDICATES: dict[str, Callable[[object], bool]] = {
    "date": is_rfc3339_date,
    "date-time": is_rfc3339_datetime,
}


@lru_cache(maxsize=1)
def format_checker():
    """A ``jsonschema.FormatChecker`` asserting exactly :data:`ASSERTED_FORMATS`, with these
    predicates."""
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    for name, predicate in _PREDICATES.items():
        checker.checks(name)(predicate)
    return checker


def string_predicate(fmt: str) -> Callable[[str], bool] | None:
    """``str -> bool`` for an asserted format; None otherwise."""
    return _PREDICATES.get(fmt)
