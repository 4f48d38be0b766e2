"""totalCount through the API: follows every change of status and autoNotified, reads the
catalog reference as filters do, and counts requests for filters on other fields."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette

from app.config import Settings
from app.notify.dispatcher import Dispatcher
from app.services import broad_counts, built_statements
from tests.conftest import GraphQLClient
from tests.delivery import create_requests, deliver_all, delivery_settings, report
from tests.documents import (
    DELETE_REQUEST,
    MARK_AS_SENT,
    create,
    start_collecting,
)
from tests.mailbox import Mailbox

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH:UserWarning")

TOTAL = """
query Total($filter: BackInStockNotificationRequestFilter) {
  backInStockNotificationRequests(first: 0, filter: $filter) { totalCount }
}
"""
ITEM_TOTAL = """
query ItemTotal($appId: String!, $catalogItemId: String!,
                $filter: BackInStockNotificationRequestFilter) {
  catalogItem(appId: $appId, catalogItemId: $catalogItemId) {
    backInStockNotificationRequests(filter: $filter, first: 0) { totalCount }
  }
}
"""
PROCESSING = {"status": {"eq": "PROCESSING"}}
SENT_BY_SERVICE = {"status": {"eq": "NOTIFICATION_SENT"}, "autoNotified": {"eq": True}}


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return delivery_settings(settings, mailbox, delivery_max_attempts=1)


def probe_both_sides_to(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both probes of a broad filter's totalCount count up to `rows` matches."""
    monkeypatch.setattr(broad_counts, "PROBE_ROWS", rows)
    monkeypatch.setattr(broad_counts, "SECOND_PROBE_ROWS", rows)
    monkeypatch.setattr(broad_counts, "PROBE_AT_LEAST", rows)
    built_statements.forget_all()


