"""Text compares the same on SQLite and PostgreSQL: by code point, whatever the locale."""

from __future__ import annotations

import pytest

from tests.documents import create, start_collecting
from tests.seeded import seeded

ITEM_IDS = ["Z-1", "a-2", "É-3", "é-4", "_-5", "%-6", "10", "9"]

QUERY = """
query List($filter: BackInStockNotificationRequestFilter,
           $sort: [BackInStockNotificationRequestSort!]) {
  backInStockNotificationRequests(filter: $filter, sort: $sort, first: 100) {
    nodes { email catalogReference { catalogItemId } }
  }
}
"""


@seeded
async def items(gql, admin_key):
    await start_collecting(gql, admin_key)
    for item_id in ITEM_IDS:
        await create(gql, item_id=item_id, email=f"{item_id}@example.com")


async def listed(gql, key, request_filter=None):
    result = await gql(QUERY, {"filter": request_filter}, key=key)
    assert result.errors == [], result.errors
    return result.data["backInStockNotificationRequests"]["nodes"]


async def item_ids(gql, key, item_filter):
    nodes = await listed(gql, key, {"catalogReference": {"catalogItemId": item_filter}})
    return [node["catalogReference"]["catalogItemId"] for node in nodes]


@pytest.mark.parametrize("bound", ["Z", "a", "É", "9"])
async def test_greater_than_compares_by_code_point(gql, admin_key, items, bound):
    found = await item_ids(gql, admin_key, {"gt": bound})

    assert sorted(found) == sorted(i for i in ITEM_IDS if i > bound)


async def test_email_less_than_compares_by_code_point(gql, admin_key, items):
    emails = [node["email"] for node in await listed(gql, admin_key)]

    below_a = [
        node["email"] for node in await listed(gql, admin_key, {"email": {"lt": "a"}})
    ]

    # Punctuation and digits sort before "a", "é" after "z", in no locale's order.
    assert sorted(below_a) == sorted(e for e in emails if e < "a")
    assert sorted(below_a) == [
        "%-6@example.com",
        "10@example.com",
        "9@example.com",
        "_-5@example.com",
    ]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("z", ["Z-1"]),
        ("A", ["a-2"]),
        ("É", ["É-3"]),  # a capital outside A-Z matches itself ...
        ("é", ["é-4"]),  # ... and is not folded: only A-Z are
        ("_", ["_-5"]),  # LIKE wildcards are plain characters
        ("%", ["%-6"]),
        ("1", ["10"]),
    ],
)
async def test_starts_with_ignores_the_case_of_a_to_z(
    gql, admin_key, items, prefix, expected
):
    assert await item_ids(gql, admin_key, {"startsWith": prefix}) == expected
