"""The shared registry backend: the registry's rows in a PostgreSQL database.

``registry.url: postgresql://user[:password]@host[:port]/database`` (or
``$FRAMEWORK_REGISTRY_URL``) puts versions, aliases, history, labels and monitor runs in a
database that every clone, CI runner and server of a team reaches; the artifacts go to the store
of ``registry.artifacts`` (:mod:`framework.registry.core`). The tables are those of the SQLite
backend, and the queries the same (:class:`framework.registry.sql.SQLStore`).

* Every write is one transaction at READ COMMITTED that first takes a transaction-scoped advisory
  lock on its model (``pg_advisory_xact_lock``): writes on one model are serialised, so version
  numbers (``MAX(version) + 1``, with ``(name, version)`` as primary key) are consecutive and the
  alias compare-and-set sees the latest committed state; writes on other models run in parallel.
  A transaction the server aborts for contention (serialization failure, deadlock) is retried.
* The schema is created, or upgraded, under an advisory lock and in one transaction, so processes
  that open a fresh database at once create it exactly once; a database whose schema is newer
  than this framework knows is refused.
* Connecting has a timeout (``connect_timeout``, 5 s unless the URL says otherwise); a server that
  does not answer, a database that does not exist, or refused credentials is a
  :class:`~framework.errors.RegistryError` naming the host and the database, never a fallback to
  another registry. A connection lost in the middle of a write aborts the transaction on the
  server: nothing of it is recorded.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from framework.errors import RegistryError, UsageError
from framework.registry.sql import (SCHEMA_VERSION, TO_VERSION_4, TO_VERSION_5, SQLStore,
                                    run_migration, schema_ddl)

T = TypeVar("T")

SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT_S = 5
_RETRIES = 20
#: The advisory lock key under which the schema is created (any constant; "frmw" in ASCII).
_SCHEMA_LOCK = 0x66726D77

_TRIGGERS = (
    """CREATE OR REPLACE FUNCTION alias_history_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'alias_history is append-only'; END $$""",
    """CREATE OR REPLACE TRIGGER alias_history_no_change BEFORE UPDATE OR DELETE
        ON alias_history FOR EACH ROW EXECUTE FUNCTION alias_history_append_only()""",
)

#: Steps that take the schema from the version before to each version (the PostgreSQL backend
#: started at version 3, with the tables of :func:`~framework.registry.sql.schema_ddl`).
MIGRATIONS: dict[int, tuple[str | Callable[[Any], None], ...]] = {
    4: TO_VERSION_4, 5: TO_VERSION_5}


def is_url(text: str) -> bool:
    return text.split("://", 1)[0].lower() in SCHEMES and "://" in text


def describe(url: str) -> str:
    """``host:port/database`` of a URL, without user or password (for messages)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}/{unquote(parts.path.lstrip('/')) or '(no database)'}"


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)


class _Conn:
    """A psycopg connection that takes the ``?`` placeholders of :mod:`framework.registry.sql`."""

    _MARK = re.compile(r"\?")

    def __init__(self, conn: Any) -> None:
        self.raw = conn
        self._sql: dict[str, str] = {}

    def _translate(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = self._MARK.sub("%s", sql.replace("%", "%%"))
        return found

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.raw.execute(self._translate(sql), tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(self._translate(sql), [tuple(r) for r in rows])


class PostgresStore(SQLStore):
    """A :class:`~framework.registry.store.Store` in a PostgreSQL database."""

    _IS = "IS NOT DISTINCT FROM"

    def __init__(self, url: str, *, create: bool = True) -> None:
        try:
            import psycopg
        except ImportError:
            raise UsageError("registry.url is a PostgreSQL database, and psycopg is not "
                             "installed: pip install 'framework[postgresql]'") from None
        self._psycopg = psycopg
        self.url = url
        self.where = describe(url)
        self._lock = threading.RLock()
        self._conn = _Conn(self._connect())
        try:
            self._ensure_schema(create)
        except BaseException:
            self._conn.raw.close()
            raise

    # -- connection and schema -------------------------------------------------------------------

    def _connect(self) -> Any:
        psycopg = self._psycopg
        options = {} if "connect_timeout" in self.url else {"connect_timeout": CONNECT_TIMEOUT_S}
        try:
            return psycopg.connect(self.url, autocommit=True, application_name="framework",
                                   **options)
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise RegistryError(f"cannot reach the registry database {self.where}: {reason} "
                                f"(registry.url {redact(self.url)})") from None

    def _ensure_schema(self, create: bool) -> None:
        conn = self._conn
        with conn.raw.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            found = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
            current = 0
            if found:
                row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
                current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise self.newer_schema(current, self.where)
            if current == SCHEMA_VERSION:
                return
            if current == 0:
                if not create:
                    from framework.errors import NotRegistered

                    raise NotRegistered(f"no registry in the database {self.where} (nothing "
                                        "registered yet)")
                for stmt in (*schema_ddl("BIGSERIAL PRIMARY KEY"), *_TRIGGERS):
                    conn.execute(stmt)
                current = SCHEMA_VERSION
            for target in range(current + 1, SCHEMA_VERSION + 1):
                run_migration(conn, MIGRATIONS[target])
            conn.execute("INSERT INTO schema_version (id, version) VALUES (1, ?) "
                         "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                         (SCHEMA_VERSION,))

    def _retry(self, fn: Callable[[], T], *, write: bool) -> T:
        """Run ``fn``, again when the server aborted it for contention. A lost connection is
        opened again; a read is then retried once, a write is not (whether its commit reached the
        server is unknown; registering again is idempotent)."""
        errors = self._psycopg.errors
        transient = (errors.SerializationFailure, errors.DeadlockDetected,
                     errors.LockNotAvailable)
        reconnected = False
        for attempt in range(_RETRIES):
            try:
                return fn()
            except transient:
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(min(0.5, 0.01 * 2 ** min(attempt, 6)) * (0.5 + random.random()))
            except self._psycopg.OperationalError as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                lost = self._conn.raw.closed or self._conn.raw.broken
                if lost:
                    with self._lock:
                        self._conn = _Conn(self._connect())
                if lost and not write and not reconnected:
                    reconnected = True
                    continue
                what = ("the connection was lost: if the write reached the server it is "
                        "complete, else nothing of it was recorded; run it again"
                        if lost and write else "nothing of this operation was recorded")
                raise RegistryError(f"registry database {self.where}: {reason}; {what}") \
                    from None
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _transaction(self) -> Iterator[_Conn]:
        with self._lock, self._conn.raw.transaction():
            yield self._conn

    def _transact(self, fn: Callable[[Any], T], lock: str | None = None) -> T:
        def once() -> T:
            with self._transaction() as conn:
                if lock is not None:
                    conn.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(lock),))
                return fn(conn)
        return self._retry(once, write=True)

    def _read(self, fn: Callable[[Any], T]) -> T:
        def once() -> T:
            with self._transaction() as conn:
                return fn(conn)
        return self._retry(once, write=False)

    def _after_copy(self, conn: Any) -> None:
        for table in ("alias_history", "monitor_runs"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")

    def _integrity(self, conn: Any) -> list[str]:
        return [f"alias {name}@{alias} points at missing version {version}" for name, alias,
                version in conn.execute(
                    "SELECT a.name, a.alias, a.version FROM aliases a LEFT JOIN versions v "
                    "ON v.name = a.name AND v.version = a.version "
                    "WHERE a.version IS NOT NULL AND v.name IS NULL")]

    def close(self) -> None:
        with self._lock:
            self._conn.raw.close()
