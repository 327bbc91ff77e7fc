"""The model allowlist: exact names, roles by loader, trees validated; nothing of a hostile file
ever runs. The serve, stage and sweep paths are tested where those pieces are."""

from __future__ import annotations

import inspect
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trustlib import empty_dict_node, json_node, node_model, runstring_model, tuple_node

from framework import trust
from framework.errors import RegistryError
from framework.io import ArtifactError, load_model, save_model


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "MARKER"


def test_the_hostile_file_is_a_real_attack(tmp_path: Path, marker: Path) -> None:
    """skops runs it when its names are trusted (what a prefix allowlist did): the test file is
    not a harmless stand-in."""
    import skops.io

    path = runstring_model(tmp_path / "evil.skops", marker)
    names = skops.io.get_untrusted_types(file=path)
    assert "numpy.testing._private.utils.runstring" in names
    skops.io.load(path, trusted=names + ["sklearn.linear_model._logistic.LogisticRegression"])
    assert marker.read_text() == "code ran"


def test_the_hostile_file_is_refused_before_anything_runs(tmp_path: Path, marker: Path) -> None:
    path = runstring_model(tmp_path / "evil.skops", marker)
    with pytest.raises(ArtifactError, match=r"refusing .*evil.skops: it names what the allowlist "
                                            r"does not trust: numpy.testing._private.utils."
                                            r"runstring \(not a trusted type "
                                            r"\(ConstructorFromReduceNode\)\)"):
        load_model(path)
    assert not marker.exists()


def test_registry_paths_refuse_it(tmp_path: Path, marker: Path) -> None:
    from framework.registry import load, open_registry

    path = runstring_model(tmp_path / "evil.skops", marker)
    with open_registry(tmp_path / "registry") as reg:
        with pytest.raises(RegistryError, match="runstring"):
            reg.register("m", path, metrics={"accuracy": 1.0})
        assert reg.model_names() == []
        reg.register("m", path, metrics={"accuracy": 1.0}, check_types=False)  # an old client
        with pytest.raises(RegistryError, match="m version 1: refusing .*runstring"):
            reg.load("m@champion")
        mv = reg.resolve("m/1")
    with pytest.raises(RegistryError, match="runstring"):
        load(mv)
    with pytest.raises(RegistryError, match="runstring"):
        load("m/1", registry=tmp_path / "registry")
    assert not marker.exists()


# -- every node kind that can call or reference something ---------------------------------------

