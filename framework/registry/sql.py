"""The queries of a registry on a SQL database, shared by the SQLite and PostgreSQL backends.

:class:`SQLStore` implements every method of :class:`~framework.registry.store.Store` with
portable SQL (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``); a backend supplies the
connection and its transactions:

* ``_transact(fn, lock=None)`` runs ``fn(conn)`` in one write transaction, serialised with every
  other write that names the same ``lock`` (``model/<name>`` for a model's versions and aliases,
  ``labels``; SQLite: the database's one write lock; PostgreSQL: an advisory lock per name),
  retried when the database reports contention;
* ``_read(fn)`` runs ``fn(conn)`` in one read transaction;
* ``_IS``: the null-safe equality operator (``IS`` in SQLite, ``IS NOT DISTINCT FROM`` in
  PostgreSQL);
* ``_integrity(conn)``: the backend's own consistency checks, for :meth:`check`.

``conn.execute(sql, args)`` returns a cursor with ``fetchone``, ``fetchall``, ``rowcount`` and
iteration; ``conn.executemany(sql, rows)`` runs one statement per row. Both tables and columns
are the same in both backends: JSON is stored as text, times as ISO 8601 text. Each version's
finite numeric metrics are also rows of ``version_metrics`` (indexed by key and value), so that
:meth:`SQLStore.search` finds versions by a metric threshold without reading every version.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from framework.errors import NotRegistered, RegistryError, UsageError
from framework.registry.store import (AliasConflict, AliasMove, Condition, Label, LabelWrite,
                                      ModelVersion, MonitorRun, Store, crash_point, utc_now)

T = TypeVar("T")

#: The schema both backends create, and the version they record in ``schema_version``.
SCHEMA_VERSION = 5

_VERSION_METRICS = """CREATE TABLE IF NOT EXISTS version_metrics (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            key TEXT NOT NULL,
            value DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (name, version, key),
            FOREIGN KEY (name, version) REFERENCES versions (name, version))"""
_METRICS_INDEX = ("CREATE INDEX IF NOT EXISTS version_metrics_by_value "
                  "ON version_metrics (key, value, name)")
#: The feature-set catalog (:mod:`framework.features`): one row per published version of a
#: table, whose bytes are the artifact ``sha256``. A table is published once: ``(name, sha256)``
#: is unique.
_FEATURE_VERSIONS = """CREATE TABLE IF NOT EXISTS feature_versions (
            name TEXT NOT NULL,
            version INTEGER NOT NULL CHECK (version >= 1),
            sha256 TEXT NOT NULL,
            size BIGINT NOT NULL,
            rows BIGINT NOT NULL,
            entity TEXT,
            "timestamp" TEXT,
            schema TEXT NOT NULL,
            profile TEXT NOT NULL,
            lineage TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (name, version),
            UNIQUE (name, sha256))"""


def schema_ddl(serial: str) -> tuple[str, ...]:
    """The tables and indexes of schema :data:`SCHEMA_VERSION`, as a fresh registry gets them;
    ``serial`` is the backend's self-numbering id column (``INTEGER PRIMARY KEY AUTOINCREMENT``,
    ``BIGSERIAL PRIMARY KEY``). Triggers are the backend's own."""
    return (
        """CREATE TABLE IF NOT EXISTS schema_version (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS versions (
            name TEXT NOT NULL,
            version INTEGER NOT NULL CHECK (version >= 1),
            sha256 TEXT NOT NULL,
            artifact TEXT NOT NULL,
            size BIGINT NOT NULL,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL,
            primary_metric TEXT,
            direction TEXT,
            target TEXT,
            sweep_id TEXT,
            metrics TEXT NOT NULL,
            params TEXT NOT NULL,
            input_schema TEXT,
            gates TEXT NOT NULL,
            reasons TEXT NOT NULL,
            lineage TEXT NOT NULL,
            archived_at TEXT,
            removed_at TEXT,
            extras TEXT,
            PRIMARY KEY (name, version))""",
        """CREATE TABLE IF NOT EXISTS aliases (
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            version INTEGER,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (name, alias),
            FOREIGN KEY (name, version) REFERENCES versions (name, version))""",
        f"""CREATE TABLE IF NOT EXISTS alias_history (
            id {serial},
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            from_version INTEGER,
            to_version INTEGER,
            actor TEXT NOT NULL,
            reason TEXT NOT NULL,
            time TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS labels (
            request_id TEXT NOT NULL,
            row INTEGER NOT NULL,
            value TEXT NOT NULL,
            labelled_at TEXT NOT NULL,
            PRIMARY KEY (request_id, row))""",
        f"""CREATE TABLE IF NOT EXISTS monitor_runs (
            id {serial},
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            rows INTEGER NOT NULL,
            alarm INTEGER NOT NULL,
            "window" TEXT NOT NULL,
            summary TEXT NOT NULL,
            retrained_version INTEGER)""",
        "CREATE INDEX IF NOT EXISTS alias_history_by_name ON alias_history (name, id)",
        "CREATE INDEX IF NOT EXISTS versions_by_sweep ON versions (sweep_id)",
        "CREATE INDEX IF NOT EXISTS versions_by_sha ON versions (name, sha256)",
        "CREATE INDEX IF NOT EXISTS monitor_runs_by_name ON monitor_runs (name, id)",
        _VERSION_METRICS,
        _METRICS_INDEX,
        _FEATURE_VERSIONS,
    )


