"""Demand a merchant can see: items ranked by waiting requests, and requests per day."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette

from app.config import Settings
from app.permissions import Permission
from tests.clock import app_with_clock
from tests.conftest import ManualClock, mint_key
from tests.documents import DELETE_REQUEST, MARK_AS_SENT, REPORT, create

DEMAND = """
query Demand($appId: String, $first: Int, $after: String) {
  backInStockDemand(appId: $appId, first: $first, after: $after) {
    totalCount
    edges {
      cursor
      node {
        appId catalogItemId receivedCount processingCount notificationSentCount
        failedCount waitingCount oldestWaitingDate newestWaitingDate
      }
    }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
STATS = """
query Stats($appId: String, $from: DateTime!, $to: DateTime!) {
  backInStockRequestStats(appId: $appId, from: $from, to: $to) {
    createdCount notifiedCount failedCount
    days { day createdCount notifiedCount failedCount }
  }
}
"""
START = datetime(2026, 3, 1, 9, tzinfo=UTC)
ITEM = {"name": "Blue shoe", "price": "24.50"}


@pytest.fixture
def clock() -> ManualClock:
    """March 1st, 09:00 UTC; `create_many` moves it a minute after each create."""
    return ManualClock(START)


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[Starlette]:
    async for application in app_with_clock(settings, clock):
        yield application


async def demand(gql, key, **variables):
    result = await gql(DEMAND, variables, key=key)
    assert result.errors == [], result.errors
    return result.data["backInStockDemand"]


def ranking(connection) -> list[tuple[str, int]]:
    return [
        (edge["node"]["catalogItemId"], edge["node"]["waitingCount"])
        for edge in connection["edges"]
    ]


async def create_many(
    gql, clock: ManualClock, item_id: str, count: int, app_id: str = "stores"
) -> list[str]:
    """`count` requests for the item, a minute apart."""
    ids = []
    for n in range(count):
        created = await create(
            gql, email=f"s{n}@example.com", item_id=item_id, app_id=app_id
        )
        ids.append(created["id"])
        clock.advance(seconds=60)
    return ids


async def test_items_are_ranked_by_waiting_requests(gql, clock, admin_key, collecting):
    await create_many(gql, clock, "few", 1)
    await create_many(gql, clock, "most", 3)
    await create_many(gql, clock, "some", 2)

    found = await demand(gql, admin_key)

    assert ranking(found) == [("most", 3), ("some", 2), ("few", 1)]
    assert found["totalCount"] == 3


async def test_a_node_counts_every_status_and_the_waiting_dates(
    gql, clock, admin_key, collecting
):
    # given: five requests for one item, made a minute apart (options differ too)
    ids = await create_many(gql, clock, "shoe-1", 4)
    ids.append((await create(gql, email="z@example.com", options={"size": 42}))["id"])
    # when: two are queued, one is sent by hand
    await gql(
        REPORT,
        {"itemDetails": ITEM, "options": {"requestIds": ids[1:3]}},
        key=admin_key,
    )
    await gql(MARK_AS_SENT, {"id": ids[0]}, key=admin_key)

    # then: the oldest waiting one is now the second
    node = (await demand(gql, admin_key))["edges"][0]["node"]
    assert node == {
        "appId": "stores",
        "catalogItemId": "shoe-1",
        "receivedCount": 2,
        "processingCount": 2,
        "notificationSentCount": 1,
        "failedCount": 0,
        "waitingCount": 4,
        "oldestWaitingDate": (START + timedelta(minutes=1)).isoformat(),
        "newestWaitingDate": (START + timedelta(minutes=4)).isoformat(),
    }


async def test_deleting_the_newest_waiting_request_moves_the_newest_date(
    gql, clock, admin_key, collecting
):
    ids = await create_many(gql, clock, "shoe-1", 3)

    await gql(DELETE_REQUEST, {"id": ids[-1]}, key=admin_key)

    node = (await demand(gql, admin_key))["edges"][0]["node"]
    assert (node["waitingCount"], node["newestWaitingDate"]) == (
        2,
        (START + timedelta(minutes=1)).isoformat(),
    )


async def test_an_item_nobody_waits_for_is_not_ranked(
    gql, clock, admin_key, collecting
):
    [sent] = await create_many(gql, clock, "sent", 1)
    [deleted] = await create_many(gql, clock, "deleted", 1)
    await create_many(gql, clock, "waiting", 1)

    await gql(MARK_AS_SENT, {"id": sent}, key=admin_key)
    await gql(DELETE_REQUEST, {"id": deleted}, key=admin_key)

    found = await demand(gql, admin_key)
    assert ranking(found) == [("waiting", 1)]
    assert found["totalCount"] == 1


async def test_equal_demand_is_ranked_by_app_then_item_descending(
    gql, clock, admin_key, collecting
):
    await create_many(gql, clock, "a", 1)
    await create_many(gql, clock, "b", 1)

    found = await demand(gql, admin_key)

    assert ranking(found) == [("b", 1), ("a", 1)]


async def test_pages_follow_each_other_by_cursor(gql, clock, admin_key, collecting):
    for index, count in enumerate([5, 4, 3, 2, 1]):
        await create_many(gql, clock, f"item-{index}", count)

    first = await demand(gql, admin_key, first=2)
    second = await demand(gql, admin_key, first=2, after=first["pageInfo"]["endCursor"])
    last = await demand(gql, admin_key, first=2, after=second["pageInfo"]["endCursor"])

    assert ranking(first) + ranking(second) + ranking(last) == [
        ("item-0", 5),
        ("item-1", 4),
        ("item-2", 3),
        ("item-3", 2),
        ("item-4", 1),
    ]
    assert [p["pageInfo"]["hasNextPage"] for p in (first, second, last)] == [
        True,
        True,
        False,
    ]
    assert second["pageInfo"]["hasPreviousPage"] is True


async def test_one_app_is_ranked_on_its_own(gql, clock, admin_key, collecting):
    await gql(
        'mutation { startCollectingRequests(appId: "pos") { __typename } }',
        key=admin_key,
    )
    await create_many(gql, clock, "store-item", 3)
    await create_many(gql, clock, "pos-a", 2, app_id="pos")
    await create_many(gql, clock, "pos-b", 1, app_id="pos")

    first = await demand(gql, admin_key, appId="pos", first=1)
    rest = await demand(
        gql, admin_key, appId="pos", after=first["pageInfo"]["endCursor"]
    )

    assert ranking(first) + ranking(rest) == [("pos-a", 2), ("pos-b", 1)]
    assert first["totalCount"] == 2


async def test_a_cursor_of_another_app_is_invalid_argument(
    gql, clock, admin_key, collecting
):
    await create_many(gql, clock, "x", 1)
    cursor = (await demand(gql, admin_key, first=1))["pageInfo"]["endCursor"]

    result = await gql(DEMAND, {"appId": "stores", "after": cursor}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["after"]


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"first": 101}, "first"),
        ({"first": -1}, "first"),
        ({"after": "not-a-cursor"}, "after"),
        ({"appId": ""}, "appId"),
    ],
)
async def test_bad_demand_arguments_are_invalid_argument(
    gql, clock, admin_key, variables, field
):
    result = await gql(DEMAND, variables, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [field]


async def test_demand_and_stats_need_the_read_permission(gql, clock, app):
    reader = await mint_key(app, Permission.CREATE_BACK_IN_STOCK_NOTIFICATION_REQUESTS)
    window = {"from": START.isoformat(), "to": START.isoformat()}

    anonymous = await gql(DEMAND)
    without = await gql(STATS, window, key=reader)

    assert anonymous.codes == ["FORBIDDEN"]
    assert without.codes == ["FORBIDDEN"]
    assert anonymous.data is None and without.data is None


# --------------------------------------------------------------------------- per day


async def stats(gql, key, start, end, app_id=None):
    variables = {"from": start.isoformat(), "to": end.isoformat(), "appId": app_id}
    result = await gql(STATS, variables, key=key)
    assert result.errors == [], result.errors
    return result.data["backInStockRequestStats"]


async def test_requests_are_counted_on_the_day_they_were_created_and_sent(
    gql, admin_key, collecting, clock
):
    # given: two requests on March 1st, one on March 3rd, one sent on March 4th
    first, _ = await create_many(gql, clock, "shoe-1", 2)
    clock.now = START + timedelta(days=2)
    await create(gql, email="later@example.com")
    clock.now = START + timedelta(days=3)
    await gql(MARK_AS_SENT, {"id": first}, key=admin_key)

    # when
    found = await stats(gql, admin_key, START, START + timedelta(days=4))

    # then
    assert [
        (d["day"], d["createdCount"], d["notifiedCount"]) for d in found["days"]
    ] == [
        ("2026-03-01", 2, 0),
        ("2026-03-02", 0, 0),
        ("2026-03-03", 1, 0),
        ("2026-03-04", 0, 1),
        ("2026-03-05", 0, 0),
    ]
    assert (found["createdCount"], found["notifiedCount"], found["failedCount"]) == (
        3,
        1,
        0,
    )


async def test_a_deleted_request_stays_counted_as_created(
    gql, clock, admin_key, collecting
):
    [request_id] = await create_many(gql, clock, "shoe-1", 1)

    await gql(DELETE_REQUEST, {"id": request_id}, key=admin_key)

    assert (await stats(gql, admin_key, START, START))["createdCount"] == 1


async def test_stats_for_one_app_leave_the_others_out(
    gql, clock, admin_key, collecting
):
    await gql(
        'mutation { startCollectingRequests(appId: "pos") { __typename } }',
        key=admin_key,
    )
    await create_many(gql, clock, "a", 2)
    await create_many(gql, clock, "b", 1, app_id="pos")

    found = await stats(gql, admin_key, START, START, app_id="pos")

    assert found["days"] == [
        {"day": "2026-03-01", "createdCount": 1, "notifiedCount": 0, "failedCount": 0}
    ]


async def test_days_are_utc_days_whatever_the_offset_given(
    gql, clock, admin_key, collecting
):
    await create_many(gql, clock, "a", 1)  # 2026-03-01 09:00 UTC

    # 2026-03-01 23:30 at -10:00 is March 2nd in UTC.
    found = await stats(
        gql,
        admin_key,
        datetime.fromisoformat("2026-03-01T23:30:00-10:00"),
        datetime.fromisoformat("2026-03-02T10:00:00+00:00"),
    )

    assert [d["day"] for d in found["days"]] == ["2026-03-02"]
    assert found["createdCount"] == 0


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),  # 367 days
        ("2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z"),  # backwards
    ],
)
async def test_a_range_over_366_days_or_backwards_is_invalid_argument(
    gql, admin_key, start, end
):
    result = await gql(STATS, {"from": start, "to": end}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["to"]


async def test_a_range_of_366_days_is_answered(gql, admin_key):
    found = await stats(
        gql,
        admin_key,
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 12, 31, tzinfo=UTC),
    )

    assert len(found["days"]) == 366
    assert found["days"][59]["day"] == "2024-02-29"


ERASE = "mutation Erase($email: String!) { eraseBackInStockDataByEmail(email: $email) }"


async def test_erasing_an_address_takes_its_requests_out_of_the_demand(
    gql, clock, admin_key, collecting
):
    # given: three shoppers wait for the shoe
    await create_many(gql, clock, "shoe-1", 3)

    # when: one of them has their data erased
    erased = await gql(ERASE, {"email": "s1@example.com"}, key=admin_key)

    # then: two still wait, and the newest is the third
    assert erased.data == {"eraseBackInStockDataByEmail": 1}
    node = (await demand(gql, admin_key))["edges"][0]["node"]
    assert (node["waitingCount"], node["receivedCount"]) == (2, 2)
    assert node["newestWaitingDate"] == (START + timedelta(minutes=2)).isoformat()
