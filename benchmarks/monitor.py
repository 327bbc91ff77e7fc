"""Benchmark: data drift of a production batch against the reference, ours vs Evidently.

    python benchmarks/monitor.py [--rows 10000 1000000] [--repeat 3] [--false-alarm-batches 100] \
        [--competitor-batches 10] [--evidently-python .venv-evidently/bin/python]

The data: 30 columns, 22 numeric (normal, log-normal, uniform, skewed counts) and 8 categorical
(4 to 12 values). A drifted batch has 6 numeric columns shifted by 0.3 of their standard deviation
and 2 categoricals re-weighted; the reference and each batch have the same number of rows. Every
contender runs in its own interpreter, one per measurement, so that peak memory (``ru_maxrss``)
is that of the measurement alone (``VmHWM``):

* ours: the reference's profile is built once (what the register step stores with a version;
  timed apart, it is not part of monitoring), written to bytes and read back; the measurement
  is ``checks.data_drift`` with the default policy on the batch, read from Parquet before the
  clock starts.
* Evidently 0.7 (``Report([DataDriftPreset()])``, its defaults, which pick the test per column
  type and size as ours does): the reference and the batch are read from Parquet before the
  clock starts; a column counts as drifted when its p-value is below, or its distance at or
  above, Evidently's threshold for it.

Then the accuracy figures: false alarms over ``--false-alarm-batches`` no-drift batches of
10,000 rows (for Evidently over ``--competitor-batches``, since each takes seconds), and the
label-free accuracy estimate (CBPE) against the realized accuracy of a calibrated logistic
regression on 20 batches whose covariates shift more and more.

Evidently needs ``pandas<3``; it lives in its own venv::

    python3 -m venv .venv-evidently && .venv-evidently/bin/pip install evidently==0.7.23 pyarrow
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NUMERIC = [f"num_{i:02d}" for i in range(22)]
CATEGORICAL = [f"cat_{i}" for i in range(8)]
SHIFTED_NUMERIC = ["num_01", "num_04", "num_07", "num_10", "num_15", "num_20"]
SHIFTED_CATEGORICAL = ["cat_2", "cat_5"]
SHIFTED = SHIFTED_NUMERIC + SHIFTED_CATEGORICAL
SHIFT_SIGMA = 0.3
BATCH_ROWS = 10_000


def _levels(i: int) -> list[str]:
    return [f"v{j}" for j in range(4 + i % 9)]


def _shares(i: int, drifted: bool) -> list[float]:
    import numpy as np

    k = len(_levels(i))
    weights = 1.0 / np.arange(1, k + 1)  # a long tail, as real categories have
    if drifted:  # the commonest value loses a quarter of its share to the others
        weights = weights.copy()
        weights[0] *= 0.75
        weights[1:] *= 1.0 + 0.25 * weights[0] / 0.75 / weights[1:].sum()
    return list(weights / weights.sum())


def make(n: int, seed: int, *, drifted: bool = False) -> Any:
    """A table of ``n`` rows; drifted: the shift of the module docstring."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        kind = i % 4
        if kind == 0:
            values, std = rng.normal(10.0 * i, 1.0 + i, size=n), 1.0 + i
        elif kind == 1:
            values = rng.lognormal(0.0, 0.5, size=n)
            std = float(np.sqrt((np.exp(0.25) - 1) * np.exp(0.25)))
        elif kind == 2:
            values, std = rng.uniform(0.0, 1.0, size=n), float(np.sqrt(1 / 12))
        else:
            values = rng.negative_binomial(3, 0.05, size=n).astype(np.float64)
            std = float(np.sqrt(3 * 0.95 / 0.05 ** 2))
        if drifted and name in SHIFTED_NUMERIC:
            values = values + SHIFT_SIGMA * std
        data[name] = values
    for i, name in enumerate(CATEGORICAL):
        levels = _levels(i)
        data[name] = rng.choice(levels, p=_shares(i, drifted and name in SHIFTED_CATEGORICAL),
                                size=n)
    return pd.DataFrame(data)


def schema() -> dict[str, Any]:
    return {"type": "object", "properties": {
        **{c: {"type": "number"} for c in NUMERIC},
        **{c: {"type": "string", "enum": _levels(i)} for i, c in enumerate(CATEGORICAL)}}}


