"""Run the trials of a sweep: fast, in parallel, every trial recorded and registered.

Hydra's sweepers decide *which* trials to run (a grid, Optuna's proposals); the framework's
launcher (``hydra/launcher: framework``) hands each batch to a :class:`SweepSession`, which

1. composes each trial's config: Hydra composes once per distinct choice of config groups, and
   plain value overrides (``model.C=0.1``) are applied to a copy the way Hydra applies them;
2. checks every trial (ranges, estimator constraints) before any of them runs;
3. runs once the stages whose inputs and params are the same in every trial (ingest, split ...),
   keyed by a hash of their function, params, inputs and schemas;
4. runs the remaining stages of each trial in worker processes (forked, so they share what step 3
   computed), with the same checked code path as the stage runner (:func:`framework.stage.execute`),
   so a trial gives exactly what ``dvc repro`` gives for its params;
5. registers each trial's model (tagged with the sweep id) and records the trial as it finishes.

Steps 3 and 4 (:func:`run_tasks`) run in the sweep's warm process (:mod:`framework.sweep.warm`),
which has imported what the trials need while this process composed them; without it, here.
A trial that fails is recorded with its error and the sweep goes on. A sweep started again with
the same command has the same id and skips the trials it already finished.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, FrameworkError
from framework.registry.gates import CHAMPION_RULES
from framework.spec import ConfigSource, PipelineSpec, build_spec, check_ranges
from framework.sweep.store import SweepStore, TrialResult, trial_key, winner

log = logging.getLogger(__name__)

#: Outputs of stages shared by all trials, by stage key. Filled in the main process before the
#: workers are forked, so the workers read it without copying.
_MEMO: dict[str, dict[str, Any]] = {}

#: Where, in a sweep's folder, the outputs of its shared stages are written when its trials are
#: saved as DVC experiments.
SHARED_DIR = "shared"
#: Where, in a trial's folder, the outputs of its own stages are written in that case.
WORKSPACE_DIR = "workspace"

#: The session of the sweep running in this process (read by the CLI to print the summary).
CURRENT: SweepSession | None = None

Reporter = Callable[[str], None]
_reporter: Reporter | None = None


def set_reporter(reporter: Reporter | None) -> None:
    """Where progress lines go (the CLI prints them); by default they are logged."""
    global _reporter
    _reporter = reporter


def _report(line: str) -> None:
    (_reporter or log.info)(line)


# --------------------------------------------------------------------------------------------
# identity and checks


def sweep_id(root: Path, master: Any) -> str:
    """A stable id: the same command on the same conf/ and code resumes the same sweep (the
    number of parallel jobs aside)."""
    from omegaconf import OmegaConf

    digest = hashlib.sha256()
    # how the trials are run (jobs, saving DVC experiments) changes nothing of their results
    task = [o for o in master.hydra.overrides.task
            if not o.lstrip("+~").startswith(("sweep.", "hydra.launcher.jobs="))]
    digest.update(json.dumps(task).encode())
    digest.update(OmegaConf.to_yaml(master.hydra.sweeper).encode())
    for folder in ("conf", "pipelines", "schemas"):
        base = root / folder
        if base.is_dir():
            for path in sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                digest.update(path.relative_to(root).as_posix().encode())
                digest.update(path.read_bytes())
    choices = master.hydra.runtime.choices
    name = choices.get("experiment") if "experiment" in choices else None
    return f"{name or 'sweep'}-{digest.hexdigest()[:8]}"


def check_sweep_space(root: Path, master: Any, extra: Sequence[str] = ()) -> None:
    """Refuse a search space that steps outside ``ranges:`` before anything runs.

    Looks at ``hydra.sweeper.params`` and at sweep overrides of the command line (``extra``):
    every value of a list, ``choice`` or ``range``, and both ends of an ``interval``.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    ranges = OmegaConf.to_container(master.get("ranges") or {}, resolve=True)
    if not ranges:
        return
    choices = master.hydra.runtime.choices
    experiment = choices.get("experiment") if "experiment" in choices else None
    declared = (f"conf/experiment/{experiment}.yaml" if experiment else "conf/config.yaml")
    params = master.hydra.sweeper.get("params") or {}
    candidates = [(f"{k}={v}", f"{declared}: hydra.sweeper.params.{k}") for k, v in params.items()]
    candidates += [(o, f"command line override '{o}'") for o in extra]
    parser = OverridesParser.create()
    for text, where in candidates:
        try:
            override = parser.parse_override(text)
        except Exception as exc:  # Hydra's grammar errors: Hydra reports them too, later
            raise ConfigError(f"cannot parse the sweep '{text}': {exc}", file=where) from None
        key = override.key_or_group
        if key not in ranges or not override.is_sweep_override():
            continue
        if override.is_interval_sweep():
            sweep = override.value()
            values = [sweep.start, sweep.end]
        else:
            values = list(override.sweep_iterator())
        source = ConfigSource(root=root)
        for value in values:
            try:
                check_ranges(_nest(key, value), {key: ranges[key]}, source)
            except ConfigError as exc:
                raise ConfigError(exc.detail, file=where) from None


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


