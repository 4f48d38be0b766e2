"""The suite runs in the mode `FAST_PATHS` asks for (.ci/run runs it both ways).

With fast paths on, the stores run reads on raw driver connections (sqlite3, asyncpg), below
SQLAlchemy (app/fast_paths.py); with them off every statement goes through SQLAlchemy's
own execution, which its public engine events see.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.config import Settings
from tests.conftest import GraphQLClient
from tests.documents import GET_REQUEST, create

# As pydantic reads a boolean: unset means on.
FAST_PATHS_ASKED = os.environ.get("FAST_PATHS", "true").strip().lower() not in {
    "0",
    "off",
    "f",
    "false",
    "n",
    "no",
}
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@contextmanager
def statements_through_sqlalchemy() -> Iterator[list[str]]:
    """The SQL of every statement any engine of this process runs within the block."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])  # (connection, cursor, statement, ...)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


@SQLITE
def test_the_settings_tests_build_are_in_the_mode_asked_for(settings: Settings):
    assert settings.fast_paths is FAST_PATHS_ASKED


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_reads_bypass_sqlalchemy_only_with_fast_paths_on(
    gql: GraphQLClient, admin_key: str, collecting: None
):
    created = await create(gql)

    with statements_through_sqlalchemy() as seen:
        result = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)

    assert result.data["backInStockNotificationRequest"]["id"] == created["id"]
    reads = [sql for sql in seen if "FROM notification_requests" in sql]
    assert bool(reads) is not FAST_PATHS_ASKED, seen
