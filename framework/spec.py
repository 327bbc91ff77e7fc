"""The typed model of a pipeline config. Every config error is raised here.

``build_spec`` takes the config Hydra composed (plus where each part came from) and returns a
:class:`PipelineSpec`: stages with their function, params, inputs, outputs, metrics and plots, and
the params that go to ``params.yaml``. It checks everything that can be checked before anything
runs, without importing scikit-learn or pandas (estimator constraints come from a cache):

- the shape of each stage (unknown keys, with a did-you-mean);
- that each stage function can be imported (found on disk and defined, read with ``ast``);
- that each input names an output of another stage, and that stages form no cycle;
- that schema files exist and parse as JSON;
- that params named by a stage exist, and fit the types its function declares for them
  (a ``TypedDict`` or a dataclass: unknown key, missing key, wrong type; :mod:`framework.shapes`);
- that values respect ``ranges:`` and the estimator's own ``_parameter_constraints``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import pkgutil
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from framework.constraints import ConstraintCache, explain, satisfies
from framework.errors import ConfigError, UsageError, did_you_mean

#: Top-level config keys that describe the pipeline rather than parametrize it: they never go to
#: ``params.yaml``.
RESERVED_KEYS = ("pipeline", "ranges", "sweep", "hydra")

STAGE_KEYS = ("desc", "run", "params", "ins", "outs", "metrics", "plots")
OUTPUT_KEYS = ("path", "schema", "desc", "publish")
INPUT_KEYS = ("path", "schema", "optional")
FEATURE_INPUT_KEYS = ("feature_set", "schema")
JOIN_INPUT_KEYS = ("join", "schema")
JOIN_KEYS = ("entities", "features", "on", "as_of")
PUBLISH_KEYS = ("feature_set", "entity", "timestamp")
METRICS_KEYS = ("path", "schema")
PLOT_KEYS = ("path", "template", "x", "y", "title", "x_label", "y_label")
RANGE_KEYS = ("min", "max", "log", "choices", "step")
DVC_PLOT_TEMPLATES = ("linear", "simple", "scatter", "smooth", "confusion", "confusion_normalized",
                      "bar_horizontal", "bar_horizontal_sorted")


@dataclass(frozen=True)
class Publish:
    """``outs.NAME.publish``: the output becomes a version of a feature set when written."""

    feature_set: str
    entity: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True)
class Output:
    name: str
    path: str
    schema: str | None = None
    publish: Publish | None = None


@dataclass(frozen=True)
class FeatureUse:
    """A feature set an input reads: the reference as written, and the exact version the
    compiler pinned it to (``NAME@VERSION#SHA256``, :mod:`framework.features.pins`)."""

    ref: str
    max_age_s: int | None = None  # in a join: older feature rows count as missing
    pin: str | None = None


@dataclass(frozen=True)
class Join:
    """A point-in-time join of feature sets onto a table of entities (``ins.NAME.join``)."""

    features: tuple[FeatureUse, ...]
    on: str
    as_of: str | None = None
    entities: str = ""  # the entity table's path (set by linking)


@dataclass(frozen=True)
class Input:
    name: str
    path: str
    schema: str | None = None
    stage: str | None = None  # None for a file outside the pipeline (tracked by DVC as a dependency)
    output: str | None = None
    optional: bool = False  # a file outside the pipeline that may not exist yet
    #: a feature set read by name; ``path`` is then its local copy, made by the stage runner
    feature: FeatureUse | None = None
    #: a point-in-time join (``stage``/``output`` name the entity table when a stage writes it);
    #: ``path`` is then the joined table, made by the stage runner
    join: Join | None = None

    @property
    def pinned(self) -> bool:
        """A feature input or a join: read through the feature store, pinned in the command."""
        return self.feature is not None or self.join is not None


@dataclass(frozen=True)
class Plot:
    name: str
    path: str
    template: str = "linear"
    x: str | None = None
    y: str | None = None
    title: str | None = None
    x_label: str | None = None
    y_label: str | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    run: str  # dotted path of the stage function
    source: str | None  # the function's source file, relative to the project root
    params: tuple[str, ...] = ()
    ins: tuple[Input, ...] = ()
    outs: tuple[Output, ...] = ()
    metrics: Output | None = None
    plots: tuple[Plot, ...] = ()
    desc: str | None = None
    absent: tuple[Input, ...] = ()  # optional inputs whose file does not exist (yet)

    @property
    def declared_inputs(self) -> tuple[Input, ...]:
        """Every input the config declares, the absent optional ones included."""
        return (*self.ins, *self.absent)

    @property
    def schemas(self) -> list[str]:
        found = [a.schema for a in (*self.ins, *self.outs, self.metrics) if a and a.schema]
        return sorted(set(found))


@dataclass(frozen=True)
class Registration:
    """The ``register`` stage the compiler appends when the config has a ``registry`` block."""

    model: Input  # the model artifact (an output of a stage)
    metrics: Output  # the metrics of the stage that evaluates that model
    input_schema: str  # the schema of the table the model was trained on
    model_name: str
    primary_metric: str | None
    direction: str
    gates: tuple[Any, ...] = ()
    evaluator: str | None = None  # the stage whose metrics these are
    test_tables: tuple[str, ...] = ()  # the tables that stage scores the model on
    reference: str | None = None  # the table the model was trained on (profiled for monitoring)


@dataclass(frozen=True)
class PipelineSpec:
    root: Path
    stages: tuple[Stage, ...]  # in a stable topological order
    params: dict[str, Any]  # the content of params.yaml
    pipeline_file: str
    registration: Registration | None = None


@dataclass(frozen=True)
class ConfigSource:
    """Where the parts of a composed config came from, to name the file in error messages."""

    root: Path
    choices: Mapping[str, str | None] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    def override_of(self, key: str) -> str | None:
        """The command line override that set ``key`` (the most specific one), if any."""
        best: tuple[int, str] | None = None
        for override in self.overrides:
            name = override.lstrip("+~").split("=", 1)[0]
            if (key == name or key.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), override)
        if best is None or best[1].lstrip("+~").split("=", 1)[0] in self.choices:
            return None  # no override, or one that picked a group option: the value is in its file
        return best[1]

    def file_of(self, key: str) -> str:
        top = key.split(".", 1)[0].split("[", 1)[0]
        option = self.choices.get(top)
        if option:
            return _display(self.conf_dir / top / f"{option}.yaml", self.root)
        return _display(self.conf_dir / "config.yaml", self.root)

    def where(self, key: str) -> str:
        """The file that set ``key``, or the command line override that did."""
        override = self.override_of(key)
        if override is not None:
            return f"command line override '{override}'"
        return self.file_of(key)


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# entry point