# --------------------------------------------------------------------------------------------
# trials


@dataclass
class Trial:
    index: int
    overrides: list[str]  # the full overrides of the job
    swept: list[str]  # the overrides that differ between trials (what the table shows)
    spec: PipelineSpec
    choices: dict[str, Any]
    keys: dict[str, str]  # stage name -> stage key

    @property
    def key(self) -> str:
        return trial_key(self.swept)


@dataclass
class TrialTask:
    """What a worker needs to run one trial (pickled to it)."""

    trial: Trial
    sweep_id: str
    trial_dir: str
    lineage: dict[str, Any]  # what every trial of the sweep shares (git state, packages ...)
    workspace: bool = False  # also write every output of the trial (for DVC experiments)


def stage_keys(spec: PipelineSpec, file_hash: Callable[[str], str]) -> dict[str, str]:
    """A key per stage: the same key means the same outputs (same function, params, inputs)."""
    from framework.spec import lookup

    keys: dict[str, str] = {}
    for stage in spec.stages:
        payload = {
            "run": stage.run,
            "source": file_hash(stage.source) if stage.source else None,
            "params": {p: lookup(spec.params, p) for p in stage.params},
            "ins": {i.name: _input_key(i, keys, file_hash) for i in stage.ins},
            "schemas": {s: file_hash(s) for s in stage.schemas},
            "outs": [o.path for o in stage.outs],
        }
        text = json.dumps(payload, sort_keys=True, default=repr)
        keys[stage.name] = hashlib.sha256(text.encode()).hexdigest()
    return keys


def _input_key(i: Any, keys: dict[str, str], file_hash: Callable[[str], str]) -> str:
    if i.feature is not None:  # a pinned feature-set version: its sha256 says it all
        return i.feature.pin
    if i.join is not None:
        from framework.features.pins import join_plan, plan_text

        entities = f"{keys[i.stage]}/{i.output}" if i.stage else file_hash(i.join.entities)
        return f"{plan_text(join_plan(i.join))}/{entities}"
    return f"{keys[i.stage]}/{i.output}" if i.stage else file_hash(i.path)


def _read_input(i: Any, root: Path, upstream: Any = None) -> Any:
    """An input read from its file, or computed through the feature store (``upstream``: the
    entity table of a join, when a stage of the trial made it)."""
    if i.pinned:
        from framework.features.pins import read_input

        return read_input(i, root, upstream)
    from framework import io

    return io.read(root / i.path)


