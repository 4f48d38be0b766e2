"""The database: engines, sessions and the per-database settings that make them behave.

Reads and writes get their own session makers. On SQLite a write transaction starts with
`BEGIN IMMEDIATE` (so two processes never deadlock upgrading a read lock) and writes of one
process take turns on an asyncio lock (so they queue in memory instead of spinning on
`busy_timeout`). On PostgreSQL both makers share one pooled engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings
from app.sqlite_tuning import (
    CompiledStatements,
    SQLiteReader,
    SQLiteWriter,
    sqlite_file,
    write_planner_statistics,
)

T = TypeVar("T")

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)
# Writers touch many index pages at once (a report moves 100,000 rows): a 16 MiB page cache
# (SQLite's default is 2 MiB) takes a third off that time and bounds what it adds to memory.
# Only writers get it: one is in use at a time, readers stay small.
SQLITE_WRITER_PRAGMAS = (*SQLITE_PRAGMAS, "PRAGMA cache_size=-16384")


_RAW_STATEMENTS: list[
    CompiledStatements
] = []  # one for every writer: they compile alike


def statement_rows(
    connection: Connection, statement: Any, values: dict[str, Any]
) -> list[Any]:
    """(sync) The rows of a reusable Core statement, inside a write (Database.write).

    On the SQLite writer's own driver (pysqlite) it runs straight on the driver's
    connection (see CompiledStatements); elsewhere through SQLAlchemy. Rows read alike.
    """
    if connection.dialect.driver != "pysqlite":
        return list(connection.execute(statement, values).all())
    if not _RAW_STATEMENTS:
        _RAW_STATEMENTS.append(CompiledStatements(connection.dialect))
    return _RAW_STATEMENTS[0].rows(
        connection.connection.driver_connection, statement, values
    )


def _sqlite_engine(url: str, begin: str, pragmas: tuple[str, ...]) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


def _server_engine(settings: Settings) -> AsyncEngine:
    connect_args: dict[str, Any] = {}
    if settings.database_url.startswith("postgresql+asyncpg"):
        connect_args["server_settings"] = {
            "statement_timeout": str(settings.db_statement_timeout_ms),
            "application_name": "backinstock",
        }
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


class Database:
    """Owns the engines; hands out sessions for reading and for writing."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.read_engine = _sqlite_engine(self.url, "BEGIN", SQLITE_PRAGMAS)
            self.write_engine = _sqlite_engine(
                self.url, "BEGIN IMMEDIATE", SQLITE_WRITER_PRAGMAS
            )
            self._write_turn: asyncio.Lock | None = asyncio.Lock()
            path = sqlite_file(self.url)
            self._reader = (
                SQLiteReader(path, self.read_engine.dialect) if path else None
            )
            self._writer = SQLiteWriter(path, SQLITE_WRITER_PRAGMAS) if path else None
            self._pending_writes: list[
                tuple[Callable[[Connection], Any], asyncio.Future[Any]]
            ] = []
            self._flushes: set[asyncio.Future[None]] = set()
        else:
            self.read_engine = self.write_engine = _server_engine(settings)
            self._write_turn = None
            self._reader = None
            self._writer = None
        self._read_sessions = async_sessionmaker(
            self.read_engine, expire_on_commit=False
        )
        self._write_sessions = async_sessionmaker(
            self.write_engine, expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; its transaction is rolled back at the end."""
        async with self._read_sessions() as session:
            yield session

    async def rows(
        self, statement: Select[Any], params: dict[str, Any] | None = None
    ) -> list[Any]:
        """The rows of one Core SELECT, read outside any session (the hot read paths).

        On SQLite without a session's thread hops (see app.sqlite_tuning); with `params`,
        `statement` is a reusable one with bind parameters, compiled once.
        """
        if self._reader is not None:
            return await self._reader.rows(statement, params)
        async with self.read_engine.connect() as connection:
            return list((await connection.execute(statement, params or {})).all())

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` (sync, given a Core Connection) as one write transaction.

        On SQLite on the writer thread, in turn with this process's other writes, together
        with the writes queued meanwhile (one commit for all; see app.sqlite_tuning);
        elsewhere through the engine (`run_sync`).
        """
        if self._writer is None:
            async with self.write_engine.begin() as connection:
                return await connection.run_sync(work)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending_writes.append((work, future))
        if len(self._pending_writes) == 1:  # the first of a batch starts its flush
            flush = asyncio.ensure_future(self._flush_writes())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        return await future

    async def _flush_writes(self) -> None:
        """Run every write queued until the write turn came, as one group commit."""
        assert self._write_turn is not None and self._writer is not None
        async with self._write_turn:
            batch, self._pending_writes = self._pending_writes, []
            try:
                outcomes = await self._writer.run_all([work for work, _ in batch])
            except BaseException as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                raise
        for (_, future), (succeeded, value) in zip(batch, outcomes):
            if future.done():  # its caller went away
                continue
            if succeeded:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def tune(self) -> None:
        """SQLite: give the query planner the data's shape (see app.sqlite_tuning)."""
        path = sqlite_file(self.url) if self.is_sqlite else None
        if path and await asyncio.to_thread(write_planner_statistics, path):
            # Connections read the statistics when they open.
            await self.read_engine.dispose()
            await self.write_engine.dispose()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session in one write transaction, committed when the block ends cleanly."""
        if self._write_turn is None:
            async with self._write_sessions() as session, session.begin():
                yield session
            return
        async with self._write_turn:
            async with self._write_sessions() as session, session.begin():
                yield session

    async def dispose(self) -> None:
        if self._reader is not None:
            await self._reader.close()
        if self._writer is not None:
            await self._writer.close()
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()
