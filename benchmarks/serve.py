"""Benchmark: serving one scikit-learn model over REST, ours vs ``mlflow models serve``.

    python benchmarks/serve.py [--requests 300] [--concurrent-requests 2000] [--clients 8]
                               [--ready-runs 3] [--mlflow-python .venv-mlflow/bin/python]
                               [--no-workers-2] [--baseline REV] [--log-overhead] [--shadow]

The same model (a breast-cancer StandardScaler + LogisticRegression, fitted with the same code and
seed in each venv) is served on loopback by

* ours: ``python -m framework serve bc@champion`` from a temporary registry, with the project's
  input schema (``schemas/features.json``) checked on every request and every request written to
  the prediction log (``--log-overhead`` adds the same server with ``--log-predictions off``);
* MLflow 3: ``mlflow models serve -m runs:/<run>/model --env-manager local -w 1``, the model
  logged with ``mlflow.sklearn.log_model`` (with an input example, so a signature is enforced too)
  into a temporary SQLite tracking store.

Both run one worker (an optional extra row runs ours with ``--workers 2``). Every measure runs
in rounds, the servers in turn, and pools the rounds (the machine's speed drifts by a third from
one minute to the next). ``--baseline REV``
adds a third contender: this project's server as it was at git revision ``REV`` (checked out in
a temporary worktree, run with the same interpreter), so a change is measured against the code
before it in the same run. Measured in the same run, alternating between the servers: time from process start to the first ``GET /ping`` 200
(median of ``--ready-runs`` cold starts);
``GET /ping`` latency (the HTTP floor); p50/p99 latency of sequential ``POST /invocations`` with
a 1-row and a 100-row ``dataframe_split`` (after a warm-up); throughput and p50 latency with
``--clients`` concurrent keep-alive clients over ``--concurrent-requests`` 1-row requests; and
``GET /ping`` latency (p50 and max over 100 pings) while another client keeps 5,000-row requests
in flight. The clients use ``http.client`` (one connection per client thread) to keep the load
generator light. All servers must return the same predictions for the 100-row request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MLFLOW_PYTHON = REPO / ".venv-mlflow" / "bin" / "python"
READY_TIMEOUT = 180.0


def fit_model() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.rename(columns=lambda c: c.replace(" ", "_"))
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0)).fit(
        X, y), X


# -- preparing the two contenders -----------------------------------------------------------------

def prepare_ours(workdir: Path) -> tuple[str, list[str], list[list[float]]]:
    """Register the model in ``workdir/registry``; return the registry path and the data."""
    from framework.registry import open_registry
    from framework.registry.step import serving_schema

    from framework.monitor.profile import build

    model, X = fit_model()
    # the input schema the register step records: the table's, without the columns that are
    # not model inputs (the grouping column clinic)
    schema = serving_schema(json.loads((REPO / "schemas" / "features.json").read_text()),
                            ["clinic"], file="benchmarks/serve.py",
                            source="schemas/features.json")
    registry = workdir / "registry"
    table = X.assign(target=model.predict(X))
    profile, predictions = build(table, schema=schema, target="target", model=model,
                                 test=table)  # the reference the register stage stores
    with open_registry(registry) as reg:
        reg.register("bc", model, metrics={"roc_auc": 0.99}, input_schema=schema,
                     target="target", primary_metric="roc_auc",
                     companions={"profile": profile.to_bytes(),
                                 "test_predictions": predictions})
        # a second version as the challenger, for --shadow
        model[-1].set_params(C=0.5)
        v2 = reg.register("bc", model.fit(X, table["target"]), metrics={"roc_auc": 0.98},
                          input_schema=schema, target="target", primary_metric="roc_auc",
                          promote=False).version.version
        reg.set_alias("bc", v2, "challenger", actor="benchmark")
    return str(registry), list(X.columns), X.to_numpy().tolist()


def worker_mlflow_log(workdir: Path) -> None:
    """(MLflow venv) log the model into ``workdir``; print the run id."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    import mlflow
    import mlflow.sklearn
    import sklearn

    os.chdir(workdir)
    model, X = fit_model()
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    mlflow.set_experiment("bench-serve")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", input_example=X.head(3),
                                 pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
    print(json.dumps({"run_id": run.info.run_id, "mlflow": mlflow.__version__}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Contender:
    """A server process started by this benchmark."""

    def __init__(self, name: str, cmd: list[str], port: int, *, cwd: Path,
                 env: dict[str, str]) -> None:
        self.name = name
        self.port = port
        self.log = open(cwd / f"{name.replace(' ', '_')}.log", "w")  # noqa: SIM115
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.ready_s = self._wait_ready()

    def _wait_ready(self) -> float:
        deadline = self.started + READY_TIMEOUT
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                text = Path(self.log.name).read_text()[-3000:]
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}:\n{text}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/ping")
                ok = conn.getresponse().status == 200
                conn.close()
                if ok:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise SystemExit(f"{self.name} not ready after {READY_TIMEOUT}s; see {self.log.name}")

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # the group: mlflow serve runs uvicorn below it
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        deadline = time.monotonic() + 20  # until every process of the group is gone
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        time.sleep(0.5)  # let the machine settle before the next start


def start_ours(workdir: Path, registry: str, *, workers: int = 1,
               log: str = "all", shadow: str | None = None) -> Contender:
    port = free_port()
    env = dict(os.environ)
    env.pop("FRAMEWORK_REGISTRY", None)
    name = "ours" if workers == 1 else f"ours --workers {workers}"
    if log != "all":
        name = f"ours, log {log}"
    extra = []
    if shadow:
        name, extra = f"ours --shadow {shadow}", ["--shadow", shadow]
    return Contender(name, [sys.executable, "-m", "framework", "serve", "bc@champion",
                            "--registry", registry, "--port", str(port), "--workers",
                            str(workers), "--log-predictions", log, *extra], port, cwd=workdir,
                     env=env)


def start_baseline(workdir: Path, registry: str, tree: Path, rev: str) -> Contender:
    """The server as it was at ``rev``: its package first on the path, same interpreter."""
    port = free_port()
    env = dict(os.environ)
    env.pop("FRAMEWORK_REGISTRY", None)
    env["PYTHONPATH"] = f"{tree}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return Contender(f"before ({rev})", [sys.executable, "-m", "framework", "serve",
                                         "bc@champion", "--registry", registry, "--port",
                                         str(port)], port, cwd=workdir, env=env)


