"""What services see of the database: a `Store` and, inside a write, a `Transaction`."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar, overload

from sqlalchemy import Connection, Executable

T = TypeVar("T")
R = TypeVar("R")
# Makes a typed value of one row's values, e.g. a NamedTuple's `_make`.
RowMaker = Callable[[Iterable[Any]], R]
Params = dict[str, Any]


class RawStatements(Protocol):
    """Runs reusable statements straight on the DB-API connection (a fast path)."""

    # Whether the driver's transaction begins only with the first statement SQLAlchemy
    # runs (asyncpg's adapter): then that statement goes through SQLAlchemy.
    begins_lazily: bool

    def rows(
        self,
        connection: Any,
        statement: Any,
        values: Params,
        into: RowMaker[Any] | None,
    ) -> list[Any]:
        """(sync) The rows of a reusable statement, on `connection` (the pool's
        connection a SQLAlchemy Connection holds, `Connection.connection`)."""
        ...


def made(result: Iterable[Any], into: RowMaker[R] | None) -> list[Any]:
    """The rows of a result, each made into `into`'s type when given."""
    if into is None:
        return list(result)
    return [into(row) for row in result]


class Transaction:
    """A write transaction under way: what a service's transaction body is handed.

    Bodies are plain functions (`def body(tx: Transaction) -> T`) that `Store.write` runs
    as one transaction, committed when the body returns and rolled back when it raises.
    They never await: on SQLite they run on the writer thread, on PostgreSQL through
    SQLAlchemy's bridge (`AsyncConnection.run_sync`).
    """

    def __init__(
        self, connection: Connection, raw: RawStatements | None = None
    ) -> None:
        self.connection = connection
        self.dialect: str = connection.dialect.name
        self._raw = raw
        self._begun = raw is None or not raw.begins_lazily

    @overload
    def rows(
        self, statement: Executable, params: Params | None = None, *, into: RowMaker[R]
    ) -> list[R]: ...

    @overload
    def rows(
        self, statement: Executable, params: Params | None = None, *, into: None = None
    ) -> list[Any]: ...

    def rows(
        self,
        statement: Executable,
        params: Params | None = None,
        *,
        into: RowMaker[Any] | None = None,
    ) -> list[Any]:
        """The rows a statement returns (a SELECT, or a write's RETURNING).

        With `params`, `statement` is a reusable one with bind parameters.
        """
        if params is not None and self._raw is not None and self._begun:
            return self._raw.rows(self.connection.connection, statement, params, into)
        self._begun = True
        return made(self.connection.execute(statement, params or {}), into)

    def execute(
        self, statement: Executable, params: Params | Sequence[Params] | None = None
    ) -> int:
        """Run a write (once per parameter set given as a list); how many rows it hit."""
        self._begun = True
        result = self.connection.execute(statement, params or {})
        return int(result.rowcount)

    def scalar(self, statement: Executable, params: Params | None = None) -> Any:
        """The first column of the first row, or None."""
        self._begun = True
        return self.connection.execute(statement, params or {}).scalar()


class Store(abc.ABC):
    """One database: single-statement reads and write transactions.

    A read is one statement, which is its own snapshot. A write is a transaction body
    (see `Transaction`); the store decides how it runs and retries nothing itself.
    """

    dialect: str
    url: str

    @overload
    async def rows(
        self, statement: Executable, params: Params | None = None, *, into: RowMaker[R]
    ) -> list[R]: ...

    @overload
    async def rows(
        self, statement: Executable, params: Params | None = None, *, into: None = None
    ) -> list[Any]: ...

    async def rows(
        self,
        statement: Executable,
        params: Params | None = None,
        *,
        into: RowMaker[Any] | None = None,
    ) -> list[Any]:
        """The rows of one SELECT; with `params`, a reusable statement."""
        return await self._read(statement, params, into)

    async def scalar(self, statement: Executable, params: Params | None = None) -> Any:
        """The first column of the first row of one SELECT, or None."""
        rows = await self._read(statement, params, None)
        return rows[0][0] if rows else None

    def stream(
        self,
        statement: Executable,
        *,
        batch_size: int = 1000,
        into: RowMaker[Any] | None = None,
    ) -> AsyncIterator[list[Any]]:
        """The rows of one SELECT, `batch_size` at a time, fetched as they are taken (a
        server-side cursor: one snapshot, and memory stays flat however many rows)."""
        return self._stream(statement, batch_size, into)

    @abc.abstractmethod
    async def _read(
        self, statement: Executable, params: Params | None, into: RowMaker[Any] | None
    ) -> list[Any]: ...

    @abc.abstractmethod
    def _stream(
        self, statement: Executable, batch_size: int, into: RowMaker[Any] | None
    ) -> AsyncIterator[list[Any]]: ...

    @abc.abstractmethod
    async def write(self, work: Callable[[Transaction], T]) -> T:
        """Run `work` as one transaction and return what it returned."""

    @abc.abstractmethod
    async def can_start_write(self, table: str, timeout: float) -> None:
        """Start a write that would touch `table` within `timeout` seconds and undo it;
        raise if none can (readiness: reads may work while every write waits)."""

    async def prepare(self) -> None:
        """Once the schema is up to date: whatever makes this database fast."""
        return None  # most stores need nothing

    @abc.abstractmethod
    async def dispose(self) -> None:
        """Close every connection."""
