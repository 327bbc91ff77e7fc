"""Hydra plugins of the framework: the ``framework`` sweeper and launcher.

Hydra discovers plugins in the ``hydra_plugins`` namespace package. These classes adapt Hydra's
interfaces to :mod:`framework.sweep.engine`, which does the work:

- ``hydra/sweeper: framework`` is Hydra's basic sweeper (lists, ``range()``, ``choice()``, grids)
  without its composition of every job up front: the launcher composes and checks every trial
  itself, faster, before running any.
- ``hydra/launcher: framework`` runs a batch of trials in parallel processes, runs stages shared
  by all trials once, records and registers every trial, and goes on past a failed trial (Hydra
  sees it as completed with a NaN value; its error is in the sweep's record).
"""

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher


@dataclass
class FrameworkSweeperConf:
    _target_: str = "hydra_plugins.framework_sweep.plugins.FrameworkSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Any] = None


@dataclass
class FrameworkLauncherConf:
    _target_: str = "hydra_plugins.framework_sweep.plugins.FrameworkLauncher"
    # parallel trials; null: the `sweep.jobs` key of the config, else the number of cores
    jobs: Optional[int] = None


ConfigStore.instance().store(group="hydra/sweeper", name="framework", node=FrameworkSweeperConf,
                             provider="framework")
ConfigStore.instance().store(group="hydra/launcher", name="framework", node=FrameworkLauncherConf,
                             provider="framework")


class FrameworkSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """The framework's launcher composes and checks every job of the batch before it runs
        any of them; composing each one here too would double the cost of a sweep."""


class FrameworkLauncher(Launcher):
    def __init__(self, jobs: Optional[int] = None) -> None:
        self.jobs = jobs
        self.session: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.hydra_context = hydra_context
        self.config = config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> List[JobReturn]:
        from framework.errors import FrameworkError
        from framework.sweep import engine

        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        try:
            if self.session is None:
                sweep_cfg = self.config.get("sweep") or {}
                jobs = self.jobs or sweep_cfg.get("jobs")
                self.session = engine.SweepSession(Path.cwd(), self.config,
                                                   self.hydra_context.config_loader, jobs)
                engine.CURRENT = self.session
            results = self.session.run_batch(job_overrides, initial_job_idx)
        except FrameworkError as exc:
            # Hydra would print a traceback; a config error deserves its message and exit code.
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
        returns = []
        for overrides, result in zip(job_overrides, results):
            ret = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED,
                            working_dir=str(self.session.store.trial_dir(result.index)),
                            task_name="framework")
            value = result.value(self.session.primary)
            ret.return_value = math.nan if value is None else value
            returns.append(ret)
        return returns