def build_spec(config: Mapping[str, Any], source: ConfigSource) -> PipelineSpec:
    """Check a composed, resolved config and turn it into a :class:`PipelineSpec`."""
    pipeline_file = source.file_of("pipeline")
    pipeline = config.get("pipeline")
    if not isinstance(pipeline, Mapping) or not isinstance(pipeline.get("stages"), Mapping) \
            or not pipeline["stages"]:
        raise ConfigError("expected a mapping 'pipeline.stages' with at least one stage",
                          file=pipeline_file, key="pipeline.stages",
                          hint="select a pipeline in conf/config.yaml's defaults, e.g. "
                               "'- pipeline: tabular_classification'")
    params = {k: v for k, v in config.items() if k not in RESERVED_KEYS}
    ranges = config.get("ranges") or {}
    if not isinstance(ranges, Mapping):
        raise ConfigError("expected a mapping of parameter keys to ranges",
                          file=source.file_of("ranges"), key="ranges")

    raw_stages: Mapping[str, Any] = pipeline["stages"]
    stages = [_parse_stage(name, raw, params, source, pipeline_file)
              for name, raw in raw_stages.items()]
    stages = _link(stages, pipeline_file)
    _check_schemas(stages, source.root, pipeline_file)
    if any(i.pinned for s in stages for i in s.ins):
        from framework.features.pins import pin_inputs

        stages = pin_inputs(stages, source.root, pipeline_file, params)
    check_param_shapes(stages, params, source)
    check_ranges(params, ranges, source)
    check_estimators(params, source)
    check_trusted_types(params, source)
    registration = _registration(params, stages, source)
    check_monitor(params, stages, registration, source)
    return PipelineSpec(root=source.root, stages=tuple(stages), params=params,
                        pipeline_file=pipeline_file, registration=registration)


# --------------------------------------------------------------------------------------------
# the register stage


REGISTER_STAGE = "register"
MODEL_SUFFIXES = (".skops",)


def _registration(params: Mapping[str, Any], stages: list[Stage],
                  source: ConfigSource) -> Registration | None:
    """Where the model, its metrics and its input schema are, and the gates, checked."""
    if params.get("registry") is None:
        if params.get("gates"):
            raise ConfigError("gates are declared but there is no 'registry' block to apply them",
                              file=source.file_of("gates"), key="gates",
                              hint="add registry: {model_name: ..., primary_metric: ...}")
        return None
    from framework.registry.gates import parse_gates
    from framework.registry.step import read_registry_config

    file = source.file_of("registry")
    cfg = read_registry_config(dict(params), file)
    if any(s.name == REGISTER_STAGE for s in stages):
        raise ConfigError(f"the stage name '{REGISTER_STAGE}' is reserved for the registry step",
                          file=source.file_of("pipeline"), key=f"pipeline.stages.{REGISTER_STAGE}")
    models = [(s, o) for s in stages for o in s.outs if o.path.endswith(MODEL_SUFFIXES)]
    if len(models) != 1:
        found = ", ".join(f"{s.name}.{o.name}" for s, o in models) or "none"
        raise ConfigError(f"the registry step needs exactly one stage output that is a model "
                          f"({', '.join(MODEL_SUFFIXES)}); found {found}", file=file, key="registry")
    producer, model = models[0]
    evaluators = [s for s in stages if s.metrics and
                  any(i.stage == producer.name and i.output == model.name for i in s.ins)]
    if not evaluators:
        raise ConfigError(f"no stage with metrics reads the model '{producer.name}.{model.name}'; "
                          "the registry step gates and compares models on those metrics",
                          file=file, key="registry")
    metrics = evaluators[0].metrics
    assert metrics is not None
    known: tuple[str, ...] = ()
    if metrics.schema:
        props = json.loads((source.root / metrics.schema).read_text()).get("properties")
        known = tuple(props) if isinstance(props, Mapping) else ()
    primary = cfg.get("primary_metric")
    if primary and known and primary not in known:
        raise ConfigError(f"'{primary}' is not a metric of stage '{evaluators[0].name}' "
                          f"({metrics.path}: {', '.join(known)})", file=file,
                          key="registry.primary_metric", hint=did_you_mean(primary, known))
    evaluated = [i for i in evaluators[0].ins if i.schema and
                 not (i.stage == producer.name and i.output == model.name)]
    columns: set[str] | None = None
    if len(evaluated) == 1:
        props = json.loads((source.root / evaluated[0].schema).read_text()).get("properties")
        columns = set(props) if isinstance(props, Mapping) else None
    gates = parse_gates(params.get("gates"), known_metrics=set(known) if known else None,
                        file=source.file_of("gates"), key="gates", columns=columns)
    tables = [i for i in producer.ins if i.schema]
    if len(tables) != 1:
        raise ConfigError(f"stage '{producer.name}' must read exactly one table with a schema: "
                          "the registry records it as the model's input schema, and serving "
                          "checks requests against it", file=source.file_of("pipeline"),
                          key=f"pipeline.stages.{producer.name}.ins")
    evaluator = evaluators[0]
    test_tables = tuple(i.path for i in evaluator.ins
                        if not (i.stage == producer.name and i.output == model.name))
    return Registration(
        model=Input(name=model.name, path=model.path, stage=producer.name, output=model.name),
        metrics=metrics, input_schema=tables[0].schema,
        model_name=cfg["model_name"], primary_metric=primary, direction=cfg["direction"],
        gates=tuple(gates), evaluator=evaluator.name, test_tables=test_tables,
        reference=tables[0].path)