def _peak_mb() -> float:
    """This process's peak resident memory. Not ``ru_maxrss``: Linux carries that across
    fork and exec, so a worker would report its parent's peak (which held the generated data)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- workers (each runs in its own interpreter) --------------------------------------------------

def worker_profile(reference: Path, out: Path) -> dict[str, Any]:
    import pandas as pd

    from framework.monitor.profile import build

    frame = pd.read_parquet(reference)
    t = time.perf_counter()
    profile, _ = build(frame, schema=schema(), target=None)
    data = profile.to_bytes()
    seconds = time.perf_counter() - t
    out.write_bytes(data)
    return {"seconds": seconds, "bytes": len(data)}


def _our_drift(profile: Any, frame: Any) -> Any:
    from framework.monitor import checks
    from framework.monitor.checks import Observed
    from framework.monitor.policy import Policy

    return checks.data_drift(profile, Policy(), Observed(features=frame, predictions=None,
                                                         requests=len(frame)))


def worker_ours(profile_path: Path, current: Path, repeat: int) -> dict[str, Any]:
    import pandas as pd

    from framework.monitor.profile import Profile

    profile = Profile.from_bytes(profile_path.read_bytes())
    frame = pd.read_parquet(current)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = _our_drift(profile, frame)
        times.append(time.perf_counter() - t)
    return {"seconds": statistics.median(times), "drifted": result.numbers["drifted"],
            "alarm": result.alarm, "peak_mb": _peak_mb()}


def _evidently_drifted(snapshot: Any) -> list[str]:
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        value, threshold = metric["value"], config["threshold"]
        if "p_value" in config["method"]:
            hit = value < threshold
        else:
            hit = value >= threshold
        if hit:
            drifted.append(config["column"])
    return drifted


def _evidently_run(reference: Any, current: Any) -> list[str]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition))
    return _evidently_drifted(snapshot)


def worker_evidently(reference: Path, current: Path) -> dict[str, Any]:
    import pandas as pd

    ref, cur = pd.read_parquet(reference), pd.read_parquet(current)
    t = time.perf_counter()
    drifted = _evidently_run(ref, cur)
    return {"seconds": time.perf_counter() - t, "drifted": drifted, "alarm": bool(drifted),
            "peak_mb": _peak_mb()}


def worker_false_alarms(kind: str, profile_or_reference: Path, batches: int) -> dict[str, Any]:
    alarms, times = 0, []
    if kind == "ours":
        from framework.monitor.profile import Profile

        profile = Profile.from_bytes(profile_or_reference.read_bytes())
    else:
        import pandas as pd

        reference = pd.read_parquet(profile_or_reference)
    for b in range(batches):
        frame = make(BATCH_ROWS, 10_000 + b)
        t = time.perf_counter()
        if kind == "ours":
            alarm = _our_drift(profile, frame).alarm
        else:
            alarm = bool(_evidently_run(reference, frame))
        times.append(time.perf_counter() - t)
        alarms += bool(alarm)
    return {"batches": batches, "alarms": alarms, "seconds": statistics.median(times)}


def worker_cbpe(batches: int) -> dict[str, Any]:
    """Estimated against realized accuracy of a calibrated model under covariate shift."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from framework.monitor import checks
    from framework.monitor.checks import Observed
    from framework.monitor.policy import Policy
    from framework.monitor.profile import build, read_test_predictions

    features = [f"x{i}" for i in range(10)]
    coef = np.linspace(1.5, -1.0, len(features))

    def draw(n: int, rng: Any, shift: float = 0.0) -> Any:
        x = rng.normal(size=(n, len(features)))
        x[:, 0] += shift  # the strongest feature moves: rows get easier or harder to call
        x[:, 9] -= shift
        y = (rng.random(n) < 1 / (1 + np.exp(-(x @ coef - 0.3)))).astype(int)
        frame = pd.DataFrame(x, columns=features)
        frame["y"] = y
        return frame

    rng = np.random.default_rng(3)
    train, test = draw(20_000, rng), draw(5_000, rng)
    model = LogisticRegression(max_iter=1000).fit(train[features], train["y"])
    sch = {"type": "object", "properties": {**{c: {"type": "number"} for c in features},
                                            "y": {"type": "integer", "enum": [0, 1]}}}
    profile, table = build(train, schema=sch, target="y", model=model, test=test)
    tested = read_test_predictions(table)
    registered = {"accuracy": float((model.predict(test[features]) == test["y"]).mean())}
    errors = []
    for b, shift in enumerate(np.linspace(-1.5, 1.5, batches)):
        batch = draw(BATCH_ROWS, np.random.default_rng(100 + b), float(shift))
        x = batch[features]
        predicted = model.predict(x)
        observed = Observed(features=x, predictions=predicted, proba=model.predict_proba(x),
                            requests=len(x))
        result = checks.estimated_performance(profile, Policy(), observed, registered, tested)
        estimate = result.numbers["estimates"]["accuracy"]
        realized = float((predicted == batch["y"].to_numpy()).mean())
        errors.append({"shift": float(shift), "estimated": estimate["value"],
                       "low": estimate["low"], "high": estimate["high"], "realized": realized})
    return {"batches": errors, "registered": registered["accuracy"]}


# -- the parent -------------------------------------------------------------------------------

def _worker(python: str, workdir: Path, *args: str) -> dict[str, Any]:
    result = workdir / f"result-{time.monotonic_ns()}.json"
    cmd = [python, str(Path(__file__).resolve()), "--worker", *args, "--result", str(result)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker {' '.join(args)} failed:\n{proc.stdout[-2000:]}"
                         f"{proc.stderr[-4000:]}")
    return json.loads(result.read_text())


