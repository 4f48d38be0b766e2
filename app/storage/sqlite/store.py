"""The store on a SQLite file: reads on the loop's thread or a reader, writes on a writer.

With fast paths on (`FAST_PATHS`, app/fast_paths.py), reads and reusable statements run on
raw sqlite3 connections; off, every statement goes through SQLAlchemy's own execution.
Either way writes run on the writer thread in group commits (writer.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Executable
from sqlalchemy.engine import make_url

from app.storage.base import Params, RowMaker, Store, Transaction, made
from app.storage.engine import SQLITE_PRAGMAS, sqlite_engine, stream_rows
from app.storage.raw_rows import RawStatements
from app.storage.sqlite.reader import SQLiteReader
from app.storage.sqlite.statistics import write_planner_statistics
from app.storage.sqlite.writer import SQLiteWriter

T = TypeVar("T")

# Writers touch many index pages at once (a report moves 100,000 rows): a 16 MiB page cache
# (SQLite's default is 2 MiB) takes a third off that time and bounds what it adds to memory.
# Only the writer gets it: readers stay small.
SQLITE_WRITER_PRAGMAS = (*SQLITE_PRAGMAS, "PRAGMA cache_size=-16384")

# Every reader and writer compiles alike: one set of compiled statements for all.
_SHARED_RAW: list[RawStatements] = []


def sqlite_file(url: str) -> str | None:
    """The file of a plain `sqlite+aiosqlite:///path` URL, or None (memory, URI options)."""
    parsed = make_url(url)
    database = parsed.database
    if (
        not database
        or database == ":memory:"
        or parsed.query
        or database.startswith("file:")
    ):
        return None
    return str(Path(database))


def _begin_immediate(path: str, timeout: float) -> None:
    connection = sqlite3.connect(
        f"file:{path}?mode=rw", uri=True, timeout=timeout, isolation_level=None
    )
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def _shared_raw(dialect: Any) -> RawStatements:
    if not _SHARED_RAW:
        _SHARED_RAW.append(RawStatements(dialect))
    return _SHARED_RAW[0]


class SQLiteStore(Store):
    """Reads and writes on one SQLite file."""

    def __init__(self, url: str, path: str, *, fast_paths: bool) -> None:
        self.url = url
        self.path = path
        self.dialect = "sqlite"
        self._engine = sqlite_engine(url, "BEGIN", SQLITE_PRAGMAS)
        # Statements are compiled once per process, whatever store runs them.
        raw = _shared_raw(self._engine.dialect) if fast_paths else None
        self.reader = SQLiteReader(path, raw) if raw is not None else None
        self._writer = SQLiteWriter(path, SQLITE_WRITER_PRAGMAS, raw)

    async def _read(
        self, statement: Executable, params: Params | None, into: RowMaker[Any] | None
    ) -> list[Any]:
        if self.reader is not None:
            return await self.reader.rows(statement, params, into)
        async with self._engine.connect() as connection:
            return made(await connection.execute(statement, params or {}), into)

    def _stream(
        self, statement: Executable, batch_size: int, into: RowMaker[Any] | None
    ) -> AsyncIterator[list[Any]]:
        # A connection of its own, holding one read snapshot for the whole stream.
        return stream_rows(self._engine, statement, batch_size, into)

    async def write(self, work: Callable[[Transaction], T]) -> T:
        return await self._writer.write(work)

    async def can_start_write(self, table: str, timeout: float) -> None:
        """`BEGIN IMMEDIATE` (the database's write lock) on a connection of its own whose
        busy timeout is `timeout`, then `ROLLBACK`."""
        await asyncio.to_thread(_begin_immediate, self.path, timeout)

    async def prepare(self) -> None:
        """Give the query planner the data's shape (statistics.py)."""
        if await asyncio.to_thread(write_planner_statistics, self.path):
            # Connections read the statistics when they open.
            await self._engine.dispose()
            if self.reader is not None:
                await self.reader.close()

    async def dispose(self) -> None:
        if self.reader is not None:
            await self.reader.close()
        await self._writer.close()
        await self._engine.dispose()
