"""Where a model came from: git state, DVC-tracked input hashes, package versions.

Everything here tolerates absence: no git (or not a repository) gives ``commit: null``, no
``dvc.lock`` gives ``dvc_lock: null``. Inside ``dvc repro`` DVC writes each stage's entry to
``dvc.lock`` as soon as that stage finishes, so when the ``register`` stage runs the lock already
holds every earlier stage (the ones that just ran and the ones that were up to date) but not the
``register`` stage itself.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

PACKAGES: tuple[str, ...] = ("framework", "scikit-learn", "pandas", "numpy", "scipy", "skops",
                             "dvc", "hydra-core")
_GIT_TIMEOUT = 10


def git_state(cwd: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """``{"commit": sha|None, "dirty": bool|None, "dirty_paths": [...]}`` of the repo at ``cwd``.

    ``dirty`` looks at tracked files only (untracked files do not make a tree dirty). Inside
    ``dvc repro`` the tree is usually dirty because DVC has just rewritten ``dvc.lock``.
    """
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        head = subprocess.Popen(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=cwd, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        status = subprocess.Popen(["git", "status", "--porcelain=v1", "--untracked-files=no"],
                                  cwd=cwd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
    except OSError:  # no git on PATH
        return {"commit": None, "dirty": None, "dirty_paths": []}
    try:
        head_out, _ = head.communicate(timeout=_GIT_TIMEOUT)
        status_out, _ = status.communicate(timeout=_GIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        head.kill()
        status.kill()
        head.communicate()
        status.communicate()
        return {"commit": None, "dirty": None, "dirty_paths": []}
    commit = head_out.strip() if head.returncode == 0 and head_out.strip() else None
    if status.returncode != 0:
        return {"commit": commit, "dirty": None, "dirty_paths": []}
    paths = [line[3:] for line in status_out.splitlines() if line.strip()]
    return {"commit": commit, "dirty": bool(paths), "dirty_paths": paths[:50]}


def _yaml_load(text: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader


def read_yaml(path: str | os.PathLike[str]) -> Any:
    return _yaml_load(Path(path).read_text(encoding="utf-8"))


def _entry_hash(entry: dict[str, Any]) -> str | None:
    for key in ("md5", "etag", "checksum"):
        if entry.get(key):
            return str(entry[key])
    return None


def _read_lock(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``dvc.lock``'s content (None if absent), or the reason it cannot be parsed."""
    if not path.exists():
        return None, None
    try:
        return read_yaml(path) or {}, None
    except Exception as exc:  # a lock file we cannot parse is recorded, not fatal
        return None, f"could not parse: {exc}"


def dvc_lock_hashes(path: Path, data: dict[str, Any] | None, error: str | None,
                    skip_stages: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The md5 of every dep and out of every stage recorded in ``dvc.lock`` (``data``, read
    from ``path``; None if absent), but ``skip_stages`` (the stage running now: its entry is
    still the previous run's)."""
    if error is not None:
        return {"file": str(path), "error": error, "stages": {}}
    if data is None:
        return None
    stages: dict[str, Any] = {}
    for name, stage in (data.get("stages") or {}).items():
        if not isinstance(stage, dict) or name in skip_stages:
            continue
        stages[name] = {
            kind: {str(e.get("path")): _entry_hash(e) for e in stage.get(kind) or []
                   if isinstance(e, dict)}
            for kind in ("deps", "outs")
        }
    return {"file": str(path), "schema": data.get("schema"), "stages": stages}


def feature_pins(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The feature-set versions the stages of ``dvc.lock`` (``data``) ran with: the ``--feature``
    and ``--join`` pins in their commands (:func:`framework.features.catalog.pin_records`)."""
    from framework.features.catalog import PIN, pin_records

    found: dict[str, list[str]] = {}
    for stage, entry in ((data or {}).get("stages") or {}).items():
        cmd = entry.get("cmd") if isinstance(entry, dict) else None
        text = " ".join(cmd) if isinstance(cmd, list) else str(cmd or "")
        for m in PIN.finditer(text):
            found.setdefault(m[0], []).append(str(stage))
    return pin_records(found)


@cache
def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def collect(*, project_dir: str | os.PathLike[str] = ".",
            inputs: dict[str, str] | None = None,
            skip_stages: tuple[str, ...] = ()) -> dict[str, Any]:
    """The lineage of a registration made from ``project_dir`` (the project root).

    ``inputs`` maps a role (``model``, ``metrics``, ``input_schema``) to the sha256 of the file the
    register step read for it; ``skip_stages`` leaves out the lock entries of the running stage
    (the register step records its own inputs in ``inputs``).
    """
    project_dir = Path(project_dir)
    lock = project_dir / "dvc.lock"
    data, error = _read_lock(lock)
    return {
        "git": git_state(project_dir),
        "dvc_lock": dvc_lock_hashes(lock, data, error, skip_stages),
        "feature_sets": feature_pins(data),
        "inputs": dict(inputs or {}),
        "packages": package_versions(),
        "platform": platform.platform(terse=True),
    }
