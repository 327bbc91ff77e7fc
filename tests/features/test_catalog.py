"""The feature-set catalog: publish once, resolve by reference, fetch checked; shared backends."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from framework.errors import NotFound, RegistryError, UsageError
from framework.features.catalog import Catalog, open_catalog, parse_ref
from framework.features.cli import schema_changes
from framework.features.pins import incompatibilities, moved_pins
from framework.features.profile import profile_table, shift
from tests.conftest import run_cli


def cells(n: int = 50, shift_by: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "sample_id": range(n),
        "measured_at": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        "radius": [10.0 + i % 7 + shift_by for i in range(n)],
        "site": [["A", "B", "C"][i % 3] for i in range(n)],
    })


def publish(cat: Catalog, frame: pd.DataFrame, folder: Path, name: str = "cells",
            **kw: Any) -> Any:
    path = folder / f"{name}-{len(list(folder.glob('*.parquet')))}.parquet"
    frame.to_parquet(path, index=False)
    return cat.publish(name, path, entity="sample_id", timestamp="measured_at",
                       lineage={"stage": "clean"}, **kw)


def test_publishing_versions_and_resolving_references(tmp_path: Path) -> None:
    with open_catalog(tmp_path / "registry", create=True) as cat:
        v1, created = publish(cat, cells(), tmp_path)
        assert created and v1.version == 1 and v1.rows == 50
        again, created = publish(cat, cells(), tmp_path)  # the same bytes: no new version
        assert not created and again == v1
        v2, created = publish(cat, cells(shift_by=5.0), tmp_path)
        assert created and v2.version == 2 and v2.sha256 != v1.sha256
        assert cat.resolve("cells") == cat.resolve("cells@latest") == v2
        assert cat.resolve("cells@1") == v1
        assert cat.resolve(f"cells@sha256:{v1.sha256[:12]}") == v1
        assert [v.version for v in cat.versions("cells")] == [1, 2]
        assert list(v2.columns) == ["sample_id", "measured_at", "radius", "site"]
        assert v2.profile["radius"]["mean"] == pytest.approx(v1.profile["radius"]["mean"] + 5)
        assert v2.profile["site"]["top"] == {"A": 17, "B": 17, "C": 16}
        # the stored file is the published bytes, checked on the way out
        path = cat.path(v1)
        assert pd.read_parquet(path).equals(cells())
        with pytest.raises(NotFound, match=r"feature set 'cells' has no version 3 \(versions "
                                           r"1 to 2\)"):
            cat.resolve("cells@3")
        with pytest.raises(NotFound, match=r"did you mean 'cells'"):
            cat.resolve("cels@latest")
        with pytest.raises(UsageError, match=r"expected NAME, NAME@latest, NAME@7"):
            parse_ref("cells@seven")
        with pytest.raises(UsageError, match=r"the pin was compiled against another registry"):
            cat.get("cells", 1, "0" * 64)
        os.chmod(path, 0o644)
        path.write_bytes(path.read_bytes()[:-4] + b"evil")
        with pytest.raises(RegistryError, match=r"modified after registration"):
            cat.path(v1)


def test_a_published_table_has_one_row_per_entity_and_time(tmp_path: Path) -> None:
    twice = pd.concat([cells(3), cells(3).tail(1)], ignore_index=True)
    with open_catalog(tmp_path / "registry", create=True) as cat:
        with pytest.raises(UsageError, match=r"2 rows share their sample_id and measured_at "
                                             r"\(first: sample_id=2"):
            publish(cat, twice, tmp_path)
        with pytest.raises(UsageError, match=r"no entity column 'patient'"):
            cells().to_parquet(tmp_path / "c.parquet")
            cat.publish("cells", tmp_path / "c.parquet", entity="patient")
        with pytest.raises(UsageError, match=r"timestamp column 'site' holds"):
            cat.publish("cells", tmp_path / "c.parquet", entity="sample_id", timestamp="site")
        with pytest.raises(UsageError, match=r"not a Parquet file"):
            cells().to_csv(tmp_path / "c.csv")
            cat.publish("cells", tmp_path / "c.csv")
        assert cat.versions() == []  # nothing half-published


def test_schema_changes_and_distribution_shifts_between_versions() -> None:
    old = {"radius": {"type": "number"}, "site": {"type": "string"}, "age": {"type": "integer"}}
    new = {"radius": {"type": "string"}, "site": {"type": "string"}, "grade": {"type": "integer"}}
    assert schema_changes(old, new) == [
        {"column": "radius", "change": "retyped", "old": "number", "new": "string"},
        {"column": "age", "change": "removed", "old": "integer", "new": None},
        {"column": "grade", "change": "added", "old": None, "new": "integer"}]
    assert incompatibilities({"properties": {"radius": {"type": "number"},
                                             "age": {"type": "number"}}},
                             {"radius": {"type": "integer"}}, "cells@2") == [
        "column 'age' is not in cells@2 (removed or renamed)"]
    assert incompatibilities({"properties": {"n": {"type": "integer"}}},
                             {"n": {"type": "number"}}, "cells@2") == [
        "column 'n' is integer there but number in cells@2"]
    same, moved = shift(profile_table(cells(300)), profile_table(cells(300))), \
        shift(profile_table(cells(300)), profile_table(cells(300, shift_by=3.0)))
    assert not any(s["drifted"] for s in same.values())
    assert moved["radius"]["drifted"] and not moved["site"]["drifted"]
    assert moved_pins("x cells@1#" + "a" * 64, "x cells@2#" + "b" * 64) == [
        "feature set cells: dvc.yaml pins v1; conf/ now resolves to v2"]


def test_the_cli_lists_shows_and_diffs(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    with open_catalog(registry, create=True) as cat:
        publish(cat, cells(300), tmp_path)
        publish(cat, cells(300, shift_by=3.0).drop(columns=["site"]), tmp_path)
    listed = run_cli(tmp_path, "features", "list", "--registry", str(registry), check=True)
    assert "cells" in listed.stdout and "2 (latest)" in listed.stdout
    shown = run_cli(tmp_path, "features", "show", "cells@1", "--registry", str(registry),
                    check=True)
    assert "cells@1: 300 rows, 4 columns" in shown.stdout and "from stage clean" in shown.stdout
    diff = run_cli(tmp_path, "features", "diff", "cells", "1", "2", "--registry", str(registry),
                   "--json", check=True)
    data = json.loads(diff.stdout)
    assert data["schema"] == [{"column": "site", "change": "removed", "old": "string",
                               "new": None}]
    assert data["shift"]["radius"]["drifted"] is True
    missing = run_cli(tmp_path, "features", "show", "cells@9", "--registry", str(registry))
    assert missing.returncode == 2 and "has no version 9" in missing.stderr


def test_teams_share_one_catalog_on_postgresql(postgres: Any, tmp_path: Path) -> None:
    url = postgres.create_database("features")
    shared = tmp_path / "shared-artifacts"
    env = {"FRAMEWORK_REGISTRY_ARTIFACTS": str(shared)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with open_catalog(url, create=True, project_dir=tmp_path / "team-a") as a:
            v1, _ = publish(a, cells(), tmp_path)
        # another clone, another folder: the same feature set, the same bytes
        with open_catalog(url, project_dir=tmp_path / "team-b") as b:
            found = b.resolve("cells@latest")
            assert found.sha256 == v1.sha256 and found.version == 1
            assert pd.read_parquet(b.path(found)).equals(cells())
            again, created = publish(b, cells(), tmp_path)
            assert not created and again.version == 1
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
