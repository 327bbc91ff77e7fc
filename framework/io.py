"""Reading and writing artifacts by their file suffix; every write is atomic.

- tables: ``.parquet``, ``.csv``, ``.tsv`` <-> pandas DataFrame
- models: ``.skops`` <-> a fitted estimator, saved with skops and loaded with an explicit allowlist
  of trusted types (never bare pickle, which runs arbitrary code on load)
- documents: ``.json`` <-> dict / list

A write goes to a temporary file in the target's folder and is renamed into place, so a failed or
killed writer leaves the previous file or none, never a partial one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from framework.errors import UserError

TABLE_SUFFIXES = (".parquet", ".csv", ".tsv")
MODEL_SUFFIXES = (".skops",)
JSON_SUFFIXES = (".json",)

#: What a model file may contain: types of these modules, and these plain types. Anything else
#: is refused by name, before skops constructs anything.
ALLOWED_MODULE_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.", "scipy.")
ALLOWED_TYPES: frozenset[str] = frozenset({
    "builtins.bytes", "builtins.bytearray", "builtins.complex", "builtins.dict",
    "builtins.frozenset", "builtins.list", "builtins.set", "builtins.slice", "builtins.tuple",
    "builtins.NoneType", "builtins.int", "builtins.float", "builtins.str", "builtins.bool",
    "collections.OrderedDict", "collections.defaultdict",
})


class ArtifactError(UserError):
    """An artifact that cannot be read or written as its suffix says."""


def kind_of(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return "table"
    if suffix in MODEL_SUFFIXES:
        return "model"
    if suffix in JSON_SUFFIXES:
        return "json"
    raise ArtifactError(f"'{path}': unsupported artifact type '{suffix}'; use one of "
                        f"{', '.join(TABLE_SUFFIXES + MODEL_SUFFIXES + JSON_SUFFIXES)}")


@contextlib.contextmanager
def atomic_path(target: str | Path, *, parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds.

    ``parents``: create the folder of ``target`` when it does not exist.
    """
    target = Path(target)
    if parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str, *, parents: bool = True) -> None:
    """Write ``text`` to ``path`` atomically (``parents``: create its folder if needed)."""
    with atomic_path(path, parents=parents) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read(path: str | Path) -> Any:
    """Read an artifact according to its suffix."""
    path = Path(path)
    kind = kind_of(path)
    if not path.exists():
        raise ArtifactError(f"'{path}' does not exist")
    if kind == "table":
        return read_table(path)
    if kind == "model":
        return load_model(path)
    with open(path) as fh:
        return json.load(fh)


def read_table(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"'{path}': cannot read the table: {exc}") from None


def dumps_json(data: Any) -> str:
    """Deterministic JSON text: sorted keys, numpy scalars as Python numbers, trailing newline."""
    return json.dumps(to_plain(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def to_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write(path: str | Path, obj: Any) -> None:
    """Write an artifact atomically according to its suffix."""
    path = Path(path)
    kind = kind_of(path)
    with atomic_path(path) as tmp:
        if kind == "table":
            _write_table(obj, tmp, path)
        elif kind == "model":
            save_model(obj, tmp)
        else:
            tmp.write_text(dumps_json(obj))


def _write_table(obj: Any, tmp: Path, path: Path) -> None:
    import pandas as pd

    if not isinstance(obj, pd.DataFrame):
        raise ArtifactError(f"'{path}' is a table: expected a pandas DataFrame, got "
                            f"{type(obj).__name__}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        obj.to_parquet(tmp, index=False)
    else:
        obj.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")


def preload_skops() -> None:
    """Import skops for a process that loads and saves models only through this module (a server,
    a sweep's saver, a stage process of ``dvc repro``), at about half its usual cost.

    When it is imported, skops builds its default lists of trusted types: it imports every
    scikit-learn estimator (``all_estimators()``, which imports pytest too), and it looks up each
    ``scipy.special`` ufunc in every loaded module, in import order. This module never uses those
    defaults: every load passes the exact types of the file, checked against the allowlist first.
    So the estimators' walk is skipped (``all_estimators`` answers an empty list while skops is
    imported, and is restored at once), and ``scipy.special`` is imported before anything else
    loads, which keeps the lookups short. Call it early, before pandas.

    Afterwards a ``skops.io.load(..., trusted=None)`` in this process (say, in a stage function
    that calls skops itself) trusts no scikit-learn estimator by default: it refuses more files
    than usual, never fewer, and names the types it refused. A no-op once skops is imported.
    """
    import sys

    if "skops.io" in sys.modules:
        return
    import scipy.special  # noqa: F401
    import sklearn.utils
    import sklearn.utils.discovery

    holders = (sklearn.utils, sklearn.utils.discovery)
    saved = [holder.all_estimators for holder in holders]
    for holder in holders:
        holder.all_estimators = _no_estimators
    try:
        import skops.io  # noqa: F401
    finally:
        for holder, function in zip(holders, saved, strict=True):
            holder.all_estimators = function


def _no_estimators(*args: Any, **kwargs: Any) -> list[tuple[str, type]]:
    return []


def save_model(model: Any, path: str | Path) -> None:
    import skops.io

    skops.io.dump(model, str(path))


def model_types(path: str | Path) -> list[str]:
    """Every type a skops file names (``module.Class``), read from its schema.

    Reads the file's ``schema.json`` directly: no skops import (which costs seconds), and nothing
    of the file is constructed.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{path} is not a readable skops file ({exc})") from None
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found)


def check_model_types(path: str | Path) -> list[str]:
    """The types of a skops file, after refusing any outside the allowlist."""
    found = model_types(path)
    refused = [t for t in found if t not in ALLOWED_TYPES and not t.startswith(ALLOWED_MODULE_PREFIXES)]
    if refused:
        raise ArtifactError(f"refusing {path}: it contains type(s) outside the allowlist: "
                            f"{', '.join(refused)} (allowed: modules "
                            f"{', '.join(p + '*' for p in ALLOWED_MODULE_PREFIXES)} and plain "
                            "builtins)")
    return found


def load_model(path: str | Path) -> Any:
    """Load a skops model whose every type is on the allowlist."""
    import skops.io

    trusted = check_model_types(path)
    try:
        return skops.io.load(str(path), trusted=trusted)
    except Exception as exc:  # skops raises a variety of errors on a corrupt file
        raise ArtifactError(f"'{path}': cannot load the model ({exc})") from None
