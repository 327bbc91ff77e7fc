"""The checks ``python -m framework test`` generates from a pipeline's config.

Every check is named ``<kind>[<subject>]`` and ends ``pass``, ``fail``, ``warn`` (worth a look,
never fails the run) or ``skip`` (with why). They run on the outputs the pipeline already has in
the workspace (what ``dvc repro`` left, restored from DVC's cache when needed), and on samples of
them, so the suite on the bundled pipeline takes seconds:

- ``contract[stage]``: the stage run on a sample of its real inputs returns exactly its declared
  outputs and each satisfies its schema (:func:`framework.stage.execute`, the runner's own code);
  ``edges[stage]`` runs it again on sampled rows whose values are set to the schema's bounds and
  to every enum value;
- ``determinism[stage]``: two runs on the same inputs give identical outputs (tables, metrics,
  and the model file's bytes);
- ``range[key]``: every ``ranges:`` entry that applies accepts both ends, refuses values just
  outside them (as compile does, exit 2), and holds the value the config has;
- ``leakage[...]``: no test row is in the train table (exact duplicates, and on ``tests.key``),
  no feature alone predicts the target almost perfectly, test rows are later than train rows on
  ``tests.time``;
- ``scaling[step]``: each fitted scaler of the model equals one fitted on the train table alone
  (not on train and test); ``serving[model]``: the registered version predicts exactly what was
  recorded for it at evaluation;
- ``drift[train vs test]``: the monitor's data-drift check between the two tables (a warning);
- ``gates``: every gate names a metric the evaluating stage writes; ``fairness[<metric> by
  <column>]``: each per-group gate, judged on the metrics in the workspace.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
#: Rows of each input table a stage is run on.
SAMPLE_ROWS = 500
#: A feature whose one-feature model scores at least this on the test table is a target proxy.
PROXY_SCORE = 0.99


@dataclass
class Result:
    name: str
    status: str
    message: str
    stage: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    """What the checks share: the project, its spec and params, loaded tables (cached)."""

    root: Path
    spec: Any
    params: dict[str, Any]
    sample_rows: int = SAMPLE_ROWS
    spec_ranges: dict[str, Any] = field(default_factory=dict)  # the config's ranges:
    source: Any = None  # where the config came from (for error messages)
    _tables: dict[str, Any] = field(default_factory=dict)
    #: outputs the contract runs produced in memory, by path: a check whose input is not in the
    #: workspace (a fresh clone in CI, before ``dvc repro``) takes them instead
    produced: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        raw = self.params.get("tests")
        return dict(raw) if isinstance(raw, Mapping) else {}

    def read(self, path: str) -> Any:
        if path not in self._tables:
            if not (self.root / path).exists() and path in self.produced:
                return self.produced[path]
            from framework import io

            self._tables[path] = io.read(self.root / path, trusted=io.project_trusted())
        return self._tables[path]

    def exists(self, path: str) -> bool:
        return (self.root / path).exists() or path in self.produced


def _sample(frame: Any, n: int) -> Any:
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=0).reset_index(drop=True)


# -- stages --------------------------------------------------------------------------------------

def _stage_inputs(ctx: Context, stage: Any) -> tuple[dict[str, Any] | None, str]:
    from framework import io

    inputs = {}
    for i in stage.ins:
        if not ctx.exists(i.path):
            return None, f"its input {i.path} is neither in the workspace nor produced by the " \
                         "contract run of its stage (see that stage's checks)"
        value = ctx.read(i.path)
        if io.kind_of(i.path) == "table":
            value = _sample(value, ctx.sample_rows)
        inputs[i.name] = value
    return inputs, ""


def _run(ctx: Context, stage: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    import sys

    from framework.spec import lookup
    from framework.stage import StageCall, execute

    if str(ctx.root) not in sys.path:
        sys.path.insert(0, str(ctx.root))
    call = StageCall.from_stage(stage)
    # the params of the composed config (what params.yaml holds once compiled), by the last
    # component of each key, as the stage runner passes them
    params = {key.rsplit(".", 1)[-1]: lookup(ctx.params, key) for key in call.params}
    return execute(call, params, inputs, ctx.root)


def contract(ctx: Context, stage: Any) -> Result:
    inputs, why = _stage_inputs(ctx, stage)
    if inputs is None:
        return Result(f"contract[{stage.name}]", SKIP, why, stage.name)
    from framework.errors import FrameworkError

    try:
        outputs = _run(ctx, stage, inputs)
    except FrameworkError as exc:
        return Result(f"contract[{stage.name}]", FAIL, str(exc).splitlines()[0], stage.name,
                      {"error": str(exc)})
    paths = {o.name: o.path for o in stage.outs}
    if stage.metrics:
        paths["metrics"] = stage.metrics.path
    for key, value in outputs.items():
        if key in paths:
            ctx.produced.setdefault(paths[key], value)
    rows = {k: len(v) for k, v in inputs.items() if hasattr(v, "columns")}
    return Result(f"contract[{stage.name}]", PASS,
                  f"returns {', '.join(sorted(outputs))}, each as declared and within its schema"
                  + (f" (on {', '.join(f'{n} rows of {k}' for k, n in rows.items())})"
                     if rows else ""), stage.name, {"outputs": sorted(outputs), "rows": rows})


def edge_rows(frame: Any, schema: Mapping[str, Any]) -> Any:
    """Real rows whose values are moved to the schema's edges: each bounded number takes its
    minimum in one row and its maximum in the next, each enum cycles through its values."""
    edges = frame.copy().reset_index(drop=True)  # the sample, its first rows moved
    props = schema.get("properties") or {}
    for name, rule in props.items():
        if name not in edges.columns or not isinstance(rule, Mapping):
            continue
        if "enum" in rule and rule["enum"]:
            values = list(rule["enum"])
            column = edges[name].astype(object).tolist()
            for i, v in enumerate(values[:len(column)]):
                column[i] = v
            edges[name] = column
            try:
                edges[name] = edges[name].astype(frame[name].dtype)
            except (TypeError, ValueError):
                pass
            continue
        lo = rule.get("minimum", rule.get("exclusiveMinimum"))
        hi = rule.get("maximum", rule.get("exclusiveMaximum"))
        if "exclusiveMinimum" in rule and lo is not None:
            lo = lo + (1 if rule.get("type") == "integer" else abs(lo) * 1e-9 + 1e-9)
        if "exclusiveMaximum" in rule and hi is not None:
            hi = hi - (1 if rule.get("type") == "integer" else abs(hi) * 1e-9 + 1e-9)
        column = edges[name].astype(object).tolist()
        if lo is not None:
            column[0] = lo
        if hi is not None:
            column[1] = hi
        if lo is not None or hi is not None:
            edges[name] = column
            try:
                edges[name] = edges[name].astype(frame[name].dtype)
            except (TypeError, ValueError):
                pass
    return edges


def edges(ctx: Context, stage: Any) -> Result:
    from framework import io
    from framework.errors import FrameworkError

    tables = [i for i in stage.ins if i.schema and io.kind_of(i.path) == "table"]
    if not tables:
        return Result(f"edges[{stage.name}]", SKIP, "no input table with a schema", stage.name)
    inputs, why = _stage_inputs(ctx, stage)
    name = f"edges[{stage.name}]"
    if inputs is None:
        return Result(name, SKIP, why, stage.name)
    moved = []
    for i in tables:
        schema = json.loads((ctx.root / i.schema).read_text())
        inputs[i.name] = edge_rows(inputs[i.name], schema)
        moved.append(f"{i.name}: {len(inputs[i.name])} rows")
    try:
        _run(ctx, stage, inputs)
    except FrameworkError as exc:
        return Result(name, FAIL, "on rows at its input schema's bounds and enum values: "
                      + str(exc).splitlines()[0], stage.name, {"error": str(exc)})
    return Result(name, PASS, f"accepts rows at its schema's bounds and every enum value "
                              f"({'; '.join(moved)})", stage.name)


def _digest(name: str, value: Any, folder: Path) -> str:
    import hashlib

    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return hashlib.sha256(pd.util.hash_pandas_object(value, index=True).values.tobytes()
                              + "|".join(map(str, value.columns)).encode()).hexdigest()
    if isinstance(value, Mapping | list | str | int | float):
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
    from framework.io import save_model

    path = folder / f"{name}.skops"
    save_model(value, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def determinism(ctx: Context, stage: Any) -> Result:
    name = f"determinism[{stage.name}]"
    inputs, why = _stage_inputs(ctx, stage)
    if inputs is None:
        return Result(name, SKIP, why, stage.name)
    from framework.errors import FrameworkError

    try:
        first, second = _run(ctx, stage, dict(inputs)), _run(ctx, stage, dict(inputs))
    except FrameworkError as exc:
        return Result(name, SKIP, f"the stage fails (see contract[{stage.name}]): "
                      + str(exc).splitlines()[0], stage.name)
    with tempfile.TemporaryDirectory() as tmp:
        differ = [k for k in sorted(first) if _digest(f"a-{k}", first[k], Path(tmp)) !=
                  _digest(f"b-{k}", second[k], Path(tmp))]
    if differ:
        return Result(name, FAIL, f"two runs on the same inputs and params gave different "
                      f"{', '.join(differ)}: seed every random choice (a random_state from "
                      "params)", stage.name, {"different": differ})
    return Result(name, PASS, f"two runs gave identical {', '.join(sorted(first))}", stage.name)


# -- ranges ----------------------------------------------------------------------------------------

def _set(params: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(params)
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return out


def _outside(bounds: Mapping[str, Any]) -> list[tuple[str, Any]]:
    if "choices" in bounds:
        return [("not a choice", "__not_one_of_the_choices__")]
    out = []
    for side, sign in (("min", -1), ("max", 1)):
        v = bounds.get(side)
        if v is None:
            continue
        if isinstance(v, int) and not isinstance(v, bool):
            out.append((f"{side} {'-' if sign < 0 else '+'} 1", v + sign))
        else:
            out.append((f"just {'below' if sign < 0 else 'above'} {side}",
                        v + sign * max(abs(v) * 1e-6, 1e-9)))
    return out


def ranges(ctx: Context) -> Iterator[Result]:
    from framework.errors import ConfigError
    from framework.spec import _MISSING, check_ranges, lookup

    source = ctx.source
    params = ctx.params
    for key, bounds in ctx.spec_ranges.items():
        name = f"range[{key}]"
        current = lookup(params, key)
        if current is _MISSING or current is None:
            yield Result(name, SKIP, f"{key} is not in the composed config: the range does not "
                         "apply to this pipeline")
            continue
        problems = []
        inside = [("the config's value", current)]
        if "choices" in bounds:
            inside += [(f"choice {c!r}", c) for c in bounds["choices"]]
        else:
            inside += [(side, bounds[side]) for side in ("min", "max") if bounds.get(side)
                       is not None]
        for label, value in inside:
            try:
                check_ranges(_set(params, key, value), {key: bounds}, source)
            except ConfigError as exc:
                problems.append(f"{label} {value!r} is refused: {str(exc).splitlines()[0]}")
        for label, value in _outside(bounds):
            try:
                check_ranges(_set(params, key, value), {key: bounds}, source)
                problems.append(f"{label} ({value!r}) is accepted")
            except ConfigError:
                pass
        if problems:
            yield Result(name, FAIL, "; ".join(problems), evidence={"bounds": dict(bounds),
                                                                   "value": current})
        else:
            yield Result(name, PASS, f"{current!r} within {_bounds_text(bounds)}; both ends "
                         "accepted, just outside refused (exit 2)",
                         evidence={"bounds": dict(bounds), "value": current})


def _bounds_text(bounds: Mapping[str, Any]) -> str:
    if "choices" in bounds:
        return "choices " + ", ".join(map(repr, bounds["choices"]))
    return f"[{bounds.get('min', '-inf')}, {bounds.get('max', 'inf')}]"


# -- the split: leakage and distribution --------------------------------------------------------

def split_tables(ctx: Context) -> tuple[str, str] | None:
    """The train and test tables: the stage outputs named ``train`` and ``test``."""
    for stage in ctx.spec.stages:
        outs = {o.name: o.path for o in stage.outs}
        if "train" in outs and "test" in outs:
            return outs["train"], outs["test"]
    return None


def _target(ctx: Context) -> str | None:
    reg = ctx.params.get("registry") or {}
    return reg.get("target") or (ctx.params.get("dataset") or {}).get("target")


def _excluded(ctx: Context) -> list[str]:
    """The columns that travel with the tables but are not model inputs."""
    reg = ctx.params.get("registry") or {}
    found = reg.get("exclude_from_features")
    if found is None:
        found = (ctx.params.get("dataset") or {}).get("exclude_from_features")
    return [str(c) for c in found or []]


def _features(ctx: Context, frame: Any) -> Any:
    """``frame`` without the target and the columns that are not model inputs."""
    drop = [c for c in (_target(ctx), *_excluded(ctx)) if c is not None and c in frame.columns]
    return frame.drop(columns=drop) if drop else frame


def leakage(ctx: Context) -> Iterator[Result]:
    import pandas as pd

    tables = split_tables(ctx)
    if tables is None:
        yield Result("leakage", SKIP, "no stage outputs both a 'train' and a 'test' table")
        return
    train_path, test_path = tables
    if not (ctx.exists(train_path) and ctx.exists(test_path)):
        yield Result("leakage", SKIP, f"{train_path} or {test_path} is not in the workspace: "
                     "run the pipeline first")
        return
    train, test = ctx.read(train_path), ctx.read(test_path)
    columns = [c for c in test.columns if c in train.columns]
    hash_train = set(pd.util.hash_pandas_object(train[columns], index=False).tolist())
    hashes = pd.util.hash_pandas_object(test[columns], index=False)
    shared = [i for i, h in enumerate(hashes.tolist()) if h in hash_train]
    if shared:
        yield Result("leakage[duplicate rows]", FAIL,
                     f"{len(shared)} of {len(test)} rows of {test_path} are also in "
                     f"{train_path} (test rows {', '.join(map(str, shared[:5]))}"
                     + (" …" if len(shared) > 5 else "") + ")",
                     evidence={"shared": len(shared), "test_rows": len(test),
                               "examples": shared[:10]})
    else:
        yield Result("leakage[duplicate rows]", PASS, f"none of the {len(test)} test rows is "
                     f"in the {len(train)} train rows")
    settings = ctx.settings()
    key = settings.get("key")
    if key:
        if key not in train.columns or key not in test.columns:
            yield Result(f"leakage[key {key}]", FAIL, f"tests.key {key!r} is not a column of "
                         f"{train_path} and {test_path}")
        else:
            both = set(train[key].tolist()) & set(test[key].tolist())
            yield Result(f"leakage[key {key}]", FAIL if both else PASS,
                         f"{len(both)} {key} values are in both tables (e.g. "
                         f"{', '.join(map(str, sorted(both, key=str)[:5]))})" if both else
                         f"no {key} is in both tables", evidence={"shared": len(both)})
    when = settings.get("time")
    if when:
        if when not in train.columns or when not in test.columns:
            yield Result(f"leakage[time {when}]", FAIL, f"tests.time {when!r} is not a column "
                         f"of {train_path} and {test_path}")
        else:
            latest, earliest = train[when].max(), test[when].min()
            ok = earliest > latest
            yield Result(f"leakage[time {when}]", PASS if ok else FAIL,
                         f"every test row is later than every train row ({earliest} > {latest})"
                         if ok else f"the earliest test row ({earliest}) is not later than the "
                         f"latest train row ({latest}): the model is tested on the past",
                         evidence={"latest_train": str(latest), "earliest_test": str(earliest)})
    target = _target(ctx)
    if target and target in train.columns and target in test.columns:
        yield _proxies(train, test, target, test_path, _excluded(ctx))


def _proxies(train: Any, test: Any, target: str, test_path: str,
             excluded: list[str]) -> Result:
    from pandas.api.types import is_numeric_dtype
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    y_train, y_test = train[target], test[target]
    classify = not is_numeric_dtype(y_train) or y_train.nunique() <= 20
    scores = {}
    for column in (c for c in train.columns
                   if c != target and c not in excluded and c in test.columns):
        x_train = train[[column]]
        x_test = test[[column]]
        if not is_numeric_dtype(x_train[column]):
            codes = {v: i for i, v in enumerate(sorted(map(str, x_train[column].unique())))}
            x_train = x_train[column].astype(str).map(codes).to_frame()
            x_test = x_test[column].astype(str).map(codes).fillna(-1).to_frame()
        if x_train.isna().any().any() or x_test.isna().any().any():
            continue
        if classify:
            model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x_train, y_train)
            scores[column] = float(accuracy_score(y_test, model.predict(x_test)))
        else:
            model = DecisionTreeRegressor(max_depth=3, random_state=0).fit(x_train, y_train)
            scores[column] = float(r2_score(y_test, model.predict(x_test)))
    if not scores:
        return Result("leakage[target proxy]", SKIP, "no feature to test")
    proxies = {c: s for c, s in scores.items() if s >= PROXY_SCORE}
    best = max(scores, key=lambda c: scores[c])
    what = "accuracy" if classify else "R²"
    if proxies:
        return Result("leakage[target proxy]", FAIL,
                      f"{', '.join(sorted(proxies))} alone predict{'s' if len(proxies) == 1 else ''}"
                      f" {target} on {test_path} with {what} "
                      f"{max(proxies.values()):.3f} (at least {PROXY_SCORE}): a copy or a "
                      "consequence of the target", evidence={"scores": proxies})
    return Result("leakage[target proxy]", PASS, f"no feature alone predicts {target}: the "
                  f"best, {best}, has {what} {scores[best]:.3f} on the test table "
                  f"(a proxy: {PROXY_SCORE})", evidence={"best": best, "score": scores[best]})


def distribution(ctx: Context) -> Result:
    tables = split_tables(ctx)
    name = "drift[train vs test]"
    if tables is None or not all(ctx.exists(t) for t in tables):
        return Result(name, SKIP, "no train and test tables in the workspace")
    from framework.monitor import checks
    from framework.monitor.checks import Observed
    from framework.monitor.policy import Policy
    from framework.monitor.profile import build

    train, test = ctx.read(tables[0]), ctx.read(tables[1])
    target = _target(ctx)
    schema = None
    for stage in ctx.spec.stages:
        for o in stage.outs:
            if o.path == tables[0] and o.schema:
                schema = json.loads((ctx.root / o.schema).read_text())
    excluded = _excluded(ctx)
    if schema is not None and excluded:
        from framework.registry.step import serving_schema

        schema = serving_schema(schema, [c for c in excluded if c in schema.get(
            "properties", {})], file="params.yaml", source=tables[0])
    profile, _ = build(train.drop(columns=excluded, errors="ignore"), schema=schema,
                       target=target)
    features = _features(ctx, test)
    result = checks.data_drift(profile, replace(Policy(), min_rows=20),
                               Observed(features=features, predictions=None,
                                        requests=len(features)))
    drifted = result.numbers.get("drifted") or []
    return Result(name, WARN if drifted else PASS, result.message,
                  evidence={"drifted": drifted, "rows": len(features)})


# -- the model -----------------------------------------------------------------------------------

SCALER_ATTRIBUTES = ("mean_", "scale_", "var_", "center_", "data_min_", "data_max_",
                     "quantiles_", "lambdas_", "statistics_")


def _model_path(ctx: Context) -> str | None:
    reg = ctx.spec.registration
    return reg.model.path if reg is not None else None


def scaling(ctx: Context) -> Iterator[Result]:
    import pandas as pd
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    path = _model_path(ctx)
    tables = split_tables(ctx)
    if path is None or tables is None or not ctx.exists(path) or not all(
            ctx.exists(t) for t in tables):
        yield Result("scaling", SKIP, "no model and train/test tables in the workspace")
        return
    model = ctx.read(path)
    train, test = ctx.read(tables[0]), ctx.read(tables[1])
    x_train, x_test = _features(ctx, train), _features(ctx, test)
    names = getattr(model, "feature_names_in_", None)
    if names is not None and all(n in x_train.columns for n in names):
        x_train, x_test = x_train[list(names)], x_test[list(names)]  # what the model was fed
    steps = model.steps if isinstance(model, Pipeline) else []
    found = False
    for i, (step_name, step) in enumerate(steps[:-1]):
        for sub_name, est, x_tr, x_all in _fitted_transformers(steps[:i], step_name, step,
                                                               x_train, x_test):
            attrs = [a for a in SCALER_ATTRIBUTES if hasattr(est, a)]
            if not attrs:
                continue
            found = True
            label = f"scaling[{sub_name}]"
            on_train = clone(est).fit(x_tr)
            same = all(np.allclose(np.asarray(getattr(est, a), dtype=float),
                                   np.asarray(getattr(on_train, a), dtype=float),
                                   equal_nan=True) for a in attrs)
            if same:
                yield Result(label, PASS, f"{type(est).__name__}'s {', '.join(attrs)} equal "
                             f"those fitted on {tables[0]} alone")
                continue
            on_all = clone(est).fit(pd.concat([x_tr, x_all]) if hasattr(x_tr, "iloc")
                                    else np.vstack([x_tr, x_all]))
            leaked = all(np.allclose(np.asarray(getattr(est, a), dtype=float),
                                     np.asarray(getattr(on_all, a), dtype=float),
                                     equal_nan=True) for a in attrs)
            a = attrs[0]
            yield Result(label, FAIL, f"{type(est).__name__} was fitted on "
                         + ("train and test together" if leaked else "other rows than the "
                            "train table") + f": its {a} is {_short(getattr(est, a))}, fitted "
                         f"on {tables[0]} alone it is {_short(getattr(on_train, a))}",
                         evidence={"attribute": a, "leaked": leaked})
    if not found:
        yield Result("scaling", SKIP, "the model has no fitted scaler or imputer before its "
                     "estimator")


def _fitted_transformers(before: list[Any], name: str, step: Any, x_train: Any,
                         x_test: Any) -> Iterator[tuple[str, Any, Any, Any]]:
    """Each fitted transformer of a pipeline step with what it was fed from train and test."""
    from sklearn.compose import ColumnTransformer

    x_tr, x_te = x_train, x_test
    for _, earlier in before:
        x_tr, x_te = earlier.transform(x_tr), earlier.transform(x_te)
    if isinstance(step, ColumnTransformer):
        for sub, est, cols in step.transformers_:
            if est in ("drop", "passthrough"):
                continue
            pick = (lambda x, c=cols: x[c] if hasattr(x, "iloc") else x[:, c])
            yield f"{name}.{sub}", est, pick(x_tr), pick(x_te)
        return
    yield name, step, x_tr, x_te


def _short(value: Any) -> str:
    arr = np.asarray(value, dtype=float).ravel()
    return "[" + ", ".join(f"{v:.4g}" for v in arr[:3]) + (", …]" if arr.size > 3 else "]")


def serving(ctx: Context) -> Result:
    """The registered version of the workspace's model predicts what was recorded for it."""
    from framework.monitor.profile import TEST_PREDICTIONS, model_scores, read_test_predictions
    from framework.registry import open_registry
    from framework.registry.artifacts import sha256_file

    name = "serving[registered model]"
    path = _model_path(ctx)
    tables = split_tables(ctx)
    if path is None or not (ctx.root / path).is_file():
        return Result(name, SKIP, "no model file in the workspace yet (run the pipeline)")
    sha = sha256_file(ctx.root / path)
    reg_cfg = ctx.params.get("registry") or {}
    try:
        registry = open_registry(ctx.root / reg_cfg.get("path", ".framework/registry"),
                                 create=False, project_dir=ctx.root)
    except Exception:
        return Result(name, SKIP, "no registry yet: run the pipeline")
    from framework.errors import FrameworkError

    with registry:
        versions = [mv for mv in registry.store.find_versions(reg_cfg.get("model_name", ""), sha)
                    if not mv.removed_at]
        if not versions:
            return Result(name, SKIP, f"{path} is not registered yet: run the pipeline")
        mv = registry.get(versions[-1].name, versions[-1].version)  # artifact paths resolved
        raw = registry.companion(mv, TEST_PREDICTIONS) if TEST_PREDICTIONS in mv.extras else None
        if raw is None or tables is None or not ctx.exists(tables[1]):
            return Result(name, SKIP, f"{mv.name} v{mv.version} has no recorded test predictions")
        recorded = read_test_predictions(raw)
        try:
            served = registry.load(mv)
        except FrameworkError as exc:
            return Result(name, FAIL, f"{mv.name} v{mv.version} cannot be loaded as serve "
                          f"loads it: {str(exc).splitlines()[0]}")
    x = _features(ctx, ctx.read(tables[1]))
    predicted, proba = model_scores(served, x)
    if len(predicted) != len(recorded):
        return Result(name, FAIL, f"the test table has {len(predicted)} rows, {len(recorded)} "
                      f"were recorded for {mv.name} v{mv.version}")
    wrong = int(np.sum(np.asarray(predicted).astype(str) !=
                       recorded["y_pred"].to_numpy().astype(str)))
    columns = [c for c in recorded.columns if c.startswith("proba_")]
    gap = float(np.max(np.abs(proba - recorded[columns].to_numpy()))) \
        if proba is not None and columns else 0.0
    if wrong or gap > 1e-9:
        return Result(name, FAIL, f"{mv.name} v{mv.version} as registered predicts {wrong} of "
                      f"{len(x)} test rows differently from what was recorded at evaluation "
                      f"(largest probability gap {gap:.3g}): training and serving disagree",
                      evidence={"wrong": wrong, "gap": gap})
    return Result(name, PASS, f"{mv.name} v{mv.version}, loaded as serve loads it, predicts "
                  f"exactly the {len(x)} recorded test predictions")


