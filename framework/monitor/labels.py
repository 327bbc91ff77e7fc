"""``monitor label FILE``: ground truth that arrives later, joined to the log by request id.

A label file (CSV or Parquet) has a ``request_id`` column, an optional ``row`` column (the row's
position in its request, from 0; needed only for requests of several rows) and one label column
(``--column``, else the model's target, else the one other column). Labels are stored in the
registry by ``(request_id, row)``: labelling the same file twice changes nothing, a new value for
a row replaces the old one (and is counted as changed). Ids that no prediction log holds are
reported and kept: they join when their requests are logged (a server flushes once a second).
The whole file is checked before anything is stored: one bad line stores nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import UsageError
from framework.registry import Registry
from framework.registry.store import Label, utc_now

ID, ROW = "request_id", "row"


@dataclass(frozen=True)
class LabelResult:
    rows: int
    added: int
    changed: int
    unchanged: int
    column: str
    joined: int = 0  # labels whose request (and row) is in a prediction log
    unknown: list[str] = field(default_factory=list)  # request ids in no prediction log


def _read(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise UsageError(f"label file {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            if ID in frame.columns:
                frame[ID] = frame[ID].astype("string")
            return frame, 0
        return pd.read_csv(path, dtype={ID: "string"}, keep_default_na=True), 2
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"{path}: cannot read it as CSV or Parquet ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def read_labels(path: str | Path, *, column: str | None = None,
                target: str | None = None) -> tuple[list[Label], str, bool]:
    """The labels of a file, checked: ``(labels, label column, whether rows were given)``."""
    import pandas as pd

    path = Path(path)
    frame, first_line = _read(path)

    def line(i: int) -> str:
        return f"line {i + first_line}" if first_line else f"row {i}"

    if ID not in frame.columns:
        raise UsageError(f"{path}: no '{ID}' column (columns: {', '.join(map(str, frame.columns))})"
                         "; a label file has request_id[,row],<label> columns")
    others = [c for c in frame.columns if c not in (ID, ROW)]
    if column is None:
        if target is not None and target in others:
            column = target
        elif len(others) == 1:
            column = str(others[0])
        else:
            raise UsageError(f"{path}: which column holds the labels? found "
                             f"{', '.join(map(str, others)) or 'none'}; pass --column NAME")
    if column not in frame.columns:
        from framework.errors import did_you_mean

        hint = did_you_mean(column, others)
        raise UsageError(f"{path}: no label column {column!r}" + (f"; {hint}" if hint else ""))
    has_rows = ROW in frame.columns
    ids = frame[ID]
    values = frame[column]
    rows = frame[ROW] if has_rows else None
    labels: list[Label] = []
    seen: dict[tuple[str, int], tuple[int, Any]] = {}
    for i in range(len(frame)):
        rid = ids.iloc[i]
        if rid is pd.NA or rid is None or not str(rid).strip():
            raise UsageError(f"{path}, {line(i)}: the request_id is empty")
        rid = str(rid).strip()
        row = 0
        if rows is not None:
            raw = rows.iloc[i]
            try:
                row = int(raw)
                if row != raw or row < 0:
                    raise ValueError
            except (TypeError, ValueError):
                raise UsageError(f"{path}, {line(i)}: row must be a whole number of at least 0, "
                                 f"found {raw!r}") from None
        value = values.iloc[i]
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            raise UsageError(f"{path}, {line(i)}: the {column!r} label is empty")
        value = _plain(value)
        key = (rid, row)
        if key in seen:
            j, before = seen[key]
            if before != value:
                raise UsageError(f"{path}: {line(j)} and {line(i)} give request {rid} row {row} "
                                 f"two labels ({before!r}, {value!r})")
            continue
        seen[key] = (i, value)
        labels.append(Label(rid, row, value))
    return labels, str(column), has_rows


def label_file(registry: Registry, path: str | Path, *, model: str | None = None,
               column: str | None = None) -> LabelResult:
    """Check and store the labels of ``path`` (see the module docstring)."""
    from framework.serve.predlog import logged_request_ids

    target = None
    if model is not None:
        target = registry.resolve(f"{model}/latest").target
    labels, column, has_rows = read_labels(path, column=column, target=target)
    logged: dict[str, int] = {}
    for _name, rid, rows in logged_request_ids(registry.root, [model] if model else None):
        logged[rid] = max(logged.get(rid, 0), rows)
    if not has_rows:
        multi = [lab.request_id for lab in labels if logged.get(lab.request_id, 1) > 1]
        if multi:
            raise UsageError(f"{path}: request {multi[0]} has {logged[multi[0]]} rows"
                             + (f" (and {len(multi) - 1} more such requests)" if len(multi) > 1
                                else "") + "; add a 'row' column (each row's position in its "
                             "request, from 0)")
    waiting = [lab for lab in labels
               if lab.request_id not in logged or lab.row >= logged[lab.request_id]]
    written = registry.store.put_labels(labels, utc_now())
    return LabelResult(len(labels), written.added, written.changed, written.unchanged, column,
                       len(labels) - len(waiting), sorted({lab.request_id for lab in waiting}))
