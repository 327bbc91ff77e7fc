"""What one server will do for its clients, and no more: the defaults live here, once.

Every bound has a flag of ``serve`` and a field of :class:`Limits`:

* ``max_body_bytes``: the largest body read (413 beyond, from Content-Length or while reading);
* ``max_cells``: rows x columns of one request (413 beyond), checked before any value is decoded;
* ``max_concurrency``: ``/invocations`` requests in flight (503 with ``Retry-After`` beyond);
  ``/ping``, ``/health`` and the other routes are never refused by it;
* ``threads``: scoring threads; a large request (body over :data:`INLINE_BODY_BYTES`, over
  :data:`INLINE_CELLS` cells or :data:`INLINE_COLUMNS` columns) and every CSV or Parquet body is
  decoded and scored there, at most this many at once, and waits for a thread before its body is
  read, so memory is bounded by the number of threads, not of clients; small JSON requests are
  scored on the event loop, which is faster than a thread hop;
* ``header_timeout``: seconds from a connection's first byte (or the end of its previous response)
  to the end of the request's headers; ``body_timeout``: seconds to receive the whole body once
  the headers are in. A connection that stalls is closed; a body shorter than its Content-Length
  is answered 400 when its time is up;
* ``max_connections``: open connections (beyond, uvicorn answers 503 and closes), so a flood of
  idle sockets cannot exhaust the process's file descriptors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_POLL_INTERVAL = 1.0

#: Bodies up to this size are read and decoded on the event loop.
INLINE_BODY_BYTES = 256 * 1024
#: JSON requests up to this many cells, and this many columns, are checked and scored on the
#: event loop (decoding costs a few microseconds a column, scoring a fraction of one a cell).
INLINE_CELLS = 20_000
INLINE_COLUMNS = 256


def _default_threads() -> int:
    return max(2, min(8, os.cpu_count() or 2))


@dataclass(frozen=True)
class Limits:
    """The bounds of one server (see the module docstring)."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_cells: int = 1_000_000
    max_concurrency: int = 32
    threads: int = 0  # 0: one per core, at least 2 and at most 8
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1024

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_cells", "max_concurrency", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, found {getattr(self, name)}")
        for name in ("header_timeout", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, found {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (automatic) or more, found {self.threads}")
        if self.threads == 0:
            object.__setattr__(self, "threads", _default_threads())