def gates(ctx: Context) -> Iterator[Result]:
    """Every gate names a metric the evaluating stage writes (and a per-group gate finds that
    metric for each group); then each per-group gate, judged on those metrics now, as
    ``fairness[<metric> by <column>]``: an unfair model is caught before it is registered."""
    from framework.registry.gates import evaluate, group_values

    reg = ctx.spec.registration
    if reg is None or not reg.gates:
        yield Result("gates", SKIP, "no gates declared")
        return
    names = sorted({g.metric for g in reg.gates})
    path = reg.metrics.path
    if not ctx.exists(path):
        yield Result("gates", SKIP, f"{path} is not in the workspace: run the pipeline first")
        return
    written = ctx.read(path) if not (ctx.root / path).exists() else \
        json.loads((ctx.root / path).read_text())
    missing = [m for m in names if m not in written]
    missing += [f"{g.metric}@{g.by}=<group>" for g in reg.gates
                if g.by is not None and not group_values(written, g.metric, g.by)]
    missing = list(dict.fromkeys(missing))
    if missing:
        plain = sorted(k for k in written if "@" not in k)
        yield Result("gates", FAIL, f"gates name {', '.join(missing)}, which {path} does not "
                     f"hold (it has {', '.join(plain)})", evidence={"missing": missing})
        return
    yield Result("gates", PASS, f"every gate's metric ({', '.join(names)}) is in {path}")
    for gate, verdict in zip(reg.gates, evaluate(list(reg.gates), written)):
        if gate.by is None:
            continue
        yield Result(f"fairness[{gate.metric} by {gate.by}]", PASS if verdict.passed else FAIL,
                     f"{verdict.message} (on {path})",
                     evidence={"rule": gate.rule, "threshold": gate.threshold,
                               "value": verdict.value, "groups": verdict.groups})