class SweepSession:
    """One sweep: composes, checks, runs and records the trials of each batch it is given."""

    def __init__(self, root: Path, master: Any, config_loader: Any, jobs: int | None = None) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self.root = root
        self.master = master
        self.config_loader = config_loader
        self.jobs = max(1, int(jobs or os.cpu_count() or 1))
        self.sweep_id = sweep_id(root, master)
        self.store = SweepStore(root, self.sweep_id)
        self.store.acquire()
        self.previous = {r.key: r for r in self.store.results() if r.status == "ok"}
        self.results: list[TrialResult] = []
        self.reused = 0  # trials finished by an earlier run of the same sweep
        self.total = self._planned_total()
        self._parser = OverridesParser.create()
        #: The structural overrides of the command line that every job shares (not its sweeps).
        self._master_structure = tuple(
            _canonical(o) for o in self._parser.parse_overrides(list(master.hydra.overrides.task))
            if not o.is_sweep_override() and self._is_structural(o))
        self._structures: dict[tuple[str, ...], tuple[dict[str, Any], Any, dict[str, Any]]] = {}
        self._hashes: dict[str, str] = {}
        self.started = time.perf_counter()
        self.resumed = bool(self.previous)
        self.primary: str | None = None
        self.direction = "maximize"
        sweep_cfg = master.get("sweep") or {}
        self.save_dvc_experiments = bool(sweep_cfg.get("save_dvc_experiments"))
        from omegaconf import OmegaConf

        from framework.sweep import launchers

        block = OmegaConf.to_container(sweep_cfg, resolve=True) if OmegaConf.is_config(
            sweep_cfg) else dict(sweep_cfg)
        #: where the trials run (sweep.launcher): checked before anything runs
        self.launcher = launchers.parse(block)

    def _planned_total(self) -> int | None:
        n_trials = self.master.hydra.sweeper.get("n_trials")
        return int(n_trials) if n_trials else None

    # -- composition ------------------------------------------------------------------------

    def _is_structural(self, override: Any) -> bool:
        key = override.key_or_group
        return (override.is_add() or override.is_delete() or override.is_force_add()
                or key.startswith("hydra") or "/" in key or (self.root / "conf" / key).is_dir())

    def compose(self, overrides: Sequence[str]) -> tuple[dict[str, Any], ConfigSource]:
        """The job config Hydra would compose for ``overrides`` (resolved into plain data,
        without ``hydra``) and where its values come from.

        Hydra composes once per distinct set of structural overrides (group choices, ``+``/``~``);
        plain value overrides are then set the way Hydra's ``OmegaConf.update(cfg, key, value,
        merge=True)`` sets them, and the result is resolved. The config of a structure is made
        once and each trial's values are set on it and taken back after resolving (making an
        OmegaConf config costs about 12 ms, setting a value and resolving about 3 ms). A test
        checks a trial's params against what ``compile`` writes for the same overrides.
        """
        from omegaconf import OmegaConf

        from framework.config import resolve

        pairs = list(zip(overrides, self._parser.parse_overrides(list(overrides))))
        kinds = [self._is_structural(o) for _, o in pairs]
        texts = [text for (text, _), is_structural in zip(pairs, kinds) if is_structural]
        structural = tuple(_canonical(o) for (_, o), is_structural in zip(pairs, kinds)
                           if is_structural)
        if structural not in self._structures:
            if structural == self._master_structure:
                cfg = self.master  # the command line's own choices: Hydra composed them already
            else:
                cfg = self.config_loader.load_sweep_config(self.master, texts)
            choices = {str(k): v for k, v in OmegaConf.to_container(cfg.hydra.runtime.choices).items()
                       if not str(k).startswith("hydra")}
            job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
            unresolved = OmegaConf.to_container(job, resolve=False)
            self._structures[structural] = (unresolved, OmegaConf.create(unresolved), choices)
        unresolved, base, choices = self._structures[structural]
        source = ConfigSource(root=self.root, choices=dict(choices), overrides=tuple(overrides))
        data = copy.deepcopy(unresolved)
        changed: dict[str, Any] = {}  # top-level key -> its value in ``unresolved``
        try:
            for (text, override), is_structural in zip(pairs, kinds):
                if not is_structural:
                    key = override.key_or_group
                    value = _update(data, key, override.value(), text)
                    top = key.split(".", 1)[0]
                    changed.setdefault(top, unresolved[top])
                    OmegaConf.update(base, key, value, merge=False)
            return resolve(base, source), source
        finally:
            for top, value in changed.items():
                OmegaConf.update(base, top, value, merge=False)

    def prepare(self, index: int, overrides: Sequence[str], swept: Sequence[str]) -> Trial:
        params, source = self.compose(overrides)
        spec = build_spec(params, source)
        if spec.registration is None or not spec.registration.primary_metric:
            raise ConfigError("a sweep needs a 'registry' block with a primary_metric to rank "
                              "and register its trials", file="conf/config.yaml", key="registry")
        return Trial(index=index, overrides=list(overrides), swept=list(swept), spec=spec,
                     choices=dict(source.choices), keys=stage_keys(spec, self._file_hash))

    def _file_hash(self, rel: str) -> str:
        if rel not in self._hashes:
            path = self.root / rel
            self._hashes[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "absent"
        return self._hashes[rel]

    # -- running ----------------------------------------------------------------------------

    def run_batch(self, job_overrides: Sequence[Sequence[str]], initial_index: int) -> list[TrialResult]:
        """Run one batch of jobs; return their results in the order of ``job_overrides``."""
        swept = _varying(job_overrides, self.master)
        if self.master.hydra.sweeper.get("n_trials") is None:  # a grid: this batch tells how many
            self.total = initial_index + len(job_overrides)
        trials = [self.prepare(initial_index + i, list(ov), swept[i])
                  for i, ov in enumerate(job_overrides)]  # every config is checked first
        reg = trials[0].spec.registration
        assert reg is not None
        self.primary, self.direction = reg.primary_metric, reg.direction
        if not self.store.exists():
            self.store.start(self._meta(trials[0]))
        elif initial_index == 0:
            self.store.start(self._meta(trials[0]))  # marks it the latest again
        todo = [t for t in trials if t.key not in self.previous]
        for t in trials:
            if t.key in self.previous:
                done = self.previous[t.key]
                self._finish(done, resumed=True)
        results: dict[str, TrialResult] = {t.key: self.previous[t.key] for t in trials
                                           if t.key in self.previous}
        if todo and not self.previous and initial_index == 0:
            from framework.testing.required import enforce

            enforce(self.root, trials[0].spec.params, "the sweep",
                    composed=self.compose(trials[0].overrides))
        if todo:
            for outcome in self._run_trials(todo):
                result = register_trial(outcome)
                results[trial_key(result.overrides)] = result
                self.store.append(result)
                self._finish(result)
            if self.save_dvc_experiments:
                from framework.sweep.dvc_experiments import save_experiments

                saved = save_experiments(self, [t for t in todo if results[t.key].status == "ok"])
                _report(f"saved {len(saved)} DVC experiments ({', '.join(saved[:3])}"
                        f"{' ...' if len(saved) > 3 else ''}): dvc exp show")
        return [results[t.key] for t in trials]

    def _meta(self, trial: Trial) -> dict[str, Any]:
        from omegaconf import OmegaConf

        reg = trial.spec.registration
        return {"id": self.sweep_id, "created_at": _now(),
                "command": ["python", "-m", "framework", *self.master.hydra.overrides.task],
                "task_overrides": list(self.master.hydra.overrides.task),
                "sweeper": OmegaConf.to_container(self.master.hydra.sweeper, resolve=False),
                "experiment": trial.choices.get("experiment"),
                "model_name": reg.model_name if reg else None,
                "primary_metric": self.primary, "direction": self.direction,
                "planned_trials": self.total}

    def _run_trials(self, trials: list[Trial]) -> Iterator[TrialOutcome]:
        from framework.registry.lineage import collect
        from framework.sweep import launchers

        from framework.features.pins import stage_pins

        lineage = collect(project_dir=self.root)
        # the feature-set versions each trial read (dvc.lock knows only the last plain run's)
        tasks = [TrialTask(trial=t, sweep_id=self.sweep_id,
                           trial_dir=str(self.store.trial_dir(t.index)),
                           lineage={**lineage, "feature_sets": stage_pins(t.spec.stages)},
                           workspace=self.save_dvc_experiments) for t in trials]
        yield from launchers.run(self.launcher, tasks, self.jobs)

    def _finish(self, result: TrialResult, resumed: bool = False) -> None:
        self.results.append(result)
        self.reused += resumed
        best = winner(self.results, self.primary, self.direction)
        total = self.total or "?"
        mark = "✓" if result.status == "ok" else "✗"
        what = " ".join(result.overrides) or "(defaults)"
        if result.status == "ok":
            value = result.value(self.primary)
            shown = f"{self.primary} {value:.4f}" if value is not None else f"{self.primary} -"
            best_text = f"best {best.value(self.primary):.4f}" if best else "best -"
            tail = f"v{result.version} {result.decision}" if result.version else ""
            line = f"{shown}  ({best_text})  {result.duration:5.2f} s  {tail}"
        else:
            line = f"failed: {(result.error or '').splitlines()[0][:120]}"
        note = "  (recorded earlier)" if resumed else ""
        _report(f"[{len(self.results):>3}/{total}] {mark} {what}  {line}{note}")


def run_tasks(tasks: Sequence[TrialTask], jobs: int) -> Iterator[TrialOutcome]:
    """Run a batch: the stages whose key is the same in every trial once, then the trials'
    stages, ``jobs`` at a time in forked workers; save each trial's model here as it finishes
    and yield its outcome (the main process registers and records it).

    Runs in the sweep's warm process (:mod:`framework.sweep.warm`), or in the main process."""
    trials = [task.trial for task in tasks]
    _run_shared(trials)
    if any(task.workspace for task in tasks):
        _write_shared(trials, Path(tasks[0].trial_dir).parent / SHARED_DIR)
    workers = min(jobs, len(tasks))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for task in tasks:
            yield save_trial(run_stages(task))
        return
    from threadpoolctl import threadpool_limits

    _preload(trials[0].spec)  # loaded once here, inherited by every forked worker
    gc.freeze()  # the workers' collections skip what they inherit (and leave its pages shared)
    context = multiprocessing.get_context("fork")
    # One BLAS/OpenMP thread per worker (the workers already use every core), set before they
    # are forked: each inherits it, and its first fit is ~0.1 s faster than when set in each.
    with threadpool_limits(limits=1), ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                          initializer=_init_worker) as pool:
        pending = {pool.submit(run_stages, task): task for task in tasks}
        # The workers fit; meanwhile this process imports what saving a model needs (skops),
        # so no worker pays for it and no core waits. The workers are forked already: a stage
        # function that calls skops itself gets the usual import.
        from framework.io import preload_skops

        preload_skops()
        try:
            while pending:
                done, _ = wait(set(pending), return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    try:
                        outcome = future.result()
                    except Exception as exc:  # not picklable, or the worker died
                        outcome = TrialOutcome(task=task, seconds=0.0,
                                               error=f"{type(exc).__name__}: {exc}")
                    yield save_trial(outcome)
        finally:
            if pending:  # stopped early (interrupted, or the reader went away): start no more
                pool.shutdown(wait=True, cancel_futures=True)


def _run_shared(trials: Sequence[Trial]) -> None:
    """Run, once, the stages whose key is the same in every trial."""
    from framework.spec import lookup
    from framework.stage import StageCall, execute

    first = trials[0]
    root = first.spec.root
    t0 = time.perf_counter()
    ran = []
    for stage in first.spec.stages:
        key = first.keys[stage.name]
        if key in _MEMO or any(t.keys.get(stage.name) != key for t in trials):
            continue
        inputs = {}
        for i in stage.ins:
            if i.stage is None:
                inputs[i.name] = _read_input(i, root)
            elif first.keys[i.stage] in _MEMO:
                upstream = _MEMO[first.keys[i.stage]][i.output]
                inputs[i.name] = _read_input(i, root, upstream) if i.join else upstream
            else:
                break
        else:
            params = {p.rsplit(".", 1)[-1]: lookup(first.spec.params, p) for p in stage.params}
            _MEMO[key] = _stored(stage, execute(StageCall.from_stage(stage), params, inputs,
                                                root))
            ran.append(stage.name)
    if ran:
        _report(f"shared stages ran once for the sweep: {', '.join(ran)} "
                f"({time.perf_counter() - t0:.2f} s)")


def _write_shared(trials: Sequence[Trial], folder: Path) -> None:
    """The outputs of the shared stages, as ``dvc repro`` writes them, for the DVC experiments
    of the sweep (:mod:`framework.sweep.dvc_experiments`)."""
    from framework.stage import StageCall, write_outputs

    first = trials[0]
    for stage in first.spec.stages:
        outputs = _MEMO.get(first.keys[stage.name])
        if outputs is not None:
            write_outputs(StageCall.from_stage(stage), outputs, folder)


def _stored(stage: Any, outputs: dict[str, Any]) -> dict[str, Any]:
    """A stage's table outputs as the next stage would read them from their files under
    ``dvc repro`` (:func:`framework.io.as_stored`): a trial then fits exactly what a run fits,
    to the byte of its model."""
    from framework import io

    paths = {o.name: o.path for o in stage.outs}
    return {name: io.as_stored(paths[name], value) if name in paths else value
            for name, value in outputs.items()}


def _canonical(override: Any) -> str:
    """An override as text, the same however it was spelled (``+a=b``, ``+a= b``)."""
    return f"{override.get_key_element()}={override.get_value_element_as_str()}"


def _update(data: dict[str, Any], key: str, value: Any, text: str) -> Any:
    """Set ``key`` (dotted) to ``value`` in nested dicts (a mapping merges into a mapping);
    return what ``key`` holds then."""
    node: Any = data
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"'{key}' is not a key of the composed config",
                              file=f"command line override '{text}'",
                              hint=f"to add a new key, write +{text}")
        if depth < len(parts) - 1:
            node = node[part]
    if isinstance(value, dict) and isinstance(node[parts[-1]], dict):
        _merge(node[parts[-1]], value)
    else:
        node[parts[-1]] = value
    return node[parts[-1]]


