"""What monitoring keeps in the registry: companion artifacts of a version, labels, monitor runs,
and the schema migration that brought them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from framework.errors import RegistryError
from framework.registry import open_registry
from framework.registry.store import Label, MonitorRun

#: every test here runs on both backends: SQLite, and a real PostgreSQL server
pytestmark = pytest.mark.usefixtures("backend")


def test_companions_are_stored_hashed_and_checked(tmp_path: Path, model_file: Path) -> None:
    with open_registry(tmp_path / "reg") as reg:
        r = reg.register("m", model_file, metrics={"auc": 0.9},
                         companions={"profile": b'{"a":1}\n', "test_predictions": b"PAR1"})
        mv = r.version
        assert set(mv.extras) == {"profile", "test_predictions"}
        assert reg.companion(mv, "profile") == b'{"a":1}\n'
        assert reg.companion(mv, "nothing") is None
        path = reg.artifacts.path(mv.extras["profile"]["sha256"])
        path.chmod(0o644)
        path.write_bytes(b'{"a":2}\n')
        with pytest.raises(RegistryError, match="modified after registration"):
            reg.companion(reg.get("m", 1), "profile")


def test_the_same_model_registered_again_gains_the_companions_it_lacked(
        tmp_path: Path, model_file: Path) -> None:
    with open_registry(tmp_path / "reg") as reg:
        first = reg.register("m", model_file, metrics={"auc": 0.9})
        assert first.version.extras == {}
        again = reg.register("m", model_file, metrics={"auc": 0.9},
                             companions={"profile": b"p"})
        assert again.unchanged and again.version.version == 1
        assert reg.companion(reg.get("m", 1), "profile") == b"p"


def test_gc_keeps_a_profile_that_a_kept_version_shares(tmp_path: Path, model_file: Path,
                                                        fitted: Any) -> None:
    from sklearn.base import clone

    other = clone(fitted).set_params(logisticregression__C=0.5)
    from sklearn.datasets import load_breast_cancer

    ds = load_breast_cancer(as_frame=True)
    other.fit(ds.data, ds.target)
    with open_registry(tmp_path / "reg") as reg:
        reg.register("m", model_file, metrics={"auc": 0.9},
                     companions={"profile": b"shared", "test_predictions": b"one"})
        v2 = reg.register("m", other, metrics={"auc": 0.95},
                          companions={"profile": b"shared", "test_predictions": b"two"})
        reg.set_alias("m", 2, "champion")
        reg.archive("m", [1])
        freed = dict((mv.version, n) for mv, n in reg.gc())
        assert freed[1] > 0
        assert reg.companion(reg.get("m", 2), "profile") == b"shared"
        assert reg.companion(v2.version, "test_predictions") == b"two"
        one = reg.get("m", 1)
        assert not reg.artifacts.path(one.extras["test_predictions"]["sha256"]).exists()


def test_labels_are_upserted_by_request_and_row(tmp_path: Path) -> None:
    with open_registry(tmp_path / "reg") as reg:
        store = reg.store
        w = store.put_labels([Label("r1", 0, 1), Label("r2", 0, 0), Label("r3", 2, "a")], "t1")
        assert (w.added, w.changed, w.unchanged) == (3, 0, 0)
        w = store.put_labels([Label("r1", 0, 1), Label("r2", 0, 1)], "t2")
        assert (w.added, w.changed, w.unchanged) == (0, 1, 1)
        found = store.get_labels([("r1", 0), ("r2", 0), ("r3", 2), ("r3", 0), ("nope", 0)])
        assert found == {("r1", 0): 1, ("r2", 0): 1, ("r3", 2): "a"}
        many = [Label(f"id{i}", 0, i % 2) for i in range(1500)]  # past SQLite's parameter bound
        store.put_labels(many, "t3")
        assert len(store.get_labels([(f"id{i}", 0) for i in range(1500)])) == 1500


def test_monitor_runs_in_order_with_their_retrain(tmp_path: Path) -> None:
    with open_registry(tmp_path / "reg") as reg:
        ids = [reg.store.add_monitor_run(MonitorRun("m", 1, f"2026-01-0{i}", 10 * i, i == 2,
                                                    {"last": 100}, {"data_drift": {}}))
               for i in range(1, 4)]
        reg.store.set_retrained(ids[1], 2)
        runs = reg.store.monitor_runs("m")
        assert [r.id for r in runs] == ids and runs[1].retrained_version == 2
        assert [r.id for r in reg.store.monitor_runs("m", limit=2)] == ids[1:]
        assert reg.store.monitor_runs("other") == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # its own file format
def test_a_version_two_registry_is_migrated_in_place(tmp_path: Path, model_file: Path) -> None:
    from framework.registry import sqlite as backend

    root = tmp_path / "reg"
    with open_registry(root) as reg:
        reg.register("m", model_file, metrics={"auc": 0.9})
    db = root / backend.DB_NAME
    conn = sqlite3.connect(db)  # take it back to schema 2, as an older framework left it
    conn.executescript("""
        ALTER TABLE versions DROP COLUMN extras;
        DROP TABLE labels; DROP TABLE monitor_runs; DROP TABLE version_metrics;
        UPDATE schema_version SET version = 2;""")
    conn.close()
    with open_registry(root) as reg:
        mv = reg.get("m", 1)
        assert mv.extras == {} and mv.metrics == {"auc": 0.9}
        assert [v.version for v in reg.search("m", ["auc > 0.8"])] == [1]  # metrics filled in
        reg.store.put_labels([Label("r", 0, 1)], "now")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == \
        backend.SCHEMA_VERSION
    conn.close()
