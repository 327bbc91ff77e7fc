"""The package store: ``package push``, ``package list``, ``package pull``.

A folder, or any DVC remote of the project (``remote://NAME``, or a bare NAME that ``dvc remote
add`` defined; the same remotes ``registry.artifacts`` can name, reached through DVC's own
configuration and credentials). Where it is: ``--store``, else ``$FRAMEWORK_PACKAGE_STORE``, else
``package.store`` of ``params.yaml``, else ``.framework/packages``. Layout::

    framework-packages/sha256/<2 hex>/<hex>          each file, named by its content
    framework-packages/index/<model>/<version>.json  what a version's package holds

A file is uploaded under a temporary name and moved into place before the index names it, so a
reader never sees part of a package. Pushing the same files again changes nothing; pushing other
bytes as a version the store already holds is refused. Pulling checks every file's sha256 before
it takes its name in the destination, and refuses a file the store altered.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.deploy.build import META_FILE, PackageError, wheel_member
from framework.errors import UsageError

ENV_STORE = "FRAMEWORK_PACKAGE_STORE"
DEFAULT_STORE = os.path.join(".framework", "packages")
PREFIX = "framework-packages"
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")


@dataclass(frozen=True)
class Entry:
    name: str
    version: int
    files: dict[str, dict[str, Any]]  # file name -> {"sha256", "size"}
    model_sha256: str
    pushed_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "files": self.files,
                "model_sha256": self.model_sha256, "pushed_at": self.pushed_at}

    @property
    def size(self) -> int:
        return sum(int(f["size"]) for f in self.files.values())


def _identity(path: Path) -> tuple[str, int, str]:
    """``(model, version, model sha256)`` of a package wheel or build context."""
    if path.suffix == ".whl":
        meta = json.loads(wheel_member(path, META_FILE))
    elif path.name.endswith(".tar.gz"):
        try:
            with tarfile.open(path) as tar:
                member = next((m for m in tar.getmembers() if m.name.startswith("wheels/")
                               and m.name.endswith(".whl") and "_model-" in m.name), None)
                if member is None:
                    raise PackageError(f"{path}: no model wheel in this build context",
                                       exit_code=2)
                import io
                import zipfile

                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    name = next(n for n in archive.namelist() if n.endswith(f"/{META_FILE}"))
                    meta = json.loads(archive.read(name))
        except (OSError, tarfile.TarError, StopIteration) as exc:
            raise PackageError(f"{path}: not a readable build context ({exc})",
                               exit_code=2) from None
    else:
        raise PackageError(f"{path}: push a package wheel (.whl) or its build context "
                           "(.tar.gz)", exit_code=2)
    return str(meta["name"]), int(meta["version"]), str(meta["sha256"])


class PackageStore:
    """Packages on a filesystem ``fs`` (DVC's local or remote filesystem) under ``base``."""

    def __init__(self, fs: Any, base: str, where: str) -> None:
        self.fs = fs
        self.base = fs.join(base, PREFIX)
        self.where = where

    @classmethod
    def open(cls, location: str | None = None, *, project_dir: str | os.PathLike[str] = "."
             ) -> PackageStore:
        from framework.registry.core import _dvc_remote_name

        project = Path(project_dir)
        configured = location or os.environ.get(ENV_STORE) or \
            _configured_key(project, "store") or DEFAULT_STORE
        remote = _dvc_remote_name(str(configured), project)
        if remote is not None:
            from framework.registry.artifacts import RemoteArtifacts

            try:
                opened = RemoteArtifacts(remote, project)
            except Exception as exc:
                raise UsageError(f"package store: {exc}".replace("registry.artifacts",
                                                                 "package store")) from None
            return cls(opened.fs, opened.root, opened.where)
        from dvc_objects.fs.local import LocalFileSystem

        folder = (project / str(configured)).absolute()
        return cls(LocalFileSystem(), str(folder), f"folder {configured}")

    # -- paths -----------------------------------------------------------------------------------

    def blob(self, sha: str) -> str:
        return self.fs.join(self.base, "sha256", sha[:2], sha)

    def index(self, name: str, version: int | None = None) -> str:
        folder = self.fs.join(self.base, "index", name)
        return folder if version is None else self.fs.join(folder, f"{version}.json")

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except (OSError, RuntimeError, ValueError) as exc:
            raise PackageError(f"{what} on the package store ({self.where}): {exc}") from None

    def _put(self, local: Path, dest: str) -> None:
        from framework.registry.artifacts import put_atomic

        self._call(f"uploading {local.name}", lambda: put_atomic(self.fs, local, dest))

    # -- verbs -----------------------------------------------------------------------------------

    def get(self, name: str, version: int) -> Entry | None:
        path = self.index(name, version)
        if not self._call("reading the index", lambda: self.fs.exists(path)):
            return None
        data = json.loads(self._call("reading the index", lambda: self.fs.cat_file(path)))
        return Entry(data["name"], int(data["version"]), dict(data["files"]),
                     str(data["model_sha256"]), str(data["pushed_at"]))

    def push(self, paths: list[Path]) -> tuple[Entry, list[str]]:
        """Upload the files of one version's package; the entry and the names uploaded."""
        from framework.registry.artifacts import sha256_file
        from framework.registry.core import check_name

        if not paths:
            raise UsageError("package push: name the files to push (the wheel, and the build "
                             "context if you want it stored)")
        ids = {p: _identity(p) for p in paths}
        versions = {(n, v) for n, v, _ in ids.values()}
        if len(versions) != 1:
            raise UsageError("package push: the files belong to different versions: " +
                             ", ".join(f"{p.name} is {n} v{v}" for p, (n, v, _) in ids.items()))
        name, version = versions.pop()
        check_name(name)
        model_sha = next(iter(ids.values()))[2]
        entry = self.get(name, version)
        files = dict(entry.files) if entry else {}
        if entry is not None and entry.model_sha256 != model_sha:
            raise UsageError(f"package push: the store holds {name} v{version} with another "
                             f"model (sha256 {entry.model_sha256[:12]}, these files "
                             f"{model_sha[:12]}); a version's package is never replaced")
        uploaded = []
        for path in paths:
            if not _FILE_RE.match(path.name):
                raise UsageError(f"package push: {path.name!r} is not a package file name")
            sha = sha256_file(path)
            known = files.get(path.name)
            if known is not None and known["sha256"] != sha:
                raise UsageError(f"package push: the store holds {path.name} of {name} "
                                 f"v{version} with other bytes (sha256 {known['sha256'][:12]}, "
                                 f"this file {sha[:12]}); a version's package is never replaced")
            if not self._call("looking for a file", lambda: self.fs.exists(self.blob(sha))):
                self._put(path, self.blob(sha))
                uploaded.append(path.name)
            files[path.name] = {"sha256": sha, "size": path.stat().st_size}
        new = Entry(name, version, dict(sorted(files.items())), model_sha,
                    entry.pushed_at if entry and not uploaded else
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if entry is None or entry.files != new.files:
            import tempfile

            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as tmp:
                json.dump(new.to_dict(), tmp, indent=2, sort_keys=True)
            try:
                self._put(Path(tmp.name), self.index(name, version))
            finally:
                os.unlink(tmp.name)
        return new, uploaded

    def list(self, name: str | None = None) -> list[Entry]:
        root = self.fs.join(self.base, "index")
        if not self._call("listing", lambda: self.fs.exists(root)):
            return []
        found = self._call("listing", lambda: list(self.fs.find(root)))
        out = []
        for path in found:
            parts = path.replace("\\", "/").split("/")
            if len(parts) < 2 or not parts[-1].endswith(".json") or \
                    not parts[-1][:-5].isdigit() or (name and parts[-2] != name):
                continue
            entry = self.get(parts[-2], int(parts[-1][:-5]))
            if entry is not None:
                out.append(entry)
        return sorted(out, key=lambda e: (e.name, e.version))

    def pull(self, name: str, version: int | None, dest: Path) -> tuple[Entry, list[Path]]:
        from framework.registry.artifacts import sha256_file

        if version is None:
            entries = self.list(name)
            if not entries:
                raise UsageError(f"package pull: no package of {name!r} in the store "
                                 f"({self.where})")
            entry = entries[-1]
        else:
            got = self.get(name, version)
            if got is None:
                have = [e.version for e in self.list(name)]
                raise UsageError(f"package pull: no {name} v{version} in the store "
                                 f"({self.where}); versions stored: "
                                 f"{', '.join(map(str, have)) if have else 'none'}")
            entry = got
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        for file_name, info in entry.files.items():
            if not _FILE_RE.match(file_name):
                raise PackageError(f"the store's index of {name} v{entry.version} names an "
                                   f"unsafe file {file_name!r}; refusing it")
            target = dest / file_name
            tmp = dest / f".{file_name}.{uuid.uuid4().hex}.part"
            try:
                self._call(f"downloading {file_name}",
                           lambda: self.fs.get_file(self.blob(info["sha256"]), str(tmp)))
                actual = sha256_file(tmp)
                if actual != info["sha256"]:
                    raise PackageError(f"{file_name} in the store ({self.where}) was altered: "
                                       f"sha256 {actual[:12]}, the index says "
                                       f"{info['sha256'][:12]}; nothing was written")
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(target)
        return entry, written


def _configured_key(project: Path, key: str) -> str | None:
    """``package.<key>`` of the project's ``params.yaml``, None when unset."""
    from framework.registry.lineage import read_yaml

    try:
        data = read_yaml(project / "params.yaml")
    except Exception:
        return None
    block = data.get("package") if isinstance(data, dict) else None
    value = block.get(key) if isinstance(block, dict) else None
    return str(value) if value else None
