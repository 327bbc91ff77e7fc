"""Benchmark: register a model version and move its alias, end to end, ours vs MLflow 3 (SQLite);
with ``--postgres``, both on one PostgreSQL server: concurrent registrations and search.

    python benchmarks/registry.py [--rounds 5] [--default-rounds 3] [--procs 32] \
        [--mlflow-python .venv-mlflow/bin/python]
    python benchmarks/registry.py --postgres [--procs 64] [--versions 10000] [--search-rounds 5]

Each contender runs in its own subprocess, on the same model (a breast-cancer logistic regression
fitted in that process with the same code and seed):

* ours: save with skops, ``Registry.register`` (copy into the content-addressed store, type check,
  lineage with git, gates, version row and champion move in one transaction), a manual alias move
  (``set_alias``, extra work that MLflow's flow has as its own step),
  ``registry.load("bc@champion")``.
* MLflow 3 with its SQLite backend: ``start_run``, ``mlflow.sklearn.log_model``,
  ``mlflow.register_model``, ``set_registered_model_alias``,
  ``mlflow.sklearn.load_model("models:/bc@champion")``; "default" lets ``log_model`` infer pip
  requirements (it does so in a subprocess), "tuned" passes ``pip_requirements`` explicitly.

Times are medians over ``--rounds`` rounds after one warm-up round (reported separately as "first
round"). "fresh store" is the time to create an empty registry / tracking database. Then
``--procs`` processes register at once into a store that does not exist yet, for both; we count
successes and errors and check that the versions are unique and consecutive.

``--postgres`` starts a throwaway PostgreSQL server (``initdb`` + ``pg_ctl``, as the tests do;
Debian's ``postgresql`` package) and measures, each side in a fresh database of that server:

* ``--procs`` processes registering at once (ours: ``registry.url`` a PostgreSQL database; MLflow:
  its SQLAlchemy store on ``postgresql://``), counting successes, errors and version numbers; MLflow
  again into a database it initialised beforehand, since a fresh one is where it fails first;
* search: ``--versions`` versions of one model whose ``roc_auc`` is spread evenly over
  0.9..1.0 are recorded (ours: the store's ``add_version``; MLflow: a run with the metric and a
  model version of it per version; the seeding times are printed for information), then the
  versions with ``roc_auc > 0.99`` (a tenth of them) are searched ``--search-rounds`` times:
  ours ``Registry.search`` (the whole versions, lineage and all), MLflow ``search_runs`` with the
  filter ``metrics.roc_auc > 0.99`` (every page), which gives runs, not versions: MLflow's model
  versions carry no metrics, so the versions need a second search, ``search_model_versions`` by
  ``run_id IN (...)``, timed apart. The ratio is taken against ``search_runs`` alone, the
  cheaper of MLflow's two.

MLflow lives in its own venv (``python3 -m venv .venv-mlflow && .venv-mlflow/bin/pip install
mlflow scikit-learn skops psycopg2-binary``) so that it never touches the project's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STEPS = ("save", "run", "register", "alias", "load")
STEP_LABELS = {"save": "save / log model", "run": "run start + end", "register": "register version",
               "alias": "set alias", "load": "load by alias"}


def fit_model() -> Any:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0)).fit(
        X, y), X


def _now() -> float:
    return time.perf_counter()


# -- workers (each runs in its own interpreter) --------------------------------------------------

def worker_ours(workdir: Path, rounds: int) -> dict[str, Any]:
    import skops.io as sio

    from framework import registry
    from framework.registry import lineage, open_registry, parse_gates

    model, X = fit_model()
    gates = parse_gates([{"metric": "roc_auc", "min": 0.5},
                         {"metric": "accuracy", "max_drop_vs_champion": 0.01}],
                        known_metrics=None, file="bench")
    schema = {"type": "object", "properties": {c: {"type": "number"} for c in X.columns}}
    t = _now()
    open_registry(workdir / "fresh").close()
    fresh = _now() - t

    store = workdir / "registry"
    reg = open_registry(store)
    out: list[dict[str, float]] = []
    for i in range(rounds + 1):
        path = workdir / f"model-{i}.skops"
        t0 = _now()
        sio.dump(model, path)
        t1 = _now()
        result = reg.register(
            "bc", path, metrics={"roc_auc": 0.9 + i * 0.001, "accuracy": 0.95},
            params={"model": {"C": 1.0}}, input_schema=schema, gates=gates,
            primary_metric="roc_auc", lineage=lineage.collect(project_dir=REPO))
        t2 = _now()
        reg.set_alias("bc", result.version.version, "production", reason="benchmark")
        t3 = _now()
        loaded = registry.load("bc@champion", registry=store)
        t4 = _now()
        assert result.promoted and loaded.predict(X[:2]).shape == (2,)
        out.append({"save": t1 - t0, "run": 0.0, "register": t2 - t1, "alias": t3 - t2,
                    "load": t4 - t3})
    reg.close()
    sio.dump(model, workdir / "model.skops")  # for the parallel run
    return {"rounds": out, "fresh": fresh}


def worker_mlflow(workdir: Path, rounds: int, tuned: bool) -> dict[str, Any]:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow
    import mlflow.sklearn
    import sklearn
    from mlflow import MlflowClient

    os.chdir(workdir)
    model, X = fit_model()
    t = _now()
    MlflowClient(tracking_uri=f"sqlite:///{workdir / 'fresh.db'}").search_experiments()
    fresh = _now() - t

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    client = MlflowClient()
    reqs = [f"scikit-learn=={sklearn.__version__}"] if tuned else None
    out: list[dict[str, float]] = []
    for _ in range(rounds + 1):
        t0 = _now()
        run = mlflow.start_run()
        t1 = _now()
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=reqs)
        t2 = _now()
        mlflow.end_run()
        t3 = _now()
        mv = mlflow.register_model(info.model_uri, "bc")
        t4 = _now()
        client.set_registered_model_alias("bc", "champion", mv.version)
        t5 = _now()
        loaded = mlflow.sklearn.load_model("models:/bc@champion")
        t6 = _now()
        assert loaded.predict(X[:2]).shape == (2,) and run
        out.append({"save": t2 - t1, "run": (t1 - t0) + (t3 - t2), "register": t4 - t3,
                    "alias": t5 - t4, "load": t6 - t5})
    from mlflow.sklearn import _get_default_serialization_format

    return {"rounds": out, "fresh": fresh, "mlflow": mlflow.__version__,
            "serialization": _get_default_serialization_format()}


def _wait_for(start: Path) -> None:
    open(f"{start}.ready.{os.getpid()}", "w").close()
    deadline = time.monotonic() + 600
    while not start.exists() and time.monotonic() < deadline:
        time.sleep(0.002)


def worker_ours_one(workdir: Path, start: Path, index: int) -> dict[str, Any]:
    import skops.io  # noqa: F401 - imported before the start line, like MLflow's imports

    from framework.registry import open_registry

    _wait_for(start)
    try:
        with open_registry(workdir / "parallel") as reg:
            r = reg.register("bc", workdir / "model.skops",
                             metrics={"roc_auc": 0.9 + index * 1e-4}, primary_metric="roc_auc")
        return {"ok": True, "version": r.version.version, "done": time.time()}
    except Exception as exc:  # counted, not hidden
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}",
                "done": time.time()}


def worker_mlflow_one(workdir: Path, start: Path, index: int) -> dict[str, Any]:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.CRITICAL)
    logging.getLogger("alembic").setLevel(logging.CRITICAL)
    import mlflow
    import mlflow.sklearn
    import sklearn

    os.chdir(workdir)
    model, _ = fit_model()
    _wait_for(start)
    try:
        mlflow.set_tracking_uri(os.environ.get("BENCH_MLFLOW_URI")
                                or f"sqlite:///{workdir / 'parallel.db'}")
        with mlflow.start_run():
            mlflow.log_metric("roc_auc", 0.9 + index * 1e-4)
            info = mlflow.sklearn.log_model(
                model, name="model", pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
        mv = mlflow.register_model(info.model_uri, "bc")
        return {"ok": True, "version": int(mv.version), "done": time.time()}
    except BaseException as exc:  # counted, not hidden (MLflow may also sys.exit)
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                if str(exc) else type(exc).__name__, "done": time.time()}


SEARCH_THRESHOLD = 0.99


def _auc(i: int, n: int) -> float:
    """Version ``i``'s roc_auc: 0.9..1.0, evenly spread, in a shuffled order."""
    return 0.9 + 0.1 * ((i * 7919) % n) / n


