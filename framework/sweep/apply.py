"""``sweep apply``: write a sweep's winner back into ``conf/``, the single source of truth.

The winner's config groups become the defaults of ``conf/config.yaml`` and each of its values is
written into the file that defines it (``model.C`` into ``conf/model/<option>.yaml``), with
ruamel.yaml's round trip, so the comments and layout of every file stay as they were. The edits
are made in a copy of ``conf/`` first; they are written only if composing that copy gives exactly
the winner's params, and ``dvc.yaml``/``params.yaml`` are recompiled, so ``dvc repro`` reproduces
the winner.
"""

from __future__ import annotations

import io as _io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import UsageError
from framework.io import write_text
from framework.sweep.store import SweepStore, winner

#: Groups that say how a sweep was run, not what the pipeline is.
_GROUPS_NOT_DEFAULTS = ("experiment", "search")


@dataclass(frozen=True)
class Change:
    file: str
    key: str
    old: Any
    new: Any


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    y.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    return y


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


class _Editor:
    """Round-trip edits of the YAML files of one ``conf/`` folder."""

    def __init__(self, conf: Path) -> None:
        self.conf = conf
        self.docs: dict[Path, Any] = {}
        self.yaml = _yaml()

    def doc(self, path: Path) -> Any:
        if path not in self.docs:
            self.docs[path] = self.yaml.load(path.read_text()) if path.exists() else None
            if self.docs[path] is None:
                from ruamel.yaml.comments import CommentedMap

                self.docs[path] = CommentedMap()
        return self.docs[path]

    def save(self) -> None:
        for path, doc in self.docs.items():
            buffer = _io.StringIO()
            self.yaml.dump(doc, buffer)
            path.write_text(buffer.getvalue())

    def set_default(self, group: str, option: str) -> Any:
        defaults = self.doc(self.conf / "config.yaml").setdefault("defaults", [])
        for item in defaults:
            if hasattr(item, "keys") and group in item:
                old = item[group]
                item[group] = option
                return old
        position = next((i for i, item in enumerate(defaults) if item == "_self_"), len(defaults))
        from ruamel.yaml.comments import CommentedMap

        defaults.insert(position, CommentedMap([(group, option)]))
        return None

    def set_value(self, path: Path, keys: list[str], value: Any) -> Any:
        from ruamel.yaml.comments import CommentedMap

        node = self.doc(path)
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = CommentedMap()
            node = node[k]
        old = node.get(keys[-1])
        node[keys[-1]] = value
        return old

    def delete(self, path: Path, keys: list[str]) -> Any:
        node = self.doc(path)
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
            if node is None:
                return None
        return node.pop(keys[-1], None) if isinstance(node, dict) else None


def _home(conf: Path, choices: dict[str, Any], key: str) -> tuple[Path, list[str]]:
    """The file that defines ``key`` in a config with these group choices, and the key in it."""
    parts = key.split(".")
    option = choices.get(parts[0])
    if option:
        path = conf / parts[0] / f"{option}.yaml"
        if path.exists():
            head = path.read_text().splitlines()[:3]
            if any("@package _global_" in line for line in head):
                return path, parts
            return path, parts[1:]
    return conf / "config.yaml", parts