HOSTILE = {
    "function_as_type": ({"__class__": "system", "__module__": "os",
                          "__loader__": "ConstructorFromReduceNode",
                          "content": tuple_node(json_node("true"))}, "os.system"),
    "object_of_other_module": ({"__class__": "Popen", "__module__": "subprocess",
                                "__loader__": "ObjectNode", "content": empty_dict_node()},
                               "subprocess.Popen"),
    "function_reference": ({"__class__": "eval", "__module__": "builtins",
                            "__loader__": "FunctionNode"}, "builtins.eval"),
    "type_reference": ({"__class__": "Pickler", "__module__": "pickle",
                        "__loader__": "TypeNode"}, "pickle.Pickler"),
    "method": ({"__class__": "ndarray", "__module__": "numpy", "__loader__": "MethodNode",
                "content": {"func": "tofile", "obj": {"__class__": "ndarray",
                                                      "__module__": "numpy",
                                                      "__loader__": "ObjectNode"}}},
               "numpy.ndarray.tofile"),
    "operator": ({"__class__": "methodcaller", "__module__": "operator",
                  "__loader__": "OperatorFuncNode", "attrs": tuple_node(json_node("tofile"))},
                 "operator.methodcaller"),
    "partial_of_a_function": ({"__class__": "partial", "__module__": "functools",
                               "__loader__": "PartialNode",
                               "content": {"func": {"__class__": "system", "__module__": "os",
                                                    "__loader__": "FunctionNode"}}},
                              "os.system"),
    "partial_subclass": ({"__class__": "Partial2", "__module__": "mymod",
                          "__loader__": "PartialNode", "content": {}}, "mymod.Partial2"),
    "numpy_function_called": ({"__class__": "runstring", "__module__": "numpy.testing",
                               "__loader__": "ObjectNode"}, "numpy.testing.runstring"),
    "sklearn_function_called": ({"__class__": "fetch_openml", "__module__": "sklearn.datasets",
                                 "__loader__": "ConstructorFromReduceNode",
                                 "content": tuple_node(json_node("iris"))},
                                "sklearn.datasets.fetch_openml"),
    "sklearn_private_module_named": ({"__class__": "LogisticRegression",
                                      "__module__": "sklearn.utils._testing",
                                      "__loader__": "ObjectNode"},
                                     "sklearn.utils._testing.LogisticRegression"),
    "unknown_loader": ({"__class__": "x", "__module__": "y", "__loader__": "PickleNode"}, "y.x"),
    "not_a_name": ({"__class__": "a b", "__module__": "os;", "__loader__": "ObjectNode"},
                   "os;.a b"),
    "bit_generator": ({"__class__": "Generator", "__module__": "numpy.random._generator",
                       "__loader__": "RandomGeneratorNode", "content": {
                           "bit_generator": {"content": {"bit_generator": json_node("seed")}},
                           "seed_seq": empty_dict_node()}}, "numpy.random.seed"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_nodes_are_refused_by_name(tmp_path: Path, case: str) -> None:
    node, name = HOSTILE[case]
    path = node_model(tmp_path / f"{case}.skops", node)
    with pytest.raises(ArtifactError, match="refusing") as info:
        load_model(path)
    assert name in str(info.value)


def test_a_newer_or_older_skops_protocol_is_refused(tmp_path: Path) -> None:
    def old(schema: dict[str, Any]) -> None:
        schema["protocol"] = 0

    path = node_model(tmp_path / "old.skops", json_node(1), schema_edit=old)
    with pytest.raises(ArtifactError, match="saved with skops protocol 0; this framework loads "
                                            "protocol 2 only"):
        load_model(path)


def test_the_installed_skops_writes_a_reviewed_protocol() -> None:
    from skops.io._protocol import PROTOCOL

    assert PROTOCOL in trust.SKOPS_PROTOCOLS  # a new protocol needs a review of its loaders


def test_deep_nesting_and_oversized_members_are_refused(tmp_path: Path) -> None:
    depth = 100_000
    level = '{"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": ['
    text = '{"protocol": 2, "content": [' + level * depth + "1" + "]}" * depth + "]}"
    path = tmp_path / "deep.skops"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", text)
    with pytest.raises(ArtifactError, match="not a readable skops file"):
        load_model(path)
    bomb = tmp_path / "bomb.skops"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b" " * (trust.MAX_SCHEMA_BYTES + 1))
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ArtifactError, match="schema.json declares .* bytes, over"):
        load_model(bomb)


# -- what real models need loads, and predicts the same ------------------------------------------

def _models() -> dict[str, Any]:
    from scipy.special import expit
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (GradientBoostingClassifier, HistGradientBoostingClassifier,
                                  RandomForestClassifier)
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import (FunctionTransformer, OneHotEncoder, SplineTransformer,
                                       StandardScaler)
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    return {
        "scaler_logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        "log1p_ufunc": make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()),
        "scipy_ufunc": make_pipeline(FunctionTransformer(expit), LogisticRegression()),
        "select_k_best": make_pipeline(SelectKBest(f_classif, k=2), LogisticRegression()),
        "column_transformer": make_pipeline(ColumnTransformer(
            [("onehot", OneHotEncoder(handle_unknown="ignore"), [0])], remainder="passthrough"),
            LogisticRegression()),
        "spline": make_pipeline(SplineTransformer(), LogisticRegression(max_iter=500)),
        "decision_tree": DecisionTreeClassifier(random_state=0),
        "random_forest": RandomForestClassifier(n_estimators=5, random_state=0),
        "gradient_boosting": GradientBoostingClassifier(n_estimators=5, random_state=0),
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=5, random_state=0,
                                                                 categorical_features=[0]),
        "sgd": SGDClassifier(random_state=0),
        "mlp": MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0),
        "svc_proba": SVC(probability=True, random_state=0),
        "calibrated": CalibratedClassifierCV(LogisticRegression(), cv=3),
        "gaussian_process": GaussianProcessClassifier(random_state=0),
        "kmeans": KMeans(n_clusters=3, n_init=2, random_state=0),
    }


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any]:
    import warnings

    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = X.copy()
    X[:, 0] = np.round(X[:, 0])  # a small categorical column for the encoders
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
    return X, y


