"""INSERT ... ON CONFLICT for both databases (SQLite and PostgreSQL spell it alike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite


def upsert(
    dialect: str,
    model: Any,
    values: dict[str, Any],
    *,
    key: Sequence[str],
    update: Sequence[str],
) -> Any:
    """Insert `values`, or update the `update` columns of the row with the same `key`."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**values)
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={column: statement.excluded[column] for column in update},
    )