def _merge(into: dict[str, Any], value: dict[str, Any]) -> None:
    for k, v in value.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def _varying(job_overrides: Sequence[Sequence[str]], master: Any) -> list[list[str]]:
    """Each job's overrides minus those of the command line that every job shares."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(master.hydra.overrides.task))
    fixed = {o.key_or_group for o in parsed if not o.is_sweep_override()}
    return [[o for o in ov if o.lstrip("+~").split("=", 1)[0] not in fixed] for ov in job_overrides]


def _preload(spec: PipelineSpec) -> None:
    """Import and compile what every trial's stages need before forking, so no worker pays for
    it: the stage functions' modules, the classes their ``_target_`` blocks name (Hydra when a
    block needs it), each schema."""
    from framework.registry import open_registry
    from framework.stage import import_function, plain_target, schema_file

    for block in spec.params.values():
        if isinstance(block, dict) and "_target_" in block and plain_target(block) is None:
            import hydra.utils  # noqa: F401  (its instantiate builds this block)

    registry = spec.params.get("registry") or {}
    open_registry(spec.root / registry.get("path", ".framework/registry"),
                  project_dir=spec.root).close()  # created once

    for stage in spec.stages:
        import_function(stage.run)
        for art in (*stage.ins, *stage.outs):
            if art.schema and art.path.endswith((".parquet", ".csv", ".tsv")):
                schema_file(spec.root / art.schema, compiled=True)
        if stage.metrics and stage.metrics.schema:
            schema_file(spec.root / stage.metrics.schema, compiled=False)


def _init_worker() -> None:
    """A trial worker holds nothing that needs saving (it computes in memory), so:

    - it runs at a lower priority than the process that forked it, which saves what the workers
      produce (and first imports skops): results flow as fast as the workers make them, and the
      workers get every core that process leaves;
    - Ctrl-C ends it at once (Python's handler would only interrupt the current trial, and the
      worker would go on with the next);
    - on Linux it ends with the process that forked it, never left behind.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        os.nice(10)
    except OSError:  # pragma: no cover - not allowed here: equal priority works too
        pass
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# one trial (runs in a worker)


