"""Record a sweep's trials as DVC experiments, so ``dvc exp show`` lists them.

Each finished trial is laid out, as ``dvc repro`` would have left it, in a temporary git worktree
of the project (its ``params.yaml`` and ``dvc.yaml``, the outputs of the stages shared by the sweep
and of its own stages, its receipt), and saved with ``dvc exp save``. The worktree shares the
project's DVC cache; the user's workspace is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from framework import dvc
from framework.errors import RunError, UsageError


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunError(f"`git {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc.stdout


def save_experiments(session: Any, trials: list[Any]) -> list[str]:
    """Save each trial as the DVC experiment ``<sweep id>-<trial>``; return their names."""
    from framework.compiler import compile_spec
    from framework.sweep.engine import SHARED_DIR, WORKSPACE_DIR

    root: Path = session.root
    dvc.ensure_repo(root)
    if subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=root,
                      capture_output=True).returncode != 0:
        raise UsageError("DVC experiments are saved on top of a git commit: commit the project "
                         "first (git add -A && git commit)")
    names = []
    shared = session.store.dir / SHARED_DIR  # written by the run of the trials
    with tempfile.TemporaryDirectory(prefix="framework-exp-") as tmp:
        tree = Path(tmp) / "worktree"
        _git(root, "worktree", "add", "--detach", "--quiet", str(tree), "HEAD")
        try:
            dvc.run(tree, "config", "--local", "cache.dir", str((root / ".dvc" / "cache").resolve()))
            for trial in trials:
                for path in _generated(trial.spec):
                    (tree / path).unlink(missing_ok=True)
                for folder in (shared, session.store.trial_dir(trial.index) / WORKSPACE_DIR):
                    if folder.is_dir():
                        shutil.copytree(folder, tree, dirs_exist_ok=True)
                for rel, text in compile_spec(trial.spec).files.items():
                    (tree / rel).write_text(text)
                name = f"{session.sweep_id}-{trial.index:03d}"
                dvc.run(tree, "exp", "save", "--force", "--quiet", "--name", name,
                        "--message", f"sweep {session.sweep_id} trial {trial.index}: "
                                     + " ".join(trial.swept))
                names.append(name)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root,
                           capture_output=True)
    return names


def _generated(spec: Any) -> list[str]:
    paths = []
    for stage in spec.stages:
        paths += [o.path for o in stage.outs] + [p.path for p in stage.plots]
        if stage.metrics:
            paths.append(stage.metrics.path)
    return paths
