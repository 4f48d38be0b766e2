"""What a webhook sends: the event as JSON, signed the Standard Webhooks way.

The body is `{"type", "timestamp", "data": {"entity", "metadata"}}`, the same bytes for
every attempt of an event; `webhook-id` is the event's id, `webhook-timestamp` the
attempt's time, and `webhook-signature` is `v1,` + base64(HMAC-SHA256(key, "id.timestamp.
body")) for each live secret (two during a rotation), where the key is the base64 text
after the secret's `whsec_`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as random_source
from collections.abc import Sequence
from typing import Any

import orjson

from app.events.outbox import StoredEvent
from app.services.request_view import RequestRecord

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (Standard Webhooks asks for 24 to 64)."""
    return (
        SECRET_PREFIX
        + base64.b64encode(random_source.token_bytes(SECRET_BYTES)).decode()
    )


def api_entity(record: RequestRecord) -> dict[str, Any]:
    """The request as the API shows it: the GraphQL type's fields and names."""
    return {
        "id": record.id,
        "catalogReference": {
            "appId": record.app_id,
            "catalogItemId": record.catalog_item_id,
            "options": record.options,
        },
        "email": record.email,
        "contactId": record.contact_id,
        "status": record.status,
        "autoNotified": record.auto_notified,
        "confirmed": record.confirmed,
        "createdDate": record.created_date.isoformat(),
        "itemUrl": record.item_url,
        "itemDetails": {
            "name": record.item_name,
            "price": record.item_price,
            "image": record.item_image,
        },
        "deliveryAttempts": record.delivery_attempts,
        "lastDeliveryError": record.last_delivery_error,
    }


def body(event: StoredEvent) -> bytes:
    """The JSON body of `event`'s delivery (no entity for a deletion)."""
    data: dict[str, Any] = {}
    record = event.record
    if record is not None:
        data["entity"] = api_entity(record)
    event_time = event.event_time.isoformat()
    data["metadata"] = {
        "id": str(event.event_id),
        "entityId": str(event.request_id),
        "eventTime": event_time,
        "entityEventSequence": event.entity_event_sequence,
    }
    payload = {"type": event.event_type.wix_name, "timestamp": event_time, "data": data}
    return orjson.dumps(payload)


def signature(
    secrets: Sequence[str], message_id: str, timestamp: int, content: bytes
) -> str:
    """The `webhook-signature` header: one `v1,<base64>` per secret, space-separated."""
    signed = f"{message_id}.{timestamp}.".encode() + content
    signatures = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)


def headers(
    secrets: Sequence[str], event: StoredEvent, timestamp: int, content: bytes
) -> dict[str, str]:
    message_id = str(event.event_id)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, message_id, timestamp, content),
    }
