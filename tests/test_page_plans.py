"""How a page is read never changes what it lists (app/services/request_plans.py).

A page walks the sort order's index, walks or sorts the matches of its filter's most
selective term, or is left to the database's plan. Each test runs under thresholds that
send its pages down each of those ways, and must list exactly the same. `startsWith`
reads a range of an index (app/services/text_prefixes.py): it must stay a prefix match
that ignores the case of A-Z only.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.services import request_plans
from tests.documents import (
    MARK_AS_SENT,
    PAGE_OF_REQUESTS,
    QUERY_REQUESTS,
    REPORT,
    create,
    start_collecting,
)
from tests.seeded import seeded
from tests.sent_sql import sql_sent

# On a few rows the probes find every walk short; these make pages go the other ways.
PLANNERS = {
    "walk when short": {},
    "sort or walk the matches": {"WALK_PROBE_ROWS": 0},
    "as the database plans": {"WALK_PROBE_ROWS": 0, "SORTED_AT_MOST": 0},
    # No term counts as few: a page of queued requests by date walks the queue.
    "walk the queue": {"WALK_PROBE_ROWS": 0, "SORTED_AT_MOST": 1},
}
SORT_FIELDS = {
    "ID": "id",
    "CONTACT_ID": "contactId",
    "STATUS": "status",
    "AUTO_NOTIFIED": "autoNotified",
    "CREATED_DATE": "createdDate",
    "ITEM_URL": "itemUrl",
}
STATUS_ORDER = ["FAILED", "NOTIFICATION_SENT", "PROCESSING", "RECEIVED"]
ITEM_IDS = ["Shoe-É1", "shoe-é2", "SHOE-3", "boot-4", "sh_oe-5"]


@pytest.fixture(params=PLANNERS)
def planner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in PLANNERS[request.param].items():
        monkeypatch.setattr(request_plans, name, value)
    return str(request.param)


@seeded
async def shop(gql, admin_key) -> list[dict[str, Any]]:
    """Fifteen requests: items whose ids differ in letter case, two apps, some without
    an itemUrl, some sent (auto-notified false)."""
    await start_collecting(gql, admin_key)
    await start_collecting(gql, admin_key, app_id="Bookings")
    made = []
    for index in range(15):
        made.append(
            await create(
                gql,
                email=f"Buyer{index}@Example.com",
                item_id=ITEM_IDS[index % len(ITEM_IDS)],
                item_url=None
                if index % 4 == 0
                else f"https://Shop.example/{index % 3}",
                app_id="Bookings" if index % 5 == 4 else "stores",
            )
        )
    for request in made[2::4]:
        result = await gql(MARK_AS_SENT, {"id": request["id"]}, key=admin_key)
        assert result.errors == [], result.errors
    return made


async def walk(gql, key, size: int, **variables: Any) -> list[dict[str, Any]]:
    """Every node, page after page by endCursor."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        result = await gql(
            PAGE_OF_REQUESTS, {**variables, "first": size, "after": after}, key=key
        )
        assert result.errors == [], result.errors
        connection = result.data["backInStockNotificationRequests"]
        nodes += [edge["node"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]


def in_order(nodes: list[dict[str, Any]], field: str, order: str) -> list[str]:
    """The ids in the contract's order of one field (NULL lowest), then by id."""

    def key(node: dict[str, Any]) -> tuple[Any, ...]:
        value = node[SORT_FIELDS[field]]
        if field == "STATUS":
            value = STATUS_ORDER.index(value)
        return (value is not None, value, node["id"])

    return [node["id"] for node in sorted(nodes, key=key, reverse=order == "DESC")]


def ids(nodes: list[dict[str, Any]]) -> list[str]:
    return [node["id"] for node in nodes]


async def test_a_page_filtered_to_an_app_with_no_requests_is_empty(
    gql, admin_key, shop, planner
):
    nobody = {"catalogReference": {"appId": {"eq": "an-app-with-no-requests"}}}

    assert await walk(gql, admin_key, 5, filter=nobody) == []
    assert (
        await walk(gql, admin_key, 5, filter={**nobody, "status": {"eq": "RECEIVED"}})
        == []
    )


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("shoe-", ["Shoe-É1", "shoe-é2", "SHOE-3"]),
        ("SHOE-É", ["Shoe-É1"]),  # É is no A-Z letter: it is not folded
        ("Shoe-é", ["shoe-é2"]),
        ("sh_", ["sh_oe-5"]),  # _ is no wildcard
        ("s", ["Shoe-É1", "shoe-é2", "SHOE-3", "sh_oe-5"]),
        ("zz", []),
    ],
)
async def test_starts_with_ignores_the_case_of_a_to_z_only(
    gql, admin_key, shop, planner, prefix, expected
):
    spec = {"catalogReference": {"catalogItemId": {"startsWith": prefix}}}

    found = await walk(gql, admin_key, 4, filter=spec)

    wanted = [
        r["id"]
        for r in reversed(shop)
        if r["catalogReference"]["catalogItemId"] in expected
    ]
    assert ids(found) == wanted