def _params(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from framework.config import compose
    from framework.spec import RESERVED_KEYS

    data, source = compose(root, [])
    return ({k: v for k, v in data.items() if k not in RESERVED_KEYS}, dict(source.choices))


def _normal(data: Any) -> Any:
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def _winner(store: SweepStore) -> Any:
    """The sweep's best trial (by its primary metric, among those that passed their gates)."""
    meta = store.meta()
    best = winner(store.results(), meta.get("primary_metric"), meta.get("direction", "maximize"))
    if best is None:
        raise UsageError(f"sweep {store.sweep_id} has no winner: no trial finished and passed "
                         "its gates")
    return best


def apply_winner(store: SweepStore, *, dry_run: bool = False) -> list[Change]:
    best = _winner(store)
    root = store.root
    target = _normal(best.params)
    changes: list[Change] = []
    with tempfile.TemporaryDirectory(prefix="sweep-apply-") as tmp:
        work = Path(tmp)
        shutil.copytree(root / "conf", work / "conf")
        editor = _Editor(work / "conf")
        _, choices = _params(work)
        for group, option in sorted(best.choices.items()):
            if group in _GROUPS_NOT_DEFAULTS or group.startswith("hydra") or option is None:
                continue
            if choices.get(group) != option:
                old = editor.set_default(group, option)
                changes.append(Change("conf/config.yaml", f"defaults.{group}", old, option))
        editor.save()
        for _ in range(3):  # values may depend on each other through interpolations
            current, choices = _params(work)
            have, want = _flatten(_normal(current)), _flatten(target)
            diff = sorted(k for k in set(have) | set(want) if have.get(k, _NONE) != want.get(k, _NONE))
            if not diff:
                break
            for key in diff:
                path, keys = _home(work / "conf", choices, key)
                rel = path.relative_to(work).as_posix()
                if key in want:
                    old = editor.set_value(path, keys, want[key])
                    changes.append(Change(rel, ".".join(keys), old, want[key]))
                else:
                    old = editor.delete(path, keys)
                    changes.append(Change(rel, ".".join(keys), old, None))
            editor.save()
        current, _ = _params(work)
        if _normal(current) != target:
            mismatch = sorted(k for k, v in _flatten(target).items()
                              if _flatten(_normal(current)).get(k, _NONE) != v)
            raise UsageError(f"cannot express the winner of {store.sweep_id} in conf/ "
                             f"(still different: {', '.join(mismatch[:8])}); conf/ is unchanged")
        if dry_run:
            return _last_per_key(changes)
        for path in editor.docs:
            write_text(root / path.relative_to(work), path.read_text())

    from framework.commands import compile_project
    from framework.compiler import write

    write(compile_project(root, []), root)
    return _last_per_key(changes)


_NONE = object()


def _last_per_key(changes: list[Change]) -> list[Change]:
    seen: dict[tuple[str, str], Change] = {}
    for change in changes:
        first = seen.get((change.file, change.key))
        seen[(change.file, change.key)] = Change(change.file, change.key,
                                                 first.old if first else change.old, change.new)
    return list(seen.values())


def winner_overrides(store: SweepStore) -> list[str]:
    """Hydra overrides that make the current ``conf/`` compose exactly the winner's params
    (its config group options, then each value that differs), checked by composing them.

    ``sweep promote`` runs the pipeline with them: the winner is trained, evaluated, gated and
    registered like any run, and ``conf/`` stays as it is.
    """
    from framework.config import compose
    from framework.spec import RESERVED_KEYS

    best = _winner(store)
    root = store.root
    target = _normal(best.params)
    _, choices = _params(root)
    overrides = [f"{group}={option}" for group, option in sorted(best.choices.items())
                 if group not in _GROUPS_NOT_DEFAULTS and not group.startswith("hydra")
                 and option is not None and choices.get(group) != option]
    for _ in range(3):  # values may depend on each other through interpolations
        data, _ = compose(root, overrides)
        have = _flatten(_normal({k: v for k, v in data.items() if k not in RESERVED_KEYS}))
        want = _flatten(target)
        diff = sorted(k for k in set(have) | set(want) if have.get(k, _NONE) != want.get(k, _NONE))
        if not diff:
            return overrides
        for key in diff:
            overrides = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != key]
            if key not in want:
                overrides.append(f"~{key}")
            else:
                overrides.append(f"{'' if key in have else '+'}{key}={_hydra_value(want[key])}")
    raise UsageError(f"cannot express the winner of {store.sweep_id} as overrides of conf/ "
                     f"(still different: {', '.join(diff[:8])})")


def _hydra_value(value: Any) -> str:
    """A value in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    return str(value)