def check_monitor(params: Mapping[str, Any], stages: list[Stage],
                  registration: Registration | None, source: ConfigSource) -> None:
    """The ``monitor:`` block (:mod:`framework.monitor.policy`): its keys and values, the columns
    and metrics it names, and the pipeline input a retrain writes to."""
    raw = params.get("monitor")
    if raw is None:
        return
    from framework.monitor.policy import parse

    file = source.file_of("monitor")
    columns = metrics = None
    if registration is not None:
        schema = json.loads((source.root / registration.input_schema).read_text())
        props = schema.get("properties") if isinstance(schema, Mapping) else None
        target = lookup(params, "registry.target")
        if isinstance(props, Mapping):
            columns = [c for c in props if c != target]
        if registration.metrics.schema:
            mprops = json.loads((source.root / registration.metrics.schema).read_text()).get(
                "properties")
            metrics = list(mprops) if isinstance(mprops, Mapping) else None
    policy = parse(raw, file=file, key="monitor", columns=columns, metrics=metrics)
    if isinstance(raw, Mapping) and raw.get("retrain") is not None:
        stage_name, _, input_name = policy.retrain.input.partition(".")
        key = "monitor.retrain.input"
        stage = next((s for s in stages if s.name == stage_name), None)
        if stage is None:
            raise ConfigError(f"no stage {stage_name!r}", file=file, key=key,
                              hint=did_you_mean(stage_name, [s.name for s in stages]))
        found = next((i for i in stage.declared_inputs if i.name == input_name), None)
        if found is None or found.stage is not None or not found.optional:
            optional = [f"{stage.name}.{i.name}" for i in stage.declared_inputs if i.optional]
            raise ConfigError(f"stage '{stage.name}' has no optional input {input_name!r} for "
                              "the labelled production rows"
                              + (f" (its optional inputs: {', '.join(optional)})" if optional
                                 else "; declare one: {path: data/feedback.parquet, schema: "
                                      "..., optional: true}"), file=file, key=key)


# --------------------------------------------------------------------------------------------
# stages


