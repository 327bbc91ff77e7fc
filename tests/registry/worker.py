"""A registering process for the concurrency and crash tests (run as a script, not collected).

    python worker.py REGISTRY MODEL_FILE ROC_AUC [START_FILE]

Says it is ready (``START_FILE.ready.PID``), waits until START_FILE exists (so that all
workers start together), registers MODEL_FILE with the
given roc_auc through the Python API and prints the registration as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    registry, model, roc_auc = sys.argv[1], sys.argv[2], float(sys.argv[3])
    start = sys.argv[4] if len(sys.argv) > 4 else None
    from framework.registry import open_registry, parse_gates

    gates = parse_gates([{"metric": "roc_auc", "min": 0.5},
                         {"metric": "accuracy", "max_drop_vs_champion": 0.5}])
    if start:
        open(f"{start}.ready.{os.getpid()}", "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(start) and time.monotonic() < deadline:
            time.sleep(0.002)
    with open_registry(registry) as reg:  # created here, by all workers at once
        result = reg.register("bc", model, metrics={"roc_auc": roc_auc, "accuracy": 0.9},
                              gates=gates, primary_metric="roc_auc", check_types=False,
                              tags={"pid": str(os.getpid())})
    print(json.dumps(result.receipt()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
