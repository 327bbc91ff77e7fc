"""Where a sweep's trials run: ``sweep.launcher`` in ``conf/config.yaml`` or on the command line.

``local``  (the default) forked processes on this machine, ``sweep.jobs`` at a time;
``ray``    Ray tasks on the cluster at ``sweep.ray.address`` (``auto``: the cluster this machine
           belongs to, ``ray://host:10001``: a remote one through Ray Client, none: a local
           cluster started for the sweep), ``sweep.ray.num_cpus`` cores per trial;
``submitit`` SLURM jobs through submitit (``sweep.submitit``: ``cluster`` ``slurm``, ``local``
           or null for SLURM where ``sbatch`` exists and local processes elsewhere; ``folder``
           for its logs and pickles, which the cluster's nodes must see; ``timeout_min``,
           ``cpus_per_task``, ``mem_gb``, ``partition``), one job per trial.

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

LAUNCHERS = ("local", "ray", "submitit")
_RAY_KEYS = ("address", "num_cpus")
_SUBMITIT_KEYS = ("cluster", "folder", "timeout_min", "cpus_per_task", "mem_gb", "partition")
_SUBMITIT_CLUSTERS = ("slurm", "local")

#: What never goes to the cluster with the project's code.
RAY_EXCLUDES = [".git", ".dvc", ".venv*", "venv", ".framework", "data", "models", "metrics",
                "plots", "multirun", "outputs", "test-artifacts", "dist", "*.parquet", "*.skops",
                "*.csv", "**/__pycache__"]


@dataclass(frozen=True)
class Launcher:
    name: str = "local"
    address: str | None = None
    num_cpus: float = 1.0
    #: submitit: the cluster (None: auto), its folder, and the job's resources
    cluster: str | None = None
    folder: str = ".framework/submitit"
    timeout_min: int = 60
    cpus_per_task: int = 1
    mem_gb: float | None = None
    partition: str | None = None


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
    sub = _submitit_block(sweep.get("submitit"), file)
    return Launcher(str(name), address or None, float(cpus), **sub)


def _submitit_block(raw: Any, file: str) -> dict[str, Any]:
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"expected a mapping like {{cluster: slurm, timeout_min: 60}}, found "
                          f"{raw!r}", file=file, key="sweep.submitit")
    for key in raw:
        if key not in _SUBMITIT_KEYS:
            raise ConfigError(f"unknown key {key!r}; known: {', '.join(_SUBMITIT_KEYS)}",
                              file=file, key=f"sweep.submitit.{key}",
                              hint=did_you_mean(str(key), _SUBMITIT_KEYS))
    out: dict[str, Any] = {}
    cluster = raw.get("cluster")
    if cluster is not None and cluster not in _SUBMITIT_CLUSTERS:
        raise ConfigError(f"expected slurm, local or null (auto), found {cluster!r}", file=file,
                          key="sweep.submitit.cluster",
                          hint=did_you_mean(str(cluster), _SUBMITIT_CLUSTERS))
    out["cluster"] = cluster
    for key, kind in (("timeout_min", int), ("cpus_per_task", int)):
        value = raw.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"expected a whole number >= 1, found {value!r}", file=file,
                                  key=f"sweep.submitit.{key}")
            out[key] = kind(value)
    mem = raw.get("mem_gb")
    if mem is not None and (isinstance(mem, bool) or not isinstance(mem, int | float)
                            or mem <= 0):
        raise ConfigError(f"expected gigabytes > 0, found {mem!r}", file=file,
                          key="sweep.submitit.mem_gb")
    out["mem_gb"] = None if mem is None else float(mem)
    for key in ("folder", "partition"):
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"expected a string, found {value!r}", file=file,
                                  key=f"sweep.submitit.{key}")
            out[key] = value
    return out


def run(launcher: Launcher, tasks: Sequence[Any], jobs: int) -> Iterator[Any]:
    """Run a batch of trial tasks on ``launcher``; yield each outcome, saved, as it finishes."""
    from framework.sweep import engine, warm

    if launcher.name == "ray":
        yield from run_ray(launcher, tasks)
        return
    if launcher.name == "submitit":
        yield from run_submitit(launcher, tasks)
        return
    process = warm.current()
    if process is not None:
        yield from process.run(tasks, jobs)
    else:
        yield from engine.run_tasks(tasks, jobs)


# -- Ray -----------------------------------------------------------------------------------------

def _trial(memo: dict[str, Any], task: Any, num_cpus: float) -> Any:
    """One trial in a worker of a cluster (a Ray task, a SLURM job): the shared stages' outputs
    installed, then the trial's own stages, one BLAS thread per core it was given."""
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


def _shared_outputs(trials: Sequence[Any]) -> dict[str, Any]:
    """Run the stages every trial shares, once, here; their outputs, for the workers."""
    from framework.sweep import engine

    engine._run_shared(trials)
    wanted = {key for trial in trials for key in trial.keys.values()}
    return {key: value for key, value in engine._MEMO.items() if key in wanted}


def run_ray(launcher: Launcher, tasks: Sequence[Any]) -> Iterator[Any]:
    from framework.sweep import engine

    trials = [task.trial for task in tasks]
    ray = connect(launcher, trials[0].spec.root)  # before any work: a wrong address fails fast
    memo = _shared_outputs(trials)
    shared = ray.put(memo)
    remote = ray.remote(_trial).options(num_cpus=launcher.num_cpus, max_retries=0)
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


# -- submitit (SLURM) ----------------------------------------------------------------------------

def run_submitit(launcher: Launcher, tasks: Sequence[Any]) -> Iterator[Any]:
    import time

    try:
        import submitit
    except ImportError:
        raise UsageError("sweep.launcher=submitit needs submitit: pip install "
                         "'framework[slurm]'") from None
    from framework.sweep import engine

    trials = [task.trial for task in tasks]
    root = trials[0].spec.root
    folder = Path(launcher.folder)
    folder = folder if folder.is_absolute() else root / folder
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=launcher.cluster)
    params: dict[str, Any] = {"timeout_min": launcher.timeout_min,
                              "cpus_per_task": launcher.cpus_per_task,
                              "name": f"framework-{tasks[0].sweep_id}"}
    if launcher.mem_gb is not None:
        params["mem_gb"] = launcher.mem_gb
    if launcher.partition is not None:
        params["slurm_partition"] = launcher.partition
    executor.update_parameters(**params)
    memo = _shared_outputs(trials)
    pending = {executor.submit(_trial, memo, task, launcher.cpus_per_task): task
               for task in tasks}
    try:
        while pending:
            finished = [job for job in pending if job.done()]
            if not finished:
                time.sleep(0.05)
                continue
            for job in finished:
                task = pending.pop(job)
                try:
                    outcome = job.result()
                except Exception as exc:  # the job died, timed out, or was cancelled
                    outcome = engine.TrialOutcome(
                        task=task, seconds=0.0,
                        error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}")
                yield engine.save_trial(outcome)
    finally:
        for job in pending:  # interrupted: the cluster stops the jobs still queued or running
            job.cancel(check=False)
