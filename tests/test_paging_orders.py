"""Paging by cursor, tried as a new user would (issue 11): every sort field alone and every
ordered pair of fields in all four direction combinations, walked a few rows at a time,
lists each request exactly once, in the contract's order."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.services.rules import contact_id_for
from tests.paging_model import (
    SENT,
    SORT_FIELDS,
    Row,
    check_pages,
    expected,
    store_rows,
    walk,
)

ORDERS = ("ASC", "DESC")
PAGE_SIZES = [3]
BASE = datetime(2025, 3, 1, 12, tzinfo=UTC)
# Ties and near-ties on every column; the periods are coprime, so the combinations vary.
STORED = [
    ("RECEIVED", False),
    ("FAILED", False),
    (SENT, False),
    ("RECEIVED", True),  # PROCESSING
    ("FAILED", True),  # PROCESSING
    (SENT, True),  # a notification left queued for a sent request: still sent
]
AUTO_NOTIFIED = [None, False, True]
ITEM_URLS = [
    None,
    "https://shop.example/a",
    None,
    "https://shop.example/B",
    "https://shop.example/é",
    "https://shop.example/a",
    "HTTPS://shop.example/Z",
]
DATES = [BASE, BASE + timedelta(microseconds=1), BASE, BASE - timedelta(seconds=1)]
EMAILS = [f"shopper{i}@example.com" for i in range(5)] + ["Zoë@example.com".lower()]


def tied_rows(count: int = 25) -> list[Row]:
    rng = random.Random(11)
    rows = []
    for i in range(count):
        status, queued = STORED[i % len(STORED)]
        email = EMAILS[i % len(EMAILS)]
        rows.append(
            Row(
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                email=email,
                contact_id=contact_id_for(email),
                stored_status=status,
                queued=queued,
                auto_notified=AUTO_NOTIFIED[i % len(AUTO_NOTIFIED)],
                created_date=DATES[i % len(DATES)],
                item_url=ITEM_URLS[i % len(ITEM_URLS)],
                app_id="stores",
                catalog_item_id=f"item-{i % 4}",
            )
        )
    return rows


def sorts_starting_with(field: str) -> list[list[dict[str, str]]]:
    """The field alone in both orders, and before every other field in all four."""
    alone = [[{"field": field, "order": order}] for order in ORDERS]
    pairs = [
        [{"field": field, "order": first}, {"field": other, "order": second}]
        for other in SORT_FIELDS
        if other != field
        for first, second in itertools.product(ORDERS, ORDERS)
    ]
    return alone + pairs


@pytest.mark.parametrize("field", SORT_FIELDS)
async def test_every_sort_of_one_or_two_fields_lists_each_request_once_in_order(
    app, gql, admin_key, field
):
    # given
    rows = tied_rows()
    await store_rows(app.state.store, rows)
    wrong = []

    # when
    for sort in sorts_starting_with(field):
        nodes, pages = await walk(gql, admin_key, PAGE_SIZES, sort=sort)
        check_pages(pages, len(rows))
        if nodes != [row.node() for row in expected(rows, None, sort)]:
            wrong.append(sort)

    # then
    assert wrong == []


async def test_status_then_id_descending_starts_from_the_right_end(app, gql, admin_key):
    """The issue's example: [{STATUS, ASC}, {ID, DESC}] repeated and missed rows."""
    rows = tied_rows()
    await store_rows(app.state.store, rows)
    sort = [{"field": "STATUS", "order": "ASC"}, {"field": "ID", "order": "DESC"}]

    nodes, _ = await walk(gql, admin_key, [2], sort=sort)

    assert [node["id"] for node in nodes] == [
        str(row.id) for row in expected(rows, None, sort)
    ]
    assert len({node["id"] for node in nodes}) == len(rows)


async def test_auto_notified_then_date_pages_past_true_and_false(app, gql, admin_key):
    """The issue's example: two-key sorts with AUTO_NOTIFIED answered INTERNAL once the
    cursor held true or false."""
    rows = tied_rows()
    await store_rows(app.state.store, rows)
    sort = [
        {"field": "AUTO_NOTIFIED", "order": "ASC"},
        {"field": "CREATED_DATE", "order": "DESC"},
    ]

    nodes, _ = await walk(gql, admin_key, [2], sort=sort)

    assert [node["id"] for node in nodes] == [
        str(row.id) for row in expected(rows, None, sort)
    ]
