"""The demand counters always equal a recount of the requests: after random creates,
reports, deliveries, marks and deletes, when such changes race, and after the migration
that made them from the requests already there."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from app.config import Settings
from app.migrate import upgrade_database
from app.models import (
    Notification,
    NotificationRequest,
    Report,
    utc_now,
)
from app.notify.dispatcher import Dispatcher
from app.services.request_view import as_record, select_requests
from app.services.requests import _validated_request_values
from app.services.rules import CatalogReference, ItemDetails, NewRequest
from app.storage import open_store
from tests.clock import TestClock, app_with_clock
from tests.documents import (
    DELETE_REQUEST,
    MARK_AS_SENT,
    REPORT,
    create,
    reference,
    start_collecting,
)
from tests.mailbox import Mailbox
from tests.recount import (
    all_requests,
    day,
    recount,
    recount_references,
    recount_totals,
    recount_urls,
    stored_demand,
    stored_reference_counts,
    stored_stats,
    stored_totals,
    stored_url_demand,
)

ITEM = {"name": "Blue shoe", "price": "24.50"}
ITEMS = [("stores", "shoe-1"), ("stores", "shoe-2"), ("pos", "shoe-1")]
OPTIONS = [None, {"size": 42}]
# Shared by items and apps, in two letter cases, or none.
ITEM_URLS = [
    None,
    "https://Shop.example/a",
    "https://shop.example/A",
    "https://b.example",
]


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    # One refused attempt fails a request for good.
    return settings.model_copy(
        update={
            "mail_url": mailbox.url,
            "mail_timeout_seconds": 2.0,
            "delivery_lease_seconds": 5.0,
            "delivery_max_attempts": 1,
            "delivery_batch_size": 7,
        }
    )


@pytest.fixture
def clock() -> TestClock:
    # Days in the past, so what reports queue is due for the dispatcher at once.
    return TestClock(utc_now() - timedelta(days=30))


@pytest.fixture
async def app(settings: Settings, clock: TestClock) -> AsyncIterator[Starlette]:
    async for application in app_with_clock(settings, clock):
        yield application


class Model:
    """The stats as they should be: the requests' changes between two listings."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}
        self.stats: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0])

    def observe(self, now: dict[str, dict[str, Any]], on: date) -> None:
        for request_id, request in now.items():
            app_id = request["catalogReference"]["appId"]
            before = self.seen.get(request_id)
            if before is None:
                created = datetime.fromisoformat(request["createdDate"])
                self.stats[(day(created), app_id)][0] += 1
            status = request["status"]
            if before is not None and before["status"] != status:
                if status == "NOTIFICATION_SENT":
                    self.stats[(on, app_id)][1] += 1
                elif status == "FAILED":
                    self.stats[(on, app_id)][2] += 1
        self.seen = now

    def expected(self) -> dict[tuple[date, str], tuple[int, int, int]]:
        return {key: tuple(value) for key, value in self.stats.items() if any(value)}