def count_whole(side: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past both probes, count `side` ("matches" or "complement") whole, whatever the
    sample of the counted part says."""
    above = {"matches": 2.0, "complement": -1.0}[side]
    monkeypatch.setattr(broad_counts, "COUNT_COMPLEMENT_ABOVE", above)
    built_statements.forget_all()


@pytest.fixture
def dispatcher(app: Starlette, settings: Settings) -> Dispatcher:
    return Dispatcher(app.state.store, settings)


async def total(gql: GraphQLClient, key: str, filter: Any = None) -> int:
    result = await gql(TOTAL, {"filter": filter}, key=key)
    assert result.errors == [], result.errors
    return int(result.data["backInStockNotificationRequests"]["totalCount"])


async def test_total_count_of_processing_requests_follows_the_queue(
    gql, admin_key, collecting, app, dispatcher
):
    # given
    await create_requests(gql, 3)
    await create_requests(gql, 1, item_id="shoe-2")

    # when / then: queued, they are PROCESSING; sent, they no longer are
    assert await report(gql, admin_key) == 3
    assert await total(gql, admin_key, PROCESSING) == 3
    assert await total(gql, admin_key, {"status": {"eq": "RECEIVED"}}) == 1
    await deliver_all(dispatcher, app)
    assert await total(gql, admin_key, PROCESSING) == 0
    assert await total(gql, admin_key, SENT_BY_SERVICE) == 3


@pytest.mark.parametrize("probe_rows", [0, 100])
async def test_total_count_of_received_requests_by_another_field_leaves_out_the_queued(
    gql, admin_key, collecting, probe_rows, monkeypatch
):
    # given: three requests queued by a report, one not (probes of 0 rows count all)
    probe_both_sides_to(probe_rows, monkeypatch)
    await create_requests(gql, 3)
    await create_requests(gql, 1, item_id="shoe-2")
    assert await report(gql, admin_key) == 3

    # then: the queued three are PROCESSING, however the matches are counted
    every_email = {"email": {"gte": ""}}
    received = {"status": {"eq": "RECEIVED"}}
    assert await total(gql, admin_key, {**every_email, **received}) == 1
    assert await total(gql, admin_key, {**every_email, **PROCESSING}) == 3
    not_received = {"email": {"gte": ""}, "status": {"ne": "RECEIVED"}}
    assert await total(gql, admin_key, not_received) == 3


async def test_total_count_tells_requests_marked_sent_from_those_the_service_sent(
    gql, admin_key, collecting, app, dispatcher
):
    # given
    ids = await create_requests(gql, 3)
    await report(gql, admin_key, requestIds=ids[:1])
    await deliver_all(dispatcher, app)

    # when
    result = await gql(MARK_AS_SENT, {"id": ids[1]}, key=admin_key)
    assert result.errors == []

    # then
    assert await total(gql, admin_key, {"autoNotified": {"eq": False}}) == 1
    assert await total(gql, admin_key, {"autoNotified": {"eq": True}}) == 1
    assert await total(gql, admin_key, {"autoNotified": {"exists": False}}) == 1
    assert await total(gql, admin_key, {"not": {"autoNotified": {"ne": True}}}) == 1


async def test_total_count_of_failed_requests_follows_refused_deliveries(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    # given
    await create_requests(gql, 2)
    mailbox.refusal = "550 5.1.1 no such mailbox"
    await report(gql, admin_key)

    # when
    await deliver_all(dispatcher, app)

    # then: a failed delivery was the service's (autoNotified true), until reported again
    failed = {"status": {"eq": "FAILED"}}
    assert await total(gql, admin_key, failed) == 2
    assert await total(gql, admin_key, {**failed, "autoNotified": {"eq": True}}) == 2
    await report(gql, admin_key)
    assert (
        await total(gql, admin_key, {**PROCESSING, "autoNotified": {"eq": True}}) == 2
    )


async def test_total_count_drops_a_deleted_request(gql, admin_key, collecting):
    # given
    ids = await create_requests(gql, 2)

    # when
    result = await gql(DELETE_REQUEST, {"id": ids[0]}, key=admin_key)
    assert result.errors == []

    # then
    assert await total(gql, admin_key) == 1
    assert await total(gql, admin_key, {"status": {"ne": "PROCESSING"}}) == 1


async def test_total_count_by_catalog_item_prefix_ignores_the_case_of_a_to_z(
    gql, admin_key, collecting
):
    # given
    for item_id in ("Shoe-1", "shoe-2", "SHOE-3", "shoé", "boot"):
        await create(gql, item_id=item_id)

    def prefix(text: str) -> dict[str, Any]:
        return {"catalogReference": {"catalogItemId": {"startsWith": text}}}

    # then
    assert await total(gql, admin_key, prefix("sHoE-")) == 3
    assert await total(gql, admin_key, prefix("SHO")) == 4
    assert await total(gql, admin_key, prefix("shoÉ")) == 0
    assert await total(gql, admin_key, prefix("")) == 5
    assert await total(gql, admin_key, {"not": prefix("shoe")}) == 2


async def test_total_count_by_app_and_item_with_or_and_not(gql, admin_key):
    # given
    for app_id in ("stores", "pos"):
        await start_collecting(gql, admin_key, app_id)
        for item_id in ("shoe-1", "shoe-2"):
            await create(gql, item_id=item_id, app_id=app_id)

    def reference(app_id: str, item_id: str) -> dict[str, Any]:
        return {
            "catalogReference": {
                "appId": {"eq": app_id},
                "catalogItemId": {"eq": item_id},
            }
        }

    # then
    either = {"or": [reference("stores", "shoe-1"), reference("pos", "shoe-2")]}
    assert await total(gql, admin_key, either) == 2
    assert await total(gql, admin_key, {"not": either}) == 2
    ranged = {"catalogReference": {"catalogItemId": {"gt": "shoe-1"}}}
    assert await total(gql, admin_key, ranged) == 2
    other_items = {"catalogReference": {"catalogItemId": {"nin": ["shoe-2"]}}}
    assert await total(gql, admin_key, {**other_items, "or": [ranged]}) == 0
    nothing = {"catalogReference": {"appId": {"eq": "nobody"}}}
    assert await total(gql, admin_key, nothing) == 0


async def test_total_count_of_an_item_counts_that_item_only(gql, admin_key, collecting):
    # given
    await create_requests(gql, 3)
    await create_requests(gql, 2, item_id="shoe-2")

    # when
    result = await gql(
        ITEM_TOTAL,
        {"appId": "stores", "catalogItemId": "shoe-2", "filter": {"not": PROCESSING}},
        key=admin_key,
    )

    # then
    assert result.errors == []
    item = result.data["catalogItem"]
    assert item["backInStockNotificationRequests"]["totalCount"] == 2


async def test_total_count_of_a_filter_on_another_field_counts_the_requests(
    gql, admin_key, collecting
):
    # given
    await create_requests(gql, 3)

    # then
    shopper = {"email": {"startsWith": "shopper1"}, "status": {"eq": "RECEIVED"}}
    assert await total(gql, admin_key, shopper) == 1


async def test_total_count_alone_is_the_total_of_the_listed_page(
    gql, admin_key, collecting
):
    # given
    await create_requests(gql, 3)
    alone = """query { backInStockNotificationRequests(first: 1) {
      __typename ...Total } }
    fragment Total on BackInStockNotificationRequestConnection { totalCount }"""
    listed = """query { backInStockNotificationRequests(first: 1) {
      totalCount pageInfo { hasNextPage } edges { node { id } } } }"""

    # when
    total_alone = await gql(alone, key=admin_key)
    with_page = await gql(listed, key=admin_key)

    # then
    connection = with_page.data["backInStockNotificationRequests"]
    assert total_alone.data["backInStockNotificationRequests"]["totalCount"] == 3
    assert connection["totalCount"] == 3
    assert connection["pageInfo"]["hasNextPage"] is True
    assert len(connection["edges"]) == 1


async def test_total_count_of_a_catalog_item_range_counts_each_item_once(
    gql, admin_key, collecting
):
    # given: items sharing first characters with the bounds, and others
    items = ["a1", "a9", "b", "b5", "bb", "c2", "C3", "é", "😀"]
    for item_id in items:
        await create(gql, item_id=item_id)

    def ranged(**bounds: str) -> dict[str, Any]:
        return {"catalogReference": {"catalogItemId": bounds}}

    # then
    for bounds in (
        {"gt": "a1"},
        {"gte": "b"},
        {"lt": "b5"},
        {"lte": "b5"},
        {"gt": "a5", "lt": "c"},
        {"gte": "a9", "lte": "bb"},
        {"gt": "b", "lt": "b5"},
        {"gt": "c"},
        {"lt": "é"},
        {"gte": "😀"},
    ):
        expected = sum(
            (value > bounds["gt"] if "gt" in bounds else True)
            and (value >= bounds["gte"] if "gte" in bounds else True)
            and (value < bounds["lt"] if "lt" in bounds else True)
            and (value <= bounds["lte"] if "lte" in bounds else True)
            for value in items
        )
        assert await total(gql, admin_key, ranged(**bounds)) == expected, bounds


async def test_total_count_of_not_a_catalog_item_range_is_the_rest(
    gql, admin_key, collecting
):
    # given
    for item_id in ("a1", "b1", "b2", "c1"):
        await create(gql, item_id=item_id)

    def ranged(**bounds: str) -> dict[str, Any]:
        return {"catalogReference": {"catalogItemId": bounds}}

    # then
    assert await total(gql, admin_key, {"not": ranged(gt="b1")}) == 2
    assert await total(gql, admin_key, {"not": ranged(gte="b1", lt="c")}) == 2
    either = {"or": [ranged(lt="b"), ranged(gt="b2")]}
    assert await total(gql, admin_key, either) == 2
    assert await total(gql, admin_key, {"not": either}) == 2


@pytest.mark.parametrize("side", ["matches", "complement"])
async def test_a_broad_total_is_the_same_whichever_side_is_counted_whole(
    gql, admin_key, collecting, side, monkeypatch
):
    # given: four requests, three queued by a report, one without an item URL; no
    # probe finds a side small, so one side is counted whole
    probe_both_sides_to(0, monkeypatch)
    count_whole(side, monkeypatch)
    await create_requests(gql, 3)
    await create(gql, email="ann@example.com", item_id="shoe-2", item_url=None)
    assert await report(gql, admin_key) == 3

    # then
    received = {"status": {"eq": "RECEIVED"}}
    assert await total(gql, admin_key, {"email": {"gte": ""}, **received}) == 1
    assert await total(gql, admin_key, {"itemUrl": {"exists": True}}) == 3
    assert await total(gql, admin_key, {"itemUrl": {"exists": True}, **received}) == 0
    assert await total(gql, admin_key, {"itemUrl": {"exists": False}, **received}) == 1
    assert await total(gql, admin_key, {"email": {"lt": "b"}, **PROCESSING}) == 0


@pytest.mark.parametrize("probe_rows", [1, 2, 100])
async def test_total_count_of_a_broad_filter_within_an_app_counts_that_app_only(
    gql, admin_key, collecting, probe_rows, monkeypatch
):
    # given: three requests in "stores", two in "pos"
    probe_both_sides_to(probe_rows, monkeypatch)
    await start_collecting(gql, admin_key, app_id="pos")
    for n in range(3):
        await create(gql, email=f"shopper{n}@example.com")
    for n in range(2):
        await create(gql, email=f"shopper{n}@example.com", app_id="pos")

    # then: counted however the probes choose (matches, complement, or all of them)
    broad = {"email": {"ne": "nobody@example.com"}}
    stores = {"catalogReference": {"appId": {"eq": "stores"}}}
    assert await total(gql, admin_key, broad) == 5
    assert await total(gql, admin_key, {**broad, **stores}) == 3
    not_first = {"email": {"ne": "shopper0@example.com"}, **stores}
    assert await total(gql, admin_key, not_first) == 2


@pytest.mark.parametrize("probe_rows", [1, 2, 100])
async def test_total_count_of_a_broad_prefix_leaves_out_other_prefixes_and_nulls(
    gql, admin_key, collecting, probe_rows, monkeypatch
):
    # given: three requests with an item URL, one without
    probe_both_sides_to(probe_rows, monkeypatch)
    for n in range(3):
        await create(gql, email=f"shopper{n}@example.com")
    await create(gql, email="ann@example.com", item_url=None)

    # then
    assert await total(gql, admin_key, {"email": {"startsWith": "SHOPPER"}}) == 3
    assert await total(gql, admin_key, {"itemUrl": {"startsWith": "HTTPS://"}}) == 3
    not_prefixed = {"not": {"itemUrl": {"startsWith": "https://shop"}}}
    assert await total(gql, admin_key, not_prefixed) == 1
