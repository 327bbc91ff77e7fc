"""The embedded registry backend: one SQLite file in WAL mode.

Concurrency is part of the contract: any number of processes may register into the same registry
at once, also when it does not exist yet and they all create it together.

* Schema creation runs under an exclusive file lock (``registry.lock``, where ``fcntl`` exists) and
  inside ``BEGIN IMMEDIATE`` with ``CREATE ... IF NOT EXISTS`` and a one-row ``schema_version``
  table, so it is idempotent and race-free; the WAL switch happens under the same lock.
* Every write is one ``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so two
  writers never deadlock upgrading a read lock), with a generous ``busy_timeout`` and a retry on
  top of it.
* Version numbers are ``MAX(version) + 1`` inside that transaction, with ``(name, version)`` as
  primary key: unique and consecutive.
* ``alias_history`` is append-only (triggers refuse UPDATE and DELETE).
* The schema records its version; an older registry is upgraded in one transaction, step by step
  through :data:`MIGRATIONS`, and a newer one is refused (upgrade the framework).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from framework.errors import NotRegistered, RegistryError, UsageError
from framework.registry.store import (AliasConflict, AliasMove, Label, LabelWrite, ModelVersion,
                                      MonitorRun, Store, crash_point, utc_now)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
DB_NAME = "registry.db"
LOCK_NAME = "registry.lock"
BUSY_TIMEOUT_MS = 60_000
_RETRIES = 50
T = TypeVar("T")

_DDL = (
    """CREATE TABLE IF NOT EXISTS schema_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS versions (
        name TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        sha256 TEXT NOT NULL,
        artifact TEXT NOT NULL,
        size INTEGER NOT NULL,
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
        PRIMARY KEY (name, version))""",
    """CREATE TABLE IF NOT EXISTS aliases (
        name TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (name, alias),
        FOREIGN KEY (name, version) REFERENCES versions (name, version))""",
    """CREATE TABLE IF NOT EXISTS alias_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        alias TEXT NOT NULL,
        from_version INTEGER,
        to_version INTEGER,
        actor TEXT NOT NULL,
        reason TEXT NOT NULL,
        time TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS alias_history_by_name ON alias_history (name, id)",
    "CREATE INDEX IF NOT EXISTS versions_by_sweep ON versions (sweep_id)",
    """CREATE TRIGGER IF NOT EXISTS alias_history_no_update BEFORE UPDATE ON alias_history
        BEGIN SELECT RAISE(ABORT, 'alias_history is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS alias_history_no_delete BEFORE DELETE ON alias_history
        BEGIN SELECT RAISE(ABORT, 'alias_history is append-only'); END""",
)

#: Statements that take the schema from the version before to each version, run in order.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE versions ADD COLUMN archived_at TEXT",
        "ALTER TABLE versions ADD COLUMN removed_at TEXT",
        "CREATE INDEX IF NOT EXISTS versions_by_sha ON versions (name, sha256)"),
    3: ("ALTER TABLE versions ADD COLUMN extras TEXT",
        """CREATE TABLE IF NOT EXISTS labels (
            request_id TEXT NOT NULL,
            row INTEGER NOT NULL,
            value TEXT NOT NULL,
            labelled_at TEXT NOT NULL,
            PRIMARY KEY (request_id, row))""",
        """CREATE TABLE IF NOT EXISTS monitor_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            rows INTEGER NOT NULL,
            alarm INTEGER NOT NULL,
            window TEXT NOT NULL,
            summary TEXT NOT NULL,
            retrained_version INTEGER)""",
        "CREATE INDEX IF NOT EXISTS monitor_runs_by_name ON monitor_runs (name, id)"),
}