@pytest.mark.parametrize(
    ("field", "prefix", "holds"),
    [
        ("appId", "BOOK", lambda r: r["catalogReference"]["appId"] == "Bookings"),
        (
            "itemUrl",
            "HTTPS://SHOP.EXAMPLE/1",
            lambda r: r["itemUrl"] == "https://Shop.example/1",
        ),
        ("email", " BUYER1", lambda r: r["email"].startswith("buyer1")),
    ],
)
async def test_starts_with_on_any_text_field_matches_exactly_the_prefix(
    gql, admin_key, shop, planner, field, prefix, holds
):
    spec = {field: {"startsWith": prefix}}
    if field == "appId":
        spec = {"catalogReference": spec}

    found = await walk(gql, admin_key, 3, filter=spec)

    assert ids(found) == [r["id"] for r in reversed(shop) if holds(r)]


@pytest.mark.parametrize("field", ["id", "contactId"])
async def test_an_id_starts_with_any_prefix_of_its_text_in_any_case(
    gql, admin_key, shop, planner, field
):
    target = shop[7]
    text = target[field]
    for length in (1, 8, 9, 14, 36):
        found = await walk(
            gql, admin_key, 5, filter={field: {"startsWith": text[:length].upper()}}
        )
        assert target["id"] in ids(found)
        assert all(node[field].startswith(text[:length]) for node in found)
    for prefix in ("zz", text[:8] + "0", text + "0", "-"):
        assert (
            await walk(gql, admin_key, 5, filter={field: {"startsWith": prefix}}) == []
        )


@pytest.mark.parametrize("order", ["ASC", "DESC"])
@pytest.mark.parametrize("field", SORT_FIELDS)
async def test_pages_of_a_selective_filter_keep_keyset_order_under_every_sort(
    gql, admin_key, shop, planner, field, order
):
    # given: an item's requests (one in five), and the same and-ed with an app
    item = {"catalogReference": {"catalogItemId": {"eq": "SHOE-3"}}}
    sort = [{"field": field, "order": order}]
    everything = await walk(gql, admin_key, 100)
    of_item = [
        n for n in everything if n["catalogReference"]["catalogItemId"] == "SHOE-3"
    ]

    # when
    found = await walk(gql, admin_key, 1, filter=item, sort=sort)
    with_app = await walk(
        gql,
        admin_key,
        2,
        filter={**item, "and": [{"catalogReference": {"appId": {"eq": "stores"}}}]},
        sort=sort,
    )

    # then
    assert ids(found) == in_order(of_item, field, order)
    assert ids(with_app) == in_order(
        [n for n in of_item if n["catalogReference"]["appId"] == "stores"], field, order
    )


async def test_an_item_s_requests_come_newest_first_page_after_page(
    gql, admin_key, shop, planner
):
    item = {"catalogReference": {"catalogItemId": {"eq": "boot-4"}}}

    found = await walk(gql, admin_key, 1, filter=item)

    boots = [r for r in shop if r["catalogReference"]["catalogItemId"] == "boot-4"]
    assert ids(found) == [r["id"] for r in reversed(boots)]


@pytest.mark.parametrize("order", ["DESC", "ASC"])
async def test_processing_requests_come_in_date_order_page_after_page(
    gql, admin_key, shop, planner, order
):
    # given: every other waiting request queued by a report (PROCESSING)
    waiting = [r for r in await walk(gql, admin_key, 100) if r["status"] == "RECEIVED"]
    result = await gql(
        REPORT,
        {
            "itemDetails": {"name": "Blue shoe", "price": "1"},
            "options": {"requestIds": [r["id"] for r in waiting[::2]]},
        },
        key=admin_key,
    )
    assert result.errors == [], result.errors
    processing = {"status": {"eq": "PROCESSING"}}
    sort = [{"field": "CREATED_DATE", "order": order}]
    stores = {"catalogReference": {"appId": {"eq": "stores"}}}

    # when
    found = await walk(gql, admin_key, 2, filter=processing, sort=sort)
    of_stores = await walk(
        gql, admin_key, 1, filter={**processing, "and": [stores]}, sort=sort
    )

    # then: what a walk of every request lists, in the same order
    everything = await walk(gql, admin_key, 100, sort=sort)
    queued = [n for n in everything if n["status"] == "PROCESSING"]
    assert len(queued) == len(waiting[::2]) > 2
    assert ids(found) == ids(queued)
    assert ids(of_stores) == [
        n["id"] for n in queued if n["catalogReference"]["appId"] == "stores"
    ]


