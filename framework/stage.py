"""Run one stage: load, check, call, check, write.

``dvc repro`` calls ``python -m framework stage NAME --run FUNC ...`` (the command the compiler put
in ``dvc.yaml``). The runner

1. reads the stage's params from ``params.yaml`` (blocks with ``_target_`` are instantiated with
   Hydra's ``instantiate``, so a stage function receives a ready, unfitted estimator);
2. loads each input and checks it against its schema;
3. calls the stage function with inputs and params as keyword arguments;
4. checks each returned output, the metrics and the plots against what the stage declares;
5. writes everything atomically, and only once everything has passed its checks.

A schema violation stops the stage with exit code 2 and writes nothing, so ``dvc.lock`` stays as
it was and DVC's cache still holds the previous outputs.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import logging
import shlex
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework import io
from framework.errors import (FrameworkError, RunError, SchemaViolation, StageFunctionError,
                              UsageError, UserError)

log = logging.getLogger(__name__)

PARAMS_FILE = "params.yaml"


@dataclass
class StageCall:
    """Everything the runner needs to run one stage, as parsed from its command line."""

    name: str
    run: str
    params: list[str] = field(default_factory=list)
    ins: dict[str, str] = field(default_factory=dict)
    outs: dict[str, str] = field(default_factory=dict)
    metrics: str | None = None
    plots: dict[str, str] = field(default_factory=dict)
    schemas: dict[str, str] = field(default_factory=dict)
    #: input name → the pinned feature-set version it reads (``NAME@VERSION#SHA256``)
    features: dict[str, str] = field(default_factory=dict)
    #: input name → the compiled point-in-time join it reads (JSON)
    joins: dict[str, str] = field(default_factory=dict)
    #: output name → ``FEATURE_SET[,entity=COLUMN][,timestamp=COLUMN]``: published when written
    publish: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_stage(cls, stage: Any) -> StageCall:
        """The call the compiler's command for a :class:`framework.spec.Stage` describes."""
        from framework.compiler import stage_command

        # the compiler's own command, parsed: one description of a stage's call
        return parse_args(shlex.split(stage_command(stage))[4:])


def parse_args(argv: list[str]) -> StageCall:
    parser = argparse.ArgumentParser(prog="python -m framework stage",
                                     description="Run one pipeline stage (called by dvc repro).")
    parser.add_argument("name")
    parser.add_argument("--run", required=True, help="dotted path of the stage function")
    parser.add_argument("--params", default="", help="comma-separated params.yaml keys")
    for flag in ("in", "out", "plot", "schema", "feature", "join", "publish"):
        parser.add_argument(f"--{flag}", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--metrics", default=None, metavar="PATH")
    ns = parser.parse_args(argv)

    def pairs(items: list[str], flag: str) -> dict[str, str]:
        out = {}
        for item in items:
            name, eq, path = item.partition("=")
            if not eq or not name or not path:
                raise UsageError(f"--{flag} expects NAME=PATH; found {item!r}")
            out[name] = path
        return out

    return StageCall(name=ns.name, run=ns.run, params=[p for p in ns.params.split(",") if p],
                     ins=pairs(ns.__dict__["in"], "in"), outs=pairs(ns.out, "out"),
                     metrics=ns.metrics, plots=pairs(ns.plot, "plot"),
                     schemas=pairs(ns.schema, "schema"), features=pairs(ns.feature, "feature"),
                     joins=pairs(ns.join, "join"), publish=pairs(ns.publish, "publish"))


def load_params(root: Path, keys: list[str]) -> dict[str, Any]:
    """The values of ``keys`` in ``params.yaml``, by their last dotted component."""
    import yaml

    path = root / PARAMS_FILE
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"{PARAMS_FILE} not found in {root}: run `python -m framework compile`") from None
    values = {}
    for key in keys:
        node: Any = data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise UserError(f"{PARAMS_FILE}: no key '{key}'; it is stale relative to dvc.yaml: "
                                "run `python -m framework compile`")
            node = node[part]
        values[key.rsplit(".", 1)[-1]] = node
    return values


