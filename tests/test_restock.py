"""Fair partial restocks: a report with a quantity emails that many waiting shoppers,
oldest first, and a later report goes on with the next oldest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette

from app.config import Settings
from tests.clock import TestClock, app_with_clock
from tests.documents import GET_REQUEST, MARK_AS_SENT, create, reference

ITEM = {"name": "Blue shoe", "price": "24.50"}
REPORT = """
mutation Report($options: ReportItemsBackInStockOptions) {
  reportItemsBackInStock(itemDetails: {name: "Blue shoe", price: "24.50"},
                         options: $options) {
    queuedCount remainingCount
  }
}
"""
SHOPPERS = 5


@pytest.fixture
def clock() -> TestClock:
    # One second between reads: every request has a creation date of its own.
    return TestClock(datetime(2026, 3, 1, 9, tzinfo=UTC), step=timedelta(seconds=1))


@pytest.fixture
async def app(settings: Settings, clock: TestClock) -> AsyncIterator[Starlette]:
    async for application in app_with_clock(settings, clock):
        yield application


@pytest.fixture
async def waiting(gql, collecting) -> list[str]:
    """Ids of SHOPPERS requests for one item, oldest first, all RECEIVED."""
    return [
        (await create(gql, email=f"shopper{n}@example.com"))["id"]
        for n in range(SHOPPERS)
    ]


async def report(gql, key, **options):
    result = await gql(REPORT, {"options": options}, key=key)
    assert result.errors == [], result.errors
    return result.data["reportItemsBackInStock"]


async def statuses(gql, key, ids):
    found = []
    for request_id in ids:
        result = await gql(GET_REQUEST, {"id": request_id}, key=key)
        found.append(result.data["backInStockNotificationRequest"]["status"])
    return found


async def test_quantity_queues_the_oldest_waiting_requests_and_leaves_the_rest(
    gql, admin_key, waiting
):
    outcome = await report(
        gql, admin_key, catalogReference=reference(), availableQuantity=2
    )

    assert outcome == {"queuedCount": 2, "remainingCount": 3}
    assert await statuses(gql, admin_key, waiting) == [
        "PROCESSING",
        "PROCESSING",
        "RECEIVED",
        "RECEIVED",
        "RECEIVED",
    ]


async def test_a_second_report_goes_on_with_the_next_oldest(gql, admin_key, waiting):
    await report(gql, admin_key, catalogReference=reference(), availableQuantity=2)

    again = await report(
        gql, admin_key, catalogReference=reference(), availableQuantity=2
    )

    assert again == {"queuedCount": 2, "remainingCount": 1}
    assert await statuses(gql, admin_key, waiting) == ["PROCESSING"] * 4 + ["RECEIVED"]


async def test_notifications_per_unit_multiplies_the_quantity(gql, admin_key, waiting):
    outcome = await report(
        gql,
        admin_key,
        catalogReference=reference(),
        availableQuantity=1,
        notificationsPerUnit=3,
    )

    assert outcome == {"queuedCount": 3, "remainingCount": 2}
    assert (
        await statuses(gql, admin_key, waiting) == ["PROCESSING"] * 3 + ["RECEIVED"] * 2
    )


async def test_a_quantity_above_the_waiting_requests_queues_them_all(
    gql, admin_key, waiting
):
    outcome = await report(
        gql, admin_key, catalogReference=reference(), availableQuantity=50
    )

    assert outcome == {"queuedCount": SHOPPERS, "remainingCount": 0}


async def test_a_quantity_of_zero_queues_nothing(gql, admin_key, waiting):
    outcome = await report(
        gql, admin_key, catalogReference=reference(), availableQuantity=0
    )

    assert outcome == {"queuedCount": 0, "remainingCount": SHOPPERS}


async def test_without_a_quantity_every_waiting_request_is_queued(
    gql, admin_key, waiting
):
    outcome = await report(gql, admin_key, catalogReference=reference())

    assert outcome == {"queuedCount": SHOPPERS, "remainingCount": 0}


async def test_requests_sent_meanwhile_are_skipped_and_the_next_oldest_taken(
    gql, admin_key, waiting
):
    await gql(MARK_AS_SENT, {"id": waiting[0]}, key=admin_key)

    outcome = await report(
        gql, admin_key, catalogReference=reference(), availableQuantity=2
    )

    assert outcome == {"queuedCount": 2, "remainingCount": 2}
    assert await statuses(gql, admin_key, waiting[:3]) == [
        "NOTIFICATION_SENT",
        "PROCESSING",
        "PROCESSING",
    ]


async def test_quantity_with_request_ids_queues_the_oldest_of_those(
    gql, admin_key, waiting
):
    named = [waiting[4], waiting[1], waiting[3]]

    outcome = await report(gql, admin_key, requestIds=named, availableQuantity=2)

    assert outcome == {"queuedCount": 2, "remainingCount": 1}
    assert await statuses(gql, admin_key, waiting) == [
        "RECEIVED",
        "PROCESSING",
        "RECEIVED",
        "PROCESSING",
        "RECEIVED",
    ]


async def test_other_options_of_the_item_are_neither_queued_nor_counted(
    gql, admin_key, waiting
):
    other = await create(gql, email="early@example.com", options={"size": 42})

    outcome = await report(
        gql, admin_key, catalogReference=reference(), availableQuantity=10
    )

    assert outcome == {"queuedCount": SHOPPERS, "remainingCount": 0}
    assert await statuses(gql, admin_key, [other["id"]]) == ["RECEIVED"]


async def test_equal_creation_dates_are_taken_in_id_order(
    gql, admin_key, collecting, clock
):
    # given: three requests created at the same instant
    clock.step = timedelta(0)
    ids = [(await create(gql, email=f"same{n}@example.com"))["id"] for n in range(3)]

    # when
    outcome = await report(
        gql, admin_key, catalogReference=reference(), availableQuantity=2
    )

    # then
    assert outcome == {"queuedCount": 2, "remainingCount": 1}
    by_id = sorted(ids)
    assert await statuses(gql, admin_key, by_id) == [
        "PROCESSING",
        "PROCESSING",
        "RECEIVED",
    ]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"availableQuantity": -1}, "options.availableQuantity"),
        ({"availableQuantity": 1_000_001}, "options.availableQuantity"),
        (
            {"availableQuantity": 1, "notificationsPerUnit": 0},
            "options.notificationsPerUnit",
        ),
        (
            {"availableQuantity": 1, "notificationsPerUnit": -3},
            "options.notificationsPerUnit",
        ),
        (
            {"availableQuantity": 1, "notificationsPerUnit": 1001},
            "options.notificationsPerUnit",
        ),
        (
            {"availableQuantity": 1_000_000, "notificationsPerUnit": 2},
            "options.notificationsPerUnit",
        ),
    ],
)
async def test_negative_or_absurd_quantities_are_invalid_and_change_nothing(
    gql, admin_key, waiting, options, field
):
    result = await gql(
        REPORT, {"options": {"catalogReference": reference(), **options}}, key=admin_key
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [field]
    assert await statuses(gql, admin_key, waiting) == ["RECEIVED"] * SHOPPERS


async def test_a_quantity_beyond_graphql_int_is_invalid_argument(gql, admin_key):
    result = await gql(
        REPORT,
        {"options": {"catalogReference": reference(), "availableQuantity": 2**31}},
        key=admin_key,
    )

    assert result.codes == ["INVALID_ARGUMENT"]


async def test_simultaneous_reports_with_quantities_queue_their_sum(
    gql, admin_key, waiting
):
    options = {"catalogReference": reference(), "availableQuantity": 2}

    outcomes = await asyncio.gather(
        report(gql, admin_key, **options), report(gql, admin_key, **options)
    )

    # Each took two of its own (on PostgreSQL the second waited for the first).
    assert sorted(o["queuedCount"] for o in outcomes) == [2, 2]
    assert sorted(o["remainingCount"] for o in outcomes) == [1, 3]
    assert await statuses(gql, admin_key, waiting) == ["PROCESSING"] * 4 + ["RECEIVED"]


async def test_simultaneous_reports_never_queue_more_than_asked(
    gql, admin_key, waiting
):
    # A report with a quantity racing one without and another naming ids.
    calls = [
        report(gql, admin_key, catalogReference=reference(), availableQuantity=1),
        report(gql, admin_key, requestIds=waiting[:3], availableQuantity=2),
        report(gql, admin_key, catalogReference=reference(), availableQuantity=1),
    ]

    outcomes = await asyncio.gather(*calls)

    queued = [o["queuedCount"] for o in outcomes]
    assert queued[0] <= 1 and queued[1] <= 2 and queued[2] <= 1
    states = await statuses(gql, admin_key, waiting)
    assert states.count("PROCESSING") == sum(queued)


async def test_the_error_message_names_the_field_as_the_api_does(gql, admin_key):
    result = await gql(
        REPORT,
        {"options": {"catalogReference": reference(), "availableQuantity": -1}},
        key=admin_key,
    )

    assert result.errors[0]["message"] == "Invalid argument: options.availableQuantity"