# -- running them --------------------------------------------------------------------------------

def all_checks(ctx: Context) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Each check (or group of checks) by name, not yet run."""
    for stage in ctx.spec.stages:
        yield f"contract[{stage.name}]", lambda s=stage: contract(ctx, s)
        yield f"edges[{stage.name}]", lambda s=stage: edges(ctx, s)
        yield f"determinism[{stage.name}]", lambda s=stage: determinism(ctx, s)
    yield "ranges", lambda: list(ranges(ctx))
    yield "leakage", lambda: list(leakage(ctx))
    yield "scaling", lambda: list(scaling(ctx))
    yield "serving", lambda: serving(ctx)
    yield "drift", lambda: distribution(ctx)
    yield "gates", lambda: list(gates(ctx))


def context(root: Path, overrides: list[str] | None = None, *,
            sample_rows: int = SAMPLE_ROWS, composed: tuple[Any, Any] | None = None) -> Context:
    """The checks' context: ``conf/`` composed with ``overrides``, or ``composed`` (a config
    and its source) where Hydra already runs, as in a sweep."""
    from framework.spec import build_spec

    if composed is None:
        from framework.config import compose

        composed = compose(root, overrides or [])
    config, source = composed
    spec = build_spec(config, source)
    return Context(root, spec, dict(spec.params), sample_rows=sample_rows,
                   spec_ranges=dict(config.get("ranges") or {}), source=source)


def run(ctx: Context, on_result: Callable[[Result], None] | None = None) -> list[Result]:
    results: list[Result] = []
    for label, check in all_checks(ctx):
        t = time.perf_counter()
        try:
            got = check()
        except Exception as exc:  # a check that cannot run is a finding, not a crash
            got = Result(label, FAIL, f"the check could not run: {type(exc).__name__}: {exc}")
        elapsed = time.perf_counter() - t
        items = got if isinstance(got, list) else [got]
        for r in items:
            if r is None:
                continue
            r.seconds = round(elapsed / max(len(items), 1), 3)
            results.append(r)
            if on_result:
                on_result(r)
    return results


def junit(results: list[Result], suite: str = "framework test") -> str:
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuite", name=suite, tests=str(len(results)),
                      failures=str(sum(r.status == FAIL for r in results)),
                      skipped=str(sum(r.status == SKIP for r in results)),
                      time=f"{sum(r.seconds for r in results):.3f}")
    for r in results:
        case = ET.SubElement(root, "testcase", classname=f"pipeline.{r.stage or 'project'}",
                             name=r.name, time=f"{r.seconds:.3f}")
        if r.status == FAIL:
            ET.SubElement(case, "failure", message=r.message).text = json.dumps(
                r.evidence, default=str, indent=1)
        elif r.status == SKIP:
            ET.SubElement(case, "skipped", message=r.message)
        elif r.status == WARN:
            ET.SubElement(case, "system-out").text = f"warning: {r.message}"
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
