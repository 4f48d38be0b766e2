"""The SQL a store sends to its database, whichever path sends it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.storage import Store


@contextmanager
def sql_sent(store: Store) -> Iterator[list[str]]:
    """Every statement sent within the block: through SQLAlchemy (its engine events)
    and through the store's raw reader, either database's (the SQL it compiled), in
    order."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])  # (connection, cursor, statement, ...)

    reader = getattr(store, "reader", None)
    event.listen(Engine, "before_cursor_execute", note)
    if reader is not None:
        prepare = reader.statements.prepare

        def noted(statement: Any, values: Any) -> tuple[str, list[Any]]:
            sql, arguments = prepare(statement, values)
            seen.append(sql)
            return sql, arguments

        reader.statements.prepare = noted
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)
        if reader is not None:
            del reader.statements.prepare
