"""The request connection: filters, sorts, keyset cursors and page info."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.documents import (
    MARK_AS_SENT,
    QUERY_REQUESTS,
    REPORT,
    create,
    start_collecting,
)
from tests.seeded import seeded

STATUS_ORDER = ["FAILED", "NOTIFICATION_SENT", "PROCESSING", "RECEIVED"]


@seeded
async def requests(gql, admin_key):
    """Eight requests: two apps, some without itemUrl, some sent by hand, some queued."""
    await start_collecting(gql, admin_key)
    await start_collecting(gql, admin_key, app_id="bookings")
    made = []
    for index in range(8):
        made.append(
            await create(
                gql,
                email=f"Shopper{index}@Example.com",
                item_id=f"item-{index % 3}",
                item_url=None
                if index % 3 == 0
                else f"https://shop.example/{index % 4}",
                app_id="bookings" if index >= 6 else "stores",
            )
        )
    for request in made[1:3]:
        await gql(MARK_AS_SENT, {"id": request["id"]}, key=admin_key)
    await gql(
        REPORT,
        {
            "itemDetails": {"name": "x", "price": "1"},
            "options": {"requestIds": [made[3]["id"], made[4]["id"]]},
        },
        key=admin_key,
    )
    return made


async def page(gql, key, **variables):
    result = await gql(QUERY_REQUESTS, variables, key=key)
    assert result.errors == [], result.errors
    return result.data["backInStockNotificationRequests"]


async def all_pages(gql, key, size, **variables):
    """Every node, following endCursor page by page."""
    nodes, after = [], None
    while True:
        current = await page(gql, key, first=size, after=after, **variables)
        nodes += [edge["node"] for edge in current["edges"]]
        if not current["pageInfo"]["hasNextPage"]:
            return nodes
        after = current["pageInfo"]["endCursor"]


def ids(nodes):
    return [node["id"] for node in nodes]


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


async def matching(gql, key, filter):
    result = await page(gql, key, filter=filter, first=100)
    return sorted(edge["node"]["email"] for edge in result["edges"])


def emails(*indexes):
    return sorted(f"shopper{i}@example.com" for i in indexes)


async def test_email_filter_values_are_normalised(gql, admin_key, requests):
    assert await matching(
        gql, admin_key, {"email": {"eq": " SHOPPER1@example.COM "}}
    ) == emails(1)
    assert await matching(
        gql, admin_key, {"email": {"in": ["Shopper2@example.com", "x@y.z"]}}
    ) == emails(2)


async def test_starts_with_is_case_insensitive(gql, admin_key, requests):
    result = await matching(
        gql, admin_key, {"itemUrl": {"startsWith": "HTTPS://SHOP.EXAMPLE/1"}}
    )

    assert result == emails(1, 5)


async def test_starts_with_treats_like_wildcards_literally(gql, admin_key, requests):
    assert await matching(gql, admin_key, {"email": {"startsWith": "shopper_"}}) == []
    assert await matching(gql, admin_key, {"email": {"startsWith": "%"}}) == []


async def test_exists_matches_null_or_non_null(gql, admin_key, requests):
    assert await matching(gql, admin_key, {"itemUrl": {"exists": False}}) == emails(
        0, 3, 6
    )
    assert await matching(gql, admin_key, {"autoNotified": {"exists": True}}) == emails(
        1, 2
    )


async def test_ne_and_nin_include_null_values(gql, admin_key, requests):
    ne = await matching(gql, admin_key, {"itemUrl": {"ne": "https://shop.example/1"}})
    nin = await matching(
        gql, admin_key, {"itemUrl": {"nin": ["https://shop.example/1"]}}
    )

    assert ne == nin == emails(0, 2, 3, 4, 6, 7)


async def test_boolean_filter(gql, admin_key, requests):
    assert await matching(gql, admin_key, {"autoNotified": {"eq": False}}) == emails(
        1, 2
    )
    assert await matching(gql, admin_key, {"autoNotified": {"ne": False}}) == emails(
        0, 3, 4, 5, 6, 7
    )


async def test_status_filter(gql, admin_key, requests):
    assert await matching(gql, admin_key, {"status": {"eq": "PROCESSING"}}) == emails(
        3, 4
    )
    assert await matching(
        gql, admin_key, {"status": {"nin": ["RECEIVED", "PROCESSING"]}}
    ) == emails(1, 2)


async def test_string_range_compares_by_code_point(gql, admin_key, requests):
    result = await matching(
        gql,
        admin_key,
        {"itemUrl": {"gte": "https://shop.example/2", "lt": "https://shop.example/3"}},
    )

    assert result == emails(2)


async def test_catalog_reference_filter(gql, admin_key, requests):
    assert await matching(
        gql, admin_key, {"catalogReference": {"appId": {"eq": "bookings"}}}
    ) == emails(6, 7)
    assert await matching(
        gql,
        admin_key,
        {
            "catalogReference": {
                "appId": {"eq": "stores"},
                "catalogItemId": {"eq": "item-0"},
            }
        },
    ) == emails(0, 3)


async def test_and_or_not_combine_filters(gql, admin_key, requests):
    either = {
        "or": [
            {"email": {"eq": "shopper0@example.com"}},
            {"status": {"eq": "PROCESSING"}},
        ]
    }
    both = {"and": [either, {"itemUrl": {"exists": True}}]}
    negated = {"not": either}

    assert await matching(gql, admin_key, either) == emails(0, 3, 4)
    assert await matching(gql, admin_key, both) == emails(4)
    assert await matching(gql, admin_key, negated) == emails(1, 2, 5, 6, 7)


async def test_not_of_a_null_comparison_matches_the_null_rows(gql, admin_key, requests):
    result = await matching(
        gql, admin_key, {"not": {"itemUrl": {"eq": "https://shop.example/1"}}}
    )

    assert result == emails(0, 2, 3, 4, 6, 7)


async def test_id_filters(gql, admin_key, requests):
    target = requests[5]["id"]

    assert await matching(gql, admin_key, {"id": {"eq": target.upper()}}) == emails(5)
    # Ids begin with their creation time (see time_ordered_id): the random part tells them apart.
    assert await matching(
        gql, admin_key, {"id": {"startsWith": target[:24].upper()}}
    ) == emails(5)
    assert await matching(
        gql, admin_key, {"contactId": {"in": [requests[2]["contactId"]]}}
    ) == emails(2)


async def test_malformed_id_in_filter_is_invalid_argument(gql, admin_key, requests):
    result = await gql(
        QUERY_REQUESTS, {"filter": {"id": {"eq": "nope"}}}, key=admin_key
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["filter.id.eq"]


async def test_date_filters_compare_instants_across_offsets(gql, admin_key, requests):
    third = datetime.fromisoformat(requests[3]["createdDate"])
    in_tokyo = third.astimezone(timezone(timedelta(hours=9))).isoformat()

    after = await matching(gql, admin_key, {"createdDate": {"gt": in_tokyo}})
    exactly = await matching(gql, admin_key, {"createdDate": {"eq": in_tokyo}})

    assert after == emails(4, 5, 6, 7)
    assert exactly == emails(3)


async def test_total_count_counts_every_match(gql, admin_key, requests):
    result = await page(
        gql,
        admin_key,
        first=1,
        filter={"catalogReference": {"appId": {"eq": "stores"}}},
    )

    assert len(result["edges"]) == 1
    assert result["totalCount"] == 6


async def test_filter_nested_too_deep_is_invalid_argument(gql, admin_key):
    deep: dict = {"email": {"eq": "a@b.c"}}
    for _ in range(12):
        deep = {"not": deep}

    result = await gql(QUERY_REQUESTS, {"filter": deep}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
