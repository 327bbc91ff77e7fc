"""The prediction log: every scored (and refused) request, appended to Arrow IPC segment files.

Layout, under the registry folder::

    predictions/<model>/v<version>/<UTC start time>-<pid>-<sequence>.arrow

One segment is an Arrow IPC *stream* written by one server process for one model version; a
segment is closed (and a new one opened) past ``segment_bytes``, on shutdown, and when the
process's served version changes. Each row is one input row of a request:

========================  ============================================================
``request_id``            the request's id (its ``X-Request-ID``, sent or generated)
``row``                   the row's position in its request, from 0
``time``                  when the request was answered (UTC, microseconds)
``version``               the model version that scored it
``status``                ``ok``, or ``refused`` (one row per refused request)
``error_code``            the MLflow error code of a refused request
``error_columns``         the columns a refused request broke (when known)
``alias``                 the alias whose version scored it (``--split``, ``--shadow``, or the
                          alias served)
``shadow``                true when a ``--shadow`` version scored it off the response path
``latency_ms``            the request's time in the server up to its answer (of the shadow's
                          own scoring, for a shadow row)
the input columns         as the model received them (numbers as float64)
``extra.<name>``          columns logged alongside that the model does not take (text)
``prediction``            what ``predict`` returned for the row
``proba_<j>``             a classifier's probability of ``classes[j]``
========================  ============================================================

Cost on the request path: a request only appends a reference to its decoded input and its
predictions to a buffer. A flusher thread wakes every ``flush_interval`` seconds (1 s), joins the
buffered requests of each version into one table, computes the probabilities in one batched call
(never on the request path), and appends one record batch to the version's segment with an
unbuffered write. So a SIGKILL loses at most the last second; SIGTERM (a graceful shutdown)
flushes and closes every segment, losing nothing. A reader tolerates a segment whose writer was
killed in the middle of a batch: it keeps the complete batches.

Safety: the buffer is bounded (``max_buffered_rows``); beyond it, and when the disk refuses a
write, rows are dropped and counted (``framework_serve_log_dropped_rows_total``), never the
request, never the server.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOG_DIR = "predictions"
SEGMENT_SUFFIX = ".arrow"
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_MAX_BUFFERED_ROWS = 500_000
EXTRA_PREFIX = "extra."
#: A client's ``X-Request-ID``: what proxies and tracing tools send (UUIDs, ULIDs, trace ids).
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}\Z")
#: Meta columns of every segment, before the input columns.
META_COLUMNS = ("request_id", "row", "time", "version", "status", "error_code", "error_columns",
                "alias", "shadow", "latency_ms")


def new_request_id() -> str:
    """32 random hex digits (as ``uuid4().hex`` without its cost on the request path)."""
    return os.urandom(16).hex()


def valid_request_id(value: str) -> bool:
    return bool(REQUEST_ID_RE.match(value))


def parse_sampling(text: str) -> float:
    """``off`` (0), ``all`` (1) or a share between 0 and 1 (``0.1``: one request in ten)."""
    low = str(text).strip().lower()
    if low in ("off", "none", "0"):
        return 0.0
    if low in ("all", "on", "1"):
        return 1.0
    try:
        share = float(low)
    except ValueError:
        raise ValueError(f"expected off, all or a share between 0 and 1, found {text!r}") \
            from None
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"expected a share between 0 and 1, found {text!r}")
    return share


def model_dir(root: str | os.PathLike[str], name: str) -> Path:
    return Path(root) / LOG_DIR / name


# -- writing -------------------------------------------------------------------------------------

@dataclass
class _Pending:
    """One scored request waiting for the flusher."""

    model: Any                 # the LoadedModel that scored it
    request_id: str
    when: float
    x: Any                     # the model's input (matrix or DataFrame), as scored
    predictions: Any           # what the request's method returned
    method: str
    extras: dict[str, list[Any]] | None
    rows: int
    alias: str | None = None
    shadow: bool = False
    latency_ms: float | None = None


@dataclass
class _Refused:
    model: Any
    request_id: str
    when: float
    code: str
    columns: tuple[str, ...]


@dataclass
class _Segment:
    path: Path
    file: Any
    writer: Any
    schema: Any
    size: int = 0


@dataclass
class Batch:
    """What one flush wrote for one version: handed to listeners (the live monitor)."""

    model: Any
    table: Any                 # the pyarrow Table written
    features: Any              # the input columns, as a pandas DataFrame (ok rows only)
    proba: Any                 # (rows x classes) or None
    predictions: Any           # numpy array (ok rows only)
    refused: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    accepted_requests: int = 0


class PredictionLog:
    """Buffers scored requests and appends them to segment files from a flusher thread."""

    def __init__(self, root: str | os.PathLike[str], *, sample: float = 1.0,
                 extra_columns: Sequence[str] = (),
                 flush_interval: float = DEFAULT_FLUSH_INTERVAL,
                 segment_bytes: int = DEFAULT_SEGMENT_BYTES,
                 max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS) -> None:
        self.root = Path(root)
        self.sample = float(sample)
        self.extra_columns = tuple(dict.fromkeys(str(c) for c in extra_columns))
        self.flush_interval = flush_interval
        self.segment_bytes = segment_bytes
        self.max_buffered_rows = max_buffered_rows
        self.listeners: list[Callable[[Batch], None]] = []
        self.logged_rows = 0
        self.dropped_rows = 0
        self.write_errors = 0
        self._lock = threading.Lock()
        self._pending: list[_Pending | _Refused] = []
        self._buffered = 0
        self._segments: dict[tuple[str, int], _Segment] = {}
        self._sequence = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self._last_error_log = 0.0

    @property
    def enabled(self) -> bool:
        return self.sample > 0

    def check_writable(self) -> None:
        """Create the log folder now, so an unwritable registry fails at start-up."""
        folder = self.root / LOG_DIR
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"cannot write the prediction log in {folder}")

    def sampled(self) -> bool:
        return self.sample >= 1.0 or (self.sample > 0 and random.random() < self.sample)

    def start(self) -> None:
        if self._thread is None and self.enabled:
            self._thread = threading.Thread(target=self._run, name="prediction-log",
                                            daemon=True)
            self._thread.start()

    # -- the request path (cheap) ----------------------------------------------------------------

    def record(self, model: Any, request_id: str, x: Any, predictions: Any, method: str,
               extras: dict[str, list[Any]] | None = None, *, alias: str | None = None,
               shadow: bool = False, latency_ms: float | None = None) -> None:
        rows = len(x)
        with self._lock:
            if self._buffered + rows > self.max_buffered_rows:
                self.dropped_rows += rows
                return
            self._buffered += rows
            self._pending.append(_Pending(model, request_id, time.time(), x, predictions,
                                          method, extras, rows, alias, shadow, latency_ms))

    def refused(self, model: Any, request_id: str, code: str,
                columns: Sequence[str] = ()) -> None:
        with self._lock:
            if self._buffered + 1 > self.max_buffered_rows:
                self.dropped_rows += 1
                return
            self._buffered += 1
            self._pending.append(_Refused(model, request_id, time.time(), code,
                                          tuple(str(c) for c in columns)))

    # -- the flusher -------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def flush(self) -> None:
        """Write what is buffered (one batch per version) and hand it to the listeners."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
                self._buffered = 0
            if not pending:
                return
            groups: dict[int, list[_Pending | _Refused]] = {}
            models: dict[int, Any] = {}
            for item in pending:
                key = id(item.model)
                groups.setdefault(key, []).append(item)
                models[key] = item.model
            for key, items in groups.items():
                rows = sum(i.rows if isinstance(i, _Pending) else 1 for i in items)
                try:
                    batch = self._batch(models[key], items)
                    self._write(batch)
                except Exception as exc:  # a full disk, a model that cannot score: drop, go on
                    self.dropped_rows += rows
                    self.write_errors += 1
                    now = time.monotonic()
                    if now - self._last_error_log > 60:
                        self._last_error_log = now
                        log.error("prediction log: %d row(s) dropped (%s: %s)", rows,
                                  type(exc).__name__, exc)
                    continue
                self.logged_rows += rows
                for listener in self.listeners:
                    try:
                        listener(batch)
                    except Exception:  # a listener's bug never stops the log
                        log.exception("prediction log listener failed")

    def close(self) -> None:
        """Stop the flusher, write what is left and close every segment (SIGTERM path)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()
        with self._flush_lock:
            for seg in list(self._segments.values()):
                self._close_segment(seg)
            self._segments.clear()

    # -- building a batch --------------------------------------------------------------------------

    def _batch(self, model: Any, items: list[_Pending | _Refused]) -> Batch:
        import pandas as pd
        import pyarrow as pa

        schema = segment_schema(model, self.extra_columns)
        ok = [i for i in items if isinstance(i, _Pending)]
        refused = [i for i in items if isinstance(i, _Refused)]
        parts = []
        features = pd.DataFrame()
        proba = predicted = None
        if ok:
            features = _features(model, [i.x for i in ok])
            x_all = _join_inputs(model, [i.x for i in ok])
            predicted = _predictions(model, ok, x_all)
            proba = _probabilities(model, x_all)
            parts.append(self._ok_table(schema, model, ok, features, predicted, proba))
        if refused:
            parts.append(_refused_table(schema, model, refused))
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        return Batch(model, table, features, proba, predicted,
                     [(r.code, r.columns) for r in refused], len(ok))

    def _ok_table(self, schema: Any, model: Any, ok: list[_Pending], features: Any,
                  predicted: Any, proba: Any) -> Any:
        import numpy as np
        import pyarrow as pa

        counts = np.array([i.rows for i in ok])
        n = int(counts.sum())
        arrays: dict[str, Any] = {
            "request_id": pa.array(np.repeat(np.array([i.request_id for i in ok], dtype=object),
                                             counts), type=pa.string()),
            "row": pa.array(np.concatenate([np.arange(c, dtype=np.int32) for c in counts])),
            "time": _times(np.repeat([i.when for i in ok], counts)),
            "version": pa.array(np.full(n, model.version.version, dtype=np.int32)),
            "status": pa.array(np.full(n, "ok", dtype=object), type=pa.string()),
            "error_code": pa.nulls(n, pa.string()),
            "error_columns": pa.nulls(n, pa.list_(pa.string())),
            "alias": pa.array(np.repeat(np.array([i.alias for i in ok], dtype=object), counts),
                              type=pa.string()),
            "shadow": pa.array(np.repeat(np.array([i.shadow for i in ok]), counts)),
            "latency_ms": pa.array(np.repeat(np.array(
                [np.nan if i.latency_ms is None else i.latency_ms for i in ok],
                dtype=np.float32), counts), type=pa.float32(), from_pandas=True),
        }
        for name in model_columns(model):
            field_type = schema.field(name).type
            arrays[name] = _column(features[name] if name in features else None, field_type, n)
        for name in self.extra_columns:
            values: list[Any] = []
            for i in ok:
                got = (i.extras or {}).get(name)
                values.extend(_text(v) for v in got) if got is not None else \
                    values.extend([None] * i.rows)
            arrays[EXTRA_PREFIX + name] = pa.array(values, type=pa.string())
        arrays["prediction"] = _column(predicted, schema.field("prediction").type, n)
        if proba is not None:
            for j in range(proba.shape[1]):
                if f"proba_{j}" in schema.names:
                    arrays[f"proba_{j}"] = pa.array(proba[:, j])
        return pa.Table.from_arrays([arrays.get(f.name, pa.nulls(n, f.type)) for f in schema],
                                    schema=schema)

    # -- segments --------------------------------------------------------------------------------

    def _write(self, batch: Batch) -> None:
        mv = batch.model.version
        key = (mv.name, mv.version)
        seg = self._segments.get(key)
        if seg is not None and (seg.size >= self.segment_bytes or
                                not seg.schema.equals(batch.table.schema)):
            self._close_segment(seg)
            seg = None
        if seg is None:
            seg = self._open_segment(mv.name, mv.version, batch.table.schema)
            self._segments[key] = seg
        seg.writer.write_table(batch.table)
        seg.size = seg.file.tell()

    def _open_segment(self, name: str, version: int, schema: Any) -> _Segment:
        import pyarrow as pa

        folder = model_dir(self.root, name) / f"v{version}"
        folder.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"{stamp}-{os.getpid()}-{self._sequence:04d}{SEGMENT_SUFFIX}"
        raw = open(path, "xb", buffering=0)  # unbuffered: each batch reaches the OS at once
        try:
            sink = pa.PythonFile(raw, mode="w")
            writer = pa.ipc.new_stream(sink, schema)
        except BaseException:
            raw.close()
            raise
        return _Segment(path, sink, writer, schema)

    @staticmethod
    def _close_segment(seg: _Segment) -> None:
        try:
            seg.writer.close()
        finally:
            seg.file.close()


def model_columns(model: Any) -> list[str]:
    """The input columns a version logs: its schema's, else the model's own feature names."""
    return list(model.columns or model.features or [])


def segment_schema(model: Any, extra_columns: Sequence[str]) -> Any:
    """The Arrow schema of a version's segments (stable for the version's lifetime)."""
    import pyarrow as pa

    fields = [pa.field("request_id", pa.string()), pa.field("row", pa.int32()),
              pa.field("time", pa.timestamp("us", tz="UTC")), pa.field("version", pa.int32()),
              pa.field("status", pa.string()), pa.field("error_code", pa.string()),
              pa.field("error_columns", pa.list_(pa.string())), pa.field("alias", pa.string()),
              pa.field("shadow", pa.bool_()), pa.field("latency_ms", pa.float32())]
    props = (model.schema or {}).get("properties") or {}
    for name in model_columns(model):
        fields.append(pa.field(name, _arrow_type(props.get(name))))
    for name in extra_columns:
        fields.append(pa.field(EXTRA_PREFIX + name, pa.string()))
    fields.append(pa.field("prediction", _prediction_type(model)))
    for j in range(len(model.classes or ()) if "predict_proba" in model.methods else 0):
        fields.append(pa.field(f"proba_{j}", pa.float64()))
    return pa.schema(fields)


def _arrow_type(sub: Any) -> Any:
    """float64 for a number column, bool for a boolean one, text for everything else."""
    import pyarrow as pa

    types: set[str] = set()
    if isinstance(sub, dict):
        t = sub.get("type")
        types = {t} if isinstance(t, str) else set(t or ())
        types.discard("null")
    if types and types <= {"number", "integer"}:
        return pa.float64()
    if types == {"boolean"}:
        return pa.bool_()
    return pa.string()


def _prediction_type(model: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    classes = model.classes
    if classes is None:
        return pa.float64()
    kinds = {np.asarray(classes).dtype.kind}
    if kinds <= {"i", "u"}:
        return pa.int64()
    if kinds <= {"b"}:
        return pa.bool_()
    if kinds <= {"f"}:
        return pa.float64()
    return pa.string()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _times(seconds: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    micros = (np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)
    return pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _column(values: Any, field_type: Any, n: int) -> Any:
    """``values`` (a Series or array of ``n``) as an Arrow array of ``field_type``; anything a
    text column receives that is not text is written as JSON."""
    import json

    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if values is None:
        return pa.nulls(n, field_type)
    if pa.types.is_floating(field_type):
        if isinstance(values, pd.Series):
            values = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64,
                                                                     na_value=np.nan)
        return pa.array(np.asarray(values, dtype=np.float64), type=field_type, from_pandas=True)
    if pa.types.is_string(field_type):
        out = []
        for v in (values.tolist() if hasattr(values, "tolist") else list(values)):
            if v is None or (isinstance(v, float) and v != v):
                out.append(None)
            elif isinstance(v, str):
                out.append(v)
            else:
                out.append(json.dumps(v, default=str))
        return pa.array(out, type=field_type)
    return pa.array(values.tolist() if hasattr(values, "tolist") else list(values),
                    type=field_type, from_pandas=True)


def _refused_table(schema: Any, model: Any, refused: list[_Refused]) -> Any:
    import pyarrow as pa

    n = len(refused)
    arrays = {
        "request_id": pa.array([r.request_id for r in refused], type=pa.string()),
        "row": pa.array([0] * n, type=pa.int32()),
        "time": _times([r.when for r in refused]),
        "version": pa.array([model.version.version] * n, type=pa.int32()),
        "status": pa.array(["refused"] * n, type=pa.string()),
        "error_code": pa.array([r.code for r in refused], type=pa.string()),
        "error_columns": pa.array([list(r.columns) for r in refused],
                                  type=pa.list_(pa.string())),
    }
    return pa.Table.from_arrays([arrays.get(f.name, pa.nulls(n, f.type)) for f in schema],
                                schema=schema)


def _features(model: Any, inputs: list[Any]) -> Any:
    """The input columns of the requests, as one DataFrame with the version's column names."""
    import numpy as np
    import pandas as pd

    names = model_columns(model)
    frames = []
    matrices = []
    for x in inputs:
        if isinstance(x, pd.DataFrame):
            if matrices:
                frames.append(_matrix_frame(model, np.vstack(matrices)))
                matrices = []
            frames.append(x)
        else:
            matrices.append(np.asarray(x))
    if matrices:
        frames.append(_matrix_frame(model, np.vstack(matrices)))
    joined = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return joined.reindex(columns=names) if list(joined.columns) != names else joined


