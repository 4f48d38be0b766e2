"""What keeps SQLite fast under load: planner statistics and a one-hop read path.

- Planner statistics. Without `sqlite_stat1` SQLite takes every indexed equality for a
  selective one, so `status IN (..) AND appId = ..` newest first reads and sorts hundreds of
  thousands of rows through the app index instead of walking the date index for 101 rows.
  A real ANALYZE costs seconds at a million rows and sees only the data of its day, so we
  write the *shape* of the data instead (how many rows share a value of each column, at a
  nominal million rows), as SQLite documents for stable plans. A real ANALYZE by an operator
  covers every index and is left alone.
- Writes. `SQLiteWriter` runs write transactions (sync functions of a Core Connection) on
  one writer thread through the sync pysqlite driver: one hop per transaction instead of
  one per statement, and the writes that queued meanwhile share one commit (group commit;
  if one of them fails, each runs again in a transaction of its own).
- Reads. A session costs several thread hops per query (BEGIN, execute, fetch, ROLLBACK,
  pool reset), each a wake-up of the driver's thread. `SQLiteReader` runs one compiled Core
  SELECT in autocommit mode (the statement is its own snapshot) and applies the columns'
  result processors to the rows: on the event loop's own thread while it stays within a
  small budget of SQLite steps (a page of 101 rows by index costs less than a thread hop),
  else as one hop on a raw aiosqlite connection.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import uuid
from collections import namedtuple
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

import aiosqlite
import orjson
from sqlalchemy import JSON, Connection, Select, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.util import LRUCache

from app.sqltypes import GUID, UTCDateTime

NOMINAL_ROWS = 1_000_000
# Rows sharing one value of each column, at NOMINAL_ROWS: the data's shape, not its size.
ROWS_PER_VALUE = {
    "notification_requests": {
        "id": 1,
        "created_date": 1,
        "email": 5,
        "contact_id": 5,
        "catalog_reference_key": 20,
        "catalog_item_id": 20,
        "item_url": 20,
        "status": 250_000,
        "app_id": 250_000,
        "auto_notified": 333_334,
    },
}
UNKNOWN_ROWS_PER_VALUE = 10
# SQLite virtual-machine steps a read may take on the event loop's thread (about 1-2 ms)
# before it is interrupted and handed to a reader thread; counted every INLINE_CHECK_EVERY.
INLINE_BUDGET_STEPS = 200_000
INLINE_CHECK_EVERY = 1_000


def _index_stat(columns: Sequence[str], shape: dict[str, int]) -> str:
    """The sqlite_stat1 text of an index: total rows, then rows per value of each prefix."""
    rows = float(NOMINAL_ROWS)
    figures = [str(NOMINAL_ROWS)]
    for column in columns:
        rows *= shape.get(column, UNKNOWN_ROWS_PER_VALUE) / NOMINAL_ROWS
        figures.append(str(max(1, round(rows))))
    return " ".join(figures)


def write_planner_statistics(path: str) -> bool:
    """Write the shape statistics where an index lacks statistics; True if it wrote."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    cursor = connection.cursor()
    try:
        wrote = False
        for table, shape in ROWS_PER_VALUE.items():
            indexes = [
                name
                for (name,) in cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                    (table,),
                ).fetchall()
            ]
            if not indexes:
                continue
            has_stat1 = cursor.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).fetchone()
            known = (
                {
                    name
                    for (name,) in cursor.execute(
                        "SELECT idx FROM sqlite_stat1 WHERE tbl = ?", (table,)
                    ).fetchall()
                }
                if has_stat1
                else set()
            )
            if set(indexes) <= known:
                continue
            stats = []
            for name in indexes:
                columns = [
                    row[2]
                    for row in cursor.execute(f'PRAGMA index_info("{name}")').fetchall()
                ]
                stats.append((table, name, _index_stat(columns, shape)))
            cursor.execute("BEGIN IMMEDIATE")
            try:
                if not has_stat1:
                    cursor.execute(
                        "ANALYZE sqlite_schema"
                    )  # creates sqlite_stat1, cheaply
                cursor.execute("DELETE FROM sqlite_stat1 WHERE tbl = ?", (table,))
                cursor.executemany("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", stats)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            wrote = True
        return wrote
    finally:
        cursor.close()
        connection.close()


