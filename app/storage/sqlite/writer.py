"""SQLite writes: one writer thread, one connection, and group commits.

Each write transaction is a single hop to the writer thread (the sync pysqlite driver),
instead of one hop per statement, and the writes that queued meanwhile share one commit.
If one of a batch fails, each runs again in a transaction of its own, so a transaction body
may run more than once and must do nothing but database work. The writer's commits leave
checkpoints to BackgroundCheckpoints (app/storage/sqlite/checkpoints.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event

from app.storage.base import RawStatements, Transaction
from app.storage.sqlite import checkpoints
from app.storage.sqlite.checkpoints import BackgroundCheckpoints

T = TypeVar("T")
Work = Callable[[Transaction], Any]
Outcome = tuple[bool, Any]  # (succeeded, the result or the exception)


class SQLiteWriter:
    """Runs write transactions on its own thread, batching those that queue meanwhile."""

    def __init__(
        self, path: str, pragmas: Iterable[str], raw: RawStatements | None
    ) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sqlite-writer"
        )
        self._engine = create_engine(f"sqlite:///{path}", pool_size=1, max_overflow=0)
        # The writer thread's one connection, kept open between transactions: a pool
        # check-out and check-in per transaction were a sixth of its thread's time (py-spy).
        self._connection: Connection | None = None
        self._checkpoints = BackgroundCheckpoints(path)
        self._raw = raw
        self._turn = asyncio.Lock()
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._flushes: set[asyncio.Future[None]] = set()
        pragmas = [*pragmas, "PRAGMA wal_autocheckpoint=0"]

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # our BEGIN, not the driver's
            for pragma in pragmas:
                dbapi_connection.execute(pragma)

        @event.listens_for(self._engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    async def write(self, work: Callable[[Transaction], T]) -> T:
        """Run `work` as one transaction, in a batch with the writes queued meanwhile."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((work, future))
        if len(self._pending) == 1:  # the first of a batch starts its flush
            flush = asyncio.ensure_future(self._flush())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        return await future

    async def _flush(self) -> None:
        """Run every write queued until the write turn came, as one group commit."""
        async with self._turn:
            batch, self._pending = self._pending, []
            loop = asyncio.get_running_loop()
            works = [work for work, _ in batch]
            try:
                outcomes = await loop.run_in_executor(
                    self._executor, self._batch, works
                )
            except BaseException as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                raise
        for (_, future), (succeeded, value) in zip(batch, outcomes, strict=True):
            if future.done():  # its caller went away
                continue
            if succeeded:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _connected(self) -> Connection:
        """(writer thread) The writer's connection, opened again if it was lost."""
        connection = self._connection
        if connection is None or connection.closed or connection.invalidated:
            connection = self._connection = self._engine.connect()
        return connection

    def _transaction(self, work: Work) -> Any:
        connection = self._connected()
        with connection.begin():
            return work(Transaction(connection, self._raw))

    def _batch(self, works: list[Work]) -> list[Outcome]:
        """(writer thread) All works in one transaction; if one fails, each on its own."""
        restarting = (
            self._checkpoints.frames > checkpoints.WAL_RESTART_FRAMES
            and self._checkpoints.restart_begins()
        )
        try:
            try:
                connection = self._connected()
                with connection.begin():
                    transaction = Transaction(connection, self._raw)
                    return [(True, work(transaction)) for work in works]
            except Exception as error:  # noqa: BLE001 - handed to the caller below
                if len(works) == 1:
                    return [(False, error)]
            return self._one_by_one(works)
        finally:
            if restarting:
                self._checkpoints.restart_ends()
            self._checkpoints.request()

    def _one_by_one(self, works: list[Work]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for work in works:
            try:
                outcomes.append((True, self._transaction(work)))
            except Exception as error:  # noqa: BLE001 - handed to its caller
                outcomes.append((False, error))
        return outcomes

    def _disconnect(self) -> None:
        """(writer thread) Close the writer's connection, then the engine's pool."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()

    async def close(self) -> None:
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=True)
        await asyncio.to_thread(self._checkpoints.close)
