"""Rows read on a raw driver connection, converted the way SQLAlchemy would convert them.

The columns' own result processors convert the values (or faster ones that give the same
values for what this service stores), so a raw row reads like SQLAlchemy's row of the same
statement. The statements themselves are compiled by app.fast_paths.StatementCompiler.
Used by SQLite's reader and writer (sqlite3) and by PostgreSQL's reader (asyncpg).
"""

from __future__ import annotations

import json
import uuid
import weakref
from collections import namedtuple
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON
from sqlalchemy.engine import Dialect

from app.fast_paths import StatementCompiler
from app.sqltypes import GUID, UTCDateTime
from app.storage.base import Params, RowMaker

Processors = list[tuple[int, Callable[[Any], Any]]]


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


def _aware_utc(value: datetime | None) -> datetime | None:
    # asyncpg returns timestamptz aware, in UTC already: UTCDateTime's own processor
    # would convert it to the zone it is in.
    if value is None or value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)


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
        if dialect.name == "sqlite":
            return _utc_datetime  # SQLite keeps naive UTC text; see UTCDateTime
        return _aware_utc
    if isinstance(type_, GUID):
        # The canonical text on SQLite; a uuid.UUID already from asyncpg. See GUID.
        return _uuid if dialect.name == "sqlite" else None
    implementation = type_.dialect_impl(dialect)
    if isinstance(implementation, JSON):
        return _json
    process: Callable[[Any], Any] | None = implementation.result_processor(
        dialect, None
    )
    return process


class RawStatements:
    """Core statements run on a raw driver connection, rows converted SQLAlchemy's way.

    Compiling and converting are planned once per statement (or per shape of statement),
    so a statement costs little more than SQLite's own work.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.compiler = StatementCompiler(dialect)
        # By statement object, for as long as it lives: reusable ones, and those built
        # for a query and kept while it comes again (app/services/built_statements.py).
        self._by_statement: weakref.WeakKeyDictionary[
            Any, tuple[RowMaker[Any], Processors]
        ] = weakref.WeakKeyDictionary()
        self._by_shape: dict[tuple[Any, ...], tuple[RowMaker[Any], Processors]] = {}

    def _plan(self, statement: Any) -> tuple[RowMaker[Any], Processors]:
        """A maker of namedtuples keyed like the returned columns, and the (position,
        processor) of each column that has a result processor."""
        planned = self._by_statement.get(statement)  # a statement run before: at once
        if planned is not None:
            return planned
        columns = list(statement.exported_columns)  # a SELECT's columns, or RETURNING's
        shape = tuple((column.key, column.type) for column in columns)
        planned = self._by_shape.get(shape)
        if planned is None:
            keys = [column.key or f"column_{i}" for i, column in enumerate(columns)]
            row_type = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
            processors = [
                (index, process)
                for index, column in enumerate(columns)
                if (process := _result_processor(column.type, self.dialect)) is not None
            ]
            planned = self._by_shape[shape] = (row_type._make, processors)
        self._by_statement[statement] = planned
        return planned

    def prepare(self, statement: Any, values: Params | None) -> tuple[str, list[Any]]:
        return self.compiler.prepare(statement, values)

    def convert(
        self, statement: Any, raw: list[Any], into: RowMaker[Any] | None = None
    ) -> list[Any]:
        """Raw rows as `into`'s values (else namedtuples), their values converted."""
        make, processors = self._plan(statement)
        make = into or make
        if not processors:
            return [make(row) for row in raw]
        rows = []
        for row in raw:
            values = list(row)
            for index, process in processors:  # a few columns of many have one
                values[index] = process(values[index])
            rows.append(make(values))
        return rows

    # sqlite3 is in a transaction from the writer's BEGIN on.
    begins_lazily = False

    def rows(
        self,
        connection: Any,
        statement: Any,
        values: Params,
        into: RowMaker[Any] | None = None,
    ) -> list[Any]:
        """(sync) The rows of a reusable statement, run on `connection`'s driver."""
        sql, arguments = self.prepare(statement, values)
        return self.convert(statement, self.fetch(connection, sql, arguments), into)

    def fetch(self, connection: Any, sql: str, arguments: list[Any]) -> Any:
        """(sync) The raw rows of `sql`: here on a sqlite3 connection."""
        return connection.driver_connection.execute(sql, arguments).fetchall()
