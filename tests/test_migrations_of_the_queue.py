"""What the migrations do to the queue: a request queued before a migration reads and
is delivered as it was, and the queue's copies of its fields are filled in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from app.config import Settings
from app.migrate import upgrade_database
from app.notify import queue
from app.services.requests import get_request
from app.services.rules import (
    CatalogReference,
    catalog_reference_key,
    contact_id_for,
)
from app.storage import Transaction, open_store

TABLES = SQLModel.metadata.tables


def _request(request_id: uuid.UUID, created: datetime, status: str) -> dict[str, Any]:
    """A request row as every migration so far stores it."""
    return {
        "id": request_id,
        "app_id": "app",
        "catalog_item_id": "item",
        "options": None,
        "catalog_reference_key": catalog_reference_key(CatalogReference("app", "item")),
        "email": "a@example.com",
        "contact_id": contact_id_for("a@example.com"),
        "status": status,
        "open_request": True,
        "auto_notified": None,
        "created_date": created,
        "item_url": None,
        "item_name": "Shoe",
        "item_price": "1.00",
        "item_image": None,
        "delivery_round": 1,
        "delivery_attempts": 0,
        "last_delivery_error": None,
    }


def _queued(request_id: uuid.UUID, at: datetime) -> dict[str, Any]:
    """Its notification, queued by report 1 at `at`, as every migration so far stores
    one (round 1, no createdDate of the request's)."""
    return {
        "id": 1,
        "request_id": request_id,
        "report_id": 1,
        "round": 1,
        "available_at": at,
        "created_date": at,
    }


async def test_a_request_processing_before_0002_still_is_and_its_email_is_still_due(
    empty_url: str, engine: AsyncEngine
):
    # given: at 0001 a report stored PROCESSING (round 1) on the request and queued round 1
    await upgrade_database(empty_url, "0001")
    request_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(TABLES["notification_requests"]),
            _request(request_id, now, "PROCESSING"),
        )
        await connection.execute(
            sa.insert(TABLES["reports"]),
            {"id": 1, "item_name": "Shoe", "item_price": "1.00", "created_date": now},
        )
        await connection.execute(
            sa.insert(TABLES["notifications"]), _queued(request_id, now)
        )

    # when
    await upgrade_database(empty_url)

    # then: it reads as PROCESSING, and the queued email is sent as round 1
    store = open_store(Settings(_env_file=None, database_url=empty_url))
    try:
        row = await get_request(store, id=str(request_id))
        assert row is not None
        assert row.status == "PROCESSING"

        def deliver(tx: Transaction) -> tuple[list[queue.Claimed], list[int]]:
            tx.execute(sa.update(TABLES["notifications"]).values(lease_owner="me"))
            loaded = queue.load(tx, ids=[1])
            queue.record_sent(tx, owner="me", ids=[1])
            return loaded

        sendable, stale = await store.write(deliver)
        assert [(n.request_id, n.round) for n in sendable] == [(request_id, 1)]
        assert stale == []
        row = await get_request(store, id=str(request_id))
        assert row is not None
        assert (row.status, row.delivery_round) == ("NOTIFICATION_SENT", 1)
    finally:
        await store.dispose()


async def test_a_request_queued_before_0014_has_its_created_date_in_the_queue(
    empty_url: str, engine: AsyncEngine
):
    # given: at 0013 a queued request (the queue held no createdDate then)
    await upgrade_database(empty_url, "0013_item_url_count_indexes")
    request_id = uuid.uuid4()
    created = datetime(2026, 11, 30, 8, 15, 30, 123456, tzinfo=UTC)
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(TABLES["notification_requests"]),
            _request(request_id, created, "RECEIVED"),
        )
        await connection.execute(
            sa.insert(TABLES["notifications"]), _queued(request_id, created)
        )

    # when
    await upgrade_database(empty_url)

    # then: the queue holds the request's createdDate, exactly as the request does
    queued = TABLES["notifications"]
    requests = TABLES["notification_requests"]
    async with engine.connect() as connection:
        copied, original = (
            await connection.execute(
                sa.select(queued.c.request_created_date, requests.c.created_date).join(
                    requests, requests.c.id == queued.c.request_id
                )
            )
        ).one()
    assert copied == original == created
