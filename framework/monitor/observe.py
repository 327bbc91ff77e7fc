"""The observed window: rows from the prediction log (joined with their labels), or a batch.

From the log, the window is the rows the version scored (and the requests it refused) within
the policy's window (``--last``, ``--since``). A batch (``--data FILE``) is scored here by the
version itself: its rows that break the input schema are counted as refused and left out, like
a server would refuse them; a target column, when present, gives the labels, and the columns the
policy logs alongside (fairness groups) are kept.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import UsageError
from framework.monitor.checks import Observed
from framework.monitor.policy import Policy
from framework.registry import ModelVersion, Registry

SCHEMA_CODE = "INVALID_PARAMETER_VALUE"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def from_log(registry: Registry, mv: ModelVersion, policy: Policy) -> Observed:
    """The version's logged rows within the policy's window, with their labels."""
    import pyarrow.compute as pc

    from framework.serve.predlog import EXTRA_PREFIX, META_COLUMNS, read_log

    window = policy.window
    since = time.time() - window.since if window.since is not None else None
    table = read_log(registry.root, mv.name, version=mv.version, since=since, last=window.last)
    if table is None:
        import pandas as pd

        return Observed(features=pd.DataFrame(), predictions=np.empty(0), requests=0)
    ok = table.filter(pc.equal(table["status"], "ok"))
    refused = table.filter(pc.equal(table["status"], "refused"))
    names = table.schema.names
    feature_names = [n for n in names if n not in META_COLUMNS and not n.startswith(EXTRA_PREFIX)
                     and n != "prediction" and not n.startswith("proba_")]
    features = ok.select(feature_names).to_pandas()
    predictions = ok["prediction"].to_numpy(zero_copy_only=False)
    proba_names = sorted((n for n in names if n.startswith("proba_")),
                         key=lambda n: int(n.split("_", 1)[1]))
    proba = None
    if proba_names:
        proba = np.column_stack([ok[n].to_numpy(zero_copy_only=False).astype(np.float64)
                                 for n in proba_names])
        if np.isnan(proba).any():
            proba = None
    ids = ok["request_id"].to_pylist()
    rows = ok["row"].to_pylist()
    found = registry.store.get_labels(list(zip(ids, rows)))
    labels = np.array([found.get(k) for k in zip(ids, rows)], dtype=object)
    groups = {n[len(EXTRA_PREFIX):]: ok[n].to_numpy(zero_copy_only=False)
              for n in names if n.startswith(EXTRA_PREFIX)}
    requests = len(set(ids)) + refused.num_rows
    codes = refused["error_code"].to_pylist()
    cols = refused["error_columns"].to_pylist()
    times = table["time"]
    return Observed(features=features, predictions=predictions, proba=proba, labels=labels,
                    groups=groups, requests=requests,
                    refused=[(c or "", tuple(x or ())) for c, x in zip(codes, cols)],
                    start=_iso(pc.min(times).as_py()), end=_iso(pc.max(times).as_py()),
                    source="prediction log")




def read_batch(path: str, mv: ModelVersion) -> Any:
    """A batch file (Parquet, CSV or JSON lines) as a DataFrame; a user error names the file."""
    from framework import io
    from framework.schema import number_columns

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--data {path}: no such file")
    try:
        if p.suffix.lower() == ".csv":
            return io.read_table(p, numbers=number_columns(mv.input_schema or {}))
        if p.suffix.lower() in (".parquet", ".pq"):
            return io.read_table(p)
        if p.suffix.lower() in (".jsonl", ".ndjson"):
            import pandas as pd

            return pd.read_json(p, lines=True)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"--data {path}: cannot read it ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None
    raise UsageError(f"--data {path}: expected a .parquet, .csv or .jsonl file")


def from_batch(registry: Registry, mv: ModelVersion, frame: Any, policy: Policy, *,
               trusted: Any = None) -> Observed:
    """A batch scored by the version: rows that break its input schema are refused."""
    import pandas as pd

    from framework.schema import compile_schema, conform

    schema = mv.serving_schema()
    target = mv.target
    labels = None
    if target and target in frame.columns:
        labels = frame[target].to_numpy(dtype=object)
    groups = {name: frame[name].to_numpy(dtype=object) for name in policy.logged_columns()
              if name in frame.columns}
    n = len(frame)
    model = registry.load(mv, trusted=trusted)
    names = getattr(model, "feature_names_in_", None)
    wanted = [str(c) for c in (names if names is not None else
                               (schema or {}).get("properties") or frame.columns)]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:  # not one row could be scored: the wrong file, not a schema violation
        raise UsageError(f"the batch lacks column(s) {', '.join(missing[:10])}"
                         + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
                         + f" that {mv.name} v{mv.version} takes")
    refused: list[tuple[str, tuple[str, ...]]] = []
    good = np.ones(n, dtype=bool)
    features = frame
    if schema:
        compiled = compile_schema(schema, source=f"{mv.name} v{mv.version} input schema",
                                  checked=True)
        inputs = frame[[c for c in frame.columns if c in compiled.properties]]
        failing = compiled.failing_rows(inputs)
        by_row: dict[int, list[str]] = {}
        for (column, _rule), rows in failing.items():
            for r in rows.tolist():
                by_row.setdefault(int(r), []).append(str(column) if column else "(row)")
        for r, columns in sorted(by_row.items()):
            good[r] = False
            refused.append((SCHEMA_CODE, tuple(dict.fromkeys(columns))))
        features = conform(inputs[good].reset_index(drop=True), compiled, what="batch") \
            if good.any() else inputs.iloc[:0]
    predictions = np.empty(0)
    proba = None
    if len(features):
        from framework.monitor.profile import model_scores

        predictions, proba = model_scores(model, features[wanted])
    return Observed(
        features=features.reset_index(drop=True) if isinstance(features, pd.DataFrame)
        else features,
        predictions=predictions, proba=proba,
        labels=None if labels is None else labels[good],
        groups={k: v[good] for k, v in groups.items()}, requests=n, refused=refused,
        start=None, end=datetime.now(UTC).isoformat(timespec="seconds"), source="batch")


def labelled_rows(registry: Registry, name: str, *, target: str) -> Any:
    """Every labelled row of model ``name``'s prediction log, over all its versions: the input
    columns and the label as ``target``, oldest first, one row per ``(request_id, row)`` (the
    latest logged); the feedback table of a retrain."""
    import pandas as pd
    import pyarrow.compute as pc

    from framework.serve.predlog import EXTRA_PREFIX, META_COLUMNS, read_log

    table = read_log(registry.root, name)
    if table is None:
        return pd.DataFrame()
    ok = table.filter(pc.equal(table["status"], "ok"))
    frame = ok.to_pandas()
    if "shadow" in frame.columns:  # a shadow's rows repeat requests another version answered
        frame = frame[frame["shadow"] != True]  # noqa: E712 - null (older segments) is not shadow
    frame = frame.drop_duplicates(subset=["request_id", "row"], keep="last")
    keys = list(zip(frame["request_id"].tolist(), frame["row"].tolist()))
    found = registry.store.get_labels(keys)
    mask = np.array([k in found for k in keys], dtype=bool)
    frame = frame[mask].copy()
    frame[target] = [found[k] for k, m in zip(keys, mask) if m]
    keep = [c for c in frame.columns if c not in META_COLUMNS and not c.startswith(EXTRA_PREFIX)
            and c != "prediction" and not c.startswith("proba_")]
    # the columns logged alongside (a fairness policy's group, say) come back under their own
    # names, so that a retrain's feedback rows carry them as the pipeline's tables do
    extras = {c: c[len(EXTRA_PREFIX):] for c in frame.columns if c.startswith(EXTRA_PREFIX)
              and c[len(EXTRA_PREFIX):] not in keep}
    out = frame[keep + list(extras)].rename(columns=extras).reset_index(drop=True)
    return out

