"""What is stored about an email address: exporting it, erasing it, unsubscribing it,
and deleting what is kept no longer (RETENTION_DAYS).

Every removal of requests goes through `remove_requests`, one place that drops their
queued emails too and tells whoever keeps derived data (`_requests_removed`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, exists, select

from app.events import outbox as events
from app.models import (
    Clock,
    EmailConfirmation,
    Notification,
    NotificationRequest,
    RequestStatus,
    table_of,
    utc_now,
)
from app.services import demand, limits
from app.services.request_view import RequestRecord, as_record, select_requests
from app.services.rules import (
    MAX_EMAIL_LENGTH,
    Violations,
    contact_id_for,
    normalize_email,
)
from app.storage import Store, Transaction

_REQUESTS = table_of(NotificationRequest)
_QUEUE = table_of(Notification)
_CONFIRMATIONS = table_of(EmailConfirmation)
# Requests deleted per transaction when purging.
PURGE_BATCH = 500
_SETTLED = (RequestStatus.NOTIFICATION_SENT.value, RequestStatus.FAILED.value)


def _requests_removed(
    tx: Transaction, selection: ColumnElement[bool], now: datetime
) -> list[demand.Counted]:
    """Called right before `selection`'s requests are deleted, in that transaction,
    while they can still be read: the one place for data derived from requests to follow
    (the demand counters, app/services/demand.py; they are recounted once the rows are
    gone, by `_requests_gone`) and the requests' `deleted` events (app/events/outbox.py).
    """
    counted = demand.lock_selected(tx, selection)
    events.emit_deleted(tx, selection, now)
    return counted


def _requests_gone(tx: Transaction, removed: list[demand.Counted]) -> None:
    demand.record_change(tx, removed, None)


def remove_requests(
    tx: Transaction, selection: ColumnElement[bool], now: datetime
) -> int:
    """Delete the requests `selection` picks and their queued emails; how many.

    An email of theirs a dispatcher is handing to the mail server at this moment cannot
    be called back; every other queued one is dropped (a dispatcher drops a notification
    whose request is gone, and withdraws one it has not started within 0.25 s).
    """
    counted = _requests_removed(tx, selection, now)
    removed = [
        id
        for (id,) in tx.rows(
            # Only those whose `deleted` event was written: one created meanwhile stays.
            delete(_REQUESTS)
            .where(selection, events.deletion_written())
            .returning(_REQUESTS.c.id)
        )
    ]
    if removed:
        tx.execute(delete(_QUEUE).where(_QUEUE.c.request_id.in_(removed)))
        _requests_gone(tx, counted)
    return len(removed)


def checked_email(email: str, field: str = "email") -> str:
    """The address as stored (trimmed, lower-case). Erasing and exporting accept any
    address that could have been stored, so no syntax is checked beyond its length."""
    normalized = normalize_email(email)
    violations = Violations()
    if not 1 <= len(normalized) <= MAX_EMAIL_LENGTH:
        violations.add(field, f"must be 1 to {MAX_EMAIL_LENGTH} characters long")
    violations.raise_if_any()
    return normalized


def _forget_confirmation(tx: Transaction, contact_id: uuid.UUID) -> None:
    tx.execute(delete(_CONFIRMATIONS).where(_CONFIRMATIONS.c.contact_id == contact_id))


async def erase_email(store: Store, *, email: str, clock: Clock = utc_now) -> int:
    """Delete everything stored about an address; return how many requests it had."""
    address = checked_email(email)
    now = clock()

    def erase(tx: Transaction) -> int:
        removed = remove_requests(tx, _REQUESTS.c.email == address, now)
        limits.forget_email(tx, address)
        _forget_confirmation(tx, contact_id_for(address))
        return removed

    return await store.write(erase)


async def unsubscribe(
    store: Store, *, contact_id: uuid.UUID, clock: Clock = utc_now
) -> int:
    """Stop every further email to a contact: its waiting requests (not yet sent) are
    deleted with their queued emails; return how many. Sent ones stay, as history."""
    now = clock()
    waiting = and_(
        _REQUESTS.c.contact_id == contact_id, _REQUESTS.c.open_request.is_(True)
    )

    def run(tx: Transaction) -> int:
        removed = remove_requests(tx, waiting, now)
        _forget_confirmation(tx, contact_id)
        return removed

    return await store.write(run)


# -- export ----------------------------------------------------------------------------


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _request_document(
    record: RequestRecord, queued: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": record.id,
        "catalogReference": {
            "appId": record.app_id,
            "catalogItemId": record.catalog_item_id,
            "options": record.options,
        },
        "status": record.status,
        "confirmed": record.confirmed,
        "autoNotified": record.auto_notified,
        "createdDate": _time(record.created_date),
        "itemUrl": record.item_url,
        "itemDetails": {
            "name": record.item_name,
            "price": record.item_price,
            "image": record.item_image,
        },
        "deliveryRound": record.delivery_round,
        "deliveryAttempts": record.delivery_attempts,
        "lastDeliveryError": record.last_delivery_error,
        "queuedEmail": queued,
    }


_QUEUED = select(
    _QUEUE.c.request_id,
    _QUEUE.c.round,
    _QUEUE.c.attempts,
    _QUEUE.c.last_error,
    _QUEUE.c.available_at,
    _QUEUE.c.lease_owner,
)
_CONFIRMATION_OF = select(
    _CONFIRMATIONS.c.requested_date,
    _CONFIRMATIONS.c.available_at,
    _CONFIRMATIONS.c.round,
    _CONFIRMATIONS.c.attempts,
    _CONFIRMATIONS.c.last_error,
    _CONFIRMATIONS.c.sent_date,
).where(_CONFIRMATIONS.c.contact_id == bindparam("contact_id"))


async def export_email(store: Store, *, email: str) -> dict[str, Any]:
    """Everything stored about an address, as one JSON document (the API's names)."""
    address = checked_email(email)
    contact_id = contact_id_for(address)
    records = await store.rows(
        select_requests()
        .where(_REQUESTS.c.email == address)
        .order_by(_REQUESTS.c.created_date, _REQUESTS.c.id),
        into=as_record,
    )
    queued = {}
    if records:
        rows = await store.rows(
            _QUEUED.where(_QUEUE.c.request_id.in_([r.uuid for r in records]))
        )
        queued = {
            str(row.request_id): {
                "round": row.round,
                "attempts": row.attempts,
                "lastError": row.last_error,
                "nextAttemptAt": _time(row.available_at),
                "beingSent": row.lease_owner is not None,
            }
            for row in rows
        }
    counters = await store.rows(limits.counters_of_email_rows(address))
    confirmation = await store.rows(_CONFIRMATION_OF, {"contact_id": contact_id})
    return {
        "email": address,
        "contactId": str(contact_id),
        "requests": [_request_document(r, queued.get(r.id)) for r in records],
        "rateLimitCounters": [
            {
                "windowSeconds": row.window_seconds,
                "windowStart": _time(row.window_start),
                "hits": row.hits,
                "expiresAt": _time(row.expires_at),
            }
            for row in counters
        ],
        "confirmationEmail": _confirmation_document(confirmation),
    }


def _confirmation_document(rows: list[Any]) -> dict[str, Any] | None:
    if not rows:
        return None
    (row,) = rows
    return {
        "requestedDate": _time(row.requested_date),
        "pending": row.available_at is not None,
        "round": row.round,
        "attempts": row.attempts,
        "lastError": row.last_error,
        "sentDate": _time(row.sent_date),
    }


# -- retention -------------------------------------------------------------------------


def _batch_of(where: ColumnElement[bool]) -> Any:
    return select(_REQUESTS.c.id).where(where).limit(PURGE_BATCH)


def purge_settled(tx: Transaction, now: datetime, days: float) -> int:
    """Delete up to PURGE_BATCH sent or failed requests created over `days` days ago
    (none queued again: a failed request a report queued is waiting once more)."""
    cutoff = now - timedelta(days=days)
    old = and_(
        _REQUESTS.c.status.in_(_SETTLED),
        _REQUESTS.c.created_date < cutoff,
        ~exists().where(_QUEUE.c.request_id == _REQUESTS.c.id),
    )
    ids = [id for (id,) in tx.rows(_batch_of(old))]
    if not ids:
        return 0
    return remove_requests(tx, _REQUESTS.c.id.in_(ids), now)
