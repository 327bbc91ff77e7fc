"""Feature sets in a pipeline: pinned at compile time, fetched and joined at run time.

At compile time (:func:`pin_inputs`, called by :func:`framework.spec.build_spec`) each input that
names a feature set, alone or in a join, is resolved in the catalog to one version, and the pin
``NAME@VERSION#SHA256`` goes into the stage's command in ``dvc.yaml`` (``--feature`` and
``--join``). DVC reruns a stage whose command changed, so a stage reruns when a pin moves and
never otherwise; ``@latest`` moves when the pipeline is compiled again after a new version was
published, which ``compile --check`` reports. A consumer's own schema for the input must be
compatible with the pinned version: a column it expects that the version lacks, or holds with
another type, is a compile error naming both.

At run time (:func:`materialize`, :func:`run_join`, called by the stage runner) the pinned
version is fetched from the registry's artifact store, checked against its sha256, and copied to
its local path under ``.framework/features/`` (a join is written there too), which the stage
then reads like any other input.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, FrameworkError, UsageError
from framework.features.catalog import (PIN, Catalog, FeatureVersion, open_catalog, parse_pin,
                                       pin_records)

CACHE = ".framework/features"


def local_path(pin: str) -> str:
    """Where a pinned version is copied in the workspace, relative to the project."""
    name, version, sha = parse_pin(pin)
    return f"{CACHE}/{name}/{version}-{sha[:12]}.parquet"


def join_plan(join: Any) -> dict[str, Any]:
    """The compiled description of a join: what ``--join`` carries."""
    return {"entities": join.entities, "on": join.on, "as_of": join.as_of,
            "features": [{"pin": u.pin, **({"max_age_s": u.max_age_s} if u.max_age_s else {})}
                         for u in join.features]}


def plan_text(plan: Mapping[str, Any]) -> str:
    return json.dumps(plan, sort_keys=True, separators=(",", ":"))


def join_path(stage: str, name: str, plan: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(plan_text(plan).encode()).hexdigest()[:12]
    return f"{CACHE}/joins/{stage}.{name}-{digest}.parquet"


# -- compile time --------------------------------------------------------------------------------

def _types(schema: Mapping[str, Any]) -> set[str]:
    t = schema.get("type")
    if t is None:
        return set()
    return {t} if isinstance(t, str) else set(t)


def _accepts(expected: set[str], found: set[str]) -> bool:
    """Whether every type the published column may hold is one the consumer accepts."""
    if not expected:
        return True
    return all(t in expected or (t == "integer" and "number" in expected) for t in found)


def incompatibilities(expected: Mapping[str, Any], published: Mapping[str, Any],
                      label: str) -> list[str]:
    """What a consumer's schema expects that a published version does not give."""
    problems = []
    for column, want in (expected.get("properties") or {}).items():
        have = published.get(column)
        if have is None:
            problems.append(f"column {column!r} is not in {label} (removed or renamed)")
            continue
        if isinstance(want, Mapping) and isinstance(have, Mapping):
            w, h = _types(want), _types(have)
            if not _accepts(w, h):
                problems.append(f"column {column!r} is {'/'.join(sorted(w))} there but "
                                f"{'/'.join(sorted(h)) or 'untyped'} in {label}")
    return problems


def _resolve(cat: Catalog, ref: str, file: str, key: str) -> FeatureVersion:
    try:
        return cat.resolve(ref)
    except FrameworkError as exc:
        raise ConfigError(str(exc), file=file, key=key) from None


def _check_schema(root: Path, schema: str | None, columns: Mapping[str, Any], label: str,
                  file: str, key: str, only: set[str] | None = None) -> None:
    """``only``: check just these columns (a join onto an entity table of unknown columns)."""
    if not schema:
        return
    try:
        expected = json.loads((root / schema).read_text())
    except (OSError, ValueError):
        return  # the schema checks of build_spec report it
    if only is not None:
        props = {c: v for c, v in (expected.get("properties") or {}).items() if c in only}
        expected = {**expected, "properties": props}
    problems = incompatibilities(expected, columns, label)
    if problems:
        raise ConfigError(f"{schema} does not fit feature set {label}: " + "; ".join(problems),
                          file=file, key=f"{key}.schema",
                          hint="pin a version that has these columns (NAME@VERSION), or update "
                               "the schema to the new version")


