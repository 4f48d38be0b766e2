"""A store on SQLAlchemy's async engine: PostgreSQL, and SQLite where no file is named.

Reads take a pooled connection for one statement; a write runs its body through
`AsyncConnection.run_sync` inside `engine.begin()`. With fast paths on, PostgreSQL's
reads and a write's reusable statements run on asyncpg itself (app/storage/postgres).
On SQLite the transaction starts with `BEGIN IMMEDIATE` (two processes never deadlock
upgrading a read lock) and this process's writes take turns on an asyncio lock, so they
queue in memory instead of spinning on `busy_timeout`.

On PostgreSQL every round trip wakes a server process, so a read is one: its statement,
in autocommit (a single statement is its own snapshot; BEGIN and ROLLBACK around it would
be two more), on a connection nobody pinged first (a ping is three: BEGIN, the ping,
ROLLBACK). A connection the server closed (a restart, `pg_terminate_backend`) is known
to be closed without asking, and is replaced when it is checked out; one that dies in
use fails its statement and the pool starts afresh, and a read that met that is run once
more (it changed nothing). A write that met it before its COMMIT is run once more too:
the server rolls back a transaction whose connection ends, so nothing of it was kept. A
write whose COMMIT was sent is never run again (it may have been kept).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from sqlalchemy import Executable, TextClause, event, exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import Settings
from app.storage.base import Params, RawStatements, RowMaker, Store, Transaction, made
from app.storage.postgres import CONNECTION_LOST, AsyncpgStatements, PostgresReader

T = TypeVar("T")

# busy_timeout first: the others may wait for a lock (WAL on a new file) too.
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
# Connections older than this are closed and opened again when next checked out: a
# bound on how long a connection a firewall dropped in silence can stay in the pool.
POOL_RECYCLE_SECONDS = 1800


def sqlite_engine(url: str, begin: str, pragmas: tuple[str, ...]) -> AsyncEngine:
    """An aiosqlite engine whose connections run `pragmas` and start with `begin`."""
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


async def stream_rows(
    engine: AsyncEngine,
    statement: Executable,
    batch_size: int,
    into: RowMaker[Any] | None,
) -> AsyncIterator[list[Any]]:
    """The rows of one SELECT through a server-side cursor, `batch_size` at a time."""
    async with engine.connect() as connection:
        result = await connection.stream(
            statement.execution_options(yield_per=batch_size)
        )
        async for batch in result.partitions():
            yield made(batch, into)


def postgres_session_settings(settings: Settings) -> dict[str, str]:
    """The session settings of every connection of the service's pools."""
    return {
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "application_name": "backinstock",
        # asyncpg prepares and caches every statement; after five runs PostgreSQL
        # may plan one for any parameter value, and a count's probe planned for
        # none may read the whole table where its values find no row.
        "plan_cache_mode": "force_custom_plan",
    }


def server_engine(settings: Settings) -> AsyncEngine:
    """A pooled engine for a database server, with its statement timeout; a connection
    the server has closed is replaced at checkout, without a round trip to ask."""
    connect_args: dict[str, Any] = {}
    if settings.database_url.startswith("postgresql+asyncpg"):
        connect_args["server_settings"] = postgres_session_settings(settings)
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=POOL_RECYCLE_SECONDS,
        connect_args=connect_args,
    )
    if engine.dialect.driver == "asyncpg":
        event.listen(engine.sync_engine, "checkout", _replace_if_closed)
        event.listen(engine.sync_engine, "handle_error", _discard_if_out_of_step)
    return engine


def _replace_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # asyncpg marks its connection closed as soon as the server's goodbye (or the end of
    # the socket) is read; the pool then opens another instead (up to three times).
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


def _discard_if_out_of_step(context: ExceptionContext) -> None:
    # asyncpg raises InternalClientError when its side of the protocol is out of step
    # with the server's: e.g. the server's goodbye has been read but not yet the end of
    # the socket, so the connection is not known closed yet. Nothing more can be run on
    # it: the pool must drop it, as it does a closed one.
    if isinstance(
        context.original_exception, context.dialect.loaded_dbapi.InternalClientError
    ):
        context.is_disconnect = True


