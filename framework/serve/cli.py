"""``python -m framework serve MODEL [--host H] [--port P] [--workers N] ...``.

Prints one line when the server is ready to answer (``serving NAME vN (alias) on http://H:P``)
and then logs quietly: model switches and errors on stderr, no access log unless ``--access-log``.
``--port 0`` picks a free port (the ready line says which). The bounds on each request and
connection (body size, cells, concurrency, timeouts) are flags; their defaults live in
:mod:`framework.serve.limits`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import socket
import sys
import threading
import time
from typing import Any

from framework.errors import UsageError
from framework.serve.limits import DEFAULT_HOST, DEFAULT_POLL_INTERVAL, DEFAULT_PORT, Limits
from framework.serve.startup import startup_gc


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would sys.exit; the CLI layer decides
        raise UsageError(f"serve: {message}\n{self.format_usage().rstrip()}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m framework serve",
                description="Serve a registered model over REST (MLflow scoring protocol).")
    p.add_argument("model", help="NAME@ALIAS, NAME/VERSION or models:/NAME@ALIAS; an alias is "
                   "followed when it moves, a version is fixed")
    p.add_argument("--registry", default=None,
                   help="registry folder (default: $FRAMEWORK_REGISTRY, params.yaml, "
                        ".framework/registry)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--split", default=None, metavar="ALIAS=W,ALIAS=W",
                   help="serve several aliases of MODEL (a bare name), each request assigned "
                        "to one by weight, sticky by --split-key (e.g. champion=90,"
                        "challenger=10)")
    p.add_argument("--split-key", default=None, metavar="HEADER",
                   help="the request header a --split assigns by (default: monitor.ab.key of "
                        "params.yaml, else X-Request-ID; a request without it is assigned at "
                        "random)")
    p.add_argument("--shadow", default=None, metavar="ALIAS|VERSION",
                   help="also score every request with this version of the model, off the "
                        "response path; both answers are logged")
    add_limit_flags(p)
    p.add_argument("--trust", action="append", default=[], metavar="MODULE.NAME",
                   help="a class or function the model file may name beyond the allowlist "
                        "(repeatable; exact names only; the project's trusted_types are "
                        "trusted too)")
    p.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_INTERVAL,
                   help="seconds between checks of the alias (default 1; 0: do not follow)")
    p.add_argument("--log-predictions", default="all", metavar="off|all|SHARE",
                   help="write scored requests to the prediction log in the registry (default "
                        "all; 0.1: one request in ten; off: none)")
    p.add_argument("--log-column", action="append", default=[], metavar="NAME",
                   help="a request column to log beside the model's inputs (repeatable; the "
                        "fairness columns of the project's monitor: are logged anyway)")
    p.add_argument("--monitor-window", type=int, default=1000, metavar="ROWS",
                   help="logged rows behind the drift gauges of /metrics (default 1000)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument("--detach", action="store_true",
                   help="run in the background: return once the server answers, with its pid "
                        "(in .framework/serve/PORT.pid) and its log file")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"], help="default info")
    return p


def add_limit_flags(p: argparse.ArgumentParser) -> None:
    """The bounds on each request and connection (shared with a package's server)."""
    d = Limits()
    p.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes,
                   help=f"largest request body accepted, 413 beyond (default {d.max_body_bytes})")
    p.add_argument("--max-cells", type=int, default=d.max_cells,
                   help=f"largest rows x columns of one request, 413 beyond (default "
                        f"{d.max_cells})")
    p.add_argument("--max-concurrency", type=int, default=d.max_concurrency,
                   help=f"/invocations requests in flight, 503 with Retry-After beyond (default "
                        f"{d.max_concurrency})")
    p.add_argument("--threads", type=int, default=0,
                   help="threads that decode and score large requests (default: one per core, "
                        "2 to 8)")
    p.add_argument("--header-timeout", type=float, default=d.header_timeout,
                   help=f"seconds to receive a request's headers (default {d.header_timeout:g})")
    p.add_argument("--body-timeout", type=float, default=d.body_timeout,
                   help=f"seconds to receive a request's body (default {d.body_timeout:g})")
    p.add_argument("--max-connections", type=int, default=d.max_connections,
                   help=f"open connections, 503 beyond (default {d.max_connections})")


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        raise UsageError(f"serve: --workers must be at least 1, found {args.workers}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"serve: --port must be between 0 and 65535, found {args.port}")
    args.limits = limits_of(args)
    args.trusted = trusted_of(args)
    args.split, args.split_key = split_of(args)
    if args.split and args.shadow:
        raise UsageError("serve: --split and --shadow do not go together (shadow a single "
                         "alias, or split the traffic between aliases)")
    args.sample, args.log_columns = logging_of(args)
    if args.detach:
        return _detach([a for a in argv if a != "--detach"], args)
    _configure_logging(args.log_level, args.access_log)
    if args.workers == 1:
        return _serve_one(args)
    return _serve_many(args)


#: Where detached servers keep their pid files and logs.
DETACHED_DIR = os.path.join(".framework", "serve")
_DETACH_TIMEOUT = 120.0


def _detach(argv: list[str], args: argparse.Namespace) -> int:
    """Start ``serve ARGV`` in a session of its own, its output in a log file; return when it is
    ready (its ready line printed, with its pid) or when it failed (its error, its exit code)."""
    import subprocess
    import uuid

    folder = os.path.abspath(DETACHED_DIR)
    os.makedirs(folder, exist_ok=True)
    log_path = os.path.join(folder, f"starting-{uuid.uuid4().hex}.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "framework", "serve", *argv],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ,
                                                             "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + _DETACH_TIMEOUT
    ready = None
    while time.monotonic() < deadline:
        with open(log_path) as log:
            ready = next((line.strip() for line in log if line.startswith("serving ")), None)
        if ready or proc.poll() is not None:
            break
        time.sleep(0.05)
    if not ready:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        with open(log_path) as log:
            print(log.read().rstrip(), file=sys.stderr)
        os.unlink(log_path)
        return proc.returncode or 1
    port = ready.rsplit(":", 1)[-1]
    final = os.path.join(folder, f"{port}.log")
    os.replace(log_path, final)
    with open(os.path.join(folder, f"{port}.pid"), "w") as pid_file:
        pid_file.write(f"{proc.pid}\n")
    shown = os.path.relpath(folder)
    print(ready)
    print(f"in the background: pid {proc.pid} ({shown}/{port}.pid), log {shown}/{port}.log; "
          f"stop it with: kill $(cat {shown}/{port}.pid)")
    return 0


def limits_of(args: argparse.Namespace) -> Limits:
    """The :class:`Limits` the flags ask for (a UsageError names a bad flag)."""
    try:
        return Limits(max_body_bytes=args.max_body_bytes, max_cells=args.max_cells,
                      max_concurrency=args.max_concurrency, threads=args.threads,
                      header_timeout=args.header_timeout, body_timeout=args.body_timeout,
                      max_connections=args.max_connections)
    except ValueError as exc:  # "max_body_bytes must be ...": the field, then what is wrong
        field, _, problem = str(exc).partition(" ")
        raise UsageError(f"serve: --{field.replace('_', '-')} {problem}") from None


def split_of(args: argparse.Namespace) -> tuple[list[tuple[str, float]] | None, str]:
    """The ``--split`` arms and the header they are assigned by."""
    from framework.serve.app import DEFAULT_SPLIT_KEY, parse_split

    key = args.split_key
    if key is None and os.path.exists("params.yaml"):
        from framework.monitor.policy import project_policy

        key = project_policy().ab.key
    key = (key or DEFAULT_SPLIT_KEY).lower()
    if not key.replace("-", "").replace("_", "").isalnum():
        raise UsageError(f"serve: --split-key {key!r} is not a header name")
    return (parse_split(args.split) if args.split else None), key


def logging_of(args: argparse.Namespace) -> tuple[float, tuple[str, ...]]:
    """The share of requests to log, and the extra columns to log (``--log-column`` and the
    columns the project's ``monitor:`` policy needs)."""
    from framework.serve.predlog import parse_sampling

    try:
        sample = parse_sampling(args.log_predictions)
    except ValueError as exc:
        raise UsageError(f"serve: --log-predictions: {exc}") from None
    if args.monitor_window < 1:
        raise UsageError(f"serve: --monitor-window must be at least 1, found "
                         f"{args.monitor_window}")
    columns = list(args.log_column)
    if os.path.exists("params.yaml"):
        from framework.monitor.policy import project_policy

        columns += list(project_policy().logged_columns())
    return sample, tuple(dict.fromkeys(columns))


def trusted_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The project's ``trusted_types`` and the ``--trust`` names, checked."""
    from framework import trust
    from framework.io import project_trusted

    try:
        extra = trust.check_trusted_names(args.trust, where="--trust")
    except ValueError as exc:
        raise UsageError(f"serve: {exc}") from None
    return (*project_trusted(), *extra)


def _configure_logging(level: str, access_log: bool) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_framework_serve", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                               "%(message)s"))
        handler._framework_serve = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("framework").setLevel(level.upper())
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if access_log else logging.WARNING)


def _uvicorn_config(app: Any, args: argparse.Namespace, **extra: Any) -> Any:
    import uvicorn

    from framework.serve.guard import configure

    limits: Limits = args.limits
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None,
                            access_log=args.access_log, server_header=False, lifespan="on",
                            timeout_graceful_shutdown=5,
                            limit_concurrency=limits.max_connections, **extra)
    configure(config, limits)
    return config


