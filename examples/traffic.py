"""Play production traffic against a served model: rows of the bundled data, one request each.

    python examples/traffic.py --port 8080 --rows 300
    python examples/traffic.py --port 8080 --rows 300 --shift mean_texture=1.4 \\
        --shift worst_texture=1.4 --shifted-clinic B

Each row is drawn (with a fixed seed) from ``data/raw.parquet``, gets a ``clinic`` (A, B or C:
a column the model does not take, which the server logs because the project's ``monitor:``
policy checks fairness by it) and is sent to ``/invocations`` as one request. ``--shift COL=F``
multiplies a column by F, for the rows of ``--shifted-clinic`` only (default: every row), as a
recalibrated scanner in one clinic would. The ground truth of every request goes to
``labels.csv`` (``request_id,target``), ready for ``python -m framework monitor label``. It
returns a second after the last request, once the server has flushed them to its log.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time

import numpy as np
import pandas as pd


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--rows", type=int, default=300)
    p.add_argument("--shift", action="append", default=[], metavar="COLUMN=FACTOR")
    p.add_argument("--shifted-clinic", default=None, choices=["A", "B", "C"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="data/raw.parquet")
    p.add_argument("--target", default="target")
    p.add_argument("--labels", default="labels.csv")
    args = p.parse_args()

    rng = np.random.default_rng(args.seed)
    raw = pd.read_parquet(args.data)
    rows = raw.iloc[rng.integers(0, len(raw), args.rows)].reset_index(drop=True)
    truth = rows.pop(args.target)
    clinic = rng.choice(["A", "B", "C"], size=len(rows))
    shifted = np.ones(len(rows), dtype=bool) if args.shifted_clinic is None else \
        clinic == args.shifted_clinic
    for item in args.shift:
        column, _, factor = item.partition("=")
        if column not in rows.columns:
            p.error(f"--shift {item}: no column {column!r}")
        rows.loc[shifted, column] = rows.loc[shifted, column] * float(factor)
    rows["clinic"] = clinic

    conn = http.client.HTTPConnection(args.host, args.port, timeout=30)
    ids = []
    columns = list(rows.columns)
    for values in rows.itertuples(index=False):
        body = json.dumps({"dataframe_split": {"columns": columns, "data": [list(values)]}})
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            print(f"the server answered {resp.status}", file=sys.stderr)
            return 1
        ids.append(resp.getheader("x-request-id"))
    conn.close()
    time.sleep(1.1)  # the server flushes its prediction log at least once a second
    pd.DataFrame({"request_id": ids, args.target: truth}).to_csv(args.labels, index=False)
    print(f"sent {len(ids)} requests ({int(shifted.sum()) if args.shift else 0} shifted); "
          f"their labels are in {args.labels}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