def configured_registry(params: Mapping[str, Any], root: Path) -> str | None:
    """The registry the composed config names (``registry.url``, else ``registry.path``,
    relative to the project), unless the environment names one: what the stage runner will open
    once ``params.yaml`` is written. None: the default."""
    from framework.registry.core import ENV_REGISTRY, ENV_REGISTRY_URL

    block = params.get("registry")
    if not isinstance(block, Mapping) or os.environ.get(ENV_REGISTRY) or \
            os.environ.get(ENV_REGISTRY_URL):
        return None
    if block.get("url"):
        return str(block["url"])
    if block.get("path"):
        return str(root / str(block["path"]))
    return None


def pin_inputs(stages: Sequence[Any], root: Path, file: str,
               params: Mapping[str, Any] | None = None) -> list[Any]:
    """The stages with every feature input and join pinned to one version (see the module)."""
    from framework.errors import NotRegistered

    try:
        with open_catalog(configured_registry(params or {}, root), create=False,
                          project_dir=root) as cat:
            return _pin_all(stages, cat, root, file)
    except NotRegistered as exc:
        first = next(f"pipeline.stages.{s.name}.ins.{i.name}" for s in stages for i in s.ins
                     if i.pinned)
        raise ConfigError(f"no feature set is published yet ({exc}): run the pipeline that "
                          "publishes it first", file=file, key=first) from None


def _pin_all(stages: Sequence[Any], cat: Catalog, root: Path, file: str) -> list[Any]:
    from framework.features.join import output_columns

    out = []
    for s in stages:
        ins = []
        for i in s.ins:
            key = f"pipeline.stages.{s.name}.ins.{i.name}"
            if i.feature is not None:
                fv = _resolve(cat, i.feature.ref, file, f"{key}.feature_set")
                _check_schema(root, i.schema, fv.columns, fv.ref, file, key)
                ins.append(replace(i, path=local_path(fv.pin),
                                   feature=replace(i.feature, pin=fv.pin)))
            elif i.join is not None:
                uses, sources = [], []
                for n, use in enumerate(i.join.features):
                    fkey = f"{key}.join.features[{n}]"
                    fv = _resolve(cat, use.ref, file, fkey)
                    if fv.entity is None:
                        raise ConfigError(f"feature set {fv.ref} has no entity column: it "
                                          "cannot be joined (publish it with an entity)",
                                          file=file, key=fkey)
                    if fv.timestamp and not i.join.as_of:
                        raise ConfigError(f"feature set {fv.ref} has a timestamp "
                                          f"({fv.timestamp}): the join needs 'as_of', the "
                                          "entity table's time column", file=file,
                                          key=f"{key}.join")
                    uses.append(replace(use, pin=fv.pin))
                    sources.append(_source(fv, "", use.max_age_s))
                try:
                    output_columns([], [src for src, _ in sources])
                except UsageError as exc:
                    raise ConfigError(str(exc), file=file, key=f"{key}.join.features") \
                        from None
                columns = {c: sch for fv_src in sources for c, sch in fv_src[1].items()}
                entity = _entity_columns(root, i, stages)
                _check_schema(root, i.schema, columns | (entity or {}), "the join", file,
                              key, only=None if entity is not None else set(columns))
                join = replace(i.join, features=tuple(uses))
                ins.append(replace(i, join=join,
                                   path=join_path(s.name, i.name, join_plan(join))))
            else:
                ins.append(i)
        out.append(replace(s, ins=tuple(ins)))
    return out


def _entity_columns(root: Path, i: Any, stages: Sequence[Any]) -> dict[str, Any] | None:
    """The entity table's columns, when a stage writes it with a schema (None: unknown)."""
    for s in stages:
        if s.name == i.stage:
            for o in s.outs:
                if o.name == i.output and o.schema:
                    try:
                        schema = json.loads((root / o.schema).read_text())
                    except (OSError, ValueError):
                        return None
                    return dict(schema.get("properties") or {})
    return None