class _LostBeforeCommit(Exception):
    """A write's connection died while its body ran: no COMMIT was sent."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _before_commit(
    work: Callable[[Transaction], T], sync: Any, raw: RawStatements | None
) -> T:
    try:
        return work(Transaction(sync, raw))
    except exc.DBAPIError as error:
        if error.connection_invalidated:
            raise _LostBeforeCommit(error) from error
        raise
    except CONNECTION_LOST as error:
        # A statement run on asyncpg itself (fast paths) met it: the pool must drop
        # the connection, as SQLAlchemy does when its own statement meets it.
        sync.invalidate(error)
        raise _LostBeforeCommit(error) from error


class EngineStore(Store):
    """Reads and writes through one async engine (two on SQLite: reads, writes)."""

    def __init__(
        self,
        url: str,
        engine: AsyncEngine,
        write_engine: AsyncEngine | None = None,
        reader: PostgresReader | None = None,
    ) -> None:
        self.url = url
        self.engine = engine
        # With fast paths on, PostgreSQL's single-statement reads skip the engine, and
        # a write's reusable statements run on asyncpg inside its transaction.
        self.reader = reader
        self.raw = reader.statements if reader is not None else None
        self.write_engine = write_engine or engine
        self.dialect = engine.dialect.name
        # Single-statement reads on PostgreSQL open no transaction (same pool); streams
        # keep one, which their server-side cursor needs.
        self.read_engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else engine
        )
        # SQLite has one writer at a time: this process's writes queue here.
        self._write_turn = asyncio.Lock() if self.dialect == "sqlite" else None

    @classmethod
    def for_settings(cls, settings: Settings) -> EngineStore:
        url = settings.database_url
        if url.startswith("sqlite"):
            return cls(
                url,
                sqlite_engine(url, "BEGIN", SQLITE_PRAGMAS),
                sqlite_engine(url, "BEGIN IMMEDIATE", SQLITE_PRAGMAS),
            )
        engine = server_engine(settings)
        reader = None
        if settings.fast_paths and engine.dialect.driver == "asyncpg":
            reader = PostgresReader(
                engine.url.set(drivername="postgresql").render_as_string(
                    hide_password=False
                ),
                AsyncpgStatements(engine.dialect),
                size=settings.db_pool_size,
                server_settings=postgres_session_settings(settings),
            )
        return cls(url, engine, reader=reader)

    async def _read(
        self, statement: Executable, params: Params | None, into: RowMaker[Any] | None
    ) -> list[Any]:
        if self.reader is not None and not isinstance(statement, TextClause):
            # (Textual SQL names no columns to convert: it takes the engine's path.)
            return await self.reader.rows(statement, params, into)
        try:
            return await self._read_once(statement, params, into)
        except exc.DBAPIError as error:
            # Its connection died (the pool now opens new ones): one statement that
            # wrote nothing, so asking again is safe. Any other failure is the caller's.
            if not error.connection_invalidated:
                raise
        return await self._read_once(statement, params, into)

    async def _read_once(
        self, statement: Executable, params: Params | None, into: RowMaker[Any] | None
    ) -> list[Any]:
        async with self.read_engine.connect() as connection:
            return made(await connection.execute(statement, params or {}), into)

    def _stream(
        self, statement: Executable, batch_size: int, into: RowMaker[Any] | None
    ) -> AsyncIterator[list[Any]]:
        return stream_rows(self.engine, statement, batch_size, into)

    async def write(self, work: Callable[[Transaction], T]) -> T:
        try:
            return await self._write_once(work)
        except _LostBeforeCommit:
            pass  # the server rolled it back when its connection ended
        try:
            return await self._write_once(work)
        except _LostBeforeCommit as lost:
            raise lost.error from lost.error.__cause__

    async def _write_once(self, work: Callable[[Transaction], T]) -> T:
        turn = self._write_turn or contextlib.nullcontext()
        async with turn, self.write_engine.begin() as connection:
            return await connection.run_sync(
                lambda sync: _before_commit(work, sync, self.raw)
            )

    async def can_start_write(self, table: str, timeout: float) -> None:
        milliseconds = max(1, int(timeout * 1000))

        def lock_as_writers_do(tx: Transaction) -> None:
            if tx.dialect != "postgresql":
                return  # SQLite without a file: no other writer
            # ROW EXCLUSIVE is what every INSERT, UPDATE and DELETE takes: writers never
            # block each other on it, but a LOCK TABLE, an ALTER TABLE or a VACUUM FULL does.
            for statement in (
                f"SET LOCAL lock_timeout = {milliseconds}",
                f"SET LOCAL statement_timeout = {milliseconds}",
                f'LOCK TABLE "{table}" IN ROW EXCLUSIVE MODE',
            ):
                tx.connection.exec_driver_sql(statement)

        # The outer bound also covers waiting for a pooled connection.
        await asyncio.wait_for(self.write(lock_as_writers_do), timeout + 2)

    async def dispose(self) -> None:
        if self.reader is not None:
            await self.reader.close()
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
