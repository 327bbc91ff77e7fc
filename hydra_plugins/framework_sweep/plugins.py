"""Hydra plugins of the framework: the ``framework`` sweeper and launcher.

Hydra discovers plugins in the ``hydra_plugins`` namespace package. These classes adapt Hydra's
interfaces to :mod:`framework.sweep.engine`, which does the work:

- ``hydra/sweeper: framework`` sweeps a grid like Hydra's basic sweeper (comma lists,
  ``range()``, ``choice()``; the same key twice: the last wins), without composing every job up
  front: the launcher composes and checks every trial itself, faster, before running any.
- ``hydra/launcher: framework`` runs a batch of trials in parallel processes, runs stages shared
  by all trials once, records and registers every trial, and goes on past a failed trial (Hydra
  sees it as completed with a NaN value; its error is in the sweep's record).
"""

import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper


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


class FrameworkSweeper(Sweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Any] = None) -> None:
        self.max_batch_size = max_batch_size
        self.params = params or {}

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def grid(self, arguments: List[str]) -> List[List[str]]:
        """Every job of the sweep: the product of the values of each key."""
        texts = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        axes: Dict[str, List[str]] = {}
        for override in parser.parse_overrides(texts):
            key = override.get_key_element()
            if not override.is_sweep_override():
                axes[key] = [f"{key}={override.get_value_element_as_str()}"]
            elif override.is_discrete_sweep():
                axes[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
            else:
                from framework.errors import ConfigError

                error = ConfigError(
                    f"{override.input_line}: an interval is a search space, not a list of values",
                    hint="the Optuna sweeper samples intervals: add search=optuna (or "
                         "`- override /search: optuna` in the experiment file)")
                print(f"error: {error}", file=sys.stderr)
                raise SystemExit(error.exit_code)
        return [list(job) for job in itertools.product(*axes.values())]

    def sweep(self, arguments: List[str]) -> Any:
        # the sweep's record lives in the framework's sweep store, not in hydra.sweep.dir
        jobs = self.grid(arguments)
        size = self.max_batch_size or len(jobs)
        returns = []
        for start in range(0, len(jobs), size):
            returns.append(self.launcher.launch(jobs[start:start + size], initial_job_idx=start))
        return returns


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

        optuna = sys.modules.get("optuna")  # the Optuna sweeper: its study's chatter is not ours
        if optuna is not None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
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