def _source(fv: FeatureVersion, path: str, max_age_s: int | None) -> Any:
    """``(Source, {column: schema})``: a version as a join source, and the columns it adds."""
    from framework.features.join import Source

    keys = {fv.entity, fv.timestamp}
    columns = {c: sch for c, sch in fv.columns.items() if c not in keys}
    return (Source(fv.ref, path, fv.entity or "", fv.timestamp, tuple(columns), max_age_s),
            columns)


# -- run time ------------------------------------------------------------------------------------

def materialize(pin: str, root: Path) -> Path:
    """The local copy of a pinned version (copied from the store, sha256 checked, when it is
    missing or differs)."""
    from framework.io import atomic_path
    from framework.registry.artifacts import sha256_file

    name, version, sha = parse_pin(pin)
    target = root / local_path(pin)
    if target.is_file() and sha256_file(target) == sha:
        return target
    with open_catalog(create=False, project_dir=root) as cat:
        src = cat.path(cat.get(name, version, sha))
        with atomic_path(target) as tmp:
            shutil.copyfile(src, tmp)
    return target


def _scratch(root: Path) -> Path:
    """The project's folder for a join's temporary files (DuckDB's spills, a sweep's tables)."""
    tmp = root / ".framework" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def run_join(plan: Mapping[str, Any], out: Path, root: Path, *,
             entities: str | os.PathLike[str] | None = None) -> int:
    """Write the join ``plan`` describes to ``out``; ``entities`` overrides the entity table's
    file (a sweep's in-memory table, written out). Returns its row count."""
    from framework.features.join import point_in_time_join

    with open_catalog(create=False, project_dir=root) as cat:
        sources = []
        for f in plan["features"]:
            name, version, sha = parse_pin(f["pin"])
            fv = cat.get(name, version, sha)
            age = f.get("max_age_s")
            if age is not None and (type(age) is not int or age < 1):  # it goes into SQL
                raise UsageError(f"--join: max_age_s {age!r} is not a positive whole number of "
                                 "seconds; recompile")
            sources.append(_source(fv, str(cat.path(fv)), age)[0])
    return point_in_time_join(entities or root / plan["entities"], on=plan["on"],
                              as_of=plan.get("as_of"), sources=sources, out=out,
                              temp_dir=_scratch(root))


def read_input(i: Any, root: Path, entities: Any = None) -> Any:
    """The value of a feature input or a join, for a stage run in memory (a sweep's trial):
    ``entities`` is the entity table when an upstream stage of the same trial made it."""
    import tempfile

    from framework import io

    if i.feature is not None:
        return io.read(materialize(i.feature.pin, root))
    plan = join_plan(i.join)
    if entities is None:  # joined again: the entity file may have changed since
        target = root / i.path
        run_join(plan, target, root)
        return io.read(target)
    with tempfile.TemporaryDirectory(dir=_scratch(root)) as folder:
        entity_file = Path(folder) / "entities.parquet"
        entities.to_parquet(entity_file, index=False)
        run_join(plan, Path(folder) / "joined.parquet", root, entities=entity_file)
        return io.read(Path(folder) / "joined.parquet")


def moved_pins(committed: str, compiled: str) -> list[str]:
    """Lines that say which feature-set pins moved between two texts of ``dvc.yaml``."""
    def versions(text: str) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for name, version, _ in PIN.findall(text):
            out.setdefault(name, set()).add(int(version))
        return out

    old, new = versions(committed), versions(compiled)
    lines = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            was = ", ".join(f"v{v}" for v in sorted(old.get(name, ()))) or "nothing"
            now = ", ".join(f"v{v}" for v in sorted(new.get(name, ()))) or "nothing"
            lines.append(f"feature set {name}: dvc.yaml pins {was}; conf/ now resolves to {now}")
    return lines


def stage_pins(stages: Sequence[Any]) -> list[dict[str, Any]]:
    """The feature-set versions ``stages`` read (feature inputs and joins), in the form a
    registered version's lineage records them (``lineage.feature_sets``)."""
    found: dict[str, set[str]] = {}
    for s in stages:
        for i in s.ins:
            uses = [i.feature] if i.feature is not None else \
                list(i.join.features) if i.join is not None else []
            for use in uses:
                if use.pin:
                    found.setdefault(use.pin, set()).add(s.name)
    return pin_records(found)
