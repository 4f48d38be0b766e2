"""Simultaneous writes on one database: nothing is queued twice, no state is lost, and
what was queued is delivered once.

On PostgreSQL these run on a pool of connections at once; on SQLite they take turns.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.config import Settings
from app.models import Notification
from app.notify.dispatcher import Dispatcher
from tests.documents import (
    DELETE_REQUEST,
    GET_REQUEST,
    MARK_AS_SENT,
    REPORT,
    SETTINGS,
    START_COLLECTING,
    STOP_COLLECTING,
    create,
    reference,
    start_collecting,
)
from tests.mailbox import Mailbox

ITEM = {"name": "Blue shoe", "price": "24.50"}
SHOPPERS = 30


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    """Queued notifications go to the test mailbox when a test delivers them."""
    return settings.model_copy(update={"mail_url": mailbox.url})


@pytest.fixture
async def waiting(gql, admin_key) -> list[str]:
    """Ids of SHOPPERS requests for one item, all RECEIVED."""
    await start_collecting(gql, admin_key)
    return [
        (await create(gql, email=f"shopper{n}@example.com"))["id"]
        for n in range(SHOPPERS)
    ]


async def deliver_everything(app: Starlette, settings: Settings) -> None:
    """Send every queued notification to the test mailbox (nothing is due later)."""
    dispatcher = Dispatcher(app.state.store, settings)
    stats = await dispatcher.drain()
    await dispatcher.close()
    assert stats.failed == 0


async def status_of(gql: Any, key: str, id: str) -> tuple[str, bool | None] | None:
    result = await gql(GET_REQUEST, {"id": id}, key=key)
    assert result.errors == [], result.errors
    request = result.data["backInStockNotificationRequest"]
    return None if request is None else (request["status"], request["autoNotified"])


async def emails_of(gql: Any, key: str, ids: list[str]) -> list[str]:
    emails = []
    for id in ids:
        result = await gql(GET_REQUEST, {"id": id}, key=key)
        emails.append(result.data["backInStockNotificationRequest"]["email"])
    return emails


async def queued_per_request(app: Starlette) -> list[int]:
    rows = await app.state.store.rows(
        select(func.count()).select_from(Notification).group_by(Notification.request_id)
    )
    return sorted(count for (count,) in rows)


async def test_simultaneous_reports_queue_each_request_once(
    app, gql, admin_key, waiting
):
    by_reference = {"catalogReference": reference()}
    by_ids = {"requestIds": waiting}
    calls = [by_reference, by_ids] * 4

    results = await asyncio.gather(
        *(
            gql(REPORT, {"itemDetails": ITEM, "options": o}, key=admin_key)
            for o in calls
        )
    )

    assert [r.errors for r in results if r.errors] == []
    queued = [r.data["reportItemsBackInStock"]["queuedCount"] for r in results]
    assert sum(queued) == SHOPPERS
    assert await queued_per_request(app) == [1] * SHOPPERS


async def test_mark_as_sent_racing_a_report_leaves_no_email_for_a_sent_request(
    app, gql, admin_key, waiting, settings, mailbox
):
    # given: a report and marks of every other request, all at once
    report = gql(
        REPORT,
        {"itemDetails": ITEM, "options": {"catalogReference": reference()}},
        key=admin_key,
    )
    marked = waiting[::2]
    marks = [gql(MARK_AS_SENT, {"id": id}, key=admin_key) for id in marked]

    # when: they race, then everything queued is delivered
    results = await asyncio.gather(report, *marks)
    queued_for = {
        str(id) for (id,) in await app.state.store.rows(select(Notification.request_id))
    }
    per_request = await queued_per_request(app)
    await deliver_everything(app, settings)

    # then: nothing was queued for a marked request, which stays marked by hand; every
    # other request was queued once and emailed once
    assert [r.errors for r in results if r.errors] == []
    assert not queued_for & set(marked)
    others = [id for id in waiting if id not in marked]
    assert per_request == [1] * len(others)
    assert queued_for == set(others)
    assert mailbox.recipients() == sorted(await emails_of(gql, admin_key, others))
    for id in marked:
        assert await status_of(gql, admin_key, id) == ("NOTIFICATION_SENT", False)
    for id in others:
        assert await status_of(gql, admin_key, id) == ("NOTIFICATION_SENT", True)


async def test_delete_racing_a_report_leaves_no_notification_for_a_deleted_request(
    app, gql, admin_key, waiting, settings, mailbox
):
    # given
    report = gql(
        REPORT,
        {"itemDetails": ITEM, "options": {"catalogReference": reference()}},
        key=admin_key,
    )
    deleted = waiting[::2]
    deletes = [gql(DELETE_REQUEST, {"id": id}, key=admin_key) for id in deleted]

    # when
    results = await asyncio.gather(report, *deletes)
    queued_for = {
        str(id) for (id,) in await app.state.store.rows(select(Notification.request_id))
    }
    await deliver_everything(app, settings)

    # then: either the report came first and the deletes dropped what it queued for
    # theirs, or the deletes came first and the report skipped them; every other
    # request was queued and emailed once
    assert [r.errors for r in results if r.errors] == []
    assert [r.data["deleteBackInStockNotificationRequest"] for r in results[1:]] == (
        deleted
    )
    assert not queued_for & set(deleted)
    others = [id for id in waiting if id not in deleted]
    assert queued_for == set(others)
    assert mailbox.recipients() == sorted(await emails_of(gql, admin_key, others))
    for id in deleted:
        assert await status_of(gql, admin_key, id) is None
    for id in others:
        assert await status_of(gql, admin_key, id) == ("NOTIFICATION_SENT", True)


async def test_simultaneous_start_and_stop_leave_one_state_per_app(gql, admin_key):
    calls = [
        gql(
            START_COLLECTING if n % 2 else STOP_COLLECTING,
            {"appId": f"app-{n % 3}"},
            key=admin_key,
        )
        for n in range(24)
    ]

    results = await asyncio.gather(*calls)

    assert [r.errors for r in results if r.errors] == []
    settings = await gql(SETTINGS)
    states = settings.data["backInStockSettings"]["collectionStates"]
    assert sorted(state["appId"] for state in states) == ["app-0", "app-1", "app-2"]
