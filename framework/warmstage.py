"""Stage commands handed to a warm process, so that ``python -m framework`` pays for scikit-learn,
pandas and pyarrow once, not once per stage.

Each stage ``dvc repro`` runs is a command of its own (``python -m framework stage ...``), and a
fresh Python process importing scikit-learn, pandas and pyarrow costs more than most stages' work.
So ``python -m framework`` forks a process at once (before Hydra is imported) that imports them,
and the third-party modules the pipeline's stage modules import (never the project's own modules:
their module-level code runs in each stage, as under plain ``dvc repro``), on the other core,
while Hydra composes and DVC starts. Its address goes to the stage commands through
``$FRAMEWORK_STAGE_SERVER``; a stage command then hands its arguments, working folder,
environment, and its standard output and error (as file descriptors) to that process, which forks
a child that runs the stage exactly as the command would have, and sends back its exit code. The
command forwards Ctrl-C and termination to the child and exits with its code.

Plain ``dvc repro`` (CI, a teammate) has no such variable: every stage runs in its own process,
with the same code, and gives byte-identical outputs (the pipeline benchmark checks it). When the
warm process cannot be reached, the command runs the stage itself.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

ENV = "FRAMEWORK_STAGE_SERVER"
#: The verbs ``dvc repro`` runs for the framework's stages.
VERBS = ("stage", "register")
#: Imported by the warm process whatever the pipeline (scipy.special first: see
#: :func:`framework.io.preload_skops`).
WARM_MODULES = ("numpy", "scipy.special", "pandas", "pyarrow.parquet", "sklearn.base",
                "sklearn.pipeline", "framework.io", "framework.stage", "framework.schema",
                "framework.schema.engine", "framework.registry", "framework.registry.core",
                "framework.registry.sqlite", "framework.registry.step",
                "framework.registry.lineage", "framework.trust", "sqlite3", "yaml")
_MAX_MESSAGE = 1 << 20


class StageServer:
    """The warm process, seen from the process that started it."""

    def __init__(self, pid: int, folder: str) -> None:
        self.pid = pid
        self.folder = folder

    def stop(self) -> None:
        os.environ.pop(ENV, None)
        try:
            os.kill(self.pid, signal.SIGTERM)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        for name in os.listdir(self.folder):
            os.unlink(os.path.join(self.folder, name))
        os.rmdir(self.folder)


def supported() -> bool:
    return hasattr(os, "fork") and hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds")


def start(root: Path) -> StageServer | None:
    """Fork the warm process (it imports while the caller goes on) and publish its address in
    this process's environment, which ``dvc repro`` passes on to the stage commands."""
    if not supported():
        return None
    folder = tempfile.mkdtemp(prefix="framework-stages-")
    path = os.path.join(folder, "socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(16)
    except OSError:  # a path too long for a socket, say: the stages run on their own
        listener.close()
        os.rmdir(folder)
        return None
    modules = list(WARM_MODULES) + sorted(third_party_imports(root))
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the warm process (covered through the stages it runs)
        try:
            _serve(listener, modules)
        finally:
            os._exit(0)
    listener.close()
    os.environ[ENV] = path
    return StageServer(pid, folder)


def third_party_imports(root: Path) -> set[str]:
    """The modules the pipeline's stage modules import that are not the project's own: read
    from the stage commands of ``dvc.yaml`` and the modules' source (nothing is imported)."""
    import shlex

    import yaml

    try:
        stages = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages") or {}
    except (OSError, yaml.YAMLError):
        return set()
    modules = set()
    for stage in stages.values():
        try:
            argv = shlex.split(str(stage.get("cmd", "")))
        except ValueError:
            continue
        if "--run" in argv and argv.index("--run") + 1 < len(argv):
            modules.add(argv[argv.index("--run") + 1].rpartition(".")[0])
    found: set[str] = set()
    for module in modules:
        path = root.joinpath(*module.split(".")).with_suffix(".py")
        try:
            tree = ast.parse(path.read_text())
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            names: Iterable[str] = ()
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from sklearn import metrics` imports a submodule: try each name as one
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                top = name.split(".")[0]
                if top != "framework" and not (root / top).exists() and \
                        not (root / f"{top}.py").exists():
                    found.add(name)
    return found


# -- the warm process -------------------------------------------------------------------------

def _serve(listener: socket.socket, modules: list[str]) -> None:  # pragma: no cover
    import gc
    import importlib

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the stages themselves
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # end with its parent
    gc.disable()
    try:
        from framework.io import preload_skops

        for name in modules:
            try:
                importlib.import_module(name)
                if name == "scipy.special":
                    preload_skops()
            except Exception:  # a function's name, or only a head start: the stage will say
                pass
        _exercise()
    finally:
        gc.enable()
    gc.freeze()
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        _reap()
        try:
            _handle(conn, listener)
        except Exception:  # a request that cannot be served: the command runs it itself
            pass
        finally:
            conn.close()


def _exercise() -> None:  # pragma: no cover
    """Run once what every stage does (write and read a Parquet table, check it against a
    schema, save and load a model through the allowlist), so that the lazy imports and caches
    of these paths are warm in every stage the process forks."""
    import io as _io

    try:
        import pandas as pd
        from sklearn.preprocessing import StandardScaler

        from framework import io
        from framework.schema import compile_schema

        frame = pd.DataFrame({"a": [0.0, 1.0], "b": ["x", "y"]})
        buffer = _io.BytesIO()
        frame.to_parquet(buffer, index=False)
        buffer.seek(0)
        frame = pd.read_parquet(buffer)
        compile_schema({"type": "object", "properties": {"a": {"type": "number"}}}).check(frame)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.skops"
            io.save_model(StandardScaler().fit(frame[["a"]]), path)
            io.load_model(path, trusted=())
    except Exception:  # only a head start
        pass


def _reap() -> None:  # pragma: no cover
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _handle(conn: socket.socket, listener: socket.socket) -> None:  # pragma: no cover
    data, fds, _, _ = socket.recv_fds(conn, _MAX_MESSAGE, 2)
    request = json.loads(data)
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            listener.close()
            code = _run(request, fds)
        except BaseException:  # the stage's own errors are reported by the CLI layer
            import traceback

            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except Exception:
                pass
            try:
                conn.sendall(f"exit {code}\n".encode())
            except OSError:
                pass
            os._exit(code)
    for fd in fds:
        os.close(fd)
    conn.sendall(f"pid {pid}\n".encode())


def _run(request: dict, fds: list[int]) -> int:  # pragma: no cover
    """In the forked child: become the stage command, run it, return its exit code."""
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    for fd in fds:
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.pop(ENV, None)
    sys.argv = ["python -m framework", *request["argv"]]
    from framework.cli import main

    return main(request["argv"])


# -- the stage command's side -----------------------------------------------------------------

def delegate(argv: list[str]) -> int | None:
    """Run ``python -m framework ARGV`` in the warm process; its exit code, or None when there
    is none to reach (the caller then runs the command itself)."""
    path = os.environ.get(ENV)
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)})
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        socket.send_fds(conn, [request.encode()], [1, 2])
        reader = conn.makefile("rb")
        first = reader.readline().split()
    except OSError:
        conn.close()
        return None
    if len(first) != 2 or first[0] != b"pid":
        conn.close()
        return None  # nothing started: run it here
    child = int(first[1])

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    last = reader.readline().split()
    conn.close()
    if len(last) == 2 and last[0] == b"exit":
        return int(last[1])
    return 1  # the child ended without a word: killed