def worktree(rev: str, dest: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(dest), rev],
                   check=True, capture_output=True, text=True)
    return dest


def remove_worktree(dest: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(dest)],
                   check=False, capture_output=True)


def start_mlflow(workdir: Path, mlflow_python: Path, run_id: str) -> Contender:
    port = free_port()
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"
    # mlflow serve execs `uvicorn` from PATH: its own venv's
    env["PATH"] = f"{mlflow_python.parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [str(mlflow_python), "-m", "mlflow", "models", "serve", "-m", f"runs:/{run_id}/model",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    return Contender("mlflow", cmd, port, cwd=workdir, env=env)


# -- load generation ------------------------------------------------------------------------------

def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
            ) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def sequential(port: int, method: str, path: str, body: bytes | None, n: int,
               warmup: int = 30) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(warmup):
        status, data = request(conn, method, path, body)
        assert status == 200, data[:300]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        status, data = request(conn, method, path, body)
        times.append(time.perf_counter() - t)
        assert status == 200, data[:300]
    conn.close()
    return times


def concurrent(port: int, body: bytes, total: int, clients: int) -> tuple[float, list[float]]:
    """(requests per second, latencies) for ``total`` requests over ``clients`` threads."""
    counter = iter(range(total))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        request(conn, "POST", "/invocations", body)  # connect + warm
        mine = []
        barrier.wait()
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            t = time.perf_counter()
            status, data = request(conn, "POST", "/invocations", body)
            mine.append(time.perf_counter() - t)
            if status != 200:
                errors.append(data[:200].decode(errors="replace"))
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return total / elapsed, latencies


def ping_under_load(port: int, body: bytes, pings: int = 100) -> list[float]:
    """``/ping`` latencies while one client keeps a large request in flight."""
    stop = threading.Event()

    def load() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while not stop.is_set():
            status, data = request(conn, "POST", "/invocations", body)
            assert status == 200, data[:300]
        conn.close()

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(0.2)
    try:
        times = sequential(port, "GET", "/ping", None, pings, warmup=0)
    finally:
        stop.set()
        loader.join(120)
    return times


