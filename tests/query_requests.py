"""The requests the connection's tests read (seeded once), and helpers to page them."""

from __future__ import annotations

from tests.documents import (
    MARK_AS_SENT,
    QUERY_REQUESTS,
    REPORT,
    create,
    start_collecting,
)
from tests.seeded import seeded


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


async def matching(gql, key, filter):
    result = await page(gql, key, filter=filter, first=100)
    return sorted(edge["node"]["email"] for edge in result["edges"])


def emails(*indexes):
    return sorted(f"shopper{i}@example.com" for i in indexes)
