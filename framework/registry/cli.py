"""``python -m framework registry ...``: list, show, search, compare, history, promote, archive,
gc, migrate.

Every command takes ``--json`` (machine-readable output on stdout) and ``--registry PATH``
(default: ``$FRAMEWORK_REGISTRY``, else ``registry.path`` in ``params.yaml``, else
``.framework/registry``). This is a CLI layer: it prints and returns exit codes; errors are raised
as :mod:`framework.errors` exceptions and turned into messages by ``framework.cli.run_verb``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from framework.console import Out
from framework.console import table as _table
from framework.errors import UsageParser
from framework.registry.core import (ModelRef, compare, flatten, open_registry, parse_uri,
                                     registry_path)
from framework.registry.store import CHAMPION, ModelVersion

PROG = "python -m framework registry"



def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument("--registry", default=None, metavar="PATH",
                        help="registry folder (default: registry.path in params.yaml)")
    p = UsageParser(prog=PROG, description="Inspect and manage registered models.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)
    sub.required = True
    ls = sub.add_parser("list", parents=[common], help="models, versions, key metrics, aliases")
    ls.add_argument("--all", action="store_true", help="also the archived versions")
    s = sub.add_parser("show", parents=[common], help="one version with all its lineage")
    s.add_argument("ref", metavar="NAME[@ALIAS|/VERSION]",
                   help="a model (its latest version), NAME@ALIAS or NAME/VERSION")
    se = sub.add_parser("search", parents=[common],
                        help="versions whose metrics meet thresholds, best first")
    se.add_argument("name", metavar="NAME", nargs="?", default=None,
                    help="a model (default: every model)")
    se.add_argument("--where", action="append", default=[], metavar="'METRIC OP NUMBER'",
                    help="e.g. 'roc_auc > 0.95' (OP: > >= < <= = !=); repeat to require more")
    se.add_argument("--order-by", default=None, metavar="METRIC",
                    help="sort by this metric, highest first (default: the first --where's)")
    se.add_argument("--ascending", action="store_true", help="lowest first")
    se.add_argument("--status", default=None,
                    choices=("promoted", "challenger", "rejected", "candidate"),
                    help="only versions whose registration was decided so")
    se.add_argument("--limit", type=_version, default=None, metavar="N", help="at most N")
    se.add_argument("--all", action="store_true", help="also the archived versions")
    c = sub.add_parser("compare", parents=[common], help="two versions side by side")
    c.add_argument("name", metavar="NAME")
    c.add_argument("a", metavar="V1", help="a version number, 'latest' or an alias")
    c.add_argument("b", metavar="V2", help="a version number, 'latest' or an alias")
    h = sub.add_parser("history", parents=[common], help="every alias move of a model")
    h.add_argument("name", metavar="NAME")
    pr = sub.add_parser("promote", parents=[common], help="point an alias at a version")
    pr.add_argument("name", metavar="NAME")
    pr.add_argument("version", metavar="VERSION", type=_version)
    pr.add_argument("--alias", required=True, help=f"the alias to move (e.g. {CHAMPION})")
    pr.add_argument("--reason", default="", help="why (kept in the history)")
    ar = sub.add_parser("archive", parents=[common],
                        help="hide versions from list; gc then removes their artifacts")
    ar.add_argument("name", metavar="NAME")
    ar.add_argument("versions", metavar="VERSION", type=_version, nargs="+")
    ar.add_argument("--restore", action="store_true", help="bring archived versions back")
    gc = sub.add_parser("gc", parents=[common],
                        help="remove the artifacts of archived versions (never an aliased one)")
    gc.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    mg = sub.add_parser("migrate", parents=[common],
                        help="copy this registry (rows and artifacts) into an empty shared one")
    mg.add_argument("--to", required=True, metavar="URL",
                    help="the target: postgresql://USER@HOST:PORT/DATABASE or sqlite:///FOLDER")
    mg.add_argument("--artifacts", default=None, metavar="FOLDER|REMOTE",
                    help="the target's artifact store: a folder or a DVC remote's name "
                         "(default: registry.artifacts, else the target's registry folder)")
    return p


def _version(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a version number, found {text!r}")
    return int(text)


def _ref(name: str, v: str) -> ModelRef:
    if v.isdigit() or v == "latest":
        return parse_uri(f"{name}/{v}")
    return parse_uri(f"{name}@{v}")


# -- output helpers ------------------------------------------------------------------------------

def _console() -> Out:
    return Out()


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4f}" if abs(x) < 1e5 else f"{x:.4g}"
    return "-" if x is None else str(x)


def _delta(x: Any) -> str:
    return "" if x is None else (f"{x:+.4f}" if isinstance(x, float) else f"{x:+}")


def _time(iso: str) -> str:
    return iso[:19].replace("T", " ")


def _key_metrics(versions: Sequence[ModelVersion]) -> list[str]:
    keys: dict[str, None] = {}
    for mv in versions:
        if mv.primary_metric:
            keys[mv.primary_metric] = None
    for mv in versions:
        for g in mv.gates:
            keys[g["metric"]] = None
    if not keys:
        for mv in versions:
            keys.update(dict.fromkeys(mv.metrics))
    return list(keys)[:6]


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


# -- commands ------------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    from framework.errors import NotRegistered

    root = registry_path(args.registry)
    try:
        with open_registry(args.registry, create=False) as reg:
            models = [(name, reg.versions(name), reg.aliases(name))
                      for name in reg.model_names()]
    except NotRegistered:
        models = []
    if not models:
        if args.json:
            _print_json({"registry": str(root), "models": []})
        else:
            print(f"no models registered yet (registry: {root})")
        return 0
    hidden = {name: sum(1 for mv in versions if mv.archived_at) for name, versions, _ in models}
    if not args.all:
        models = [(name, [mv for mv in versions if not mv.archived_at], aliases)
                  for name, versions, aliases in models]
    if args.json:
        _print_json({"registry": str(root), "models": [
            {"name": name, "aliases": aliases,
             "versions": [{"version": mv.version, "aliases": list(mv.aliases),
                           "status": mv.status, "state": mv.state, "metrics": mv.metrics,
                           "created_at": mv.created_at, "sha256": mv.sha256,
                           "sweep_id": mv.sweep_id, "tags": mv.tags,
                           "archived_at": mv.archived_at} for mv in versions]}
            for name, versions, aliases in models]})
        return 0
    if not models:
        print(f"no models registered yet (registry: {root})")
        return 0
    console = _console()
    for name, versions, aliases in models:
        metrics = _key_metrics(versions)
        champ = aliases.get(CHAMPION)
        more = f", {hidden[name]} archived (--all)" if hidden[name] and not args.all else ""
        title = f"{name}  ({len(versions)} versions{more}, champion: " + \
            (f"v{champ})" if champ else "none)")
        rows = [[mv.version, ",".join(mv.aliases), mv.state,
                 *(_fmt(mv.metrics.get(m)) for m in metrics), _time(mv.created_at),
                 mv.sha256[:12]] for mv in versions]
        console.print(_table(title, ["version", "aliases", "status", *metrics, "created (UTC)",
                                     "sha256"], rows, right=["version", *metrics]))
    return 0


def _show_text(mv: ModelVersion) -> None:
    console = _console()
    lin = mv.lineage
    git = lin.get("git") or {}
    pk = lin.get("packages") or {}
    head = [
        ("model", f"{mv.name} v{mv.version}   {mv.uri}"),
        ("aliases", ", ".join(mv.aliases) or "-"),
        ("state", mv.state + (f" (registered as {mv.status})" if mv.state != mv.status else "")),
        ("reasons", "; ".join(mv.reasons) or "-"),
        ("created", mv.created_at),
        ("artifact", f"{mv.artifact_path}  ({mv.size} bytes)"),
        ("sha256", mv.sha256),
        ("primary", f"{mv.primary_metric} ({mv.direction})" if mv.primary_metric else "-"),
        ("target", mv.target or "-"),
        ("git", f"{git.get('commit') or '-'}" + (" (dirty)" if git.get("dirty") else "")),
        ("sweep", mv.sweep_id or "-"),
        ("tags", ", ".join(f"{k}={v}" for k, v in mv.tags.items()) or "-"),
        ("by", lin.get("registered_by") or "-"),
        ("packages", ", ".join(f"{k} {v}" for k, v in pk.items() if v) or "-"),
    ]
    console.print(_table(None, ["", ""], head, header=False))
    console.print(_table("metrics", ["metric", "value"],
                         [[k, _fmt(v)] for k, v in mv.metrics.items()], right=["value"]))
    if mv.gates:
        console.print(_table("gates", ["", "metric", "rule", "value", "threshold", "message"],
                             [["PASS" if g["passed"] else "FAIL", g["metric"],
                               g["rule"] + (f" by {g['by']}" if g.get("by") else ""),
                               _fmt(g["value"]), _fmt(g["threshold"]), g["message"]]
                              for g in mv.gates], right=["value", "threshold"]))
    if mv.params:
        console.print(_table("params", ["key", "value"],
                             [[k, json.dumps(v, default=str)]
                              for k, v in flatten(mv.params).items()]))
    schema = mv.input_schema or {}
    cols = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    if cols:
        console.print(_table("input schema", ["column", "type", "role"],
                             [[c, (s or {}).get("type", "") if isinstance(s, dict) else "",
                               "target" if c == mv.target else "feature"]
                              for c, s in cols.items()]))
    lock = lin.get("dvc_lock") or {}
    rows = [[stage, kind, path, md5] for stage, entry in (lock.get("stages") or {}).items()
            for kind in ("deps", "outs") for path, md5 in (entry.get(kind) or {}).items()]
    if rows:
        console.print(_table("inputs (dvc.lock)", ["stage", "kind", "path", "md5"], rows))
    elif "dvc_lock" in lin:
        console.print("inputs (dvc.lock): none recorded")
    if git.get("dirty_paths"):
        console.print("dirty paths: " + ", ".join(git["dirty_paths"]))


def cmd_show(args: argparse.Namespace) -> int:
    ref = args.ref
    if "@" not in ref and "/" not in ref.removeprefix("models:/"):
        ref = f"{ref}/latest"
    parsed = parse_uri(ref)  # a usage error before looking for the registry
    with open_registry(args.registry, create=False) as reg:
        mv = reg.resolve(parsed)
        if args.json:
            _print_json(mv.to_dict())
        else:
            _show_text(mv)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    ra, rb = _ref(args.name, args.a), _ref(args.name, args.b)
    with open_registry(args.registry, create=False) as reg:
        a, b = reg.resolve(ra), reg.resolve(rb)
    diff = compare(a, b)
    if args.json:
        _print_json(diff)
        return 0
    console = _console()
    va, vb = f"v{a.version}", f"v{b.version}"
    console.print(f"{a.name}: {va} ({a.status}{', ' + ','.join(a.aliases) if a.aliases else ''})"
                  f" vs {vb} ({b.status}{', ' + ','.join(b.aliases) if b.aliases else ''})")
    if diff["params"]:
        console.print(_table("params that differ", ["key", va, vb],
                             [[d["key"], json.dumps(d["a"], default=str),
                               json.dumps(d["b"], default=str)] for d in diff["params"]]))
    else:
        console.print("params: identical")
    console.print(_table("metrics", ["metric", va, vb, "delta"],
                         [[m["metric"], _fmt(m["a"]), _fmt(m["b"]), _delta(m["delta"])]
                          for m in diff["metrics"]], right=[va, vb, "delta"]))

    def cell(v: dict[str, Any] | None) -> str:
        if v is None:
            return "-"
        return f"{'PASS' if v['passed'] else 'FAIL'} {_fmt(v['value'])}"

    if diff["gates"]:
        console.print(_table("gates", ["metric", "rule", va, vb],
                             [[g["metric"], g["rule"] + (f" by {g['by']}" if g.get("by")
                                                         else ""), cell(g["a"]), cell(g["b"])]
                              for g in diff["gates"]]))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from framework.registry.store import Condition

    where = [Condition.parse(text) for text in args.where]
    order_by = args.order_by or (where[0].key if where else None)
    with open_registry(args.registry, create=False) as reg:
        found = reg.search(args.name, where, status=args.status, archived=args.all,
                           order_by=order_by, descending=not args.ascending, limit=args.limit)
    if args.json:
        _print_json({"where": [str(c) for c in where], "order_by": order_by,
                     "versions": [{"name": mv.name, "version": mv.version, "uri": mv.uri,
                                   "aliases": list(mv.aliases), "state": mv.state,
                                   "metrics": mv.metrics, "created_at": mv.created_at,
                                   "sha256": mv.sha256} for mv in found]})
        return 0
    what = " and ".join(str(c) for c in where) or "every version"
    if not found:
        print(f"no version meets {what}")
        return 0
    metrics = list(dict.fromkeys([*(c.key for c in where), *([order_by] if order_by else []),
                                  *_key_metrics(found)]))[:6]
    rows = [[mv.name, mv.version, ",".join(mv.aliases), mv.state,
             *(_fmt(mv.metrics.get(m)) for m in metrics), _time(mv.created_at)] for mv in found]
    _console().print(_table(f"{len(found)} version(s): {what}",
                            ["model", "version", "aliases", "status", *metrics, "created (UTC)"],
                            rows, right=["version", *metrics]))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with open_registry(args.registry, create=False) as reg:
        moves = reg.history(args.name)
    if args.json:
        _print_json([m.to_dict() for m in moves])
        return 0
    if not moves:
        print(f"{args.name}: no alias moves yet")
        return 0

    def v(x: int | None) -> str:
        return "-" if x is None else f"v{x}"

    _console().print(_table(f"{args.name}: alias history", ["time (UTC)", "alias", "from", "to",
                                                              "actor", "reason"],
                            [[_time(m.time), m.alias, v(m.from_version), v(m.to_version),
                              m.actor, m.reason] for m in moves]))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    with open_registry(args.registry, create=False) as reg:
        mv = reg.get(args.name, args.version)
        move = reg.set_alias(args.name, args.version, args.alias, reason=args.reason)
    if args.json:
        _print_json({"moved": move is not None, "move": move.to_dict() if move else None,
                     "status": mv.status})
        return 0
    if move is None:
        print(f"{args.name}@{args.alias} is already v{args.version}; nothing moved")
        return 0
    frm = "nothing" if move.from_version is None else f"v{move.from_version}"
    print(f"{args.name}@{args.alias}: {frm} -> v{move.to_version} (by {move.actor})")
    if mv.status == "rejected":
        print(f"note: v{mv.version} failed its gates when registered: {'; '.join(mv.reasons)}",
              file=sys.stderr)
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    with open_registry(args.registry, create=False) as reg:
        reg.archive(args.name, args.versions, restore=args.restore)
    shown = ", ".join(f"v{v}" for v in args.versions)
    if args.json:
        _print_json({"model": args.name, "versions": args.versions,
                     "archived": not args.restore})
    else:
        print(f"{args.name} {shown}: {'restored' if args.restore else 'archived'}"
              + ("" if args.restore else " (python -m framework registry gc removes their "
                                         "artifacts)"))
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    with open_registry(args.registry, create=False) as reg:
        removed = reg.gc(dry_run=args.dry_run)
    freed = sum(size for _, size in removed)
    if args.json:
        _print_json({"dry_run": args.dry_run, "freed_bytes": freed, "versions": [
            {"model": mv.name, "version": mv.version, "sha256": mv.sha256, "freed_bytes": size}
            for mv, size in removed]})
        return 0
    if not removed:
        print("nothing to remove: no archived version holds an artifact")
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for mv, size in removed:
        note = f"{size} bytes" if size else "artifact shared with a kept version: kept"
        print(f"  {mv.name} v{mv.version}  {note}")
    print(f"{verb} {len(removed)} archived version(s), {freed} bytes freed")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from framework.registry.core import Registry, _dvc_remote_name, migrate
    from framework.registry.postgres import redact

    with open_registry(args.registry, create=False) as source:
        with open_registry(args.to) as target:
            if args.artifacts:
                remote = _dvc_remote_name(args.artifacts, Path("."))
                target = Registry(target.root, target.store, remote=remote,
                                  artifact_root=target.root if remote else args.artifacts)
            done = migrate(source, target)
            where = redact(args.to)
            if args.json:
                _print_json({"to": where, "rows": done.rows, "artifacts": done.artifacts,
                             "artifact_bytes": done.artifact_bytes,
                             "artifact_folder": str(target.artifact_root),
                             "artifact_store": target.artifacts.where})
                return 0
            counts = ", ".join(f"{n} {t.replace('_', ' ')}" for t, n in done.rows.items())
            print(f"migrated to {where}: {counts}; {done.artifacts} artifact(s), "
                  f"{done.artifact_bytes} bytes, into {target.artifacts.where}")
            print("the two registries hold the same rows. Point the project at it: registry.url "
                  "in conf/config.yaml (or $FRAMEWORK_REGISTRY_URL), and registry.artifacts")
    return 0


COMMANDS = {"list": cmd_list, "show": cmd_show, "search": cmd_search, "compare": cmd_compare,
            "history": cmd_history, "promote": cmd_promote, "archive": cmd_archive,
            "gc": cmd_gc, "migrate": cmd_migrate}


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # e.g. piped into head
        return 0
