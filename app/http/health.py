"""/healthz (the process is up) and /readyz (the database can be read and written).

Ready means more than "the database answers": while the main table is locked, or another
process holds SQLite's write lock, reads still succeed but every write waits. /readyz
then fails, so a load balancer sends traffic elsewhere, because it tries to start a
write within WRITE_START_TIMEOUT_SECONDS:
- SQLite: `BEGIN IMMEDIATE` (takes the database's write lock) on a connection of its
  own whose busy timeout is that bound, then `ROLLBACK`;
- PostgreSQL: in a transaction whose `lock_timeout` is that bound, the lock every
  INSERT, UPDATE and DELETE takes on the requests table (ROW EXCLUSIVE: writers never
  block each other on it, but a LOCK TABLE, an ALTER TABLE or a VACUUM FULL does).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from functools import partial

from sqlalchemy import Connection, text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.db import Database
from app.models import NotificationRequest
from app.sqlite_tuning import sqlite_file

log = logging.getLogger("app.http")

WRITE_START_TIMEOUT_SECONDS = 1.5
# The table every write of the service touches.
_MAIN_TABLE = NotificationRequest.__table__.name


async def healthz(_: Request) -> Response:
    """The process is up (says nothing of the database)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The process can read its database and start a write in it."""
    database: Database = request.app.state.database
    try:
        async with database.reading() as session:
            await session.execute(text("SELECT 1"))
    except Exception:  # any failure means not ready
        log.warning("readiness: the database cannot be read", exc_info=True)
        return JSONResponse({"status": "unavailable"}, 503)
    try:
        await can_start_write(database, WRITE_START_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness: no write could start: %s", error)
        return JSONResponse({"status": "unavailable"}, 503)
    return JSONResponse({"status": "ok"})


async def can_start_write(database: Database, timeout: float) -> None:
    """Start a write transaction within `timeout` seconds and undo it; raise if none can."""
    if database.is_sqlite:
        path = sqlite_file(database.url)
        if path is not None:  # an in-memory database has no other writer
            await asyncio.to_thread(_begin_immediate, path, timeout)
        return
    # The outer bound also covers waiting for a pooled connection.
    await asyncio.wait_for(
        database.write(partial(_lock_as_writers_do, timeout)), timeout + 2
    )


def _begin_immediate(path: str, timeout: float) -> None:
    connection = sqlite3.connect(
        f"file:{path}?mode=rw", uri=True, timeout=timeout, isolation_level=None
    )
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def _lock_as_writers_do(timeout: float, connection: Connection) -> None:
    milliseconds = max(1, int(timeout * 1000))
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
    connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
    connection.exec_driver_sql(f'LOCK TABLE "{_MAIN_TABLE}" IN ROW EXCLUSIVE MODE')
