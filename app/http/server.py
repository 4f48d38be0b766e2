"""How `python -m app serve` runs uvicorn when it faces the public internet.

By default on uvloop and httptools (`uvicorn[standard]`), the fastest stack uvicorn has;
`--http h11` and `--loop asyncio` choose the pure-Python parts instead. Either protocol
closes a connection whose request head comes too slowly or grows too large
(app/http/head_limits.py). A reverse proxy in front (nginx's `client_header_timeout`,
HAProxy's `timeout http-request`) is still the better place for those bounds, and for TLS
and body timeouts.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter, DefaultFormatter

from app.http.head_limits import HEAD_TIMEOUT_SECONDS, MAX_HEAD_BYTES, PROTOCOLS
from app.logmask import mask_emails

# How long an idle connection is kept between two requests (uvicorn's default, said out
# loud). Behind a proxy that reuses connections, make it longer than the proxy's own
# idle timeout, or the proxy will now and then send a request into a closing connection.
KEEP_ALIVE_SECONDS = 5
# Shutdown waits this long for requests in flight, then closes what is left.
GRACEFUL_SHUTDOWN_SECONDS = 10
HTTP_PROTOCOLS = tuple(PROTOCOLS)  # the first is the default
LOOPS = ("uvloop", "asyncio")


def default_loop() -> str:
    """uvloop where it is installed (uvicorn[standard] installs it but on Windows)."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


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
    *,
    http: str = HTTP_PROTOCOLS[0],
    loop: str | None = None,
    head_timeout: float = HEAD_TIMEOUT_SECONDS,
    keep_alive: int = KEEP_ALIVE_SECONDS,
) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` on a public server."""
    base = PROTOCOLS[http]
    protocol = type(base.__name__, (base,), {"head_timeout": head_timeout})
    return {
        "http": protocol,
        "loop": loop or default_loop(),
        # h11's own bound on a head's size (the httptools protocol has its own).
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "timeout_keep_alive": keep_alive,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "log_config": uvicorn_log_config(),
    }


def serve_options(args: argparse.Namespace) -> dict[str, Any]:
    """`uvicorn_options` from the arguments `add_serve_arguments` defines."""
    return {
        "access_log": args.access_log,
        **uvicorn_options(
            http=args.http,
            loop=args.loop,
            head_timeout=args.head_timeout,
            keep_alive=args.keep_alive_timeout,
        ),
    }


def add_serve_arguments(command: argparse.ArgumentParser) -> None:
    """`python -m app serve`'s options."""
    command.add_argument("--host", default="127.0.0.1")
    command.add_argument("--port", type=int, default=8000)
    command.add_argument(
        "--head-timeout",
        type=float,
        default=HEAD_TIMEOUT_SECONDS,
        metavar="S",
        help="close a connection whose request line and headers take longer "
        f"(default {HEAD_TIMEOUT_SECONDS:g})",
    )
    command.add_argument(
        "--keep-alive-timeout",
        type=int,
        default=KEEP_ALIVE_SECONDS,
        metavar="S",
        help=f"close a connection idle this long between requests (default {KEEP_ALIVE_SECONDS})",
    )
    command.add_argument(
        "--http",
        choices=HTTP_PROTOCOLS,
        default=HTTP_PROTOCOLS[0],
        help=f"the HTTP/1.1 parser (default {HTTP_PROTOCOLS[0]})",
    )
    command.add_argument(
        "--loop",
        choices=LOOPS,
        default=default_loop(),
        help=f"the event loop (default {default_loop()})",
    )
    command.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="log no line per request (e.g. behind a proxy that logs them)",
    )