def _utc_datetime(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        # The naive UTC text UTCDateTime stores: naming its offset parses it aware in one
        # step, ten times faster than parsing, then replacing the zone.
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:  # text that names an offset already
        return datetime.fromisoformat(value).astimezone(UTC)


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


def _json(value: Any) -> Any:
    if not isinstance(value, (str, bytes)):
        return value  # NULL, or a bare number SQLite's JSON functions left as one
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits
        return json.loads(value)


def _result_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column type's result processor, or a faster one giving the same values."""
    if isinstance(type_, UTCDateTime):
        return _utc_datetime  # SQLite keeps naive UTC text; see UTCDateTime
    if isinstance(type_, GUID):
        return _uuid  # the canonical text; see GUID
    implementation = type_.dialect_impl(dialect)
    if isinstance(implementation, JSON):
        return _json
    return implementation.result_processor(dialect, None)


class CompiledStatements:
    """Core statements compiled once and run on a raw sqlite3 cursor, converted SQLAlchemy's way.

    The columns' own bind and result processors convert the values, so the rows are the
    ones SQLAlchemy would return, without its per-execution machinery (about 0.2 ms a
    statement: as much as SQLite's own work for an insert that maintains a dozen indexes).
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._shapes: dict[tuple[Any, ...], Any] = {}
        self._makers: dict[Any, Any] = {}  # by reusable statement
        self._compiled: dict[Any, Any] = {}
        # Statements built per call, by the shape SQLAlchemy's cache key names.
        self._shaped: LRUCache[Any, Any] = LRUCache(256)

    def _row_maker(
        self, statement: Any
    ) -> tuple[Callable[..., Any], list[tuple[int, Callable[[Any], Any]]]]:
        """A namedtuple class named by the returned columns' keys, and the (position,
        processor) of each column that has a result processor."""
        made = self._makers.get(statement)  # a reusable statement's, found at once
        if made is not None:
            return made
        columns = list(statement.exported_columns)  # a SELECT's columns, or RETURNING's
        shape = tuple((column.key, column.type) for column in columns)
        made = self._shapes.get(shape)
        if made is None:
            keys = [
                column.key or f"column_{index}" for index, column in enumerate(columns)
            ]
            row_type = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
            processors = [
                (index, process)
                for index, column in enumerate(columns)
                if (process := _result_processor(column.type, self.dialect)) is not None
            ]
            made = self._shapes[shape] = (row_type._make, processors)
        if statement in self._compiled:
            self._makers[statement] = made
        return made

    def _compiled_once(self, statement: Any) -> Any:
        compiled = self._compiled.get(statement)
        if compiled is None:
            if len(self._compiled) > 256:
                self._compiled.clear()
                self._makers.clear()
            compiled = self._compiled[statement] = statement.compile(
                dialect=self.dialect
            )
        return compiled

    def prepare(
        self, statement: Any, values: dict[str, Any] | None
    ) -> tuple[str, list[Any]]:
        """The SQL and its positional arguments.

        With `values`, `statement` is a reusable one (bind parameters, no expanding IN
        lists) and is compiled once. An INSERT is compiled with all its columns, so `values`
        must give every one (defaults are not applied here): a missing one is an error,
        never a silent NULL. Without `values`, `statement` was built for this call (a page:
        its filter's values are in it), and is compiled once per shape, as SQLAlchemy's
        own execution does: the cache key names the shape and carries the values.
        """
        if values is not None:
            compiled = self._compiled_once(statement)
            params = compiled.construct_params(values)
            names: Sequence[str] = compiled.positiontup or ()
            expanded: dict[str, Any] = {}
            sql = compiled.string
        else:
            compiled, extracted, *_ = statement._compile_w_cache(
                self.dialect,
                compiled_cache=self._shaped,
                column_keys=[],
                for_executemany=False,
                schema_translate_map=None,
            )
            state = compiled._process_parameters_for_postcompile(
                compiled.construct_params(
                    extracted_parameters=extracted,
                    escape_names=False,
                    _no_postcompile=True,
                )
            )
            params, names, expanded, sql = (
                state.parameters,
                state.positiontup or (),
                state.processors,  # those of the values an IN list expanded into
                state.statement,
            )
        binds = compiled._bind_processors  # the columns' own bind conversions
        arguments = []
        for name in names:
            process = expanded.get(name) or binds.get(name)
            value = params[name]
            arguments.append(process(value) if process is not None else value)
        return sql, arguments

    def convert(self, statement: Any, raw: list[Any]) -> list[Any]:
        """Raw rows as namedtuples keyed like the returned columns, values converted."""
        make, processors = self._row_maker(statement)
        if not processors:
            return [make(row) for row in raw]
        rows = []
        for row in raw:
            values = list(row)
            for index, process in processors:  # a few columns of many have one
                values[index] = process(values[index])
            rows.append(make(values))
        return rows

    def rows(
        self, connection: Any, statement: Any, values: dict[str, Any]
    ) -> list[Any]:
        """(sync) The rows of a reusable statement run on a raw sqlite3 connection."""
        sql, arguments = self.prepare(statement, values)
        return self.convert(statement, connection.execute(sql, arguments).fetchall())


class SQLiteReader:
    """A few raw aiosqlite connections for single-statement reads, one thread hop each."""

    def __init__(self, path: str, dialect: Dialect, size: int = 4) -> None:
        self.path = path
        self.statements = CompiledStatements(dialect)
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
        self, statement: Select[Any], values: dict[str, Any] | None = None
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
                raw = await connection.execute_fetchall(sql, arguments)
            finally:
                assert self._idle is not None
                self._idle.put_nowait(connection)
        return self.statements.convert(statement, raw)

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        for connection in self._all:
            await connection.close()
        self._all.clear()
        self._idle = None
        self._opening = 0


def sqlite_file(url: str) -> str | None:
    """The file of a plain `sqlite+aiosqlite:///path` URL, or None (memory, URI options)."""
    from sqlalchemy.engine import make_url

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


# WAL frames (pages) past which the log is started over: under steady writes the background
# checkpoint always trails the latest commit, and the log only restarts when a write
# transaction begins with every frame copied.
WAL_RESTART_FRAMES = 16000
# A background pass that copied at most this many frames leaves few for the writer to copy.
RESTART_READY_FRAMES = 1000
# Least time between two background checkpoints: each one syncs the log and the database.
CHECKPOINT_INTERVAL_SECONDS = 0.05


class BackgroundCheckpoints:
    """Copies the write-ahead log into the database on a thread of its own.

    SQLite checkpoints inside the commit that crosses `wal_autocheckpoint` (1,000 pages): that
    commit copies the pages and syncs both files while every queued write waits. At a million
    rows a create's commit spent twice its CPU time waiting on those syncs, and creates ran at
    two thirds of the rate, with three times the p99, of the same writes without them. Here the
    writer's connection does not checkpoint; after its commits, this thread runs a PASSIVE
    checkpoint (it never blocks writers or readers) at most every CHECKPOINT_INTERVAL_SECONDS.

    Past WAL_RESTART_FRAMES the log is started over in two steps, so that the writer waits
    only for the frames of about one transaction (see `restart_begins`).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None  # opened on first use
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._hurried = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.frames = 0  # the log's length at the last checkpoint
        self._passes_started = 0
        self._passes_done = 0
        self._restart_after: int | None = None  # the passes started when a restart was due
        self._last_copied = 0
        self._copied_before = 0

    def request(self) -> None:
        """Something was committed: checkpoint soon."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="sqlite-checkpoints", daemon=True
            )
            self._thread.start()
        self._wanted.set()

    def _checkpoint(self) -> tuple[int, int, int]:
        """(holding the lock) One PASSIVE checkpoint: (busy, log frames, frames copied)."""
        if self._connection is None:
            self._connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA busy_timeout=0")
        busy, frames, copied = self._connection.execute(
            "PRAGMA wal_checkpoint(PASSIVE)"
        ).fetchone()
        return busy, frames, copied

    def restart_begins(self) -> bool:
        """(the writer's thread, before a transaction) Whether the log starts over with it.

        Whatever the writer copies itself (and syncs) stalls every queued write: 100-200 ms
        at a million rows when it was all the commits since the last background pass. So
        first background passes are asked for at once, without their pause, while the
        writer goes on; each copies what came during the one before. Once one that started
        after the request copied at most RESTART_READY_FRAMES, the writer copies the rest
        and holds the lock (True) until `restart_ends`: no background pass may hold the log
        while the writer's transaction begins, or the log would not start over.
        """
        if self._restart_after is None:
            self._restart_after = self._passes_started
            self._hurried.set()
            self.request()
            return False
        if self._passes_done <= self._restart_after:
            return False  # the pass asked for has not finished yet
        if self._last_copied > RESTART_READY_FRAMES:
            self._restart_after = self._passes_started  # one more pass, on the heels of that
            self._hurried.set()
            self.request()
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            busy, frames, copied = (1, 0, 0) if self._closed else self._checkpoint()
        except sqlite3.Error:
            busy = 1
        if busy or copied != frames:  # a reader still reads older frames: try again later
            self._restart_after = None
            self._lock.release()
            return False
        return True

    def restart_ends(self) -> None:
        """(the writer's thread, after the transaction restart_begins let begin)"""
        self.frames = 0
        self._copied_before = 0
        self._restart_after = None
        self._lock.release()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._closed:
                return
            self._wanted.clear()
            with self._lock:
                if self._closed:
                    return
                self._passes_started += 1
                try:
                    _, self.frames, copied = self._checkpoint()
                    self._last_copied = copied - self._copied_before
                    self._copied_before = copied
                except sqlite3.Error:
                    pass  # e.g. another process checkpointing: the next commit asks again
                self._passes_done += 1
            self._hurried.wait(CHECKPOINT_INTERVAL_SECONDS)  # cut short by a restart
            self._hurried.clear()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        self._wanted.set()
        self._hurried.set()
        if self._thread is not None:
            self._thread.join()


class SQLiteWriter:
    """One thread, one connection: each write transaction is a single hop to it.

    Its commits leave checkpoints to BackgroundCheckpoints.
    """

    def __init__(self, path: str, pragmas: Iterable[str]) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sqlite-writer"
        )
        self._engine = create_engine(f"sqlite:///{path}", pool_size=1, max_overflow=0)
        self._checkpoints = BackgroundCheckpoints(path)
        pragmas = [*pragmas, "PRAGMA wal_autocheckpoint=0"]

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # our BEGIN, not the driver's
            for pragma in pragmas:
                dbapi_connection.execute(pragma)

        @event.listens_for(self._engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        with self._engine.begin() as connection:
            return work(connection)

    def _batch(
        self, works: list[Callable[[Connection], Any]]
    ) -> list[tuple[bool, Any]]:
        """All works in one transaction (one commit); if one fails, each on its own."""
        restarting = (
            self._checkpoints.frames > WAL_RESTART_FRAMES
            and self._checkpoints.restart_begins()
        )
        try:
            try:
                with self._engine.begin() as connection:
                    return [(True, work(connection)) for work in works]
            except Exception as error:  # noqa: BLE001 - handed to the caller below
                if len(works) == 1:
                    return [(False, error)]
            return self._one_by_one(works)
        finally:
            if restarting:
                self._checkpoints.restart_ends()
            self._checkpoints.request()

    def _one_by_one(
        self, works: list[Callable[[Connection], Any]]
    ) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        for work in works:
            try:
                outcomes.append((True, self._transaction(work)))
            except Exception as error:  # noqa: BLE001 - handed to its caller
                outcomes.append((False, error))
        return outcomes

    async def run_all(
        self, works: list[Callable[[Connection], Any]]
    ) -> list[tuple[bool, Any]]:
        """Each work's (succeeded, result or exception), committed together when all succeed."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._batch, works)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._engine.dispose)
        self._executor.shutdown(wait=True)
        await asyncio.to_thread(self._checkpoints.close)
