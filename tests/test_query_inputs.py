"""Filter values the query refuses, each with INVALID_ARGUMENT and its field's API path,
before anything is read (issue 17): NUL characters, dates no database can hold."""

from __future__ import annotations

import pytest

from tests.documents import QUERY_REQUESTS, create, start_collecting


@pytest.mark.parametrize(
    ("request_filter", "path"),
    [
        ({"email": {"eq": "a\x00@b.c"}}, "filter.email.eq"),
        ({"itemUrl": {"startsWith": "https://\x00"}}, "filter.itemUrl.startsWith"),
        (
            {"catalogReference": {"appId": {"in": ["stores", "st\x00res"]}}},
            "filter.catalogReference.appId.in[1]",
        ),
        (
            {"and": [{}, {"catalogReference": {"catalogItemId": {"gt": "\x00"}}}]},
            "filter.and[1].catalogReference.catalogItemId.gt",
        ),
        ({"not": {"id": {"startsWith": "\x00"}}}, "filter.not.id.startsWith"),
        ({"or": [{"contactId": {"nin": ["\x00"]}}]}, "filter.or[0].contactId.nin[0]"),
    ],
)
async def test_nul_in_any_filter_value_is_invalid_argument(
    gql, admin_key, request_filter, path
):
    result = await gql(QUERY_REQUESTS, {"filter": request_filter}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [path]


@pytest.mark.parametrize(
    "instant", ["9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00:00+01:00"]
)
@pytest.mark.parametrize("operator", ["eq", "gt", "lte"])
async def test_date_beyond_the_range_in_utc_is_invalid_argument(
    gql, admin_key, instant, operator
):
    result = await gql(
        QUERY_REQUESTS, {"filter": {"createdDate": {operator: instant}}}, key=admin_key
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [f"filter.createdDate.{operator}"]


async def test_dates_at_the_edges_of_the_range_in_utc_are_compared(gql, admin_key):
    await start_collecting(gql, admin_key)
    made = await create(gql)

    latest = await gql(
        QUERY_REQUESTS,
        {
            "filter": {
                "createdDate": {
                    "gt": "0001-01-01T00:00:00-01:00",
                    "lt": "9999-12-31T23:59:59.999999+00:00",
                }
            }
        },
        key=admin_key,
    )

    assert latest.errors == []
    assert latest.data["backInStockNotificationRequests"]["nodes"] == [
        {"id": made["id"]}
    ]


async def test_every_broken_rule_of_a_filter_is_listed(gql, admin_key):
    result = await gql(
        QUERY_REQUESTS,
        {
            "filter": {
                "id": {"eq": "nope"},
                "email": {"startsWith": "\x00"},
                "or": [{"createdDate": {"lt": "0001-01-01T00:00:00+01:00"}}],
            },
            "first": 101,
        },
        key=admin_key,
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert sorted(result.violations) == [
        "filter.email.startsWith",
        "filter.id.eq",
        "filter.or[0].createdDate.lt",
        "first",
    ]