@dataclass
class TrialOutcome:
    """A trial on its way: its stages ran (in a worker), its model is saved (where skops is
    imported), then it is registered and recorded (in the main process)."""

    task: TrialTask
    seconds: float  # spent so far
    metrics: dict[str, Any] | None = None
    #: Until saved: the model and, for DVC experiments, the outputs of the trial's own stages
    #: (stage -> outputs), pickled by the worker. As bytes they cross to the saving process
    #: without importing anything there, in the thread that receives them; they are unpickled
    #: by its main thread, which may be importing skops meanwhile (two threads importing
    #: scikit-learn modules at once can fail on its circular imports).
    payload: bytes | None = None
    model_path: str | None = None  # once saved
    #: The sha256 of the saved model file, once the process that saved it (where scikit-learn is
    #: imported) checked its names against the allowlist: the registering process need not
    #: import scikit-learn to check them again, while the file still has these bytes.
    checked_sha256: str | None = None
    error: str | None = None


def run_stages(task: TrialTask) -> TrialOutcome:
    """Run the stages of one trial in memory (in a worker); never raise.

    Outputs of the shared stages are handed to the trial's functions as copies: a function
    that changes its input in place must not change what the next trial receives (under
    ``dvc repro`` each stage reads its inputs afresh from files).
    """
    from framework import io
    from framework.spec import lookup
    from framework.stage import StageCall, execute

    trial = task.trial
    spec = trial.spec
    root = spec.root
    t0 = time.perf_counter()
    try:
        values: dict[tuple[str, str], Any] = {}
        own: dict[str, dict[str, Any]] = {}
        for stage in spec.stages:
            key = trial.keys[stage.name]
            if key in _MEMO:
                outputs = _MEMO[key]
            else:
                inputs = {i.name: _read_input(i, root) if i.stage is None
                          else _read_input(i, root, values[(i.stage, i.output)]) if i.join
                          else _copy(values[(i.stage, i.output)]) if i.stage not in own
                          else values[(i.stage, i.output)] for i in stage.ins}
                params = {p.rsplit(".", 1)[-1]: lookup(spec.params, p) for p in stage.params}
                outputs = _stored(stage, execute(StageCall.from_stage(stage), params, inputs,
                                                 root))
                own[stage.name] = outputs
            values.update({(stage.name, name): value for name, value in outputs.items()})
        reg = spec.registration
        assert reg is not None
        evaluator = next(s for s in spec.stages if s.metrics and s.metrics.path == reg.metrics.path)
        payload = pickle.dumps((values[(reg.model.stage, reg.model.output)],
                                own if task.workspace else None), protocol=pickle.HIGHEST_PROTOCOL)
        return TrialOutcome(task=task, seconds=time.perf_counter() - t0, payload=payload,
                            metrics=io.to_plain(values[(evaluator.name, "metrics")]))
    except Exception as exc:  # a trial's own bug too: recorded, the sweep goes on
        error = _error_text(exc)
    return TrialOutcome(task=task, seconds=time.perf_counter() - t0, error=error)