@pytest.mark.parametrize("name", list(_models()))
def test_real_models_load_and_predict_the_same(tmp_path: Path, iris: tuple[Any, Any],
                                               name: str) -> None:
    import warnings

    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits
        model = _models()[name].fit(X, y)
    path = tmp_path / "model.skops"
    save_model(model, path)
    loaded = load_model(path)
    method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
    np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(model, method)(X))


# -- trees: trusted because every index they hold is checked ---------------------------------------

def _broken_tree(model: Any, field: str, value: int) -> Any:
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes[field][0] = value
    model.tree_.__setstate__({**state, "nodes": nodes})
    return model


@pytest.mark.parametrize("field, value, message", [
    ("left_child", 10**6, "a child index out of range or before its parent"),
    ("right_child", 0, "a child index out of range or before its parent"),
    ("feature", 99, "a feature index out of range"),
])
def test_a_tree_that_indexes_out_of_bounds_is_refused(tmp_path: Path, iris: tuple[Any, Any],
                                                      field: str, value: int,
                                                      message: str) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    _broken_tree(forest.estimators_[1], field, value)
    path = tmp_path / "forest.skops"
    save_model(forest, path)
    with pytest.raises(ArtifactError, match=f"a tree of its DecisionTreeClassifier is malformed "
                                            rf"\({message}\)"):
        load_model(path)


def test_a_hist_gradient_boosting_predictor_out_of_bounds_is_refused(
        tmp_path: Path, iris: tuple[Any, Any]) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = iris
    model = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y)
    model._predictors[1][0].nodes["left"][0] = 10**6
    path = tmp_path / "hgb.skops"
    save_model(model, path)
    with pytest.raises(ArtifactError, match="a tree of its HistGradientBoostingClassifier is "
                                            "malformed"):
        load_model(path)


def test_kd_trees_need_explicit_trust(tmp_path: Path, iris: tuple[Any, Any]) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = iris
    model = KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    path = tmp_path / "knn.skops"
    save_model(model, path)
    with pytest.raises(ArtifactError, match="sklearn.neighbors._kd_tree.KDTree \\(its index "
                                            "arrays are not validated on load; trust it by name"):
        load_model(path)
    trusted = ["sklearn.neighbors._kd_tree.KDTree", "sklearn.metrics._dist_metrics."
               "EuclideanDistance64"]
    assert load_model(path, trusted=trusted).predict(X).tolist() == model.predict(X).tolist()


# -- the allowlist is what it says ---------------------------------------------------------------

def _sklearn_classes() -> set[type]:
    """Every class defined in scikit-learn's modules (those all_estimators walks and the rest)."""
    import importlib
    import pkgutil
    import warnings

    import sklearn

    found: set[type] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for info in pkgutil.walk_packages(sklearn.__path__, prefix="sklearn."):
            if any(p in ("tests", "conftest", "_testing", "estimator_checks", "externals")
                   for p in info.name.split(".")):
                continue
            try:
                module = importlib.import_module(info.name)
            except ImportError:
                continue
            found |= {c for _, c in inspect.getmembers(module, inspect.isclass)
                      if c.__module__.startswith("sklearn.")}
    return found


