"""Point-in-time joins: for each entity row, the latest feature values at or before its time.

DuckDB, from the Parquet files to a Parquet file, in bounded memory (DuckDB's ``memory_limit``;
beyond it the sorts spill to a temporary folder), in two phases: first each entity row's
matching feature row is found from keys and times alone (its row number in the feature file),
then the feature columns of just those rows are read in one pass. The sort then holds three
columns, not fifty: 10,000,000 feature rows x 50 columns join onto 1,000,000 entity rows in
about 6 s and 1 GB here (``benchmarks/features.py``), where one ``ASOF JOIN`` carrying every
column took 27 s and 1.7 GB.

* each feature set with a timestamp is joined with ``ASOF LEFT JOIN ... ON e.key = f.entity AND
  e.as_of >= f.timestamp``: the feature row with the greatest timestamp at or before the entity
  row's time, never a later one. A feature row at exactly the entity's time counts (it was
  known then). An entity with no feature row before its time, or none at all, gets empty cells;
* with ``max_age``, a feature row older than that at the entity's time is as good as none;
* a feature set without a timestamp (a snapshot: one row per entity) is a plain left join;
* times compare as instants: a time with a zone is converted to UTC, a time without one is
  taken as UTC (as Feast does). The entity rows keep their order and their columns, the feature
  columns follow in the order of the feature sets.

The feature sets' own entity and timestamp columns are not repeated in the output; two sources
that would give the same column name are refused before anything runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import UsageError

#: DuckDB's memory bound for one join (its sorts spill beyond it).
MEMORY_LIMIT = "1500MB"
_AGE = re.compile(r"^\s*([0-9]+)\s*(s|m|h|d|w)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: Any, *, what: str) -> int:
    """``"90s"``, ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` (or a number of seconds) → seconds."""
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return text
    m = _AGE.match(text) if isinstance(text, str) else None
    if m is None or int(m[1]) < 1:
        raise UsageError(f"{what}: expected a positive age such as 90s, 30m, 12h, 7d or 2w; "
                         f"found {text!r}")
    return int(m[1]) * _SECONDS[m[2]]


@dataclass(frozen=True)
class Source:
    """One feature set in a join."""

    label: str  # NAME@VERSION, for messages
    path: str  # its Parquet file
    entity: str  # its entity column
    timestamp: str | None  # its time column (None: a snapshot)
    columns: tuple[str, ...]  # the feature columns it adds
    max_age_s: int | None = None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def output_columns(entity_columns: Sequence[str], sources: Sequence[Source]) -> list[str]:
    """The join's columns; a clash between two sources is a :class:`UsageError` naming both."""
    owner = {c: "the entity table" for c in entity_columns}
    for s in sources:
        for c in s.columns:
            if c in owner:
                raise UsageError(f"column {c!r} comes from both {owner[c]} and feature set "
                                 f"{s.label}: drop or rename it in one of them")
            owner[c] = f"feature set {s.label}"
    return list(owner)


def point_in_time_join(entities: str | os.PathLike[str], *, on: str, as_of: str | None,
                       sources: Sequence[Source], out: str | os.PathLike[str],
                       memory_limit: str = MEMORY_LIMIT, threads: int | None = None,
                       temp_dir: str | os.PathLike[str] | None = None) -> int:
    """Join ``sources`` onto the rows of the Parquet file ``entities``; write ``out`` (Parquet,
    atomically); return its row count. ``as_of`` is the entity table's time column (needed when
    a source has a timestamp)."""
    import duckdb

    from framework.io import atomic_path

    out = Path(out)
    con = duckdb.connect(config={"memory_limit": memory_limit,
                                 "threads": threads or os.cpu_count() or 1,
                                 "preserve_insertion_order": False})
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # the library never prints
        if temp_dir is not None:
            con.execute(f"SET temp_directory = {_lit(str(temp_dir))}")
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_lit(str(entities))})")
        types = {r[0]: r[1] for r in described.fetchall()}
        entity_cols = list(types)
        if on not in types:
            raise UsageError(f"join: the entity table {entities} has no column {on!r} to join "
                             f"on (columns: {', '.join(entity_cols)})")
        if any(s.timestamp for s in sources):
            if as_of is None or as_of not in types:
                raise UsageError(f"join: the entity table {entities} has no time column "
                                 f"{as_of!r} (columns: {', '.join(entity_cols)})")
            if "TIMESTAMP" not in types[as_of].upper() and types[as_of].upper() != "DATE":
                raise UsageError(f"join: column {as_of!r} of {entities} holds {types[as_of]}, "
                                 "not date-times")
        output_columns(entity_cols, sources)
        entities_sql = (f"(SELECT *, file_row_number AS __row FROM read_parquet("
                        f"{_lit(str(entities))}, file_row_number = true))")
        e_time = f"CAST({_q(as_of)} AS TIMESTAMPTZ)" if as_of else None
        # Phase 1, per feature set: which feature row (its row number in its file) each entity
        # row takes, found from the keys and times alone, so the sort holds three columns
        # instead of every feature column
        for i, s in enumerate(sources):
            keys = (f"(SELECT {_q(s.entity)} AS __k, file_row_number AS __fr"
                    + (f", CAST({_q(s.timestamp)} AS TIMESTAMPTZ) AS __t" if s.timestamp else "")
                    + f" FROM read_parquet({_lit(s.path)}, file_row_number = true)) f")
            e = f"(SELECT {_q(on)} AS __k, __row{f', {e_time} AS __t' if s.timestamp else ''} " \
                f"FROM {entities_sql}) e"
            if s.timestamp:
                took = "f.__fr" if not s.max_age_s else \
                    f"CASE WHEN e.__t - f.__t <= INTERVAL {s.max_age_s} SECOND THEN f.__fr END"
                match = f"{e} ASOF LEFT JOIN {keys} ON e.__k = f.__k AND e.__t >= f.__t"
            else:
                took, match = "f.__fr", f"{e} LEFT JOIN {keys} ON e.__k = f.__k"
            con.execute(f"CREATE TEMP TABLE m{i} AS SELECT e.__row, {took} AS __fr FROM {match}")
        # Phase 2: the entity rows, with the feature columns of the rows they took (read in
        # one pass over each file, only the rows some entity row took)
        selects = [f"e.{_q(c)}" for c in entity_cols]
        joins = []
        for i, s in enumerate(sources):
            picked = ", ".join(_q(c) for c in s.columns)
            joins.append(f"JOIN m{i} ON m{i}.__row = e.__row LEFT JOIN (SELECT file_row_number "
                         f"AS __fr{(', ' + picked) if picked else ''} FROM read_parquet("
                         f"{_lit(s.path)}, file_row_number = true) WHERE file_row_number IN "
                         f"(SELECT __fr FROM m{i})) p{i} ON p{i}.__fr = m{i}.__fr")
            selects += [f"p{i}.{_q(c)}" for c in s.columns]
        query = (f"SELECT {', '.join(selects)} FROM {entities_sql} e {' '.join(joins)} "
                 "ORDER BY e.__row")
        with atomic_path(out) as tmp:
            try:
                con.execute(f"COPY ({query}) TO {_lit(str(tmp))} (FORMAT parquet)")
            except duckdb.Error as exc:
                raise UsageError(f"join onto {entities}: {str(exc).splitlines()[0]}") from None
        return int(con.execute(f"SELECT COUNT(*) FROM read_parquet({_lit(str(out))})")
                   .fetchone()[0])
    finally:
        con.close()
