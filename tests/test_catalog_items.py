"""CatalogItem: the demand on a product, read through `Query.catalogItem`."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text, update

from app.config import Settings
from app.models import NotificationRequest
from app.permissions import Permission
from app.services.catalog_items import CatalogItemKey, waiting_counts_statement
from tests.conftest import mint_key
from tests.documents import (
    MARK_AS_SENT,
    QUERY_REQUESTS,
    REPORT,
    STOP_COLLECTING,
    create,
    start_collecting,
)

CATALOG_ITEM = """
query Item($appId: String!, $catalogItemId: String!) {
  catalogItem(appId: $appId, catalogItemId: $catalogItemId) {
    appId catalogItemId backInStockNotificationRequestsCount backInStockCollectingRequests
  }
}
"""
WAITING_COUNT = """
query Count($appId: String!, $catalogItemId: String!) {
  catalogItem(appId: $appId, catalogItemId: $catalogItemId) {
    backInStockNotificationRequestsCount
  }
}
"""
COLLECTING = """
query Collecting($appId: String!, $catalogItemId: String!) {
  catalogItem(appId: $appId, catalogItemId: $catalogItemId) { backInStockCollectingRequests }
}
"""
ITEM_REQUESTS = """
query ItemRequests($appId: String!, $catalogItemId: String!,
                   $filter: BackInStockNotificationRequestFilter,
                   $sort: [BackInStockNotificationRequestSort!], $first: Int, $after: String) {
  catalogItem(appId: $appId, catalogItemId: $catalogItemId) {
    backInStockNotificationRequests(filter: $filter, sort: $sort, first: $first,
                                    after: $after) {
      totalCount
      edges { cursor node { id email status catalogReference { appId catalogItemId } } }
      pageInfo { hasNextPage hasPreviousPage endCursor }
    }
  }
}
"""
SHOE = {"appId": "stores", "catalogItemId": "shoe-1"}
READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS


async def waiting(gql, key, item=SHOE) -> int:
    result = await gql(WAITING_COUNT, item, key=key)
    assert result.errors == [], result.errors
    return result.data["catalogItem"]["backInStockNotificationRequestsCount"]


async def report(gql, key, request_ids) -> None:
    result = await gql(
        REPORT,
        {
            "itemDetails": {"name": "Blue shoe", "price": "1"},
            "options": {"requestIds": request_ids},
        },
        key=key,
    )
    assert result.errors == [], result.errors


async def fail_delivery(app, request_id: str) -> None:
    """The stored state a delivery that ran out of attempts leaves (tests/test_delivery.py
    reaches it through a refusing SMTP server)."""
    await app.state.store.write(
        lambda tx: tx.execute(
            update(NotificationRequest)
            .where(NotificationRequest.id == uuid.UUID(request_id))
            .values(status="FAILED", auto_notified=True)
        )
    )


async def test_waiting_count_is_received_and_processing_requests_of_any_options(
    gql, app, admin_key, collecting
):
    # given
    await create(gql, email="plain@x.com")
    await create(gql, email="size42@x.com", options={"size": 42})
    queued = await create(gql, email="queued@x.com", options={"size": 43})
    sent = await create(gql, email="sent@x.com")
    failed = await create(gql, email="failed@x.com")
    await create(gql, email="other-item@x.com", item_id="shoe-2")
    await start_collecting(gql, admin_key, app_id="bookings")
    await create(gql, email="other-app@x.com", app_id="bookings")
    await report(gql, admin_key, [queued["id"]])
    await gql(MARK_AS_SENT, {"id": sent["id"]}, key=admin_key)
    await fail_delivery(app, failed["id"])

    # when
    count = await waiting(gql, admin_key)

    # then: plain, size42 and queued (PROCESSING); not sent, failed or other items
    assert count == 3


async def test_a_failed_request_reported_again_waits_again(
    gql, app, admin_key, collecting
):
    failed = await create(gql, email="failed@x.com")
    await fail_delivery(app, failed["id"])
    assert await waiting(gql, admin_key) == 0

    await report(gql, admin_key, [failed["id"]])

    assert await waiting(gql, admin_key) == 1


async def test_an_item_without_requests_exists_with_zero_demand(gql, admin_key):
    result = await gql(
        CATALOG_ITEM, {"appId": "new", "catalogItemId": "x"}, key=admin_key
    )

    assert result.errors == []
    assert result.data["catalogItem"] == {
        "appId": "new",
        "catalogItemId": "x",
        "backInStockNotificationRequestsCount": 0,
        "backInStockCollectingRequests": False,
    }


async def test_collecting_follows_the_apps_collection_state(gql, admin_key):
    await start_collecting(gql, admin_key)
    started = await gql(COLLECTING, SHOE)
    await gql(STOP_COLLECTING, {"appId": "stores"}, key=admin_key)
    stopped = await gql(COLLECTING, SHOE)

    assert started.data["catalogItem"]["backInStockCollectingRequests"] is True
    assert stopped.data["catalogItem"]["backInStockCollectingRequests"] is False


async def test_item_requests_are_the_root_connection_narrowed_to_the_item(
    gql, admin_key, collecting
):
    # given: requests of this item (two options) among others
    for index in range(3):
        await create(gql, email=f"s{index}@x.com", options={"size": 40 + index % 2})
        await create(gql, email=f"o{index}@x.com", item_id="shoe-2")
    item_filter = {
        "catalogReference": {
            "appId": {"eq": "stores"},
            "catalogItemId": {"eq": "shoe-1"},
        }
    }
    root = await gql(QUERY_REQUESTS, {"filter": item_filter}, key=admin_key)

    # when
    result = await gql(ITEM_REQUESTS, SHOE, key=admin_key)

    # then
    connection = result.data["catalogItem"]["backInStockNotificationRequests"]
    expected = root.data["backInStockNotificationRequests"]
    assert [edge["node"]["id"] for edge in connection["edges"]] == [
        edge["node"]["id"] for edge in expected["edges"]
    ]
    assert connection["totalCount"] == 3
    assert {edge["node"]["email"] for edge in connection["edges"]} == {
        "s0@x.com",
        "s1@x.com",
        "s2@x.com",
    }


async def test_item_requests_take_filter_sort_and_cursors(gql, admin_key, collecting):
    for index in range(5):
        await create(gql, email=f"s{index}@x.com")
    await create(gql, email="s9@x.com", item_id="shoe-2")
    variables = {
        **SHOE,
        "filter": {"email": {"startsWith": "s"}},
        "sort": [{"field": "CONTACT_ID", "order": "ASC"}],
        "first": 2,
    }

    emails, after = [], None
    for _ in range(3):
        result = await gql(ITEM_REQUESTS, {**variables, "after": after}, key=admin_key)
        connection = result.data["catalogItem"]["backInStockNotificationRequests"]
        emails += [edge["node"]["email"] for edge in connection["edges"]]
        after = connection["pageInfo"]["endCursor"]

    assert sorted(emails) == [f"s{index}@x.com" for index in range(5)]
    assert len(emails) == 5
    assert connection["pageInfo"]["hasNextPage"] is False


async def test_item_request_violations_keep_the_arguments_paths(gql, admin_key):
    result = await gql(
        ITEM_REQUESTS,
        {**SHOE, "filter": {"id": {"eq": "not-a-uuid"}}, "first": 101},
        key=admin_key,
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert sorted(result.violations) == ["filter.id.eq", "first"]


async def test_catalog_item_keys_follow_the_catalog_reference_rules(gql, admin_key):
    result = await gql(
        CATALOG_ITEM, {"appId": "", "catalogItemId": "x" * 37}, key=admin_key
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["appId", "catalogItemId"]


async def test_catalog_item_keys_with_nul_characters_are_invalid_argument(
    gql, admin_key
):
    result = await gql(
        CATALOG_ITEM, {"appId": "stores\x00", "catalogItemId": "x"}, key=admin_key
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["appId"]


async def test_visitors_read_the_collection_state_but_not_the_demand(
    gql, admin_key, collecting
):
    await create(gql)

    collecting_state = await gql(COLLECTING, SHOE)
    demand = await gql(WAITING_COUNT, SHOE)
    requests = await gql(ITEM_REQUESTS, SHOE)

    assert collecting_state.data["catalogItem"]["backInStockCollectingRequests"] is True
    assert demand.codes == ["FORBIDDEN"]
    assert requests.codes == ["FORBIDDEN"]


async def test_a_key_with_read_requests_reads_the_demand(gql, app, collecting):
    await create(gql)
    key = await mint_key(app, READ_REQUESTS)

    assert await waiting(gql, key) == 1


async def test_count_sums_every_option_of_the_item(gql, admin_key, collecting):
    await create(gql, email="a@x.com", options={"size": 1})
    await create(gql, email="b@x.com", options={"size": 2})
    await create(gql, email="c@x.com", options={"size": 2})

    assert await waiting(gql, admin_key) == 3
    assert await waiting(gql, admin_key, {**SHOE, "catalogItemId": "shoe-9"}) == 0


class TestVisitorsHoldNothing:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return Settings(**{**settings.model_dump(), "anonymous_permissions": ""})

    async def test_the_root_field_needs_read_settings(self, gql, app):
        key = await mint_key(app, READ_REQUESTS)

        result = await gql(WAITING_COUNT, SHOE, key=key)

        assert result.codes == ["FORBIDDEN"]
        assert result.data is None

    async def test_read_settings_and_read_requests_read_everything(
        self, gql, app, collecting
    ):
        await create(gql, key=await mint_key(app))
        key = await mint_key(
            app, READ_REQUESTS, Permission.READ_BACK_IN_STOCK_NOTIFICATION_SETTINGS
        )

        result = await gql(CATALOG_ITEM, SHOE, key=key)

        assert result.errors == []
        assert result.data["catalogItem"]["backInStockNotificationRequestsCount"] == 1
        assert result.data["catalogItem"]["backInStockCollectingRequests"] is True


def explain(tx, statement) -> list[str]:
    """The plan the database picks for `statement` (seq scans priced out on PostgreSQL,
    whose tiny test tables would otherwise never be read through an index)."""
    sql = str(
        statement.compile(
            dialect=tx.connection.dialect, compile_kwargs={"literal_binds": True}
        )
    )
    if tx.dialect == "sqlite":
        return [row[-1] for row in tx.rows(text(f"EXPLAIN QUERY PLAN {sql}"))]
    tx.execute(text("SET LOCAL enable_seqscan = off"))
    # Only bitmap scans are left: each is a range of an index.
    tx.execute(text("SET LOCAL enable_indexscan = off"))
    return [row[0] for row in tx.rows(text(f"EXPLAIN {sql}"))]


async def test_waiting_counts_are_ranges_of_the_item_index(app):
    items = {CatalogItemKey(f"app-{i % 7}", f"item-{i}") for i in range(100)}

    plan = await app.state.store.write(
        lambda tx: explain(tx, waiting_counts_statement(items))
    )

    described = "\n".join(plan)
    # Each item is one range of an index (SQLite: the (app_id, catalog_item_id, ...)
    # one; PostgreSQL may take the catalog_item_id one), never a read of everything.
    assert (
        "SEARCH notification_requests USING INDEX ix_notification_requests_item_status "
        "(app_id=? AND catalog_item_id=?)"
        in described
        or "Bitmap Index Scan on ix_notification_requests_" in described
    ), described
    assert "SCAN notification_requests" not in described, described
    assert "Seq Scan on notification_requests" not in described, described
