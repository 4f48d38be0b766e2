"""SQLite reads: one compiled statement, on the event loop's thread while it stays cheap.

A session costs several thread hops per query (BEGIN, execute, fetch, ROLLBACK, pool
reset), each a wake-up of the driver's thread. `SQLiteReader` runs one compiled Core SELECT
in autocommit mode (the statement is its own snapshot) and converts its rows
(app/storage/raw_rows.py): on the event loop's own thread while it stays within a small
budget of SQLite steps (a page of 101 rows by index costs less than a thread hop), else as
one hop on a raw aiosqlite connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy import Executable

from app.storage.base import Params, RowMaker
from app.storage.raw_rows import RawStatements

# SQLite virtual-machine steps a read may take on the event loop's thread (about 1-2 ms)
# before it is interrupted and handed to a reader thread; counted every INLINE_CHECK_EVERY.
INLINE_BUDGET_STEPS = 200_000
INLINE_CHECK_EVERY = 1_000


class SQLiteReader:
    """A few raw aiosqlite connections for single-statement reads, one thread hop each."""

    def __init__(self, path: str, statements: RawStatements, size: int = 4) -> None:
        self.path = path
        self.statements = statements
        self.size = size
        self._idle: asyncio.Queue[aiosqlite.Connection] | None = None
        self._all: list[aiosqlite.Connection] = []
        self._opening = 0
        self._inline: sqlite3.Connection | None = None

    async def _open(self) -> aiosqlite.Connection:
        connection = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in ("busy_timeout=30000", "foreign_keys=ON", "query_only=ON"):
            await connection.execute(f"PRAGMA {pragma}")
        self._all.append(connection)
        return connection

    async def _acquire(self) -> aiosqlite.Connection:
        if self._idle is None:
            self._idle = asyncio.Queue()
        if self._idle.empty() and self._opening < self.size:
            self._opening += 1
            try:
                return await self._open()
            except BaseException:
                self._opening -= 1
                raise
        return await self._idle.get()

    def _inline_rows(self, sql: str, arguments: list[Any]) -> list[Any] | None:
        """The rows, read on the loop's thread within a small work budget; None past it.

        Most reads of this service are index ranges of at most 101 rows, cheaper to run
        here than to hand to a thread and back. A read that outgrows INLINE_BUDGET_STEPS
        (or finds SQLite busy) is interrupted and the caller runs it on a thread.
        """
        if self._inline is None:
            self._inline = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            for pragma in ("busy_timeout=0", "query_only=ON"):
                self._inline.execute(f"PRAGMA {pragma}")
        left = INLINE_BUDGET_STEPS // INLINE_CHECK_EVERY

        def spend() -> int:
            nonlocal left
            left -= 1
            return 1 if left < 0 else 0

        self._inline.set_progress_handler(spend, INLINE_CHECK_EVERY)
        try:
            return self._inline.execute(sql, arguments).fetchall()
        except sqlite3.OperationalError:
            return None
        finally:
            self._inline.set_progress_handler(None, 0)

    async def rows(
        self,
        statement: Executable,
        values: Params | None = None,
        into: RowMaker[Any] | None = None,
    ) -> list[Any]:
        """The rows of `statement`, as namedtuples keyed like the selected columns.

        With `values`, `statement` is reusable (bind parameters, no expanding IN lists)
        and compiled once; without, it is compiled for this call. Tried on the event loop's
        thread first, within a budget (see _inline_rows), then on a reader thread.
        """
        sql, arguments = self.statements.prepare(statement, values)
        raw = self._inline_rows(sql, arguments)
        if raw is None:
            connection = await self._acquire()
            try:
                raw = list(await connection.execute_fetchall(sql, arguments))
            finally:
                assert self._idle is not None
                self._idle.put_nowait(connection)
        return self.statements.convert(statement, raw, into)

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        for connection in self._all:
            await connection.close()
        self._all.clear()
        self._idle = None
        self._opening = 0
