"""Reading and writing artifacts by their file suffix; every write is atomic.

- tables: ``.parquet``, ``.csv``, ``.tsv`` <-> pandas DataFrame
- models: ``.skops`` <-> a fitted estimator, saved with skops and loaded only when every name the
  file holds is on the exact allowlist of :mod:`framework.trust` (never bare pickle, which runs
  arbitrary code on load)
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
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from framework.errors import UserError

TABLE_SUFFIXES = (".parquet", ".csv", ".tsv")
MODEL_SUFFIXES = (".skops",)
JSON_SUFFIXES = (".json",)

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


_UMASK: list[int] = []


def file_mode() -> int:
    """The mode a new file gets from ``open`` here: 0o666 less the process's umask (a temporary
    file from ``mkstemp`` is 0o600, which would make every output private to its writer)."""
    if not _UMASK:
        mask = os.umask(0o022)
        os.umask(mask)
        _UMASK.append(mask)
    return 0o666 & ~_UMASK[0]


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
        if tmp_path.exists():
            os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str, *, parents: bool = True) -> None:
    """Write ``text`` to ``path`` atomically (``parents``: create its folder if needed)."""
    with atomic_path(path, parents=parents) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read(path: str | Path, *, trusted: Iterable[str] | None = None,
         numbers: Iterable[str] = ()) -> Any:
    """Read an artifact according to its suffix (``trusted``: see :func:`load_model`;
    ``numbers``: see :func:`read_table`)."""
    path = Path(path)
    kind = kind_of(path)
    if not path.exists():
        raise ArtifactError(f"'{path}' does not exist")
    if kind == "table":
        return read_table(path, numbers=numbers)
    if kind == "model":
        return load_model(path, trusted)
    with open(path) as fh:
        return json.load(fh)


def read_table(path: Path, *, numbers: Iterable[str] = ()) -> Any:
    """A table from its file. In a CSV or TSV file, the columns named in ``numbers`` are read as
    numbers even when a few cells are not: those cells stay the text they are, so a schema check
    names their rows alone (pandas would read the whole column as text)."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"'{path}': cannot read the table: {exc}") from None
    for name in numbers:
        if name in frame.columns and not pd.api.types.is_numeric_dtype(frame[name].dtype):
            frame[name] = _numbers_or_text(frame[name])
    return frame


def _numbers_or_text(column: Any) -> Any:
    import pandas as pd

    parsed = pd.to_numeric(column, errors="coerce")
    bad = parsed.isna() & column.notna()
    if not bad.any():
        return parsed
    mixed = parsed.astype(object)
    mixed[bad] = column[bad]
    return mixed


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


def as_stored(path: str | Path, obj: Any) -> Any:
    """``obj`` as a stage would read it back from ``path``: a table goes through its file
    format in memory (a DataFrame read from Parquet has its own dtypes and memory layout, and a
    model fitted on it can differ in the last bits from one fitted on the DataFrame that was
    written). Anything else is returned as it is."""
    import io as _io

    if kind_of(path) != "table":
        return obj
    import pandas as pd

    if not isinstance(obj, pd.DataFrame):
        return obj
    suffix = Path(path).suffix.lower()
    buffer = _io.BytesIO()
    if suffix == ".parquet":
        obj.to_parquet(buffer, index=False)
        buffer.seek(0)
        return pd.read_parquet(buffer)
    sep = "\t" if suffix == ".tsv" else ","
    obj.to_csv(buffer, index=False, sep=sep)
    buffer.seek(0)
    return pd.read_csv(buffer, sep=sep)


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
    """Save ``model`` with skops, in canonical bytes (:func:`canonical_skops`)."""
    import io as _io

    import skops.io

    buffer = _io.BytesIO()
    skops.io.dump(model, buffer)
    Path(path).write_bytes(canonical_skops(buffer.getvalue()))


#: The timestamp of every member of a canonical skops file (the zip format's earliest).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def canonical_skops(data: bytes) -> bytes:
    """The same skops file, in bytes that depend on the model alone.

    skops names each node (``__id__``) and each array member by ``id()`` of the object or a
    random uuid, and stamps every zip member with the current time, so saving the same model
    twice gives different bytes: DVC sees a new output, its run-cache never hits, and the
    registry a new artifact. Here ids are renumbered in the order the schema first names them,
    members are renamed the same way (their suffix kept), written in that order, uncompressed,
    with one fixed timestamp and mode. The file loads exactly as before.
    """
    import zipfile
    from io import BytesIO

    with zipfile.ZipFile(BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
        members = {name: archive.read(name) for name in archive.namelist() if name != "schema.json"}
    ids: dict[Any, int] = {}
    files: dict[str, str] = {}
    stack: list[Any] = [schema]
    while stack:  # pre-order, in document order: the first mention of an id or file numbers it
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        if "__id__" in node:
            node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
        name = node.get("file")
        if isinstance(name, str) and name in members:
            node["file"] = files.setdefault(name, f"{len(files) + 1}{Path(name).suffix}")
        stack.extend(reversed(list(node.values())))
    out = BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        entries = [("schema.json", json.dumps(schema, indent=2).encode())]
        entries += [(new, members[old]) for old, new in files.items()]
        for name, content in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.create_system = 3
            archive.writestr(info, content)
    return out.getvalue()


def model_types(path: str | Path, trusted: Iterable[str] | None = None) -> list[str]:
    """Every name a skops file holds (``module.Name``), after refusing any the allowlist does not
    trust (:mod:`framework.trust`; ``trusted``: exact extra names, default the project's
    ``trusted_types``). Reads the file's schema only: no skops import, nothing constructed."""
    from framework import trust

    extra = project_trusted() if trusted is None else tuple(trusted)
    try:
        return trust.Allowlist(extra).check_file(path)
    except (trust.UntrustedModel, ValueError) as exc:
        raise ArtifactError(str(exc)) from None


def load_model(path: str | Path, trusted: Iterable[str] | None = None) -> Any:
    """Load a skops model whose every name is on the allowlist, then check the trees it holds
    (:func:`framework.trust.validate_model`)."""
    import skops.io

    from framework import trust

    names = model_types(path, trusted)
    try:
        model = skops.io.load(str(path), trusted=names)
    except Exception as exc:  # skops raises a variety of errors on a corrupt file
        raise ArtifactError(f"'{path}': cannot load the model ({type(exc).__name__}: "
                            f"{str(exc)[:300]})") from None
    try:
        trust.validate_model(model, what=str(path))
    except trust.UntrustedModel as exc:
        raise ArtifactError(str(exc)) from None
    return model


_PROJECT_TRUST: dict[tuple[str, int, int], tuple[str, ...]] = {}


def project_trusted(project_dir: str | Path = ".") -> tuple[str, ...]:
    """The exact extra names a project trusts in model files: ``trusted_types`` of its
    ``params.yaml`` (empty without one). Read once per version of the file."""
    path = Path(project_dir) / "params.yaml"
    try:
        stat = path.stat()
    except OSError:
        return ()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _PROJECT_TRUST:
        from framework import trust
        from framework.registry.lineage import read_yaml

        try:
            data = read_yaml(path)
        except Exception:  # an unreadable params.yaml is the compiler's to report
            data = None
        raw = data.get("trusted_types") if isinstance(data, dict) else None
        try:
            _PROJECT_TRUST[key] = trust.check_trusted_names(raw or (), where="trusted_types")
        except ValueError as exc:
            raise ArtifactError(f"{path}: {exc}") from None
    return _PROJECT_TRUST[key]