def _parse_stage(name: str, raw: Any, params: Mapping[str, Any], source: ConfigSource,
                 file: str) -> Stage:
    key = f"pipeline.stages.{name}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"expected a mapping with keys {', '.join(STAGE_KEYS)}; found "
                          f"{type(raw).__name__}", file=file, key=key)
    _known_keys(raw, STAGE_KEYS, file, key)
    if "run" not in raw or not isinstance(raw["run"], str):
        raise ConfigError("missing 'run': the dotted path of the stage function, "
                          "e.g. 'pipelines.tabular.train'", file=file, key=f"{key}.run")
    run = raw["run"]
    src = _locate_function(run, source.root, file, f"{key}.run")

    stage_params = _string_list(raw.get("params", []), file, f"{key}.params")
    for p in stage_params:
        if lookup(params, p) is _MISSING:
            prefix, _, last = p.rpartition(".")
            scope = lookup(params, prefix) if prefix else params
            options = [f"{prefix}.{k}" if prefix else k for k in scope] if isinstance(scope, Mapping) else []
            raise ConfigError(f"stage '{name}' uses param '{p}', which is not in the config",
                              file=file, key=f"{key}.params",
                              hint=did_you_mean(p, options) or f"known params: {', '.join(params)}")
    kwargs = [p.rsplit(".", 1)[-1] for p in stage_params]

    outs = []
    for out_name, spec in _mapping(raw.get("outs", {}), file, f"{key}.outs").items():
        outs.append(_parse_artifact(out_name, spec, OUTPUT_KEYS, file, f"{key}.outs.{out_name}"))

    ins: list[Input] = []
    absent: list[Input] = []
    for in_name, ref in _mapping(raw.get("ins", {}), file, f"{key}.ins").items():
        ikey = f"{key}.ins.{in_name}"
        if isinstance(ref, Mapping) and "feature_set" in ref:
            ins.append(_parse_feature_input(in_name, ref, file, ikey))
            continue
        if isinstance(ref, Mapping) and "join" in ref:
            ins.append(_parse_join_input(in_name, ref, file, ikey))
            continue
        if isinstance(ref, str):
            stage_name, dot, out_name = ref.partition(".")
            if not dot or not stage_name or not out_name:
                raise ConfigError(f"expected 'STAGE.OUTPUT' (e.g. 'ingest.raw') or a mapping "
                                  f"with 'path'; found {ref!r}", file=file, key=ikey)
            ins.append(Input(name=in_name, path="", stage=stage_name, output=out_name))
        else:
            art = _parse_artifact(in_name, ref, INPUT_KEYS, file, ikey)
            optional = ref.get("optional", False) if isinstance(ref, Mapping) else False
            if not isinstance(optional, bool):
                raise ConfigError(f"expected true or false, found {optional!r}", file=file,
                                  key=f"{ikey}.optional")
            present = True
            if optional:
                here = source.root / art.path
                present = here.exists() or here.with_name(here.name + ".dvc").exists()
            # an optional file that does not exist (nor its .dvc file) is left out of the stage
            (ins if present else absent).append(Input(
                name=in_name, path=art.path, schema=art.schema, optional=optional))

    metrics = None
    if raw.get("metrics") is not None:
        metrics = _parse_artifact("metrics", raw["metrics"], METRICS_KEYS, file, f"{key}.metrics")
        if not metrics.path.endswith(".json"):
            raise ConfigError(f"metrics must be a .json file; found '{metrics.path}'",
                              file=file, key=f"{key}.metrics.path")

    plots = []
    for plot_name, spec in _mapping(raw.get("plots", {}), file, f"{key}.plots").items():
        pkey = f"{key}.plots.{plot_name}"
        if not isinstance(spec, Mapping):
            raise ConfigError("expected a mapping with 'path' and optional 'template', 'x', 'y'",
                              file=file, key=pkey)
        _known_keys(spec, PLOT_KEYS, file, pkey)
        art = _parse_artifact(plot_name, {"path": spec.get("path")}, ("path",), file, pkey)
        template = spec.get("template", "linear")
        if template not in DVC_PLOT_TEMPLATES:
            raise ConfigError(f"unknown DVC plot template {template!r}; expected one of "
                              f"{', '.join(DVC_PLOT_TEMPLATES)}", file=file, key=f"{pkey}.template",
                              hint=did_you_mean(template, DVC_PLOT_TEMPLATES))
        if not art.path.endswith((".csv", ".json", ".tsv", ".yaml")):
            raise ConfigError(f"plot data must be .csv, .tsv, .json or .yaml; found '{art.path}'",
                              file=file, key=f"{pkey}.path")
        plots.append(Plot(name=plot_name, path=art.path, template=template,
                          **{k: spec.get(k) for k in ("x", "y", "title", "x_label", "y_label")}))

    received = [*(i.name for i in (*ins, *absent)), *kwargs]
    returned = [*(o.name for o in outs), *(p.name for p in plots), *(["metrics"] if metrics else [])]
    for names, what in ((received, "among its inputs and params (the keyword arguments of its "
                                   "function)"),
                        (returned, "among its outs, plots and metrics (the keys its function "
                                   "returns)")):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"stage '{name}' uses the name '{duplicated[0]}' twice {what}; "
                              "each must be unique", file=file, key=key)
    if not outs and metrics is None and not plots:
        raise ConfigError(f"stage '{name}' declares no outs, metrics or plots: DVC could never "
                          "tell whether it is up to date", file=file, key=key)
    desc = raw.get("desc")
    return Stage(name=name, run=run, source=src, params=tuple(stage_params), ins=tuple(ins),
                 outs=tuple(outs), metrics=metrics, plots=tuple(plots),
                 desc=str(desc) if desc is not None else None, absent=tuple(absent))


def _schema_path(spec: Mapping[str, Any], file: str, key: str) -> str | None:
    schema = spec.get("schema")
    if schema is not None:
        if not isinstance(schema, str):
            raise ConfigError("expected the path of a JSON Schema file", file=file,
                              key=f"{key}.schema")
        _check_relative(schema, file, f"{key}.schema")
    return schema


def _feature_ref(ref: Any, file: str, key: str) -> str:
    from framework.features.catalog import REF_FORMS, parse_ref

    try:
        return str(parse_ref(ref))
    except UsageError:
        raise ConfigError(f"expected a feature set reference ({REF_FORMS}); found {ref!r}",
                          file=file, key=key) from None


def _parse_feature_input(name: str, spec: Mapping[str, Any], file: str, key: str) -> Input:
    _known_keys(spec, FEATURE_INPUT_KEYS, file, key)
    ref = _feature_ref(spec["feature_set"], file, f"{key}.feature_set")
    return Input(name=name, path="", schema=_schema_path(spec, file, key),
                 feature=FeatureUse(ref=ref))


