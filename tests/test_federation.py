"""The subgraph as a gateway calls it: `_entities` for CatalogItem, batched, capped and
checked. (The printed SDL: test_federation_sdl; Apollo's own tools: test_federation_node.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.config import Settings
from app.graphql.entities import MAX_REPRESENTATIONS
from app.permissions import Permission
from tests.conftest import mint_key
from tests.documents import create
from tests.sent_sql import sql_sent

ITEM_ENTITIES = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on CatalogItem {
      appId catalogItemId backInStockNotificationRequestsCount backInStockCollectingRequests
    }
  }
}
"""
ITEM_COUNTS = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on CatalogItem { backInStockNotificationRequestsCount }
  }
}
"""
ITEM_COLLECTING = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on CatalogItem { backInStockCollectingRequests }
  }
}
"""
TWO_ENTITY_CALLS = """
query($first: [_Any!]!, $second: [_Any!]!) {
  first: _entities(representations: $first) { ... on CatalogItem { appId } }
  second: _entities(representations: $second) { ... on CatalogItem { appId } }
}
"""
READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS


def item(catalog_item_id: str, app_id: str = "stores") -> dict[str, str]:
    return {
        "__typename": "CatalogItem",
        "appId": app_id,
        "catalogItemId": catalog_item_id,
    }


# ------------------------------------------------------------------------ _entities


async def test_entities_resolve_catalog_items_by_their_keys_in_order(
    gql, admin_key, collecting
):
    await create(gql, email="a@x.com", item_id="shoe-1")
    await create(gql, email="b@x.com", item_id="shoe-1", options={"size": 42})
    await create(gql, email="c@x.com", item_id="shoe-2")
    representations = [item("shoe-2"), item("none", app_id="closed"), item("shoe-1")]

    result = await gql(
        ITEM_ENTITIES, {"representations": representations}, key=admin_key
    )

    assert result.errors == []
    assert result.data["_entities"] == [
        {
            "appId": "stores",
            "catalogItemId": "shoe-2",
            "backInStockNotificationRequestsCount": 1,
            "backInStockCollectingRequests": True,
        },
        {
            "appId": "closed",
            "catalogItemId": "none",
            "backInStockNotificationRequestsCount": 0,
            "backInStockCollectingRequests": False,
        },
        {
            "appId": "stores",
            "catalogItemId": "shoe-1",
            "backInStockNotificationRequestsCount": 2,
            "backInStockCollectingRequests": True,
        },
    ]


@pytest.fixture
def statements(app) -> Iterator[list[str]]:
    """The text of every statement the app's store reads from here on."""
    store = app.state.store
    seen: list[str] = []

    def counted(read: Any) -> Any:
        async def run(statement: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(str(statement))
            return await read(statement, *args, **kwargs)

        return run

    store.rows, store.scalar = counted(store.rows), counted(store.scalar)
    yield seen
    del store.rows, store.scalar


def reading(statements: list[str], table: str) -> list[str]:
    return [text for text in statements if f"FROM {table}" in text]


async def test_a_hundred_representations_take_one_query_per_field(
    gql, admin_key, collecting, statements
):
    # given: 100 items of 10 apps, some with requests
    await create(gql, item_id="item-3")
    await create(gql, item_id="item-7", email="b@x.com")
    representations = [item(f"item-{i}", app_id=f"app-{i % 10}") for i in range(99)]
    representations.append(item("item-3"))
    statements.clear()

    # when
    result = await gql(
        ITEM_ENTITIES, {"representations": representations}, key=admin_key
    )

    # then
    assert result.errors == []
    counts = [
        e["backInStockNotificationRequestsCount"] for e in result.data["_entities"]
    ]
    assert counts[-1] == 1 and sum(counts) == 1
    assert len(reading(statements, "notification_requests")) == 1
    assert len(reading(statements, "collection_states")) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_hundred_representations_send_postgresql_one_statement_per_field(
    gql, app, admin_key
):
    representations = [item(f"item-{i}", app_id=f"app-{i % 10}") for i in range(100)]
    await gql(ITEM_ENTITIES, {"representations": representations[:1]}, key=admin_key)

    with sql_sent(app.state.store) as executed:
        result = await gql(
            ITEM_ENTITIES, {"representations": representations}, key=admin_key
        )

    assert result.errors == []
    assert len(reading(executed, "notification_requests")) == 1
    assert len(reading(executed, "collection_states")) == 1


async def test_more_than_a_hundred_representations_are_refused_unread(
    gql, admin_key, statements
):
    representations = [item(f"item-{i}") for i in range(MAX_REPRESENTATIONS + 1)]
    statements.clear()

    result = await gql(
        ITEM_ENTITIES, {"representations": representations}, key=admin_key
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["representations"]
    assert result.data is None
    assert reading(statements, "notification_requests") == []


async def test_the_limit_counts_every_entities_call_of_a_request(gql, admin_key):
    first = [item(f"a-{i}") for i in range(60)]
    second = [item(f"b-{i}") for i in range(41)]

    result = await gql(
        TWO_ENTITY_CALLS, {"first": first, "second": second}, key=admin_key
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["representations"]


@pytest.mark.parametrize(
    ("representation", "violation"),
    [
        ("CatalogItem", "representations[0]"),
        ({"appId": "stores", "catalogItemId": "x"}, "representations[0].__typename"),
        ({**item("x"), "__typename": "Product"}, "representations[0].__typename"),
        (
            {"__typename": "CatalogItem", "appId": "stores"},
            "representations[0].catalogItemId",
        ),
        ({**item("x"), "appId": 7}, "representations[0].appId"),
        ({**item("x"), "options": {}}, "representations[0]"),
        ({"__typename": "BackInStockNotificationRequest"}, "representations[0].id"),
    ],
    ids=[
        "not-an-object",
        "no-typename",
        "not-an-entity",
        "missing-key",
        "key-not-a-string",
        "not-a-key-field",
        "request-without-id",
    ],
)
async def test_malformed_representations_are_invalid_argument(
    gql, admin_key, representation, violation
):
    result = await gql(
        ITEM_ENTITIES, {"representations": [representation]}, key=admin_key
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [violation]


async def test_keys_no_catalog_reference_could_have_are_invalid_argument(
    gql, admin_key
):
    representations = [item("fine"), item("x" * 37)]

    result = await gql(
        ITEM_ENTITIES, {"representations": representations}, key=admin_key
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["catalogItemId"]
    assert result.errors[0]["path"] == ["_entities", 1]
    assert result.data["_entities"][0]["catalogItemId"] == "fine"


async def test_entity_fields_check_their_own_permissions(gql, admin_key, collecting):
    await create(gql)
    representations = [item("shoe-1")]

    demand = await gql(ITEM_COUNTS, {"representations": representations})
    collecting_state = await gql(ITEM_COLLECTING, {"representations": representations})

    assert demand.codes == ["FORBIDDEN"]
    assert demand.data["_entities"] == [None]
    assert collecting_state.errors == []
    assert collecting_state.data["_entities"] == [
        {"backInStockCollectingRequests": True}
    ]


class TestVisitorsHoldNothing:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return Settings(**{**settings.model_dump(), "anonymous_permissions": ""})

    async def test_the_collection_state_needs_read_settings(self, gql, app):
        key = await mint_key(app, READ_REQUESTS)
        representations = [item("shoe-1")]

        demand = await gql(ITEM_COUNTS, {"representations": representations}, key=key)
        collecting_state = await gql(
            ITEM_COLLECTING, {"representations": representations}, key=key
        )

        assert demand.errors == []
        assert collecting_state.codes == ["FORBIDDEN"]