def _found(drifted: list[str]) -> str:
    hits = len(set(drifted) & set(SHIFTED))
    false = len(set(drifted) - set(SHIFTED))
    return f"{hits}/{len(SHIFTED)}" + (f" (+{false} false)" if false else "")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    p.add_argument("--repeat", type=int, default=3, help="timed runs of ours (median)")
    p.add_argument("--false-alarm-batches", type=int, default=100)
    p.add_argument("--competitor-batches", type=int, default=10)
    p.add_argument("--cbpe-batches", type=int, default=20)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--evidently-python", default=str(REPO / ".venv-evidently" / "bin" / "python"))
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        kind, *rest = args.worker
        if kind == "profile":
            out = worker_profile(Path(rest[0]), Path(rest[1]))
        elif kind == "ours":
            out = worker_ours(Path(rest[0]), Path(rest[1]), int(rest[2]))
        elif kind == "evidently":
            out = worker_evidently(Path(rest[0]), Path(rest[1]))
        elif kind == "false-alarms":
            out = worker_false_alarms(rest[0], Path(rest[1]), int(rest[2]))
        else:
            out = worker_cbpe(int(rest[0]))
        Path(args.result).write_text(json.dumps(out))
        return

    if not Path(args.evidently_python).exists():
        raise SystemExit(f"no Evidently interpreter at {args.evidently_python}; create it with:\n"
                         "  python3 -m venv .venv-evidently && "
                         ".venv-evidently/bin/pip install evidently==0.7.23 pyarrow")
    version = subprocess.run([args.evidently_python, "-c",
                              "import evidently; print(evidently.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    print(f"ours: {args.python}\nEvidently {version}: {args.evidently_python}\n"
          f"30 columns; drifted batches shift {', '.join(SHIFTED)}", flush=True)
    rows: list[list[str]] = [["rows", "contender", "time", "peak memory", "shifted found",
                              "ratio"]]
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        work = Path(tmp)
        profiles: dict[int, Path] = {}
        for n in sorted(set(args.rows) | {BATCH_ROWS}):
            ref, cur = work / f"reference-{n}.parquet", work / f"current-{n}.parquet"
            make(n, 1).to_parquet(ref)
            make(n, 2, drifted=True).to_parquet(cur)
            profiles[n] = work / f"profile-{n}.json"
            built = _worker(args.python, work, "profile", str(ref), str(profiles[n]))
            print(f"{n:>9,} rows: profile built once at registration in {built['seconds']:.2f} s"
                  f", {built['bytes'] / 1024:.0f} KiB", flush=True)
        for n in args.rows:
            ref, cur = work / f"reference-{n}.parquet", work / f"current-{n}.parquet"
            ours = _worker(args.python, work, "ours", str(profiles[n]), str(cur),
                           str(args.repeat))
            print(f"{n:>9,} rows: ours {ours['seconds']:.3f} s; Evidently …", flush=True)
            theirs = _worker(args.evidently_python, work, "evidently", str(ref), str(cur))
            ratio = theirs["seconds"] / ours["seconds"]
            rows.append([f"{n:,}", "ours", f"{ours['seconds']:.3f} s",
                         f"{ours['peak_mb']:.0f} MB", _found(ours["drifted"]),
                         f"{ratio:.0f}x faster"])
            rows.append([f"{n:,}", f"Evidently {version}", f"{theirs['seconds']:.2f} s",
                         f"{theirs['peak_mb']:.0f} MB", _found(theirs["drifted"]), ""])
        print()
        print(_table(rows))
        ref10k = work / f"reference-{BATCH_ROWS}.parquet"
        ours_fa = _worker(args.python, work, "false-alarms", "ours", str(profiles[BATCH_ROWS]),
                          str(args.false_alarm_batches))
        theirs_fa = _worker(args.evidently_python, work, "false-alarms", "evidently", str(ref10k),
                            str(args.competitor_batches))
        cbpe = _worker(args.python, work, "cbpe", str(args.cbpe_batches))
    print(f"\nno-drift batches of {BATCH_ROWS:,} rows with an alarm: ours "
          f"{ours_fa['alarms']} of {ours_fa['batches']} (median {ours_fa['seconds']:.3f} s "
          f"each); Evidently {theirs_fa['alarms']} of {theirs_fa['batches']} (median "
          f"{theirs_fa['seconds']:.2f} s each)")
    worst = max(abs(b["estimated"] - b["realized"]) for b in cbpe["batches"])
    inside = sum(b["low"] <= b["realized"] <= b["high"] for b in cbpe["batches"])
    accs = [b["realized"] for b in cbpe["batches"]]
    print(f"label-free accuracy (CBPE) over {len(accs)} shifted batches, realized "
          f"{min(accs):.3f}–{max(accs):.3f} (test set {cbpe['registered']:.3f}): largest error "
          f"{worst:.4f}; realized inside the 95% interval in {inside} of {len(accs)}")


if __name__ == "__main__":
    main()