async def test_a_status_and_auto_notified_no_request_has_together_list_nothing(
    gql, admin_key, shop, planner
):
    received = {"status": {"eq": "RECEIVED"}}
    sent = {"status": {"eq": "NOTIFICATION_SENT"}}

    assert (
        await walk(
            gql, admin_key, 2, filter={**received, "autoNotified": {"eq": False}}
        )
        == []
    )
    assert ids(
        await walk(gql, admin_key, 2, filter={**sent, "autoNotified": {"eq": False}})
    ) == [r["id"] for r in reversed(shop[2::4])]


@pytest.mark.parametrize(
    "spec",
    [
        {
            "catalogReference": {"appId": {"eq": "stores"}},
            "and": [{"catalogReference": {"appId": {"startsWith": "book"}}}],
        },
        {"catalogReference": {"appId": {"in": ["stores", "Bookings"], "lt": "B"}}},
        {"status": {"eq": "RECEIVED"}, "and": [{"status": {"eq": "PROCESSING"}}]},
        {"itemUrl": {"eq": "https://Shop.example/1", "exists": False}},
        {"or": []},
    ],
)
async def test_conditions_no_value_meets_together_list_nothing(
    gql, admin_key, shop, planner, spec
):
    assert await walk(gql, admin_key, 5, filter=spec) == []


async def test_conditions_some_value_meets_together_list_its_requests(
    gql, admin_key, shop, planner
):
    spec = {
        "catalogReference": {"appId": {"in": ["stores", "Bookings"], "lt": "C"}},
        "and": [{"catalogReference": {"appId": {"startsWith": "BOOK"}}}],
    }

    found = await walk(gql, admin_key, 5, filter=spec)

    assert ids(found) == [
        r["id"] for r in reversed(shop) if r["catalogReference"]["appId"] == "Bookings"
    ]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_counts_a_starts_with_range_in_its_index_order(
    app, gql, admin_key, shop
):
    # Read unordered, PostgreSQL may take a bitmap of the whole range before counting
    # the first rows; in the index's order the probe stops at its bound.
    starts = {"itemUrl": {"startsWith": "HTTPS://SHOP.EXAMPLE/1"}}

    with sql_sent(app.state.store) as sent:
        nodes = await walk(gql, admin_key, 100, filter=starts)

    assert nodes and all(n["itemUrl"] == "https://Shop.example/1" for n in nodes)
    probes = [sql for sql in sent if "LIMIT" in sql and "count(*)" in sql]
    assert any("ORDER BY lower(notification_requests.item_url)" in s for s in probes)


# A query asked again reuses the statements built for it (built_statements.py).
BOOKINGS = {"catalogReference": {"appId": {"eq": "Bookings"}}}


async def test_a_query_asked_again_lists_and_counts_what_changed_meanwhile(
    gql, admin_key, shop
):
    before = await gql(QUERY_REQUESTS, {"filter": BOOKINGS, "first": 2}, key=admin_key)
    made = await create(gql, email="late@example.com", app_id="Bookings")

    again = await gql(QUERY_REQUESTS, {"filter": BOOKINGS, "first": 2}, key=admin_key)

    assert before.data["backInStockNotificationRequests"]["totalCount"] == 3
    listed = again.data["backInStockNotificationRequests"]
    assert listed["totalCount"] == 4
    assert listed["edges"][0]["node"]["id"] == made["id"]


async def test_a_query_asked_again_chooses_its_plan_again(
    app, gql, admin_key, shop, monkeypatch
):
    # Up to four matches are sorted; past them the page is read as planned.
    monkeypatch.setattr(request_plans, "WALK_PROBE_ROWS", 0)
    monkeypatch.setattr(request_plans, "SORTED_AT_MOST", 5)
    spec = {**BOOKINGS, "email": {"startsWith": "b"}}  # a second term, left unindexed
    with sql_sent(app.state.store) as few:
        first = await walk(gql, admin_key, 10, filter=spec)
    for index in range(3):
        await create(gql, email=f"b-late{index}@example.com", app_id="Bookings")

    with sql_sent(app.state.store) as more:
        again = await walk(gql, admin_key, 10, filter=spec)

    assert len(first) == 3 and len(again) == 6
    assert ids(again[3:]) == ids(first)
    assert pages_read(few) != pages_read(more)


def pages_read(sent: list[str]) -> list[str]:
    """The statements that read a page (not a probe's count)."""
    return [sql for sql in sent if "count(*)" not in sql and "LIMIT" in sql]