def save_trial(outcome: TrialOutcome) -> TrialOutcome:
    """Save the trial's model and metrics in its folder (and, for DVC experiments, the outputs
    of its own stages); never raise."""
    from framework import io
    from framework.stage import StageCall, write_outputs

    if outcome.error is not None:
        return outcome
    t0 = time.perf_counter()
    task = outcome.task
    folder = Path(task.trial_dir)
    try:
        assert outcome.payload is not None
        model, own = pickle.loads(outcome.payload)  # made by our own worker
        io.write(folder / "model.skops", model)
        outcome.checked_sha256 = _checked(folder / "model.skops")
        io.write(folder / "metrics.json", outcome.metrics)
        for stage in task.trial.spec.stages if own is not None else ():
            if stage.name in own:
                write_outputs(StageCall.from_stage(stage), own[stage.name], folder / WORKSPACE_DIR)
        outcome.model_path = str(folder / "model.skops")
    except Exception as exc:
        outcome.error = _error_text(exc)
    outcome.payload = None  # what goes on to the main process is small
    outcome.seconds += time.perf_counter() - t0
    return outcome


def _checked(path: Path) -> str:
    """The sha256 of ``path``, after checking the names it holds against the allowlist."""
    from framework.registry.artifacts import sha256_file, trusted_types

    trusted_types(path, what=f"trial model {path}")
    return sha256_file(path)


