"""Simultaneous writes on one database: nothing is queued twice, no state is lost.

On PostgreSQL these run on a pool of connections at once; on SQLite they take turns.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.models import Notification
from tests.documents import (
    DELETE_REQUEST,
    MARK_AS_SENT,
    REPORT,
    SETTINGS,
    START_COLLECTING,
    STOP_COLLECTING,
    create,
    reference,
    start_collecting,
)

ITEM = {"name": "Blue shoe", "price": "24.50"}
SHOPPERS = 30


@pytest.fixture
async def waiting(gql, admin_key) -> list[str]:
    """Ids of SHOPPERS requests for one item, all RECEIVED."""
    await start_collecting(gql, admin_key)
    return [
        (await create(gql, email=f"shopper{n}@example.com"))["id"]
        for n in range(SHOPPERS)
    ]


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
    app, gql, admin_key, waiting
):
    report = gql(
        REPORT,
        {"itemDetails": ITEM, "options": {"catalogReference": reference()}},
        key=admin_key,
    )
    marks = [gql(MARK_AS_SENT, {"id": id}, key=admin_key) for id in waiting[::2]]

    results = await asyncio.gather(report, *marks)

    assert [r.errors for r in results if r.errors] == []
    queued_for = {
        id for (id,) in await app.state.store.rows(select(Notification.request_id))
    }
    marked = {id for id in waiting[::2]}
    assert not {str(id) for id in queued_for} & marked
    # The others were queued by the report, or the report came first and the marks
    # dropped theirs: either way each is queued at most once.
    assert all(count == 1 for count in await queued_per_request(app))


async def test_delete_racing_a_report_leaves_no_notification_for_a_deleted_request(
    app, gql, admin_key, waiting
):
    report = gql(
        REPORT,
        {"itemDetails": ITEM, "options": {"catalogReference": reference()}},
        key=admin_key,
    )
    deletes = [gql(DELETE_REQUEST, {"id": id}, key=admin_key) for id in waiting[::2]]

    results = await asyncio.gather(report, *deletes)

    assert [r.errors for r in results if r.errors] == []
    queued_for = {
        str(id) for (id,) in await app.state.store.rows(select(Notification.request_id))
    }
    # Either the report came first and the deletes dropped what it queued for theirs, or
    # the deletes came first and the report skipped them.
    assert not queued_for & set(waiting[::2])


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
