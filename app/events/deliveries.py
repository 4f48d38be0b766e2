"""Webhook deliveries in SQL: fan events out to endpoints, claim under a lease, record.

Events are fanned out in id order, a batch at a time and one dispatcher at a time, into
`webhook_deliveries` (one row per event and endpoint that wants it). A request's events
reach an endpoint in order: a delivery waits (`available_at` NULL) while an earlier one of
the same request and endpoint is pending, and is released when that one is delivered or
given up. Claims and records work like the mail queue's (app/notify/queue.py): leases,
guarded by the claim's token, `SKIP LOCKED` on PostgreSQL; outcomes are recorded by
app/events/outcomes.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    case,
    delete,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from app.events.outbox import EventType, StoredEvent
from app.models import RequestEvent, WebhookDelivery, WebhookEndpoint, table_of
from app.storage import Transaction

_EVENTS = table_of(RequestEvent)
_ENDPOINTS = table_of(WebhookEndpoint)
_DELIVERIES = table_of(WebhookDelivery)
_EARLIER = _DELIVERIES.alias("earlier")
# Written as the partial index's own predicate: SQLite uses the index only for that
# (SQLAlchemy would write `webhooks_pending = 1`).
_PENDING = text("request_events.webhooks_pending")
# PostgreSQL advisory lock (two-int form): held alone while deliveries are added (so a
# new delivery never waits on one whose release it cannot see) and shared while
# deliveries finish and release their successors.
FAN_OUT_LOCK = (0x62_69_73_45, 1)


@dataclass(frozen=True)
class Claimed:
    """One claimed delivery with what its POST needs."""

    id: int
    attempts: int
    # When the delivery was first due: retries stop WEBHOOK_RETRY_FOR_SECONDS later.
    created_date: datetime
    endpoint_id: uuid.UUID
    url: str
    secrets: tuple[str, ...]
    event: StoredEvent


@dataclass(frozen=True)
class Failure:
    delivery_id: int
    endpoint_id: uuid.UUID
    attempts: int
    error: str
    # None: given up (the event is dropped for this endpoint, the next one goes on).
    retry_at: datetime | None


def _wants(event_type: Any) -> Any:
    """The endpoint wants events of `event_type` (its list, or all when it has none)."""
    return or_(
        _ENDPOINTS.c.event_types.is_(None),
        _ENDPOINTS.c.event_types.contains(event_type),
    )


def _insert_deliveries(dialect: str, rows: Any) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(WebhookDelivery)
        .from_select(
            [
                "endpoint_id",
                "event_id",
                "request_id",
                "attempts",
                "available_at",
                "created_date",
            ],
            rows,
        )
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
    )


def _deliveries_of(events_where: Any, endpoints_where: Any, now: datetime) -> Any:
    """SELECT a delivery row per matching event and endpoint; each waits when an earlier
    event of its request is pending for its endpoint (in this batch or before)."""
    earlier_in_batch = (
        func.row_number().over(
            partition_by=(_ENDPOINTS.c.id, _EVENTS.c.request_id),
            order_by=_EVENTS.c.id,
        )
        > 1
    )
    earlier_pending = exists().where(
        _EARLIER.c.request_id == _EVENTS.c.request_id,
        _EARLIER.c.endpoint_id == _ENDPOINTS.c.id,
        _EARLIER.c.event_id < _EVENTS.c.id,
    )
    moment = literal(now, _DELIVERIES.c.available_at.type)
    return (
        select(
            _ENDPOINTS.c.id,
            _EVENTS.c.id,
            _EVENTS.c.request_id,
            literal(0),
            case((or_(earlier_in_batch, earlier_pending), null()), else_=moment),
            literal(now, _DELIVERIES.c.created_date.type),
        )
        .select_from(_EVENTS.join(_ENDPOINTS, true()))
        .where(events_where, endpoints_where, _wants(_EVENTS.c.type))
        .order_by(_EVENTS.c.id)
    )


def fan_out(tx: Transaction, *, now: datetime, limit: int) -> int:
    """Make the deliveries of up to `limit` pending events, oldest first; how many
    events were done (0: none pending, or another dispatcher is at it)."""
    if tx.dialect == "postgresql" and not tx.scalar(
        select(func.pg_try_advisory_xact_lock(*FAN_OUT_LOCK))
    ):
        return 0
    ids = [
        id
        for (id,) in tx.rows(
            select(_EVENTS.c.id).where(_PENDING).order_by(_EVENTS.c.id).limit(limit)
        )
    ]
    if not ids:
        return 0
    rows = _deliveries_of(_EVENTS.c.id.in_(ids), _ENDPOINTS.c.enabled == true(), now)
    tx.execute(_insert_deliveries(tx.dialect, rows))
    tx.execute(
        update(_EVENTS).where(_EVENTS.c.id.in_(ids)).values(webhooks_pending=False)
    )
    return len(ids)


def redeliver(
    tx: Transaction, *, endpoint_id: uuid.UUID, since: datetime, now: datetime
) -> int:
    """Owe the endpoint again every kept event since `since` it wants (those still
    pending stay as they are); how many were added."""
    if tx.dialect == "postgresql":
        tx.scalar(select(func.pg_advisory_xact_lock(*FAN_OUT_LOCK)))
    rows = _deliveries_of(
        _EVENTS.c.event_time >= since, _ENDPOINTS.c.id == endpoint_id, now
    )
    return tx.execute(_insert_deliveries(tx.dialect, rows))


def claim(
    tx: Transaction,
    *,
    owner: str,
    limit: int,
    now: datetime,
    lease_seconds: float,
    skip_locked: bool,
) -> list[int]:
    """Take up to `limit` due deliveries, none behind an earlier one of its request."""
    due = (
        select(_DELIVERIES.c.id)
        .where(
            _DELIVERIES.c.available_at <= now,
            ~exists().where(
                _EARLIER.c.request_id == _DELIVERIES.c.request_id,
                _EARLIER.c.endpoint_id == _DELIVERIES.c.endpoint_id,
                _EARLIER.c.event_id < _DELIVERIES.c.event_id,
            ),
        )
        .order_by(_DELIVERIES.c.available_at, _DELIVERIES.c.id)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True, of=_DELIVERIES)
    claimed = tx.rows(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id.in_(due))
        .values(available_at=now + timedelta(seconds=lease_seconds), lease_owner=owner)
        .returning(_DELIVERIES.c.id)
    )
    return sorted(id for (id,) in claimed)


def load(tx: Transaction, *, ids: Sequence[int], now: datetime) -> list[Claimed]:
    rows = tx.rows(
        select(
            _DELIVERIES.c.id,
            _DELIVERIES.c.attempts,
            _DELIVERIES.c.created_date,
            _ENDPOINTS.c.id.label("endpoint_id"),
            _ENDPOINTS.c.url,
            _ENDPOINTS.c.secret,
            _ENDPOINTS.c.previous_secret,
            _ENDPOINTS.c.previous_secret_expires,
            _EVENTS.c.id.label("event_id"),
            _EVENTS.c.type,
            _EVENTS.c.request_id,
            _EVENTS.c.entity_event_sequence,
            _EVENTS.c.event_time,
            _EVENTS.c.entity,
        )
        .select_from(
            _DELIVERIES.join(
                _ENDPOINTS, _ENDPOINTS.c.id == _DELIVERIES.c.endpoint_id
            ).join(_EVENTS, _EVENTS.c.id == _DELIVERIES.c.event_id)
        )
        .where(_DELIVERIES.c.id.in_(ids))
        .order_by(_DELIVERIES.c.id)
    )
    claimed = []
    for row in rows:
        secrets: tuple[str, ...] = (row.secret,)
        expires = row.previous_secret_expires
        if row.previous_secret and expires is not None and expires > now:
            secrets += (row.previous_secret,)
        event = StoredEvent(
            row.event_id,
            row.type,
            row.request_id,
            row.entity_event_sequence,
            row.event_time,
            row.entity,
        )
        claimed.append(
            Claimed(
                row.id,
                row.attempts,
                row.created_date,
                row.endpoint_id,
                row.url,
                secrets,
                event,
            )
        )
    return claimed


def purge(tx: Transaction, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` events older than `before` that nothing needs any more:
    fanned out, owed to no endpoint, and followed by a later event of their request
    (its latest is kept, so its sequence goes on) or a deletion."""
    later = _EVENTS.alias("later")
    superseded = exists().where(
        later.c.request_id == _EVENTS.c.request_id,
        later.c.entity_event_sequence > _EVENTS.c.entity_event_sequence,
    )
    owed = exists().where(
        _DELIVERIES.c.request_id == _EVENTS.c.request_id,
        _DELIVERIES.c.event_id == _EVENTS.c.id,
    )
    doomed = (
        select(_EVENTS.c.id)
        .where(
            _EVENTS.c.event_time < before,
            _EVENTS.c.webhooks_pending == false(),
            or_(_EVENTS.c.type == EventType.DELETED.value, superseded),
            ~owed,
        )
        .limit(limit)
    )
    return tx.execute(delete(_EVENTS).where(_EVENTS.c.id.in_(doomed)))
