"""Where a sweep's trials run: ``sweep.launcher`` in ``conf/config.yaml`` or on the command line.

``local``  (the default) forked processes on this machine, ``sweep.jobs`` at a time;
``ray``    Ray tasks on the cluster at ``sweep.ray.address`` (``auto``: the cluster this machine
           belongs to, ``ray://host:10001``: a remote one through Ray Client, none: a local
           cluster started for the sweep), ``sweep.ray.num_cpus`` cores per trial.

Every launcher has the same semantics, because they share everything but the dispatch: the
session checks every trial before anything runs, runs the stages every trial shares once, here,
and hands their outputs to the trials; each trial runs :func:`framework.sweep.engine.run_stages`
(which never raises: a trial's failure is its record, the sweep goes on), its model is saved here
as it finishes, and the session registers and records it, so an interrupted sweep resumes with
the same command. Ctrl-C cancels the trials still running on the cluster.

On Ray, the project's code and config reach the workers through Ray's runtime environment (the
project folder as ``working_dir``, without data, models, caches and virtual environments); the
framework and the libraries must be installed where the workers run, as with any Ray job.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, UsageError, did_you_mean

LAUNCHERS = ("local", "ray")
_RAY_KEYS = ("address", "num_cpus")

#: What never goes to the cluster with the project's code.
RAY_EXCLUDES = [".git", ".dvc", ".venv*", "venv", ".framework", "data", "models", "metrics",
                "plots", "multirun", "outputs", "test-artifacts", "dist", "*.parquet", "*.skops",
                "*.csv", "**/__pycache__"]


@dataclass(frozen=True)
class Launcher:
    name: str = "local"
    address: str | None = None
    num_cpus: float = 1.0


def parse(sweep: Mapping[str, Any] | None, file: str = "conf/config.yaml") -> Launcher:
    """The launcher a ``sweep:`` block asks for, checked (a ConfigError names the key)."""
    sweep = sweep or {}
    name = sweep.get("launcher") or "local"
    if name not in LAUNCHERS:
        raise ConfigError(f"unknown launcher {name!r}; one of {', '.join(LAUNCHERS)}",
                          file=file, key="sweep.launcher", hint=did_you_mean(str(name), LAUNCHERS))
    ray = sweep.get("ray") or {}
    if not isinstance(ray, Mapping):
        raise ConfigError(f"expected a mapping like {{address: auto, num_cpus: 1}}, found "
                          f"{ray!r}", file=file, key="sweep.ray")
    for key in ray:
        if key not in _RAY_KEYS:
            raise ConfigError(f"unknown key {key!r}; known: {', '.join(_RAY_KEYS)}", file=file,
                              key=f"sweep.ray.{key}", hint=did_you_mean(str(key), _RAY_KEYS))
    address = ray.get("address")
    if address is not None and not isinstance(address, str):
        raise ConfigError(f"expected 'auto', 'ray://HOST:PORT' or HOST:PORT, found {address!r}",
                          file=file, key="sweep.ray.address")
    cpus = ray.get("num_cpus", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, int | float) or cpus <= 0:
        raise ConfigError(f"expected a number of cores > 0, found {cpus!r}", file=file,
                          key="sweep.ray.num_cpus")
    return Launcher(str(name), address or None, float(cpus))


def run(launcher: Launcher, tasks: Sequence[Any], jobs: int) -> Iterator[Any]:
    """Run a batch of trial tasks on ``launcher``; yield each outcome, saved, as it finishes."""
    from framework.sweep import engine, warm

    if launcher.name == "ray":
        yield from run_ray(launcher, tasks)
        return
    process = warm.current()
    if process is not None:
        yield from process.run(tasks, jobs)
    else:
        yield from engine.run_tasks(tasks, jobs)


# -- Ray -----------------------------------------------------------------------------------------

def _ray_trial(memo: dict[str, Any], task: Any, num_cpus: float) -> Any:
    """One trial in a Ray worker: the shared stages' outputs installed, then the trial's own."""
    from threadpoolctl import threadpool_limits

    from framework.sweep import engine

    engine._MEMO.update(memo)
    with threadpool_limits(limits=max(1, int(num_cpus))):
        return engine.run_stages(task)


def connect(launcher: Launcher, root: Path) -> Any:
    """``ray``, initialised for the project at ``root`` (once per process)."""
    try:
        import ray
    except ImportError:
        raise UsageError("sweep.launcher=ray needs Ray: pip install 'framework[ray]'") from None
    if not ray.is_initialized():
        _reachable(launcher.address)
        runtime_env = {"working_dir": str(root), "excludes": RAY_EXCLUDES,
                       "env_vars": {"DVC_NO_ANALYTICS": "1"}}
        try:
            ray.init(address=launcher.address, runtime_env=runtime_env, include_dashboard=False,
                     logging_level="warning", log_to_driver=False,
                     configure_logging=True)
        except ConnectionError as exc:
            raise UsageError(f"sweep.ray.address {launcher.address!r}: no Ray cluster there "
                             f"({exc})") from None
    return ray


def _reachable(address: str | None, timeout: float = 3.0) -> None:
    """Refuse at once an address where nothing listens (Ray itself would retry for minutes)."""
    import socket

    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"sweep.ray.address {address!r}: expected auto, HOST:PORT or "
                         "ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UsageError(f"sweep.ray.address {address!r}: no Ray cluster answers there "
                         f"({exc.strerror or exc}); start one with `ray start --head`, or "
                         "leave the address out to start a local one") from None


def run_ray(launcher: Launcher, tasks: Sequence[Any]) -> Iterator[Any]:
    from framework.sweep import engine

    trials = [task.trial for task in tasks]
    ray = connect(launcher, trials[0].spec.root)  # before any work: a wrong address fails fast
    engine._run_shared(trials)  # once, here: their outputs travel to every trial
    wanted = {key for trial in trials for key in trial.keys.values()}
    memo = {key: value for key, value in engine._MEMO.items() if key in wanted}
    shared = ray.put(memo)
    remote = ray.remote(_ray_trial).options(num_cpus=launcher.num_cpus, max_retries=0)
    pending = {remote.remote(shared, task, launcher.num_cpus): task for task in tasks}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # the worker died, or the result did not come back
                    outcome = engine.TrialOutcome(task=task, seconds=0.0,
                                                  error=f"{type(exc).__name__}: {exc}")
                yield engine.save_trial(outcome)
    finally:
        for ref in pending:  # interrupted: the cluster stops the trials still running
            ray.cancel(ref, force=True)
