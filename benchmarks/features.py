"""Benchmark: point-in-time joins, ``framework.features.join`` against pandas ``merge_asof``.

    python benchmarks/features.py [--feature-rows 10000000] [--entity-rows 1000000]
                                  [--skip-wide | --skip-long]

Two shapes, each joined by both engines in a fresh process, timed from start to exit, with its
peak memory (maximum resident set size of the finished child):

* **wide**, the shape of feast-dev/feast#3003 (Feast's local file store: about 30 minutes and
  50 GB): 17,000 entity rows against 1,000 features (17,000 entities with 5 timestamped rows
  each, 1,000 float columns);
* **long**: ``--feature-rows`` rows x 50 float columns (``--feature-rows / 10`` entities, 10
  rows each at random times over a year) joined onto ``--entity-rows`` entity rows (random
  entities, random times). The target: at most 10 s and 2 GB.

pandas' side is what one writes by hand: read both files, sort by time, ``merge_asof(...,
by=entity, direction="backward")``, restore the entity order, write Parquet. The two outputs are
compared cell by cell.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OURS = """
import sys
from framework.features.join import Source, point_in_time_join
entities, features, out, columns = sys.argv[1:5]
cols = tuple(f"f{j}" for j in range(int(columns)))
point_in_time_join(entities, on="entity_id", as_of="event_time",
                   sources=[Source("f@1", features, "entity_id", "ts", cols)], out=out)
"""

PANDAS = """
import sys
import pandas as pd
entities, features, out = sys.argv[1:4]
e = pd.read_parquet(entities)
f = pd.read_parquet(features)
e["__row"] = range(len(e))
joined = pd.merge_asof(e.sort_values("event_time"), f.sort_values("ts"), left_on="event_time",
                       right_on="ts", by="entity_id", direction="backward")
joined = joined.sort_values("__row").drop(columns=["__row", "ts"])
joined.to_parquet(out, index=False)
"""


def write_features(path: Path, entities: int, per_entity: int, columns: int, seed: int) -> None:
    """``entities x per_entity`` rows of ``columns`` float columns, written in chunks."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "s")
    total = entities * per_entity
    chunk = max(1, min(1_000_000, 50_000_000 // columns))
    writer = None
    for s in range(0, total, chunk):
        n = min(chunk, total - s)
        data = {"entity_id": (np.arange(s, s + n) % entities).astype(np.int64),
                "ts": start + rng.integers(0, 365 * 86400, n).astype("timedelta64[s]")}
        values = rng.random((n, columns), dtype=np.float32).astype(np.float64)
        data.update({f"f{j}": values[:, j] for j in range(columns)})
        table = pa.table(data)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=250_000)
    assert writer is not None
    writer.close()


def write_entities(path: Path, rows: int, entities: int, seed: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "s")
    pq.write_table(pa.table({
        "entity_id": rng.integers(0, entities, rows).astype(np.int64),
        "event_time": start + rng.integers(0, 365 * 86400, rows).astype("timedelta64[s]"),
        "label": rng.integers(0, 2, rows)}), path)


def timed(code: str, *args: str) -> tuple[float, float]:
    """Seconds from start to exit and peak RSS in MB of ``python -c code args``."""
    helper = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
              "p = subprocess.run([sys.executable, '-c', *sys.argv[1:]], "
              "stdout=subprocess.DEVNULL, "
              "stderr=subprocess.PIPE, text=True); took = time.perf_counter() - t; "
              "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; "
              "print(json.dumps({'rc': p.returncode, 'seconds': took, 'rss': rss, "
              "'err': p.stderr[-2000:]}))")
    proc = subprocess.run([sys.executable, "-c", helper, code, *args], capture_output=True,
                          text=True)
    data = json.loads(proc.stdout)
    if data["rc"] != 0:
        raise SystemExit(f"the join failed:\n{data['err']}")
    return data["seconds"], data["rss"]


def same(a: Path, b: Path) -> bool:
    import pyarrow.parquet as pq

    x, y = pq.read_table(a), pq.read_table(b)
    if x.num_rows != y.num_rows or set(x.schema.names) != set(y.schema.names):
        return False
    for name in x.schema.names:
        left = x.column(name).to_pandas()
        right = y.column(name).to_pandas()
        if name == "event_time":  # the same instants, in microseconds and milliseconds
            left, right = left.astype("datetime64[ns]"), right.astype("datetime64[ns]")
        if not left.equals(right):
            return False
    return True


def shape(name: str, folder: Path, entity_rows: int, entities: int, per_entity: int,
          columns: int) -> list[tuple[str, float, float]]:
    t = time.perf_counter()
    features, entity_file = folder / f"{name}-features.parquet", folder / f"{name}-entities.parquet"
    write_features(features, entities, per_entity, columns, seed=0)
    write_entities(entity_file, entity_rows, entities, seed=1)
    print(f"{name}: {entities * per_entity:,} feature rows x {columns:,} columns "
          f"({features.stat().st_size / 1e6:,.0f} MB) onto {entity_rows:,} entity rows "
          f"(written in {time.perf_counter() - t:.0f} s)", flush=True)
    ours = timed(OURS, str(entity_file), str(features), str(folder / "ours.parquet"),
                 str(columns))
    print(f"  ours done in {ours[0]:.2f} s", flush=True)
    theirs = timed(PANDAS, str(entity_file), str(features), str(folder / "pandas.parquet"))
    agree = same(folder / "ours.parquet", folder / "pandas.parquet")
    print(f"  pandas done in {theirs[0]:.2f} s; the outputs {'agree' if agree else 'DIFFER'}",
          flush=True)
    for p in (features, entity_file, folder / "ours.parquet", folder / "pandas.parquet"):
        p.unlink()
    if not agree:
        raise SystemExit("the two joins differ")
    return [(f"{name}: framework (DuckDB, two phases)", *ours),
            (f"{name}: pandas merge_asof", *theirs)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feature-rows", type=int, default=10_000_000)
    p.add_argument("--entity-rows", type=int, default=1_000_000)
    p.add_argument("--skip-wide", action="store_true", help="only the long shape")
    p.add_argument("--skip-long", action="store_true", help="only the wide shape")
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        folder = Path(tmp)
        if not args.skip_wide:
            results += shape("wide", folder, 17_000, 17_000, 5, 1_000)
        if not args.skip_long:
            results += shape("long", folder, args.entity_rows, max(1, args.feature_rows // 10),
                             10, 50)
    print(f"\npoint-in-time joins on {os.cpu_count()} cores, one run each (wall time, peak RSS)")
    width = max(len(r[0]) for r in results)
    for i in range(0, len(results), 2):
        (ours, s1, m1), (theirs, s2, m2) = results[i], results[i + 1]
        print(f"{ours:<{width}}  {s1:8.2f} s  {m1:8,.0f} MB")
        print(f"{theirs:<{width}}  {s2:8.2f} s  {m2:8,.0f} MB   ours: {s2 / s1:.1f}x faster, "
              f"{m2 / m1:.1f}x less memory")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
