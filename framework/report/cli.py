"""``python -m framework report`` and ``python -m framework ui``: versions and sweeps in pictures.

::

    report                         report.html: every model of the registry and the latest sweep
    report NAME                    that model's versions, alias history and monitor runs
    report NAME 3 7 12             those versions side by side
    report --sweep latest|ID       one sweep's trials
    ui [--host 127.0.0.1] [--port 8090]   the same pages, live from the registry

An unknown model, version or sweep is exit 2 with a did-you-mean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framework.errors import UsageError, UsageParser

PROG = "python -m framework report"



def build_parser() -> argparse.ArgumentParser:
    p = UsageParser(prog=PROG, description="Write one self-contained HTML file (no network, opens "
                "from disk) of the registry's versions, a comparison of versions, or a sweep.")
    p.add_argument("name", nargs="?", metavar="NAME", help="a model (default: every model and "
                   "the latest sweep)")
    p.add_argument("versions", nargs="*", metavar="VERSION", help="versions to compare (two or "
                   "more, the first is the baseline of the deltas)")
    p.add_argument("--sweep", metavar="ID", help="a sweep's trials ('latest' or an id prefix)")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE")
    p.add_argument("--registry", default=None, metavar="PATH",
                   help="registry folder (default: registry.path in params.yaml)")
    return p


def parse_versions(values: list[str], what: str = "VERSION") -> list[int]:
    out = []
    for v in values:
        text = v.strip().lstrip("v")
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"{what} must be version numbers (3, or v3), found {v!r}")
        if int(text) not in out:
            out.append(int(text))
    return out


def render(args: argparse.Namespace) -> str:
    from framework.registry import open_registry
    from framework.report import pages
    from framework.sweep.store import open_sweep

    links = pages.Links()
    if args.sweep:
        if args.name:
            raise UsageError(f"{PROG}: --sweep shows a sweep; leave out NAME")
        store = open_sweep(Path.cwd(), None if args.sweep == "latest" else args.sweep)
        return pages.sweep_page(store, links).render()
    with open_registry(args.registry, create=False) as reg:
        if args.name is None:
            try:
                store = open_sweep(Path.cwd())
            except UsageError:
                store = None
            return pages.index_page(reg, store, links).render()
        reg.versions(args.name)  # an unknown model: exit 2 with a did-you-mean
        numbers = parse_versions(args.versions)
        if not numbers:
            return pages.model_page(reg, args.name, links).render()
        if len(numbers) == 1:
            raise UsageError(f"{PROG}: compare two or more versions (one given: {numbers[0]})")
        return pages.compare_page(reg, args.name, numbers, links).render()


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    text = render(args)
    from framework.report.vega import write

    write(args.output, text)
    print(f"wrote {args.output} ({len(text.encode()) / 1024:.0f} KiB): open it in a browser")
    return 0


def ui_main(argv: list[str]) -> int:
    p = UsageParser(prog="python -m framework ui", description=(
        "Serve the report's pages live from the registry: /, /models/NAME, "
        "/models/NAME/compare?v=3,7, /sweeps/ID. Read-only, and without any login: it binds "
        "to 127.0.0.1 by default and must not be exposed beyond this machine."))
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; anything else exposes the "
                        "registry, without a login, to whoever can reach it)")
    p.add_argument("--port", type=int, default=8090, help="port (0: any free one)")
    p.add_argument("--registry", default=None, metavar="PATH")
    args = p.parse_args(argv)
    from framework.registry import registry_path
    from framework.registry.core import registry_url
    from framework.report.ui import serve

    root = registry_path(args.registry)
    if registry_url(args.registry) is None and not (root / "registry.db").exists() and \
            not root.is_dir():
        raise UsageError(f"no registry at {root}: run the pipeline first "
                         "(`python -m framework`), or pass --registry")
    serve(root, Path.cwd(), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