def _parse_join_input(name: str, spec: Mapping[str, Any], file: str, key: str) -> Input:
    from framework.features.join import parse_age

    _known_keys(spec, JOIN_INPUT_KEYS, file, key)
    jkey = f"{key}.join"
    # YAML 1.1 (PyYAML, OmegaConf) reads a bare `on:` key as the boolean true
    join = {"on" if k is True or k == "True" else k: v
            for k, v in _mapping(spec["join"], file, jkey).items()}
    _known_keys(join, JOIN_KEYS, file, jkey)
    for required in ("entities", "features", "on"):
        if required not in join:
            raise ConfigError(f"a join needs {', '.join(repr(k) for k in JOIN_KEYS[:3])} (and "
                              "'as_of' when a feature set has a timestamp); missing "
                              f"{required!r}", file=file, key=jkey)
    for k in ("on", "as_of"):
        if k in join and (not isinstance(join[k], str) or not join[k]):
            raise ConfigError("expected a column name", file=file, key=f"{jkey}.{k}")
    raw = join["features"]
    if isinstance(raw, str | Mapping):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ConfigError("expected a list of feature sets (NAME, NAME@7, or {feature_set: "
                          "NAME, max_age: 7d})", file=file, key=f"{jkey}.features")
    uses = []
    for n, item in enumerate(raw):
        fkey = f"{jkey}.features[{n}]"
        max_age = None
        if isinstance(item, Mapping):
            _known_keys(item, ("feature_set", "max_age"), file, fkey)
            if "max_age" in item:
                try:
                    max_age = parse_age(item["max_age"], what="max_age")
                except UsageError as exc:
                    raise ConfigError(str(exc), file=file, key=f"{fkey}.max_age") from None
            item = item.get("feature_set")
        uses.append(FeatureUse(ref=_feature_ref(item, file, fkey), max_age_s=max_age))
    entities = join["entities"]
    stage_name = out_name = None
    path = ""
    if isinstance(entities, str):
        stage_name, dot, out_name = entities.partition(".")
        if not dot or not stage_name or not out_name:
            raise ConfigError(f"expected 'STAGE.OUTPUT' or a mapping with 'path'; found "
                              f"{entities!r}", file=file, key=f"{jkey}.entities")
    else:
        path = _parse_artifact("entities", entities, ("path",), file, f"{jkey}.entities").path
    if path and not path.endswith((".parquet", ".pq")):
        raise ConfigError(f"the entity table of a join is read as Parquet; found '{path}'",
                          file=file, key=f"{jkey}.entities")
    return Input(name=name, path="", schema=_schema_path(spec, file, key), stage=stage_name,
                 output=out_name, join=Join(features=tuple(uses), on=join["on"],
                                            as_of=join.get("as_of"), entities=path))


def _parse_publish(raw: Any, path: str, file: str, key: str) -> Publish:
    if isinstance(raw, str):
        raw = {"feature_set": raw}
    spec = _mapping(raw, file, key)
    _known_keys(spec, PUBLISH_KEYS, file, key)
    name = spec.get("feature_set")
    from framework.features.catalog import NAME

    if not isinstance(name, str) or not re.fullmatch(NAME, name):
        raise ConfigError(f"expected a feature set name (a letter, then letters, digits, '_', "
                          f"'.' or '-'); found {name!r}", file=file, key=f"{key}.feature_set")
    for k in ("entity", "timestamp"):
        if spec.get(k) is not None and not isinstance(spec[k], str):
            raise ConfigError("expected a column name", file=file, key=f"{key}.{k}")
    if spec.get("timestamp") and not spec.get("entity"):
        raise ConfigError("a timestamp needs an entity column to join on", file=file,
                          key=f"{key}.entity")
    if not path.endswith((".parquet", ".pq")):
        raise ConfigError(f"a published table is Parquet (joins stream from it); found "
                          f"'{path}'", file=file, key=key)
    return Publish(feature_set=name, entity=spec.get("entity"), timestamp=spec.get("timestamp"))


def _parse_artifact(name: str, spec: Any, allowed: tuple[str, ...], file: str, key: str) -> Output:
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"expected a mapping with 'path' and optional 'schema'; found "
                          f"{type(spec).__name__}", file=file, key=key)
    _known_keys(spec, allowed, file, key)
    path = spec.get("path")
    if not isinstance(path, str) or not path:
        raise ConfigError("missing 'path'", file=file, key=f"{key}.path")
    _check_relative(path, file, f"{key}.path")
    schema = _schema_path(spec, file, key)
    publish = None
    if spec.get("publish") is not None:
        publish = _parse_publish(spec["publish"], path, file, f"{key}.publish")
    return Output(name=name, path=path, schema=schema, publish=publish)


def _check_relative(path: str, file: str, key: str) -> None:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        raise ConfigError(f"paths are relative to the project root and stay inside it; found "
                          f"'{path}'", file=file, key=key)