def worker_ours_search(workdir: Path, n: int, rounds: int) -> dict[str, Any]:
    from dataclasses import replace

    import skops.io as sio

    from framework.registry import open_registry

    model, _ = fit_model()
    sio.dump(model, workdir / "model.skops")
    with open_registry(workdir / "search") as reg:  # its database: $FRAMEWORK_REGISTRY_URL
        t = _now()
        first = reg.register("bc", workdir / "model.skops", metrics={"roc_auc": _auc(0, n)},
                             primary_metric="roc_auc").version
        for i in range(1, n):
            reg.store.add_version(replace(first, metrics={"roc_auc": _auc(i, n),
                                                          "accuracy": 0.95}),
                                  alias="champion", expected=1, move=False, actor="bench",
                                  reason="")
        seed = _now() - t
        times, found = [], 0
        for _ in range(rounds + 1):
            t = _now()
            hits = reg.search("bc", [f"roc_auc > {SEARCH_THRESHOLD}"])
            times.append(_now() - t)
            found = len(hits)
    return {"seed": seed, "times": times, "found": found}


def worker_mlflow_search(workdir: Path, n: int, rounds: int) -> dict[str, Any]:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=os.environ["BENCH_MLFLOW_URI"])
    exp = client.create_experiment("bench", artifact_location=str(workdir / "mlruns"))
    client.create_registered_model("bc")
    t = _now()
    for i in range(n):
        run = client.create_run(exp)
        rid = run.info.run_id
        client.log_batch(rid, metrics=[Metric("roc_auc", _auc(i, n), 0, 0),
                                       Metric("accuracy", 0.95, 0, 0)])
        client.set_terminated(rid)
        client.create_model_version("bc", f"runs:/{rid}/model", run_id=rid)
    seed = _now() - t
    runs_t, versions_t, found = [], [], 0
    for _ in range(rounds + 1):
        t = _now()
        runs, token = [], None
        while True:
            page = client.search_runs([exp], f"metrics.roc_auc > {SEARCH_THRESHOLD}",
                                      max_results=50_000, page_token=token)
            runs += page
            token = page.token
            if not token:
                break
        t1 = _now()
        ids = [r.info.run_id for r in runs]
        versions = []
        for start in range(0, len(ids), 500):
            chunk = ", ".join(f"'{rid}'" for rid in ids[start:start + 500])
            versions += client.search_model_versions(f"run_id IN ({chunk})",
                                                     max_results=10_000)
        t2 = _now()
        runs_t.append(t1 - t)
        versions_t.append(t2 - t1)
        found = len(runs)
        assert len(versions) == found
    return {"seed": seed, "runs": runs_t, "versions": versions_t, "found": found}


