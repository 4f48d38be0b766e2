"""Notification requests: create, read, delete, mark as sent, count by reference."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, statement_rows
from app.models import (
    Notification,
    NotificationRequest,
    RequestStatus,
    time_ordered_id,
    utc_now,
)
from app.services.errors import RequestCollectionDisabled, RequestNotFound
from app.services.request_view import select_requests
from app.services.rules import (
    CatalogReference,
    ItemDetails,
    NewRequest,
    Violations,
    catalog_reference_key,
    check_catalog_reference,
    check_email,
    check_item_details,
    check_url,
    contact_id_for,
    parse_id,
)
from app.services.settings import is_collecting_in

MAX_COUNT_REFERENCES = 100
_REQUESTS = NotificationRequest.__table__
_BY_ID = select_requests().where(
    _REQUESTS.c.id == bindparam("id", type_=_REQUESTS.c.id.type)
)


def _validated_request_values(
    request: NewRequest, item: ItemDetails
) -> dict[str, object]:
    """The row a valid create would store; raises with every broken rule otherwise."""
    violations = Violations()
    reference = check_catalog_reference(
        request.catalog_reference, "request.catalogReference", violations
    )
    email = check_email(request.email, "request.email", violations)
    check_url(request.item_url, "request.itemUrl", violations)
    check_item_details(item, "itemDetails", violations)
    violations.raise_if_any()
    return {
        "app_id": reference.app_id,
        "catalog_item_id": reference.catalog_item_id,
        "options": reference.options,
        "catalog_reference_key": catalog_reference_key(reference),
        "email": email,
        "contact_id": contact_id_for(email),
        "status": RequestStatus.RECEIVED.value,
        "open_request": True,
        "auto_notified": None,
        "item_url": request.item_url,
        "item_name": item.name,
        "item_price": item.price,
        "item_image": item.image,
        "delivery_round": 0,
        "delivery_attempts": 0,
        "last_delivery_error": None,
    }


def _insert_unless_open(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(_REQUESTS)
        .on_conflict_do_nothing(
            index_elements=["catalog_reference_key", "email", "open_request"]
        )
        .returning(*_REQUESTS.c)
    )


# Built once (the values come as parameters), so each create reuses the compiled SQL.
_INSERT_UNLESS_OPEN = {
    name: _insert_unless_open(name) for name in ("sqlite", "postgresql")
}
_OPEN_BY_REFERENCE_AND_EMAIL = select_requests().where(
    _REQUESTS.c.catalog_reference_key == bindparam("catalog_reference_key"),
    _REQUESTS.c.email == bindparam("email"),
    _REQUESTS.c.open_request.is_(True),
)


def _create_in(
    connection: Connection, values: dict[str, object], now: datetime | None
) -> Any | None:
    """(sync) The create transaction: the new or open request's row; None if not collecting.

    De-duplication rests on the partial unique index, so concurrent identical creates
    leave one row whatever their timing.
    """
    if not is_collecting_in(connection, str(values["app_id"])):
        return None
    insert = _INSERT_UNLESS_OPEN[connection.dialect.name]
    key = {
        "catalog_reference_key": values["catalog_reference_key"],
        "email": values["email"],
    }
    # The open request may be sent between our insert and our read; then insert again.
    for _ in range(3):
        created = now or utc_now()
        row = statement_rows(
            connection,
            insert,
            {**values, "id": time_ordered_id(created), "created_date": created},
        )
        if row:
            return row[0]
        existing = statement_rows(connection, _OPEN_BY_REFERENCE_AND_EMAIL, key)
        if existing:
            return existing[0]
    raise RuntimeError("could not create or find the open request")


def _created(row: Any | None, values: dict[str, object]) -> Any:
    if row is None:
        raise RequestCollectionDisabled(
            f"appId {values['app_id']!r} is not collecting back-in-stock requests"
        )
    return row


async def create_request(
    session: AsyncSession,
    *,
    request: NewRequest,
    item: ItemDetails,
    now: datetime | None = None,
) -> Any:
    """Store a new request, or return the shopper's open one for the same reference.

    Returns the row (read like a NotificationRequest), in the session's transaction.
    """
    values = _validated_request_values(request, item)
    row = await session.run_sync(
        lambda sync: _create_in(sync.connection(), values, now)
    )
    return _created(row, values)


async def create_request_in(
    database: Database,
    *,
    request: NewRequest,
    item: ItemDetails,
    now: datetime | None = None,
) -> Any:
    """create_request in a transaction of its own: one hop on SQLite (Database.write)."""
    values = _validated_request_values(request, item)
    row = await database.write(lambda connection: _create_in(connection, values, now))
    return _created(row, values)


async def get_request(database: Database, *, id: str) -> Any | None:
    """The request's row (read like a NotificationRequest), or None.

    A read on the hot path: one Core statement outside any session (see Database.rows).
    """
    rows = await database.rows(_BY_ID, {"id": parse_id(id)})
    return rows[0] if rows else None


async def get_requests(
    database: Database, *, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """Many requests in one query, by id (for entity resolution)."""
    rows = await database.rows(select_requests().where(_REQUESTS.c.id.in_(ids)))
    return {uuid.UUID(row.id): row for row in rows}


async def delete_request(session: AsyncSession, *, id: str) -> uuid.UUID:
    request_id = parse_id(id)
    deleted = await session.scalar(
        delete(NotificationRequest)
        .where(NotificationRequest.id == request_id)
        .returning(NotificationRequest.id)
    )
    if deleted is None:
        raise RequestNotFound(f"no back-in-stock notification request with id {id}")
    # Cascades on PostgreSQL; said outright so it holds with any foreign-key setting.
    await session.execute(
        delete(Notification).where(Notification.request_id == request_id)
    )
    return deleted


async def mark_as_notification_sent(session: AsyncSession, *, id: str) -> Any:
    """Record an email sent outside the service; a sent request stays as it is.

    Returns the row (read like a NotificationRequest).
    """
    request_id = parse_id(id)
    # A round under way ends here: the request keeps its attempts and error.
    await session.execute(
        update(NotificationRequest)
        .where(
            NotificationRequest.id == Notification.request_id,
            Notification.request_id == request_id,
            NotificationRequest.status != RequestStatus.NOTIFICATION_SENT.value,
        )
        .values(
            delivery_attempts=Notification.attempts,
            last_delivery_error=Notification.last_error,
        )
    )
    await session.execute(
        update(NotificationRequest)
        .where(
            NotificationRequest.id == request_id,
            NotificationRequest.status != RequestStatus.NOTIFICATION_SENT.value,
        )
        .values(
            status=RequestStatus.NOTIFICATION_SENT.value,
            auto_notified=False,
            open_request=None,
        )
    )
    # A notification still queued for it would now be a second email.
    await session.execute(
        delete(Notification).where(Notification.request_id == request_id)
    )
    request = (await session.execute(_BY_ID, {"id": request_id})).first()
    if request is None:
        raise RequestNotFound(f"no back-in-stock notification request with id {id}")
    return request


async def count_by_catalog_references(
    database: Database, *, references: Sequence[CatalogReference]
) -> list[tuple[CatalogReference, int]]:
    """Requests (any status) per reference, in the given order, zeros included."""
    violations = Violations()
    if not 1 <= len(references) <= MAX_COUNT_REFERENCES:
        violations.add(
            "catalogReferences", f"must hold 1 to {MAX_COUNT_REFERENCES} references"
        )
    checked = [
        check_catalog_reference(reference, f"catalogReferences[{index}]", violations)
        for index, reference in enumerate(references)
    ]
    violations.raise_if_any()
    keys = [catalog_reference_key(reference) for reference in checked]
    key_column = NotificationRequest.catalog_reference_key
    rows = await database.rows(
        select(key_column, func.count())
        .where(key_column.in_(set(keys)))
        .group_by(key_column)
    )
    counts = {key: count for key, count in rows}
    return [(reference, counts.get(key, 0)) for reference, key in zip(references, keys)]
