"""Subscriptions (graphql-transport-ws at /graphql): request events as they happen."""

from __future__ import annotations

import enum
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import strawberry

from app.auth import Authenticator
from app.events.feed import EventFeed, Subscriber
from app.events.outbox import EventType, StoredEvent
from app.graphql.context import Context
from app.graphql.inputs import BackInStockNotificationRequestFilter, filter_to_domain
from app.graphql.permissions import check_permission, field_requiring
from app.graphql.types import BackInStockNotificationRequest
from app.permissions import Permission
from app.services.filter_match import matches, matches_id_only
from app.services.request_filters import RequestFilter, compile_filter
from app.services.rules import Violations

READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS
# Requests a filtered subscription remembers having matched, so their deletion (an
# event without the request) reaches it too.
REMEMBERED_REQUESTS = 100_000


@strawberry.enum
class BackInStockNotificationRequestEventType(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


_TYPES = {
    EventType.CREATED: BackInStockNotificationRequestEventType.CREATED,
    EventType.UPDATED: BackInStockNotificationRequestEventType.UPDATED,
    EventType.DELETED: BackInStockNotificationRequestEventType.DELETED,
}


@strawberry.type(description="A change of a notification request.")
class BackInStockNotificationRequestEvent:
    id: strawberry.ID = strawberry.field(
        description="The event's id: the same as its webhook's `webhook-id`."
    )
    type: BackInStockNotificationRequestEventType
    request_id: strawberry.ID
    request: BackInStockNotificationRequest | None = strawberry.field(
        description="The request after the change; null for DELETED."
    )
    event_time: datetime
    entity_event_sequence: int = strawberry.field(
        description="1, 2, 3... for the events of one request, in order."
    )

    @classmethod
    def from_event(cls, event: StoredEvent) -> BackInStockNotificationRequestEvent:
        record = event.record
        return cls(
            id=strawberry.ID(str(event.event_id)),
            type=_TYPES[event.event_type],
            request_id=strawberry.ID(str(event.request_id)),
            request=BackInStockNotificationRequest.from_record(record)
            if record is not None
            else None,
            event_time=event.event_time,
            entity_event_sequence=event.entity_event_sequence,
        )


@dataclass
class SubscriptionContext(Context):
    """A WebSocket connection's context: its credentials come in `connection_init`."""

    events: EventFeed | None = None
    authenticator: Authenticator | None = None
    # The Authorization value the principal was made from (looked up again now and then).
    authorization: str | None = None
    connection_params: dict[str, Any] = field(default_factory=dict)


def credentials(params: dict[str, Any], handshake: str | None) -> str | None:
    """The Authorization value of `connection_init`'s payload (`{"Authorization": ...}`,
    or Apollo Router's `{"token": ...}`), else the handshake's header."""
    for name, value in params.items():
        if name.lower() == "authorization" and isinstance(value, str):
            return value
    token = params.get("token")
    if isinstance(token, str):
        return f"Bearer {token}"
    return handshake


async def _still_allowed(info: strawberry.Info) -> None:
    """Look the key up again (revoked keys are refused within API_KEY_CACHE_SECONDS)."""
    context: SubscriptionContext = info.context
    if context.authenticator is not None:
        context.principal = await context.authenticator.principal_for(
            context.authorization
        )
    check_permission(info, READ_REQUESTS)


def _wanted(
    spec: RequestFilter | None, event: StoredEvent, known: dict[str, None]
) -> bool:
    """Whether the subscription's filter picks the event; `known` remembers the
    requests it picked, oldest first, so their deletion is picked too."""
    request_id = str(event.request_id)
    record = event.record
    if record is None:  # deleted: only the id is left
        by_id = matches_id_only(spec, request_id)
        if by_id is not None:
            return by_id
        return known.pop(request_id, False) is None
    if not matches(spec, record):
        known.pop(request_id, None)
        return False
    if spec is not None:
        known[request_id] = None
        if len(known) > REMEMBERED_REQUESTS:
            del known[next(iter(known))]
    return True


@strawberry.type
class Subscription:
    @field_requiring(
        READ_REQUESTS,
        "Every created, updated and deleted notification request from now on, as it "
        "happens; with `filter`, those whose request matches it (a DELETED event, "
        "which has no request, for requests this subscription saw match).",
        subscription=True,
    )
    async def back_in_stock_notification_request_events(
        self,
        info: strawberry.Info,
        filter: BackInStockNotificationRequestFilter | None = None,
    ) -> AsyncGenerator[BackInStockNotificationRequestEvent, None]:
        # Checked before the stream starts: a bad filter is refused at subscribe.
        spec = filter_to_domain(filter)
        violations = Violations()
        compile_filter(spec, violations)
        violations.raise_if_any()
        feed = info.context.events
        if feed is None:
            raise RuntimeError("subscriptions need the event feed")
        return _events(info, await feed.subscribe(), spec)


async def _events(
    info: strawberry.Info, subscriber: Subscriber, spec: RequestFilter | None
) -> AsyncGenerator[BackInStockNotificationRequestEvent, None]:
    """The subscriber's events the filter picks, until the client goes; the key is
    looked up again every API_KEY_CACHE_SECONDS (at least every second)."""
    recheck = max(1.0, info.context.settings.api_key_cache_seconds)
    known: dict[str, None] = {}
    checked = time.monotonic()
    try:
        while True:
            event = await subscriber.next(within=recheck)
            if time.monotonic() - checked >= recheck:
                await _still_allowed(info)
                checked = time.monotonic()
            if event is not None and _wanted(spec, event, known):
                yield BackInStockNotificationRequestEvent.from_event(event)
    finally:
        subscriber.close()
