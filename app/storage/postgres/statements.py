"""Reusable statements run on asyncpg inside a write transaction (a fast path).

A write's body runs in SQLAlchemy's greenlet bridge (`AsyncConnection.run_sync`), where
`AdaptedConnection.run_async` awaits the driver's own coroutine. A statement run so costs
asyncpg's work only, where SQLAlchemy's execution adds about half a millisecond of CPU;
a create runs eight of them. The transaction is SQLAlchemy's: its asyncpg adapter sends
BEGIN only with the first statement it runs itself, so a body's first statement always
goes through SQLAlchemy (`Transaction`, `begins_lazily`), and COMMIT and ROLLBACK stay
SQLAlchemy's.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from app.storage.raw_rows import RawStatements

# Failures that say the connection was lost, not that the statement was wrong or slow
# (a statement timeout, QueryCanceledError, is not among them).
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and a connection gone
    asyncpg.AdminShutdownError,  # pg_terminate_backend, a restart
    asyncpg.CrashShutdownError,
    asyncpg.InternalClientError,  # asyncpg out of step with a closing connection
    ConnectionError,  # reset or refused
)


class AsyncpgStatements(RawStatements):
    """Core statements compiled once, run on asyncpg, rows converted SQLAlchemy's way."""

    begins_lazily = True

    def fetch(self, connection: Any, sql: str, arguments: list[Any]) -> Any:
        """(sync, in the greenlet bridge) The raw rows of `sql`, fetched by asyncpg."""
        return connection.dbapi_connection.run_async(
            lambda driver: driver.fetch(sql, *arguments)
        )
