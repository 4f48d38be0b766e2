"""The query cost budget: rows a request may touch, refused before anything runs."""

from __future__ import annotations

import pytest
from graphql import get_introspection_query

from app.config import Settings
from tests.documents import COUNT_BY_REFERENCES, QUERY_REQUESTS, create, reference

# The budget is worked out from the document alone: the same on every database.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PAGE = "backInStockNotificationRequests(first: {first}) {{ totalCount nodes {{ id }} }}"


def aliased_pages(count: int, first: int = 100) -> str:
    """`count` aliases of a page of `first` with its totalCount (1,000 + first each)."""
    return (
        "{ "
        + " ".join(f"p{i}: " + PAGE.format(first=first) for i in range(count))
        + " }"
    )


async def test_a_page_of_100_with_total_count_passes(gql, admin_key, collecting):
    await create(gql)

    result = await gql(QUERY_REQUESTS, {"first": 100}, key=admin_key)

    assert result.errors == []
    assert result.data["backInStockNotificationRequests"]["totalCount"] == 1


async def test_graphiqls_introspection_query_passes_as_a_visitor(gql):
    result = await gql(get_introspection_query(descriptions=True))

    assert result.errors == []


async def test_over_the_budget_is_refused_with_cost_and_budget(
    gql, admin_key, settings
):
    result = await gql(aliased_pages(5), key=admin_key)

    assert result.codes == ["QUERY_TOO_COMPLEX"]
    assert result.data is None
    extensions = result.errors[0]["extensions"]
    assert extensions["cost"] == 5 * 1100
    assert extensions["budget"] == settings.max_query_cost == 5000


async def test_aliases_each_count(gql, admin_key):
    within = await gql(aliased_pages(4), key=admin_key)
    beyond = await gql(aliased_pages(5), key=admin_key)

    assert within.errors == []
    assert beyond.codes == ["QUERY_TOO_COMPLEX"]


async def test_nothing_runs_when_the_budget_is_exceeded(gql, admin_key, collecting):
    mutation = (
        "mutation { "
        + " ".join(
            f'r{i}: reportItemsBackInStock(itemDetails: {{name: "n", price: "1"}}, '
            'options: {catalogReference: {appId: "stores", catalogItemId: "shoe-1"}}) '
            "{ queuedCount }"
            for i in range(6)
        )
        + " }"
    )
    await create(gql)

    refused = await gql(mutation, key=admin_key)
    page = await gql(QUERY_REQUESTS, key=admin_key)

    assert refused.codes == ["QUERY_TOO_COMPLEX"]
    assert page.data["backInStockNotificationRequests"]["edges"][0]["node"][
        "status"
    ] == ("RECEIVED")


async def test_fragments_count_at_every_spread(gql, admin_key):
    document = (
        "{ a: backInStockNotificationRequests(first: 100) { ...C } "
        "b: backInStockNotificationRequests(first: 100) { ...C } "
        "c: backInStockNotificationRequests(first: 100) { ...C } "
        "d: backInStockNotificationRequests(first: 100) { ...C } "
        "e: backInStockNotificationRequests(first: 100) { ...C } } "
        "fragment C on BackInStockNotificationRequestConnection { totalCount }"
    )

    result = await gql(document, key=admin_key)

    assert result.codes == ["QUERY_TOO_COMPLEX"]
    assert result.errors[0]["extensions"]["cost"] == 5 * 1100


async def test_a_cost_multiplied_beyond_64_bits_is_refused_and_reported(gql, admin_key):
    # 30 levels of fragments, each spreading the next 10 times: 10^30 settings reads.
    spreads = " ".join(["...F{next}"] * 10)
    fragments = " ".join(
        f"fragment F{i} on Query {{ {spreads.format(next=i + 1)} }}" for i in range(30)
    )
    document = (
        f"{{ ...F0 }} {fragments} "
        "fragment F30 on Query { backInStockSettings { __typename } }"
    )

    result = await gql(document, key=admin_key)

    assert result.codes == ["QUERY_TOO_COMPLEX"]
    assert result.errors[0]["extensions"]["cost"] == 2**53 - 1