def test_the_estimators_trusted_are_exactly_those_all_estimators_lists() -> None:
    from sklearn.utils import all_estimators

    classes = _sklearn_classes()  # first: the walk enables the experimental estimators
    listed = {c for _, c in all_estimators()}
    for cls in listed:
        assert trust.is_sklearn_estimator(f"{cls.__module__}.{cls.__name__}"), cls
    others = classes - listed
    assert len(others) > 100
    for cls in others:
        assert not trust.is_sklearn_estimator(f"{cls.__module__}.{cls.__name__}"), cls


def test_every_listed_name_exists() -> None:
    """A name that no longer exists in the installed libraries is a stale entry."""
    import importlib

    names = (trust.PLAIN_TYPES | trust.NUMPY_TYPES | trust.SKLEARN_INTERNAL_TYPES
             | trust.VALIDATED_TYPES | trust.FUNCTIONS | set(trust.NEEDS_EXPLICIT_TRUST))
    for name in names:
        module, _, attr = name.rpartition(".")
        if name == "builtins.NoneType":
            continue  # skops writes None's type under this name; it is not a builtins attribute
        assert hasattr(importlib.import_module(module), attr), name
    assert len(names) > 80


@pytest.mark.parametrize("names, message", [
    (["numpy.*"], r"trusted_types\[0\] = 'numpy.\*': expected an exact dotted name"),
    (["mypkg."], r"expected an exact dotted name"),
    (["Plain"], r"expected an exact dotted name"),
    (["os.system"], r"a model file may never name this"),
    (["ok.Name", "subprocess.Popen"], r"trusted_types\[1\] = 'subprocess.Popen'"),
    (["builtins.eval"], r"a model file may never name this"),
])
def test_trusted_extras_are_exact_and_never_dangerous(names: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        trust.check_trusted_names(names)


def test_the_project_trusts_its_own_class_by_name(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io

    (tmp_path / "winsor.py").write_text(
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "class Winsorizer(TransformerMixin, BaseEstimator):\n"
        "    def fit(self, X, y=None):\n        return self\n"
        "    def transform(self, X):\n        return X\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import winsor

    path = tmp_path / "w.skops"
    skops.io.dump(winsor.Winsorizer().fit([[1.0]]), path)
    with pytest.raises(ArtifactError, match="winsor.Winsorizer"):
        load_model(path)
    (tmp_path / "params.yaml").write_text("trusted_types: [winsor.Winsorizer]\n")
    assert type(load_model(path)).__name__ == "Winsorizer"
    (tmp_path / "params.yaml").write_text("trusted_types: ['winsor.*']\n")
    with pytest.raises(ArtifactError, match=r"params.yaml: trusted_types\[0\] = 'winsor.\*'"):
        load_model(path)


def test_checking_a_file_reads_no_more_than_its_schema(tmp_path: Path) -> None:
    """The check never builds what the file holds: a file whose arrays are garbage still gets
    its verdict from the names alone."""
    from framework.trust import Allowlist

    path = runstring_model(tmp_path / "evil.skops", tmp_path / "never")
    data = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(data, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name) if name == "schema.json" else b"garbage")
    (tmp_path / "garbage.skops").write_bytes(data.getvalue())
    with pytest.raises(trust.UntrustedModel) as info:
        Allowlist().check_file(tmp_path / "garbage.skops")
    assert list(info.value.names) == ["numpy.testing._private.utils.runstring"]


def test_saving_the_same_model_twice_gives_the_same_bytes(tmp_path: Path,
                                                          iris: tuple[Any, Any]) -> None:
    """skops names members and nodes by id() and stamps the time: the canonical form does not,
    so DVC's run-cache and the registry see the same model as the same bytes."""
    import skops.io

    from sklearn.ensemble import RandomForestClassifier

    X, y = iris
    paths = []
    for i in range(2):
        model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
        paths.append(tmp_path / f"m{i}.skops")
        save_model(model, paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    raw = [tmp_path / f"raw{i}.skops" for i in range(2)]
    for path in raw:
        skops.io.dump(RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y), path)
    assert raw[0].read_bytes() != raw[1].read_bytes()  # what skops alone writes
    np.testing.assert_array_equal(load_model(paths[0]).predict_proba(X), model.predict_proba(X))