async def random_operation(
    rng: random.Random, gql, key, clock, dispatcher, mailbox, known: list[str]
) -> date:
    """One random change through the public API; returns the day it counts on."""
    clock.now += timedelta(hours=rng.choice([0, 1, 7, 30]))
    roll = rng.random()
    if roll < 0.45 or not known:
        app_id, item_id = rng.choice(ITEMS)
        made = await create(
            gql,
            email=f"s{rng.randrange(5)}@example.com",
            item_id=item_id,
            app_id=app_id,
            options=rng.choice(OPTIONS),
            item_url=rng.choice(ITEM_URLS),
        )
        known.append(made["id"])
    elif roll < 0.65:
        app_id, item_id = rng.choice(ITEMS)
        options: dict[str, Any] = (
            {"requestIds": rng.sample(known, min(len(known), rng.randint(1, 4)))}
            if rng.random() < 0.3
            else {"catalogReference": reference(item_id, rng.choice(OPTIONS), app_id)}
        )
        if rng.random() < 0.6:
            options["availableQuantity"] = rng.randint(0, 3)
        result = await gql(REPORT, {"itemDetails": ITEM, "options": options}, key=key)
        assert result.errors == [], result.errors
    elif roll < 0.75:
        await gql(MARK_AS_SENT, {"id": rng.choice(known)}, key=key)
    elif roll < 0.85:
        await gql(DELETE_REQUEST, {"id": rng.choice(known)}, key=key)
    else:
        mailbox.refusal = rng.choice([None, "550 5.1.1 no such mailbox"])
        await dispatcher.drain()
        return day(utc_now())
    return day(clock.now)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_counters_equal_a_recount_after_random_operations(
    app, gql, admin_key, clock, settings, mailbox, seed
):
    # given
    rng = random.Random(seed)
    dispatcher = Dispatcher(app.state.store, settings)
    for app_id in {app_id for app_id, _ in ITEMS}:
        await start_collecting(gql, admin_key, app_id)
    model, known = Model(), []

    for step in range(50):
        # when
        on = await random_operation(
            rng, gql, admin_key, clock, dispatcher, mailbox, known
        )
        requests = await all_requests(gql, admin_key)
        model.observe(requests, on)

        # then
        if step % 10 == 9:
            store = app.state.store
            assert await stored_demand(store) == recount(requests), f"step {step}"
            assert await stored_totals(store) == recount_totals(requests), step
            assert await stored_url_demand(store) == recount_urls(requests), step
            assert await stored_stats(store) == model.expected(), f"step {step}"
            references = await recount_references(store)
            assert await stored_reference_counts(store) == references, step
    await dispatcher.close()


async def test_counters_stay_exact_when_changes_race(
    app, gql, admin_key, settings, mailbox
):
    # given: twelve shoppers waiting for one item (on PostgreSQL all of the below runs
    # at once, on a pool of connections)
    await start_collecting(gql, admin_key)
    ids = [(await create(gql, email=f"s{n}@example.com"))["id"] for n in range(12)]
    dispatchers = [Dispatcher(app.state.store, settings) for _ in range(2)]
    by_reference = {"itemDetails": ITEM, "options": {"catalogReference": reference()}}
    quantity = {
        "itemDetails": ITEM,
        "options": {"catalogReference": reference(), "availableQuantity": 2},
    }

    # when
    await asyncio.gather(
        *(gql(REPORT, quantity, key=admin_key) for _ in range(3)),
        gql(REPORT, by_reference, key=admin_key),
        *(gql(MARK_AS_SENT, {"id": id}, key=admin_key) for id in ids[::3]),
        *(gql(DELETE_REQUEST, {"id": id}, key=admin_key) for id in ids[1::4]),
        *(create(gql, email=f"late{n}@example.com") for n in range(4)),
        *(dispatcher.drain() for dispatcher in dispatchers),
    )
    for dispatcher in dispatchers:
        await dispatcher.drain()
        await dispatcher.close()

    # then
    requests = await all_requests(gql, admin_key)
    assert await stored_demand(app.state.store) == recount(requests)
    assert await stored_totals(app.state.store) == recount_totals(requests)
    assert await stored_url_demand(app.state.store) == recount_urls(requests)
    assert await stored_url_demand(app.state.store) == recount_urls(requests)
    references = await recount_references(app.state.store)
    assert await stored_reference_counts(app.state.store) == references


