"""uvicorn's HTTP/1.1 protocol with read deadlines, so a slow or silent client cannot hold a
connection open.

uvicorn arms its keep-alive timer only after a response, and every byte received disarms it: a
connection that never sends anything, or sends its headers one byte every few seconds, or sends a
body shorter than its ``Content-Length``, stays open for ever. This protocol adds two deadlines,
absolute (never extended by the bytes that trickle in):

* the request's headers must be complete ``header_timeout`` seconds after the connection opened
  (or after the previous response on a kept-alive connection); if they are not, a partial request
  gets ``408 Request Timeout`` and the connection is closed;
* its body must be complete ``body_timeout`` seconds after the headers. ``/invocations`` reads
  its body under the same timeout and answers 400 when it expires; this deadline, a second later,
  closes what nobody reads (a body sent after a response, a body to another route).

The deadlines come from attributes the serve command sets on uvicorn's ``Config``
(:func:`configure`), so they reach every worker process with it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from framework.serve.limits import Limits

log = logging.getLogger("framework.serve")

#: The app answers an incomplete body first; the connection is closed this much later.
_BODY_GRACE = 1.0
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                     b"connection: close\r\ncontent-length: %d\r\n\r\n%s")


def configure(config: Any, limits: Limits) -> None:
    """Use this protocol in a uvicorn ``Config``, with the deadlines of ``limits``."""
    config.http = GuardedH11Protocol
    config.framework_header_timeout = limits.header_timeout
    config.framework_body_timeout = limits.body_timeout


class GuardedH11Protocol(H11Protocol):
    """:class:`uvicorn.protocols.http.h11_impl.H11Protocol` with header and body deadlines."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._header_timeout = float(getattr(config, "framework_header_timeout",
                                             Limits.header_timeout))
        self._body_timeout = float(getattr(config, "framework_body_timeout", Limits.body_timeout))
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # "headers" or "body": what the armed deadline waits for
        self._received = 0  # bytes of the request whose headers are awaited

    # -- the protocol's events -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("headers")

    def data_received(self, data: bytes) -> None:
        if self._phase == "headers":
            self._received += len(data)
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- deadlines -------------------------------------------------------------------------------

    def _follow(self) -> None:
        """Arm the deadline for what the connection waits for now."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase != "headers":
                self._arm("headers")
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body")
        else:
            self._disarm()

    def _arm(self, phase: str) -> None:
        self._disarm()
        if self.transport is None or self.transport.is_closing():
            return
        delay = self._header_timeout if phase == "headers" else self._body_timeout + _BODY_GRACE
        self._phase = phase
        self._received = 0
        self._deadline = self.loop.call_later(delay, self._expire, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._phase = None

    def _expire(self, phase: str) -> None:
        self._deadline = None
        self._phase = None
        if self.transport is None or self.transport.is_closing():
            return
        state = self.conn.their_state
        if phase == "headers" and state is h11.IDLE:
            if self._received and (self.cycle is None or self.cycle.response_complete):
                body = (b'{"error_code":"BAD_REQUEST","message":"the request headers did not '
                        b'arrive within %g s"}' % self._header_timeout)
                self.transport.write(_TIMEOUT_RESPONSE % (len(body), body))
            log.debug("closing a connection: request headers not complete in %gs",
                      self._header_timeout)
            self.transport.close()
        elif phase == "body" and state is h11.SEND_BODY:
            log.debug("closing a connection: request body not complete in %gs",
                      self._body_timeout)
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True
                self.cycle.message_event.set()
            self.transport.close()
