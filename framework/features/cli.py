"""``python -m framework features ...``: what the feature store holds.

    features list [NAME] [--json]              feature sets, versions, rows, columns
    features show NAME[@VERSION] [--json]      columns with their types and stats, lineage
    features diff NAME OLD NEW [--json]        schema changes and per-column distribution shifts
"""

from __future__ import annotations

import json
from typing import Any

from framework.errors import UsageParser

SUBVERBS = ("list", "show", "diff")


def _registry_arg(p: Any) -> None:
    p.add_argument("--registry", default=None, metavar="PATH|URL",
                   help="the registry whose catalog to read (default: the project's)")


def main(argv: list[str]) -> int:
    p = UsageParser(prog="python -m framework features",
                    description="The feature store: feature sets published by pipelines "
                                "(outs.NAME.publish) and read by name (ins.NAME.feature_set).")
    p.add_argument("subverb", choices=SUBVERBS)
    if not argv or argv[0] not in SUBVERBS:
        p.parse_args(argv[:1] or ["--help"])  # exits 2 naming the choices (0 for --help)
    verb = argv[0]
    return {"list": list_main, "show": show_main, "diff": diff_main}[verb](argv[1:])


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def list_main(argv: list[str]) -> int:
    p = UsageParser(prog="python -m framework features list",
                    description="Feature sets and their versions.")
    p.add_argument("name", nargs="?", default=None)
    _registry_arg(p)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from framework.features.catalog import check_name, open_catalog

    if args.name:
        check_name(args.name)
    with open_catalog(args.registry) as cat:
        versions = cat.versions(args.name)
        where = cat.where
    if args.json:
        print(json.dumps([{k: v for k, v in fv.to_dict().items() if k != "profile"}
                          for fv in versions], indent=2))
        return 0
    if not versions:
        print(f"no feature sets in the registry at {where}" if not args.name else
              f"feature set {args.name!r} has no version in the registry at {where}")
        return 0
    from framework.console import Out, table

    latest = {fv.name: fv.version for fv in versions}
    rows = [(fv.name, str(fv.version) + (" (latest)" if latest[fv.name] == fv.version else ""),
             f"{fv.rows:,}", str(len(fv.columns)), fv.entity or "", fv.timestamp or "",
             fv.sha256[:12], fv.lineage.get("stage", ""), fv.created_at[:19].replace("T", " "))
            for fv in versions]
    Out().print(table(f"feature sets ({where})",
                      ["feature set", "version", "rows", "columns", "entity", "timestamp",
                       "sha256", "stage", "published"], rows,
                      right=["rows", "columns"]))
    return 0


def show_main(argv: list[str]) -> int:
    p = UsageParser(prog="python -m framework features show",
                    description="One version: its columns, their stats, and its lineage.")
    p.add_argument("ref", help="NAME, NAME@latest, NAME@7 or NAME@sha256:HEX")
    _registry_arg(p)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from framework.features.catalog import open_catalog, parse_ref

    ref = parse_ref(args.ref)
    with open_catalog(args.registry) as cat:
        fv = cat.resolve(ref)
    if args.json:
        print(json.dumps(fv.to_dict(), indent=2))
        return 0
    from framework.console import Out, table

    out = Out()
    git = fv.lineage.get("git") or {}
    out.print(f"{fv.ref}: {fv.rows:,} rows, {len(fv.columns)} columns, sha256 {fv.sha256}")
    out.print(f"  entity {fv.entity or '-'}, timestamp {fv.timestamp or '-'}, published "
              f"{fv.created_at}")
    out.print(f"  from stage {fv.lineage.get('stage', '?')} ({fv.lineage.get('run', '?')}) at "
              f"commit {(git.get('commit') or 'unknown')[:12]}"
              + (" (uncommitted changes)" if git.get("dirty") else ""))
    for key, value in sorted((fv.lineage.get("params") or {}).items()):
        text = json.dumps(value, default=str)
        out.print(f"  param {key}: {text if len(text) <= 200 else text[:197] + '...'}")
    rows = []
    for name, schema in fv.columns.items():
        prof = fv.profile.get(name, {})
        types = schema.get("type") if isinstance(schema, dict) else None
        kind = "/".join(types) if isinstance(types, list) else str(types or "")
        if prof.get("kind") == "category":
            top = ", ".join(list(prof.get("top", {}))[:3])
            stats = (f"{prof.get('distinct', 0):,} distinct", top, "", "")
        elif prof.get("kind") == "datetime":
            stats = ("", "", _fmt(prof.get("min")), _fmt(prof.get("max")))
        else:
            stats = (_fmt(prof.get("mean")), _fmt(prof.get("std")), _fmt(prof.get("min")),
                     _fmt(prof.get("max")))
        rows.append((name, kind, f"{prof.get('nulls', 0):,}", *stats))
    out.print(table(f"columns of {fv.ref}", ["column", "type", "empty", "mean / distinct",
                                               "std / top", "min", "max"], rows,
                    right=["empty", "mean / distinct", "std / top", "min", "max"]))
    return 0


