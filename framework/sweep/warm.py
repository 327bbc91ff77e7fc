"""The warm process of a sweep: the heavy imports on the second core, while Hydra composes.

A sweep starts with two independent pieces of work. The main process starts Hydra, composes and
checks every trial (a second or more), and the trials need scikit-learn, pandas and skops
imported (about two seconds). Done one after the other, they cost more than the trials of a
20-trial sweep themselves.

So the command line is looked at first: when it looks like a sweep (``-m``/``--multirun``, or a
config group option such as ``+experiment=NAME`` whose file sets ``hydra.mode: MULTIRUN``), a
process is forked at once, before Hydra is even imported. It imports the trials' modules and
waits. The launcher then hands it each batch of trials (:meth:`WarmProcess.run`): it runs the
stages shared by every trial and forks the trials' workers from itself, so they start warm, and
saves each trial's model, and sends back each outcome, and the progress lines, as they come. The
main process registers and records them.

If the command turns out not to be a sweep, the process is stopped unused. Where ``fork`` does not
exist, nothing is started and the trials run from the main process (the same code,
:func:`framework.sweep.engine.run_tasks`).
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from framework.errors import RunError

#: What every trial needs, imported by the warm process before the first batch arrives.
#: Not skops: it is imported while the first trials fit (see engine.run_tasks). scipy.special
#: comes early, so that skops' look-ups of its ufuncs then are short (see io.preload_skops).
WARM_MODULES = (
    "numpy", "scipy.special", "pandas", "pyarrow.parquet", "sklearn.base", "sklearn.pipeline",
    "threadpoolctl", "sqlite3",
    "framework.io", "framework.stage", "framework.schema", "framework.registry",
    "framework.registry.artifacts", "framework.registry.lineage", "framework.sweep.engine",
)

_current: WarmProcess | None = None


def looks_like_sweep(conf: Path, args: Sequence[str]) -> bool:
    """Whether ``python -m framework ARGS`` will probably run a sweep, without composing.

    Only a guess (a wrong one costs a second core for a moment, or the head start): ``-m``, an
    override ``hydra.mode=MULTIRUN``, or a ``group=option`` override, or ``conf/config.yaml``,
    whose file sets ``hydra.mode: MULTIRUN``.
    """
    if any(a in ("-m", "--multirun") for a in args):
        return True
    if any(a.startswith("-") for a in args):  # --cfg, --help, --info ...: nothing runs
        return False
    files = [conf / "config.yaml"]
    for arg in args:
        key, _, value = arg.lstrip("+~").partition("=")
        if key == "hydra.mode":
            return value == "MULTIRUN"
        if value and "/" not in value and "," not in value:
            files.append(conf / key.replace(".", "/") / f"{value}.yaml")
    return any(_sets_multirun(path) for path in files)


def _sets_multirun(path: Path) -> bool:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    hydra = data.get("hydra") if isinstance(data, dict) else None
    return isinstance(hydra, dict) and hydra.get("mode") == "MULTIRUN"


def start(conf: Path, args: Sequence[str]) -> None:
    """Start the warm process if ``args`` look like a sweep and this platform can fork."""
    global _current
    if _current is None and "fork" in multiprocessing.get_all_start_methods() \
            and looks_like_sweep(conf, args):
        _current = WarmProcess()


def current() -> WarmProcess | None:
    """The running warm process, if any."""
    return _current if _current is not None and _current.alive() else None


def stop() -> None:
    """Stop the warm process (unused, or the sweep is over)."""
    global _current
    if _current is not None:
        _current.stop()
        _current = None


class WarmProcess:
    """A forked process that imports what trials need and runs the batches it is handed."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        for stream in (sys.stdout, sys.stderr):  # or the child would print it a second time
            stream.flush()
        self._conn, child = context.Pipe()
        self._used = False
        # not a daemon: daemonic processes may not fork the trials' workers
        self._process = context.Process(target=_serve, args=(child, self._conn),
                                        name="framework-sweep-warm")
        self._process.start()
        child.close()

    def alive(self) -> bool:
        return self._process.is_alive()

    def run(self, tasks: Sequence[Any], jobs: int) -> Iterator[Any]:
        """Run a batch of :class:`~framework.sweep.engine.TrialTask` there; yield the
        :class:`~framework.sweep.engine.TrialOutcome` of each (its model saved) as it
        finishes."""
        from framework.sweep.engine import _report

        self._used = True
        self._conn.send(("run", list(tasks), jobs))
        while True:
            try:
                kind, payload = self._conn.recv()
            except (EOFError, OSError):
                self._process.join(timeout=1)
                raise RunError("the sweep's worker process ended unexpectedly "
                               f"(exit code {self._process.exitcode})") from None
            if kind == "result":
                yield payload
            elif kind == "report":
                _report(payload)
            elif kind == "error":
                raise payload
            else:  # "done"
                return

    def stop(self) -> None:
        """End it. Unused, it is only importing: killed at once. Otherwise it is told to stop
        (or, in the middle of a batch, finds its pipe closed: it starts no new trial, lets the
        running ones finish, and ends)."""
        if not self._used:
            self._process.kill()
        else:
            try:
                self._conn.send(("stop",))
            except OSError:
                pass
        self._conn.close()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _serve(conn: Any, main_end: Any) -> None:
    """The warm process: import, then run each batch it receives until told to stop, or until
    the main process goes away (its end of the pipe closes)."""
    # Ctrl-C reaches the whole process group: the main process reports it and closes the pipe,
    # the trials' workers end at once; this process ends when it sees either (an import or a
    # save cut in the middle would leave it in a state it cannot report from).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    main_end.close()  # the main process's end, inherited: closed, so its exit is seen here
    _warm_imports()
    _run_batches(conn)


def _run_batches(conn: Any) -> None:
    from framework.sweep import engine

    engine.set_reporter(lambda line: conn.send(("report", line)))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] != "run":
            return
        _, tasks, jobs = message
        results = engine.run_tasks(tasks, jobs)
        try:
            for result in results:
                conn.send(("result", result))
            conn.send(("done", None))
        except OSError:  # the main process is gone: no new trial starts
            results.close()
            return
        except Exception as exc:
            try:
                conn.send(("error", _portable(exc)))
            except OSError:
                return


def _warm_imports() -> None:
    """Import :data:`WARM_MODULES`, without garbage collection meanwhile (imports allocate
    much and free little), then freeze what they created, so no later collection (nor any
    forked worker's) walks it."""
    import importlib

    gc.disable()
    try:
        for name in WARM_MODULES:
            try:
                importlib.import_module(name)
            except ImportError:  # only a head start: the trial that needs it will say why
                pass
    finally:
        gc.enable()
    gc.freeze()


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling (every error of the framework does), else a
    :class:`RunError` with its text and traceback."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        import traceback

        return RunError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
