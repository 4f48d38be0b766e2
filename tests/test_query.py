"""The request connection: sorts, keyset cursors and page info (its filters:
test_query_filters.py)."""

from __future__ import annotations

import pytest

from tests.documents import QUERY_REQUESTS, create, start_collecting
from tests.query_requests import all_pages, ids, page, requests

STATUS_ORDER = ["FAILED", "NOTIFICATION_SENT", "PROCESSING", "RECEIVED"]
__all__ = ["requests"]  # the seeded fixture the tests below take


async def test_default_order_is_newest_first(gql, admin_key, requests):
    result = await page(gql, admin_key)

    assert ids(result["nodes"]) == [r["id"] for r in reversed(requests)]
    assert result["totalCount"] == 8


async def test_first_defaults_to_fifty(gql, admin_key):
    await start_collecting(gql, admin_key)
    for index in range(51):
        await create(gql, email=f"s{index}@x.com")

    result = await page(gql, admin_key)

    assert len(result["edges"]) == 50
    assert result["pageInfo"]["hasNextPage"] is True
    assert result["totalCount"] == 51


@pytest.mark.parametrize("first", [-1, 101])
async def test_first_out_of_range_is_invalid_argument(gql, admin_key, first):
    result = await gql(QUERY_REQUESTS, {"first": first}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["first"]


def sort_key(field, node):
    """The contract's order for one field: NULL ranks lowest."""
    value = node[field]
    if field == "status":
        value = STATUS_ORDER.index(value)
    return (value is not None, value)


@pytest.mark.parametrize(
    ("field", "node_field"),
    [
        ("STATUS", "status"),
        ("ITEM_URL", "itemUrl"),
        ("AUTO_NOTIFIED", "autoNotified"),
        ("CREATED_DATE", "createdDate"),
        ("CONTACT_ID", "contactId"),
        ("ID", "id"),
    ],
)
@pytest.mark.parametrize("order", ["ASC", "DESC"])
async def test_paging_by_cursor_visits_every_match_once_in_sort_order(
    gql, admin_key, requests, field, node_field, order
):
    everything = await page(gql, admin_key, first=100)
    expected = sorted(
        everything["edges"],
        key=lambda edge: (sort_key(node_field, edge["node"]), edge["node"]["id"]),
        reverse=order == "DESC",
    )

    visited = await all_pages(
        gql, admin_key, 3, sort=[{"field": field, "order": order}]
    )

    assert ids(visited) == [edge["node"]["id"] for edge in expected]


async def test_nulls_rank_lowest(gql, admin_key, requests):
    ascending = await page(gql, admin_key, sort=[{"field": "ITEM_URL", "order": "ASC"}])
    descending = await page(
        gql, admin_key, sort=[{"field": "ITEM_URL", "order": "DESC"}]
    )

    assert [e["node"]["itemUrl"] for e in ascending["edges"]][:3] == [None, None, None]
    assert [e["node"]["itemUrl"] for e in descending["edges"]][-3:] == [
        None,
        None,
        None,
    ]


async def test_several_sort_fields_break_ties_in_order(gql, admin_key, requests):
    sort = [
        {"field": "STATUS", "order": "ASC"},
        {"field": "CREATED_DATE", "order": "DESC"},
    ]
    everything = [e["node"] for e in (await page(gql, admin_key, first=100))["edges"]]
    expected = sorted(
        sorted(everything, key=lambda n: n["createdDate"], reverse=True),
        key=lambda n: STATUS_ORDER.index(n["status"]),
    )

    visited = await all_pages(gql, admin_key, 2, sort=sort)

    assert ids(visited) == ids(expected)


async def test_sort_order_defaults_to_ascending(gql, admin_key, requests):
    result = await page(gql, admin_key, sort=[{"field": "CREATED_DATE"}])

    assert ids(result["nodes"]) == [r["id"] for r in requests]


async def test_page_info_on_first_and_later_pages(gql, admin_key, requests):
    first = await page(gql, admin_key, first=3)
    second = await page(gql, admin_key, first=3, after=first["pageInfo"]["endCursor"])

    assert first["pageInfo"]["hasPreviousPage"] is False
    assert first["pageInfo"]["startCursor"] == first["edges"][0]["cursor"]
    assert first["pageInfo"]["endCursor"] == first["edges"][-1]["cursor"]
    assert second["pageInfo"]["hasPreviousPage"] is True
    assert ids(second["nodes"]) == [r["id"] for r in reversed(requests)][3:6]


async def test_any_edge_cursor_continues_right_after_that_edge(
    gql, admin_key, requests
):
    first = await page(gql, admin_key, first=4)

    after_second = await page(
        gql, admin_key, first=2, after=first["edges"][1]["cursor"]
    )

    assert ids(after_second["nodes"]) == ids(first["nodes"])[2:4]


async def test_empty_page_has_null_cursors(gql, admin_key, requests):
    result = await page(gql, admin_key, filter={"email": {"eq": "nobody@x.com"}})

    assert result["edges"] == []
    assert result["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }
    assert result["totalCount"] == 0


async def test_first_zero_returns_no_edges_but_says_more_exist(
    gql, admin_key, requests
):
    result = await page(gql, admin_key, first=0)

    assert result["edges"] == []
    assert result["pageInfo"]["hasNextPage"] is True
    assert result["totalCount"] == 8


async def test_cursor_used_with_another_filter_is_invalid_argument(
    gql, admin_key, requests
):
    first = await page(gql, admin_key, first=2)

    other_filter = await gql(
        QUERY_REQUESTS,
        {
            "first": 2,
            "after": first["pageInfo"]["endCursor"],
            "filter": {"status": {"eq": "RECEIVED"}},
        },
        key=admin_key,
    )
    other_sort = await gql(
        QUERY_REQUESTS,
        {
            "first": 2,
            "after": first["pageInfo"]["endCursor"],
            "sort": [{"field": "ID"}],
        },
        key=admin_key,
    )

    assert other_filter.codes == ["INVALID_ARGUMENT"]
    assert other_sort.codes == ["INVALID_ARGUMENT"]
    assert other_filter.violations == ["after"]


@pytest.mark.parametrize("cursor", ["garbage", "", "WzEsMiwzXQ", "!!!", "eyJhIjoxfQ"])
async def test_cursor_not_ours_is_invalid_argument(gql, admin_key, requests, cursor):
    result = await gql(QUERY_REQUESTS, {"after": cursor}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