async def _wait_until_blocked(connection: asyncpg.Connection, application: str) -> None:
    """Until a statement of the service waits for a lock (never a fixed sleep)."""
    while not await connection.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() AND application_name = $1",
        application,
    ):
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_mark_waiting_for_a_report_counts_the_request_as_processing(
    app, gql, admin_key, database_url
):
    # given: a report under way (its transaction open) has queued a request
    await start_collecting(gql, admin_key)
    request_id = (await create(gql))["id"]
    report = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    transaction = report.transaction()
    await transaction.start()
    await report.execute(
        "SELECT id FROM notification_requests WHERE id = $1 FOR SHARE",
        uuid.UUID(request_id),
    )
    await report.execute(
        "INSERT INTO reports (item_name, item_price, created_date) "
        "VALUES ('Shoe', '1.00', now())"
    )
    await report.execute(
        "INSERT INTO notifications (request_id, report_id, round, attempts, "
        "available_at, created_date) "
        "SELECT $1, max(id), 1, 0, now(), now() FROM reports",
        uuid.UUID(request_id),
    )
    for counters in ("catalog_item_demand", "request_totals"):
        await report.execute(
            f"UPDATE {counters} SET received_count = received_count - 1, "
            "processing_count = processing_count + 1"
        )

    # when: the mark waits for the report, which then commits
    mark = asyncio.create_task(gql(MARK_AS_SENT, {"id": request_id}, key=admin_key))
    await _wait_until_blocked(report, "backinstock")
    await transaction.commit()
    await report.close()
    marked = await mark

    # then: the mark took it from PROCESSING, where the report had put it
    assert marked.errors == []
    requests = await all_requests(gql, admin_key)
    assert await stored_demand(app.state.store) == recount(requests)
    assert await stored_totals(app.state.store) == recount_totals(requests)
    references = await recount_references(app.state.store)
    assert await stored_reference_counts(app.state.store) == references


# --------------------------------------------------------------------------- migration


def _request_row(index: int, status: str, created: datetime) -> dict[str, Any]:
    app_id, item_id = ITEMS[index % len(ITEMS)]
    values = _validated_request_values(
        NewRequest(CatalogReference(app_id, item_id), f"s{index}@example.com"),
        ItemDetails("Shoe", "1.00"),
    )
    sent = status == "NOTIFICATION_SENT"
    return {
        **values,
        "id": uuid.UUID(int=index + 1),
        "status": status,
        "open_request": None if sent else True,
        "created_date": created,
        "item_url": ITEM_URLS[index % len(ITEM_URLS)],
    }


async def test_the_migration_counts_the_requests_already_there(empty_url: str):
    # given: a database at 0002 with requests in every status, one of them queued
    await upgrade_database(empty_url, "0002")
    start = datetime(2026, 1, 5, 22, tzinfo=UTC)
    statuses = ["RECEIVED", "FAILED", "NOTIFICATION_SENT", "RECEIVED"] * 3
    rows = [
        _request_row(index, status, start + timedelta(hours=5 * index))
        for index, status in enumerate(statuses)
    ]
    engine = create_async_engine(empty_url)
    async with engine.begin() as connection:
        await connection.execute(sa.insert(NotificationRequest.__table__), rows)
        await connection.execute(
            sa.insert(Report.__table__),
            {"id": 1, "item_name": "Shoe", "item_price": "1.00", "created_date": start},
        )
        await connection.execute(
            sa.insert(Notification.__table__),
            {
                "request_id": rows[0]["id"],
                "report_id": 1,
                "round": 1,
                "available_at": start,
                "created_date": start,
            },
        )
    await engine.dispose()

    # when
    await upgrade_database(empty_url)

    # then
    store = open_store(Settings(_env_file=None, database_url=empty_url))
    try:
        requests = {
            row.id: {
                "status": row.status,
                "autoNotified": row.auto_notified,
                "createdDate": row.created_date.isoformat(),
                "itemUrl": row.item_url,
                "catalogReference": {
                    "appId": row.app_id,
                    "catalogItemId": row.catalog_item_id,
                },
            }
            for row in await store.rows(select_requests(), into=as_record)
        }
        assert await stored_demand(store) == recount(requests)
        assert await stored_totals(store) == recount_totals(requests)
        assert await stored_url_demand(store) == recount_urls(requests)
        references = await recount_references(store)
        assert references  # every request counted for its reference
        assert await stored_reference_counts(store) == references
        created = Counter((day(row["created_date"]), row["app_id"]) for row in rows)
        assert await stored_stats(store) == {
            key: (count, 0, 0) for key, count in created.items()
        }
    finally:
        await store.dispose()