def _link(stages: list[Stage], file: str) -> list[Stage]:
    """Resolve ``STAGE.OUTPUT`` inputs, refuse clashing outputs and cycles, order topologically."""
    by_name = {s.name: s for s in stages}
    producers: dict[str, str] = {}
    for s in stages:
        written = [*(o.path for o in s.outs), *([s.metrics.path] if s.metrics else []),
                   *(p.path for p in s.plots)]
        for path in written:
            if path in producers:
                raise ConfigError(f"'{path}' is written by both stage '{producers[path]}' and "
                                  f"stage '{s.name}'; each file has one producer",
                                  file=file, key=f"pipeline.stages.{s.name}")
            producers[path] = s.name

    linked: list[Stage] = []
    for s in stages:
        ins = []
        for i in s.ins:
            key = f"pipeline.stages.{s.name}.ins.{i.name}"
            if i.feature is not None:
                ins.append(i)
                continue
            if i.join is not None and i.stage is None:
                if i.join.entities in producers:
                    raise ConfigError(f"'{i.join.entities}' is an output of stage "
                                      f"'{producers[i.join.entities]}'; refer to it as "
                                      f"'{producers[i.join.entities]}.<output>'",
                                      file=file, key=f"{key}.join.entities")
                ins.append(i)
                continue
            if i.stage is None:
                if i.path in producers:
                    raise ConfigError(f"'{i.path}' is an output of stage '{producers[i.path]}'; "
                                      f"refer to it as '{producers[i.path]}.<output>'",
                                      file=file, key=key)
                ins.append(i)
                continue
            ref = f"{i.stage}.{i.output}"
            if i.stage not in by_name:
                raise ConfigError(f"input '{ref}' names no stage '{i.stage}'", file=file, key=key,
                                  hint=did_you_mean(i.stage, by_name) or
                                  f"stages: {', '.join(by_name)}")
            source = by_name[i.stage]
            outs = {o.name: o for o in source.outs}
            if i.output not in outs:
                known = [f"{source.name}.{o}" for o in outs]
                raise ConfigError(f"input '{ref}' names no output of stage '{source.name}'",
                                  file=file, key=key,
                                  hint=did_you_mean(ref, known) or
                                  (f"its outputs: {', '.join(known)}" if known else
                                   f"stage '{source.name}' has no outs"))
            out = outs[i.output]
            if i.join is not None:
                if not out.path.endswith((".parquet", ".pq")):
                    raise ConfigError(f"the entity table of a join is read as Parquet; "
                                      f"'{ref}' is '{out.path}'", file=file,
                                      key=f"{key}.join.entities")
                ins.append(replace(i, join=replace(i.join, entities=out.path)))
                continue
            ins.append(Input(name=i.name, path=out.path, schema=out.schema, stage=i.stage,
                             output=i.output))
        linked.append(replace(s, ins=tuple(ins)))
    return _toposort(linked, file)


def _toposort(stages: list[Stage], file: str) -> list[Stage]:
    deps = {s.name: [i.stage for i in s.ins if i.stage] for s in stages}
    order: list[Stage] = []
    done: set[str] = set()
    visiting: list[str] = []
    by_name = {s.name: s for s in stages}

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise ConfigError("the stages form a cycle: " + " -> ".join(cycle),
                              file=file, key=f"pipeline.stages.{name}.ins",
                              hint="a stage cannot read, directly or not, what it writes")
        visiting.append(name)
        for dep in deps[name]:
            visit(dep)
        visiting.pop()
        done.add(name)
        order.append(by_name[name])

    for s in stages:  # config order breaks ties, so the order is stable
        visit(s.name)
    return order


def _check_schemas(stages: Iterable[Stage], root: Path, file: str) -> None:
    seen: dict[str, str] = {}
    for s in stages:
        arts = [("ins", a) for a in s.ins if a.stage is None or a.join is not None] + \
            [("outs", a) for a in s.outs]
        if s.metrics:
            arts.append(("metrics", s.metrics))
        for section, art in arts:
            if not art.schema or art.schema in seen:
                continue
            key = f"pipeline.stages.{s.name}.{section}" + ("" if section == "metrics" else f".{art.name}") + ".schema"
            path = root / art.schema
            if not path.is_file():
                near = [p.relative_to(root).as_posix() for p in path.parent.glob("*.json")] \
                    if path.parent.is_dir() else []
                raise ConfigError(f"schema file '{art.schema}' does not exist", file=file, key=key,
                                  hint=did_you_mean(art.schema, near) or
                                  "write one, or infer it: python -m framework schema infer DATA -o "
                                  + art.schema)
            try:
                content = json.loads(path.read_text())
            except ValueError as exc:
                raise ConfigError(f"schema file '{art.schema}' is not valid JSON: {exc}",
                                  file=file, key=key) from None
            if not isinstance(content, dict):
                raise ConfigError(f"schema file '{art.schema}' must hold a JSON object",
                                  file=file, key=key)
            seen[art.schema] = key


# --------------------------------------------------------------------------------------------
# stage functions


def _locate_function(run: str, root: Path, file: str, key: str) -> str | None:
    """Find the stage function's source without importing it; return its path relative to root."""
    module_name, _, func = run.rpartition(".")
    if not module_name or not func.isidentifier():
        raise ConfigError(f"expected 'package.module.function'; found {run!r}", file=file, key=key)
    origin = _find_module_file(module_name, root)
    if origin is None:
        parent = module_name.rpartition(".")[0]
        raise ConfigError(f"cannot import module '{module_name}' of stage function '{run}'",
                          file=file, key=key,
                          hint=did_you_mean(module_name, _sibling_modules(parent, root))
                          or "stage modules are imported from the project root (the folder "
                             "holding conf/)")
    if origin.endswith(".py"):
        defined = _defined_names(origin)
        if func not in defined:
            raise ConfigError(f"module '{module_name}' ({_display(Path(origin), root)}) defines no "
                              f"function '{func}'", file=file, key=key,
                              hint=did_you_mean(func, defined))
        path = Path(origin).resolve()
        try:
            return path.relative_to(root.resolve()).as_posix()
        except ValueError:
            return None  # a function from an installed package: not part of the project's code
    return None