def _matrix_frame(model: Any, x: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(x, columns=matrix_columns(model, x.shape[1]))


def matrix_columns(model: Any, width: int) -> list[str]:
    """The column names of a matrix the server scored: the fast path's order (the model's), or
    the schema's for a model fitted on arrays."""
    if model.plan is not None and len(model.plan.columns) == width:
        return list(model.plan.columns)
    if model.columns is not None and len(model.columns) == width:
        return list(model.columns)
    return list(model.features or [])


def _join_inputs(model: Any, inputs: list[Any]) -> Any:
    """All requests' inputs as one input the estimator takes."""
    import numpy as np
    import pandas as pd

    if all(not isinstance(x, pd.DataFrame) for x in inputs):
        return np.vstack([np.asarray(x) for x in inputs]) if len(inputs) > 1 else inputs[0]
    frames = [x if isinstance(x, pd.DataFrame) else _matrix_frame(model, np.asarray(x))
              for x in inputs]
    joined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if model.features is not None:
        joined = joined.loc[:, model.features]
    return joined.to_numpy() if model.array_input else joined


def _predictions(model: Any, items: list[_Pending], x_all: Any) -> Any:
    import numpy as np

    if all(i.method == "predict" for i in items):
        parts = [np.asarray(i.predictions).reshape(i.rows, -1)[:, 0] if np.ndim(i.predictions)
                 > 1 else np.asarray(i.predictions) for i in items]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
    return np.asarray(model.estimator.predict(x_all))


def _probabilities(model: Any, x_all: Any) -> Any:
    import numpy as np

    if "predict_proba" not in model.methods or not model.classes:
        return None
    return np.asarray(model.estimator.predict_proba(x_all), dtype=np.float64)


# -- reading -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    path: Path
    version: int
    mtime: float


def segments(root: str | os.PathLike[str], name: str,
             version: int | None = None) -> list[Segment]:
    """The segment files of model ``name`` (of one version), oldest first."""
    base = model_dir(root, name)
    if not base.is_dir():
        return []
    found = []
    for folder in base.iterdir():
        if not folder.is_dir() or not re.fullmatch(r"v\d+", folder.name):
            continue
        v = int(folder.name[1:])
        if version is not None and v != version:
            continue
        for path in folder.glob(f"*{SEGMENT_SUFFIX}"):
            try:
                found.append(Segment(path, v, path.stat().st_mtime))
            except FileNotFoundError:  # removed meanwhile
                continue
    return sorted(found, key=lambda s: (s.path.name, s.version))


def read_segment(path: str | os.PathLike[str]) -> Any:
    """The complete record batches of a segment, as a pyarrow Table (None if it holds none):
    a segment being written, or whose writer was killed mid-batch, gives what was flushed."""
    import pyarrow as pa

    batches = []
    schema = None
    try:
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_stream(source)
            schema = reader.schema
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
                except (pa.ArrowInvalid, OSError):  # a truncated last batch
                    break
    except (pa.ArrowInvalid, OSError):  # not even a complete schema message yet
        return None
    if schema is None:
        return None
    return pa.Table.from_batches(batches, schema=schema)


def read_log(root: str | os.PathLike[str], name: str, *, version: int | None = None,
             since: float | None = None, last: int | None = None) -> Any:
    """The logged rows of ``name`` (of one ``version``): those at or after ``since`` (Unix time),
    then the latest ``last`` of them; a pyarrow Table sorted by time, or None when nothing is
    logged. Only the segments that can hold those rows are read."""
    import pyarrow as pa
    import pyarrow.compute as pc

    segs = sorted(segments(root, name, version), key=lambda s: s.mtime, reverse=True)
    if since is not None:
        segs = [s for s in segs if s.mtime >= since]  # a segment's last write is its mtime
    tables = []
    for i, seg in enumerate(segs):  # the most recently written first
        table = read_segment(seg.path)
        if table is None or not table.num_rows:
            continue
        tables.append(table)
        if last is not None and i + 1 < len(segs):
            # rows newer than anything the older segments hold: enough of them, stop reading
            older = pa.scalar(int(segs[i + 1].mtime * 1e6), type=pa.int64()).cast(
                pa.timestamp("us", tz="UTC"))
            newer = sum(pc.sum(pc.greater(t["time"], older)).as_py() or 0 for t in tables)
            if newer >= last:
                break
    if not tables:
        return None
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 \
        else tables[0]
    if since is not None:
        bound = pa.scalar(int(since * 1e6), type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        table = table.filter(pc.greater_equal(table["time"], bound))
    order = pc.sort_indices(table, sort_keys=[("time", "ascending"), ("request_id", "ascending"),
                                              ("row", "ascending")])
    table = table.take(order)
    if last is not None and table.num_rows > last:
        table = table.slice(table.num_rows - last)
    return table if table.num_rows else None


def logged_request_ids(root: str | os.PathLike[str], names: Sequence[str] | None = None
                       ) -> Iterator[tuple[str, str, int]]:
    """``(model, request_id, rows)`` of every logged request (of ``names``, default all)."""
    import pyarrow.compute as pc

    base = Path(root) / LOG_DIR
    if not base.is_dir():
        return
    for folder in sorted(base.iterdir()):
        if not folder.is_dir() or (names is not None and folder.name not in names):
            continue
        for seg in segments(root, folder.name):
            table = read_segment(seg.path)
            if table is None or not table.num_rows:
                continue
            ok = table.filter(pc.equal(table["status"], "ok"))
            counts = ok.group_by("request_id").aggregate([("row", "count")])
            for rid, n in zip(counts["request_id"].to_pylist(),
                              counts["row_count"].to_pylist()):
                yield folder.name, rid, int(n)
