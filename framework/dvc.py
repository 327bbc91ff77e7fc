"""The only module that talks to DVC.

DVC runs as the real ``dvc`` command of the current interpreter (``python -m dvc``, or the same
``dvc.cli.main`` in a process started ahead that imports DVC while the run is being compiled:
:class:`Prepared`), in the project folder, with the interpreter's ``bin`` folder first on
``PATH`` so the ``python`` in each stage command is the one that has the framework installed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import RunError, UsageError

_RUNNING = re.compile(r"^Running stage '(?P<name>[^']+)':")
_SKIPPED = re.compile(r"^Stage '(?P<name>[^']+)' didn't change, skipping")
_RESTORED = re.compile(r"^Stage '(?P<name>[^']+)' is cached - skipping run")
_FAILED = re.compile(r"^ERROR: failed to reproduce '(?P<name>[^']+)'.*?(?:exited with (?P<code>-?\d+))?$")
#: DVC's lines that say nothing a user of the framework needs.
_NOISE = (re.compile(r"^> python -m framework (stage|register) "), re.compile(r"^Updating lock file"),
          re.compile(r"^Use `dvc push`"), re.compile(r"^To track the changes with git"),
          re.compile(r"^\s+git add "), re.compile(r"^To enable auto staging"),
          re.compile(r"^\s*dvc config core.autostage"), re.compile(r"^Data and pipelines are up to date"),
          re.compile(r"^Generating lock file"), re.compile(r"^stage '[^']+' done: "),
          re.compile(r"^'[^']+\.dvc' didn't change, skipping"),
          re.compile(r"^\s*$"))


@dataclass
class StageRun:
    name: str
    status: str  # "ran", "skipped" (unchanged), "restored" (from DVC's run-cache), "failed"
    seconds: float = 0.0


@dataclass
class ReproResult:
    stages: list[StageRun] = field(default_factory=list)
    returncode: int = 0
    stage_exit_code: int | None = None  # exit code of the failed stage's command, when known
    output: list[str] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C: DVC was stopped

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def environment() -> dict[str, str]:
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def dvc_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def ensure_repo(root: Path) -> None:
    if not (root / ".dvc").is_dir():
        raise UsageError(f"{root} is not a DVC repository: run `dvc init` (inside a git "
                         "repository), or start a project with `python -m framework init`")


def run(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a dvc command and capture its output."""
    proc = subprocess.run(dvc_command(*args), cwd=root, env=environment(), text=True,
                          capture_output=True)
    if check and proc.returncode != 0:
        raise RunError(f"`dvc {' '.join(args)}` failed (exit {proc.returncode}):\n"
                       f"{(proc.stderr or proc.stdout).strip()}")
    return proc


def track(root: Path, path: str) -> None:
    """Track a data file with DVC (``dvc add``): its content goes to DVC's cache, a ``.dvc`` file
    that git keeps records its hash, and ``.gitignore`` leaves the file itself to DVC."""
    ensure_repo(root)
    run(root, "add", "--quiet", path)


#: A ``dvc`` process that imports DVC, then waits for its command line on its standard input.
_PREPARED = ("import sys\n"
             "from dvc.cli import main\n"
             "line = sys.stdin.readline().split()\n"
             "if not line or line[0] != 'dvc':\n"
             "    raise SystemExit(0)\n"
             "sys.stdin.close()\n"
             "raise SystemExit(main(line[1:]))\n")


class Prepared:
    """A ``dvc`` process started ahead: it imports DVC (most of a ``dvc repro`` of a few stages)
    while the caller composes and compiles, then runs the command :func:`repro` gives it. It is
    the same ``dvc`` as ``python -m dvc``, in the same folder and environment."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _PREPARED], cwd=root,
                                     env=environment(), text=True, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)

    def start(self, args: list[str]) -> subprocess.Popen[str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(["dvc", *args]) + "\n")
        self.proc.stdin.close()
        return self.proc

    def cancel(self) -> None:
        """Not needed after all: it ends without doing anything."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def prepare(root: Path) -> Prepared | None:
    """A :class:`Prepared` process in ``root`` (None when ``root`` is no DVC repository)."""
    return Prepared(root) if (root / ".dvc").is_dir() else None


def repro(root: Path, *targets: str, on_line: Callable[[str | None, str], None] | None = None,
          on_stage: Callable[[StageRun], None] | None = None,
          prepared: Prepared | None = None) -> ReproResult:
    """Run ``dvc repro``, streaming its output; report what ran, was skipped or failed.

    ``on_line(stage, line)`` gets each line worth showing, with the stage that printed it (None
    for DVC's own lines); ``on_stage`` each stage as it ends.
    """
    ensure_repo(root)
    result = ReproResult()
    if prepared is not None and prepared.proc.poll() is None:
        proc = prepared.start(["repro", *targets])
    else:
        proc = subprocess.Popen(dvc_command("repro", *targets), cwd=root, env=environment(),
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                bufsize=1)
    assert proc.stdout is not None
    try:
        _follow(proc, result, on_line, on_stage)
    except KeyboardInterrupt:  # DVC got the Ctrl-C too (same process group): let it stop
        result.interrupted = True
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if current_stage := next((s for s in result.stages if s.status == "running"), None):
            current_stage.status = "failed"
    result.returncode = proc.wait()
    if result.interrupted and result.returncode == 0:
        result.returncode = 130
    return result