def _find_module_file(module_name: str, root: Path) -> str | None:
    """The source file of a module: first in the project folder, then among installed packages.

    The project folder is searched by path, without importing anything, so that compiling never
    runs the project's code and never mixes up two projects' ``pipelines`` packages.
    """
    base = root.joinpath(*module_name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return str(candidate)
    if (root / module_name.split(".")[0]).exists():
        return None  # the package is the project's own: do not look elsewhere
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.origin else None


def _sibling_modules(parent: str, root: Path) -> list[str]:
    folder = root.joinpath(*parent.split(".")) if parent else root
    found = [m.name for m in pkgutil.iter_modules([str(folder)])]
    return [f"{parent}.{m}" if parent else m for m in found]


_NAMES: dict[tuple[str, int, int], list[str]] = {}


def _defined_names(path: str) -> list[str]:
    """Top-level names of a module's source, parsed once per version of the file (a sweep checks
    every trial's config)."""
    stat = Path(path).stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _NAMES:
        _NAMES[key] = _top_level_names(ast.parse(Path(path).read_text(), filename=path))
    return _NAMES[key]


def _top_level_names(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names += [(a.asname or a.name).split(".")[0] for a in node.names]
    return names


# --------------------------------------------------------------------------------------------
# values: ranges and estimator constraints


_MISSING = object()


def lookup(params: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key of nested mappings, or the ``_MISSING`` sentinel."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def check_ranges(params: Mapping[str, Any], ranges: Mapping[str, Any], source: ConfigSource) -> None:
    """Refuse values outside the bounds or choices declared under ``ranges:``.

    A range whose block is absent, or whose key is an argument of another option of the block's
    config group (``model.C`` while the model is a random forest), does not apply. A key that no
    option has (``split.test_siz``, ``model.c``) is a mistake.
    """
    for key, bounds in ranges.items():
        rkey = f"ranges.{key}"
        rfile = source.file_of("ranges")
        if not isinstance(bounds, Mapping):
            raise ConfigError("expected a mapping with min/max/log or choices", file=rfile, key=rkey)
        _known_keys(bounds, RANGE_KEYS, rfile, rkey)
        value = lookup(params, key)
        if value is _MISSING:
            _check_range_key(key, params, source, rfile, rkey)
            continue
        if value is None:  # explicitly unset (e.g. max_depth: null)
            continue
        _check_one_range(key, value, bounds, source.where(key), rkey)


def _check_range_key(key: str, params: Mapping[str, Any], source: ConfigSource, rfile: str,
                     rkey: str) -> None:
    """A range on a key the config lacks: fine when its block is absent or another option of the
    block's group has it, else a ConfigError with a did-you-mean."""
    prefix, _, leaf = key.rpartition(".")
    parent = lookup(params, prefix) if prefix else params
    if parent is _MISSING or not isinstance(parent, Mapping):
        return
    known = [str(k) for k in parent if not str(k).startswith("_")]
    if "_target_" in parent:
        set_by_options = _option_keys(prefix, source)
        if leaf in set_by_options:
            return  # another option of the group sets it: the range applies there
        arguments = set(known) | set_by_options | _group_arguments(prefix, parent, source)
        if leaf in arguments:
            return
        raise ConfigError(f"no option of '{prefix}' has an argument {leaf!r}, so this range "
                          "never applies", file=rfile, key=rkey,
                          hint=did_you_mean(leaf, arguments))
    raise ConfigError(f"'{prefix or '(root)'}' has no key {leaf!r}, so this range never "
                      f"applies (its keys: {', '.join(known) or 'none'})", file=rfile, key=rkey,
                      hint=did_you_mean(leaf, known))


def _option_keys(prefix: str, source: ConfigSource) -> set[str]:
    """The keys the option files of config group ``prefix`` set (read, not composed)."""
    import yaml

    folder = source.conf_dir / prefix
    keys: set[str] = set()
    if "." in prefix or not folder.is_dir():
        return keys
    for option in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(option.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, Mapping):
            keys |= {str(k) for k in data if not str(k).startswith("_")}
    return keys


def _group_arguments(prefix: str, block: Mapping[str, Any], source: ConfigSource) -> set[str]:
    """The arguments of the class ``block`` builds and of every other option of its config
    group (``conf/<prefix>/*.yaml``)."""
    import yaml

    targets = {block["_target_"]}
    folder = source.conf_dir / prefix
    if "." not in prefix and folder.is_dir():
        for option in sorted(folder.glob("*.yaml")):
            try:
                data = yaml.safe_load(option.read_text())
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(data, Mapping) and isinstance(data.get("_target_"), str):
                targets.add(data["_target_"])
    cache = ConstraintCache()
    found: set[str] = set()
    try:
        for target in sorted(t for t in targets if isinstance(t, str)):
            info = cache.get(target)
            found |= set(info.get("params") or ())
    finally:
        cache.save()
    return found


def _check_one_range(key: str, value: Any, bounds: Mapping[str, Any], where: str, rkey: str) -> None:
    if "choices" in bounds:
        choices = list(bounds["choices"])
        if value not in choices or isinstance(value, bool) != any(isinstance(c, bool) for c in choices if c == value):
            raise ConfigError(f"{key} = {value!r} is not one of its allowed values "
                              f"{', '.join(map(repr, choices))} ({rkey})", file=where,
                              hint=did_you_mean(str(value), map(str, choices)))
        return
    lo, hi = bounds.get("min"), bounds.get("max")
    if lo is None and hi is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            (isinstance(value, float) and math.isnan(value)):
        raise ConfigError(f"{key} = {value!r} is not a number; its range is "
                          f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}] "
                          f"({rkey})", file=where)
    if lo is not None and value < lo:
        raise ConfigError(f"{key} = {value!r} is below its range minimum {lo} ({rkey})", file=where)
    if hi is not None and value > hi:
        raise ConfigError(f"{key} = {value!r} is above its range maximum {hi} ({rkey})", file=where)


_MODULES: dict[tuple[str, int, int], Any] = {}


def check_param_shapes(stages: Iterable[Stage], params: Mapping[str, Any],
                       source: ConfigSource) -> None:
    """Each stage's params against the types its function declares for them (read from its
    source, never imported)."""
    from framework.shapes import Module, check

    for stage in stages:
        if not stage.source:
            continue
        path = source.root / stage.source
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _MODULES:
            _MODULES[key] = Module.parse(path)
        shapes = _MODULES[key].parameters(stage.run.rpartition(".")[2])
        for param in stage.params:
            argument = param.rsplit(".", 1)[-1]
            shape = shapes.get(argument)
            if shape is None:
                continue
            found = check(lookup(params, param), shape, param)
            if found is not None:
                raise ConfigError(f"{found.message} (the '{argument}' argument of {stage.run})",
                                  file=source.where(found.key), key=found.key,
                                  hint=did_you_mean(found.wrong, found.candidates)
                                  if found.wrong is not None else None)


def check_trusted_types(params: Mapping[str, Any], source: ConfigSource) -> None:
    """``trusted_types``: exact names of classes and functions model files may hold beyond the
    allowlist of :mod:`framework.trust` (never a wildcard, never what runs commands)."""
    from framework.trust import check_trusted_names

    raw = params.get("trusted_types")
    if raw is None:
        return
    file = source.where("trusted_types")
    if not isinstance(raw, list):
        raise ConfigError(f"expected a list of exact names such as ['mypackage.MyEstimator'], "
                          f"found {type(raw).__name__}", file=file, key="trusted_types")
    try:
        check_trusted_names(raw, where="trusted_types")
    except ValueError as exc:
        key, _, message = str(exc).partition(" = ")
        raise ConfigError(message, file=file, key=key) from None


def check_estimators(params: Mapping[str, Any], source: ConfigSource) -> None:
    """Check every ``_target_`` block: importable, known arguments, values its class accepts."""
    cache = ConstraintCache()
    try:
        for key, block in _targets(params, ""):
            _check_target(key, block, cache, source)
    finally:
        cache.save()


def _targets(node: Any, prefix: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        if isinstance(node.get("_target_"), str):
            yield prefix, node
        for k, v in node.items():
            yield from _targets(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _targets(v, f"{prefix}[{i}]")


def _check_target(key: str, block: Mapping[str, Any], cache: ConstraintCache,
                  source: ConfigSource) -> None:
    target = block["_target_"]
    info = cache.get(target)
    tkey = f"{key}._target_"
    if not info["importable"]:
        raise ConfigError(f"cannot import _target_ '{target}': {info['error']}",
                          file=source.where(tkey), key=tkey,
                          hint=did_you_mean(target, info.get("candidates", [])))
    cls = target.rsplit(".", 1)[-1]
    known = info.get("params")
    constraints = info.get("constraints", {})
    for arg, value in block.items():
        if arg.startswith("_"):
            continue
        akey = f"{key}.{arg}"
        if known is not None and arg not in known:
            raise ConfigError(f"{cls} has no argument '{arg}'", file=source.where(akey), key=akey,
                              hint=did_you_mean(arg, known) or f"its arguments: {', '.join(known)}")
        options = constraints.get(arg)
        if options and not isinstance(value, Mapping) and not any(satisfies(value, c) for c in options):
            raise ConfigError(f"{akey} = {value!r} is not valid for {target}: the '{arg}' "
                              f"parameter of {cls} must be {explain(options)}",
                              file=source.where(akey))


# --------------------------------------------------------------------------------------------
# small helpers


def _known_keys(raw: Mapping[str, Any], allowed: Iterable[str], file: str, key: str) -> None:
    allowed = tuple(allowed)
    for k in raw:
        if k not in allowed:
            raise ConfigError(f"unknown key '{k}'; expected one of {', '.join(allowed)}",
                              file=file, key=f"{key}.{k}", hint=did_you_mean(str(k), allowed))


def _mapping(raw: Any, file: str, key: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"expected a mapping of names; found {type(raw).__name__}",
                          file=file, key=key)
    return raw


def _string_list(raw: Any, file: str, key: str) -> list[str]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ConfigError("expected a list of param keys, e.g. [model, split.test_size]",
                          file=file, key=key)
    return list(raw)
