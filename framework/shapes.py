"""The shape of a stage's params, declared by its function's type hints, checked at compile time.

A stage function says what a params block must look like the way Hydra's structured configs do,
with a ``TypedDict`` or a ``@dataclass`` (or plain ``int``, ``float``, ``str``, ``bool``,
``list[...]``, ``dict[...]``, ``Literal[...]``, ``X | None``)::

    class SplitParams(TypedDict):
        test_size: float
        stratify: NotRequired[bool]

    def split(raw: pd.DataFrame, *, split: SplitParams, seed: int) -> dict: ...

``compile`` then refuses an unknown key (with a did-you-mean), a missing key and a wrong type,
naming the file and the key. The annotations are read from the source with :mod:`ast` (the stage
module is never imported, so compiling stays fast and runs no project code). Anything it does not
understand (an estimator class, a type from another module) is not checked: ``_target_`` blocks
have their own check (:mod:`framework.constraints`).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCALARS = {"int": "int", "float": "float", "str": "str", "bool": "bool", "None": "null",
            "NoneType": "null"}
_ANY = {"Any", "object"}
_LISTS = {"list", "List", "Sequence", "tuple", "Tuple", "MutableSequence"}
_DICTS = {"dict", "Dict", "Mapping", "MutableMapping"}
_NOUNS = {"int": "an int", "float": "a number", "str": "a string", "bool": "a boolean",
          "null": "null", "list": "a list", "dict": "a mapping"}


@dataclass(frozen=True)
class Shape:
    """One declared shape: ``kind`` is any, scalar, list, dict, literal, union or record."""

    kind: str
    types: frozenset[str] = frozenset()      # scalar: int, float, str, bool, null
    item: Shape | None = None                # list items, dict values
    options: tuple[Any, ...] = ()            # literal values; union members (Shapes)
    name: str = ""                           # record: the class name
    fields: dict[str, tuple[Shape, bool]] = field(default_factory=dict)  # name -> (shape, required)

    def describe(self) -> str:
        if self.kind == "scalar":
            return " or ".join(_NOUNS[t] for t in sorted(self.types))
        if self.kind == "literal":
            return "one of " + ", ".join(map(repr, self.options))
        if self.kind == "union":
            return " or ".join(o.describe() for o in self.options)
        if self.kind == "record":
            return f"a mapping of {self.name}"
        return _NOUNS.get(self.kind, "anything")


ANY = Shape("any")


@dataclass(frozen=True)
class Mismatch:
    """The first place a value does not fit its shape: ``key`` (dotted), what is wrong, and the
    keys it could have meant."""

    key: str
    message: str
    candidates: tuple[str, ...] = ()
    wrong: str | None = None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def check(value: Any, shape: Shape, key: str) -> Mismatch | None:
    """The first mismatch of ``value`` (at ``key``) against ``shape``, or None."""
    kind = shape.kind
    if kind == "any":
        return None
    if kind == "scalar":
        if _scalar_ok(value, shape.types):
            return None
        return Mismatch(key, f"{value!r} is {_type_name(value)}; expected {shape.describe()}")
    if kind == "literal":
        if any(value == o and type(value) is type(o) for o in shape.options):
            return None
        return Mismatch(key, f"{value!r} is not {shape.describe()}",
                        tuple(map(str, shape.options)), wrong=str(value))
    if kind == "union":
        if any(check(value, o, key) is None for o in shape.options):
            return None
        return Mismatch(key, f"{value!r} is {_type_name(value)}; expected {shape.describe()}")
    if kind == "list":
        if not isinstance(value, list):
            return Mismatch(key, f"{_type_name(value)}; expected a list")
        for i, item in enumerate(value):
            found = check(item, shape.item or ANY, f"{key}[{i}]")
            if found:
                return found
        return None
    if isinstance(value, Mapping) and "_target_" in value:
        return None  # built by instantiate: checked against the class's own constraints
    if not isinstance(value, Mapping):
        return Mismatch(key, f"{value!r} is {_type_name(value)}; expected {shape.describe()}")
    if kind == "dict":
        for k, v in value.items():
            found = check(v, shape.item or ANY, f"{key}.{k}")
            if found:
                return found
        return None
    # a record: exactly its fields
    for k in value:
        if k not in shape.fields:
            return Mismatch(f"{key}.{k}", f"unknown key {k!r}; {shape.name} has "
                                          f"{', '.join(shape.fields) or 'no keys'}",
                            tuple(shape.fields), wrong=str(k))
    for name, (sub, required) in shape.fields.items():
        if name not in value:
            if required:
                return Mismatch(f"{key}.{name}", f"missing: {shape.name} requires it")
            continue
        found = check(value[name], sub, f"{key}.{name}")
        if found:
            return found
    return None


def _scalar_ok(value: Any, types: frozenset[str]) -> bool:
    if value is None:
        return "null" in types
    if isinstance(value, bool):
        return "bool" in types
    if isinstance(value, int):
        return bool(types & {"int", "float"})  # an int is a fine float
    if isinstance(value, float):
        return "float" in types
    if isinstance(value, str):
        return "str" in types
    return False


# -- reading the declarations ---------------------------------------------------------------------

class Module:
    """The classes and functions of one module's source, for reading annotations."""

    def __init__(self, tree: ast.Module) -> None:
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.functions = {n.name: n for n in tree.body
                          if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self._records: dict[str, Shape | None] = {}

    @classmethod
    def parse(cls, path: str | Path) -> Module:
        return cls(ast.parse(Path(path).read_text(), filename=str(path)))

    def parameters(self, function: str) -> dict[str, Shape]:
        """The declared shape of each parameter of ``function`` (missing: not declared)."""
        node = self.functions.get(function)
        if node is None:
            return {}
        args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        return {a.arg: self.shape(a.annotation) for a in args if a.annotation is not None}

    def shape(self, node: ast.expr | None, depth: int = 0) -> Shape:
        if node is None or depth > 20:
            return ANY
        if isinstance(node, ast.Constant):
            if node.value is None:
                return Shape("scalar", frozenset({"null"}))
            if isinstance(node.value, str):  # a string annotation
                try:
                    return self.shape(ast.parse(node.value, mode="eval").body, depth + 1)
                except SyntaxError:
                    return ANY
            return ANY
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return _union(self.shape(node.left, depth + 1), self.shape(node.right, depth + 1))
        name = _name(node.value if isinstance(node, ast.Subscript) else node)
        if isinstance(node, ast.Subscript):
            args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if name in _LISTS:
                return Shape("list", item=self.shape(args[0], depth + 1))
            if name in _DICTS:
                return Shape("dict", item=self.shape(args[-1], depth + 1))
            if name == "Optional":
                return _union(self.shape(args[0], depth + 1), Shape("scalar", frozenset({"null"})))
            if name == "Union":
                out = self.shape(args[0], depth + 1)
                for a in args[1:]:
                    out = _union(out, self.shape(a, depth + 1))
                return out
            if name == "Literal":
                values = tuple(a.value for a in args if isinstance(a, ast.Constant))
                return Shape("literal", options=values) if len(values) == len(args) else ANY
            if name in ("Annotated", "Required", "NotRequired", "Final"):
                return self.shape(args[0], depth + 1)
            return ANY
        if name in _SCALARS:
            return Shape("scalar", frozenset({_SCALARS[name]}))
        if name in _LISTS:
            return Shape("list", item=ANY)
        if name in _DICTS:
            return Shape("dict", item=ANY)
        if name in self.classes:
            return self.record(name, depth) or ANY
        return ANY  # Any, an estimator, a type from elsewhere: not checked

    def record(self, name: str, depth: int = 0) -> Shape | None:
        """The fields of a TypedDict or a dataclass defined in this module."""
        if name in self._records:
            return self._records[name]
        self._records[name] = None  # a class that refers to itself stays unchecked
        node = self.classes[name]
        bases = [_name(b) for b in node.bases]
        typed_dict = "TypedDict" in bases or any(b in self.classes and self._is_typed_dict(b)
                                                 for b in bases)
        data_class = any(_name(d.func if isinstance(d, ast.Call) else d) == "dataclass"
                         for d in node.decorator_list)
        if not (typed_dict or data_class):
            return None
        total = True
        for kw in node.keywords:
            if kw.arg == "total" and isinstance(kw.value, ast.Constant):
                total = bool(kw.value.value)
        fields: dict[str, tuple[Shape, bool]] = {}
        for base in bases:  # fields of TypedDict bases defined here come first
            if base in self.classes and base != name:
                parent = self.record(base, depth + 1)
                if parent is not None:
                    fields.update(parent.fields)
        for stmt in node.body:
            if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
                continue
            annotation = stmt.annotation
            wrapper = _name(annotation.value) if isinstance(annotation, ast.Subscript) else ""
            if wrapper == "ClassVar":
                continue
            if typed_dict:
                required = total if wrapper not in ("Required", "NotRequired") else \
                    wrapper == "Required"
            else:
                required = stmt.value is None
            fields[stmt.target.id] = (self.shape(annotation, depth + 1), required)
        shape = Shape("record", name=name, fields=fields)
        self._records[name] = shape
        return shape

    def _is_typed_dict(self, name: str) -> bool:
        node = self.classes[name]
        return any(_name(b) == "TypedDict" or (_name(b) in self.classes and _name(b) != name
                                               and self._is_typed_dict(_name(b)))
                   for b in node.bases)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _union(a: Shape, b: Shape) -> Shape:
    if a.kind == "any" or b.kind == "any":
        return ANY
    if a.kind == "scalar" and b.kind == "scalar":
        return Shape("scalar", a.types | b.types)
    options = (*(a.options if a.kind == "union" else (a,)),
               *(b.options if b.kind == "union" else (b,)))
    return Shape("union", options=options)
