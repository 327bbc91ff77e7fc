"""Command-line entry: ``python -m framework [VERB] ...``.

With no verb (or with Hydra overrides only) this is the Hydra application. A first word that names a
verb runs that verb instead. Verbs are imported lazily, so ``--help`` or ``compile --check`` do not
pay for scikit-learn, pandas or DVC. This is the only layer that prints and chooses exit codes.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from framework.errors import FrameworkError

# verb -> "module:function"; each function takes the remaining argv and returns an exit code.
VERBS: dict[str, str] = {
    "compile": "framework.commands:compile_main",
    "stage": "framework.stage:main",
    "init": "framework.scaffold:main",
    "status": "framework.commands:status_main",
    "schema": "framework.schema.cli:main",
    "registry": "framework.registry.cli:main",
    "register": "framework.registry.step:main",
    "serve": "framework.serve:main",
    "sweep": "framework.sweep.cli:main",
}


def _resolve(target: str) -> Callable[[list[str]], int]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def run_verb(verb: str, argv: list[str]) -> int:
    """Run one verb, turning framework errors into a message on stderr and an exit code."""
    try:
        return int(_resolve(VERBS[verb])(argv) or 0)
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in VERBS:
        return run_verb(args[0], args[1:])
    from framework.app import run_app

    return run_app(args)
