"""Many real processes registering at once, and processes killed in the middle of registering."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.registry import open_registry
from framework.registry.store import CRASH_ENV

from registry_testlib import WORKER

#: every test here runs on both backends: SQLite, and a real PostgreSQL server
pytestmark = pytest.mark.usefixtures("backend")

N_PROCESSES = 16


def _spawn(registry: Path, model: Path, roc_auc: float, start: Path | None = None,
           env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, str(WORKER), str(registry), str(model), repr(roc_auc)]
    if start:
        args.append(str(start))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def test_parallel_registration_into_a_registry_that_does_not_exist_yet(
        tmp_path: Path, model_file: Path, backend: str) -> None:
    registry = tmp_path / "does" / "not" / "exist"
    start = tmp_path / "go"
    # a shared server is where a whole team registers at once: 64 processes into a fresh database
    n = 64 if backend == "postgresql" else N_PROCESSES
    scores = random.Random(7).sample(range(9000, 10000), n)
    procs = [_spawn(registry, model_file, s / 10000, start) for s in scores]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.ready.*"))) < n and time.monotonic() < deadline:
        time.sleep(0.01)  # every worker has imported and waits at the start line
    start.touch()
    results = [p.communicate(timeout=120) for p in procs]
    failures = [(p.returncode, err) for p, (_, err) in zip(procs, results, strict=True)
                if p.returncode != 0]
    assert failures == []
    receipts = [json.loads(out) for out, _ in results]
    assert sorted(r["version"] for r in receipts) == list(range(1, n + 1))

    with open_registry(registry, create=False) as reg:
        assert reg.check() == []
        versions = reg.versions("bc")
        assert [v.version for v in versions] == list(range(1, n + 1))
        assert len({v.tags["pid"] for v in versions}) == n  # nothing lost
        # the champion is the best model: every promotion was judged against the real champion
        champion = reg.resolve("bc@champion")
        assert champion.metrics["roc_auc"] == max(scores) / 10000
        history = reg.history("bc")
        assert history[0].from_version is None
        for before, after in zip(history, history[1:], strict=False):
            assert after.from_version == before.to_version  # no silent overwrite of a move
        promoted = [r for r in receipts if r["promoted"]]
        assert sorted(r["version"] for r in promoted) == sorted(m.to_version for m in history)
        by_version = {v.version: v.metrics["roc_auc"] for v in versions}
        for move in history[1:]:
            assert by_version[move.to_version] > by_version[move.from_version]


@pytest.mark.parametrize("point", ["artifact-partial", "after-artifact", "in-transaction"])
def test_killed_registration_leaves_registry_consistent(tmp_path: Path, model_file: Path,
                                                        point: str) -> None:
    registry = tmp_path / "reg"
    first = _spawn(registry, model_file, 0.9)
    assert first.communicate(timeout=60)[0] and first.returncode == 0

    killed = _spawn(registry, model_file, 0.95, env={CRASH_ENV: point})
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL

    with open_registry(registry, create=False) as reg:
        assert reg.check() == []
        assert [v.version for v in reg.versions("bc")] == [1]
        assert reg.resolve("bc@champion").version == 1
    sha_dir = registry / "artifacts" / "sha256"
    for f in sha_dir.rglob("*"):
        if f.is_file():  # every stored artifact is whole
            from framework.registry.artifacts import sha256_file
            assert sha256_file(f) == f.name
    if point == "artifact-partial":
        assert list((registry / "artifacts" / "tmp").glob("*.part"))  # swept after an hour

    after = _spawn(registry, model_file, 0.96)
    out, err = after.communicate(timeout=60)
    assert after.returncode == 0, err
    assert json.loads(out)["version"] == 2 and json.loads(out)["promoted"] is True
