"""The only module that talks to DVC.

DVC runs as the real ``dvc`` command of the current interpreter (``python -m dvc``), in the
project folder, with the interpreter's ``bin`` folder first on ``PATH`` so the ``python`` in each
stage command is the one that has the framework installed.
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


def repro(root: Path, *targets: str, on_line: Callable[[str | None, str], None] | None = None,
          on_stage: Callable[[StageRun], None] | None = None) -> ReproResult:
    """Run ``dvc repro``, streaming its output; report what ran, was skipped or failed.

    ``on_line(stage, line)`` gets each line worth showing, with the stage that printed it (None
    for DVC's own lines); ``on_stage`` each stage as it ends.
    """
    ensure_repo(root)
    result = ReproResult()
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

    proc = subprocess.Popen(dvc_command("repro", *targets), cwd=root, env=environment(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
    assert proc.stdout is not None
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
    result.returncode = proc.wait()
    finish(time.perf_counter())
    return result


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
