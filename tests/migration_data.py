"""Rows in every table a database has at some migration, to check what an upgrade keeps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


def _value(column: sa.Column[Any], row: int) -> Any:
    """A value of the column's reflected type, different for every row."""
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return row % 2 == 0
    if isinstance(kind, sa.Integer):
        return row + 1
    if isinstance(kind, sa.DateTime):
        return datetime(2024, 1, 1 + row, 12, 30, tzinfo=UTC)
    if isinstance(kind, sa.JSON):
        return {"row": row, "text": "é"}
    if isinstance(kind, sa.Uuid):
        return uuid.UUID(int=row + 1)
    if isinstance(kind, sa.String):
        if kind.length == 36:  # a UUID stored as text (SQLite)
            return str(uuid.UUID(int=row + 1))
        return f"{column.name}-{row}-é"[: kind.length or None]
    raise AssertionError(
        f"no sample value for {column.table.name}.{column.name}: {kind!r}"
    )


def fill_every_table(
    connection: sa.Connection, rows: int
) -> dict[str, list[dict[str, Any]]]:
    """Put `rows` rows in every table the database has now; return what went in."""
    metadata = sa.MetaData()
    metadata.reflect(connection)
    stored: dict[str, list[dict[str, Any]]] = {}
    for table in metadata.sorted_tables:
        if table.name == "alembic_version":
            continue
        values = []
        for row in range(rows):
            record = {}
            for column in table.columns:
                if column.foreign_keys:
                    parent = next(iter(column.foreign_keys)).column
                    record[column.name] = stored[parent.table.name][row][parent.name]
                elif column.autoincrement is True or (
                    column.primary_key and isinstance(column.type, sa.Integer)
                ):
                    record[column.name] = row + 1
                else:
                    record[column.name] = _value(column, row)
            values.append(record)
        connection.execute(table.insert(), values)
        stored[table.name] = values
    return stored


def read_tables(
    connection: sa.Connection, names: list[str]
) -> dict[str, list[dict[str, Any]]]:
    metadata = sa.MetaData()
    metadata.reflect(connection, only=names)
    return {
        name: [
            dict(row._mapping)
            for row in connection.execute(sa.select(metadata.tables[name]))
        ]
        for name in names
    }


def _normal(value: Any) -> Any:
    """A value as both databases can hand it back: UUIDs as text, instants in UTC."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    return value


def comparable_rows(rows: list[dict[str, Any]], columns: set[str]) -> list[str]:
    return sorted(
        repr({k: _normal(v) for k, v in sorted(row.items()) if k in columns})
        for row in rows
    )
