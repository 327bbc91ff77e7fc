"""``python -m framework init``: scaffold a project (conf/, stage functions, schemas) to start from.

The template is a complete, working pipeline on a dataset that ships with scikit-learn, written
only in the project's own files: ``conf/``, ``pipelines/``, ``schemas/``. Nothing in ``framework/``
needs to change for a new dataset or task.
"""

from __future__ import annotations

import argparse
import subprocess
from importlib import resources
from pathlib import Path

from framework.errors import RunError, UsageError

#: Each template: a complete project on a dataset that ships with scikit-learn.
TEMPLATES = {
    "regression": "diabetes progression, ridge or random forest, rmse and r2 (the default)",
    "classification": "wine cultivars (3 classes), logistic regression or random forest, "
                      "accuracy and macro f1",
}
GITIGNORE_LINES = ("# Hydra run folders", "outputs/", "multirun/",
                   "# the framework's local state (caches, sweep records, registry)", ".framework/",
                   "# the registry step's receipt names a version of the local registry",
                   "metrics/register.json", "dvc_plots/",
                   "# packages `python -m framework package` builds (the package store keeps them)",
                   "dist/")


def scaffold(root: Path, template: str = "regression") -> list[str]:
    """Copy a template into ``root`` (which must not hold a project yet); return the files written."""
    if template not in TEMPLATES:
        from framework.errors import did_you_mean

        hint = did_you_mean(template, TEMPLATES)
        raise UsageError(f"unknown template '{template}'" + (f"; {hint}" if hint else "")
                         + f" (templates: {', '.join(TEMPLATES)})")
    source = resources.files("framework") / "templates" / template
    files = sorted(_walk(source))
    clashes = [rel for rel, _ in files if (root / rel).exists()]
    if clashes:
        raise UsageError(f"{root} already holds {', '.join(clashes[:5])}"
                         f"{' ...' if len(clashes) > 5 else ''}; init only writes into a folder "
                         "without a project, and never overwrites")
    written = []
    for rel, item in files:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.read_bytes())
        written.append(rel)
    _append_gitignore(root / ".gitignore")
    return written


def _walk(node, prefix: str = ""):  # type: ignore[no-untyped-def]
    for item in node.iterdir():
        if item.name == "__pycache__":
            continue
        rel = f"{prefix}{item.name}"
        if item.is_dir():
            yield from _walk(item, rel + "/")
        else:
            yield rel, item


def _append_gitignore(path: Path) -> None:
    present = path.read_text().splitlines() if path.exists() else []
    missing = [line for line in GITIGNORE_LINES if line not in present]
    if missing:
        with open(path, "a") as fh:
            if present and present[-1].strip():
                fh.write("\n")
            fh.write("\n".join(missing) + "\n")


def ensure_git_and_dvc(root: Path) -> list[str]:
    """``git init`` and ``dvc init`` where they are missing; returns what was done."""
    from framework import dvc

    done = []
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=root,
                            capture_output=True, text=True)
    if inside.returncode != 0:
        proc = subprocess.run(["git", "init", "-q"], cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RunError(f"git init failed: {proc.stderr.strip()}")
        done.append("git init")
    if not (root / ".dvc").is_dir():
        dvc.run(root, "init", "-q")
        done.append("dvc init")
    return done


def main(argv: list[str]) -> int:
    listing = "\n".join(f"  {name:<16}{about}" for name, about in TEMPLATES.items())
    parser = argparse.ArgumentParser(
        prog="python -m framework init",
        description="Scaffold a working pipeline project (conf/, pipelines/, schemas/) in a "
                    "folder: every verb of the README's tour works in it (runs, sweeps, "
                    "serving, schemas).",
        epilog=f"templates:\n{listing}", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", default=".", help="project folder (default: here)")
    parser.add_argument("--template", default="regression", metavar="NAME",
                        help=f"one of {', '.join(TEMPLATES)} (default: regression)")
    args = parser.parse_args(argv)
    root = Path(args.path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    written = scaffold(root, args.template)
    done = ensure_git_and_dvc(root)

    from framework.commands import compile_project
    from framework.compiler import write

    write(compile_project(root, []), root)
    for step in done:
        print(f"ran {step}")
    print(f"wrote {len(written)} files ({', '.join(sorted({w.split('/')[0] for w in written}))}), "
          "dvc.yaml and params.yaml")
    where = "" if root == Path.cwd().resolve() else f"cd {args.path} && "
    print(f"next: {where}python -m framework")
    return 0