def register_trial(outcome: TrialOutcome) -> TrialResult:
    """Register the trial's saved model (tagged with the sweep id) and make its record;
    never raise."""
    from framework import io
    from framework.compiler import RECEIPT

    task = outcome.task
    trial = task.trial
    t0 = time.perf_counter()
    base = TrialResult(index=trial.index, overrides=trial.swept, status="failed",
                       params=trial.spec.params, choices=trial.choices, error=outcome.error)
    if outcome.error is None and outcome.model_path is not None:
        try:
            assert outcome.metrics is not None
            registration, receipt = _register(task, Path(outcome.model_path), outcome.metrics,
                                              outcome.checked_sha256)
            if task.workspace:
                io.write(Path(task.trial_dir) / WORKSPACE_DIR / RECEIPT, receipt)
            base.status = "ok"
            base.metrics = outcome.metrics
            base.version = registration.version.version
            base.decision = registration.version.status
            # the gates a trial can pass on its own; beating the champion is judged when the
            # winner is promoted (sweep promote, or sweep apply and a run)
            base.gates_passed = all(v.passed for v in registration.verdicts
                                    if v.rule not in CHAMPION_RULES)
        except Exception as exc:
            base.error = _error_text(exc)
    base.duration = round(outcome.seconds + time.perf_counter() - t0, 4)
    base.finished_at = _now()
    return base