_VERSION_COLUMNS = ("name, version, sha256, artifact, size, created_at, status, primary_metric, "
                    "direction, target, sweep_id, metrics, params, input_schema, gates, reasons, "
                    "lineage, archived_at, removed_at, extras")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (a no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: rely on SQLite's own locking and retries
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class SQLiteStore(Store):
    """A :class:`Store` in ``<root>/registry.db``."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(root)
        self.db_path = self.root / DB_NAME
        if not self.db_path.exists():
            if not create:
                raise NotRegistered(f"no registry at {self.root} (nothing registered yet)")
            self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = self._retry(self._open)

    # -- connection and schema -------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
            if self._schema_version(conn) != SCHEMA_VERSION:
                with _file_lock(self.root / LOCK_NAME):
                    self._create_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int | None:
        try:
            row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return row[0] if row else None

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                log.warning("registry %s: journal_mode stays %s (WAL unsupported here)",
                            self.db_path, mode)
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = None
            with contextlib.suppress(sqlite3.OperationalError):
                row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise RegistryError(
                    f"registry {self.root} has schema version {current}, newer than this "
                    f"framework understands ({SCHEMA_VERSION}); upgrade the framework")
            if current == 0:
                for stmt in _DDL:
                    conn.execute(stmt)
                current = 1
            for target in range(current + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[target]:
                    conn.execute(stmt)
            conn.execute("INSERT INTO schema_version (id, version) VALUES (1, ?) "
                         "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                         (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying when SQLite stays busy beyond its own timeout."""
        for attempt in range(_RETRIES):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt == _RETRIES - 1:
                    raise RegistryError(f"registry {self.db_path}: {exc}") from exc
                time.sleep(min(0.5, 0.01 * 2 ** min(attempt, 6)) * (0.5 + random.random()))
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _transact(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def once() -> T:
            with self._lock, self._write() as conn:
                return fn(conn)
        return self._retry(once)

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def once() -> T:
            with self._lock:
                conn = self._conn
                conn.execute("BEGIN")
                try:
                    return fn(conn)
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
        return self._retry(once)

    # -- writes ----------------------------------------------------------------------------------

    @staticmethod
    def _current(conn: sqlite3.Connection, name: str, alias: str) -> int | None:
        row = conn.execute("SELECT version FROM aliases WHERE name = ? AND alias = ?",
                           (name, alias)).fetchone()
        return row[0] if row else None

    @staticmethod
    def _cas(conn: sqlite3.Connection, name: str, alias: str, to_version: int,
             expected: int | None, actor: str, reason: str, now: str) -> AliasMove:
        cur = conn.execute(
            "UPDATE aliases SET version = ?, updated_at = ? "
            "WHERE name = ? AND alias = ? AND version IS ?",
            (to_version, now, name, alias, expected))
        if cur.rowcount == 0:
            if expected is not None:
                raise AliasConflict(name, alias, expected,
                                    SQLiteStore._current(conn, name, alias))
            cur = conn.execute("INSERT OR IGNORE INTO aliases (name, alias, version, updated_at) "
                               "VALUES (?, ?, ?, ?)", (name, alias, to_version, now))
            if cur.rowcount == 0:
                raise AliasConflict(name, alias, expected, SQLiteStore._current(conn, name, alias))
        hid = conn.execute(
            "INSERT INTO alias_history (name, alias, from_version, to_version, actor, reason, time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, alias, expected, to_version, actor, reason, now)).lastrowid
        return AliasMove(name, alias, expected, to_version, actor, reason, now, hid)

    def add_version(self, version: ModelVersion, *, alias: str, expected: int | None,
                    move: bool, actor: str, reason: str) -> tuple[ModelVersion, AliasMove | None]:
        v = version

        def tx(conn: sqlite3.Connection) -> tuple[ModelVersion, AliasMove | None]:
            current = self._current(conn, v.name, alias)
            if current != expected:
                raise AliasConflict(v.name, alias, expected, current)
            number = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM versions "
                                  "WHERE name = ?", (v.name,)).fetchone()[0]
            conn.execute(
                f"INSERT INTO versions ({_VERSION_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (v.name, number, v.sha256, v.artifact_path, v.size, v.created_at, v.status,
                 v.primary_metric, v.direction, v.target, v.sweep_id, _dumps(v.metrics),
                 _dumps(v.params), None if v.input_schema is None else _dumps(v.input_schema),
                 _dumps(v.gates), _dumps(v.reasons), _dumps(v.lineage), None, None,
                 _dumps(v.extras) if v.extras else None))
            crash_point("in-transaction")
            done = None
            if move:
                done = self._cas(conn, v.name, alias, number, expected, actor, reason, utc_now())
            aliases = (alias,) if move else ()
            return replace(v, version=number, aliases=aliases), done

        return self._transact(tx)

    def decide(self, name: str, version: int, *, status: str, gates: list[dict[str, Any]],
               reasons: list[str], alias: str, expected: int | None, move: bool, actor: str,
               reason: str) -> AliasMove | None:
        def tx(conn: sqlite3.Connection) -> AliasMove | None:
            current = self._current(conn, name, alias)
            if current != expected:
                raise AliasConflict(name, alias, expected, current)
            cur = conn.execute("UPDATE versions SET status = ?, gates = ?, reasons = ? "
                               "WHERE name = ? AND version = ? AND status = 'candidate'",
                               (status, _dumps(gates), _dumps(reasons), name, version))
            if cur.rowcount != 1:
                raise RegistryError(f"{name} v{version} is not a candidate awaiting a decision")
            if move:
                return self._cas(conn, name, alias, version, expected, actor, reason, utc_now())
            return None

        return self._transact(tx)

    def find_versions(self, name: str, sha256: str) -> list[ModelVersion]:
        def q(conn: sqlite3.Connection) -> list[ModelVersion]:
            by_version = self._aliases_by_version(conn, name)
            rows = conn.execute(f"SELECT {_VERSION_COLUMNS} FROM versions WHERE name = ? AND "
                                "sha256 = ? ORDER BY version", (name, sha256)).fetchall()
            return [self._row_to_version(r, by_version.get(r[1], ())) for r in rows]
        return self._read(q)

    def set_archived(self, name: str, versions: list[int], when: str | None) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            held = self._aliases_by_version(conn, name)
            for v in versions:
                if v in held:
                    raise UsageError(f"{name} v{v} holds the alias(es) "
                                        f"{', '.join(held[v])}: move them first (registry "
                                        "promote), then archive it")
            conn.executemany("UPDATE versions SET archived_at = ? WHERE name = ? AND version = ?",
                             [(when, name, v) for v in versions])

        self._transact(tx)

    def mark_removed(self, name: str, version: int, when: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE versions SET removed_at = ? WHERE name = ? AND version = ? AND "
                         "archived_at IS NOT NULL", (when, name, version))

        self._transact(tx)

    def move_alias(self, name: str, alias: str, to_version: int, *, expected: int | None,
                   actor: str, reason: str) -> AliasMove:
        def tx(conn: sqlite3.Connection) -> AliasMove:
            exists = conn.execute("SELECT 1 FROM versions WHERE name = ? AND version = ?",
                                  (name, to_version)).fetchone()
            if not exists:
                raise NotRegistered(f"{name} has no version {to_version}")
            return self._cas(conn, name, alias, to_version, expected, actor, reason, utc_now())

        return self._transact(tx)

    def set_extras(self, name: str, version: int, extras: dict[str, dict[str, Any]]) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT extras FROM versions WHERE name = ? AND version = ?",
                               (name, version)).fetchone()
            if row is None:
                raise NotRegistered(f"{name} has no version {version}")
            merged = {**extras, **(json.loads(row[0]) if row[0] else {})}
            conn.execute("UPDATE versions SET extras = ? WHERE name = ? AND version = ?",
                         (_dumps(merged), name, version))

        self._transact(tx)

    def put_labels(self, labels: list[Label], when: str) -> LabelWrite:
        def tx(conn: sqlite3.Connection) -> LabelWrite:
            added = changed = unchanged = 0
            for label in labels:
                value = _dumps(label.value)
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

        return self._transact(tx)

    def add_monitor_run(self, run: MonitorRun) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            return int(conn.execute(
                "INSERT INTO monitor_runs (name, version, created_at, rows, alarm, window, "
                "summary, retrained_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run.name, run.version, run.created_at, run.rows, int(run.alarm),
                 _dumps(run.window), _dumps(run.summary), run.retrained_version)).lastrowid)

        return self._transact(tx)

    def set_retrained(self, run_id: int, version: int) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE monitor_runs SET retrained_version = ? WHERE id = ?",
                         (version, run_id))

        self._transact(tx)

    # -- reads -----------------------------------------------------------------------------------

    def get_labels(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Any]:
        def q(conn: sqlite3.Connection) -> dict[tuple[str, int], Any]:
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
        def q(conn: sqlite3.Connection) -> list[MonitorRun]:
            sql = ("SELECT name, version, created_at, rows, alarm, window, summary, id, "
                   "retrained_version FROM monitor_runs WHERE name = ? ORDER BY id DESC")
            args: tuple[Any, ...] = (name,)
            if limit is not None:
                sql += " LIMIT ?"
                args += (int(limit),)
            rows = conn.execute(sql, args).fetchall()
            return [MonitorRun(r[0], r[1], r[2], r[3], bool(r[4]), json.loads(r[5]),
                               json.loads(r[6]), r[7], r[8]) for r in reversed(rows)]
        return self._read(q)


    @staticmethod
    def _row_to_version(row: tuple[Any, ...], aliases: tuple[str, ...]) -> ModelVersion:
        (name, version, sha, artifact, size, created_at, status, primary_metric, direction, target,
         _sweep, metrics, params, schema, gates, reasons, lineage, archived_at, removed_at,
         extras) = row
        return ModelVersion(
            name=name, version=version, aliases=aliases, artifact_path=artifact, sha256=sha,
            metrics=json.loads(metrics), params=json.loads(params),
            input_schema=None if schema is None else json.loads(schema), target=target,
            lineage=json.loads(lineage), created_at=created_at, status=status,
            gates=json.loads(gates), reasons=json.loads(reasons), primary_metric=primary_metric,
            direction=direction, size=size, archived_at=archived_at, removed_at=removed_at,
            extras=json.loads(extras) if extras else {})

    @staticmethod
    def _aliases_by_version(conn: sqlite3.Connection, name: str) -> dict[int, tuple[str, ...]]:
        out: dict[int, list[str]] = {}
        for alias, version in conn.execute(
                "SELECT alias, version FROM aliases WHERE name = ? AND version IS NOT NULL "
                "ORDER BY alias", (name,)):
            out.setdefault(version, []).append(alias)
        return {k: tuple(v) for k, v in out.items()}

    def get_version(self, name: str, version: int) -> ModelVersion | None:
        def q(conn: sqlite3.Connection) -> ModelVersion | None:
            row = conn.execute(f"SELECT {_VERSION_COLUMNS} FROM versions "
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
        def q(conn: sqlite3.Connection) -> list[ModelVersion]:
            by_version = self._aliases_by_version(conn, name)
            rows = conn.execute(f"SELECT {_VERSION_COLUMNS} FROM versions WHERE name = ? "
                                "ORDER BY version", (name,)).fetchall()
            return [self._row_to_version(r, by_version.get(r[1], ())) for r in rows]
        return self._read(q)

    def model_names(self) -> list[str]:
        return self._read(lambda conn: [r[0] for r in conn.execute(
            "SELECT DISTINCT name FROM versions ORDER BY name")])

    def history(self, name: str) -> list[AliasMove]:
        def q(conn: sqlite3.Connection) -> list[AliasMove]:
            rows = conn.execute("SELECT name, alias, from_version, to_version, actor, reason, "
                                "time, id FROM alias_history WHERE name = ? ORDER BY id", (name,))
            return [AliasMove(*r) for r in rows]
        return self._read(q)

    def check(self) -> list[str]:
        def q(conn: sqlite3.Connection) -> list[str]:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
            problems += [f"foreign key violation in {r[0]}"
                         for r in conn.execute("PRAGMA foreign_key_check")]
            for name, count, top in conn.execute(
                    "SELECT name, COUNT(*), MAX(version) FROM versions GROUP BY name"):
                if count != top:
                    problems.append(f"{name}: versions are not 1..{top} ({count} rows)")
            return problems
        return self._read(q)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
