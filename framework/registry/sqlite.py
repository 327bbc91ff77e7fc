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

The queries are those of every SQL backend (:class:`framework.registry.sql.SQLStore`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from framework.errors import NotRegistered, RegistryError
from framework.registry.sql import (SCHEMA_VERSION, TO_VERSION_4, TO_VERSION_5, SQLStore,
                                    run_migration, schema_ddl)

log = logging.getLogger(__name__)

__all__ = ["DB_NAME", "SCHEMA_VERSION", "SQLiteStore"]

DB_NAME = "registry.db"
LOCK_NAME = "registry.lock"
BUSY_TIMEOUT_MS = 60_000
_RETRIES = 50
T = TypeVar("T")

_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS alias_history_no_update BEFORE UPDATE ON alias_history
        BEGIN SELECT RAISE(ABORT, 'alias_history is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS alias_history_no_delete BEFORE DELETE ON alias_history
        BEGIN SELECT RAISE(ABORT, 'alias_history is append-only'); END""",
)

#: Statements that take an older registry file from the version before to each version, run in
#: order (a new file gets the current schema at once, :func:`framework.registry.sql.schema_ddl`).
MIGRATIONS: dict[int, tuple[str | Callable[[sqlite3.Connection], None], ...]] = {
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
    4: TO_VERSION_4,
    5: TO_VERSION_5,
}

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


class SQLiteStore(SQLStore):
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
                raise self.newer_schema(current, str(self.root))
            if current == 0:
                for stmt in (*schema_ddl("INTEGER PRIMARY KEY AUTOINCREMENT"), *_TRIGGERS):
                    conn.execute(stmt)
                current = SCHEMA_VERSION
            for target in range(current + 1, SCHEMA_VERSION + 1):
                run_migration(conn, MIGRATIONS[target])
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

    def _transact(self, fn: Callable[[sqlite3.Connection], T], lock: str | None = None) -> T:
        # one writer at a time for the whole database: every lock is the same lock
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

    def _integrity(self, conn: sqlite3.Connection) -> list[str]:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        return problems + [f"foreign key violation in {r[0]}"
                           for r in conn.execute("PRAGMA foreign_key_check")]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
