"""Webhook outcomes in SQL: deliveries done or retried, endpoints' diagnostics, disabling.

Every transaction writes endpoints before deliveries, so PostgreSQL never sees two lock
orders (a deadlock). Writes to deliveries are guarded by the claim's token: a dispatcher
whose lease was taken over records nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, true, update

from app.events.deliveries import FAN_OUT_LOCK, Failure
from app.models import WebhookDelivery, WebhookEndpoint, table_of
from app.storage import Transaction

_ENDPOINTS = table_of(WebhookEndpoint)
_DELIVERIES = table_of(WebhookDelivery)
_EARLIER = _DELIVERIES.alias("earlier")


def _release_next(
    tx: Transaction, owner: str, ids: Sequence[int], now: datetime
) -> None:
    """Let the next delivery of each finished one's request and endpoint go."""
    done = _DELIVERIES.alias("done")
    following = (
        select(_EARLIER.c.id)
        .where(
            _EARLIER.c.request_id == done.c.request_id,
            _EARLIER.c.endpoint_id == done.c.endpoint_id,
            _EARLIER.c.event_id > done.c.event_id,
        )
        .order_by(_EARLIER.c.event_id)
        .limit(1)
        .correlate(done)
        .scalar_subquery()
    )
    finished = select(following).where(done.c.id.in_(ids), done.c.lease_owner == owner)
    tx.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id.in_(finished), _DELIVERIES.c.available_at.is_(None))
        .values(available_at=now)
    )


def finish(tx: Transaction, *, owner: str, ids: Sequence[int], now: datetime) -> None:
    """Drop deliveries that are done (delivered or given up), releasing the next."""
    if not ids:
        return
    if tx.dialect == "postgresql":
        tx.scalar(select(func.pg_advisory_xact_lock_shared(*FAN_OUT_LOCK)))
    _release_next(tx, owner, ids, now)
    tx.execute(
        delete(_DELIVERIES).where(
            _DELIVERIES.c.id.in_(ids), _DELIVERIES.c.lease_owner == owner
        )
    )


def record_successes(
    tx: Transaction, *, endpoint_ids: set[uuid.UUID], now: datetime
) -> None:
    if endpoint_ids:
        tx.execute(
            update(_ENDPOINTS)
            .where(_ENDPOINTS.c.id.in_(endpoint_ids))
            .values(last_success_date=now, failing_since=None)
        )


def note_failures(
    tx: Transaction, *, failures: Sequence[Failure], now: datetime
) -> None:
    """Note the last error on each endpoint that failed."""
    if not failures:
        return
    last_error = {f.endpoint_id: f.error for f in failures}
    tx.execute(
        update(_ENDPOINTS)
        .where(_ENDPOINTS.c.id == bindparam("b_endpoint"))
        .values(
            last_failure_date=now,
            last_error=bindparam("b_error"),
            failing_since=func.coalesce(_ENDPOINTS.c.failing_since, now),
        ),
        [{"b_endpoint": id, "b_error": error} for id, error in last_error.items()],
    )


def retry_or_give_up(
    tx: Transaction, *, owner: str, failures: Sequence[Failure], now: datetime
) -> None:
    """Failed deliveries: due again after their backoff, or given up."""
    retrying = [f for f in failures if f.retry_at is not None]
    if retrying:
        tx.execute(
            update(_DELIVERIES)
            .where(
                _DELIVERIES.c.id == bindparam("b_delivery"),
                _DELIVERIES.c.lease_owner == owner,
            )
            .values(
                attempts=bindparam("b_attempts"),
                last_error=bindparam("b_error"),
                available_at=bindparam(
                    "b_retry_at", type_=_DELIVERIES.c.available_at.type
                ),
                lease_owner=None,
            ),
            [
                {
                    "b_delivery": f.delivery_id,
                    "b_attempts": f.attempts,
                    "b_error": f.error,
                    "b_retry_at": f.retry_at,
                }
                for f in retrying
            ],
        )
    given_up = [f.delivery_id for f in failures if f.retry_at is None]
    finish(tx, owner=owner, ids=given_up, now=now)


def disable(tx: Transaction, *, where: Any, reason: str) -> list[uuid.UUID]:
    """Disable the enabled endpoints `where` picks; their ids (for `drop_owed`)."""
    return [
        id
        for (id,) in tx.rows(
            update(_ENDPOINTS)
            .where(where, _ENDPOINTS.c.enabled == true())
            .values(enabled=False, disabled_reason=reason)
            .returning(_ENDPOINTS.c.id)
        )
    ]


def drop_owed(tx: Transaction, *, endpoint_ids: Sequence[uuid.UUID]) -> None:
    """Drop every delivery owed to these (disabled) endpoints."""
    if endpoint_ids:
        tx.execute(
            delete(_DELIVERIES).where(_DELIVERIES.c.endpoint_id.in_(endpoint_ids))
        )


def failing_since_before(moment: datetime) -> Any:
    return and_(
        _ENDPOINTS.c.failing_since.is_not(None), _ENDPOINTS.c.failing_since < moment
    )


def release(tx: Transaction, *, owner: str, ids: Sequence[int], now: datetime) -> None:
    """Hand claimed deliveries back untried, due now."""
    if ids:
        tx.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.id.in_(ids), _DELIVERIES.c.lease_owner == owner)
            .values(available_at=now, lease_owner=None)
        )
