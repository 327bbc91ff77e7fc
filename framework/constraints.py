"""Check estimator arguments from config against the estimator's own declared constraints.

scikit-learn declares what each constructor argument accepts in ``Estimator._parameter_constraints``
(``Interval``, ``StrOptions``, ``"boolean"``, ``None``, types ...). We translate those into plain data
once per ``_target_`` and scikit-learn version, and keep the result in a small JSON cache in the
user's cache folder (``$FRAMEWORK_CACHE_DIR``, else ``$XDG_CACHE_HOME/framework``, else
``~/.cache/framework``), so that ``compile`` refuses ``model.C=-1`` without importing scikit-learn,
also in a fresh clone of a project on a machine that checked the same classes before. The cache
holds descriptions only (argument names and constraints): nothing in it is ever run.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import math
import numbers
from pathlib import Path
from typing import Any

# A constraint is a small dict, one of:
#   {"kind": "interval", "type": "integral"|"real"|"real_not_int", "left": x|None, "right": x|None, "closed": ...}
#   {"kind": "options", "values": [...]}            (StrOptions / Options)
#   {"kind": "type", "name": "bool"|"int"|"real"|"str"|"dict"|"list"|"tuple"}
#   {"kind": "none"}
#   {"kind": "random_state"} | {"kind": "verbose"}
#   {"kind": "any", "why": "..."}                  (cannot be written in a config file; not checked)
Constraint = dict[str, Any]

_CACHE_VERSION = 1
#: Cache files already read in this process, by path and version of the file.
_LOADED: dict[tuple[str, int, int], dict[str, Any]] = {}


def describe_target(target: str) -> dict[str, Any]:
    """Import ``target`` and describe its constructor: argument names and their constraints."""
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except (ImportError, ValueError) as exc:
        return {"importable": False, "error": f"cannot import module '{module_name}' ({exc})",
                "candidates": []}
    obj = getattr(module, attr, None)
    if obj is None:
        names = [n for n in getattr(module, "__all__", dir(module)) if not n.startswith("_")]
        return {"importable": False, "error": f"module '{module_name}' has no attribute '{attr}'",
                "candidates": [f"{module_name}.{n}" for n in names]}
    info: dict[str, Any] = {"importable": True, "params": None, "constraints": {}}
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return info
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if not accepts_kwargs:
        info["params"] = [n for n, p in signature.parameters.items() if p.kind is not p.VAR_POSITIONAL]
    raw = getattr(obj, "_parameter_constraints", None)
    if isinstance(raw, dict):
        info["constraints"] = {name: [_describe(c) for c in options] for name, options in raw.items()
                               if not isinstance(options, str)}
    return info


def _describe(constraint: Any) -> Constraint:
    from sklearn.utils import _param_validation as pv  # only reached on a cache miss

    if isinstance(constraint, pv.Hidden):
        return _describe(constraint.constraint)
    if constraint is None:
        return {"kind": "none"}
    if isinstance(constraint, pv.Interval):
        kind = {numbers.Integral: "integral", numbers.Real: "real"}.get(constraint.type, "real_not_int")
        return {"kind": "interval", "type": kind, "left": _num(constraint.left),
                "right": _num(constraint.right), "closed": constraint.closed}
    if isinstance(constraint, pv.Options):  # StrOptions is a subclass
        values = sorted(constraint.options - getattr(constraint, "deprecated", set()), key=repr)
        return {"kind": "options", "values": [v for v in values if isinstance(v, str | int | float | bool)]}
    if isinstance(constraint, str):
        if constraint == "boolean":
            return {"kind": "type", "name": "bool"}
        if constraint in ("random_state", "verbose"):
            return {"kind": constraint}
        return {"kind": "any", "why": constraint}
    if isinstance(constraint, type):
        for name, types in (("bool", (bool,)), ("int", (int, numbers.Integral)),
                            ("real", (float, numbers.Real)), ("str", (str,)), ("dict", (dict,)),
                            ("list", (list,)), ("tuple", (tuple,))):
            if constraint in types:
                return {"kind": "type", "name": name}
    return {"kind": "any", "why": type(constraint).__name__}


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def satisfies(value: Any, constraint: Constraint) -> bool:
    """True when a config value satisfies one constraint."""
    kind = constraint["kind"]
    if kind == "any":
        return True
    if kind == "none":
        return value is None
    if kind == "options":
        return not isinstance(value, bool) and value in constraint["values"]
    if kind == "type":
        name = constraint["name"]
        if name == "bool":
            return isinstance(value, bool)
        if name == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        if name == "real":
            return isinstance(value, int | float) and not isinstance(value, bool)
        return isinstance(value, {"str": str, "dict": dict, "list": list, "tuple": (list, tuple)}[name])
    if kind == "random_state":
        return value is None or (isinstance(value, int) and not isinstance(value, bool)
                                 and 0 <= value <= 2**32 - 1)
    if kind == "verbose":
        return isinstance(value, int)
    if kind == "interval":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if constraint["type"] == "integral" and not isinstance(value, int):
            return False
        if constraint["type"] == "real_not_int" and isinstance(value, int):
            return False
        if isinstance(value, float) and math.isnan(value):
            return False
        left, right, closed = constraint["left"], constraint["right"], constraint["closed"]
        if left is not None and (value < left or (value == left and closed in ("right", "neither"))):
            return False
        if right is not None and (value > right or (value == right and closed in ("left", "neither"))):
            return False
        return True
    return True


def explain(constraints: list[Constraint]) -> str:
    """Say in words what a list of alternative constraints accepts."""
    parts = []
    for c in constraints:
        kind = c["kind"]
        if kind == "interval":
            noun = {"integral": "an int", "real": "a float", "real_not_int": "a float"}[c["type"]]
            lo = "-inf" if c["left"] is None else c["left"]
            hi = "inf" if c["right"] is None else c["right"]
            lb = "[" if c["closed"] in ("left", "both") and c["left"] is not None else "("
            rb = "]" if c["closed"] in ("right", "both") and c["right"] is not None else ")"
            parts.append(f"{noun} in the range {lb}{lo}, {hi}{rb}")
        elif kind == "options":
            parts.append("one of " + ", ".join(repr(v) for v in c["values"]))
        elif kind == "type":
            parts.append({"bool": "a bool", "int": "an int", "real": "a number", "str": "a str",
                          "dict": "a mapping", "list": "a list", "tuple": "a list"}[c["name"]])
        elif kind == "none":
            parts.append("null")
        elif kind == "random_state":
            parts.append("an int in [0, 2**32 - 1] or null (random_state)")
        elif kind == "verbose":
            parts.append("an int or a bool (verbose)")
    return " or ".join(parts) if parts else "anything"


def cache_dir() -> Path:
    """The user's cache folder of the framework."""
    import os

    if os.environ.get("FRAMEWORK_CACHE_DIR"):
        return Path(os.environ["FRAMEWORK_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "framework"


class ConstraintCache:
    """Descriptions of ``_target_`` classes, cached per scikit-learn version in one JSON file."""

    def __init__(self, folder: Path | None = None) -> None:
        folder = cache_dir() if folder is None else folder
        try:
            sk = importlib.metadata.version("scikit-learn")
        except importlib.metadata.PackageNotFoundError:
            sk = "none"
        self.path = folder / f"constraints-v{_CACHE_VERSION}-sklearn-{sk}.json"
        self._data: dict[str, Any] | None = None
        self._dirty = False

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            try:
                stat = self.path.stat()
                key = (str(self.path), stat.st_mtime_ns, stat.st_size)
                if key not in _LOADED:
                    _LOADED[key] = json.loads(self.path.read_text())
                self._data = dict(_LOADED[key])
            except (OSError, ValueError):
                self._data = {}
        return self._data

    def get(self, target: str) -> dict[str, Any]:
        data = self._load()
        if target in data:
            return data[target]
        info = describe_target(target)
        # Only scikit-learn's own classes are cached: they change only with its version, which
        # names the cache file. A user's class is described afresh on every compile.
        if info["importable"] and target.startswith("sklearn."):
            data[target] = info
            self._dirty = True
        return info

    def save(self) -> None:
        """Write the cache atomically; a cache that cannot be written is simply not kept."""
        if not self._dirty or self._data is None:
            return
        from framework.io import write_text

        try:
            write_text(self.path, json.dumps(self._data, sort_keys=True))
            self._dirty = False
        except OSError:
            pass
