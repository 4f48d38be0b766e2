"""PostgreSQL reads on asyncpg's own pool: one compiled statement, one round trip.

Through SQLAlchemy's async engine a single SELECT costs about half a millisecond of the
service's CPU beyond asyncpg's own work (the greenlet bridge, its pool's checkout and
return, result wrapping): a third of a get by id, and more than PostgreSQL's own work for
a page. `PostgresReader` runs the same Core SELECT, compiled once per shape by
app.fast_paths.StatementCompiler, on a pool of raw asyncpg connections, and converts its
rows as SQLAlchemy would (app/storage/raw_rows.py). Used only with fast paths on.

The pool's connections carry the same session settings as the engine's (statement
timeout, application name, custom plans). Each read runs in autocommit (a single
statement is its own snapshot). A connection the server closed is replaced when the pool
hands it out; a read that meets one dying in use is run once more (it changed nothing).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy import Executable

from app.storage.base import Params, RowMaker
from app.storage.postgres.statements import CONNECTION_LOST
from app.storage.raw_rows import RawStatements


async def _keep_as_is(_connection: asyncpg.Connection) -> None:
    """A read leaves no session state (no transaction, no LISTEN, no SET), so a returned
    connection needs no reset: asyncpg's default reset would be a round trip per read."""


class PostgresReader:
    """A pool of raw asyncpg connections for single-statement reads."""

    def __init__(
        self,
        dsn: str,
        statements: RawStatements,
        *,
        size: int,
        server_settings: dict[str, str],
    ) -> None:
        self.dsn = dsn
        self.statements = statements
        self.size = size
        self.server_settings = server_settings
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _ready_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:  # the first reads arrive together
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=0,  # connections open as reads need them
                    max_size=self.size,
                    reset=_keep_as_is,
                    server_settings=self.server_settings,
                )
        return self._pool

    async def rows(
        self,
        statement: Executable,
        values: Params | None = None,
        into: RowMaker[Any] | None = None,
    ) -> list[Any]:
        """The rows of `statement`, as namedtuples keyed like the selected columns.

        With `values`, `statement` is reusable (bind parameters, no expanding IN lists)
        and compiled once; without, it is compiled once per shape.
        """
        sql, arguments = self.statements.prepare(statement, values)
        pool = await self._ready_pool()
        try:
            raw = await pool.fetch(sql, *arguments)
        except CONNECTION_LOST:
            # The pool opens a new connection in its place; asking again is safe.
            raw = await pool.fetch(sql, *arguments)
        return self.statements.convert(statement, raw, into)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