def instantiate_params(values: dict[str, Any]) -> dict[str, Any]:
    """Turn ``_target_`` blocks into objects (Hydra's ``instantiate``); leave the rest as data."""
    if not any(_has_target(v) for v in values.values()):
        return values
    return {k: instantiate(v) if _has_target(v) else v for k, v in values.items()}


def instantiate(block: Mapping[str, Any]) -> Any:
    """Hydra's ``instantiate(block, _convert_="all")``.

    A block of plain values (no nested ``_target_``, no other ``_`` key such as ``_partial_``, no
    ``${`` left in a string) is built the way Hydra builds it: its target imported and called with
    copies of the values as keyword arguments. That skips importing Hydra (about 0.13 s), which
    every stage process and every sweep would pay before its first fit. Any other block, or a call
    that raises, goes through Hydra's own ``instantiate``, which words the error.
    """
    target = plain_target(block)
    if target is not None:
        kwargs = {k: copy.deepcopy(v) for k, v in block.items() if k != "_target_"}
        try:
            return target(**kwargs)
        except Exception:  # Hydra calls it again, and reports the error in its words
            pass
    from hydra.utils import instantiate as hydra_instantiate

    return hydra_instantiate(block, _convert_="all")


def plain_target(block: Mapping[str, Any]) -> Any:
    """The callable a plain block names, or None when Hydra must handle the block."""
    path = block.get("_target_")
    if not isinstance(path, str) or not all(
            isinstance(k, str) and (k == "_target_" or not k.startswith("_")) and _is_plain(v)
            for k, v in block.items()):
        return None
    module_name, _, name = path.rpartition(".")
    try:
        target = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        return None  # a nested attribute path, or a missing one: Hydra's locate words it
    return target if callable(target) else None


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return "${" not in value
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, Mapping):
        return "_target_" not in value and all(
            isinstance(k, str | int) and _is_plain(v) for k, v in value.items())
    return False


def _has_target(value: Any) -> bool:
    return isinstance(value, Mapping) and "_target_" in value


def import_function(run: str) -> Any:
    module_name, _, func = run.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import module '{module_name}' of stage function '{run}': {exc}") from exc
    fn = getattr(module, func, None)
    if not callable(fn):
        raise UserError(f"module '{module_name}' has no function '{func}'")
    return fn


_SCHEMAS: dict[tuple[str, int, int, bool], Any] = {}


def schema_file(path: Path, compiled: bool) -> Any:
    """A schema file, checked and compiled once per content (sweeps check many tables)."""
    from framework.schema import compile_schema, load_schema

    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, compiled)
    if key not in _SCHEMAS:
        schema = load_schema(path)
        _SCHEMAS[key] = compile_schema(schema, source=path.name) if compiled else schema
    return _SCHEMAS[key]


def _number_columns(call: StageCall, name: str, root: Path) -> list[str]:
    """The numeric columns an input's schema declares (for reading CSV; see io.read_table)."""
    if name not in call.schemas or io.kind_of(call.ins[name]) != "table":
        return []
    from framework.schema import number_columns

    return number_columns(schema_file(root / call.schemas[name], compiled=False))


def _check_table(df: Any, schema_path: Path, what: str) -> None:
    from framework.schema import validate

    validate(df, schema_file(schema_path, compiled=True), what=what)


def _check_metrics(metrics: Any, schema_path: Path, what: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema_file(schema_path, compiled=False))
    errors = sorted(validator.iter_errors(io.to_plain(metrics)), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.path)) or '(root)'}: {e.message} ({e.validator})"
                 for e in errors[:10]]
        raise SchemaViolation(f"{what} does not match {schema_path.name}:\n" + "\n".join(lines))


