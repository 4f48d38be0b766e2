"""Failures outside GraphQL execution, answered as GraphQL errors with a code.

Before execution the request's context is built (the API key is looked up in the
database); a failure there never reaches graphql-core's error handling. It is answered
here: 503 `SERVICE_UNAVAILABLE` when the database cannot be reached or answer, 500
`INTERNAL` for anything else, each logged once.
"""

from __future__ import annotations

import logging
import sqlite3

import asyncpg
from sqlalchemy import exc as sa_exc

from app.graphql.errors import INTERNAL_MESSAGE

log = logging.getLogger("app.http")

UNAVAILABLE_MESSAGE = "The service cannot reach its database; try again shortly."
# How long a client should wait before retrying during an outage (the Retry-After header).
RETRY_AFTER_SECONDS = 1

# Errors that say the database is down, unreachable, overloaded or refusing connections.
# Everything a context builder asks of the database is a fixed, known-good statement, so a
# driver error there is the database's state, not a fault in the request.
_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.DBAPIError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection came free in time
    sqlite3.Error,  # SQLite's raw read path (app/storage/sqlite) is not wrapped
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,  # refused, reset or unreachable
    TimeoutError,
)


def is_database_outage(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, is the database failing."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, _DATABASE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def classify(error: BaseException) -> tuple[int, str, str]:
    """The HTTP status, GraphQL error code and message for a failure before execution."""
    if is_database_outage(error):
        log.warning(
            "database unavailable before execution: %s",
            _summary(error),
        )
        return 503, "SERVICE_UNAVAILABLE", UNAVAILABLE_MESSAGE
    log.error("request failed before execution", exc_info=error)
    return 500, "INTERNAL", INTERNAL_MESSAGE


def _summary(error: BaseException) -> str:
    # One line per failing request: an outage fails hundreds a second, and the trace is
    # the same each time.
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
