"""The outbox: every change of a request writes exactly one event, in its transaction;
what does not change a request writes none."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from app.config import Settings
from app.events import deliveries
from app.events.outbox import as_event, events_after
from app.events.wakeups import CHANNEL
from app.models import NotificationRequest, utc_now
from app.notify.dispatcher import Dispatcher
from tests.conftest import GraphQLClient
from tests.delivery import create_requests, deliver_all, delivery_settings, report
from tests.documents import DELETE_REQUEST, MARK_AS_SENT, create, start_collecting
from tests.mailbox import Mailbox


async def outbox(app: Starlette) -> list[Any]:
    return await app.state.store.rows(events_after(0, 100_000), into=as_event)


def kinds(events: list[Any]) -> list[tuple[str, str | None]]:
    return [(e.type, e.record.status if e.record else None) for e in events]


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return delivery_settings(settings, mailbox)


async def test_a_create_emits_created_and_a_duplicate_create_emits_nothing(
    gql: GraphQLClient, admin_key: str, app: Starlette
):
    await start_collecting(gql, admin_key)

    first = await create(gql)
    again = await create(gql)

    events = await outbox(app)
    assert again["id"] == first["id"]
    assert kinds(events) == [("created", "RECEIVED")]
    assert events[0].record.email == "shopper@example.com"
    assert events[0].entity_event_sequence == 1


async def test_a_report_emits_one_processing_event_per_request_it_queues(
    gql: GraphQLClient, admin_key: str, app: Starlette
):
    await start_collecting(gql, admin_key)
    ids = await create_requests(gql, 5)
    await gql(MARK_AS_SENT, {"id": ids[0]}, key=admin_key)

    assert await report(gql, admin_key) == 4
    assert await report(gql, admin_key) == 0

    reported = (await outbox(app))[6:]
    assert kinds(reported) == [("updated", "PROCESSING")] * 4
    assert {str(e.request_id) for e in reported} == set(ids[1:])
    assert {e.entity_event_sequence for e in reported} == {2}


async def test_retries_emit_nothing_and_a_final_failure_emits_failed(
    gql: GraphQLClient, admin_key: str, app: Starlette, settings: Settings, mailbox
):
    await start_collecting(gql, admin_key)
    await create_requests(gql, 1)
    await report(gql, admin_key)
    mailbox.refusal = "451 4.3.0 try later"  # three attempts, then FAILED

    await deliver_all(Dispatcher(app.state.store, settings), app)

    events = await outbox(app)
    assert kinds(events) == [
        ("created", "RECEIVED"),
        ("updated", "PROCESSING"),
        ("updated", "FAILED"),
    ]
    assert events[-1].record.delivery_attempts == 3
    assert "451" in events[-1].record.last_delivery_error


async def test_a_delivery_emits_sent_and_marking_it_again_emits_nothing(
    gql: GraphQLClient, admin_key: str, app: Starlette, settings: Settings, mailbox
):
    await start_collecting(gql, admin_key)
    (request_id,) = await create_requests(gql, 1)
    await report(gql, admin_key)
    await deliver_all(Dispatcher(app.state.store, settings), app)

    await gql(MARK_AS_SENT, {"id": request_id}, key=admin_key)

    events = await outbox(app)
    assert kinds(events)[-1] == ("updated", "NOTIFICATION_SENT")
    assert len(events) == 3
    assert events[-1].record.auto_notified is True


async def test_a_delete_emits_deleted_without_the_request(
    gql: GraphQLClient, admin_key: str, app: Starlette
):
    await start_collecting(gql, admin_key)
    request = await create(gql)
    await report(gql, admin_key)

    await gql(DELETE_REQUEST, {"id": request["id"]}, key=admin_key)
    missing = await gql(DELETE_REQUEST, {"id": request["id"]}, key=admin_key)

    events = await outbox(app)
    assert missing.codes == ["BACK_IN_STOCK_NOTIFICATION_REQUEST_NOT_FOUND"]
    assert kinds(events) == [
        ("created", "RECEIVED"),
        ("updated", "PROCESSING"),
        ("deleted", None),
    ]
    assert events[-1].entity is None
    assert events[-1].entity_event_sequence == 3


ERASE = "mutation Erase($email: String!) { eraseBackInStockDataByEmail(email: $email) }"


async def test_erasing_an_email_emits_deleted_for_each_of_its_requests(
    gql: GraphQLClient, admin_key: str, app: Starlette
):
    await start_collecting(gql, admin_key)
    gone = [await create(gql, email="gone@example.com", item_id=item) for item in "ab"]
    kept = await create(gql, email="kept@example.com")

    erased = await gql(ERASE, {"email": "Gone@Example.com"}, key=admin_key)

    assert erased.data == {"eraseBackInStockDataByEmail": 2}
    left = await app.state.store.rows(select(NotificationRequest.id))
    assert [str(id) for (id,) in left] == [kept["id"]]
    deleted = [e for e in await outbox(app) if e.type == "deleted"]
    assert sorted(str(e.request_id) for e in deleted) == sorted(r["id"] for r in gone)
    assert all(e.entity is None for e in deleted)


async def test_old_events_are_purged_but_each_requests_latest_is_kept(
    gql: GraphQLClient, admin_key: str, app: Starlette
):
    await start_collecting(gql, admin_key)
    kept = await create(gql, email="kept@example.com")
    await gql(MARK_AS_SENT, {"id": kept["id"]}, key=admin_key)
    gone = await create(gql, email="gone@example.com")
    await gql(DELETE_REQUEST, {"id": gone["id"]}, key=admin_key)
    later = utc_now() + timedelta(seconds=1)

    purged = await app.state.store.write(
        lambda tx: deliveries.purge(tx, before=later, limit=100)
    )

    left = await outbox(app)
    assert purged == 3
    assert kinds(left) == [("updated", "NOTIFICATION_SENT")]
    # The next event of the kept request goes on from its sequence.
    await gql(DELETE_REQUEST, {"id": kept["id"]}, key=admin_key)
    assert (await outbox(app))[-1].entity_event_sequence == 3


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_create_notifies_every_process_listening_on_postgresql(
    settings: Settings, gql: GraphQLClient, admin_key: str
):
    await start_collecting(gql, admin_key)
    url = make_url(settings.database_url).set(drivername="postgresql")
    listener = await asyncpg.connect(url.render_as_string(hide_password=False))
    heard = asyncio.Event()
    try:
        await listener.add_listener(CHANNEL, lambda *_: heard.set())

        await create(gql, email="heard@example.com")

        # Delivered at the create's commit (other processes' feeds wake on it).
        await asyncio.wait_for(heard.wait(), 5)
    finally:
        await listener.close()
