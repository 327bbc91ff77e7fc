"""Schema checks on a 1,000,000 x 10 table: this engine vs. the references, in the same run.

    python benchmarks/schema_validation.py [--rows N] [--repeat R]

The table has 6 float columns in [0, 1], 2 int columns, 1 categorical string column and 1 float
column with ~10% missing values; the schema bounds every column, requires all of them and
forbids others. Every method checks the same rules and must find the table valid.

* jsonschema / fastjsonschema validate row dicts one at a time, on a subset of rows (the rate is
  extrapolated to the full table; building the row dicts is not timed, which favours them);
* pandera runs the equivalent column checks (``DataFrameSchema.validate``, lazy);
* "numpy by hand" is the same checks written directly on the column arrays, once as element
  comparisons (``((x < 0) | (x > 1)).any()``) and once through ``x.min()``/``x.max()``;
* this engine is timed with the schema already compiled (as on a stage boundary or a served
  request, where the compiled schema is reused) and with compiling included (cache cleared).

Rates are rows per second, best of ``--repeat`` runs; the ratio column is our compiled engine's
time divided into each method's time (so 40x means the method is 40 times slower than ours).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon"]


def build_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"f{i}": rng.random(n) for i in range(6)}
    data["i0"] = rng.integers(0, 101, n)
    data["i1"] = rng.integers(0, 1_000_000, n)
    data["cat"] = pd.Categorical.from_codes(rng.integers(0, len(CATEGORIES), n), CATEGORIES)
    nf = rng.normal(0, 1, n).clip(-5, 5)
    nf[rng.random(n) < 0.1] = np.nan
    data["nf"] = nf
    return pd.DataFrame(data)


def build_schema() -> dict:
    props: dict = {f"f{i}": {"type": "number", "minimum": 0, "maximum": 1} for i in range(6)}
    props["i0"] = {"type": "integer", "minimum": 0, "maximum": 100}
    props["i1"] = {"type": "integer", "minimum": 0}
    props["cat"] = {"type": "string", "enum": CATEGORIES}
    props["nf"] = {"type": ["number", "null"], "minimum": -5, "maximum": 5}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": props, "required": list(props), "additionalProperties": False}


def records(df: pd.DataFrame) -> list[dict]:
    rows = df.astype(object).where(df.notna(), None).to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows]


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def numpy_by_hand(df: pd.DataFrame) -> bool:
    ok = True
    for i in range(6):
        x = df[f"f{i}"].to_numpy()
        ok &= not np.isnan(x).any() and not ((x < 0) | (x > 1)).any()
    i0, i1 = df["i0"].to_numpy(), df["i1"].to_numpy()
    ok &= not ((i0 < 0) | (i0 > 100)).any() and not (i1 < 0).any()
    cat = df["cat"]
    ok &= set(cat.cat.categories) <= set(CATEGORIES) and not (cat.cat.codes.to_numpy() < 0).any()
    nf = df["nf"].to_numpy()
    ok &= not ((nf < -5) | (nf > 5)).any()
    ok &= list(df.columns) == list(build_schema()["properties"])
    return bool(ok)


def numpy_by_hand_extremes(df: pd.DataFrame) -> bool:
    """The same checks through min/max reductions (no boolean temporaries)."""
    ok = True
    for i in range(6):
        x = df[f"f{i}"].to_numpy()
        lo, hi = x.min(), x.max()  # NaN propagates: a NaN fails both tests
        ok &= bool(lo >= 0) and bool(hi <= 1)
    i0, i1 = df["i0"].to_numpy(), df["i1"].to_numpy()
    ok &= i0.min() >= 0 and i0.max() <= 100 and i1.min() >= 0
    cat = df["cat"]
    ok &= set(cat.cat.categories) <= set(CATEGORIES) and cat.cat.codes.to_numpy().min() >= 0
    nf = df["nf"].to_numpy()
    ok &= not ((nf < -5) | (nf > 5)).any()
    ok &= list(df.columns) == list(build_schema()["properties"])
    return bool(ok)


def pandera_schema():
    import pandera.pandas as pa

    cols = {f"f{i}": pa.Column(float, [pa.Check.ge(0), pa.Check.le(1)]) for i in range(6)}
    cols["i0"] = pa.Column(int, [pa.Check.ge(0), pa.Check.le(100)])
    cols["i1"] = pa.Column(int, pa.Check.ge(0))
    cols["cat"] = pa.Column(pd.CategoricalDtype(CATEGORIES), pa.Check.isin(CATEGORIES))
    cols["nf"] = pa.Column(float, [pa.Check.ge(-5), pa.Check.le(5)], nullable=True)
    return pa.DataFrameSchema(cols, strict=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--subset", type=int, default=100_000,
                        help="rows validated one by one by jsonschema / fastjsonschema")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import fastjsonschema
    import jsonschema

    import framework.schema as fs

    n = args.rows
    df = build_table(n)
    schema = build_schema()
    subset = records(df.iloc[: min(args.subset, n)])
    m = len(subset)
    results: list[tuple[str, float, str]] = []  # (method, seconds for the full table, note)

    validator = jsonschema.Draft202012Validator(schema)
    assert all(validator.is_valid(r) for r in subset[:1000])
    t = best(lambda: [validator.is_valid(r) for r in subset], 1)
    results.append(("jsonschema, row by row", t * n / m, f"{m:,} rows, extrapolated"))

    fast = fastjsonschema.compile(schema)

    def run_fast() -> None:
        for r in subset:
            fast(r)

    t = best(run_fast, max(1, args.repeat // 2))
    results.append(("fastjsonschema, row by row", t * n / m, f"{m:,} rows, extrapolated"))

    pa_schema = pandera_schema()
    pa_schema.validate(df, lazy=True)
    results.append(("pandera (same checks)", best(lambda: pa_schema.validate(df, lazy=True),
                                                  args.repeat), "full table"))

    assert numpy_by_hand(df)
    results.append(("numpy by hand (comparisons)", best(lambda: numpy_by_hand(df), args.repeat),
                    "full table"))
    assert numpy_by_hand_extremes(df)
    results.append(("numpy by hand (min/max)", best(lambda: numpy_by_hand_extremes(df),
                                                    args.repeat), "full table"))

    compiled = fs.compile_schema(schema)
    assert compiled.check(df).ok
    ours = best(lambda: compiled.check(df), args.repeat)
    results.append(("framework.schema (compiled)", ours, "full table"))

    def compile_and_check() -> None:
        fs._CACHE.clear()
        fs.check_table(df, schema)

    results.append(("framework.schema (+ compile)", best(compile_and_check, args.repeat),
                    "full table, compile included"))

    import platform
    from importlib.metadata import version

    libs = ", ".join(f"{p} {version(p)}" for p in ("numpy", "pandas", "jsonschema",
                                                    "fastjsonschema", "pandera"))
    print(f"python {platform.python_version()}, {libs}")
    print(f"{n:,} rows x {df.shape[1]} columns; best of {args.repeat} runs "
          f"(row-by-row methods: 1 run on {m:,} rows)")
    header = ("method", "rows/s", "time (s)", "vs ours", "measured on")
    table = [header] + [
        (name, f"{n / t:,.0f}", f"{t:.4f}", f"{t / ours:.1f}x", note)
        for name, t, note in results
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) if j in (0, 4) else cell.rjust(w)
                        for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("vs ours: the method's time / framework.schema (compiled) time; row-by-row times "
          "exclude building the row dicts")


if __name__ == "__main__":
    main()