ITEM_PAGES = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on CatalogItem {
      backInStockNotificationRequestsCount
      backInStockNotificationRequests(first: 100) { totalCount nodes { id } }
    }
  }
}
"""


def catalog_items(count: int) -> list[dict[str, str]]:
    return [
        {"__typename": "CatalogItem", "appId": "stores", "catalogItemId": f"item-{i}"}
        for i in range(count)
    ]


async def test_nested_connections_cost_once_per_entity(gql, admin_key):
    # Each entity: 1, its count 20, its page 100 and its totalCount 1,000.
    three = await gql(ITEM_PAGES, {"representations": catalog_items(3)}, key=admin_key)
    five = await gql(ITEM_PAGES, {"representations": catalog_items(5)}, key=admin_key)

    assert three.errors == []
    assert five.codes == ["QUERY_TOO_COMPLEX"]
    assert five.errors[0]["extensions"]["cost"] == 5 * (1 + 20 + 100 + 1000)


async def test_counts_by_reference_cost_per_reference(gql, admin_key):
    refs = [reference(item_id=f"item-{i}") for i in range(100)]
    twice = COUNT_BY_REFERENCES.replace(
        "backInStockNotificationRequestsCountByCatalogReferences",
        "a: backInStockNotificationRequestsCountByCatalogReferences",
    ).replace(
        "  }\n}",
        "  }\n  b: backInStockNotificationRequestsCountByCatalogReferences("
        "catalogReferences: $refs) { count }\n"
        "  c: backInStockNotificationRequestsCountByCatalogReferences("
        "catalogReferences: $refs) { count }\n}",
    )

    once = await gql(COUNT_BY_REFERENCES, {"refs": refs}, key=admin_key)
    thrice = await gql(twice, {"refs": refs}, key=admin_key)

    assert once.errors == []
    assert thrice.codes == ["QUERY_TOO_COMPLEX"]
    assert thrice.errors[0]["extensions"]["cost"] == 3 * 100 * 20


async def test_visitors_get_the_smaller_budget(gql, admin_key, settings):
    document = aliased_pages(2)

    as_visitor = await gql(document)
    with_key = await gql(document, key=admin_key)

    assert as_visitor.codes == ["QUERY_TOO_COMPLEX"]
    assert (
        as_visitor.errors[0]["extensions"]["budget"]
        == settings.max_anonymous_query_cost
    )
    assert with_key.errors == []


async def test_a_refused_key_gets_the_visitors_budget(gql, settings):
    result = await gql(
        aliased_pages(2), headers={"Authorization": "Bearer bis_unknown"}
    )

    assert result.codes == ["QUERY_TOO_COMPLEX"]
    assert result.errors[0]["extensions"]["budget"] == settings.max_anonymous_query_cost


class TestVisitorsWhoMayRead:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "anonymous_permissions": "READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS",
                "max_anonymous_query_cost": 1100,
                "max_query_cost": 2200,
            }
        )

    async def test_both_budgets_are_settings(self, gql, admin_key):
        visitor_page = await gql(QUERY_REQUESTS, {"first": 100})
        visitor_two = await gql(aliased_pages(2))
        keyed_two = await gql(aliased_pages(2), key=admin_key)
        keyed_three = await gql(aliased_pages(3), key=admin_key)

        assert visitor_page.errors == []
        assert visitor_two.codes == ["QUERY_TOO_COMPLEX"]
        assert keyed_two.errors == []
        assert keyed_three.codes == ["QUERY_TOO_COMPLEX"]


class TestTightBudget:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"max_query_cost": 1000})

    async def test_page_size_from_variables_is_what_counts(self, gql, admin_key):
        document = (
            "query($n: Int) { "
            + " ".join(
                f"p{i}: backInStockNotificationRequests(first: $n) {{ nodes {{ id }} }}"
                for i in range(30)
            )
            + " }"
        )

        small = await gql(document, {"n": 10}, key=admin_key)
        large = await gql(document, {"n": 100}, key=admin_key)

        assert small.errors == []
        assert large.codes == ["QUERY_TOO_COMPLEX"]
        assert large.errors[0]["extensions"]["cost"] == 30 * 100
