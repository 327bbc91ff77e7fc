"""What a package's ``<name>-serve`` command runs: no registry, no checkout, no project.

At start-up every file of the package folder is hashed and compared with ``MANIFEST.sha256``;
a changed, missing or unexpected file stops the server before the model is read (exit 1, the
file named). The model is then loaded by the same exact allowlist as the registry's
(:func:`framework.io.load_model`), with the ``trusted_types`` recorded when it was packaged
plus any ``--trust``, and served by the same app as ``python -m framework serve``: the same
protocol, request bounds, timeouts and metrics. The version is fixed (a package is one
version); the prediction log is off unless ``--log-dir`` names a folder for it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.deploy.build import (LOCK_FILE, MANIFEST, META_FILE, MODEL_FILE, PROFILE_FILE,
                                    PackageError)
from framework.errors import FrameworkError, UsageError


@dataclass
class Package:
    """An installed (or unpacked) package, checked and loaded."""

    folder: Path
    meta: dict[str, Any]
    estimator: Any
    loaded: Any


def check_manifest(folder: Path) -> dict[str, str]:
    """``{file: sha256}`` of the package after checking every file against the manifest."""
    path = folder / MANIFEST
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise PackageError(f"{folder}: no readable {MANIFEST} ({exc.strerror or exc}); the "
                           "package is incomplete") from None
    expected: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or "/" in name or name in ("", ".", ".."):
            raise PackageError(f"{path}:{n}: not a manifest line: {line[:80]!r}")
        expected[name] = digest
    present = {p.name for p in folder.iterdir() if p.name not in ("__pycache__", MANIFEST)}
    unexpected = sorted(present - set(expected))
    if unexpected:
        raise PackageError(f"{folder}: files the package does not list: "
                           f"{', '.join(unexpected[:5])}; refusing to start")
    for name, digest in sorted(expected.items()):
        try:
            with open(folder / name, "rb") as f:
                actual = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError as exc:
            raise PackageError(f"{folder / name}: {exc.strerror or exc}; the package is "
                               "incomplete") from None
        if actual != digest:
            raise PackageError(f"{folder / name} was changed after packaging (sha256 "
                               f"{actual[:12]}, the manifest says {digest[:12]}); refusing to "
                               "start")
    return expected


def open_package(folder: str | os.PathLike[str], *, trusted: tuple[str, ...] = (),
                 numpy_mode: bool = True) -> Package:
    """The package in ``folder``, every file checked, the model loaded and ready to serve."""
    from framework import io
    from framework.registry.store import ModelVersion
    from framework.serve.model import quiet_feature_name_warning, ready

    folder = Path(folder)
    digests = check_manifest(folder)
    meta = json.loads((folder / META_FILE).read_text())
    if digests.get(MODEL_FILE) != meta.get("sha256"):
        raise PackageError(f"{folder / MODEL_FILE}: its sha256 is not the registered version's "
                           f"({str(meta.get('sha256'))[:12]}); refusing to start")
    extra = (meta.get("package") or {}).get("trusted_types") or []
    estimator = io.load_model(folder / MODEL_FILE, trusted=(*extra, *trusted))
    fields = {k: v for k, v in meta.items() if k in ModelVersion.__dataclass_fields__}
    fields["aliases"] = ()
    fields["artifact_path"] = str(folder / MODEL_FILE)
    mv = ModelVersion(**fields)
    profile = None
    if (folder / PROFILE_FILE).is_file():
        from framework.monitor.profile import Profile

        profile = Profile.from_bytes((folder / PROFILE_FILE).read_bytes())
    quiet_feature_name_warning()
    return Package(folder, meta, estimator, ready(mv, estimator, alias=None,
                                                  numpy_mode=numpy_mode, profile=profile))


class PackagedModel:
    """The one version a package serves, with the attributes the app reads of a served model."""

    follows = False
    poll_interval = 0.0
    alias = None
    last_error = None

    def __init__(self, package: Package) -> None:
        from framework.serve.openapi import openapi_spec

        self.package = package
        self.current = package.loaded
        self.ref = f"package:{(package.meta.get('package') or {}).get('distribution')}"
        self.openapi = openapi_spec(self.current)


def build_parser(folder: Path) -> argparse.ArgumentParser:
    from framework.serve.cli import add_limit_flags
    from framework.serve.limits import DEFAULT_HOST

    try:
        meta = json.loads((folder / META_FILE).read_text())
        script = meta["package"]["script"]
        title = f"{meta['name']} v{meta['version']}"
    except (OSError, ValueError, KeyError, TypeError):
        script, title = "serve", "the packaged model"

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:
            raise UsageError(f"{script}: {message}\n{self.format_usage().rstrip()}")

    p = Parser(prog=script, description=f"Serve {title} over REST (MLflow scoring protocol).")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default "
                   f"{DEFAULT_HOST}; 0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks one)")
    add_limit_flags(p)
    p.add_argument("--trust", action="append", default=[], metavar="MODULE.NAME",
                   help="a class or function the model file may name beyond the allowlist and "
                        "the trusted_types recorded in the package (repeatable, exact names)")
    p.add_argument("--log-dir", default=None, metavar="DIR",
                   help="write the prediction log under DIR (default: no log)")
    p.add_argument("--log-predictions", default="all", metavar="all|SHARE",
                   help="with --log-dir: the share of requests to log (default all)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"], help="default info")
    p.add_argument("--print-lock", action="store_true",
                   help=f"print the package's {LOCK_FILE} and exit")
    return p


def main(folder: str | os.PathLike[str], argv: list[str] | None = None) -> int:
    folder = Path(folder)
    try:
        return _main(folder, sys.argv[1:] if argv is None else list(argv))
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        return 130


def _main(folder: Path, argv: list[str]) -> int:
    from framework import trust
    from framework.serve import cli
    from framework.serve.predlog import PredictionLog, parse_sampling
    from framework.serve.startup import startup_gc

    parser = build_parser(folder)
    args = parser.parse_args(argv)
    if args.print_lock:
        check_manifest(folder)
        sys.stdout.write((folder / LOCK_FILE).read_text())
        return 0
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, found {args.port}")
    limits = args.limits = cli.limits_of(args)
    try:
        extra = trust.check_trusted_names(args.trust, where="--trust")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        sample = parse_sampling(args.log_predictions) if args.log_dir else 0.0
    except ValueError as exc:
        raise UsageError(f"--log-predictions: {exc}") from None
    cli._configure_logging(args.log_level, args.access_log)
    with startup_gc():
        package = open_package(folder, trusted=extra)
        sock = cli.bind(args.host, args.port, prog=parser.prog)
        try:
            from framework.serve.app import build_app

            predlog = PredictionLog(args.log_dir or ".", sample=sample)
            if predlog.enabled:
                predlog.check_writable()
            app = build_app(PackagedModel(package), predlog, limits=limits)
        except BaseException:
            sock.close()
            raise
    return cli.run_app(app, args, sock)
