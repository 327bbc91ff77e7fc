"""The content-addressed artifact store, and saving/loading models with skops (never pickle).

An artifact lives at ``<registry>/artifacts/sha256/<first two hex>/<full hex>``. It is written to a
temporary file in ``<registry>/artifacts/tmp/`` while being hashed, flushed to disk, made
read-only and renamed into place, so a reader sees either the whole file or none. Writing the same
content twice is harmless. Loading re-hashes the file and refuses one whose content changed.

With ``registry.artifacts: <a DVC remote's name>`` (or ``remote://NAME``) the store is that
remote, reached through DVC's own remote configuration (``dvc remote add``, credentials in
``.dvc/config.local``): an artifact is uploaded to ``<remote>/framework-registry/sha256/<2>/<hex>``
(to a temporary name, then moved) before the registry records the version, and a machine that
lacks it downloads it into its local folder on first use, checking its sha256 before it is used.

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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from framework.errors import RegistryError
from framework.registry.store import crash_point

T = TypeVar("T")
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


def put_atomic(fs: Any, local: Path, dest: str) -> None:
    """Upload ``local`` to ``dest`` on ``fs`` (a DVC filesystem) under a temporary name, then
    move it into place: a reader never sees part of a file under its name."""
    tmp = f"{dest}.{uuid.uuid4().hex}.part"
    fs.makedirs(fs.parent(dest), exist_ok=True)
    try:
        fs.put_file(str(local), tmp)
        fs.mv(tmp, dest)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise


class RemoteArtifacts:
    """The artifacts on a DVC remote: ``<remote>/framework-registry/sha256/<2>/<hex>``."""

    PREFIX = "framework-registry"

    def __init__(self, name: str, project_dir: str | os.PathLike[str] = ".") -> None:
        self.name = name
        try:
            from dvc.exceptions import DvcException
            from dvc.repo import Repo
        except ImportError:  # pragma: no cover - dvc is a dependency
            raise RegistryError("registry.artifacts names a DVC remote, and dvc is not "
                                "installed") from None
        try:
            with Repo(str(project_dir)) as repo:
                known = sorted(repo.config.get("remote", {}))
                if name not in known:
                    raise RegistryError(
                        f"registry.artifacts: no DVC remote {name!r} in {Path(project_dir)} "
                        f"(remotes: {', '.join(known) if known else 'none'}; add one with "
                        f"`dvc remote add {name} URL`)")
                remote = repo.cloud.get_remote(name)
        except DvcException as exc:
            raise RegistryError(f"registry.artifacts: DVC remote {name!r}: {exc}") from None
        self.fs = remote.fs
        self.root = remote.path
        self.base = self.fs.join(remote.path, self.PREFIX, "sha256")
        self.where = f"DVC remote {name!r} ({remote.path})"

    def path(self, sha: str) -> str:
        return self.fs.join(self.base, sha[:2], sha)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (OSError, RuntimeError, ValueError) as exc:
            raise RegistryError(f"{what} on the {self.where}: {exc}") from None

    def exists(self, sha: str) -> bool:
        return bool(self._call(f"looking for artifact {sha[:12]}",
                               lambda: self.fs.exists(self.path(sha))))

    def upload(self, local: Path, sha: str) -> None:
        """Put ``local`` (whose content hashes to ``sha``) on the remote unless it is there:
        under a temporary name first, then moved, so the remote never holds part of a file
        under an artifact's name."""
        if self.exists(sha):
            return
        self._call(f"uploading artifact {sha[:12]}",
                   lambda: put_atomic(self.fs, local, self.path(sha)))

    def download(self, sha: str, to: Path) -> None:
        self._call(f"downloading artifact {sha[:12]}",
                   lambda: self.fs.get_file(self.path(sha), str(to)))

    def remove(self, sha: str) -> int:
        path = self.path(sha)

        def rm() -> int:
            if not self.fs.exists(path):
                return 0
            size = int(self.fs.size(path) or 0)
            self.fs.rm(path)
            return size
        return self._call(f"removing artifact {sha[:12]}", rm)


class ArtifactStore:
    """Files named by their sha256 under ``root`` (``<registry>/artifacts``); with ``remote`` (a
    function that opens the :class:`RemoteArtifacts`, on first use), ``root`` is the local copy
    of what the remote holds."""

    def __init__(self, root: str | os.PathLike[str],
                 remote: Callable[[], RemoteArtifacts] | None = None) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self._open_remote = remote
        self._remote: RemoteArtifacts | None = None

    @property
    def remote(self) -> RemoteArtifacts | None:
        if self._remote is None and self._open_remote is not None:
            self._remote = self._open_remote()
        return self._remote

    @property
    def where(self) -> str:
        """Where the artifacts are kept, for messages."""
        return self.remote.where if self.remote is not None else str(self.root)

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
        if self.remote is not None:
            self.remote.upload(final, sha)
        return sha, size

    def fetch(self, sha: str, *, what: str) -> Path:
        """The local file of artifact ``sha``: downloaded from the remote when only the remote
        has it (checked against ``sha`` before it takes the artifact's name). Not re-hashed when
        already here: :func:`verify_file` and :meth:`read_bytes` do that."""
        path = self.path(sha)
        if path.exists() or self.remote is None:
            return path
        if not self.remote.exists(sha):
            raise RegistryError(f"{what}: its artifact {sha[:12]} is neither in {self.root} nor "
                                f"on the {self.remote.where}")
        self.tmp.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        try:
            self.remote.download(sha, tmp)
            actual = sha256_file(tmp)
            if actual != sha:
                raise RegistryError(f"{what}: artifact {sha[:12]} on the {self.remote.where} "
                                    f"was modified after registration (found sha256 {actual}); "
                                    "refusing it")
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def has(self, sha: str) -> bool:
        """Whether the store holds ``sha`` (here, or on the remote)."""
        return self.path(sha).exists() or (self.remote is not None and self.remote.exists(sha))

    def remove(self, sha: str) -> int:
        """Remove artifact ``sha`` (here and on the remote); the bytes freed."""
        path = self.path(sha)
        freed = 0
        if path.exists():
            freed = path.stat().st_size
            os.chmod(path, 0o644)
            path.unlink()
        if self.remote is not None:
            freed = self.remote.remove(sha) or freed
        return freed

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
        path = self.fetch(sha, what=what)
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
