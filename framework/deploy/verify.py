"""``package verify PACKAGE``: install a package where nothing else is, and check it answers as it
did when it was registered.

1. A fresh virtual environment (no site packages, no pip of its own), in a temporary folder.
2. The install step of the package's ``Dockerfile``, run by this environment's pip for that one
   (``pip --python``): ``pip install --no-index --find-links WHEELS --require-hashes
   --only-binary=:all: -r requirements.lock``, with every pip configuration file and ``PIP_*``
   variable set aside, so the install is offline and takes exactly the locked files.
3. The package's ``<name>-serve`` started on a free port of 127.0.0.1, from an empty folder.
4. The input example posted to ``/invocations`` (``predict``, and ``predict_proba`` for a
   classifier), and the answers compared with the predictions recorded at registration: labels
   exactly, probabilities within ``tolerance``.

``PACKAGE`` is a build context (``NAME-model-V.tar.gz``, or its unpacked folder), which carries
its lock and wheels, or a wheel, whose own lock is used with ``--wheelhouse`` (default: the
``wheelhouse/`` beside it). Exit 0 when every answer matches, 1 with the differences.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.deploy.build import (EXAMPLE_FILE, EXPECTED_FILE, INSTALL_ARGS, LOCK_FILE,
                                    META_FILE, PackageError, parse_lock, wheel_member)

DEFAULT_TOLERANCE = 1e-9
_READY = re.compile(r"^serving .* on http://127\.0\.0\.1:(\d+)$")


@dataclass
class Verdict:
    name: str
    version: int
    ok: bool
    install_seconds: float
    start_seconds: float
    venv_bytes: int
    checks: list[tuple[str, bool, str]] = field(default_factory=list)


@contextmanager
def _source(path: Path, wheelhouse: Path | None, work: Path) -> Iterator[tuple[Path, Path]]:
    """``(wheels folder, lock file)`` to install ``path`` from."""
    if path.is_dir():
        yield path / "wheels", path / LOCK_FILE
        return
    if path.name.endswith(".tar.gz"):
        target = work / "context"
        try:
            with tarfile.open(path) as tar:
                tar.extractall(target, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise PackageError(f"{path}: not a readable build context ({exc})",
                               exit_code=2) from None
        yield target / "wheels", target / LOCK_FILE
        return
    if path.suffix == ".whl":
        from framework.deploy.build import Locked, lock_text, sha256_bytes

        house = wheelhouse or path.parent / "wheelhouse"
        if not house.is_dir():
            raise PackageError(f"no wheelhouse for {path.name}: pass --wheelhouse DIR (the "
                               "folder `package` filled), or verify the build context "
                               "(NAME-model-V.tar.gz) instead", exit_code=2)
        text = wheel_member(path, LOCK_FILE).decode()
        meta = json.loads(wheel_member(path, META_FILE))
        dist = meta["package"]["distribution"]
        wheels = work / "wheels"
        wheels.mkdir()
        for p in house.glob("*.whl"):
            os.symlink(p.resolve(), wheels / p.name)
        target = wheels / path.name
        if target.exists() or target.is_symlink():
            target.unlink()
        os.symlink(path.resolve(), target)
        own = Locked(dist, str(meta["version"]), (sha256_bytes(path.read_bytes()),))
        lock = work / LOCK_FILE
        lock.write_text(lock_text([], [*parse_lock(text), own]))
        yield wheels, lock
        return
    raise PackageError(f"{path}: expected a build context (.tar.gz or its folder) or a wheel "
                       "(.whl)", exit_code=2)


def install_command(python: Path, wheels: Path, lock: Path) -> list[str]:
    """The Dockerfile's install step, run by this environment's pip for ``python``."""
    args = [a.format(wheels=str(wheels), lock=str(lock)) for a in INSTALL_ARGS]
    return [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check",
            "--quiet", *args]


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")
           and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf: no index, no find-links, no constraint
    return env


def folder_bytes(folder: Path) -> int:
    """The bytes of every file under ``folder`` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _post(url: str, body: Any, timeout: float = 30.0) -> tuple[int, Any, dict[str, str]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def _compare(got: Any, want: Any, tolerance: float) -> tuple[bool, str]:
    if not isinstance(got, list) or len(got) != len(want):
        return False, f"expected {len(want)} predictions, got {str(got)[:120]}"
    worst, where = 0.0, None
    for i, (g, w) in enumerate(zip(got, want)):
        gs, ws = (g, w) if isinstance(w, list) else ([g], [w])
        if not isinstance(gs, list) or len(gs) != len(ws):
            return False, f"row {i}: expected {w!r}, got {g!r}"
        for a, b in zip(gs, ws):
            if isinstance(b, float) and isinstance(a, (int, float)) and not isinstance(a, bool):
                diff = abs(a - b) if math.isfinite(a) and math.isfinite(b) else \
                    (0.0 if a == b else math.inf)
                if diff > worst:
                    worst, where = diff, (i, a, b)
            elif a != b:
                return False, f"row {i}: expected {b!r}, got {a!r}"
    if worst > tolerance:
        i, a, b = where  # type: ignore[misc]
        return False, f"row {i}: {a!r} against {b!r} recorded (differs by {worst:.3g})"
    return True, f"{len(want)} rows equal" + (f" (largest difference {worst:.3g})"
                                              if worst else "")


def verify(path: str | os.PathLike[str], *, wheelhouse: str | os.PathLike[str] | None = None,
           tolerance: float = DEFAULT_TOLERANCE, keep: bool = False,
           timeout: float = 120.0, say: Any = None) -> Verdict:
    say = say or (lambda message: None)
    path = Path(path)
    if not path.exists():
        raise PackageError(f"{path} does not exist", exit_code=2)
    work = Path(tempfile.mkdtemp(prefix="framework-verify-"))
    proc = None
    try:
        with _source(path, Path(wheelhouse) if wheelhouse else None, work) as (wheels, lock):
            entries = parse_lock(lock.read_text())
            model = next((e for e in entries if e.name.endswith("-model")), None)
            venv = work / "venv"
            say(f"creating a fresh virtual environment in {venv}")
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                           check=True, capture_output=True)
            python = venv / "bin" / "python"
            say(f"installing {len(entries)} locked distributions offline from {wheels}")
            started = time.perf_counter()
            done = subprocess.run(install_command(python, wheels, lock), capture_output=True,
                                  text=True, env=_offline_env())
            install_seconds = time.perf_counter() - started
            if done.returncode != 0:
                tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
                raise PackageError(f"the offline install failed:\n{tail}")
        site = next((venv / "lib").glob("python*/site-packages"))
        module = next((p.parent for p in site.glob("*_model/" + META_FILE)), None)
        if module is None or model is None:
            raise PackageError(f"{path}: no model package was installed")
        meta = json.loads((module / META_FILE).read_text())
        example = json.loads((module / EXAMPLE_FILE).read_text())
        expected = json.loads((module / EXPECTED_FILE).read_text())
        script = venv / "bin" / meta["package"]["script"]
        empty = work / "run"
        empty.mkdir()
        say(f"starting {script.name}")
        started = time.perf_counter()
        proc = subprocess.Popen([str(script), "--host", "127.0.0.1", "--port", "0"], cwd=empty,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=_offline_env())
        port, output = None, []
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line.rstrip())
            m = _READY.match(line.strip())
            if m:
                port = int(m.group(1))
                break
        start_seconds = time.perf_counter() - started
        if port is None:
            proc.kill()
            raise PackageError(f"{script.name} did not start:\n" + "\n".join(output[-12:]))
        verdict = Verdict(meta["name"], int(meta["version"]), True, install_seconds,
                          start_seconds, folder_bytes(venv))
        base = f"http://127.0.0.1:{port}"
        for method, want in expected.items():
            body = dict(example)
            if method != "predict":
                body["params"] = {"predict_method": method}
            status, answer, headers = _post(f"{base}/invocations", body)
            tag = headers.get("x-model-version") or headers.get("X-Model-Version")
            if status != 200:
                ok, text = False, f"HTTP {status}: {str(answer)[:200]}"
            else:
                ok, text = _compare(answer.get("predictions"), want, tolerance)
                if tag != f"{meta['name']}/{meta['version']}":
                    ok, text = False, f"answered as {tag!r}, expected {meta['name']}/" \
                                      f"{meta['version']}"
            verdict.checks.append((method, ok, text))
            verdict.ok &= ok
        return verdict
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