def execute(call: StageCall, params: dict[str, Any], inputs: dict[str, Any],
            root: Path) -> dict[str, Any]:
    """Check inputs, call the stage function, check what it returns; no file is written.

    ``params`` are the stage's raw param values by keyword (``_target_`` blocks not yet built),
    ``inputs`` the loaded input artifacts by name. Returns outputs, ``metrics`` and plots (as
    DataFrames) by name. Used by the stage runner and, in memory, by sweeps: one code path, so a
    trial gives exactly what ``dvc repro`` gives for the same params.
    """
    fn = import_function(call.run)
    kwargs = instantiate_params(params)
    for name, value in inputs.items():
        path = call.ins.get(name, name)
        if name in call.schemas and io.kind_of(path) == "table":
            _check_table(value, root / call.schemas[name],
                         f"stage '{call.name}', input '{name}' ({path})")
        kwargs[name] = value

    try:
        result = fn(**kwargs)
    except (KeyboardInterrupt, FrameworkError):
        raise
    except Exception as exc:  # the user's code: their frames, the stage named
        raise StageFunctionError(call.name, call.run, exc) from exc

    expected = {**call.outs, **call.plots, **({"metrics": call.metrics} if call.metrics else {})}
    if not isinstance(result, Mapping):
        raise RunError(f"stage '{call.name}': {call.run} must return a dict with the keys "
                       f"{', '.join(sorted(expected))}; it returned {type(result).__name__}")
    missing = sorted(set(expected) - set(result))
    extra = sorted(set(result) - set(expected))
    if missing or extra:
        raise RunError(f"stage '{call.name}': {call.run} returned "
                       + "; ".join(filter(None, [
                           f"no {', '.join(map(repr, missing))}" if missing else "",
                           f"undeclared {', '.join(map(repr, extra))}" if extra else ""]))
                       + f" (declared: {', '.join(sorted(expected))})")
    outputs = dict(result)
    for name, path in call.outs.items():
        if name in call.schemas and io.kind_of(path) == "table":
            _check_table(result[name], root / call.schemas[name],
                         f"stage '{call.name}', output '{name}' ({path})")
    if call.metrics and "metrics" in call.schemas:
        _check_metrics(result["metrics"], root / call.schemas["metrics"],
                       f"stage '{call.name}', metrics ({call.metrics})")
    for name in call.plots:
        outputs[name] = _as_plot_table(result[name], call.name, name)
    return outputs


def run_stage(call: StageCall, root: Path) -> dict[str, float]:
    """Run a stage from and to files; return timings of its phases in seconds."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    remove_leftovers(call, root)
    t0 = time.perf_counter()
    params = load_params(root, call.params)
    fetch_features(call, root)
    inputs = {name: io.read(root / path, numbers=_number_columns(call, name, root))
              for name, path in call.ins.items()}
    t1 = time.perf_counter()
    outputs = execute(call, params, inputs, root)
    t2 = time.perf_counter()
    for name, text in call.publish.items():  # before anything is written
        from framework.features.catalog import check_keys

        feature_set, entity, timestamp = publish_target(text)
        check_keys(outputs[name], entity, timestamp,
                   what=f"stage '{call.name}', output '{name}' ({call.outs[name]}), published "
                        f"as {feature_set}")
    write_outputs(call, outputs, root)
    t3 = time.perf_counter()
    timings = {"load": t1 - t0, "run": t2 - t1, "write": t3 - t2}
    if call.publish:
        publish_outputs(call, params, root)
        timings["publish"] = time.perf_counter() - t3
    return timings


def fetch_features(call: StageCall, root: Path) -> None:
    """Put each pinned feature-set version, and each join of them, at its input's path."""
    if not call.features and not call.joins:
        return
    import json

    from framework.features.pins import materialize, run_join

    for name, pin in call.features.items():
        materialize(pin, root)
    for name, text in call.joins.items():  # again at every run: the entity table may differ
        run_join(json.loads(text), root / call.ins[name], root)


def publish_target(text: str) -> tuple[str, str | None, str | None]:
    """``--publish``'s ``FEATURE_SET[,entity=COLUMN][,timestamp=COLUMN]`` → its three parts."""
    feature_set, *options = text.split(",")
    opts = dict(o.partition("=")[::2] for o in options)
    return feature_set, opts.get("entity"), opts.get("timestamp")


