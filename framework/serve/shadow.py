"""``serve --shadow``: every answered request scored again by another version, off the answer.

The request path only appends the parsed request to a bounded queue (beyond ``backlog_rows``
rows waiting, the request is not shadowed, and is counted). A thread of its own wakes when the
queue is not empty, lets ``linger`` seconds of requests gather, and scores them in batches: the
requests that name the same columns with the same method become one table, decoded, checked and
predicted in one call. A prediction costs scikit-learn about a millisecond of validation
whatever its size, so batching keeps the shadow's share of the CPU (and of the GIL the answers
need) small. A batch that fails is scored again request by request, so one request the shadow
refuses does not cost the others their shadow predictions. Failures are counted, never seen by
a client. Each shadow prediction is logged under its own request id with ``shadow`` true.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from framework.serve import protocol

log = logging.getLogger(__name__)

DEFAULT_LINGER = 0.02
MAX_BATCH_ROWS = 4096


@dataclass
class _Item:
    table: protocol.Table
    method: str
    request_id: str
    extras: dict[str, list[Any]] | None
    logged: bool
    rows: int


class ShadowScorer:
    def __init__(self, shadow: Any, predlog: Any, traffic: Any, *, backlog_rows: int,
                 linger: float = DEFAULT_LINGER) -> None:
        self.shadow = shadow
        self.predlog = predlog
        self.traffic = traffic
        self.backlog_rows = backlog_rows
        self.linger = linger
        self._queue: deque[_Item] = deque()
        self._rows = 0
        self._wake = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def submit(self, table: protocol.Table, method: str, request_id: str,
               extras: dict[str, list[Any]] | None, logged: bool) -> None:
        """Queue one answered request (the event loop; never blocks on the shadow)."""
        rows = table.n_rows
        with self._wake:
            if self._stop or self._rows + rows > self.backlog_rows:
                with self.traffic.lock:
                    self.traffic.shadow_dropped += 1
                return
            self._queue.append(_Item(table, method, request_id, extras, logged, rows))
            self._rows += rows
            if len(self._queue) == 1:
                self._wake.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Score what is queued, then stop."""
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(timeout)

    # -- the shadow's thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stop:
                    self._wake.wait()
                if not self._queue and self._stop:
                    return
                stopping = self._stop
            if not stopping:
                time.sleep(self.linger)  # let a batch gather (holding nothing)
            with self._wake:
                items = list(self._queue)
                self._queue.clear()
                self._rows = 0
            try:
                self._score(items)
            except Exception:  # the shadow never takes the server down
                log.exception("the shadow could not score a batch")
                self._count(failed=len(items))

    def _count(self, *, scored: int = 0, failed: int = 0) -> None:
        with self.traffic.lock:
            self.traffic.shadow_scored += scored
            self.traffic.shadow_failed += failed

    def _score(self, items: list[_Item]) -> None:
        model = self.shadow.current
        groups: dict[Any, list[_Item]] = {}
        for item in items:
            t = item.table
            key = (item.method, tuple(map(str, t.columns))) if t.rows is not None and \
                t.columns is not None else id(item)
            groups.setdefault(key, []).append(item)
        for group in groups.values():
            chunk: list[_Item] = []
            rows = 0
            for item in group:
                if chunk and rows + item.rows > MAX_BATCH_ROWS:
                    self._score_chunk(model, chunk)
                    chunk, rows = [], 0
                chunk.append(item)
                rows += item.rows
            if chunk:
                self._score_chunk(model, chunk)

    def _score_chunk(self, model: Any, chunk: list[_Item]) -> None:
        from framework.serve.app import score

        started = time.perf_counter()
        if len(chunk) == 1:
            table = chunk[0].table
        else:
            first = chunk[0].table
            table = protocol.Table(columns=first.columns,
                                   rows=[r for item in chunk for r in item.table.rows or ()],
                                   params=first.params, source=first.source)
        try:
            x, predictions = score(model, table, chunk[0].method)
        except Exception as exc:
            if len(chunk) > 1:  # find the request that failed; score the others
                for item in chunk:
                    self._score_chunk(model, [item])
                return
            self._count(failed=1)
            log.debug("shadow %s could not score request %s: %s", model.tag,
                      chunk[0].request_id, exc)
            return
        each_ms = (time.perf_counter() - started) * 1000 / len(chunk)
        offset = 0
        for item in chunk:
            end = offset + item.rows
            if item.logged:
                part_x = x.iloc[offset:end] if hasattr(x, "iloc") else x[offset:end]
                self.predlog.record(model, item.request_id, part_x, predictions[offset:end],
                                    item.method, item.extras, alias=self.shadow.alias,
                                    shadow=True, latency_ms=each_ms)
            offset = end
        self._count(scored=len(chunk))
