"""The shared registry on a real PostgreSQL server: what only a server backend has to get right
(the suite both backends pass is test_registry_core, _monitoring and _concurrency)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from framework.errors import RegistryError
from framework.registry import open_registry


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


@pytest.mark.parametrize("case", ["no server", "no database", "wrong password"])
def test_an_unreachable_registry_is_a_clear_error_within_seconds(
        case: str, postgres: Any, tmp_path: Path) -> None:
    url = {"no server": f"postgresql://nobody:pw@127.0.0.1:{_closed_port()}/team",
           "no database": postgres.url("does_not_exist"),
           "wrong password": postgres.url("postgres", password="not-the-password")}[case]
    start = time.monotonic()
    with pytest.raises(RegistryError) as info:
        open_registry(url)
    message = str(info.value)
    assert time.monotonic() - start < 10
    assert "cannot reach the registry database 127.0.0.1:" in message
    assert ("/team" if case == "no server" else "/does_not_exist" if case == "no database"
            else "/postgres") in message
    assert {"no server": "refused", "no database": "does_not_exist\" does not exist",
            "wrong password": "password authentication failed"}[case] in message
    assert "not-the-password" not in message and ":pw@" not in message  # never the password
    assert not (tmp_path / ".framework").exists()  # no fallback to a local registry


def test_a_registry_url_in_params_is_checked_at_compile_time(tmp_path: Path) -> None:
    from framework.errors import ConfigError
    from framework.registry.step import read_registry_config

    with pytest.raises(ConfigError, match=r"registry\.url: expected sqlite:///FOLDER or "
                                          r"postgresql://.*found 'mysql://u:\*\*\*@h/db'"):
        read_registry_config({"registry": {"model_name": "m", "url": "mysql://u:secret@h/db"}},
                             "params.yaml")


def test_migrate_copies_a_local_registry_into_a_shared_one_and_nothing_differs(
        postgres: Any, tmp_path: Path, model_file: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from framework.registry.store import Label, MonitorRun

    local = tmp_path / "local"
    with open_registry(local) as reg:
        reg.register("bc", model_file, metrics={"roc_auc": 0.97},
                     companions={"profile": b"{}"})
        reg.register("bc", model_file, metrics={"roc_auc": 0.98})
        reg.set_alias("bc", 1, "staging", reason="review")
        reg.store.put_labels([Label("r1", 0, 1), Label("r1", 1, 0)], "2026-01-01T00:00:00")
        reg.store.add_monitor_run(MonitorRun("bc", 2, "2026-01-02T00:00:00", 300, True,
                                             {"last": 300}, {"data_drift": "alarm"}))
        import pandas as pd

        from framework.features.catalog import Catalog

        pd.DataFrame({"id": [1, 2], "x": [0.5, 1.5]}).to_parquet(tmp_path / "cells.parquet")
        Catalog(reg).publish("cells", tmp_path / "cells.parquet", entity="id")
        before = reg.store.dump()
    url = postgres.create_database("migrated")
    shared = tmp_path / "shared"
    proc = subprocess.run([sys.executable, "-m", "framework", "registry", "migrate", "--registry",
                           str(local), "--to", url, "--artifacts", str(shared), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["rows"] == {"versions": 2, "version_metrics": 2, "aliases": 2,
                              "alias_history": 3, "labels": 2, "monitor_runs": 1,
                              "feature_versions": 1}
    assert report["artifacts"] == 3 and "framework-test-secret" not in proc.stdout
    os.environ["FRAMEWORK_REGISTRY_ARTIFACTS"] = str(shared)
    try:
        with open_registry(url, create=False) as reg:
            assert reg.store.dump() == before  # nothing differs, ids and times included
            assert reg.check() == []
            assert reg.resolve("bc@champion").version == 2
            assert reg.load("bc@staging") is not None  # the artifact came along, sha256 checked
            cells = Catalog(reg).resolve("cells@1")  # and the feature store's tables
            assert pd.read_parquet(Catalog(reg).path(cells))["x"].tolist() == [0.5, 1.5]
            # the next writes follow the copied ids
            reg.set_alias("bc", 2, "staging", reason="after the move")
            assert [m.id for m in reg.history("bc")] == [1, 2, 3, 4]
        again = subprocess.run([sys.executable, "-m", "framework", "registry", "migrate",
                                "--registry", str(local), "--to", url], capture_output=True,
                               text=True, timeout=120)
        assert again.returncode == 2 and "already holds versions" in again.stderr
    finally:
        del os.environ["FRAMEWORK_REGISTRY_ARTIFACTS"]


def test_a_newer_schema_in_the_database_is_refused(postgres: Any) -> None:
    import psycopg

    url = postgres.create_database()
    open_registry(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RegistryError, match=r"schema version 99, newer than this framework"):
        open_registry(url)


def test_a_version_three_database_is_upgraded_in_one_transaction(postgres: Any,
                                                                 model_file: Path) -> None:
    """Schema 3 (before the metrics table) is taken to the current one when opened: the table is
    created and filled from the versions' metrics, and the recorded version follows."""
    import psycopg

    from framework.registry.sql import SCHEMA_VERSION

    url = postgres.create_database()
    with open_registry(url) as reg:
        for auc in (0.9, 0.95, float("nan")):
            reg.register("bc", model_file, metrics={"roc_auc": auc}, params={"auc": str(auc)})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE version_metrics")
        conn.execute("UPDATE schema_version SET version = 3")
    with open_registry(url) as reg:
        assert [mv.version for mv in reg.search("bc", ["roc_auc > 0.92"])] == [2]
        assert [mv.version for mv in reg.search("bc", ["roc_auc < 1"])] == [1, 2]
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_a_dropped_connection_is_opened_again(postgres: Any, tmp_path: Path,
                                              model_file: Path) -> None:
    """A server whose connection the database dropped (a restart, a failover, an idle timeout)
    keeps answering: reads reconnect; a write says it was not confirmed."""
    import psycopg

    url = postgres.create_database()
    with open_registry(url) as reg:
        reg.register("bc", model_file, metrics={"roc_auc": 0.9})
        with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND application_name = 'framework'",
                          (url.rsplit("/", 1)[1],))
        assert reg.resolve("bc@champion").version == 1  # read again on a new connection
        with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND application_name = 'framework'",
                          (url.rsplit("/", 1)[1],))
        with pytest.raises(RegistryError, match=r"connection was lost.*run it again"):
            reg.store.move_alias("bc", "staging", 1, expected=None, actor="t", reason="")
        reg.set_alias("bc", 1, "staging")  # the next write has a connection again
        assert reg.aliases("bc") == {"champion": 1, "staging": 1}