# -- orchestration -------------------------------------------------------------------------------

def _run_worker(python: str, kind: str, workdir: Path, rounds: int, *, versions: int = 0,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    result = workdir / "result.json"
    cmd = [python, str(Path(__file__).resolve()), "--worker", kind, "--workdir", str(workdir),
           "--rounds", str(rounds), "--versions", str(versions), "--result", str(result)]
    with open(workdir / "log.txt", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                              env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed; see {workdir / 'log.txt'}:\n"
                         + (workdir / "log.txt").read_text()[-3000:])
    return json.loads(result.read_text())


def _run_parallel(python: str, kind: str, workdir: Path, n: int,
                  env: dict[str, str] | None = None) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    start = workdir / f"go-{kind}"
    procs = []
    for i in range(n):
        cmd = [python, str(Path(__file__).resolve()), "--worker", kind, "--workdir", str(workdir),
               "--start", str(start), "--index", str(i),
               "--result", str(workdir / f"{kind}-{i}.json")]
        log = open(workdir / f"{kind}-{i}.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                                env={**os.environ, **(env or {})})
        procs.append((proc, log))
    deadline = time.monotonic() + 900
    while (len(list(workdir.glob(f"go-{kind}.ready.*"))) < n and time.monotonic() < deadline
           and any(p.poll() is None for p, _ in procs)):
        time.sleep(0.05)
    go = time.time()
    start.touch()
    for p, log in procs:
        p.wait()
        log.close()
    results = []
    for i, (p, _) in enumerate(procs):
        path = workdir / f"{kind}-{i}.json"
        if path.exists():
            results.append(json.loads(path.read_text()))
        else:
            results.append({"ok": False, "error": f"process exited {p.returncode} with no result"})
    versions = sorted(r["version"] for r in results if r["ok"])
    errors: dict[str, int] = {}
    for r in results:
        if not r["ok"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    # from the start signal to the last process done (interpreter exit not counted)
    wall = max((r["done"] for r in results if "done" in r), default=go) - go
    return {"n": n, "ok": len(versions), "versions": versions,
            "unique_consecutive": versions == list(range(1, len(versions) + 1)),
            "errors": errors, "wall": wall}


def _median(rounds: list[dict[str, float]], step: str) -> float:
    return statistics.median(r[step] for r in rounds[1:] or rounds)


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.1f}x"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_parallel(n: int, results: dict[str, dict[str, Any]]) -> None:
    def vers(r: dict[str, Any]) -> str:
        v = r["versions"]
        if not v:
            return "none"
        return (f"{v[0]}..{v[-1]}, " + ("unique+consecutive" if r["unique_consecutive"]
                                         else "NOT unique/consecutive"))

    rows = [["", *results]]
    rows.append(["succeeded", *(f"{r['ok']}/{n}" for r in results.values())])
    rows.append(["errors", *(str(n - r["ok"]) for r in results.values())])
    rows.append(["versions", *(vers(r) for r in results.values())])
    rows.append(["start -> last done", *(_ms(r["wall"]) for r in results.values())])
    print(_table(rows))
    for name, r in results.items():
        for err, count in sorted(r["errors"].items(), key=lambda kv: -kv[1]):
            print(f"  {name} error x{count}: {err}")


def postgres_main(args: argparse.Namespace) -> int:
    """Both registries on one throwaway PostgreSQL server (see the module)."""
    sys.path.insert(0, str(REPO))
    from tests.postgres import postgres_server

    ours_py, mlflow_py = args.python, args.mlflow_python
    with postgres_server() as server, \
            tempfile.TemporaryDirectory(prefix="bench-registry-pg-") as tmp:
        root = Path(args.workdir or tmp)
        print(f"PostgreSQL on 127.0.0.1:{server.port}; ours: {ours_py}; MLflow: {mlflow_py}",
              flush=True)

        def ours_env() -> dict[str, str]:
            return {"FRAMEWORK_REGISTRY_URL": server.create_database("ours")}

        def mlflow_env() -> dict[str, str]:
            url = server.create_database("mlflow")
            return {"BENCH_MLFLOW_URI": url.replace("postgresql://", "postgresql+psycopg2://")}

        model_dir = root / "ours-par"
        model_dir.mkdir(parents=True)
        _run_worker(ours_py, "ours", root / "ours-seed", 0)  # writes model.skops
        (model_dir / "model.skops").write_bytes((root / "ours-seed" / "model.skops").read_bytes())
        par_ours = _run_parallel(ours_py, "ours-one", model_dir, args.procs, ours_env())
        par_mlflow = _run_parallel(mlflow_py, "mlflow-one", root / "mlflow-par", args.procs,
                                   mlflow_env())
        ready = mlflow_env()
        # in the run's folder: MLflow's default experiment keeps its artifacts in ./mlruns of
        # the process that creates it
        (root / "mlflow-par-ready").mkdir(parents=True, exist_ok=True)
        subprocess.run([mlflow_py, "-c", "import sys; from mlflow import MlflowClient; "
                        "MlflowClient(tracking_uri=sys.argv[1]).search_experiments()",
                        ready["BENCH_MLFLOW_URI"]], check=True, capture_output=True,
                       cwd=root / "mlflow-par-ready")
        par_ready = _run_parallel(mlflow_py, "mlflow-one", root / "mlflow-par-ready",
                                  args.procs, ready)
        print(f"\n{args.procs} processes registering at once, each side in a fresh database",
              flush=True)
        _print_parallel(args.procs, {"ours": par_ours, "MLflow": par_mlflow,
                                     "MLflow, database initialised first": par_ready})

        print(f"\nrecording {args.versions} versions on each side (for the search) ...",
              flush=True)
        ours = _run_worker(ours_py, "ours-search", root / "ours-search", args.search_rounds,
                           versions=args.versions, env=ours_env())
        theirs = _run_worker(mlflow_py, "mlflow-search", root / "mlflow-search",
                             args.search_rounds, versions=args.versions, env=mlflow_env())
    o = statistics.median(ours["times"][1:])
    r = statistics.median(theirs["runs"][1:])
    v = statistics.median(theirs["versions"][1:])
    print(f"\nsearch {args.versions} versions for roc_auc > {SEARCH_THRESHOLD} "
          f"(median of {args.search_rounds}, after a warm-up)")
    print(_table([
        ["", "found", "search", "vs ours", "seeding (for information)"],
        ["ours: Registry.search", str(ours["found"]), _ms(o), "", _ms(ours["seed"])],
        ["MLflow: search_runs", str(theirs["found"]), _ms(r), _ratio(r, o), _ms(theirs["seed"])],
        ["MLflow: + search_model_versions", str(theirs["found"]), _ms(r + v), _ratio(r + v, o),
         ""],
    ]))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (ours, MLflow tuned)")
    p.add_argument("--default-rounds", type=int, default=3,
                   help="timed rounds for MLflow's default path (about 3 s each)")
    p.add_argument("--procs", type=int, default=None,
                   help="processes for the parallel run (32; with --postgres 64)")
    p.add_argument("--python", default=sys.executable, help="interpreter for our side")
    p.add_argument("--mlflow-python", default=str(REPO / ".venv-mlflow" / "bin" / "python"))
    p.add_argument("--workdir", default=None, help="keep the stores here (default: a temp dir)")
    p.add_argument("--postgres", action="store_true",
                   help="both on a throwaway PostgreSQL server: concurrency and search")
    p.add_argument("--versions", type=int, default=10_000, help="versions to search (--postgres)")
    p.add_argument("--search-rounds", type=int, default=5, help="timed searches (--postgres)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--start", help=argparse.SUPPRESS)
    p.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        workdir = Path(args.workdir)
        if args.worker == "ours":
            data = worker_ours(workdir, args.rounds)
        elif args.worker in ("mlflow-default", "mlflow-tuned"):
            data = worker_mlflow(workdir, args.rounds, tuned=args.worker == "mlflow-tuned")
        elif args.worker == "ours-one":
            data = worker_ours_one(workdir, Path(args.start), args.index)
        elif args.worker == "mlflow-one":
            data = worker_mlflow_one(workdir, Path(args.start), args.index)
        elif args.worker == "ours-search":
            data = worker_ours_search(workdir, args.versions, args.rounds)
        elif args.worker == "mlflow-search":
            data = worker_mlflow_search(workdir, args.versions, args.rounds)
        else:
            raise SystemExit(f"unknown worker {args.worker}")
        Path(args.result).write_text(json.dumps(data))
        return 0

    if not Path(args.mlflow_python).exists():
        raise SystemExit(f"no MLflow interpreter at {args.mlflow_python}; create it with:\n"
                         "  python3 -m venv .venv-mlflow && "
                         ".venv-mlflow/bin/pip install mlflow scikit-learn skops")
    if args.procs is None:
        args.procs = 64 if args.postgres else 32
    if args.postgres:
        return postgres_main(args)
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        root = Path(args.workdir or tmp)
        print(f"ours: {args.python}\nMLflow: {args.mlflow_python}", flush=True)
        ours = _run_worker(args.python, "ours", root / "ours", args.rounds)
        tuned = _run_worker(args.mlflow_python, "mlflow-tuned", root / "mlflow-tuned",
                            args.rounds)
        default = _run_worker(args.mlflow_python, "mlflow-default", root / "mlflow-default",
                              args.default_rounds)
        par_ours = _run_parallel(args.python, "ours-one", root / "ours", args.procs)
        par_mlflow = _run_parallel(args.mlflow_python, "mlflow-one", root / "mlflow-par",
                                   args.procs)

    contenders = {"ours": ours, "tuned": tuned, "default": default}
    rows = [["step (median)", "ours", "MLflow tuned", "MLflow default", "tuned/ours",
             "default/ours"]]
    for step in STEPS:
        vals = {k: _median(c["rounds"], step) for k, c in contenders.items()}
        if step == "run":
            vals["ours"] = None
        rows.append([STEP_LABELS[step], _ms(vals["ours"]), _ms(vals["tuned"]),
                     _ms(vals["default"]), _ratio(vals["tuned"], vals["ours"]),
                     _ratio(vals["default"], vals["ours"])])
    e2e = {k: statistics.median(sum(r.values()) for r in c["rounds"][1:])
           for k, c in contenders.items()}
    first = {k: sum(c["rounds"][0].values()) for k, c in contenders.items()}
    fresh = {k: c["fresh"] for k, c in contenders.items()}
    for label, vals in (("end to end", e2e), ("end to end, first round", first),
                        ("fresh store", fresh)):
        rows.append([label, _ms(vals["ours"]), _ms(vals["tuned"]), _ms(vals["default"]),
                     _ratio(vals["tuned"], vals["ours"]), _ratio(vals["default"], vals["ours"])])
    print()
    print(f"register + alias + load, one version (median of {args.rounds} rounds; MLflow default:"
          f" {args.default_rounds}; after 1 warm-up round)")
    print(f"MLflow {tuned.get('mlflow')} SQLite backend, sklearn serialization "
          f"'{tuned.get('serialization')}'; ours: SQLite WAL + sha256 store + skops")
    print(_table(rows))

    print()
    print(f"{args.procs} processes registering at once into a store that does not exist yet")
    _print_parallel(args.procs, {"ours": par_ours, "MLflow": par_mlflow})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
