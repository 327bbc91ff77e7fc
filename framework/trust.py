"""What a model file may name, decided before skops imports or builds anything.

A ``.skops`` file is a zip whose ``schema.json`` describes a tree of nodes. Each node names a
Python object (``__module__`` + ``__class__``) and says, through its ``__loader__``, what skops
will do with it: build an instance of a class (``ObjectNode``, ``NdArrayNode`` ...), *call* a
class with arguments read from the file (``ConstructorFromReduceNode``, ``TreeNode`` ...), or hand
back a function or a class as a value (``FunctionNode``, ``TypeNode``). skops calls whatever it is
told to trust, so trusting by prefix (every name under ``numpy.``) trusts functions such as
``numpy.testing._private.utils.runstring``, which calls ``exec`` on its argument.

So trust here is per name and per role:

* **types** may be instantiated or called: the estimator classes scikit-learn exports (exactly
  what ``sklearn.utils.all_estimators()`` lists, a test keeps the two equal), the numpy and scipy
  types a fitted estimator holds, and the scikit-learn internals in :data:`SKLEARN_INTERNAL_TYPES`,
  each reviewed;
* **functions** may only be referenced, never called while loading: the numpy and
  ``scipy.special`` ufuncs, the few functions in :data:`FUNCTIONS`, scikit-learn's metrics;
* ``functools.partial`` only as what it is (a function, itself checked, with arguments), built
  and never called while loading;
* everything else (methods, ``operator`` callables, any other module) is refused, unless the
  project trusts that exact name (``trusted_types:`` in ``conf/config.yaml``,
  or ``serve --trust``). A trusted extra name may appear in any role.

Names are compared as written in the file, or by identity with the object the allowlist names
when the file's module is one the allowlist itself imports (skops writes a ufunc under the first
module that holds it, ``scipy.special._special_ufuncs.expit`` for ``scipy.special.expit``). A
module that the file names is never imported to decide: only the allowlist's own modules are.

Two trusted types hold indices that scikit-learn follows without bounds checks
(:data:`VALIDATED_TYPES`): after loading, :func:`validate_model` checks every tree of the model
(children, features, node counts), so a crafted file fails to load instead of crashing the
process at its first prediction. Others of that kind (:data:`NEEDS_EXPLICIT_TRUST`) are not
validated and are trusted only when the project names them.

This module imports the standard library only; numpy, scipy and scikit-learn are imported on the
first check, as loading the model would import them anyway.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

#: skops file protocols whose loaders were reviewed for this module (skops' PROTOCOL 2 is the
#: one skops >= 0.10 writes; older protocols name functions inside their content).
SKOPS_PROTOCOLS = (2,)

#: Loaders that build an instance of the named type, or call it with arguments from the file.
TYPE_LOADERS = frozenset({
    "ObjectNode", "ConstructorFromReduceNode", "ReduceNode", "TreeNode", "LossNode",
    "QuantileForestNode", "DictNode", "DefaultDictNode", "ListNode", "SetNode", "TupleNode",
    "BytesNode", "BytearrayNode", "SliceNode", "NdArrayNode", "MaskedArrayNode", "DTypeNode",
    "RandomStateNode", "RandomGeneratorNode", "SparseMatrixNode", "_DictWithDeprecatedKeysNode",
})
#: Loaders that return the named function (or class) itself, uncalled.
REFERENCE_LOADERS = frozenset({"FunctionNode", "TypeNode"})
#: Loaders whose own name fields are not looked up (a JSON literal; a reference to a node
#: already checked).
INERT_LOADERS = frozenset({"JsonNode", "CachedNode"})
#: Loaders refused unless the project trusts the exact name they resolve to.
EXPLICIT_LOADERS = frozenset({"MethodNode", "OperatorFuncNode"})
#: ``functools.partial`` of a function node (checked on its own) and arguments from the file:
#: built, never called while loading (hist gradient boosting keeps ``partial(check_array)``).
PARTIAL = "functools.partial"

#: Plain Python types.
PLAIN_TYPES = frozenset({
    "builtins.bool", "builtins.bytearray", "builtins.bytes", "builtins.complex", "builtins.dict",
    "builtins.float", "builtins.frozenset", "builtins.int", "builtins.list", "builtins.NoneType",
    "builtins.set", "builtins.slice", "builtins.str", "builtins.tuple",
    "collections.OrderedDict", "collections.defaultdict",
})
#: numpy containers and random states (scalar types and bit generators are enumerated from numpy).
NUMPY_TYPES = frozenset({
    "numpy.ndarray", "numpy.dtype", "numpy.ma.core.MaskedArray",
    "numpy.random.mtrand.RandomState", "numpy.random._generator.Generator",
})
#: scikit-learn objects that fitted estimators hold but ``all_estimators()`` does not list:
#: losses and links, the histogram-gradient-boosting binner, calibration and multiclass
#: helpers, optimizers of the MLPs, scorers, metadata routing, Bunch. Each was reviewed: built
#: with ``__new__`` and ``__setstate__`` (or, for the Cython losses, called with the numbers
#: they were saved with), none runs code from the file or indexes memory with it.
SKLEARN_INTERNAL_TYPES = frozenset({
    "sklearn._loss.link.HalfLogitLink", "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval", "sklearn._loss.link.LogLink", "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.AbsoluteError", "sklearn._loss.loss.ExponentialLoss",
    "sklearn._loss.loss.HalfBinomialLoss", "sklearn._loss.loss.HalfGammaLoss",
    "sklearn._loss.loss.HalfMultinomialLoss", "sklearn._loss.loss.HalfPoissonLoss",
    "sklearn._loss.loss.HalfSquaredError", "sklearn._loss.loss.HalfTweedieLoss",
    "sklearn._loss.loss.HalfTweedieLossIdentity", "sklearn._loss.loss.HuberLoss",
    "sklearn._loss.loss.PinballLoss",
    "sklearn._loss._loss.CyAbsoluteError", "sklearn._loss._loss.CyExponentialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss", "sklearn._loss._loss.CyHalfGammaLoss",
    "sklearn._loss._loss.CyHalfMultinomialLoss", "sklearn._loss._loss.CyHalfPoissonLoss",
    "sklearn._loss._loss.CyHalfSquaredError", "sklearn._loss._loss.CyHalfTweedieLoss",
    "sklearn._loss._loss.CyHalfTweedieLossIdentity", "sklearn._loss._loss.CyHuberLoss",
    "sklearn._loss._loss.CyPinballLoss",
    "sklearn.linear_model._sgd_fast.EpsilonInsensitive", "sklearn.linear_model._sgd_fast.Hinge",
    "sklearn.linear_model._sgd_fast.ModifiedHuber",
    "sklearn.linear_model._sgd_fast.SquaredEpsilonInsensitive",
    "sklearn.linear_model._sgd_fast.SquaredHinge",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration",
    "sklearn.multiclass._ConstantPredictor", "sklearn.cluster._bisect_k_means._BisectingTree",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.metrics._scorer._Scorer", "sklearn.metrics._scorer._CurveScorer",
    "sklearn.utils._metadata_requests.MetadataRequest",
    "sklearn.utils._metadata_requests.MethodMetadataRequest",
    "sklearn.utils._bunch.Bunch",
    "scipy.interpolate._bsplines.BSpline",
})
#: Trusted because :func:`validate_model` checks every index they hold after loading.
VALIDATED_TYPES = frozenset({
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
})
#: Types that hold indices scikit-learn follows without bounds checks, which this module does not
#: validate: a crafted file could make a prediction read out of bounds. Trusted only by name.
NEEDS_EXPLICIT_TRUST: dict[str, str] = {
    "sklearn.neighbors._kd_tree.KDTree": "its index arrays are not validated on load",
    "sklearn.neighbors._ball_tree.BallTree": "its index arrays are not validated on load",
}
#: Functions a fitted estimator refers to (a pooling function, a score function, a callback of
#: k-means), beyond the enumerated ufuncs and metrics. None of them is called while loading.
FUNCTIONS = frozenset({
    "numpy.amax", "numpy.amin", "numpy.average", "numpy.max", "numpy.mean", "numpy.median",
    "numpy.min", "numpy.nanmax", "numpy.nanmean", "numpy.nanmedian", "numpy.nanmin",
    "numpy.nansum", "numpy.std", "numpy.sum", "numpy.var",
    "sklearn.feature_selection.chi2", "sklearn.feature_selection.f_classif",
    "sklearn.feature_selection.f_regression", "sklearn.feature_selection.mutual_info_classif",
    "sklearn.feature_selection.mutual_info_regression", "sklearn.feature_selection.r_regression",
    "sklearn.utils.validation.check_array",
    "sklearn.cluster._kmeans._kmeans_single_elkan",
    "sklearn.cluster._kmeans._kmeans_single_lloyd",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
})

#: Modules whose names never go into ``trusted_types``: they run commands, code or imports.
_DANGEROUS = re.compile(r"^(?:builtins\.(?:eval|exec|compile|open|__import__|getattr|setattr|"
                        r"delattr|input|breakpoint|exit|quit|help)$|(?:os|posix|nt|subprocess|"
                        r"sys|shutil|pickle|marshal|importlib|ctypes|socket|runpy|code|codeop|"
                        r"pty|multiprocessing|webbrowser|numpy\.testing|numpy\.f2py|"
                        r"numpy\.distutils)(?:\.|$))")
_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$", re.ASCII)
#: Bounds on what a file may make the loader read, against zip bombs.
MAX_SCHEMA_BYTES = 256 * 1024 * 1024
MAX_MEMBER_BYTES = 8 * 1024 * 1024 * 1024
#: scikit-learn's own ``all_estimators`` skips modules with these parts.
_SKLEARN_IGNORED_PARTS = frozenset({"tests", "externals", "setup", "conftest", "experimental",
                                    "estimator_checks"})


class UntrustedModel(Exception):
    """A model file that names something outside the allowlist, or that cannot be read.

    ``names`` lists the refused names (``module.Name``), with the reason of each when one is
    known."""

    def __init__(self, message: str, names: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.names = dict(names or {})


@dataclass(frozen=True)
class Reference:
    """One name in a model file and what the loader would do with it."""

    loader: str
    name: str


def check_trusted_names(names: Iterable[Any], *, where: str = "trusted_types") -> tuple[str, ...]:
    """Validate a project's extra trusted names: exact dotted names, no wildcard, nothing that
    runs commands or code. Returns them as a tuple; raises ``ValueError`` naming the entry."""
    out = []
    for i, name in enumerate(names):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}[{i}] = {name!r}: expected an exact dotted name such as "
                             "'mypackage.transformers.Winsorizer' (no wildcards, no patterns)")
        if _DANGEROUS.match(name):
            raise ValueError(f"{where}[{i}] = {name!r}: a model file may never name this (it runs "
                             "commands, code or imports)")
        out.append(name)
    return tuple(out)


# -- reading a file ------------------------------------------------------------------------------

def read_schema(path: Any) -> dict[str, Any]:
    """The ``schema.json`` of a skops file, refusing oversized members (zip bombs) and unknown
    protocols. Nothing of the file is built."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            big = [i.filename for i in infos if i.file_size > MAX_MEMBER_BYTES]
            if big:
                raise UntrustedModel(f"{path}: member {big[0]!r} declares more than "
                                     f"{MAX_MEMBER_BYTES} bytes")
            info = archive.getinfo("schema.json")
            if info.file_size > MAX_SCHEMA_BYTES:
                raise UntrustedModel(f"{path}: its schema.json declares {info.file_size} bytes, "
                                     f"over {MAX_SCHEMA_BYTES}")
            schema = json.loads(archive.read(info))
    except UntrustedModel:
        raise
    except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile,
            NotImplementedError) as exc:
        raise UntrustedModel(f"{path} is not a readable skops file ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from None
    if not isinstance(schema, dict):
        raise UntrustedModel(f"{path} is not a readable skops file (its schema is not an object)")
    protocol = schema.get("protocol")
    if protocol not in SKOPS_PROTOCOLS:
        raise UntrustedModel(f"{path} was saved with skops protocol {protocol!r}; this framework "
                             f"loads protocol {', '.join(map(str, SKOPS_PROTOCOLS))} only "
                             "(save the model again with skops >= 0.10)")
    return schema


def references(schema: dict[str, Any]) -> Iterator[Reference]:
    """Every name the nodes of ``schema`` make the loader look up, with the loader that would.

    Walks iteratively (a deeply nested file cannot overflow the stack). A node without a loader
    is plain data; a node whose ``__module__``/``__class__`` are not strings is reported as
    the unreadable name it is.
    """
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        loader = node.get("__loader__")
        if loader is None:
            continue
        module, cls = node.get("__module__"), node.get("__class__")
        if not isinstance(loader, str) or not isinstance(module, str) or not isinstance(cls, str):
            yield Reference(str(loader), f"{module!r}.{cls!r}")
            continue
        if loader in INERT_LOADERS:
            continue
        name = f"{module}.{cls}"
        if loader == "MethodNode":
            content = node.get("content")
            func = content.get("func") if isinstance(content, dict) else None
            name = f"{name}.{func}"
        elif loader == "RandomGeneratorNode":
            yield Reference("BitGenerator", f"numpy.random.{_bit_generator(node)}")
        elif loader == "TreeNode":
            yield Reference("TreeNode", "sklearn.tree._tree.Tree")
        yield Reference(loader, name)


def _bit_generator(node: dict[str, Any]) -> str:
    try:
        name = json.loads(node["content"]["bit_generator"]["content"]["bit_generator"]["content"])
    except (KeyError, TypeError, ValueError):
        return "<unreadable>"
    return name if isinstance(name, str) else "<unreadable>"


# -- the allowlist -------------------------------------------------------------------------------

def _import(name: str) -> Any:
    import importlib

    return importlib.import_module(name)


def _attribute(name: str) -> Any:
    """The object ``module.attr`` names, when that module is already imported (else None)."""
    module, _, attr = name.rpartition(".")
    holder = sys.modules.get(module)
    return getattr(holder, attr, None) if holder is not None else None


@functools.cache
def _numpy_families() -> tuple[frozenset[Any], frozenset[Any], frozenset[str]]:
    """numpy's and scipy.special's ufuncs, numpy's scalar types and scipy's sparse classes (by
    identity), numpy's bit generators (by the name skops stores)."""
    import numpy as np
    import scipy.sparse
    import scipy.special

    ufuncs = {o for o in vars(np).values() if isinstance(o, np.ufunc)}
    ufuncs |= {o for o in vars(scipy.special).values() if isinstance(o, np.ufunc)}
    scalars = {t for t in np.sctypeDict.values() if isinstance(t, type)}
    bases = tuple(t for t in (getattr(scipy.sparse, "spmatrix", None),
                              getattr(scipy.sparse, "sparray", None)) if t is not None)
    sparse = {o for o in vars(scipy.sparse).values()
              if isinstance(o, type) and issubclass(o, bases) and o not in bases}
    bit_generators = {f"numpy.random.{n}" for n, o in vars(np.random).items()
                      if isinstance(o, type) and issubclass(o, np.random.BitGenerator)
                      and o is not np.random.BitGenerator}
    return frozenset(ufuncs), frozenset(scalars | sparse), frozenset(bit_generators)


@functools.cache
def _sklearn_families() -> tuple[frozenset[Any], frozenset[Any]]:
    """Types (the Gaussian-process kernels) and functions (``sklearn.metrics``) enumerated from
    scikit-learn's public modules."""
    import inspect

    import sklearn.gaussian_process.kernels as kernels
    import sklearn.metrics as metrics

    types = {o for o in vars(kernels).values()
             if isinstance(o, type) and issubclass(o, kernels.Kernel)
             and not inspect.isabstract(o)}
    functions = {getattr(metrics, n) for n in metrics.__all__
                 if inspect.isfunction(getattr(metrics, n, None))}
    return frozenset(types), frozenset(functions)


@functools.cache
def _named(names: frozenset[str]) -> frozenset[Any]:
    """The objects a set of literal names denotes (importing only their own modules)."""
    found = set()
    for name in names:
        module, _, attr = name.rpartition(".")
        try:
            obj = getattr(_import(module), attr)
        except (ImportError, AttributeError):
            continue  # not in this version of the library: nothing to trust
        try:
            hash(obj)
        except TypeError:
            continue
        found.add(obj)
    return frozenset(found)


def is_sklearn_estimator(name: str) -> bool:
    """Whether ``name`` (``module.Class``, as skops writes it) is one of the classes
    ``sklearn.utils.all_estimators()`` lists.

    Equivalent to that function (a test compares both on every class of scikit-learn), without
    importing every estimator module: the class must be defined where the name says, exported
    under its own name by the public module above it (the name's leading components up to the
    first private one), be a concrete subclass of ``BaseEstimator`` with a public name, and live
    in no module ``all_estimators`` skips. Only that public module is imported, never the one
    the name gives.
    """
    module, _, cls_name = name.rpartition(".")
    parts = module.split(".")
    if parts[0] != "sklearn" or cls_name.startswith("_") or not cls_name.isidentifier() or \
            any(p in _SKLEARN_IGNORED_PARTS or not p.isidentifier() for p in parts):
        return False
    public_parts = []
    for part in parts:
        if part.startswith("_"):
            break
        public_parts.append(part)
    public = ".".join(public_parts)
    if public == "sklearn":
        return False  # sklearn's own namespace exports no estimator
    try:
        exporter = _import(public)
    except ImportError:
        return False
    cls = getattr(exporter, cls_name, None)
    if not isinstance(cls, type) or cls.__module__ != module or cls.__name__ != cls_name:
        return False
    from sklearn.base import BaseEstimator

    abstract = bool(getattr(cls, "__abstractmethods__", None))
    return issubclass(cls, BaseEstimator) and cls is not BaseEstimator and not abstract


class Allowlist:
    """The names a model file may contain, plus a project's exact extras."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.extra = frozenset(check_trusted_names(extra))

    def _is_type(self, name: str) -> bool:
        if name in PLAIN_TYPES or name in NUMPY_TYPES or name in SKLEARN_INTERNAL_TYPES or \
                name in VALIDATED_TYPES:
            return True
        top = name.split(".", 1)[0]
        if top == "sklearn":
            if is_sklearn_estimator(name):
                return True
            kernels, _ = _sklearn_families()
            return _attribute(name) in kernels
        if top in ("numpy", "scipy"):
            _, types, _ = _numpy_families()
            obj = _attribute(name)
            return obj is not None and _hashable_in(obj, types)
        return False

    def _is_function(self, name: str) -> bool:
        if name in FUNCTIONS:
            return True
        top = name.split(".", 1)[0]
        if top not in ("numpy", "scipy", "sklearn"):
            return False
        # the allowlist's own modules first: the file's module is then looked up, not imported
        ufuncs, _, _ = _numpy_families()
        named = _named(FUNCTIONS)
        metrics = _sklearn_families()[1] if top == "sklearn" else frozenset()
        obj = _attribute(name)
        return obj is not None and any(_hashable_in(obj, group)
                                       for group in (ufuncs, named, metrics))

    def refusals(self, refs: Iterable[Reference]) -> dict[str, str]:
        """The refused names of ``refs``, each with why."""
        refused: dict[str, str] = {}
        seen: set[Reference] = set()
        for ref in refs:
            if ref in seen:
                continue
            seen.add(ref)
            name, loader = ref.name, ref.loader
            if name in self.extra:
                continue
            if name in NEEDS_EXPLICIT_TRUST:
                refused[name] = f"{NEEDS_EXPLICIT_TRUST[name]}; trust it by name if you trust " \
                                "the file"
            elif not _NAME.match(name):
                refused[name] = f"not a valid name ({loader})"
            elif loader == "BitGenerator":
                _, _, bit_generators = _numpy_families()
                if name not in bit_generators:
                    refused[name] = "not a numpy bit generator"
            elif loader in TYPE_LOADERS:
                if not self._is_type(name):
                    refused[name] = ("a function, which this file would call" if
                                     self._is_function(name) else "not a trusted type") + \
                                    f" ({loader})"
            elif loader in REFERENCE_LOADERS:
                if not (self._is_function(name) or self._is_type(name)):
                    refused[name] = f"not a trusted function or type ({loader})"
            elif loader == "PartialNode":
                if name != PARTIAL:
                    refused[name] = f"not {PARTIAL} ({loader})"
            elif loader in EXPLICIT_LOADERS:
                refused[name] = f"{loader}: trusted only by name"
            else:
                refused[name] = f"unknown loader {loader!r}"
        return refused

    def check_file(self, path: Any) -> list[str]:
        """Every name the file at ``path`` contains, after refusing the untrusted ones
        (:class:`UntrustedModel`, with the names and why)."""
        refs = list(references(read_schema(path)))
        refused = self.refusals(refs)
        if refused:
            shown = "; ".join(f"{n} ({why})" for n, why in sorted(refused.items())[:10])
            more = f"; and {len(refused) - 10} more" if len(refused) > 10 else ""
            raise UntrustedModel(f"refusing {path}: it names what the allowlist does not trust: "
                                 f"{shown}{more}. If this is your own class or function and you "
                                 "trust the file, list its exact name under trusted_types in "
                                 "conf/config.yaml", refused)
        return sorted({r.name for r in refs})


def _hashable_in(obj: Any, group: frozenset[Any]) -> bool:
    try:
        return obj in group
    except TypeError:  # an unhashable attribute is no trusted object
        return False


# -- after loading: indices the model follows -----------------------------------------------------

def validate_model(model: Any, *, what: str = "model") -> None:
    """Check every decision tree the loaded ``model`` holds (``sklearn.tree._tree.Tree`` and
    hist-gradient-boosting ``TreePredictor``): children, features and node counts in range, and
    every child after its parent (so traversal ends). Raises :class:`UntrustedModel`."""
    for owner, tree in _trees(model):
        problem = _tree_problem(tree, owner)
        if problem:
            raise UntrustedModel(f"refusing {what}: a tree of its {type(owner).__name__} is "
                                 f"malformed ({problem}); the file was not written by "
                                 "scikit-learn or was altered")


def _trees(model: Any) -> Iterator[tuple[Any, Any]]:
    """(owner, tree) for every tree reachable from ``model`` through attributes, lists, tuples,
    dicts and object arrays."""
    import numpy as np

    tree_types = tuple(t for t in (_attribute("sklearn.tree._tree.Tree"),
                                   _attribute("sklearn.ensemble._hist_gradient_boosting."
                                              "predictor.TreePredictor")) if t is not None)
    if not tree_types:
        return
    seen: set[int] = set()
    stack: list[tuple[Any, Any]] = [(None, model)]
    while stack:
        owner, obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
            continue
        seen.add(id(obj))
        if isinstance(obj, tree_types):
            yield owner, obj
            continue
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend((owner, o) for o in obj.ravel().tolist())
            continue
        if isinstance(obj, dict):
            stack.extend((owner, v) for v in obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((owner, v) for v in obj)
        elif hasattr(obj, "__dict__"):
            stack.extend((obj, v) for v in vars(obj).values())


def _tree_problem(tree: Any, owner: Any) -> str | None:
    import numpy as np

    if type(tree).__name__ == "TreePredictor":
        return _predictor_problem(tree, owner)
    state = tree.__getstate__()
    nodes, values = state["nodes"], state["values"]
    count = int(state["node_count"])
    if count != len(nodes) or count < 1:
        return f"node_count {count}, {len(nodes)} nodes"
    if values.shape[0] != count or values.shape[1] != tree.n_outputs:
        return f"values shape {values.shape} for {count} nodes and {tree.n_outputs} outputs"
    if values.ndim != 3 or values.shape[2] < int(np.max(tree.n_classes)):
        return f"values shape {values.shape} for n_classes {list(tree.n_classes)}"
    left, right, feature = nodes["left_child"], nodes["right_child"], nodes["feature"]
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        return "a node with one child"
    index = np.arange(count)
    inner = ~leaf
    if np.any((left[inner] <= index[inner]) | (left[inner] >= count) |
              (right[inner] <= index[inner]) | (right[inner] >= count)):
        return "a child index out of range or before its parent"
    n_features = int(tree.n_features)
    expected = getattr(owner, "n_features_in_", n_features)
    if n_features != expected:
        return f"{n_features} features in the tree, {expected} in the estimator"
    if np.any((feature[inner] < 0) | (feature[inner] >= n_features)):
        return "a feature index out of range"
    if tree.max_depth < _depth(left, right, inner):
        return f"max_depth {tree.max_depth} below the tree's depth"
    return None


def _depth(left: Any, right: Any, inner: Any) -> int:
    import numpy as np

    depth = np.zeros(len(left), dtype=np.int64)
    for i in np.flatnonzero(inner).tolist():  # children come after parents: one pass
        depth[left[i]] = depth[right[i]] = depth[i] + 1
    return int(depth.max(initial=0))


def _predictor_problem(predictor: Any, owner: Any) -> str | None:
    import numpy as np

    nodes = predictor.nodes
    count = len(nodes)
    if count < 1:
        return "no nodes"
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    leaf = nodes["is_leaf"].astype(bool)
    inner = ~leaf
    index = np.arange(count)
    if np.any((left[inner] <= index[inner]) | (left[inner] >= count) |
              (right[inner] <= index[inner]) | (right[inner] >= count)):
        return "a child index out of range or before its parent"
    n_features = getattr(owner, "n_features_in_", None)
    feature = nodes["feature_idx"].astype(np.int64)
    if n_features is not None and np.any((feature[inner] < 0) | (feature[inner] >= n_features)):
        return "a feature index out of range"
    categorical = inner & nodes["is_categorical"].astype(bool)
    bitsets = len(getattr(predictor, "raw_left_cat_bitsets", ()))
    if np.any(categorical) and np.any(nodes["bitset_idx"][categorical].astype(np.int64) >= bitsets):
        return "a categorical split without its bitset"
    return None
