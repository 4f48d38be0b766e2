"""Notification requests: create, read, count by reference (deleting and marking sent:
app/services/request_changes.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from app.events import outbox as events
from app.models import (
    Clock,
    Notification,
    NotificationRequest,
    ReferenceRequestCounts,
    RequestStatus,
    table_of,
    time_ordered_id,
    utc_now,
)
from app.services import confirmation, demand, limits
from app.services.errors import RequestCollectionDisabled
from app.services.limits import Refusal, SignUp
from app.services.request_view import (
    RequestRecord,
    as_record,
    record_columns,
    select_requests,
)
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
from app.services.settings import is_collecting
from app.storage import Store, Transaction

MAX_COUNT_REFERENCES = 100
_REQUESTS = table_of(NotificationRequest)
_QUEUE = table_of(Notification)
# Requests per reference, kept by app/services/demand.py (counts by reference read it).
_REFERENCE_COUNTS = table_of(ReferenceRequestCounts)
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
        .returning(*record_columns())
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


def _create(
    tx: Transaction,
    values: dict[str, object],
    clock: Clock,
    sign_up: SignUp | None = None,
) -> RequestRecord | Refusal | None:
    """The create transaction: the new or open request; None if the app is not collecting;
    a Refusal (nothing written) when a visitor's create is over a limit.

    De-duplication rests on the partial unique index, so concurrent identical creates
    leave one row whatever their timing. A visitor's create is counted before it, so a
    refusal never depends on whether the request exists.
    """
    if not is_collecting(tx, str(values["app_id"])):
        return None
    if sign_up is not None:
        refusal = limits.admit(
            tx,
            sign_up.policy,
            client=sign_up.client,
            email=str(values["email"]),
            now=clock(),
        )
        if refusal is not None:
            return refusal
    insert = _INSERT_UNLESS_OPEN[tx.dialect]
    key = {
        "catalog_reference_key": values["catalog_reference_key"],
        "email": values["email"],
    }
    confirmed = not _opting_in(sign_up)
    # The open request may be sent between our insert and our read; then insert again.
    for _ in range(3):
        created = clock()
        row = tx.rows(
            insert,
            {
                **values,
                "id": time_ordered_id(created),
                "created_date": created,
                "confirmed": confirmed,
            },
            into=as_record,
        )
        if row:
            demand.request_created(tx, row[0])
            events.emit_created(tx, row[0].id, created)
            return _with_confirmation_asked(tx, row[0], sign_up, clock)
        existing = tx.rows(_OPEN_BY_REFERENCE_AND_EMAIL, key, into=as_record)
        if existing:
            return _with_confirmation_asked(tx, existing[0], sign_up, clock)
    raise RuntimeError("could not create or find the open request")


def _opting_in(sign_up: SignUp | None) -> bool:
    """Whether a create waits for its address to be confirmed (double opt-in)."""
    return sign_up is not None and sign_up.policy.require_confirmation


def _with_confirmation_asked(
    tx: Transaction, record: RequestRecord, sign_up: SignUp | None, clock: Clock
) -> RequestRecord:
    """The request; a visitor's unconfirmed one queues its confirmation email too (the
    resend throttle decides whether another is sent)."""
    if sign_up is not None and _opting_in(sign_up) and not record.confirmed:
        confirmation.ask(
            tx,
            contact_id=uuid.UUID(record.contact_id),
            email=record.email,
            now=clock(),
            resend_after=sign_up.policy.confirmation_resend,
        )
    return record


async def create_request(
    store: Store,
    *,
    request: NewRequest,
    item: ItemDetails,
    clock: Clock = utc_now,
    sign_up: SignUp | None = None,
) -> RequestRecord:
    """Store a new request, or return the shopper's open one for the same reference.

    `sign_up` is given for a visitor's create (no API key): it is held to the limits
    (app.services.limits), which raise RATE_LIMITED.
    """
    values = _validated_request_values(request, item)
    created = await store.write(lambda tx: _create(tx, values, clock, sign_up))
    if created is None:
        raise RequestCollectionDisabled(
            f"appId {values['app_id']!r} is not collecting back-in-stock requests"
        )
    if isinstance(created, Refusal):
        raise created.error()
    return created


async def get_request(store: Store, *, id: str) -> RequestRecord | None:
    """The request, or None (one reusable statement: the hot read path)."""
    rows = await store.rows(_BY_ID, {"id": parse_id(id)}, into=as_record)
    return rows[0] if rows else None


async def get_requests(
    store: Store, *, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, RequestRecord]:
    """Many requests in one query, by id (for entity resolution)."""
    rows = await store.rows(
        select_requests().where(_REQUESTS.c.id.in_(ids)), into=as_record
    )
    return {uuid.UUID(row.id): row for row in rows}


async def count_by_catalog_references(
    store: Store, *, references: Sequence[CatalogReference]
) -> list[tuple[CatalogReference, int]]:
    """Requests (any status) per reference, in the given order, zeros included."""
    violations = Violations()
    if not 1 <= len(references) <= MAX_COUNT_REFERENCES:
        violations.add(
            "catalog_references", f"must hold 1 to {MAX_COUNT_REFERENCES} references"
        )
    checked = [
        check_catalog_reference(reference, f"catalog_references[{index}]", violations)
        for index, reference in enumerate(references)
    ]
    violations.raise_if_any()
    keys = [catalog_reference_key(reference) for reference in checked]
    key_column = _REFERENCE_COUNTS.c.catalog_reference_key
    rows = await store.rows(
        select(key_column, _REFERENCE_COUNTS.c.request_count).where(
            key_column.in_(set(keys))
        )
    )
    counts = dict(rows)
    return [
        (reference, counts.get(key, 0))
        for reference, key in zip(references, keys, strict=True)
    ]