def metric_rows(name: str, version: int, metrics: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The ``version_metrics`` rows of a version: its finite numbers (no NaN, no booleans)."""
    return [(name, version, key, float(value)) for key, value in sorted(metrics.items())
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)]


def _fill_version_metrics(conn: Any) -> None:
    rows = [r for name, version, metrics in
            conn.execute("SELECT name, version, metrics FROM versions").fetchall()
            for r in metric_rows(name, version, json.loads(metrics))]
    if rows:
        conn.executemany("INSERT INTO version_metrics (name, version, key, value) "
                         "VALUES (?, ?, ?, ?)", rows)


#: Schema 3 to 4, on either backend: the metrics table, filled from the versions' metrics.
TO_VERSION_4: tuple[str | Callable[[Any], None], ...] = (
    _VERSION_METRICS, _METRICS_INDEX, _fill_version_metrics)


#: Schema 4 to 5, on either backend: the feature-set catalog.
TO_VERSION_5: tuple[str | Callable[[Any], None], ...] = (_FEATURE_VERSIONS,)

FEATURE_COLUMNS = ('name, version, sha256, size, rows, entity, "timestamp", schema, profile, '
                   "lineage, created_at")


def run_migration(conn: Any, steps: Sequence[str | Callable[[Any], None]]) -> None:
    """Run the statements (and functions of the connection) of one schema migration."""
    for step in steps:
        if callable(step):
            step(conn)
        else:
            conn.execute(step)


VERSION_COLUMNS = ("name, version, sha256, artifact, size, created_at, status, primary_metric, "
                   "direction, target, sweep_id, metrics, params, input_schema, gates, reasons, "
                   "lineage, archived_at, removed_at, extras")
_RUN_COLUMNS = ('name, version, created_at, rows, alarm, "window", summary, id, '
                "retrained_version")


#: Every table of a registry and its columns, in the order a copy inserts them (``registry
#: migrate``): a version before the aliases and metrics that point at it. ``dump`` orders each
#: table by its first three columns (a primary key, or an id and more).
TABLES: dict[str, str] = {
    "versions": VERSION_COLUMNS,
    "version_metrics": "name, version, key, value",
    "aliases": "name, alias, version, updated_at",
    "alias_history": "id, name, alias, from_version, to_version, actor, reason, time",
    "labels": "request_id, row, value, labelled_at",
    "monitor_runs": 'id, name, version, created_at, rows, alarm, "window", summary, '
                    "retrained_version",
    "feature_versions": FEATURE_COLUMNS,
}


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)


def _feature_row(r: Sequence[Any]) -> dict[str, Any]:
    return {"name": r[0], "version": int(r[1]), "sha256": r[2], "size": int(r[3]),
            "rows": int(r[4]), "entity": r[5], "timestamp": r[6], "schema": json.loads(r[7]),
            "profile": json.loads(r[8]), "lineage": json.loads(r[9]), "created_at": r[10]}


class SQLStore(Store):
    """Every :class:`Store` operation, on a connection the backend provides (see the module)."""

    _IS = "IS"

    # -- what a backend provides -----------------------------------------------------------------

    def _transact(self, fn: Callable[[Any], T], lock: str | None = None) -> T:
        raise NotImplementedError

    def _read(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _integrity(self, conn: Any) -> list[str]:
        raise NotImplementedError

    def _after_copy(self, conn: Any) -> None:
        """After rows were copied in with their ids (``registry migrate``): let the next ids
        follow them (PostgreSQL's sequences; SQLite needs nothing)."""

    def newer_schema(self, found: int, where: str) -> RegistryError:
        return RegistryError(f"registry {where} has schema version {found}, newer than this "
                             f"framework understands ({SCHEMA_VERSION}); upgrade the framework")

    # -- writes ----------------------------------------------------------------------------------

    def _current(self, conn: Any, name: str, alias: str) -> int | None:
        row = conn.execute("SELECT version FROM aliases WHERE name = ? AND alias = ?",
                           (name, alias)).fetchone()
        return row[0] if row else None

    def _cas(self, conn: Any, name: str, alias: str, to_version: int, expected: int | None,
             actor: str, reason: str, now: str) -> AliasMove:
        cur = conn.execute(
            "UPDATE aliases SET version = ?, updated_at = ? "
            f"WHERE name = ? AND alias = ? AND version {self._IS} ?",
            (to_version, now, name, alias, expected))
        if cur.rowcount == 0:
            if expected is not None:
                raise AliasConflict(name, alias, expected, self._current(conn, name, alias))
            cur = conn.execute("INSERT INTO aliases (name, alias, version, updated_at) "
                               "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                               (name, alias, to_version, now))
            if cur.rowcount == 0:
                raise AliasConflict(name, alias, expected, self._current(conn, name, alias))
        hid = conn.execute(
            "INSERT INTO alias_history (name, alias, from_version, to_version, actor, reason, time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (name, alias, expected, to_version, actor, reason, now)).fetchone()[0]
        return AliasMove(name, alias, expected, to_version, actor, reason, now, hid)

    def add_version(self, version: ModelVersion, *, alias: str, expected: int | None,
                    move: bool, actor: str, reason: str) -> tuple[ModelVersion, AliasMove | None]:
        v = version

        def tx(conn: Any) -> tuple[ModelVersion, AliasMove | None]:
            current = self._current(conn, v.name, alias)
            if current != expected:
                raise AliasConflict(v.name, alias, expected, current)
            number = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM versions "
                                  "WHERE name = ?", (v.name,)).fetchone()[0]
            conn.execute(
                f"INSERT INTO versions ({VERSION_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (v.name, number, v.sha256, v.artifact_path, v.size, v.created_at, v.status,
                 v.primary_metric, v.direction, v.target, v.sweep_id, dumps(v.metrics),
                 dumps(v.params), None if v.input_schema is None else dumps(v.input_schema),
                 dumps(v.gates), dumps(v.reasons), dumps(v.lineage), None, None,
                 dumps(v.extras) if v.extras else None))
            conn.executemany("INSERT INTO version_metrics (name, version, key, value) "
                             "VALUES (?, ?, ?, ?)", metric_rows(v.name, number, v.metrics))
            crash_point("in-transaction")
            done = None
            if move:
                done = self._cas(conn, v.name, alias, number, expected, actor, reason, utc_now())
            aliases = (alias,) if move else ()
            return replace(v, version=number, aliases=aliases), done

        return self._transact(tx, f"model/{v.name}")

    def decide(self, name: str, version: int, *, status: str, gates: list[dict[str, Any]],
               reasons: list[str], alias: str, expected: int | None, move: bool, actor: str,
               reason: str) -> AliasMove | None:
        def tx(conn: Any) -> AliasMove | None:
            current = self._current(conn, name, alias)
            if current != expected:
                raise AliasConflict(name, alias, expected, current)
            cur = conn.execute("UPDATE versions SET status = ?, gates = ?, reasons = ? "
                               "WHERE name = ? AND version = ? AND status = 'candidate'",
                               (status, dumps(gates), dumps(reasons), name, version))
            if cur.rowcount != 1:
                raise RegistryError(f"{name} v{version} is not a candidate awaiting a decision")
            if move:
                return self._cas(conn, name, alias, version, expected, actor, reason, utc_now())
            return None

        return self._transact(tx, f"model/{name}")

    def set_archived(self, name: str, versions: list[int], when: str | None) -> None:
        def tx(conn: Any) -> None:
            held = self._aliases_by_version(conn, name)
            for v in versions:
                if v in held:
                    raise UsageError(f"{name} v{v} holds the alias(es) "
                                     f"{', '.join(held[v])}: move them first (registry "
                                     "promote), then archive it")
            conn.executemany("UPDATE versions SET archived_at = ? WHERE name = ? AND version = ?",
                             [(when, name, v) for v in versions])

        self._transact(tx, f"model/{name}")

    def mark_removed(self, name: str, version: int, when: str) -> None:
        def tx(conn: Any) -> None:
            conn.execute("UPDATE versions SET removed_at = ? WHERE name = ? AND version = ? AND "
                         "archived_at IS NOT NULL", (when, name, version))

        self._transact(tx, f"model/{name}")

    def move_alias(self, name: str, alias: str, to_version: int, *, expected: int | None,
                   actor: str, reason: str) -> AliasMove:
        def tx(conn: Any) -> AliasMove:
            exists = conn.execute("SELECT 1 FROM versions WHERE name = ? AND version = ?",
                                  (name, to_version)).fetchone()
            if not exists:
                raise NotRegistered(f"{name} has no version {to_version}")
            return self._cas(conn, name, alias, to_version, expected, actor, reason, utc_now())

        return self._transact(tx, f"model/{name}")

    def set_extras(self, name: str, version: int, extras: dict[str, dict[str, Any]]) -> None:
        def tx(conn: Any) -> None:
            row = conn.execute("SELECT extras FROM versions WHERE name = ? AND version = ?",
                               (name, version)).fetchone()
            if row is None:
                raise NotRegistered(f"{name} has no version {version}")
            merged = {**extras, **(json.loads(row[0]) if row[0] else {})}
            conn.execute("UPDATE versions SET extras = ? WHERE name = ? AND version = ?",
                         (dumps(merged), name, version))

        self._transact(tx, f"model/{name}")

    def put_labels(self, labels: list[Label], when: str) -> LabelWrite:
        def tx(conn: Any) -> LabelWrite:
            added = changed = unchanged = 0
            for label in labels:
                value = dumps(label.value)
                row = conn.execute("SELECT value FROM labels WHERE request_id = ? AND row = ?",
                                   (label.request_id, label.row)).fetchone()
                if row is None:
                    conn.execute("INSERT INTO labels (request_id, row, value, labelled_at) "
                                 "VALUES (?, ?, ?, ?)", (label.request_id, label.row, value, when))
                    added += 1
                elif row[0] != value:
                    conn.execute("UPDATE labels SET value = ?, labelled_at = ? "
                                 "WHERE request_id = ? AND row = ?",
                                 (value, when, label.request_id, label.row))
                    changed += 1
                else:
                    unchanged += 1
            return LabelWrite(added, changed, unchanged)

        return self._transact(tx, "labels")

    def add_monitor_run(self, run: MonitorRun) -> int:
        def tx(conn: Any) -> int:
            return int(conn.execute(
                'INSERT INTO monitor_runs (name, version, created_at, rows, alarm, "window", '
                "summary, retrained_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (run.name, run.version, run.created_at, run.rows, int(run.alarm),
                 dumps(run.window), dumps(run.summary), run.retrained_version)).fetchone()[0])

        return self._transact(tx)

    def set_retrained(self, run_id: int, version: int) -> None:
        def tx(conn: Any) -> None:
            conn.execute("UPDATE monitor_runs SET retrained_version = ? WHERE id = ?",
                         (version, run_id))

        self._transact(tx)

    def copy_rows(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        """Insert :meth:`dump` rows of another registry, ids and all, in one transaction, into
        this one, which must hold no version yet (``registry migrate``)."""
        def tx(conn: Any) -> None:
            if conn.execute("SELECT COUNT(*) FROM versions").fetchone()[0]:
                raise UsageError("the target registry already holds versions: migrate into an "
                                 "empty one")
            for table, columns in TABLES.items():
                if rows.get(table):
                    marks = ", ".join("?" * len(columns.split(",")))
                    conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                     rows[table])
            self._after_copy(conn)

        self._transact(tx, "copy")

    def add_feature_version(self, row: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Record a published table as the next version of feature set ``row["name"]``, unless
        that feature set already holds the same bytes (``sha256``): ``(version row, created)``.
        Serialised per feature set, so versions are consecutive."""
        name = row["name"]

        def tx(conn: Any) -> tuple[dict[str, Any], bool]:
            found = conn.execute(f"SELECT {FEATURE_COLUMNS} FROM feature_versions WHERE name = ? "
                                 "AND sha256 = ?", (name, row["sha256"])).fetchone()
            if found is not None:
                return _feature_row(found), False
            top = conn.execute("SELECT MAX(version) FROM feature_versions WHERE name = ?",
                               (name,)).fetchone()[0]
            new = {**row, "version": (top or 0) + 1}
            conn.execute(f"INSERT INTO feature_versions ({FEATURE_COLUMNS}) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (name, new["version"], new["sha256"], int(new["size"]),
                          int(new["rows"]), new.get("entity"), new.get("timestamp"),
                          dumps(new["schema"]), dumps(new["profile"]), dumps(new["lineage"]),
                          new["created_at"]))
            return new, True

        return self._transact(tx, f"features/{name}")

    def feature_versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every version of feature set ``name`` (of every feature set when None), in order."""
        def q(conn: Any) -> list[dict[str, Any]]:
            if name is None:
                rows = conn.execute(f"SELECT {FEATURE_COLUMNS} FROM feature_versions "
                                    "ORDER BY name, version").fetchall()
            else:
                rows = conn.execute(f"SELECT {FEATURE_COLUMNS} FROM feature_versions WHERE "
                                    "name = ? ORDER BY version", (name,)).fetchall()
            return [_feature_row(r) for r in rows]
        return self._read(q)

    # -- reads -----------------------------------------------------------------------------------

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, in a stable order, as plain tuples."""
        def q(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
            out = {}
            for table, columns in TABLES.items():
                key = ", ".join(c.strip() for c in columns.split(",")[:3])
                out[table] = [tuple(r) for r in conn.execute(
                    f"SELECT {columns} FROM {table} ORDER BY {key}").fetchall()]
            return out
        return self._read(q)

    def find_versions(self, name: str, sha256: str) -> list[ModelVersion]:
        def q(conn: Any) -> list[ModelVersion]:
            by_version = self._aliases_by_version(conn, name)
            rows = conn.execute(f"SELECT {VERSION_COLUMNS} FROM versions WHERE name = ? AND "
                                "sha256 = ? ORDER BY version", (name, sha256)).fetchall()
            return [self._row_to_version(r, by_version.get(r[1], ())) for r in rows]
        return self._read(q)

    def get_labels(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Any]:
        def q(conn: Any) -> dict[tuple[str, int], Any]:
            found: dict[tuple[str, int], Any] = {}
            ids = sorted({rid for rid, _ in keys})
            wanted = set(keys)
            for start in range(0, len(ids), 500):  # SQLite's bound on host parameters
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for rid, row, value in conn.execute(
                        f"SELECT request_id, row, value FROM labels WHERE request_id IN ({marks})",
                        chunk):
                    if (rid, row) in wanted:
                        found[(rid, row)] = json.loads(value)
            return found
        return self._read(q)

    def monitor_runs(self, name: str, *, limit: int | None = None) -> list[MonitorRun]:
        def q(conn: Any) -> list[MonitorRun]:
            sql = f"SELECT {_RUN_COLUMNS} FROM monitor_runs WHERE name = ? ORDER BY id DESC"
            args: tuple[Any, ...] = (name,)
            if limit is not None:
                sql += " LIMIT ?"
                args += (int(limit),)
            rows = conn.execute(sql, args).fetchall()
            return [MonitorRun(r[0], r[1], r[2], r[3], bool(r[4]), json.loads(r[5]),
                               json.loads(r[6]), r[7], r[8]) for r in reversed(rows)]
        return self._read(q)

    @staticmethod
    def _row_to_version(row: tuple[Any, ...], aliases: tuple[str, ...],
                        artifact_root: str = "") -> ModelVersion:
        (name, version, sha, artifact, size, created_at, status, primary_metric, direction, target,
         _sweep, metrics, params, schema, gates, reasons, lineage, archived_at, removed_at,
         extras) = row
        return ModelVersion(
            name=name, version=version, aliases=aliases,
            artifact_path=os.path.join(artifact_root, artifact) if artifact_root else artifact,
            sha256=sha,
            metrics=json.loads(metrics), params=json.loads(params),
            input_schema=None if schema is None else json.loads(schema), target=target,
            lineage=json.loads(lineage), created_at=created_at, status=status,
            gates=json.loads(gates), reasons=json.loads(reasons), primary_metric=primary_metric,
            direction=direction, size=size, archived_at=archived_at, removed_at=removed_at,
            extras=json.loads(extras) if extras else {})

    @staticmethod
    def _aliases_by_version(conn: Any, name: str) -> dict[int, tuple[str, ...]]:
        out: dict[int, list[str]] = {}
        for alias, version in conn.execute(
                "SELECT alias, version FROM aliases WHERE name = ? AND version IS NOT NULL "
                "ORDER BY alias", (name,)):
            out.setdefault(version, []).append(alias)
        return {k: tuple(v) for k, v in out.items()}

    def search(self, name: str | None, where: Sequence[Condition], *, status: str | None = None,
               archived: bool = False, order_by: str | None = None, descending: bool = True,
               limit: int | None = None, artifact_root: str = "") -> list[ModelVersion]:
        joins, args, filters = [], [], []
        for i, cond in enumerate(where):
            joins.append(f"JOIN version_metrics m{i} ON m{i}.name = v.name AND "
                         f"m{i}.version = v.version AND m{i}.key = ? AND m{i}.value {cond.op} ?")
            args += [cond.key, cond.value]
        order = "v.name, v.version"
        if order_by is not None:
            joins.append("LEFT JOIN version_metrics o ON o.name = v.name AND "
                         "o.version = v.version AND o.key = ?")
            args.append(order_by)
            order = f"o.value {'DESC' if descending else 'ASC'} NULLS LAST, {order}"
        if name is not None:
            filters.append("v.name = ?")
            args.append(name)
        if status is not None:
            filters.append("v.status = ?")
            args.append(status)
        if not archived:
            filters.append("v.archived_at IS NULL")
        columns = ", ".join(f"v.{c.strip()}" for c in VERSION_COLUMNS.split(","))
        sql = (f"SELECT {columns} FROM versions v {' '.join(joins)}"
               + (f" WHERE {' AND '.join(filters)}" if filters else "") + f" ORDER BY {order}")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))

        def q(conn: Any) -> list[ModelVersion]:
            rows = conn.execute(sql, args).fetchall()
            held: dict[tuple[str, int], list[str]] = {}
            for n, alias, version in conn.execute(
                    "SELECT name, alias, version FROM aliases WHERE version IS NOT NULL "
                    "ORDER BY alias"):
                held.setdefault((n, version), []).append(alias)
            return [self._row_to_version(r, tuple(held.get((r[0], r[1]), ())), artifact_root)
                    for r in rows]
        return self._read(q)

    def metric_keys(self, name: str | None) -> list[str]:
        if name is None:
            sql, args = "SELECT DISTINCT key FROM version_metrics ORDER BY key", ()
        else:
            sql = "SELECT DISTINCT key FROM version_metrics WHERE name = ? ORDER BY key"
            args = (name,)
        return self._read(lambda conn: [r[0] for r in conn.execute(sql, args)])

    def get_version(self, name: str, version: int) -> ModelVersion | None:
        def q(conn: Any) -> ModelVersion | None:
            row = conn.execute(f"SELECT {VERSION_COLUMNS} FROM versions "
                               "WHERE name = ? AND version = ?", (name, version)).fetchone()
            if row is None:
                return None
            return self._row_to_version(row, self._aliases_by_version(conn, name).get(version, ()))
        return self._read(q)

    def latest_version(self, name: str) -> int | None:
        return self._read(lambda conn: conn.execute(
            "SELECT MAX(version) FROM versions WHERE name = ?", (name,)).fetchone()[0])

    def alias_version(self, name: str, alias: str) -> int | None:
        return self._read(lambda conn: self._current(conn, name, alias))

    def aliases(self, name: str) -> dict[str, int]:
        return self._read(lambda conn: dict(conn.execute(
            "SELECT alias, version FROM aliases WHERE name = ? AND version IS NOT NULL "
            "ORDER BY alias", (name,)).fetchall()))

    def versions(self, name: str) -> list[ModelVersion]:
        def q(conn: Any) -> list[ModelVersion]:
            by_version = self._aliases_by_version(conn, name)
            rows = conn.execute(f"SELECT {VERSION_COLUMNS} FROM versions WHERE name = ? "
                                "ORDER BY version", (name,)).fetchall()
            return [self._row_to_version(r, by_version.get(r[1], ())) for r in rows]
        return self._read(q)

    def model_names(self) -> list[str]:
        return self._read(lambda conn: [r[0] for r in conn.execute(
            "SELECT DISTINCT name FROM versions ORDER BY name")])

    def history(self, name: str) -> list[AliasMove]:
        def q(conn: Any) -> list[AliasMove]:
            rows = conn.execute("SELECT name, alias, from_version, to_version, actor, reason, "
                                "time, id FROM alias_history WHERE name = ? ORDER BY id", (name,))
            return [AliasMove(*r) for r in rows]
        return self._read(q)

    def check(self) -> list[str]:
        def q(conn: Any) -> list[str]:
            problems = self._integrity(conn)
            for name, count, top in conn.execute(
                    "SELECT name, COUNT(*), MAX(version) FROM versions GROUP BY name"):
                if count != top:
                    problems.append(f"{name}: versions are not 1..{top} ({count} rows)")
            return problems
        return self._read(q)