def _error_text(exc: Exception) -> str:
    """What a trial's record says of the error that stopped it: the message of the framework's
    own errors (a stage function's error names the stage and shows the user's frames), the
    type, message and frames of anything else."""
    if isinstance(exc, FrameworkError):
        return str(exc)
    from framework.errors import user_traceback

    return user_traceback(exc)


def _copy(value: Any) -> Any:
    """A copy a stage function may change freely (tables and arrays: their data is copied)."""
    copier = getattr(value, "copy", None)
    if type(value).__module__.startswith(("pandas.", "numpy")) and callable(copier):
        return copier()
    return copy.deepcopy(value)


def _register(task: TrialTask, model_path: Path, metrics: dict[str, Any],
              checked_sha256: str | None = None) -> tuple[Any, Any]:
    """Record the trial as a ``candidate`` version: judged, never promoted (a sweep never moves
    an alias). Returns the registration and the receipt ``dvc repro`` would write."""
    from framework.registry import open_registry
    from framework.registry.artifacts import sha256_file
    from framework.registry.step import dvc_receipt, serving_schema

    spec = task.trial.spec
    reg = spec.registration
    assert reg is not None
    cfg = spec.params["registry"]
    schema = serving_schema(json.loads((spec.root / reg.input_schema).read_text()),
                            list(cfg.get("exclude_from_features") or []),
                            file="params.yaml", source=reg.input_schema)
    model_sha = sha256_file(model_path)
    lineage = {**task.lineage, "inputs": {
        "model": model_sha,
        "training_data": task.trial.keys[reg.model.stage],
    }}
    with open_registry(spec.root / cfg.get("path", ".framework/registry"),
                       project_dir=spec.root) as registry:
        registration = registry.register(
            reg.model_name, model_path, metrics=metrics, params=spec.params, input_schema=schema,
            target=cfg.get("target"), gates=list(reg.gates), primary_metric=reg.primary_metric,
            direction=reg.direction, lineage=lineage, sweep_id=task.sweep_id,
            tags={"sweep": task.sweep_id, "trial": str(task.trial.index),
                  "overrides": " ".join(task.trial.swept)}, promote=False,
            check_types=checked_sha256 != model_sha)
    schema_sha = hashlib.sha256((spec.root / reg.input_schema).read_bytes()).hexdigest()
    return registration, dvc_receipt(registration, schema_sha256=schema_sha,
                                     registry=str(cfg.get("path", ".framework/registry")))
