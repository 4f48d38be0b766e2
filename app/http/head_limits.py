"""Bounds on a request's head (request line and headers) for uvicorn's HTTP/1.1 protocols.

uvicorn bounds an idle connection between requests (`timeout_keep_alive`) but not the time
a client may take to send a request's head: a client that trickles header bytes, or
connects and says nothing, holds its connection for as long as it likes. Both protocols
here close such a connection `head_timeout` seconds after the head's first byte (or after
the connection opened, for its first request). h11 bounds a head's size itself
(`h11_max_incomplete_event_size`); httptools buffers a head of any size, so its protocol
here also answers 400 and closes once an unfinished head passes `max_head_bytes`.

What this module relies on beyond public APIs (the one place; re-check on a uvicorn
upgrade, tests/test_connection_limits.py runs every bound on both protocols):
- h11: `H11Protocol.conn`, uvicorn's `h11.Connection` for the connection, read only: the
  peer's state is `h11.IDLE` until a whole request head has been parsed.
- httptools: uvicorn's `HttpToolsProtocol` is the httptools parser's callback object; this
  module extends two of those callbacks, `on_message_begin` and `on_headers_complete`
  (httptools' names: the parser calls them at a head's first byte and at its end).
Everything else is asyncio's `Protocol` interface (`connection_made`, `data_received`,
`connection_lost`) and the transport it is handed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("app.http")

# A request's head must arrive within this many seconds of its first byte (or of the
# connection, for the first request).
HEAD_TIMEOUT_SECONDS = 10.0
# The largest request head accepted (h11's default; larger ones get 400). An API key
# header is ~50 bytes; browsers' cookie-laden heads stay well under it.
MAX_HEAD_BYTES = 16 * 1024

_HEAD_TOO_LARGE_TEXT = b"Request head too large."
HEAD_TOO_LARGE = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_HEAD_TOO_LARGE_TEXT)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _HEAD_TOO_LARGE_TEXT
)


class HeadDeadline:
    """The clock of one connection's request head: closes the connection when it runs out."""

    def __init__(
        self,
        transport: asyncio.BaseTransport,
        seconds: float,
        still_pending: Callable[[], bool],
    ) -> None:
        self._transport = transport
        self._seconds = seconds
        self._still_pending = still_pending
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """A head began (or the connection opened): start the clock unless it runs."""
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._seconds, self._expired)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._still_pending() and not self._transport.is_closing():
            log.info("closing a connection whose request head came too slowly")
            self._transport.close()


def h11_head_pending(protocol: H11Protocol) -> bool:
    """Whether an h11 connection is waiting for (the rest of) a request head."""
    connection: h11.Connection = protocol.conn
    return connection.their_state is h11.IDLE


class H11WithHeadTimeout(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head comes too slowly."""

    head_timeout: float = HEAD_TIMEOUT_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline = HeadDeadline(
            transport, self.head_timeout, lambda: h11_head_pending(self)
        )
        self._head_deadline.start()  # a connection that says nothing is closed too

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if h11_head_pending(self):
            self._head_deadline.start()
        else:
            self._head_deadline.stop()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_deadline.stop()
        super().connection_lost(exc)


class HttpToolsWithHeadLimits(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounding a request head's time and size."""

    head_timeout: float = HEAD_TIMEOUT_SECONDS
    max_head_bytes: int = MAX_HEAD_BYTES

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_transport = transport
        # Bytes received since the head began; None between a head's end and the next.
        self._head_bytes: int | None = 0
        self._head_chunk = 0
        self._head_deadline = HeadDeadline(
            transport, self.head_timeout, lambda: self._head_bytes is not None
        )
        self._head_deadline.start()  # a connection that says nothing is closed too

    def data_received(self, data: bytes) -> None:
        self._head_chunk = len(data)
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_bytes is not None and self._head_bytes > self.max_head_bytes:
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_bytes is None:
            # The parser does not say where in the chunk the head began: count all of it
            # (with pipelining, the end of the previous body too; at most one read more).
            self._head_bytes = self._head_chunk
            self._head_deadline.start()

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._head_deadline.stop()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_deadline.stop()
        super().connection_lost(exc)

    def _refuse_head(self) -> None:
        self._head_bytes = None
        self._head_deadline.stop()
        if not self._head_transport.is_closing():
            log.info(
                "refusing a request head larger than %d bytes", self.max_head_bytes
            )
            self._head_transport.write(HEAD_TOO_LARGE)
            self._head_transport.close()


PROTOCOLS: dict[str, type[H11WithHeadTimeout] | type[HttpToolsWithHeadLimits]] = {
    "httptools": HttpToolsWithHeadLimits,
    "h11": H11WithHeadTimeout,
}
