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
    "predict": "framework.predict:main",
    "package": "framework.deploy.cli:main",
    "features": "framework.features.cli:main",
    "sweep": "framework.sweep.cli:main",
    "monitor": "framework.monitor.cli:main",
    "report": "framework.report.cli:main",
    "ui": "framework.report.cli:ui_main",
    "test": "framework.testing.cli:main",
}


USAGE = """\
usage: python -m framework [HYDRA OVERRIDES ...]    compose conf/, compile, dvc repro, register
       python -m framework +experiment=NAME         a sweep declared in conf/experiment/NAME.yaml
       python -m framework VERB ...

verbs:
  compile [--check]     write dvc.yaml and params.yaml from conf/ (--check: fail if stale)
  status                which stages dvc repro would rerun
  init [PATH]           scaffold a project: conf/, pipelines/, schemas/
  registry ...          list, show, compare, history, promote, archive, gc
  sweep ...             show, list, apply recorded sweeps
  serve MODEL           serve NAME@ALIAS or NAME/VERSION over REST (logs every prediction)
  predict MODEL IN -o OUT  score a Parquet or CSV file in chunks, checked against the schema
  package MODEL -o DIR  an installable wheel with a <name>-serve command; verify, push, list, pull
  features ...          the feature store: list, show, diff published feature sets
  monitor MODEL         drift, decay and fairness; exit 3 on an alarm; label, history
  report [NAME [V...]]  one offline HTML file: versions, comparisons, sweeps, in pictures
  ui                    the same pages live from the registry, on 127.0.0.1
  test                  generated checks of the pipeline: contracts, leakage, scaling, ranges
  schema ...            infer, check, describe table schemas
  stage, register       run one pipeline stage, the registry step (called by dvc repro)

Each verb takes --help. The Hydra application's own help follows.
"""


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


def _looks_like_a_verb(word: str) -> bool:
    """A bare word (no ``=``, no flag, no ``+``/``~``), as a verb is and an override is not."""
    return bool(word) and word.isidentifier()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in VERBS:
        if args[0] in ("stage", "register"):
            from framework.warmstage import delegate

            code = delegate(args)  # the warm process of `python -m framework`, when there is one
            if code is not None:
                return code
        return run_verb(args[0], args[1:])
    if args and _looks_like_a_verb(args[0]):
        from framework.errors import UsageError, did_you_mean

        hint = did_you_mean(args[0], VERBS)
        error = UsageError(f"unknown verb {args[0]!r}" + (f"; {hint}" if hint else "")
                           + f" (verbs: {', '.join(sorted(VERBS))}; Hydra overrides are "
                             "key=value)")
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    if args[:1] in (["--help"], ["-h"]):
        print(USAGE)
    from framework.app import run_app

    return run_app(args)
