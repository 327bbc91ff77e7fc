"""A real PostgreSQL server for the tests: ``initdb`` of a cluster in a temporary folder, started
on a free port of 127.0.0.1 by ``pg_ctl``, stopped (and removed) at the end.

The server programs come from Debian's ``postgresql`` package (``/usr/lib/postgresql/<major>/bin``,
or ``$FRAMEWORK_PG_BIN``). PostgreSQL refuses to run as root: as root, the cluster belongs to the
unprivileged user ``nobody`` and its programs run as that user (``runuser``). Without the programs
the tests that need the server are skipped, unless ``$FRAMEWORK_REQUIRE_POSTGRES`` is set (as
``.ci/run`` does), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "nobody"
#: The server's superuser password: connections over TCP authenticate with it (scram-sha-256),
#: so that refused credentials can be tested too.
PASSWORD = "framework-test-secret"


def server_bin() -> Path | None:
    env = os.environ.get("FRAMEWORK_PG_BIN")
    if env:
        return Path(env)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Postgres:
    bin: Path
    data: Path
    port: int
    as_user: list[str]

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    @property
    def user(self) -> str:
        return USER if self.as_user else (os.environ.get("USER") or "postgres")

    def url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql://{self.user}:{password}@127.0.0.1:{self.port}/{database}"

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.as_user, str(self.bin / program), *args],
                              capture_output=True, text=True, timeout=120, check=True)

    def create_database(self, prefix: str = "reg") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                        "fast", "-w", "stop"], capture_output=True, timeout=60)


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """Start a throwaway cluster; stop and remove it afterwards."""
    bin_dir = server_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        if os.environ.get("FRAMEWORK_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL's server programs are not installed (apt-get install "
                        "postgresql), and $FRAMEWORK_REQUIRE_POSTGRES is set")
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="framework-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL never runs as root
        shutil.chown(root, USER)
        as_user = ["runuser", "-u", USER, "--"]
    data = root / "data"
    server = Postgres(bin_dir, data, _free_port(), as_user)
    try:
        pwfile = root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if as_user:
            shutil.chown(pwfile, USER)
        server.run("initdb", "-D", str(data), "-U", server.user, "--auth-local=trust",
                   "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                   "--no-instructions")
        options = (f"-c listen_addresses=127.0.0.1 -c port={server.port} "
                   f"-c unix_socket_directories={root} -c max_connections=200 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        server.run("pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "server.log"),
                   "-w", "-t", "60", "start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", server.port)) == 0:
                    break
            time.sleep(0.05)
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
