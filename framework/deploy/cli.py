"""``python -m framework package ...``.

    package NAME@ALIAS|NAME/VERSION -o DIR [--wheelhouse DIR]   build the wheel and build context
    package verify PACKAGE [--wheelhouse DIR] [--keep]          install fresh, replay, compare
    package push FILE... [--store S]                            put a package in the store
    package list [NAME] [--store S] [--json]                    what the store holds
    package pull NAME[@VERSION] [-o DIR] [--store S]            get one back, sha256-checked
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from framework.errors import UsageError, UsageParser

SUBVERBS = ("verify", "push", "list", "pull")


def _say(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def main(argv: list[str]) -> int:
    if argv and argv[0] in SUBVERBS:
        return {"verify": verify_main, "push": push_main, "list": list_main,
                "pull": pull_main}[argv[0]](argv[1:])
    return build_main(argv)


def build_main(argv: list[str]) -> int:
    p = UsageParser(prog="python -m framework package",
                    description="Package a registered version as a wheel with a <name>-serve "
                                "command, and a container build context beside it. Subcommands: "
                                "verify, push, list, pull (each takes --help).")
    p.add_argument("model", help="NAME@ALIAS or NAME/VERSION")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="where to write")
    p.add_argument("--registry", default=None, help="registry folder or URL")
    p.add_argument("--wheelhouse", default=None, metavar="DIR",
                   help="wheels of the locked distributions (default DIR/wheelhouse); those "
                        "missing are downloaded by pip")
    p.add_argument("--trust", action="append", default=None, metavar="MODULE.NAME",
                   help="names the model file may hold beyond the allowlist (default: the "
                        "project's trusted_types); recorded in the package")
    p.add_argument("--intended-use", default=None, metavar="TEXT",
                   help="the model card's intended use (default: package.intended_use of "
                        "params.yaml, or a generic statement)")
    args = p.parse_args(argv)
    from framework.deploy.build import package
    from framework.deploy.store import _configured_key

    trusted = None
    if args.trust is not None:
        from framework import trust
        from framework.io import project_trusted

        try:
            trusted = (*project_trusted(), *trust.check_trusted_names(args.trust,
                                                                      where="--trust"))
        except ValueError as exc:
            raise UsageError(f"package: {exc}") from None
    use = args.intended_use or _configured_key(Path("."), "intended_use")
    built = package(args.model, args.output, registry=args.registry,
                    wheelhouse=args.wheelhouse, trusted=trusted, intended_use=use,
                    progress=_say)
    from framework.console import Out, table

    rows = [(built.wheel.name, _size(built.wheel.stat().st_size), "pip install it"),
            (built.context.name, _size(built.context.stat().st_size),
             f"docker build - < {built.context.name}"),
            (built.runtime.name, _size(built.runtime.stat().st_size), "the serving runtime")]
    print(f"packaged in {built.seconds:.1f} s, {len(built.locked) + 2} locked distributions")
    Out().print(table(None, ["file", "size", "use"], rows, right=["size"]))
    print(f"verify it with: python -m framework package verify {built.context}")
    return 0


def verify_main(argv: list[str]) -> int:
    p = UsageParser(prog="python -m framework package verify",
                    description="Install a package offline in a fresh virtual environment, "
                                "start its server, replay its input example and compare with "
                                "the predictions recorded at registration (exit 0 or 1).")
    p.add_argument("package", help="the build context (.tar.gz or folder) or the wheel")
    p.add_argument("--wheelhouse", default=None, metavar="DIR",
                   help="for a wheel: the locked wheels (default: wheelhouse/ beside it)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest difference allowed in a probability (default 1e-9)")
    p.add_argument("--keep", action="store_true", help="keep the environment (for a look)")
    args = p.parse_args(argv)
    from framework.deploy.verify import DEFAULT_TOLERANCE, verify

    verdict = verify(args.package, wheelhouse=args.wheelhouse, keep=args.keep,
                     tolerance=DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance,
                     say=_say)
    from framework.console import Out, table

    rows = [(m, "ok" if ok else "DIFFERS", text) for m, ok, text in verdict.checks]
    print(f"{verdict.name} v{verdict.version}: installed offline in "
          f"{verdict.install_seconds:.1f} s ({_size(verdict.venv_bytes)}), server ready in "
          f"{verdict.start_seconds:.1f} s")
    Out().print(table(None, ["method", "result", "detail"], rows))
    if verdict.ok:
        print("the package answers as the registered version did")
        return 0
    print("the package does NOT answer as the registered version did", file=sys.stderr)
    return 1


def _store_arg(p: Any) -> None:
    p.add_argument("--store", default=None, help="a folder or a DVC remote (default: "
                   "$FRAMEWORK_PACKAGE_STORE, package.store of params.yaml, "
                   ".framework/packages)")


def push_main(argv: list[str]) -> int:
    p = UsageParser(prog="python -m framework package push",
                    description="Put a package's files (its wheel, its build context) in the "
                                "package store.")
    p.add_argument("files", nargs="+", type=Path)
    _store_arg(p)
    args = p.parse_args(argv)
    from framework.deploy.store import PackageStore

    for path in args.files:
        if not path.is_file():
            raise UsageError(f"package push: {path} does not exist")
    store = PackageStore.open(args.store)
    entry, uploaded = store.push(args.files)
    done = f"uploaded {', '.join(uploaded)}" if uploaded else "already there, nothing uploaded"
    print(f"{entry.name} v{entry.version} in the package store ({store.where}): {done}")
    return 0


def list_main(argv: list[str]) -> int:
    p = UsageParser(prog="python -m framework package list",
                    description="The packages in the store.")
    p.add_argument("name", nargs="?", default=None)
    _store_arg(p)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from framework.deploy.store import PackageStore

    store = PackageStore.open(args.store)
    entries = store.list(args.name)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return 0
    if not entries:
        print(f"no packages in the store ({store.where})")
        return 0
    from framework.console import Out, table

    rows = [(e.name, e.version, ", ".join(sorted(e.files)), _size(e.size), e.model_sha256[:12],
             e.pushed_at) for e in entries]
    Out().print(table(f"packages ({store.where})",
                      ["model", "version", "files", "size", "model sha256", "pushed"], rows,
                      right=["version", "size"]))
    return 0


def pull_main(argv: list[str]) -> int:
    p = UsageParser(prog="python -m framework package pull",
                    description="Download a package from the store, every file sha256-checked.")
    p.add_argument("ref", help="NAME@VERSION, NAME/VERSION, or NAME (the newest stored)")
    p.add_argument("-o", "--output", default="dist", metavar="DIR", help="default dist/")
    _store_arg(p)
    args = p.parse_args(argv)
    from framework.deploy.store import PackageStore
    from framework.registry.core import check_name

    name, sep, version = args.ref.replace("/", "@", 1).partition("@")
    if sep and not version.isdigit():
        raise UsageError(f"package pull: {args.ref!r}: the version is a number "
                         "(NAME@3 or NAME/3)")
    check_name(name)
    store = PackageStore.open(args.store)
    entry, written = store.pull(name, int(version) if sep else None, Path(args.output))
    for path in written:
        print(f"{path}  (sha256 checked)")
    print(f"{entry.name} v{entry.version} from the package store ({store.where})")
    return 0