def _ready_line(name: str, version: int, alias: str | None, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"serving {name} v{version} ({alias or 'fixed version'}) on http://{shown}:{port}"


def _serve_one(args: argparse.Namespace) -> int:
    with startup_gc():
        from framework.registry import resolve

        for uri in uris_of(args):  # an unknown model or alias fails before big imports
            resolve(uri, registry=args.registry)
        sock = bind(args.host, args.port)  # so does a port in use (not listening yet)
        try:
            from framework.io import preload_skops

            preload_skops()  # before the web stack and pandas: see its docstring
            from framework.serve.app import create_app

            app = create_app(args.model, registry=args.registry, limits=args.limits,
                             poll_interval=args.poll_interval, trusted=args.trusted,
                             log_predictions=args.sample, log_columns=args.log_columns,
                             monitor_window=args.monitor_window, split=args.split,
                             shadow=args.shadow, split_key=args.split_key)
        except BaseException:
            sock.close()
            raise
    return run_app(app, args, sock)


def uris_of(args: argparse.Namespace) -> list[str]:
    """Every version the server will load: the model, each --split alias, the --shadow."""
    if args.split:
        if any(c in args.model for c in "@/:"):
            raise UsageError(f"serve --split: name the model alone ({args.model!r} names one "
                             "version); the split says which aliases share its traffic")
        return [f"{args.model}@{alias}" for alias, _ in args.split]
    uris = [args.model]
    if args.shadow:
        from framework.registry import parse_uri

        name = parse_uri(args.model).name
        uris.append(f"{name}/{args.shadow}" if str(args.shadow).isdigit()
                    else f"{name}@{args.shadow}")
    return uris


def ready_label(app: Any) -> str | None:
    """What the ready line says of a split or shadowed server (None: a single version)."""
    router, shadow = app.state.router, app.state.shadow
    served = app.state.served
    if router is not None:
        total = sum(a.weight for a in router.arms)
        arms = ", ".join(f"{a.alias} v{a.served.current.version.version} "
                         f"{100 * a.weight / total:g}%" for a in router.arms)
        return f"{served.current.version.name} split {arms} (by {router.key})"
    if shadow is not None:
        mv = served.current.version
        return f"{mv.name} v{mv.version} ({served.alias or 'fixed version'}), shadow " \
               f"{shadow.alias or 'version'} v{shadow.current.version.version}"
    return None


def run_app(app: Any, args: argparse.Namespace, sock: socket.socket) -> int:
    """Serve ``app`` on ``sock`` until a signal stops it; print the ready line once it
    answers. 0 after a graceful stop, 1 when it never started."""
    import uvicorn

    served = app.state.served
    port = sock.getsockname()[1]

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                mv = served.current.version
                label = ready_label(app) if hasattr(app.state, "router") else None
                line = _ready_line(mv.name, mv.version, served.alias, args.host, port)
                if label:
                    line = f"serving {label} on {line.rsplit(' on ', 1)[1]}"
                print(line, flush=True)

    server = Server(_uvicorn_config(app, args))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl-C during shutdown
        pass
    finally:
        sock.close()
    return 0 if server.started else 1


def _serve_many(args: argparse.Namespace) -> int:
    """``--workers N``: uvicorn's supervisor starts N processes, each building the app from
    ``$FRAMEWORK_SERVE_CONFIG`` (see :func:`framework.serve.app.app_from_env`)."""
    from uvicorn.supervisors import Multiprocess

    from framework.registry import resolve
    from framework.serve.app import ENV_CONFIG

    mvs = [resolve(uri, registry=args.registry) for uri in uris_of(args)]  # fail fast
    mv = mvs[0]
    registry = os.path.abspath(args.registry) if args.registry else None
    os.environ[ENV_CONFIG] = json.dumps({
        "model_uri": args.model, "registry": registry,
        "limits": dataclasses.asdict(args.limits), "poll_interval": args.poll_interval,
        "trusted": list(args.trusted), "log_predictions": args.sample,
        "log_columns": list(args.log_columns), "monitor_window": args.monitor_window,
        "split": args.split, "shadow": args.shadow, "split_key": args.split_key})
    config = _uvicorn_config("framework.serve.app:app_from_env", args, factory=True,
                             workers=args.workers)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    from framework.registry import parse_uri

    ref = parse_uri(uris_of(args)[0])
    alias = ref.alias or ("latest" if ref.latest else None)
    stop = threading.Event()
    threading.Thread(target=_announce_when_ready, daemon=True,
                     args=(args.host, port, stop, _ready_line(mv.name, mv.version, alias,
                                                              args.host, port))).start()
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:  # pragma: no cover
        pass
    finally:
        stop.set()
        sock.close()
    return 0


def bind(host: str, port: int, *, prog: str = "serve") -> socket.socket:
    """The listening socket (shared by the workers), created with ``IPPROTO_TCP`` so that
    asyncio sets ``TCP_NODELAY`` on each accepted connection (uvicorn's own ``bind_socket``
    passes protocol 0, which leaves Nagle's algorithm on: every response then waits ~40 ms for
    a delayed ACK)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"{prog}: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _announce_when_ready(host: str, port: int, stop: threading.Event, line: str) -> None:
    import http.client

    target = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    while not stop.is_set():
        try:
            conn = http.client.HTTPConnection(target, port, timeout=1)
            conn.request("GET", "/metadata")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status == 200:
                try:  # the version the workers actually loaded (the alias may have moved)
                    meta = json.loads(body)
                    line = _ready_line(meta["name"], meta["version"], meta["alias"], host, port)
                except (ValueError, KeyError, TypeError):
                    pass
                print(line, flush=True)
                return
        except OSError:
            pass
        time.sleep(0.05)
