"""The request connection's filters: each operator, and/or/not, ids, dates, totalCount."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.documents import QUERY_REQUESTS
from tests.query_requests import emails, matching, page, requests

__all__ = ["requests"]  # the seeded fixture the tests below take


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
