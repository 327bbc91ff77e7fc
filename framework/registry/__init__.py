"""The model registry: versions, aliases, lineage, gates and a content-addressed artifact store.

Python API (importing this package is cheap: scikit-learn, pandas and skops are imported only when
a model is saved, checked or loaded)::

    from framework import registry

    model = registry.load("breast_cancer@champion")          # also "breast_cancer/3",
    mv = registry.resolve("models:/breast_cancer@champion")  # "models:/breast_cancer/3"
    mv.version, mv.metrics, mv.input_schema, mv.serving_schema(), mv.artifact_path, mv.lineage
    best = registry.search("breast_cancer", ["roc_auc > 0.99"], order_by="roc_auc", limit=5)

    with registry.open_registry() as reg:                    # the Registry the CLI uses
        reg.register("breast_cancer", "models/model.skops", metrics={...}, gates=[...], ...)

``registry=`` (or ``open_registry(path)``) picks the folder; without it ``$FRAMEWORK_REGISTRY``,
then ``registry.path`` of ``params.yaml`` in the current directory, then ``.framework/registry``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names are imported on first use, so that ``import framework.registry.gates`` (the compiler)
# costs only that module and ``python -m framework registry list`` starts fast.
_EXPORTS: dict[str, str] = {
    "ModelRef": "core", "Registration": "core", "Registry": "core", "compare": "core",
    "decide": "core", "load": "core", "open_registry": "core", "parse_uri": "core",
    "registry_path": "core", "resolve": "core", "search": "core", "Condition": "store",
    "Gate": "gates", "Verdict": "gates", "parse_gates": "gates",
    "CHAMPION": "store", "AliasConflict": "store", "AliasMove": "store", "ModelVersion": "store",
    "Store": "store",
}
__all__ = [
    "CHAMPION", "AliasConflict", "AliasMove", "Condition", "Gate", "ModelRef", "ModelVersion",
    "Registration", "Registry", "Store", "Verdict", "compare", "decide", "load", "open_registry",
    "parse_gates", "parse_uri", "registry_path", "resolve", "search",
]

if TYPE_CHECKING:  # pragma: no cover
    from framework.registry.core import (ModelRef, Registration, Registry, compare, decide, load,
                                         open_registry, parse_uri, registry_path, resolve,
                                         search)
    from framework.registry.gates import Gate, Verdict, parse_gates
    from framework.registry.store import (CHAMPION, AliasConflict, AliasMove, Condition,
                                          ModelVersion, Store)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'framework.registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"framework.registry.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
