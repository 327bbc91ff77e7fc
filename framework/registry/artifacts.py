"""The content-addressed artifact store, and saving/loading models with skops (never pickle).

An artifact lives at ``<registry>/artifacts/sha256/<first two hex>/<full hex>``. It is written to a
temporary file in ``<registry>/artifacts/tmp/`` while being hashed, flushed to disk, made
read-only and renamed into place, so a reader sees either the whole file or none. Writing the same
content twice is harmless. Loading re-hashes the file and refuses one whose content changed.

Models are saved and loaded by :mod:`framework.io` (skops, with the exact allowlist of
:mod:`framework.trust`); here its errors are named after the registered version.
Checking a file's types reads its schema without importing skops, so registering a model file
does not pay for importing skops and scikit-learn.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from framework.errors import RegistryError
from framework.registry.store import crash_point

_CHUNK = 1 << 20
_STALE_TMP_SECONDS = 3600


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class ArtifactStore:
    """Files named by their sha256 under ``root`` (``<registry>/artifacts``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"

    @staticmethod
    def relpath(sha: str) -> str:
        """Where an artifact lives, relative to the registry root."""
        return f"artifacts/sha256/{sha[:2]}/{sha}"

    def path(self, sha: str) -> Path:
        return self.root / "sha256" / sha[:2] / sha

    def put_file(self, src: str | os.PathLike[str]) -> tuple[str, int]:
        """Copy ``src`` into the store atomically; return ``(sha256, size)``."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._sweep_stale_tmp()
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        h = hashlib.sha256()
        size = 0
        try:
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(_CHUNK):
                    h.update(chunk)
                    fout.write(chunk)
                    size += len(chunk)
                    crash_point("artifact-partial")
                fout.flush()
                os.fsync(fout.fileno())
            sha = h.hexdigest()
            final = self.path(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data`` atomically (a companion artifact: a profile, test predictions); return
        ``(sha256, size)``."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            sha, size = self.put_file(tmp)
        finally:
            tmp.unlink(missing_ok=True)
        return sha, size

    def read_bytes(self, sha: str, *, what: str) -> bytes:
        """The content of artifact ``sha``, after checking it still hashes to ``sha``."""
        path = self.path(sha)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RegistryError(f"{what}: its artifact {path} is missing from the registry "
                                "store") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise RegistryError(f"{what}: artifact {path} was modified after registration "
                                f"(expected sha256 {sha}, found {actual})")
        return data

    def _sweep_stale_tmp(self) -> None:
        """Remove temporary files left by killed writers (older than an hour)."""
        cutoff = time.time() - _STALE_TMP_SECONDS
        try:
            entries = list(os.scandir(self.tmp))
        except FileNotFoundError:  # pragma: no cover
            return
        for entry in entries:
            try:
                if entry.name.endswith(".part") and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:  # another process removed or renamed it
                pass


def verify_file(path: str | os.PathLike[str], sha: str, *, what: str) -> Path:
    """Return ``path`` after checking its content still hashes to ``sha``."""
    path = Path(path)
    if not path.exists():
        raise RegistryError(f"{what}: its artifact {path} is missing from the registry store")
    actual = sha256_file(path)
    if actual != sha:
        raise RegistryError(
            f"{what}: artifact {path} was modified after registration; refusing to load it "
            f"(expected sha256 {sha}, found {actual})")
    return path


def trusted_types(path: str | os.PathLike[str], *, what: str,
                  trusted: Iterable[str] | None = None) -> list[str]:
    """The names a skops file holds, all checked against the allowlist (``trusted``: exact extra
    names, default the project's ``trusted_types``)."""
    from framework.io import ArtifactError, model_types

    try:
        return model_types(path, trusted)
    except ArtifactError as exc:
        raise RegistryError(f"{what}: {exc}") from None


def load_model(path: str | os.PathLike[str], *, what: str,
               trusted: Iterable[str] | None = None) -> Any:
    """Load a skops file whose names are all on the allowlist."""
    from framework.io import ArtifactError
    from framework.io import load_model as load

    try:
        return load(path, trusted)
    except ArtifactError as exc:
        raise RegistryError(f"{what}: {exc}") from None


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Save a fitted estimator with skops (atomically: temporary file + rename)."""
    from framework.io import save_model as save

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        save(model, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
