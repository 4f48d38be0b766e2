"""Collection states: per app, whether new notification requests are accepted."""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy import bindparam, select

from app.models import Clock, CollectionState, table_of, utc_now
from app.services.errors import NotSupportedAppDefId
from app.services.rules import MAX_APP_ID_LENGTH, Violations, check_length
from app.services.upsert import upsert
from app.storage import Store, Transaction


class CollectionStateRecord(NamedTuple):
    app_id: str
    collecting_requests: bool


_STATES_TABLE = table_of(CollectionState)
_STATES = select(_STATES_TABLE.c.app_id, _STATES_TABLE.c.collecting_requests).order_by(
    _STATES_TABLE.c.app_id
)
_COLLECTING = select(_STATES_TABLE.c.collecting_requests).where(
    _STATES_TABLE.c.app_id == bindparam("app_id")
)


async def list_collection_states(store: Store) -> list[CollectionStateRecord]:
    return await store.rows(_STATES, into=CollectionStateRecord._make)


def is_collecting(tx: Transaction, app_id: str) -> bool:
    """Whether the app accepts new requests (inside the caller's transaction)."""
    rows = tx.rows(_COLLECTING, {"app_id": app_id})
    return bool(rows and rows[0][0])


def _check_app_id(app_id: str) -> None:
    violations = Violations()
    check_length(app_id, "app_id", 1, MAX_APP_ID_LENGTH, violations)
    violations.raise_if_any()


async def start_collecting_requests(
    store: Store,
    *,
    app_id: str,
    supported_app_ids: Collection[str],
    clock: Clock = utc_now,
) -> list[CollectionStateRecord]:
    """Start collecting for an app; the allow-list, when set, gates apps not yet collecting."""
    _check_app_id(app_id)
    now = clock()

    def start(tx: Transaction) -> bool:
        allowed = not supported_app_ids or app_id in supported_app_ids
        if not allowed and not is_collecting(tx, app_id):
            return False
        _set_collecting(tx, app_id, True, now)
        return True

    if not await store.write(start):
        raise NotSupportedAppDefId(f"appId {app_id!r} is not in SUPPORTED_APP_IDS")
    return await list_collection_states(store)


async def stop_collecting_requests(
    store: Store, *, app_id: str, clock: Clock = utc_now
) -> list[CollectionStateRecord]:
    """Stop collecting for an app; existing requests and queued notifications stay."""
    _check_app_id(app_id)
    now = clock()
    await store.write(lambda tx: _set_collecting(tx, app_id, False, now))
    return await list_collection_states(store)


def _set_collecting(
    tx: Transaction, app_id: str, collecting: bool, now: object
) -> None:
    values = {"app_id": app_id, "collecting_requests": collecting, "updated_date": now}
    tx.execute(
        upsert(
            tx.dialect,
            CollectionState,
            values,
            key=["app_id"],
            update=["collecting_requests", "updated_date"],
        )
    )