def ensure_published(stages: Any, root: Path) -> list[Any]:
    """Publish the published outputs of ``stages`` (those ``dvc repro`` did not run) whose bytes
    the catalog lacks: the stage was skipped, or its outputs restored from DVC's cache, since the
    store last saw them (a new registry, another clone). Returns the versions this made."""
    from framework.features.catalog import open_catalog
    from framework.registry.artifacts import sha256_file

    missing = []
    outs = [(s, o) for s in stages for o in s.outs if o.publish is not None]
    if not outs:
        return []
    with open_catalog(create=True, project_dir=root) as cat:
        for stage, o in outs:
            path = root / o.path
            if not path.is_file():
                continue
            have = {fv.sha256 for fv in cat.versions(o.publish.feature_set)}
            if sha256_file(path) not in have and stage not in missing:
                missing.append(stage)
    made = []
    for stage in missing:
        call = StageCall.from_stage(stage)
        made += [fv for fv, created in publish_outputs(call, load_params(root, call.params), root)
                 if created]
    return made


def publish_outputs(call: StageCall, params: dict[str, Any], root: Path) -> list[Any]:
    """Record each published output as a version of its feature set (see framework.features);
    ``[(version, created)]``."""
    from framework.features.catalog import open_catalog
    from framework.registry.artifacts import sha256_file
    from framework.registry.lineage import git_state

    lineage = {"stage": call.name, "run": call.run, "git": git_state(root),
               "params": io.to_plain(params),
               "inputs": {n: sha256_file(root / p) for n, p in call.ins.items()
                          if (root / p).is_file()},
               "features": dict(call.features)}
    done = []
    with open_catalog(create=True, project_dir=root) as cat:
        for name, text in call.publish.items():
            feature_set, entity, timestamp = publish_target(text)
            schema = None
            if name in call.schemas:
                schema = schema_file(root / call.schemas[name], compiled=False)
            fv, created = cat.publish(feature_set, root / call.outs[name], entity=entity,
                                      timestamp=timestamp, schema=schema, lineage=lineage)
            log.info("%s %s (%s rows, sha256 %s)", "published" if created else "unchanged:",
                     fv.ref, f"{fv.rows:,}", fv.sha256[:12])
            done.append((fv, created))
    return done


def remove_leftovers(call: StageCall, root: Path) -> None:
    """Remove the temporary files a killed run of this stage left beside its outputs. ``dvc
    repro`` holds the repository's lock, so no other writer of these outputs is running."""
    for path in (*call.outs.values(), *call.plots.values(),
                 *([call.metrics] if call.metrics else [])):
        target = root / path
        if target.parent.is_dir():
            for leftover in target.parent.glob(f".{target.name}.*.tmp"):
                leftover.unlink(missing_ok=True)


def write_outputs(call: StageCall, outputs: dict[str, Any], root: Path) -> None:
    """Write a stage's checked outputs, metrics and plots under ``root``, each atomically."""
    for name, path in call.outs.items():
        io.write(root / path, outputs[name])
    if call.metrics:
        io.write(root / call.metrics, outputs["metrics"])
    for name, path in call.plots.items():
        _write_plot(root / path, outputs[name])


def _as_plot_table(value: Any, stage: str, name: str) -> Any:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value
    if isinstance(value, Mapping) or isinstance(value, list):
        return pd.DataFrame(value)
    raise RunError(f"stage '{stage}': plot '{name}' must be a DataFrame, a list of records or a "
                   f"dict of columns; got {type(value).__name__}")


def _write_plot(path: Path, table: Any) -> None:
    suffix = path.suffix.lower()
    with io.atomic_path(path) as tmp:
        if suffix == ".json":
            tmp.write_text(io.dumps_json(table.to_dict(orient="records")))
        elif suffix == ".yaml":
            import yaml

            tmp.write_text(yaml.safe_dump(io.to_plain(table.to_dict(orient="records"))))
        else:
            table.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")


def main(argv: list[str]) -> int:
    call = parse_args(argv)
    if any(Path(p).suffix.lower() in io.MODEL_SUFFIXES for p in (*call.ins.values(),
                                                                 *call.outs.values())):
        io.preload_skops()  # this process loads and saves models through io only: skops costs less
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    timings = run_stage(call, Path.cwd())
    log.info("stage '%s' done: %s", call.name,
             ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return 0
