"""The core verbs: ``compile`` and ``status``. Printing and exit codes live here, not in the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framework.compiler import Compiled, compile_spec, stale_files, write
from framework.config import compose
from framework.spec import build_spec


def compile_project(root: Path, overrides: list[str]) -> Compiled:
    """Compose ``conf/`` with overrides, check it, and render the generated files."""
    data, source = compose(root, overrides)
    return compile_spec(build_spec(data, source))


def compile_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m framework compile",
        description="Compose conf/ and write dvc.yaml and params.yaml (deterministic, atomic).")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=random_forest")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and show the difference if the files on disk "
                             "are stale relative to conf/")
    args = parser.parse_args(argv)
    root = Path.cwd()
    compiled = compile_project(root, args.overrides)
    if args.check:
        stale = stale_files(compiled, root)
        if not stale:
            print("dvc.yaml and params.yaml are up to date with conf/")
            return 0
        for s in stale:
            if s.missing:
                print(f"{s.path}: missing (run `python -m framework compile`)", file=sys.stderr)
            else:
                sys.stderr.write(s.diff)
        dvc_yaml = root / "dvc.yaml"
        if dvc_yaml.is_file() and "dvc.yaml" in compiled.files:
            from framework.features.pins import moved_pins

            for line in moved_pins(dvc_yaml.read_text(), compiled.files["dvc.yaml"]):
                print(line, file=sys.stderr)
        print(f"stale: {', '.join(s.path for s in stale)}; run `python -m framework compile` "
              "and commit the result", file=sys.stderr)
        return 1
    changed = write(compiled, root)
    print(f"wrote {', '.join(changed)}" if changed else "dvc.yaml and params.yaml already up to date")
    return 0


def status_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m framework status",
        description="Which stages `dvc repro` would rerun, and whether dvc.yaml is stale.")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    from framework import dvc

    root = Path.cwd()
    stale = stale_files(compile_project(root, args.overrides), root)
    if stale:
        print(f"stale relative to conf/: {', '.join(s.path for s in stale)}")
    changed = dvc.status(root)
    if not changed:
        print("all stages up to date")
    for name, reasons in changed.items():
        print(f"{name}: {'; '.join(reasons)}")
    return 0
