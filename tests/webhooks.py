"""Helpers shared by the webhook and event tests: documents, settings, a receiver."""

from __future__ import annotations

from typing import Any

from app.config import Settings
from tests.receiver import Receiver

EVENT = "wix.ecom.v1.back_in_stock_notification_request_"
CREATED, UPDATED, DELETED = (
    f"{EVENT}{name}" for name in ("created", "updated", "deleted")
)

ENDPOINT_FIELDS = """
    id url eventTypes enabled createdDate disabledReason lastSuccessDate
    lastFailureDate lastError failingSince pendingCount
"""
CREATE_ENDPOINT = f"""
mutation Create($url: String!, $eventTypes: [String!]) {{
  createWebhookEndpoint(url: $url, eventTypes: $eventTypes) {{
    secret endpoint {{ {ENDPOINT_FIELDS} }}
  }}
}}
"""
LIST_ENDPOINTS = f"query {{ webhookEndpoints {{ {ENDPOINT_FIELDS} }} }}"
DELETE_ENDPOINT = "mutation Delete($id: ID!) { deleteWebhookEndpoint(id: $id) }"
ROTATE_SECRET = f"""
mutation Rotate($id: ID!) {{
  rotateWebhookEndpointSecret(id: $id) {{ secret endpoint {{ {ENDPOINT_FIELDS} }} }}
}}
"""
REDELIVER = f"""
mutation Redeliver($id: ID!, $since: DateTime!) {{
  redeliverWebhookEvents(endpointId: $id, since: $since) {{
    queuedCount endpoint {{ {ENDPOINT_FIELDS} }}
  }}
}}
"""


def webhook_settings(settings: Settings, **more: Any) -> Settings:
    """A dispatcher in the app, loopback receivers allowed, retries in milliseconds."""
    return settings.model_copy(
        update={
            "dispatch_in_serve": True,
            "webhook_allow_private_targets": True,
            "webhook_timeout_seconds": 2.0,
            "webhook_retry_base_seconds": 0.05,
            "webhook_retry_max_delay_seconds": 0.2,
            "delivery_poll_seconds": 0.05,
            "delivery_lease_seconds": 5.0,
            "mail_timeout_seconds": 2.0,
            **more,
        }
    )


async def add_endpoint(
    gql: Any, key: str, receiver: Receiver, event_types: list[str] | None = None
) -> dict[str, Any]:
    """Register the receiver (which learns the secret); the endpoint as returned."""
    result = await gql(
        CREATE_ENDPOINT, {"url": receiver.url, "eventTypes": event_types}, key=key
    )
    assert result.errors == [], result.errors
    created = result.data["createWebhookEndpoint"]
    receiver.secrets.append(created["secret"])
    return created["endpoint"]


async def endpoints(gql: Any, key: str) -> list[dict[str, Any]]:
    result = await gql(LIST_ENDPOINTS, key=key)
    assert result.errors == [], result.errors
    return result.data["webhookEndpoints"]
