"""The ``register`` stage: ``python -m framework register --model ... --receipt ...``.

The compiler appends this stage to every pipeline that produces a model; it runs inside
``dvc repro`` from the project root and reads ``registry`` and ``gates`` from ``params.yaml``::

    python -m framework register --model models/model.skops --metrics metrics/evaluate.json \\
        --input-schema schemas/features.json --receipt metrics/register.json \\
        [--evaluate-stage evaluate] [--reference data/train.parquet] [--tag k=v ...]

Every run registers the model (with its lineage), evaluates the gates, and promotes the version
to ``champion`` when every gate passes and it beats the champion on ``registry.primary_metric``.
A model that fails its gates is still recorded (status ``rejected``) and the step still succeeds.
The same model bytes, metrics and params registered again are the same version: nothing new.
With ``--evaluate-stage`` (the stage whose metrics these are), a champion that was evaluated on
another test set is scored again on this one by that stage's function, and compared on it.
``$FRAMEWORK_SWEEP_ID`` is recorded when set, and ``$FRAMEWORK_MONITOR_RUN`` (set by ``monitor
--retrain``) as ``lineage.triggered_by``. With ``--reference`` (the table the model was trained on),
the profile of that table and the model's predictions on the test table are stored with the
version (:mod:`framework.monitor.profile`), for monitoring and reports. The columns of
``registry.exclude_from_features`` travel with the tables but are not model inputs: they are left
out of the input schema the version records (the one serving checks requests against) and of the
profile.

Two receipts, written atomically:

* ``--receipt`` (an output DVC records, so it depends on the inputs alone: the same model and
  metrics give the same bytes on every machine, whatever the registry holds): ``receipt_version``
  (2), ``model``, ``sha256``, ``metrics``, ``input_schema_sha256``, ``gates`` (the verdicts of the
  gates that do not depend on a champion), ``registry`` (the configured folder);
* the decision, in the registry (``<registry>/receipts/<model>.json``), with these stable keys:
  ``receipt_version`` (2), ``model``, ``version``, ``uri``, ``unchanged`` (the same version as
  before), ``promoted``, ``alias`` (``"champion"`` when promoted, else null), ``status``
  (``promoted``, ``challenger``, ``rejected`` or ``candidate``), ``champion`` and
  ``previous_champion`` (versions or null), ``reasons``, ``gates`` (every verdict: ``{metric,
  rule, value, threshold, passed, message, champion_value, champion_version}``, and for a
  per-group gate ``by`` and ``groups``: ``{group: {value, rows}}``),
  ``compared_with`` (the champion's version, the metrics it was judged on and those it was
  registered with, whether it was scored again and on which test set), ``primary_metric``
  (``{name, direction, value}``), ``sha256``, ``registry``, ``created_at``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.errors import (ConfigError, SchemaError, SchemaViolation, UsageError, UsageParser,
                              did_you_mean)
from framework.registry.core import (ENV_SWEEP_ID, Registration, check_name, open_registry,
                                     registry_path)

#: Set by ``monitor --retrain``: the monitor run whose alarm triggered this registration.
ENV_MONITOR_RUN = "FRAMEWORK_MONITOR_RUN"
from framework.registry.gates import parse_gates

_REGISTRY_KEYS = ("path", "url", "artifacts", "model_name", "primary_metric", "direction",
                  "target", "exclude_from_features")



def build_parser() -> argparse.ArgumentParser:
    p = UsageParser(prog="python -m framework register",
                description="Gate, record and maybe promote a trained model (the register stage).")
    p.add_argument("--model", required=True, help="the model file (skops)")
    p.add_argument("--metrics", required=True, help="metrics JSON: a flat object of numbers")
    p.add_argument("--input-schema", required=True, help="JSON Schema of the model's input rows")
    p.add_argument("--receipt", required=True, help="where to write the receipt JSON")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                   help="a tag to record (repeatable)")
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--registry", default=None, help="registry folder (default: registry.path)")
    p.add_argument("--reference", default=None, metavar="TABLE",
                   help="the table the model was trained on: its profile (and the model's "
                        "predictions on the test table) are stored with the version, for "
                        "monitoring")
    p.add_argument("--plot", action="append", default=[], metavar="PATH",
                   help="a plot file of the evaluating stage, stored with the version for "
                        "`report` (its template and axes are read from dvc.yaml)")
    p.add_argument("--evaluate-stage", default=None, metavar="STAGE",
                   help="the stage (in dvc.yaml) whose metrics these are: a champion evaluated "
                        "on another test set is scored again by it")
    return p


def _read_json(path: str, what: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        err = SchemaError if what == "input schema" else SchemaViolation
        raise err(f"{path}: not valid JSON ({exc})") from None


def read_metrics(path: str) -> dict[str, float]:
    data = _read_json(path, "metrics file")
    if not isinstance(data, dict):
        raise SchemaViolation(f"{path}: expected a flat JSON object of numbers, found "
                              f"{type(data).__name__}")
    for k, v in data.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise SchemaViolation(f"{path}: metric {k!r} must be a number, found "
                                  f"{type(v).__name__} {v!r}")
    return data


def read_registry_config(params: dict[str, Any], file: str) -> dict[str, Any]:
    cfg = params.get("registry")
    if not isinstance(cfg, dict):
        raise ConfigError("expected a 'registry' mapping with at least model_name",
                          file=file, key="registry")
    for k in cfg:
        if k not in _REGISTRY_KEYS:
            raise ConfigError(f"unknown key {k!r}; known: {', '.join(_REGISTRY_KEYS)}", file=file,
                              key=f"registry.{k}", hint=did_you_mean(k, _REGISTRY_KEYS))
    name = cfg.get("model_name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"expected a model name, found {name!r}", file=file,
                          key="registry.model_name")
    try:
        check_name(name)
    except UsageError as exc:
        raise ConfigError(str(exc), file=file, key="registry.model_name") from None
    direction = cfg.get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"expected 'maximize' or 'minimize', found {direction!r}", file=file,
                          key="registry.direction",
                          hint=did_you_mean(str(direction), ("maximize", "minimize")))
    url = cfg.get("url")
    if url is not None:
        from framework.registry.postgres import is_url, redact

        if not isinstance(url, str) or not (is_url(url) or url.startswith("sqlite:///")):
            raise ConfigError(f"expected sqlite:///FOLDER or postgresql://USER@HOST:PORT/DATABASE,"
                              f" found {redact(str(url))!r}", file=file, key="registry.url")
    for key in ("primary_metric", "target", "artifacts"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            raise ConfigError(f"expected a string, found {cfg[key]!r}", file=file,
                              key=f"registry.{key}")
    excluded = cfg.get("exclude_from_features") or []
    if not isinstance(excluded, list) or not all(isinstance(c, str) for c in excluded):
        raise ConfigError(f"expected a list of column names, found {excluded!r}", file=file,
                          key="registry.exclude_from_features")
    return {**cfg, "direction": direction, "exclude_from_features": excluded}


def serving_schema(schema: dict[str, Any], excluded: list[str], *, file: str,
                   source: str) -> dict[str, Any]:
    """The table schema without the columns that are not model inputs: the input schema the
    version records, that serving checks requests against."""
    props = schema.get("properties")
    if not excluded:
        return schema
    if not isinstance(props, dict):
        raise SchemaError(f"{source}: registry.exclude_from_features needs 'properties'")
    missing = [c for c in excluded if c not in props]
    if missing:
        raise ConfigError(f"no column {missing[0]!r} in {source}", file=file,
                          key="registry.exclude_from_features",
                          hint=did_you_mean(missing[0], props))
    out = {**schema, "properties": {k: v for k, v in props.items() if k not in excluded}}
    if isinstance(schema.get("required"), list):
        out["required"] = [c for c in schema["required"] if c not in excluded]
    return out


def parse_tags(raw: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--tag {item!r}: expected KEY=VALUE")
        tags[key.strip()] = value
    return tags


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    from framework.io import write_text

    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def dvc_receipt(reg: Registration, *, schema_sha256: str, registry: str) -> dict[str, Any]:
    """The receipt DVC records: what was registered, and the verdicts that depend on it alone
    (not on a champion), so its bytes never depend on what the registry holds."""
    from framework.registry.gates import CHAMPION_RULES

    mv = reg.version
    return {"receipt_version": 2, "model": mv.name, "sha256": mv.sha256, "metrics": mv.metrics,
            "input_schema_sha256": schema_sha256,
            "gates": [{k: v for k, v in g.to_dict().items()
                       if k not in ("champion_value", "champion_version")}
                      for g in reg.verdicts if g.rule not in CHAMPION_RULES],
            "registry": registry}


def decision_path(registry: str | os.PathLike[str], model: str) -> Path:
    """Where the register step writes the decision of the latest registration of ``model``."""
    return Path(registry) / "receipts" / f"{model}.json"


def evaluation(stage: str | None, model_path: str, params: dict[str, Any]) -> tuple[
        dict[str, Any] | None, Any]:
    """The evaluation's identity for the lineage (``{stage, path, sha256}`` of its test table)
    and a function scoring another model on that table with the stage's own function, from the
    stage's command in ``dvc.yaml``; ``(None, None)`` without ``stage``."""
    if stage is None:
        return None, None
    import shlex

    from framework.compiler import DVC_YAML
    from framework.registry.artifacts import sha256_file
    from framework.registry.lineage import read_yaml
    from framework.stage import parse_args

    try:
        cmd = read_yaml(DVC_YAML)["stages"][stage]["cmd"]
        argv = shlex.split(cmd)
        call = parse_args(argv[argv.index("stage") + 1:])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"cannot read stage {stage!r} ({exc}); run `python -m framework "
                          "compile`", file=DVC_YAML, key=f"stages.{stage}") from None
    model_in = next((n for n, p in call.ins.items() if p == model_path), None)
    tables = {n: p for n, p in call.ins.items() if n != model_in}
    if model_in is None or len(tables) != 1:
        return None, None
    (table_name, table_path), = tables.items()
    identity = {"stage": stage, "path": table_path, "sha256": sha256_file(table_path)}

    def rescore(model: Any) -> dict[str, Any]:
        from framework import io
        from framework.stage import execute, load_params

        values = load_params(Path.cwd(), call.params)
        inputs = {model_in: model, table_name: io.read(table_path)}
        return io.to_plain(execute(call, values, inputs, Path.cwd())["metrics"])

    return identity, rescore