def diff_main(argv: list[str]) -> int:
    p = UsageParser(prog="python -m framework features diff",
                    description="What changed between two versions of a feature set: columns "
                                "added, removed or retyped, and the shift of each column's "
                                "distribution (normalised Wasserstein for numbers, Jensen-"
                                "Shannon for categories; drifted above 0.1).")
    p.add_argument("name")
    p.add_argument("old", help="a version: 6, latest or sha256:HEX")
    p.add_argument("new", help="a version: 7, latest or sha256:HEX")
    _registry_arg(p)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from framework.features.catalog import open_catalog, parse_ref
    from framework.features.profile import shift

    with open_catalog(args.registry) as cat:
        old = cat.resolve(parse_ref(f"{args.name}@{args.old}"))
        new = cat.resolve(parse_ref(f"{args.name}@{args.new}"))
    changes = schema_changes(old.columns, new.columns)
    shifts = shift(old.profile, new.profile)
    if args.json:
        print(json.dumps({"old": old.ref, "new": new.ref, "rows": [old.rows, new.rows],
                          "schema": changes, "shift": shifts}, indent=2))
        return 0
    from framework.console import Out, table

    out = Out()
    out.print(f"{old.ref} -> {new.ref}: {old.rows:,} -> {new.rows:,} rows")
    if changes:
        out.print(table("schema changes", ["column", "change", old.ref, new.ref],
                        [(c["column"], c["change"], c["old"] or "", c["new"] or "")
                         for c in changes]))
    else:
        out.print("  same columns and types")
    rows = [(name, s["method"], _fmt(s["distance"]),
             "" if s["drifted"] is None else ("drifted" if s["drifted"] else "ok"))
            for name, s in sorted(shifts.items(), key=lambda kv: -(kv[1]["distance"] or 0))]
    if rows:
        out.print(table("distribution shift", ["column", "method", "distance", ""], rows,
                        right=["distance"]))
    return 0


def _type_text(schema: Any) -> str | None:
    if not isinstance(schema, dict):
        return None
    t = schema.get("type")
    return "/".join(t) if isinstance(t, list) else (str(t) if t is not None else "any")


def schema_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns added, removed or retyped between two versions' schemas."""
    changes = []
    for column in old:
        if column not in new:
            changes.append({"column": column, "change": "removed",
                            "old": _type_text(old[column]), "new": None})
        elif _type_text(old[column]) != _type_text(new[column]):
            changes.append({"column": column, "change": "retyped",
                            "old": _type_text(old[column]), "new": _type_text(new[column])})
    for column in new:
        if column not in old:
            changes.append({"column": column, "change": "added", "old": None,
                            "new": _type_text(new[column])})
    return changes
