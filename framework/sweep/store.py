"""Where a sweep's trials are recorded: ``.framework/sweeps/<sweep id>/``.

- ``sweep.json``: what the sweep is (id, command line, search space, primary metric, direction);
- ``trials.jsonl``: one JSON line per finished trial, appended by the one process that runs the
  sweep and flushed to disk at once, so a sweep killed at any point keeps every finished trial
  (a torn last line is ignored) and the same command resumes it;
- ``trial-NNN/``: the model and metrics of each trial;
- ``lock``: held by the one process running the sweep (a second run of the same sweep is refused
  while the first runs);
- ``../LATEST``: the id of the latest sweep.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import UsageError, did_you_mean
from framework.io import write_text

#: Temporary files of :func:`framework.io.atomic_path` (``.NAME.RANDOM.tmp``).
TEMPORARY_GLOB = ".*.tmp"
#: Sweep locks this process holds (by folder), kept open until it ends.
_HELD: dict[str, int] = {}

SWEEPS_DIR = Path(".framework") / "sweeps"


@dataclass
class TrialResult:
    index: int
    overrides: list[str]  # the values this trial sweeps over, as Hydra overrides
    status: str  # "ok" | "failed"
    duration: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    version: int | None = None  # the registry version this trial produced
    decision: str | None = None  # the registry's status of its version: candidate
    gates_passed: bool | None = None  # every gate that does not compare with a champion
    finished_at: str | None = None

    @property
    def key(self) -> str:
        return trial_key(self.overrides)

    def value(self, metric: str | None) -> float | None:
        if metric is None or self.status != "ok":
            return None
        value = self.metrics.get(metric)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def trial_key(overrides: Iterable[str]) -> str:
    return " ".join(sorted(overrides))


def sweeps_root(root: Path) -> Path:
    return root / SWEEPS_DIR


class SweepStore:
    def __init__(self, root: Path, sweep_id: str) -> None:
        self.root = root
        self.sweep_id = sweep_id
        self.dir = sweeps_root(root) / sweep_id

    @property
    def meta_path(self) -> Path:
        return self.dir / "sweep.json"

    @property
    def trials_path(self) -> Path:
        return self.dir / "trials.jsonl"

    def trial_dir(self, index: int) -> Path:
        return self.dir / f"trial-{index:03d}"

    def exists(self) -> bool:
        return self.meta_path.is_file()

    def acquire(self) -> None:
        """Hold the sweep's lock for the life of this process, then remove the temporary files
        a killed run of it left (it was their only writer). A sweep already running in another
        process is a UsageError."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if str(self.dir.resolve()) in _HELD:
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no advisory locks: run without the guard
            fcntl = None
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise UsageError(f"sweep {self.sweep_id} is running in another process; wait "
                                 "for it to end (the same command then resumes it)") from None
        _HELD[str(self.dir.resolve())] = fd  # released when the process ends
        for leftover in self.dir.rglob(TEMPORARY_GLOB):
            leftover.unlink(missing_ok=True)

    def start(self, meta: dict[str, Any]) -> None:
        """Record the sweep's description (kept from its first start) and mark it the latest."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.meta_path.exists():
            write_text(self.meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        write_text(sweeps_root(self.root) / "LATEST", self.sweep_id + "\n")

    def meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return {"id": self.sweep_id}

    def append(self, result: TrialResult) -> None:
        line = json.dumps(asdict(result), sort_keys=True, default=str)
        with open(self.trials_path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def results(self) -> list[TrialResult]:
        """Every recorded trial, the latest record of each (a rerun of a failed trial wins)."""
        found: dict[str, TrialResult] = {}
        try:
            lines = self.trials_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        for line in lines:
            try:
                data = json.loads(line)
                result = TrialResult(**data)
            except (ValueError, TypeError):
                continue  # a line torn by a kill
            found[result.key] = result
        return sorted(found.values(), key=lambda r: r.index)


def list_sweeps(root: Path) -> list[str]:
    base = sweeps_root(root)
    if not base.is_dir():
        return []
    return sorted((p.name for p in base.iterdir() if (p / "sweep.json").is_file()),
                  key=lambda name: (base / name / "sweep.json").stat().st_mtime)


def open_sweep(root: Path, sweep_id: str | None = None) -> SweepStore:
    """The sweep named ``sweep_id`` (or a unique prefix of it), or the latest one."""
    known = list_sweeps(root)
    if not known:
        raise UsageError("no sweep recorded yet in this project: run one, e.g. "
                         "`python -m framework +experiment=tune_logreg`")
    if sweep_id is None:
        latest = sweeps_root(root) / "LATEST"
        sweep_id = latest.read_text().strip() if latest.is_file() else known[-1]
    matches = [k for k in known if k == sweep_id] or [k for k in known if k.startswith(sweep_id)]
    if not matches:
        hint = did_you_mean(sweep_id, known)
        raise UsageError(f"no sweep '{sweep_id}'" + (f"; {hint}" if hint else "")
                         + f" (sweeps: {', '.join(known[-10:])})")
    if len(matches) > 1:
        raise UsageError(f"'{sweep_id}' names several sweeps: {', '.join(matches)}")
    return SweepStore(root, matches[0])


def ranked(results: Iterable[TrialResult], metric: str | None, direction: str) -> list[TrialResult]:
    """Trials best first on ``metric``, those that pass their gates before those that do not on
    a tie; failed trials and trials without the metric last."""
    results = list(results)
    sign = -1.0 if direction == "maximize" else 1.0

    def order(r: TrialResult) -> tuple[int, float, bool, int]:
        value = r.value(metric)
        if value is None:
            return (1, 0.0, True, r.index)
        return (0, sign * value, r.gates_passed is False, r.index)

    return sorted(results, key=order)


def winner(results: Iterable[TrialResult], metric: str | None, direction: str) -> TrialResult | None:
    """The best trial on the primary metric among those that pass their gates (the gates that
    do not compare with a champion: whether the winner beats the champion is decided when it is
    promoted)."""
    for r in ranked(results, metric, direction):
        if r.value(metric) is not None and r.gates_passed is not False:
            return r
    return None
