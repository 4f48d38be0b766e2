"""/readyz fails while no write can start: a lock held by another connection, for real."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app.models import NotificationRequest
from tests.documents import create


@contextlib.asynccontextmanager
async def writes_blocked(database_url: str) -> AsyncIterator[None]:
    """Another connection holds what every write needs until the block ends.

    SQLite: the database's write lock (BEGIN IMMEDIATE). PostgreSQL: an ACCESS EXCLUSIVE
    lock on the requests table, as a LOCK TABLE or an ALTER TABLE takes.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(Path(url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    holder = await asyncpg.connect(plain)
    try:
        async with holder.transaction():
            await holder.execute(
                f'LOCK TABLE "{NotificationRequest.__table__.name}" IN ACCESS EXCLUSIVE MODE'
            )
            yield
    finally:
        await holder.close()


async def test_readyz_is_ok_when_writes_can_start(http):
    response = await http.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_fails_while_another_connection_blocks_writes(http, settings):
    async with writes_blocked(settings.database_url):
        response = await http.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


async def test_readyz_is_ok_again_once_the_lock_is_released(http, settings):
    async with writes_blocked(settings.database_url):
        await http.get("/readyz")

    response = await http.get("/readyz")

    assert response.status_code == 200


async def test_creates_still_succeed_after_a_failed_readiness_check(
    http, gql, settings, collecting
):
    async with writes_blocked(settings.database_url):
        await http.get("/readyz")

    created = await create(gql)

    assert created["status"] == "RECEIVED"
