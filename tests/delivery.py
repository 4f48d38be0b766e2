"""Helpers shared by the delivery tests: settings for a test mailbox, requests, reports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from starlette.applications import Starlette

from app.config import Settings
from app.models import Notification
from app.notify.dispatcher import Dispatcher
from tests.documents import (
    CREATE_REQUEST,
    GET_DELIVERY,
    ITEM,
    REPORT,
    new_request,
    reference,
)
from tests.mailbox import Mailbox

ITEM_URL = "https://shop.example/shoe-1?size=42&color=blue"
MAIL_FROM = "Shoe Shop <alerts@shop.example>"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def delivery_settings(settings: Settings, mailbox: Mailbox, **more: Any) -> Settings:
    """Mail to the test SMTP server; retries and leases short enough for tests."""
    return settings.model_copy(
        update={
            "mail_url": mailbox.url,
            "mail_from": MAIL_FROM,
            "mail_timeout_seconds": 2.0,
            "mail_final_reply_timeout_seconds": 10.0,
            # A batch starts a message only while its lease outlasts one more send (twice
            # the mail timeout, plus a margin): with 5 s, a claim half a second old sent
            # nothing, and a busy machine (parallel workers) stalls that long. No test
            # waits for these leases to run out; they expire leases by hand.
            "delivery_lease_seconds": 15.0,
            "delivery_retry_base_seconds": 0.02,
            "delivery_max_attempts": 3,
            "delivery_poll_seconds": 0.1,
            "delivery_batch_size": 20,
            **more,
        }
    )


async def create_requests(gql: Any, count: int, item_id: str = "shoe-1") -> list[str]:
    """Create `count` requests for one item (shopper0@..., shopper1@...); their ids."""
    ids = []
    for index in range(count):
        variables = new_request(
            f"shopper{index}@example.com", item_id=item_id, item_url=ITEM_URL
        )
        result = await gql(CREATE_REQUEST, variables)
        assert result.errors == [], result.errors
        ids.append(result.data["createBackInStockNotificationRequest"]["id"])
    return ids


async def report(
    gql: Any, key: str, item: dict[str, Any] = ITEM, **options: Any
) -> int:
    """Report the item back in stock (by default every request for shoe-1)."""
    if "requestIds" not in options:
        options.setdefault("catalogReference", reference())
    result = await gql(REPORT, {"itemDetails": item, "options": options}, key=key)
    assert result.errors == [], result.errors
    return result.data["reportItemsBackInStock"]["queuedCount"]


async def get(gql: Any, key: str, request_id: str) -> dict[str, Any] | None:
    """The request with its delivery fields, or None."""
    result = await gql(GET_DELIVERY, {"id": request_id}, key=key)
    assert result.errors == [], result.errors
    return result.data["backInStockNotificationRequest"]


async def queued(app: Starlette) -> int:
    return await app.state.store.scalar(select(func.count()).select_from(Notification))


async def deliver_all(
    dispatcher: Dispatcher, app: Starlette, limit: float = 30
) -> None:
    """Drain until the queue is empty, waiting out backoffs (fails after `limit` s)."""
    give_up = time.monotonic() + limit
    while await queued(app):
        assert time.monotonic() < give_up, "the queue did not empty"
        await dispatcher.drain()
        await asyncio.sleep(0.02)
    await dispatcher.close()


async def eventually(condition: Callable[[], Any], limit: float = 30.0) -> None:
    """Wait until `condition()` (sync or async) is true; fail after `limit` seconds."""
    give_up = time.monotonic() + limit
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < give_up, "condition not reached in time"
        await asyncio.sleep(0.02)