def summary(reg: Registration) -> str:
    """A few lines for humans: what was registered and what was decided."""
    mv = reg.version
    what = "unchanged" if reg.unchanged else "registered"
    head = (f"{what} {mv.name} v{mv.version} (sha256 {mv.sha256[:12]}): "
            + (f"promoted to {reg.alias}" if reg.promoted else mv.status))
    lines = [head]
    for v in reg.verdicts:
        lines.append(f"  {'PASS' if v.passed else 'FAIL'}  {v.message}")
    lines += [f"  - {r}" for r in reg.reasons if not r.startswith("gate failed: ")]
    if not reg.promoted and reg.champion is not None:
        lines.append(f"  champion stays v{reg.champion}")
    return "\n".join(lines)


def reference_companions(model_path: str, reference: str, test_path: str | None,
                         schema: dict[str, Any], target: str | None,
                         excluded: Sequence[str] = ()) -> dict[str, bytes]:
    """The profile of the training table, the model's per-row predictions on the test table and
    that table's first rows (a package's input example; :mod:`framework.monitor.profile`), as
    the artifacts stored with the version; the ``excluded`` columns (not model inputs) are left
    out of all three."""
    from framework import io
    from framework.monitor.profile import INPUT_EXAMPLE, PROFILE, TEST_PREDICTIONS, build, \
        example_bytes

    if not Path(reference).is_file():
        raise UsageError(f"--reference {reference} does not exist")
    drop = list(excluded)
    train = io.read(reference).drop(columns=drop, errors="ignore")
    test = io.read(test_path).drop(columns=drop, errors="ignore") if test_path else None
    model = io.load_model(model_path, io.project_trusted()) if test is not None else None
    profile, predictions = build(train, schema=schema, target=target, model=model, test=test)
    out = {PROFILE: profile.to_bytes()}
    if predictions is not None:
        out[TEST_PREDICTIONS] = predictions
        out[INPUT_EXAMPLE] = example_bytes(test, schema, target)
    return out


