"""Helpers for the serving tests: the breast cancer data, fitting, registering, and starting real
servers (``python -m framework serve ... --port 0``) to talk to over HTTP."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
MODEL = "breast_cancer"
READY_TIMEOUT = 90.0


@dataclass
class Data:
    columns: list[str]
    rows: list[list[float]]
    target: list[int]

    def split(self, n: int) -> dict[str, Any]:
        return {"columns": self.columns, "data": self.rows[:n]}

    def records(self, n: int) -> list[dict[str, float]]:
        return [dict(zip(self.columns, row)) for row in self.rows[:n]]


def load_data() -> Data:
    from sklearn.datasets import load_breast_cancer

    ds = load_breast_cancer(as_frame=True)
    frame = ds.frame.rename(columns=lambda c: c.replace(" ", "_"))
    features = [c for c in frame.columns if c != "target"]
    return Data(features, frame[features].to_numpy().tolist(), frame["target"].tolist())


def fit(data: Data, C: float = 1.0) -> Any:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = pd.DataFrame(data.rows, columns=data.columns)
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)).fit(
        X, data.target)


def register(registry: Path, model: Any, schema: dict[str, Any] | None, roc_auc: float) -> int:
    from framework.registry import open_registry

    with open_registry(registry) as reg:
        result = reg.register(MODEL, model, metrics={"roc_auc": roc_auc, "accuracy": 0.95},
                              input_schema=schema, target="target" if schema else None,
                              primary_metric="roc_auc", actor="tests")
    return result.version.version


@dataclass
class Server:
    """A running ``python -m framework serve`` process."""

    proc: subprocess.Popen[str]
    url: str = ""
    ready_line: str = ""
    stderr: list[str] = field(default_factory=list)
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    pumps: list[threading.Thread] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pump in self.pumps:
            pump.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode

    def log(self) -> str:
        return "".join(self.stderr)


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("FRAMEWORK_REGISTRY", "FRAMEWORK_SERVE_CONFIG", "FRAMEWORK_REGISTRY_CRASH_AT"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def launch(*args: str, cwd: Path) -> Server:
    """Start ``python -m framework serve ARGS --port 0`` (no wait)."""
    proc = subprocess.Popen([sys.executable, "-m", "framework", "serve", *args, "--port", "0"],
                            cwd=cwd, env=server_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    server = Server(proc)

    def pump_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server.lines.put(line)
        server.lines.put(None)

    def pump_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            server.stderr.append(line)

    server.pumps = [threading.Thread(target=pump_out, daemon=True),
                    threading.Thread(target=pump_err, daemon=True)]
    for pump in server.pumps:
        pump.start()
    return server


def wait_ready(server: Server, timeout: float = READY_TIMEOUT) -> Server:
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = server.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            server.stop()
            raise AssertionError(f"server not ready after {timeout}s:\n{server.log()}") from None
        if line is None:
            server.stop()
            raise AssertionError(f"server exited ({server.proc.returncode}) before ready:\n"
                                 f"{server.log()}")
        if line.startswith("serving "):
            server.ready_line = line.strip()
            server.url = line.rsplit(" ", 1)[1].strip()
            return server


def start(*args: str, cwd: Path) -> Server:
    return wait_ready(launch(*args, cwd=cwd))


def fresh(root: Path, tmp_path: Path) -> Path:
    """A copy of the registry at ``root`` for one test to write into."""
    copy = tmp_path / "registry"
    shutil.copytree(root, copy)
    return copy


def wait_rows(root: Path, n: int, timeout: float = 10.0) -> Any:
    """The prediction log of ``MODEL`` once it holds ``n`` rows (or at the timeout)."""
    from framework.serve.predlog import read_log

    deadline = time.monotonic() + timeout
    while True:
        table = read_log(root, MODEL)
        rows = 0 if table is None else table.num_rows
        if rows >= n or time.monotonic() > deadline:
            return table
        time.sleep(0.1)
