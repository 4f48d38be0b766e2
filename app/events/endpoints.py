"""Webhook endpoints: create, list, delete, rotate the secret, redeliver.

A new endpoint receives the events committed after it was created (of the types it
asked for, all when none). Its secret is returned by create and rotate only; after a
rotation the previous secret signs too for ROTATION_OVERLAP, so receivers can switch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, func, insert, select, update

from app.events import deliveries
from app.events.outbox import EventType
from app.events.payloads import new_secret
from app.events.targets import TargetRefused, resolve
from app.models import Clock, WebhookDelivery, WebhookEndpoint, table_of, utc_now
from app.services.errors import ServiceError
from app.services.rules import MAX_URL_LENGTH, Violations, is_http_url, parse_id
from app.storage import Store, Transaction

ROTATION_OVERLAP = timedelta(hours=24)
_ENDPOINTS = table_of(WebhookEndpoint)
_DELIVERIES = table_of(WebhookDelivery)
_BY_WIX_NAME = {event_type.wix_name: event_type for event_type in EventType}


class WebhookEndpointNotFound(ServiceError):
    code = "WEBHOOK_ENDPOINT_NOT_FOUND"


class WebhookEndpointLimitReached(ServiceError):
    code = "WEBHOOK_ENDPOINT_LIMIT_REACHED"


class EndpointRecord(NamedTuple):
    """An endpoint with its delivery diagnostics (never its secret)."""

    id: uuid.UUID
    url: str
    # Wix event names; None for all.
    event_types: tuple[str, ...] | None
    enabled: bool
    disabled_reason: str | None
    created_date: datetime
    last_success_date: datetime | None
    last_failure_date: datetime | None
    last_error: str | None
    failing_since: datetime | None
    # Deliveries owed to it (waiting, retrying or in flight).
    pending_count: int


_PENDING = (
    select(func.count())
    .where(_DELIVERIES.c.endpoint_id == _ENDPOINTS.c.id)
    .correlate(_ENDPOINTS)
    .scalar_subquery()
)
_LIST = select(
    _ENDPOINTS.c.id,
    _ENDPOINTS.c.url,
    _ENDPOINTS.c.event_types,
    _ENDPOINTS.c.enabled,
    _ENDPOINTS.c.disabled_reason,
    _ENDPOINTS.c.created_date,
    _ENDPOINTS.c.last_success_date,
    _ENDPOINTS.c.last_failure_date,
    _ENDPOINTS.c.last_error,
    _ENDPOINTS.c.failing_since,
    _PENDING,
).order_by(_ENDPOINTS.c.created_date, _ENDPOINTS.c.id)


def _record(row: Sequence[object]) -> EndpointRecord:
    values = list(row)
    types = values[2]
    values[2] = (
        None
        if types is None
        else tuple(EventType(name).wix_name for name in str(types).split(","))
    )
    return EndpointRecord._make(values)


def _check_event_types(
    names: Sequence[str] | None, violations: Violations
) -> str | None:
    """The stored form: comma-separated short types in a fixed order; None for all."""
    if names is None:
        return None
    if not names:
        violations.add("event_types", "must name at least one event type, or be null")
        return None
    wanted = set()
    for index, name in enumerate(names):
        if name not in _BY_WIX_NAME:
            violations.add(
                f"event_types[{index}]",
                f"must be one of {', '.join(_BY_WIX_NAME)}",
            )
        else:
            wanted.add(_BY_WIX_NAME[name])
    return ",".join(t.value for t in EventType if t in wanted)


async def _check_url(url: str, allow_private: bool, violations: Violations) -> None:
    if len(url) > MAX_URL_LENGTH or not is_http_url(url):
        violations.add(
            "url",
            f"must be an absolute http(s) URL of at most {MAX_URL_LENGTH} characters",
        )
        return
    try:
        await resolve(url, allow_private=allow_private)
    except TargetRefused as error:
        violations.add(
            "url",
            f"must reach a public address ({error}); WEBHOOK_ALLOW_PRIVATE_TARGETS=true "
            "allows private ones",
        )


async def create_endpoint(
    store: Store,
    *,
    url: str,
    event_types: Sequence[str] | None,
    allow_private: bool,
    max_endpoints: int,
    clock: Clock = utc_now,
) -> tuple[EndpointRecord, str]:
    """A new enabled endpoint and its secret (shown only now)."""
    violations = Violations()
    stored_types = _check_event_types(event_types, violations)
    await _check_url(url, allow_private, violations)
    violations.raise_if_any()
    id, secret, now = uuid.uuid4(), new_secret(), clock()

    def create(tx: Transaction) -> EndpointRecord | None:
        if tx.scalar(select(func.count()).select_from(_ENDPOINTS)) >= max_endpoints:
            return None
        tx.execute(
            insert(_ENDPOINTS).values(
                id=id,
                url=url,
                event_types=stored_types,
                secret=secret,
                enabled=True,
                created_date=now,
            )
        )
        return _one(tx, id)

    created = await store.write(create)
    if created is None:
        raise WebhookEndpointLimitReached(
            f"at most {max_endpoints} webhook endpoints (WEBHOOK_MAX_ENDPOINTS)"
        )
    return created, secret


def _one(tx: Transaction, id: uuid.UUID) -> EndpointRecord | None:
    rows = tx.rows(_LIST.where(_ENDPOINTS.c.id == id))
    return _record(rows[0]) if rows else None


def _not_found(id: object) -> WebhookEndpointNotFound:
    return WebhookEndpointNotFound(f"no webhook endpoint with id {id}")


async def list_endpoints(store: Store) -> list[EndpointRecord]:
    return [_record(row) for row in await store.rows(_LIST)]


async def delete_endpoint(store: Store, *, id: str) -> uuid.UUID:
    """Delete an endpoint and everything owed to it: nothing more is sent to it (a POST
    already under way finishes)."""
    endpoint_id = parse_id(id)

    def remove(tx: Transaction) -> int:
        # The endpoint first: every transaction locks endpoints before deliveries.
        removed = tx.execute(delete(_ENDPOINTS).where(_ENDPOINTS.c.id == endpoint_id))
        tx.execute(delete(_DELIVERIES).where(_DELIVERIES.c.endpoint_id == endpoint_id))
        return removed

    if not await store.write(remove):
        raise _not_found(id)
    return endpoint_id


async def rotate_secret(
    store: Store, *, id: str, clock: Clock = utc_now
) -> tuple[EndpointRecord, str]:
    """A new secret; the previous one keeps signing too for ROTATION_OVERLAP."""
    endpoint_id, secret, now = parse_id(id), new_secret(), clock()

    def rotate(tx: Transaction) -> EndpointRecord | None:
        tx.execute(
            update(_ENDPOINTS)
            .where(_ENDPOINTS.c.id == endpoint_id)
            .values(
                previous_secret=_ENDPOINTS.c.secret,
                previous_secret_expires=now + ROTATION_OVERLAP,
                secret=secret,
            )
        )
        return _one(tx, endpoint_id)

    rotated = await store.write(rotate)
    if rotated is None:
        raise _not_found(id)
    return rotated, secret


async def redeliver_events(
    store: Store, *, endpoint_id: str, since: datetime, clock: Clock = utc_now
) -> tuple[EndpointRecord, int]:
    """Send the endpoint again every kept event since `since` it wants, in order, and
    enable it if it was disabled; returns how many deliveries were added."""
    id, now = parse_id(endpoint_id, "endpoint_id"), clock()

    def again(tx: Transaction) -> tuple[EndpointRecord, int] | None:
        enabled = tx.execute(
            update(_ENDPOINTS)
            .where(_ENDPOINTS.c.id == id)
            .values(enabled=True, disabled_reason=None, failing_since=None)
        )
        if not enabled:
            return None
        added = deliveries.redeliver(tx, endpoint_id=id, since=since, now=now)
        record = _one(tx, id)
        assert record is not None
        return record, added

    done = await store.write(again)
    if done is None:
        raise _not_found(endpoint_id)
    return done