#: The companion that lists a version's plots; each plot's data is ``plot-<i>``.
PLOTS = "plots"
#: A plot file larger than this is not stored with the version (``report`` says so).
MAX_PLOT_BYTES = 4 * 1024 * 1024
PLOT_PROPS = ("template", "x", "y", "title", "x_label", "y_label")


def plot_companions(paths: list[str], stage: str | None,
                    dvc_yaml: str = "dvc.yaml") -> dict[str, bytes]:
    """The plot files of the evaluating stage, and their DVC properties (from ``dvc.yaml``), as
    companions of the version, so that ``report`` shows each version's own plots."""
    from framework.registry.lineage import read_yaml

    props: dict[str, dict[str, Any]] = {}
    try:
        stages = (read_yaml(dvc_yaml) or {}).get("stages") or {}
        for entry in (stages.get(stage) or {}).get("plots") or [] if stage else []:
            if isinstance(entry, dict):
                for path, p in entry.items():
                    props[str(path)] = {k: v for k, v in (p or {}).items() if k in PLOT_PROPS}
    except (OSError, ValueError, AttributeError):
        props = {}
    index: list[dict[str, Any]] = []
    out: dict[str, bytes] = {}
    for i, path in enumerate(paths):
        entry: dict[str, Any] = {"path": path, **props.get(path, {})}
        file = Path(path)
        if not file.is_file():
            entry["missing"] = "not written by the run"
        elif file.stat().st_size > MAX_PLOT_BYTES:
            entry["missing"] = f"larger than {MAX_PLOT_BYTES // (1024 * 1024)} MiB, not stored"
        else:
            key = f"plot-{i}"
            out[key] = file.read_bytes()
            entry["key"] = key
        index.append(entry)
    out[PLOTS] = json.dumps(index, sort_keys=True).encode()
    return out


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    params_file = args.params
    try:
        from framework.registry.lineage import read_yaml

        params = read_yaml(params_file)
    except FileNotFoundError:
        raise ConfigError("params file not found; run from the project root", file=params_file)\
            from None
    except Exception as exc:
        raise ConfigError(f"cannot parse: {exc}", file=params_file) from None
    if not isinstance(params, dict):
        raise ConfigError("expected a mapping at the top level", file=params_file)
    cfg = read_registry_config(params, params_file)
    gates = parse_gates(params.get("gates"), known_metrics=None, file=params_file, key="gates")
    metrics = read_metrics(args.metrics)
    schema = _read_json(args.input_schema, "input schema")
    if not isinstance(schema, dict):
        raise SchemaError(f"{args.input_schema}: expected a JSON Schema object, found "
                          f"{type(schema).__name__}")
    target = cfg.get("target")
    columns = schema.get("properties")
    if target and isinstance(columns, dict) and target not in columns:
        raise ConfigError(f"target column {target!r} is not in {args.input_schema}",
                          file=params_file, key="registry.target",
                          hint=did_you_mean(target, columns))
    excluded = cfg["exclude_from_features"]
    schema = serving_schema(schema, excluded, file=params_file, source=args.input_schema)
    if not Path(args.model).is_file():
        raise UsageError(f"model file {args.model} does not exist")
    tags = parse_tags(args.tag)

    from framework.registry import lineage
    from framework.registry.artifacts import sha256_file

    inputs = {"model": sha256_file(args.model), "metrics": sha256_file(args.metrics),
              "input_schema": sha256_file(args.input_schema)}
    identity, rescore = evaluation(args.evaluate_stage, args.model, params)
    collected = lineage.collect(project_dir=".", inputs=inputs, skip_stages=("register",))
    if identity is not None:
        collected["evaluation"] = identity
    trigger = os.environ.get(ENV_MONITOR_RUN)
    if trigger:
        collected["triggered_by"] = {"monitor_run": int(trigger) if trigger.isdigit()
                                     else trigger}
    companions = None
    if args.reference:
        companions = reference_companions(args.model, args.reference,
                                          identity["path"] if identity else None, schema, target,
                                          excluded)
    if args.plot:
        companions = {**(companions or {}), **plot_companions(args.plot, args.evaluate_stage)}
    root = registry_path(args.registry)
    with open_registry(root) as reg:
        result = reg.register(
            cfg["model_name"], args.model, metrics=metrics, params=params, input_schema=schema,
            target=target, gates=gates, primary_metric=cfg.get("primary_metric"),
            direction=cfg["direction"], lineage=collected, tags=tags,
            sweep_id=os.environ.get(ENV_SWEEP_ID) or None, rescore=rescore,
            companions=companions)
    write_json_atomic(decision_path(root, cfg["model_name"]), result.receipt(registry=str(root)))
    write_json_atomic(args.receipt, dvc_receipt(result, schema_sha256=inputs["input_schema"],
                                                registry=str(cfg.get("path") or root)))
    print(summary(result))
    return 0

