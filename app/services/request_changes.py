"""Deleting a request and marking it sent: the two changes that may meet its email in
flight.

A dispatcher that holds a request's notification may be talking to the mail server right
now, and the database cannot call that email back. Both changes therefore ask the holder
to start no new attempt, wait (a bounded while) for the attempt under way to end, and only
then change the request, so what they answer is what happened (README: "Mark as sent on a
queued request" and "Deleting a queued request").
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from functools import partial

from sqlalchemy import bindparam, delete, func, select, update

from app.events import outbox as events
from app.models import (
    Clock,
    Notification,
    NotificationRequest,
    RequestStatus,
    table_of,
    utc_now,
)
from app.services import demand
from app.services.errors import RequestNotFound
from app.services.request_view import RequestRecord, as_record, select_requests
from app.services.rules import parse_id
from app.storage import Store, Transaction

# How long a mark or delete waits for an email of its request being sent (the server
# passes Settings.in_flight_wait_seconds).
IN_FLIGHT_WAIT_SECONDS = 40.0
_REQUESTS = table_of(NotificationRequest)
_QUEUE = table_of(Notification)
_BY_ID = select_requests().where(
    _REQUESTS.c.id == bindparam("id", type_=_REQUESTS.c.id.type)
)


def _not_found(id: str) -> RequestNotFound:
    return RequestNotFound(f"no back-in-stock notification request with id {id}")


# The request's notification, while a dispatcher's lease on it holds: an attempt may be
# in flight (the dispatcher knows which; the database does not).
_CLAIMED = (
    _QUEUE.c.request_id == bindparam("b_request", type_=_QUEUE.c.request_id.type),
    _QUEUE.c.lease_owner.is_not(None),
    _QUEUE.c.available_at > bindparam("b_now", type_=_QUEUE.c.available_at.type),
)
_STILL_CLAIMED = select(func.count()).select_from(Notification).where(*_CLAIMED)
_ASK_TO_CANCEL = update(Notification).where(*_CLAIMED).values(cancel_requested=True)
# Between two looks at an email in flight (doubling from the first).
_FIRST_LOOK_SECONDS = 0.02
_LAST_LOOK_SECONDS = 0.2


def _cancel_if_claimed(tx: Transaction, request_id: uuid.UUID, now: datetime) -> bool:
    """Ask the dispatcher holding the request's notification to start no attempt of it.

    True when one holds it: an attempt may be in flight, and it records what happened.
    """
    return tx.execute(_ASK_TO_CANCEL, {"b_request": request_id, "b_now": now}) > 0


async def _until_released(store: Store, request_id: uuid.UUID, deadline: float) -> None:
    """Wait until no dispatcher holds the request's notification, or until `deadline`."""
    pause = _FIRST_LOOK_SECONDS
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(pause, left))
        # Leases are the dispatchers' clocks, not the injectable one of the services.
        params = {"b_request": request_id, "b_now": utc_now()}
        if not await store.scalar(_STILL_CLAIMED, params):
            return
        pause = min(pause * 2, _LAST_LOOK_SECONDS)


def _delete(
    tx: Transaction, request_id: uuid.UUID, now: datetime, wait: bool
) -> bool | None:
    """Delete the request and its notification; None when `wait` and one is claimed."""
    if wait and _cancel_if_claimed(tx, request_id, now):
        return None
    counted = demand.lock_request(tx, request_id)
    events.emit_deleted(tx, _REQUESTS.c.id == request_id, now)
    deleted = tx.execute(
        delete(NotificationRequest).where(_REQUESTS.c.id == request_id)
    )
    # Cascades on PostgreSQL; said outright so it holds with any foreign-key setting.
    tx.execute(delete(Notification).where(_QUEUE.c.request_id == request_id))
    demand.record_change(tx, counted, None)
    return deleted > 0


async def delete_request(
    store: Store, *, id: str, in_flight_wait: float = IN_FLIGHT_WAIT_SECONDS
) -> uuid.UUID:
    """Delete a request (and its queued email); return its id.

    An email of it being sent right now cannot be called back: the delete waits up to
    `in_flight_wait` seconds for that attempt to end, then deletes (the email may still
    arrive if the mail server has not answered by then). No new attempt starts meanwhile.
    """
    request_id = parse_id(id)
    deadline = time.monotonic() + in_flight_wait
    while True:
        wait = time.monotonic() < deadline
        now = utc_now()
        deleted = await store.write(
            partial(_delete, request_id=request_id, now=now, wait=wait)
        )
        if deleted is not None:
            break
        await _until_released(store, request_id, deadline)
    if not deleted:
        raise _not_found(id)
    return request_id


def _mark_as_sent(
    tx: Transaction, request_id: uuid.UUID, now: datetime
) -> tuple[RequestRecord, bool] | None:
    """The mark transaction: the request, and whether an attempt may be in flight.

    When a dispatcher holds the notification nothing is changed but the cancel asked
    for; the attempt in flight records what happened, or the mark is settled then.
    """
    in_flight = _cancel_if_claimed(tx, request_id, utc_now())
    if not in_flight and _mark_now(tx, request_id, now):
        events.emit_updated(tx, [request_id], now)
    found = tx.rows(_BY_ID, {"id": request_id}, into=as_record)
    return (found[0], in_flight) if found else None


def _mark_now(tx: Transaction, request_id: uuid.UUID, now: datetime) -> bool:
    """Mark the request sent now; False when it already was."""
    counted = demand.lock_request(tx, request_id)
    # A round under way ends here: the request keeps its attempts and error.
    tx.execute(
        update(NotificationRequest)
        .where(
            _REQUESTS.c.id == _QUEUE.c.request_id,
            _QUEUE.c.request_id == request_id,
            _REQUESTS.c.status != RequestStatus.NOTIFICATION_SENT.value,
        )
        .values(
            delivery_attempts=_QUEUE.c.attempts,
            last_delivery_error=_QUEUE.c.last_error,
        )
    )
    changed = tx.execute(
        update(NotificationRequest)
        .where(
            _REQUESTS.c.id == request_id,
            _REQUESTS.c.status != RequestStatus.NOTIFICATION_SENT.value,
        )
        .values(
            status=RequestStatus.NOTIFICATION_SENT.value,
            auto_notified=False,
            open_request=None,
        )
    )
    # A notification still queued for it would now be a second email.
    tx.execute(delete(Notification).where(_QUEUE.c.request_id == request_id))
    demand.record_change(tx, counted, demand.MARKED_SENT, now)
    return changed > 0


async def mark_as_notification_sent(
    store: Store,
    *,
    id: str,
    in_flight_wait: float = IN_FLIGHT_WAIT_SECONDS,
    clock: Clock = utc_now,
) -> RequestRecord:
    """Record an email sent outside the service; a sent request stays as it is.

    When the service's own email of the request is being sent right now, the mark waits
    up to `in_flight_wait` seconds for that attempt and returns the request as it then
    is: NOTIFICATION_SENT with `auto_notified` true if that email went out. If the mail
    server still has not answered, the request is returned PROCESSING, and the mark takes
    effect when the attempt ends without a delivery.
    """
    request_id = parse_id(id)
    deadline = time.monotonic() + in_flight_wait
    while True:
        now = clock()
        marked = await store.write(
            partial(_mark_as_sent, request_id=request_id, now=now)
        )
        if marked is None:
            raise _not_found(id)
        record, in_flight = marked
        if not in_flight or time.monotonic() >= deadline:
            return record
        await _until_released(store, request_id, deadline)
