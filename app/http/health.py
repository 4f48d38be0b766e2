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

import logging

from sqlalchemy import literal, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.models import NotificationRequest, table_of
from app.storage import Store

log = logging.getLogger("app.http")

WRITE_START_TIMEOUT_SECONDS = 1.5
# The table every write of the service touches.
_MAIN_TABLE = table_of(NotificationRequest).name


async def healthz(_: Request) -> Response:
    """The process is up (says nothing of the database)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The process can read its database and start a write in it."""
    store: Store = request.app.state.store
    try:
        await store.scalar(select(literal(1)))
    except Exception:  # any failure means not ready
        log.warning("readiness: the database cannot be read", exc_info=True)
        return JSONResponse({"status": "unavailable"}, 503)
    try:
        await store.can_start_write(_MAIN_TABLE, WRITE_START_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness: no write could start: %s", error)
        return JSONResponse({"status": "unavailable"}, 503)
    return JSONResponse({"status": "ok"})
