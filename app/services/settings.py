"""Collection states: per app, whether new notification requests are accepted."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import statement_rows
from app.models import CollectionState, utc_now
from app.services.errors import NotSupportedAppDefId
from app.services.rules import MAX_APP_ID_LENGTH, Violations, check_length
from app.services.upsert import upsert


async def list_collection_states(session: AsyncSession) -> list[CollectionState]:
    rows = await session.scalars(
        select(CollectionState).order_by(CollectionState.app_id)
    )
    return list(rows)


_COLLECTING = select(CollectionState.collecting_requests).where(
    CollectionState.app_id == bindparam("app_id")
)


def is_collecting_in(connection: Connection, app_id: str) -> bool:
    """(sync) is_collecting inside a Core transaction (see Database.write)."""
    rows = statement_rows(connection, _COLLECTING, {"app_id": app_id})
    return bool(rows and rows[0][0])


async def is_collecting(session: AsyncSession, app_id: str) -> bool:
    collecting = await session.scalar(
        select(CollectionState.collecting_requests).where(
            CollectionState.app_id == app_id
        )
    )
    return bool(collecting)


def _check_app_id(app_id: str) -> None:
    violations = Violations()
    check_length(app_id, "appId", 1, MAX_APP_ID_LENGTH, violations)
    violations.raise_if_any()


async def start_collecting_requests(
    session: AsyncSession, *, app_id: str, supported_app_ids: Collection[str]
) -> list[CollectionState]:
    """Start collecting for an app; the allow-list, when set, gates apps not yet collecting."""
    _check_app_id(app_id)
    if supported_app_ids and app_id not in supported_app_ids:
        if not await is_collecting(session, app_id):
            raise NotSupportedAppDefId(f"appId {app_id!r} is not in SUPPORTED_APP_IDS")
    await _set_collecting(session, app_id, True)
    return await list_collection_states(session)


async def stop_collecting_requests(
    session: AsyncSession, *, app_id: str
) -> list[CollectionState]:
    """Stop collecting for an app; existing requests and queued notifications stay."""
    _check_app_id(app_id)
    await _set_collecting(session, app_id, False)
    return await list_collection_states(session)


async def _set_collecting(session: AsyncSession, app_id: str, collecting: bool) -> None:
    values = {
        "app_id": app_id,
        "collecting_requests": collecting,
        "updated_date": utc_now(),
    }
    await session.execute(
        upsert(
            session,
            CollectionState,
            values,
            key=["app_id"],
            update=["collecting_requests", "updated_date"],
        )
    )
