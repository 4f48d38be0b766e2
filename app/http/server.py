"""How `python -m app serve` runs uvicorn when it faces the public internet.

uvicorn bounds a request's head in size (h11's `max_incomplete_event_size`) and an idle
connection between requests (`timeout_keep_alive`), but not the time a client may take
to send a request's head: a client that trickles header bytes, or connects and says
nothing, holds its connection for as long as it likes. H11WithHeadTimeout adds that
bound. A reverse proxy in front (nginx's `client_header_timeout`, HAProxy's
`timeout http-request`) is still the better place for it, and for TLS and body timeouts.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import h11
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter, DefaultFormatter
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.logmask import mask_emails

log = logging.getLogger("app.http")

# A request's head (request line and headers) must arrive within this many seconds of
# its first byte (or of the connection, for the first request).
HEAD_TIMEOUT_SECONDS = 10.0
# How long an idle connection is kept between two requests (uvicorn's default, said out
# loud). Behind a proxy that reuses connections, make it longer than the proxy's own
# idle timeout, or the proxy will now and then send a request into a closing connection.
KEEP_ALIVE_SECONDS = 5
# The largest request head accepted (h11's default; larger ones get 400). An API key
# header is ~50 bytes; browsers' cookie-laden heads stay well under it.
MAX_HEAD_BYTES = 16 * 1024
# Shutdown waits this long for requests in flight, then closes what is left.
GRACEFUL_SHUTDOWN_SECONDS = 10


def head_pending(protocol: H11Protocol) -> bool:
    """Whether the connection is between the start of a request's head and its end.

    The one place that reads uvicorn's private state: `conn`, its h11 connection. h11
    stays IDLE for the peer until a whole request head has been parsed.
    """
    connection: h11.Connection = protocol.conn
    return connection.their_state is h11.IDLE


class H11WithHeadTimeout(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head comes too slowly."""

    head_timeout: float = HEAD_TIMEOUT_SECONDS

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._head_deadline: asyncio.TimerHandle | None = None
        self._arm_head_deadline()  # a connection that says nothing is closed too

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if head_pending(self):
            if self._head_deadline is None:
                self._arm_head_deadline()
        else:
            self._cancel_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        loop = asyncio.get_running_loop()
        self._head_deadline = loop.call_later(self.head_timeout, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if head_pending(self) and not self.transport.is_closing():
            log.info("closing a connection whose request head came too slowly")
            self.transport.close()


class MaskingDefaultFormatter(DefaultFormatter):
    """uvicorn's formatter, with email addresses masked (app.logmask)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_emails(super().format(record))


class MaskingAccessFormatter(AccessFormatter):
    """uvicorn's access-log formatter, with email addresses masked (app.logmask)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_emails(super().format(record))


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, its formatters masking email addresses."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["default"]["()"] = MaskingDefaultFormatter
    config["formatters"]["access"]["()"] = MaskingAccessFormatter
    return config


def uvicorn_options(
    *, head_timeout: float = HEAD_TIMEOUT_SECONDS, keep_alive: int = KEEP_ALIVE_SECONDS
) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` on a public server."""
    protocol = type(
        "H11WithHeadTimeout", (H11WithHeadTimeout,), {"head_timeout": head_timeout}
    )
    return {
        # h11 explicitly: its size limit and the head timeout apply only to it.
        "http": protocol,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "timeout_keep_alive": keep_alive,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "log_config": uvicorn_log_config(),
    }