def pct(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


# -- the run --------------------------------------------------------------------------------------

#: Each measure runs in this many rounds, the contenders in turn (their order rotating), so a
#: busy moment of the machine hits each alike; its figures pool the rounds.
ROUNDS = 6


def measure(contenders: list[Contender], args: argparse.Namespace, bodies: dict[str, bytes],
            results: dict[str, dict[str, float]], phase: str) -> None:
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    for r in range(ROUNDS):
        k = r % len(contenders)
        for c in contenders[k:] + contenders[:k]:
            if phase == "ping":
                times[c.name] += sequential(c.port, "GET", "/ping", None,
                                            args.requests // ROUNDS, warmup=5)
            elif phase in ("1", "100"):
                times[c.name] += sequential(c.port, "POST", "/invocations", bodies[phase],
                                            args.requests // ROUNDS, warmup=5)
            elif phase == "concurrent":
                rps, lat = concurrent(c.port, bodies["1"], args.concurrent_requests // ROUNDS,
                                      args.clients)
                rates[c.name].append(rps)
                times[c.name] += lat
            elif phase == "ping_under_load":
                times[c.name] += ping_under_load(c.port, bodies["5000"], 100 // ROUNDS + 1)
    for c in contenders:
        r = results.setdefault(c.name, {"ready_s": c.ready_s})
        t = times[c.name]
        if phase == "ping":
            r["ping_p50_ms"] = 1e3 * pct(t, 0.5)
        elif phase in ("1", "100"):
            r[f"rows{phase}_p50_ms"] = 1e3 * pct(t, 0.5)
            r[f"rows{phase}_p99_ms"] = 1e3 * pct(t, 0.99)
        elif phase == "concurrent":
            r["conc_rps"] = statistics.median(rates[c.name])
            r["conc_p50_ms"] = 1e3 * pct(t, 0.5)
        elif phase == "ping_under_load":
            r["busy_ping_p50_ms"] = 1e3 * pct(t, 0.5)
            r["busy_ping_max_ms"] = 1e3 * max(t)


ROWS: list[tuple[str, str, str, bool]] = [
    # key, label, unit, higher is better
    ("ready_s", "time to ready", "s", False),
    ("ping_p50_ms", "GET /ping p50 (HTTP floor)", "ms", False),
    ("rows1_p50_ms", "1-row p50", "ms", False),
    ("rows1_p99_ms", "1-row p99", "ms", False),
    ("rows100_p50_ms", "100-row p50", "ms", False),
    ("rows100_p99_ms", "100-row p99", "ms", False),
    ("conc_rps", "throughput, {clients} clients", "req/s", True),
    ("conc_p50_ms", "p50 latency, {clients} clients", "ms", False),
    ("busy_ping_p50_ms", "GET /ping p50, 5,000-row requests in flight", "ms", False),
    ("busy_ping_max_ms", "GET /ping max, 5,000-row requests in flight", "ms", False),
]
PHASES = ("ping", "1", "100", "concurrent", "ping_under_load")


def table(results: dict[str, dict[str, float]], clients: int) -> str:
    names = list(results)
    before = next((n for n in names if n.startswith("before")), None)
    unlogged = next((n for n in names if n.startswith("ours, log off")), None)
    header = ["metric", *names, "ours vs mlflow", *(["ours vs before"] if before else []),
              *(["logging cost"] if unlogged else [])]
    lines = []
    for key, label, unit, higher in ROWS:
        cells = [f"{label.format(clients=clients)} ({unit})"]
        for name in names:
            v = results[name].get(key)
            cells.append("-" if v is None else (f"{v:.0f}" if unit == "req/s" else f"{v:.2f}"))
        for other, wording in (("mlflow", "x"), *(((before, "%"),) if before else ()),
                               *(((unlogged, "%"),) if unlogged else ())):
            ours, theirs = results.get("ours", {}).get(key), results.get(other, {}).get(key)
            if not (ours and theirs):
                cells.append("")
            elif wording == "x":
                ratio = ours / theirs if higher else theirs / ours
                cells.append(f"{ratio:.1f}x {'more' if higher else 'faster'}")
            else:  # the change against the code before it, as a signed share of before
                change = (ours - theirs) / theirs * 100
                cells.append(f"{change:+.0f}%")
        lines.append(cells)
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, lines)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=300, help="sequential requests per measure")
    p.add_argument("--concurrent-requests", type=int, default=2000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--ready-runs", type=int, default=3,
                   help="cold starts per server for the median time to ready")
    p.add_argument("--mlflow-python", type=Path, default=MLFLOW_PYTHON)
    p.add_argument("--no-workers-2", action="store_true", help="skip the ours --workers 2 row")
    p.add_argument("--baseline", metavar="REV", help="also serve the project as it was at this git "
                                                     "revision, alternated with the others")
    p.add_argument("--log-overhead", action="store_true",
                   help="also serve with --log-predictions off, alternated with the others: the "
                        "cost of the prediction log (ours logs every request)")
    p.add_argument("--shadow", action="store_true",
                   help="also serve with --shadow challenger (a second version scoring every "
                        "request off the response path), alternated with the others")
    p.add_argument("--worker", choices=["mlflow-log"], help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker == "mlflow-log":
        worker_mlflow_log(args.workdir)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        workdir = Path(tmp)
        registry, columns, rows = prepare_ours(workdir)
        logged = subprocess.run([str(args.mlflow_python), __file__, "--worker", "mlflow-log",
                                 "--workdir", str(workdir)], capture_output=True, text=True,
                                check=False)
        if logged.returncode != 0:
            raise SystemExit(f"logging the MLflow model failed:\n{logged.stderr[-3000:]}")
        info = json.loads(logged.stdout.strip().splitlines()[-1])
        bodies = {n: json.dumps({"dataframe_split": {"columns": columns,
                                                     "data": rows[:int(n)]}}).encode()
                  for n in ("1", "100")}
        big = (rows * (5000 // len(rows) + 1))[:5000]
        bodies["5000"] = json.dumps({"dataframe_split": {"columns": columns,
                                                         "data": big}}).encode()

        starters: dict[str, Callable[[], Contender]] = {
            "ours": lambda: start_ours(workdir, registry),
            "mlflow": lambda: start_mlflow(workdir, args.mlflow_python, info["run_id"]),
        }
        tree = worktree(args.baseline, workdir / "baseline") if args.baseline else None
        if tree is not None:
            starters[f"before ({args.baseline})"] = lambda: start_baseline(
                workdir, registry, tree, args.baseline)
        if args.log_overhead:
            starters["ours, log off"] = lambda: start_ours(workdir, registry, log="off")
        if args.shadow:
            starters["ours --shadow challenger"] = lambda: start_ours(workdir, registry,
                                                                       shadow="challenger")
        if not args.no_workers_2:
            starters["ours --workers 2"] = lambda: start_ours(workdir, registry, workers=2)
        ready: dict[str, list[float]] = {name: [] for name in starters}
        for _ in range(args.ready_runs - 1):  # extra cold starts, for a median time to ready
            for name, starter in starters.items():
                c = starter()
                ready[name].append(c.ready_s)
                c.stop()

        contenders: list[Contender] = []
        try:
            contenders.append(starters["ours"]())
            contenders.append(starters["mlflow"]())
            if tree is not None:
                contenders.append(starters[f"before ({args.baseline})"]())
            if args.log_overhead:
                contenders.append(starters["ours, log off"]())
            if args.shadow:
                contenders.append(starters["ours --shadow challenger"]())
            # the same answers from both
            answers = []
            for c in contenders:
                conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=60)
                status, data = request(conn, "POST", "/invocations", bodies["100"])
                conn.close()
                assert status == 200, data[:300]
                answers.append(json.loads(data)["predictions"])
            assert all(a == answers[0] for a in answers), "the servers disagree"

            results: dict[str, dict[str, float]] = {}
            for phase in PHASES:
                measure(contenders, args, bodies, results, phase)
            if not args.no_workers_2:
                extra = starters["ours --workers 2"]()
                contenders.append(extra)
                for phase in PHASES:
                    measure([extra], args, bodies, results, phase)
            for c in contenders:
                ready[c.name].append(c.ready_s)
                results[c.name]["ready_s"] = statistics.median(ready[c.name])
        finally:
            for c in contenders:
                c.stop()
            if tree is not None:
                remove_worktree(tree)

    import platform

    print(f"serving benchmark: time to ready = median of {args.ready_runs} cold starts; "
          f"{args.requests} sequential requests per latency row, in {ROUNDS} rounds alternating "
          "the servers (5 warm-up each); "
          f"{args.concurrent_requests} requests over {args.clients} concurrent clients; loopback, "
          f"1 worker each; MLflow {info['mlflow']}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs")
    print(table(results, args.clients))
    print("cold starts (s): " + "; ".join(
        f"{name} {', '.join(f'{t:.2f}' for t in times)}" for name, times in ready.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
