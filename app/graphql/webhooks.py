"""Webhook endpoints in GraphQL: list, create, delete, rotate the secret, redeliver."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.events import endpoints as endpoint_service
from app.events.endpoints import EndpointRecord
from app.graphql.permissions import field_requiring
from app.permissions import Permission

MODIFY_SETTINGS = Permission.MODIFY_BACK_IN_STOCK_NOTIFICATION_SETTINGS


@strawberry.type(
    description="A URL that receives request events as signed POSTs (Standard Webhooks)."
)
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    event_types: list[str] | None = strawberry.field(
        description="The Wix event names it receives; null for all."
    )
    enabled: bool = strawberry.field(
        description="False once it answered 410 Gone or failed for longer than "
        "WEBHOOK_DISABLE_AFTER_SECONDS; redeliverWebhookEvents enables it again."
    )
    created_date: datetime
    disabled_reason: str | None
    last_success_date: datetime | None = strawberry.field(
        description="The last delivery it accepted (2xx)."
    )
    last_failure_date: datetime | None
    last_error: str | None = strawberry.field(
        description="Why the last failed delivery failed."
    )
    failing_since: datetime | None = strawberry.field(
        description="The first failure since the last success; null while it succeeds."
    )
    pending_count: int = strawberry.field(
        description="Events owed to it: waiting, being retried or in flight."
    )

    @classmethod
    def from_record(cls, record: EndpointRecord) -> WebhookEndpoint:
        return cls(
            id=strawberry.ID(str(record.id)),
            url=record.url,
            event_types=list(record.event_types) if record.event_types else None,
            enabled=record.enabled,
            created_date=record.created_date,
            disabled_reason=record.disabled_reason,
            last_success_date=record.last_success_date,
            last_failure_date=record.last_failure_date,
            last_error=record.last_error,
            failing_since=record.failing_since,
            pending_count=record.pending_count,
        )


@strawberry.type
class CreateWebhookEndpointResult:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(
        description="`whsec_` + base64 of 32 random bytes; shown only here."
    )


@strawberry.type
class RotateWebhookEndpointSecretResult:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(
        description="The new secret, shown only here; the previous one also signs for "
        "24 hours."
    )


@strawberry.type
class RedeliverWebhookEventsResult:
    endpoint: WebhookEndpoint
    queued_count: int = strawberry.field(
        description="Events queued again (those still pending are not counted)."
    )


@strawberry.type
class WebhookQuery:
    @field_requiring(MODIFY_SETTINGS, "Every webhook endpoint, oldest first.")
    async def webhook_endpoints(self, info: strawberry.Info) -> list[WebhookEndpoint]:
        records = await endpoint_service.list_endpoints(info.context.store)
        return [WebhookEndpoint.from_record(record) for record in records]


@strawberry.type
class WebhookMutation:
    @field_requiring(
        MODIFY_SETTINGS,
        "Send request events to `url` from now on (`eventTypes`: Wix event names, "
        "null for all). The secret that signs them is returned only here.",
        mutation=True,
    )
    async def create_webhook_endpoint(
        self, info: strawberry.Info, url: str, event_types: list[str] | None = None
    ) -> CreateWebhookEndpointResult:
        settings = info.context.settings
        record, secret = await endpoint_service.create_endpoint(
            info.context.store,
            url=url,
            event_types=event_types,
            allow_private=settings.webhook_allow_private_targets,
            max_endpoints=settings.webhook_max_endpoints,
            clock=info.context.clock,
        )
        return CreateWebhookEndpointResult(
            endpoint=WebhookEndpoint.from_record(record), secret=secret
        )

    @field_requiring(
        MODIFY_SETTINGS,
        "Delete an endpoint and drop what it is owed; returns its id.",
        mutation=True,
    )
    async def delete_webhook_endpoint(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> strawberry.ID:
        deleted = await endpoint_service.delete_endpoint(info.context.store, id=id)
        return strawberry.ID(str(deleted))

    @field_requiring(
        MODIFY_SETTINGS,
        "Give an endpoint a new secret (returned only here); the previous one keeps "
        "signing too for 24 hours.",
        mutation=True,
    )
    async def rotate_webhook_endpoint_secret(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> RotateWebhookEndpointSecretResult:
        record, secret = await endpoint_service.rotate_secret(
            info.context.store, id=id, clock=info.context.clock
        )
        return RotateWebhookEndpointSecretResult(
            endpoint=WebhookEndpoint.from_record(record), secret=secret
        )

    @field_requiring(
        MODIFY_SETTINGS,
        "Send an endpoint again every kept event since `since` it wants, in order, and "
        "enable it if it was disabled.",
        mutation=True,
    )
    async def redeliver_webhook_events(
        self, info: strawberry.Info, endpoint_id: strawberry.ID, since: datetime
    ) -> RedeliverWebhookEventsResult:
        record, queued = await endpoint_service.redeliver_events(
            info.context.store,
            endpoint_id=endpoint_id,
            since=since,
            clock=info.context.clock,
        )
        return RedeliverWebhookEventsResult(
            endpoint=WebhookEndpoint.from_record(record), queued_count=queued
        )
