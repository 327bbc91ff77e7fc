"""Every mistake in conf/ is refused before anything runs, naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.commands import compile_project
from framework.errors import ConfigError, UsageError
from framework.spec import ConfigSource, check_estimators, check_ranges
from tests.conftest import run_cli

PIPELINE = "conf/pipeline/tabular_classification.yaml"


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))


# (id, edits [(file, old, new)], overrides, pattern the message must match)
BAD_CONFIGS = [
    ("unknown-stage-key", [(PIPELINE, "params: [preprocess, model,", "parms: [preprocess, model,")], [],
     r"conf/pipeline/tabular_classification.yaml: pipeline.stages.train.parms: unknown key 'parms'"
     r".*did you mean 'params'"),
    ("input-names-no-output", [(PIPELINE, "ins: {train: split.train}", "ins: {train: split.trian}")], [],
     r"tabular_classification.yaml: pipeline.stages.train.ins.train: input 'split.trian' names no "
     r"output of stage 'split'.*did you mean 'split.train'"),
    ("publish-not-parquet", [(PIPELINE, "raw: {path: data/raw.parquet,", "raw: {path: data/raw.csv,"),
                             (PIPELINE, "publish: {feature_set: breast_cancer}",
                              "publish: {feature_set: breast_cancer}")], [],
     r"pipeline.stages.ingest.outs.raw.publish: a published table is Parquet"),
    ("publish-bad-name", [(PIPELINE, "publish: {feature_set: breast_cancer}",
                           "publish: {feature_set: ../cancer}")], [],
     r"pipeline.stages.ingest.outs.raw.publish.feature_set: expected a feature set name"),
    ("feature-ref", [(PIPELINE, "raw: ingest.raw", "raw: {feature_set: breast_cancer@seven}")], [],
     r"pipeline.stages.split.ins.raw.feature_set: expected a feature set reference"),
    ("join-without-on", [(PIPELINE, "raw: ingest.raw",
                          "raw: {join: {entities: ingest.raw, features: [cells]}}")], [],
     r"pipeline.stages.split.ins.raw.join: a join needs 'entities', 'features', 'on'.*"
     r"missing 'on'"),
    ("join-max-age", [(PIPELINE, "raw: ingest.raw", "raw: {join: {entities: ingest.raw, "
                       "features: [{feature_set: cells, max_age: soon}], on: id}}")], [],
     r"join.features\[0\].max_age: max_age: expected a positive age such as 90s"),
    ("input-names-no-stage", [(PIPELINE, "raw: ingest.raw", "raw: ingst.raw")], [],
     r"pipeline.stages.split.ins.raw: input 'ingst.raw' names no stage 'ingst'.*did you mean 'ingest'"),
    ("cycle", [(PIPELINE, "params: [dataset]\n", "params: [dataset]\n    ins: {back: split.train}\n")], [],
     r"tabular_classification.yaml: pipeline.stages.ingest.ins: the stages form a cycle: "
     r"ingest -> split -> ingest"),
    ("missing-schema", [(PIPELINE, "raw: {path: data/raw.parquet, schema: schemas/features.json,",
                         "raw: {path: data/raw.parquet, schema: schemas/featres.json,")], [],
     r"pipeline.stages.ingest.outs.raw.schema: schema file 'schemas/featres.json' does not exist"
     r".*did you mean 'schemas/features.json'"),
    ("function-not-defined", [(PIPELINE, "run: pipelines.tabular.train", "run: pipelines.tabular.trian")], [],
     r"pipeline.stages.train.run: module 'pipelines.tabular' \(pipelines/tabular.py\) defines no "
     r"function 'trian'.*did you mean 'train'"),
    ("module-not-importable", [(PIPELINE, "run: pipelines.tabular.train", "run: pipelines.tabulr.train")], [],
     r"pipeline.stages.train.run: cannot import module 'pipelines.tabulr'.*did you mean "
     r"'pipelines.tabular'"),
    ("unknown-stage-param", [(PIPELINE, "params: [split, seed,", "params: [splt, seed,")], [],
     r"pipeline.stages.split.params: stage 'split' uses param 'splt'.*did you mean 'split'"),
    ("param-wrong-type-in-file", [("conf/model/logistic_regression.yaml", "max_iter: 1000", "max_iter: 50.5")], [],
     r"conf/model/logistic_regression.yaml: model.max_iter = 50.5 is not valid for "
     r"sklearn.linear_model.LogisticRegression: the 'max_iter' parameter of LogisticRegression "
     r"must be an int in the range \[0, inf\)"),
    ("param-wrong-type-override", [], ["model.C=abc"],
     r"command line override 'model.C=abc': model.C = 'abc' is not a number"),
    ("param-below-range", [], ["model.C=-1"],
     r"command line override 'model.C=-1': model.C = -1 is below its range minimum 0.0001 "
     r"\(ranges.model.C\)"),
    ("param-above-range", [], ["split.test_size=0.9"],
     r"split.test_size = 0.9 is above its range maximum 0.5 \(ranges.split.test_size\)"),
    ("param-not-an-option", [], ["+model.solver=newton"],
     r"model.solver = 'newton' is not valid for sklearn.linear_model.LogisticRegression: the "
     r"'solver' parameter of LogisticRegression must be one of .*'newton-cg'"),
    ("estimator-unknown-argument", [("conf/model/random_forest.yaml", "n_jobs: 1", "n_job: 1")],
     ["model=random_forest"],
     r"conf/model/random_forest.yaml: model.n_job: RandomForestClassifier has no argument 'n_job'"
     r".*did you mean 'n_jobs'"),
    ("estimator-not-importable", [("conf/model/logistic_regression.yaml", "LogisticRegression\n",
                                   "LogisticRegresion\n")], [],
     r"model._target_: cannot import _target_ 'sklearn.linear_model.LogisticRegresion'.*did you "
     r"mean 'sklearn.linear_model.LogisticRegression'"),
    ("unknown-group-option", [], ["model=random_forrest"],
     r"command line override 'model=random_forrest': no option 'random_forrest' in config group "
     r"'model'.*did you mean 'random_forest'"),
    ("unknown-group-option-in-defaults", [("conf/config.yaml", "- model: logistic_regression",
                                           "- model: logistic_regresion")], [],
     r"Could not find 'model/logistic_regresion'"),
    ("unknown-key-override", [], ["split.tst_size=0.3"],
     r"command line override 'split.tst_size=0.3': 'split.tst_size' is not a key.*did you mean "
     r"'test_size'"),
    ("missing-value", [("conf/config.yaml", "seed: 42", "seed: ???")], [],
     r"conf/config.yaml: seed: no value given"),
    ("bad-plot-template", [(PIPELINE, "template: confusion,", "template: confusoin,")], [],
     r"pipeline.stages.evaluate.plots.confusion.template: unknown DVC plot template 'confusoin'"
     r".*did you mean 'confusion'"),
    ("path-outside-project", [(PIPELINE, "path: data/raw.parquet", "path: ../raw.parquet")], [],
     r"pipeline.stages.ingest.outs.raw.path: paths are relative to the project root"),
    ("gate-on-unknown-metric", [("conf/config.yaml", "{metric: log_loss, max: 0.2}",
                                 "{metric: logloss, max: 0.2}")], [],
     r"conf/config.yaml: gates\[1\].metric: unknown metric 'logloss'.*did you mean 'log_loss'"),
    ("gate-with-unknown-rule", [("conf/config.yaml", "{metric: log_loss, max: 0.2}",
                                 "{metric: log_loss, maximum: 0.2}")], [],
     r"conf/config.yaml: gates\[1\]"),
    ("primary-metric-unknown", [], ["registry.primary_metric=auc"],
     r"registry.primary_metric: 'auc' is not a metric of stage 'evaluate'.*did you mean 'roc_auc'"),
    ("two-producers", [(PIPELINE, "test: {path: data/test.parquet", "test: {path: data/raw.parquet")], [],
     r"'data/raw.parquet' is written by both stage 'ingest' and stage 'split'"),
    ("typed-block-unknown-key", [("conf/config.yaml", "  stratify: true", "  stratfy: true")], [],
     r"conf/config.yaml: split.stratfy: unknown key 'stratfy'; SplitParams has test_size, "
     r"stratify \(the 'split' argument of pipelines.tabular.split\).*did you mean 'stratify'"),
    ("typed-block-missing-key", [("conf/config.yaml", "  stratify: true\n", "")], [],
     r"conf/config.yaml: split.stratify: missing: SplitParams requires it"),
    ("typed-block-wrong-type", [], ["split.stratify=maybe"],
     r"command line override 'split.stratify=maybe': split.stratify: 'maybe' is a string; "
     r"expected a boolean"),
    ("typed-block-in-group-file", [("conf/dataset/breast_cancer.yaml", "loader:", "loadr:")], [],
     r"conf/dataset/breast_cancer.yaml: dataset.loadr: unknown key 'loadr'.*did you mean "
     r"'loader'"),
    ("range-on-a-missing-leaf", [("conf/config.yaml", "split.test_size: {min", "split.tst_size: {min")],
     [], r"conf/config.yaml: ranges.split.tst_size: 'split' has no key 'tst_size', so this range "
         r"never applies.*did you mean 'test_size'"),
    ("range-no-option-has", [("conf/config.yaml", "model.max_iter: {min", "model.max_itr: {min")],
     [], r"ranges.model.max_itr: no option of 'model' has an argument 'max_itr'.*did you mean "
         r"'max_iter'"),
]


@pytest.mark.parametrize("edits, overrides, pattern", [c[1:] for c in BAD_CONFIGS],
                         ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_refused_with_file_and_key(project: Path, edits, overrides, pattern) -> None:
    for rel, old, new in edits:
        edit(project, rel, old, new)
    with pytest.raises(ConfigError, match=f"(?s){pattern}"):
        compile_project(project, overrides)


def test_default_config_compiles(project: Path) -> None:
    compiled = compile_project(project, [])
    assert set(compiled.files) == {"dvc.yaml", "params.yaml"}


SHAPES = '''
from dataclasses import dataclass, field
from typing import Literal, NotRequired, Optional, TypedDict

class Base(TypedDict):
    name: str

class Options(Base, total=False):
    level: Literal["low", "high"]
    weights: list[float]
    limit: Optional[int]
    tags: dict[str, str]

@dataclass
class Window:
    size: int
    step: int = 1
    labels: list[str] = field(default_factory=list)

class Either(TypedDict):
    value: int | str
    note: NotRequired[str]

def f(*, options: Options, window: Window, either: Either, anything: "dict", seed: int): ...
'''


@pytest.mark.parametrize("argument, value, message", [
    ("options", {"name": "a", "level": "low", "weights": [1, 2.5], "limit": None}, None),
    ("options", {"level": "low"}, "options.name: missing: Options requires it"),
    ("options", {"name": "a", "level": "mid"}, "options.level: 'mid' is not one of 'low', 'high'"),
    ("options", {"name": "a", "weights": [1, "x"]}, "options.weights[1]: 'x' is a string; "
                                                     "expected a number"),
    ("options", {"name": "a", "limit": 1.5}, "options.limit: 1.5 is a number; expected an int or "
                                             "null"),
    ("options", {"name": "a", "tags": {"k": 3}}, "options.tags.k: 3 is an int; expected a string"),
    ("window", {"size": 3}, None),
    ("window", {"step": 2}, "window.size: missing: Window requires it"),
    ("window", {"size": 3, "strid": 2}, "window.strid: unknown key 'strid'; Window has size, "
                                        "step, labels"),
    ("either", {"value": "x"}, None),
    ("either", {"value": [1]}, "either.value: [1] is a list; expected an int or a string"),
    ("anything", {"whatever": 1}, None),
    ("seed", True, "seed: True is a boolean; expected an int"),
    ("window", {"_target_": "x.Y", "size": "not checked"}, None),
], ids=lambda v: str(v)[:30])
def test_declared_shapes_are_checked(argument: str, value: object, message: str | None) -> None:
    import ast

    from framework.shapes import Module, check

    shape = Module(ast.parse(SHAPES)).parameters("f")[argument]
    found = check(value, shape, argument)
    if message is None:
        assert found is None, found
    else:
        assert found is not None and f"{found.key}: {found.message}" == message


def test_range_that_does_not_apply_is_ignored(project: Path) -> None:
    # ranges.model.C exists, but a random forest has no C: nothing to check.
    compile_project(project, ["model=random_forest"])


def test_null_value_is_not_checked_against_a_range(project: Path) -> None:
    compile_project(project, ["model=random_forest", "model.max_depth=null"])


def test_estimator_constraints_apply_without_ranges(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEWORK_CACHE_DIR", str(tmp_path / "user-cache"))
    source = ConfigSource(root=tmp_path, choices={"model": "logistic_regression"})
    params = {"model": {"_target_": "sklearn.linear_model.LogisticRegression", "C": -1.0}}
    with pytest.raises(ConfigError, match=r"(?s)conf/model/logistic_regression.yaml: model.C = -1.0 is "
                                          r"not valid .* must be a float in the range \(0, inf\)"):
        check_estimators(params, source)
    params["model"]["C"] = 0.5
    check_estimators(params, source)
    # the description of LogisticRegression is now cached for the next compile, of any project
    (cached,) = (tmp_path / "user-cache").glob("constraints-*.json")
    assert "sklearn.linear_model.LogisticRegression" in cached.read_text()


def test_ranges_choices(tmp_path: Path) -> None:
    source = ConfigSource(root=tmp_path, overrides=("model.solver=lbgfs",))
    with pytest.raises(ConfigError, match=r"(?s)command line override 'model.solver=lbgfs': model.solver"
                                          r" = 'lbgfs' is not one of its allowed values.*did you "
                                          r"mean 'lbfgs'"):
        check_ranges({"model": {"solver": "lbgfs"}}, {"model.solver": {"choices": ["lbfgs", "saga"]}},
                     source)


def test_unknown_range_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"(?s)conf/config.yaml: ranges.model.C.mx: unknown key 'mx'"
                                          r".*did you mean 'max'"):
        check_ranges({"model": {"C": 1}}, {"model.C": {"mx": 3}}, ConfigSource(root=tmp_path))


def test_folder_without_project(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no conf/config.yaml in .*python -m framework init"):
        compile_project(tmp_path, [])


def test_bad_config_exits_2_and_leaves_generated_files_untouched(project: Path) -> None:
    run_cli(project, "compile", check=True)
    before = {p: (project / p).read_bytes() for p in ("dvc.yaml", "params.yaml")}
    proc = run_cli(project, "compile", "model.C=-1")
    assert proc.returncode == 2
    assert "model.C = -1 is below its range minimum" in proc.stderr
    edit(project, PIPELINE, "ins: {train: split.train}", "ins: {train: split.trian}")
    proc = run_cli(project, "compile")
    assert proc.returncode == 2
    assert "pipeline.stages.train.ins.train" in proc.stderr
    assert {p: (project / p).read_bytes() for p in before} == before


def test_bad_override_of_the_main_command_exits_2(project: Path) -> None:
    # the Hydra application refuses it before compiling or running anything
    proc = run_cli(project, "model=random_forrest")
    assert proc.returncode == 2
    assert "did you mean 'random_forest'" in proc.stderr
    proc = run_cli(project, "model.C=-1")
    assert proc.returncode == 2
    assert "model.C = -1 is below its range minimum 0.0001" in proc.stderr
    assert not (project / "dvc.yaml").exists()