def _follow(proc: subprocess.Popen[str], result: ReproResult,
            on_line: Callable[[str | None, str], None] | None,
            on_stage: Callable[[StageRun], None] | None) -> None:
    """Read DVC's output: which stage runs, ends, is skipped or fails."""
    assert proc.stdout is not None
    current: StageRun | None = None
    started = 0.0

    def finish(now: float) -> None:
        nonlocal current
        if current is not None:
            current.seconds = now - started
            if current.status == "running":
                current.status = "ran"
            if on_stage:
                on_stage(current)
            current = None

    for raw in proc.stdout:
        line = raw.rstrip("\n")
        now = time.perf_counter()
        result.output.append(line)
        if m := _RUNNING.match(line):
            finish(now)
            current, started = StageRun(m["name"], "running"), now
            result.stages.append(current)
            continue
        if m := (_SKIPPED.match(line) or _RESTORED.match(line)):
            finish(now)
            run_ = StageRun(m["name"], "skipped" if _SKIPPED.match(line) else "restored")
            result.stages.append(run_)
            if on_stage:
                on_stage(run_)
            continue
        if m := _FAILED.match(line):
            if current is not None and current.name == m["name"]:
                current.status = "failed"
            if m["code"] is not None:
                result.stage_exit_code = int(m["code"])
        if on_line and not any(p.match(line) for p in _NOISE):
            on_line(current.name if current is not None else None, line)
    if proc.wait() != 0 and current is not None and current.status == "running":
        current.status = "failed"  # killed: DVC may say nothing more of it
    finish(time.perf_counter())


def status(root: Path) -> dict[str, list[str]]:
    """Stages that ``dvc repro`` would rerun, with DVC's reasons."""
    ensure_repo(root)
    proc = run(root, "status", "--json")
    data = json.loads(proc.stdout or "{}")
    changed: dict[str, list[str]] = {}
    for name, entries in data.items():
        reasons = []
        for entry in entries:
            if isinstance(entry, str):
                reasons.append(entry)
            elif isinstance(entry, dict):
                for kind, detail in entry.items():
                    if isinstance(detail, dict):
                        reasons += [f"{kind} {path}: {what}" for path, what in detail.items()]
                    else:
                        reasons.append(f"{kind}: {detail}")
        changed[name] = reasons
    return changed


# -- putting the workspace back after a failed run --------------------------------------------

@dataclass
class Restoration:
    """What :func:`restore` put back: paths restored, and paths it could not restore."""

    restored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def uncached_outputs(root: Path) -> list[str]:
    """The outputs ``dvc.yaml`` keeps out of DVC's cache (``cache: false``: metrics in git,
    receipts): DVC cannot check them out, so they are kept aside before a run."""
    found = []
    for stage in (_read_yaml(root / "dvc.yaml").get("stages") or {}).values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind) or []:
                if isinstance(entry, dict):
                    for path, props in entry.items():
                        if isinstance(props, dict) and props.get("cache") is False:
                            found.append(str(path))
    return found


def snapshot(root: Path) -> dict[str, bytes]:
    """The current bytes of the uncached outputs (small files: metrics, receipts)."""
    out = {}
    for rel in uncached_outputs(root):
        try:
            out[rel] = (root / rel).read_bytes()
        except OSError:
            continue
    return out


def _md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()  # noqa: S324 - DVC's own content hash, not security


def restore(root: Path, stages: list[str], kept: dict[str, bytes]) -> Restoration:
    """Put back the outputs of ``stages`` (those that did not complete: DVC removed their outputs
    before running them) as ``dvc.lock`` records them: cached outputs with ``dvc checkout``,
    uncached ones from ``kept`` (:func:`snapshot`) when their bytes are those the lock names."""
    result = Restoration()
    lock = (_read_yaml(root / "dvc.lock").get("stages") or {})
    recorded: dict[str, str | None] = {}
    for name in stages:
        for entry in (lock.get(name) or {}).get("outs") or []:
            if isinstance(entry, dict) and "path" in entry:
                recorded[str(entry["path"])] = entry.get("md5")
    if not recorded:
        return result
    missing_before = {p for p in recorded if not (root / p).exists()}
    targets = [name for name in stages if name in lock]
    run(root, "checkout", *targets, check=False)
    from framework.io import atomic_path

    for path, md5 in recorded.items():
        target = root / path
        if target.exists() and (md5 is None or _md5(target.read_bytes()) == md5):
            if path in missing_before:
                result.restored.append(path)
            continue
        data = kept.get(path)
        if data is not None and md5 is not None and _md5(data) == md5:
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
            result.restored.append(path)
        else:
            result.missing.append(path)
    return result
