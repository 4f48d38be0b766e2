"""The notification queue in SQL: claim a batch under a lease, record what happened.

Every statement that records an outcome is guarded by the claim's `lease_owner` token: a
dispatcher whose lease expired and was taken over records nothing, and a notification
deleted meanwhile (its request deleted or marked sent by hand) changes no request. Writes
touch `notification_requests` before `notifications`, the order the request services use,
so PostgreSQL never sees the two lock orders that make a deadlock.

A notification with `cancel_requested` (a mark or delete met it claimed) gets no new
attempt: it is settled as marked by hand (`settle_withdrawn`), unless the attempt already
in flight recorded a delivery first.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update

from app.events import outbox as events
from app.models import (
    REPORTABLE_STATUSES,
    Notification,
    NotificationRequest,
    Report,
    RequestStatus,
    table_of,
    utc_now,
)
from app.services import demand
from app.storage import Transaction

_QUEUE = table_of(Notification)
_REQUESTS = table_of(NotificationRequest)
_REPORTS = table_of(Report)
# A request's stored status while its notification is queued (see app.services.request_view).
_WAITING = {status.value for status in REPORTABLE_STATUSES}


@dataclass(frozen=True)
class Claimed:
    """One claimed notification with everything its email needs."""

    id: int
    request_id: uuid.UUID
    round: int
    # Failed attempts so far (this one not counted).
    attempts: int
    email: str
    contact_id: uuid.UUID
    item_url: str | None
    item_name: str
    item_price: str
    item_image: str | None
    template_parameters: dict[str, Any] | None


@dataclass(frozen=True)
class Failure:
    notification_id: int
    # Attempts including the one that just failed.
    attempts: int
    error: str
    # When it may be tried again; None when it has no attempts left.
    retry_at: datetime | None


def claim(
    tx: Transaction,
    *,
    owner: str,
    limit: int,
    now: datetime,
    lease_seconds: float,
    skip_locked: bool,
) -> list[int]:
    """Take up to `limit` due notifications in one statement; return their ids.

    The claim pushes `available_at` past the lease, so no other dispatcher sees them
    until the lease runs out. On PostgreSQL concurrent claims skip each other's rows.
    """
    due = (
        select(_QUEUE.c.id)
        .where(_QUEUE.c.available_at <= now)
        .order_by(_QUEUE.c.available_at, _QUEUE.c.id)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    claimed = tx.rows(
        update(_QUEUE)
        .where(_QUEUE.c.id.in_(due))
        .values(available_at=now + timedelta(seconds=lease_seconds), lease_owner=owner)
        .returning(_QUEUE.c.id)
    )
    return sorted(id for (id,) in claimed)


def load(tx: Transaction, *, ids: Sequence[int]) -> tuple[list[Claimed], list[int]]:
    """The claimed notifications to send, and the ids of those nothing should be sent for.

    Nothing is sent when the request is gone, already sent or not confirmed, or when a
    mark or delete asked for the notification to be cancelled.
    """
    rows = tx.rows(
        select(
            _QUEUE.c.id,
            _QUEUE.c.request_id,
            _QUEUE.c.round,
            _QUEUE.c.attempts,
            _QUEUE.c.cancel_requested,
            _REQUESTS.c.status,
            _REQUESTS.c.confirmed,
            _REQUESTS.c.email,
            _REQUESTS.c.contact_id,
            _REQUESTS.c.item_url,
            _REQUESTS.c.item_image.label("request_item_image"),
            _REPORTS.c.item_name,
            _REPORTS.c.item_price,
            _REPORTS.c.item_image,
            _REPORTS.c.template_parameters,
        )
        .select_from(
            _QUEUE.outerjoin(
                _REQUESTS, _REQUESTS.c.id == _QUEUE.c.request_id
            ).outerjoin(_REPORTS, _REPORTS.c.id == _QUEUE.c.report_id)
        )
        .where(_QUEUE.c.id.in_(ids))
        .order_by(_QUEUE.c.id)
    )
    sendable: list[Claimed] = []
    stale: list[int] = []
    for row in rows:
        if (
            row.status not in _WAITING
            or row.item_name is None
            or row.cancel_requested
            # Reports skip unconfirmed requests; this holds for any queued otherwise.
            or not row.confirmed
        ):
            stale.append(row.id)
            continue
        sendable.append(
            Claimed(
                id=row.id,
                request_id=row.request_id,
                round=row.round,
                attempts=row.attempts,
                email=row.email,
                contact_id=row.contact_id,
                item_url=row.item_url,
                item_name=row.item_name,
                item_price=row.item_price,
                # The report's image; the one given at create when the report has none.
                item_image=row.item_image or row.request_item_image,
                template_parameters=row.template_parameters,
            )
        )
    return sendable, stale


def _finish(owner: str, notification: Any) -> Any:
    """UPDATE the requests of the matching notifications still leased by `owner`.

    The round's number moves from the notification to the request, which no longer reads
    as PROCESSING once the notification is dropped. Written as lookups by key (no
    UPDATE ... FROM), so no planner can start from the requests' status index instead.
    """
    return (
        update(_REQUESTS)
        .where(
            _REQUESTS.c.id.in_(
                select(_QUEUE.c.request_id).where(
                    notification, _QUEUE.c.lease_owner == owner
                )
            ),
            _REQUESTS.c.status != RequestStatus.NOTIFICATION_SENT.value,
        )
        .values(delivery_round=_queued(_QUEUE.c.round), auto_notified=True)
    )


def _queued(column: Any) -> Any:
    """`column` of the notification queued for the request being updated."""
    return select(column).where(_QUEUE.c.request_id == _REQUESTS.c.id).scalar_subquery()


def _finishing(owner: str, notification: Any) -> Any:
    """The requests `_finish` changes (for their events): the same WHERE."""
    return _REQUESTS.c.id.in_(
        select(_QUEUE.c.request_id).where(notification, _QUEUE.c.lease_owner == owner)
    ) & (_REQUESTS.c.status != RequestStatus.NOTIFICATION_SENT.value)


def record_sent(tx: Transaction, *, owner: str, ids: Sequence[int]) -> int:
    """Mark the requests sent and drop their notifications; return how many were ours."""
    if not ids:
        return 0
    finishing = demand.lock_delivered(tx, owner=owner, notification_ids=ids)
    changing = events.lock_changing(tx, _finishing(owner, _QUEUE.c.id.in_(ids)))
    updated = tx.execute(
        _finish(owner, _QUEUE.c.id.in_(ids)).values(
            status=RequestStatus.NOTIFICATION_SENT.value,
            open_request=None,
            delivery_attempts=_queued(_QUEUE.c.attempts + 1),
            last_delivery_error=_queued(_QUEUE.c.last_error),
        )
    )
    drop(tx, owner=owner, ids=ids)
    demand.record_change(tx, finishing, demand.SENT_BY_SERVICE, utc_now())
    events.emit_updated(tx, changing, utc_now())
    return updated


def record_unconfirmed(
    tx: Transaction, *, owner: str, outcomes: Sequence[Failure]
) -> None:
    """Settle handed-over messages whose final reply never came: sent, with the doubt.

    The request becomes NOTIFICATION_SENT (`autoNotified = true`) with the doubt as its
    last error; it is never sent again, since the server may well have delivered it.
    """
    if not outcomes:
        return
    ids = [outcome.notification_id for outcome in outcomes]
    finishing = demand.lock_delivered(tx, owner=owner, notification_ids=ids)
    changing = events.lock_changing(tx, _finishing(owner, _QUEUE.c.id.in_(ids)))
    tx.execute(
        _finish(owner, _QUEUE.c.id == bindparam("b_notification")).values(
            status=RequestStatus.NOTIFICATION_SENT.value,
            open_request=None,
            delivery_attempts=bindparam("b_attempts"),
            last_delivery_error=bindparam("b_error"),
        ),
        [_failure_params(outcome) for outcome in outcomes],
    )
    drop(tx, owner=owner, ids=ids)
    demand.record_change(tx, finishing, demand.SENT_BY_SERVICE, utc_now())
    events.emit_updated(tx, changing, utc_now())


def _failure_params(failure: Failure) -> dict[str, Any]:
    return {
        "b_notification": failure.notification_id,
        "b_attempts": failure.attempts,
        "b_error": failure.error,
        "b_retry_at": failure.retry_at,
    }


def record_failures(
    tx: Transaction, *, owner: str, failures: Sequence[Failure]
) -> None:
    """Count failed attempts: retry later, or mark the request FAILED when none are left.

    While it is retried the notification holds the attempts and the last error, which
    the request shows (see app.services.request_view).
    """
    if not failures:
        return
    # A failed attempt of a notification whose cancel was asked for ends its round: the
    # mark (or delete) that asked now holds.
    settle_withdrawn(tx, owner=owner, ids=[f.notification_id for f in failures])
    retrying = [_failure_params(f) for f in failures if f.retry_at is not None]
    final = [_failure_params(f) for f in failures if f.retry_at is None]
    if final:
        final_ids = [row["b_notification"] for row in final]
        finishing = demand.lock_delivered(tx, owner=owner, notification_ids=final_ids)
        changing = events.lock_changing(
            tx, _finishing(owner, _QUEUE.c.id.in_(final_ids))
        )
        tx.execute(
            _finish(owner, _QUEUE.c.id == bindparam("b_notification")).values(
                status=RequestStatus.FAILED.value,
                delivery_attempts=bindparam("b_attempts"),
                last_delivery_error=bindparam("b_error"),
            ),
            final,
        )
        drop(tx, owner=owner, ids=final_ids)
        demand.record_change(tx, finishing, demand.DELIVERY_FAILED, utc_now())
        events.emit_updated(tx, changing, utc_now())
    if retrying:
        tx.execute(
            update(_QUEUE)
            .where(
                _QUEUE.c.id == bindparam("b_notification"),
                _QUEUE.c.lease_owner == owner,
            )
            .values(
                attempts=bindparam("b_attempts"),
                last_error=bindparam("b_error"),
                available_at=bindparam("b_retry_at", type_=_QUEUE.c.available_at.type),
                lease_owner=None,
            ),
            retrying,
        )


def release(tx: Transaction, *, owner: str, ids: Sequence[int]) -> None:
    """Hand claimed notifications back untried, due now."""
    if not ids:
        return
    tx.execute(
        update(_QUEUE)
        .where(_QUEUE.c.id.in_(ids), _QUEUE.c.lease_owner == owner)
        .values(available_at=_QUEUE.c.created_date, lease_owner=None)
    )


def drop(tx: Transaction, *, owner: str, ids: Sequence[int]) -> None:
    """Delete claimed notifications nothing will be sent for."""
    if not ids:
        return
    tx.execute(
        delete(_QUEUE).where(_QUEUE.c.id.in_(ids), _QUEUE.c.lease_owner == owner)
    )


def settle_withdrawn(tx: Transaction, *, owner: str, ids: Sequence[int]) -> None:
    """Settle claimed notifications whose cancel was asked for as marked sent by hand.

    The request becomes NOTIFICATION_SENT with `autoNotified = false` (what the mark
    asked for; a delete removes it next) keeping the round's attempts and error, and the
    notification is dropped unsent. Notifications among `ids` without the request are
    left alone.
    """
    if not ids:
        return
    cancelled = _QUEUE.c.id.in_(ids) & _QUEUE.c.cancel_requested.is_(True)
    withdrawn = [
        id
        for (id,) in tx.rows(
            select(_QUEUE.c.id).where(cancelled, _QUEUE.c.lease_owner == owner)
        )
    ]
    if not withdrawn:
        return
    finishing = demand.lock_delivered(tx, owner=owner, notification_ids=withdrawn)
    changing = events.lock_changing(tx, _finishing(owner, cancelled))
    tx.execute(
        update(_REQUESTS)
        .where(
            _REQUESTS.c.id.in_(
                select(_QUEUE.c.request_id).where(
                    cancelled, _QUEUE.c.lease_owner == owner
                )
            ),
            _REQUESTS.c.status != RequestStatus.NOTIFICATION_SENT.value,
        )
        .values(
            status=RequestStatus.NOTIFICATION_SENT.value,
            auto_notified=False,
            open_request=None,
            delivery_round=_queued(_QUEUE.c.round),
            delivery_attempts=_queued(_QUEUE.c.attempts),
            last_delivery_error=_queued(_QUEUE.c.last_error),
        )
    )
    tx.execute(delete(_QUEUE).where(cancelled, _QUEUE.c.lease_owner == owner))
    demand.record_change(tx, finishing, demand.MARKED_SENT, utc_now())
    events.emit_updated(tx, changing, utc_now())


def still_wanted(*, owner: str, ids: Sequence[int]) -> Any:
    """SELECT the ids of `ids` still claimed by `owner` and not asked to be cancelled."""
    return select(_QUEUE.c.id).where(
        _QUEUE.c.id.in_(ids),
        _QUEUE.c.lease_owner == owner,
        _QUEUE.c.cancel_requested.is_(False),
    )


def renew(tx: Transaction, *, owner: str, ids: Sequence[int], until: datetime) -> int:
    """Extend the lease of claimed notifications still being worked on."""
    if not ids:
        return 0
    return tx.execute(
        update(_QUEUE)
        .where(_QUEUE.c.id.in_(ids), _QUEUE.c.lease_owner == owner)
        .values(available_at=until)
    )
