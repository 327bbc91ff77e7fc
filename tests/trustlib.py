"""Hostile model files for the tests of the model allowlist.

:func:`runstring_model` writes the attack of MLflow-CVE-2024-37052's kind against skops: a fitted
LogisticRegression whose attributes include a ``ConstructorFromReduceNode`` naming
``numpy.testing._private.utils.runstring`` with a line of Python as its argument. skops calls a
trusted name with arguments from the file, so trusting names by prefix (``numpy.``) runs the
line: it creates ``marker``. :func:`node_model` puts any other node in the same place.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any


def json_node(value: Any) -> dict[str, Any]:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


def tuple_node(*items: dict[str, Any]) -> dict[str, Any]:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": list(items)}


def empty_dict_node() -> dict[str, Any]:
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": {}, "key_types": {"__class__": "list", "__module__": "builtins",
                                         "__loader__": "ListNode", "content": []}}


def fitted_model() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(X, y)


def node_model(path: Path, node: dict[str, Any], *, model: Any = None,
               schema_edit: Any = None) -> Path:
    """A real skops file of a fitted model with ``node`` as one more attribute (``evil``)."""
    import skops.io

    buffer = io.BytesIO()
    skops.io.dump(model if model is not None else fitted_model(), buffer)
    buffer.seek(0)
    with zipfile.ZipFile(buffer) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    attrs = schema["content"]
    attrs["content"]["evil"] = node
    attrs["key_types"]["content"].append({"__class__": "str", "__module__": "builtins",
                                          "__loader__": "TypeNode"})
    if schema_edit is not None:
        schema_edit(schema)
    members["schema.json"] = json.dumps(schema).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def runstring_model(path: Path, marker: Path) -> Path:
    """The model file whose loading, under a prefix allowlist, creates ``marker``."""
    code = f"with open({str(marker)!r}, 'w') as f: f.write('code ran')"
    return node_model(path, {
        "__class__": "runstring", "__module__": "numpy.testing._private.utils",
        "__loader__": "ConstructorFromReduceNode",
        "content": tuple_node(json_node(code), empty_dict_node())})
