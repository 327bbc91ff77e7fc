"""Feature sets and their versions: publish, list, resolve, fetch.

A feature set is a name (``cancer_cells``) and a sequence of versions ``1, 2, ...``, each one
Parquet table stored once under its sha256 in the registry's artifact store. A reference is
``NAME`` or ``NAME@latest`` (the newest version), ``NAME@7``, or ``NAME@sha256:HEX`` (at least
12 hex digits of a version's hash).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import NotFound, UsageError, did_you_mean

NAME = r"[A-Za-z][A-Za-z0-9_.-]{0,99}"
_REF = re.compile(rf"^(?P<name>{NAME})(?:@(?P<selector>latest|[0-9]+|sha256:[0-9a-f]{{12,64}}))?$")
#: A compiled pin, ``NAME@VERSION#SHA256``: what dvc.yaml's commands carry.
PIN = re.compile(rf"({NAME})@([0-9]+)#([0-9a-f]{{64}})")
#: What a reference may look like, for messages.
REF_FORMS = "NAME, NAME@latest, NAME@7 or NAME@sha256:HEX (12 to 64 hex digits)"


@dataclass(frozen=True)
class FeatureRef:
    name: str
    selector: str = "latest"  # "latest", a version number, or "sha256:HEX"

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


def parse_ref(text: str, *, what: str = "feature set") -> FeatureRef:
    """``NAME[@latest|@N|@sha256:HEX]`` → :class:`FeatureRef`; a clear error otherwise."""
    m = _REF.match(text.strip()) if isinstance(text, str) else None
    if m is None or (m["selector"] or "").isdigit() and int(m["selector"]) < 1:
        raise UsageError(f"{what} {text!r}: expected {REF_FORMS}")
    return FeatureRef(m["name"], m["selector"] or "latest")


def check_name(name: str, *, what: str = "feature set") -> str:
    if not isinstance(name, str) or not re.fullmatch(NAME, name):
        raise UsageError(f"{what} name {name!r}: expected a letter, then letters, digits, "
                         "'_', '.' or '-' (at most 100)")
    return name


@dataclass(frozen=True)
class FeatureVersion:
    """One published version of a feature set (a row of the catalog)."""

    name: str
    version: int
    sha256: str
    size: int
    rows: int
    entity: str | None
    timestamp: str | None
    schema: dict[str, Any]
    profile: dict[str, Any]
    lineage: dict[str, Any]
    created_at: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def pin(self) -> str:
        """What the compiler writes into ``dvc.yaml``: ``NAME@VERSION#SHA256``."""
        return f"{self.name}@{self.version}#{self.sha256}"

    @property
    def columns(self) -> dict[str, Any]:
        """Column name → its JSON Schema, in table order."""
        return dict(self.schema.get("properties") or {})

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FeatureVersion:
        return cls(**{k: row.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def parse_pin(text: str) -> tuple[str, int, str]:
    """``NAME@VERSION#SHA256`` (a compiled pin) → ``(name, version, sha256)``."""
    m = PIN.fullmatch(text)
    if m is None:
        raise UsageError(f"feature pin {text!r}: expected NAME@VERSION#SHA256 (dvc.yaml is "
                         "written by `python -m framework compile`; recompile)")
    return m[1], int(m[2]), m[3]


def pin_records(found: Mapping[str, Iterable[str]]) -> list[dict[str, Any]]:
    """Pins and the stages that read them → what a registered version's lineage records
    (``lineage.feature_sets``): ``[{"name", "version", "sha256", "stages"}]``, sorted."""
    out = []
    for pin, stages in sorted(found.items()):
        name, version, sha = parse_pin(pin)
        out.append({"name": name, "version": version, "sha256": sha,
                    "stages": sorted(set(stages))})
    return out


class Catalog:
    """The feature sets of one registry (its database and its artifact store)."""

    def __init__(self, registry: Any) -> None:
        from framework.registry.sql import SQLStore

        if not isinstance(registry.store, SQLStore):
            raise UsageError("the feature store needs a SQL registry (SQLite or PostgreSQL)")
        self.registry = registry
        self.store = registry.store

    # -- reading ---------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted({r["name"] for r in self.store.feature_versions()})

    def versions(self, name: str | None = None) -> list[FeatureVersion]:
        return [FeatureVersion.from_row(r) for r in self.store.feature_versions(name)]

    def resolve(self, ref: str | FeatureRef) -> FeatureVersion:
        """The version a reference names; :class:`NotFound` naming what exists otherwise."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        versions = self.versions(ref.name)
        if not versions:
            known = self.names()
            hint = did_you_mean(ref.name, known)
            raise NotFound(f"feature set {ref.name!r} has no published version in the "
                           f"registry at {self.where}" + (f"; {hint}" if hint else
                           (f" (feature sets: {', '.join(known)})" if known else
                            " (nothing is published yet: run the pipeline that publishes it)")))
        if ref.selector == "latest":
            return versions[-1]
        if ref.selector.startswith("sha256:"):
            prefix = ref.selector[len("sha256:"):]
            found = [v for v in versions if v.sha256.startswith(prefix)]
            if len(found) == 1:
                return found[0]
            raise NotFound(f"feature set {ref.name!r}: no version has sha256 {prefix}..." if not
                           found else f"feature set {ref.name!r}: sha256 {prefix} is ambiguous")
        number = int(ref.selector)
        for v in versions:
            if v.version == number:
                return v
        raise NotFound(f"feature set {ref.name!r} has no version {number} (versions 1 to "
                       f"{versions[-1].version})")

    def get(self, name: str, version: int, sha256: str | None = None) -> FeatureVersion:
        """Version ``version`` of ``name``; with ``sha256``, only if it still holds those bytes
        (a pin compiled against another registry is refused, never read)."""
        fv = self.resolve(FeatureRef(name, str(version)))
        if sha256 is not None and fv.sha256 != sha256:
            raise UsageError(f"feature set {fv.ref} in the registry at {self.where} has sha256 "
                             f"{fv.sha256[:12]}, not the {sha256[:12]} dvc.yaml pins: the pin "
                             "was compiled against another registry; recompile")
        return fv

    @property
    def where(self) -> str:
        return str(getattr(self.store, "where", None) or self.registry.root)

    def path(self, fv: FeatureVersion) -> Path:
        """The local file of a version, checked against its sha256 (fetched from the DVC remote
        when only the remote has it)."""
        from framework.registry.artifacts import verify_file

        what = f"feature set {fv.ref}"
        return verify_file(self.registry.artifacts.fetch(fv.sha256, what=what), fv.sha256,
                           what=what)

    # -- publishing ------------------------------------------------------------------------------

    def publish(self, name: str, path: str | os.PathLike[str], *, entity: str | None = None,
                timestamp: str | None = None, schema: Mapping[str, Any] | None = None,
                lineage: Mapping[str, Any] | None = None) -> tuple[FeatureVersion, bool]:
        """Publish the Parquet table at ``path`` as the next version of ``name`` (no new version
        when the feature set already holds these bytes): ``(version, created)``."""
        import pyarrow.parquet as pq

        from framework.features.profile import profile_table
        from framework.registry.artifacts import sha256_file
        from framework.registry.store import utc_now
        from framework.schema import infer_schema

        check_name(name)
        path = Path(path)
        if path.suffix.lower() not in (".parquet", ".pq"):
            raise UsageError(f"feature set {name}: {path} is not a Parquet file; a published "
                             "table is Parquet (joins stream from it)")
        sha = sha256_file(path)
        for row in self.store.feature_versions(name):
            if row["sha256"] == sha:  # published before: no read, no upload
                return FeatureVersion.from_row(row), False
        table = pq.read_table(path)
        frame = table.to_pandas()
        check_keys(frame, entity, timestamp, what=f"feature set {name} ({path})")
        if schema is None:
            schema = infer_schema(frame)
        stored_sha, size = self.registry.artifacts.put_file(path)
        if stored_sha != sha:
            raise UsageError(f"feature set {name}: {path} changed while it was published")
        row = {"name": name, "sha256": sha, "size": size, "rows": table.num_rows,
               "entity": entity, "timestamp": timestamp, "schema": dict(schema),
               "profile": profile_table(frame), "lineage": dict(lineage or {}),
               "created_at": utc_now()}
        saved, created = self.store.add_feature_version(row)
        return FeatureVersion.from_row(saved), created


def check_keys(frame: Any, entity: str | None, timestamp: str | None, *, what: str) -> None:
    """A published table holds its entity and timestamp columns, and one row per entity (per
    entity and time, with a timestamp): a point-in-time join then has one answer."""
    import pandas as pd

    for role, column in (("entity", entity), ("timestamp", timestamp)):
        if column is not None and column not in frame.columns:
            raise UsageError(f"{what}: no {role} column {column!r} (columns: "
                             f"{', '.join(map(str, frame.columns))})")
    if timestamp is not None:
        if entity is None:
            raise UsageError(f"{what}: a timestamp needs an entity column to join on")
        if not pd.api.types.is_datetime64_any_dtype(frame[timestamp]):
            raise UsageError(f"{what}: timestamp column {timestamp!r} holds "
                             f"{frame[timestamp].dtype}, not date-times")
        if frame[timestamp].isna().any():
            row = int(frame[timestamp].isna().to_numpy().nonzero()[0][0])
            raise UsageError(f"{what}: timestamp column {timestamp!r} is empty in row {row}")
    if entity is None:
        return
    keys = [entity] + ([timestamp] if timestamp else [])
    dup = frame.duplicated(keys, keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        at = ", ".join(f"{k}={first[k]}" for k in keys)
        raise UsageError(f"{what}: {int(dup.sum()):,} rows share their {' and '.join(keys)} "
                         f"(first: {at}); a feature set holds one row per "
                         + ("entity and time" if timestamp else "entity"))


@contextlib.contextmanager
def open_catalog(registry: str | os.PathLike[str] | None = None, *, create: bool = False,
                 project_dir: str | os.PathLike[str] = ".") -> Iterator[Catalog]:
    """The catalog of the project's registry (or of ``registry``: a folder or a URL)."""
    from framework.registry import open_registry

    with open_registry(registry, create=create, project_dir=project_dir) as reg:
        yield Catalog(reg)
