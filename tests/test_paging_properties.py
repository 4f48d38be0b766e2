"""Model-based property tests of the request connection (Hypothesis).

Random rows (every status, PROCESSING through queued notifications; null, false and true
autoNotified; null and tied itemUrl; ties on every column; unicode; emails in any case),
random filter trees (every field and operator, `and` / `or` / `not`, nested), random sorts
of one to three keys in both orders and random page sizes: every page is walked by cursor
through the GraphQL API, and what it lists, its page info and `totalCount` must be what
tests/paging_model.py's oracle of the contract says. One database per run, emptied
between examples.

Profiles: "ci" (the default; a bounded, repeatable run) and "deep" (by hand:
`HYPOTHESIS_PROFILE=deep .venv/bin/python -m pytest tests/test_paging_properties.py`).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as profiles
from hypothesis import strategies as st

from app.config import Settings
from app.services import request_plans
from app.services.rules import contact_id_for
from app.storage import Store
from tests.conftest import GraphQLClient
from tests.paging_model import (
    PAGE,
    SORT_FIELDS,
    STATUSES,
    STORED_STATUSES,
    Row,
    check_pages,
    expected,
    serving_in,
    store_rows,
    walk,
    wipe,
)

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
profiles.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=_HEALTH,
)
profiles.register_profile(
    "deep", max_examples=1500, deadline=None, suppress_health_check=_HEALTH
)
PROFILE = profiles.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
MAX_ROWS = 40 if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else 20

# Letters that fold (A-Z), that do not (É, ß, İ), LIKE wildcards, and beyond the BMP.
LETTERS = "aAbBzZ09_%.-/é É ß İ 中 😀".replace(" ", "")
BASE = datetime(2025, 6, 1, 12, tzinfo=UTC)
OFFSETS = [
    UTC,
    timezone(timedelta(hours=9)),
    timezone(timedelta(hours=-5, minutes=-30)),
]
EQUALITY = ["eq", "ne", "in", "nin"]
RANGES = ["gt", "gte", "lt", "lte"]
OPERATORS = {
    "id": [*EQUALITY, "startsWith", "exists"],
    "contactId": [*EQUALITY, "startsWith", "exists"],
    "status": EQUALITY,
    "autoNotified": ["eq", "ne", "exists"],
    "createdDate": ["eq", "ne", *RANGES, "exists"],
    "itemUrl": [*EQUALITY, *RANGES, "startsWith", "exists"],
    "email": [*EQUALITY, *RANGES, "startsWith", "exists"],
    "appId": [*EQUALITY, *RANGES, "startsWith", "exists"],
    "catalogItemId": [*EQUALITY, *RANGES, "startsWith", "exists"],
}
FILTER_FIELDS = [name for name in OPERATORS if name not in ("appId", "catalogItemId")]

# ------------------------------------------------------------------------------- rows

words = st.text(LETTERS, min_size=1, max_size=4)


@st.composite
def worlds(draw: st.DrawFn) -> list[Row]:
    """Rows drawing every column from a small pool, so that ties are common."""
    emails = draw(st.lists(words, min_size=1, max_size=4))
    urls = draw(st.lists(words.map(lambda w: f"https://shop.example/{w}"), max_size=3))
    apps = draw(st.lists(words, min_size=1, max_size=3))
    items = draw(st.lists(words, min_size=1, max_size=3))
    instants = [
        BASE + timedelta(microseconds=step)
        for step in draw(
            st.lists(
                st.sampled_from([0, 1, 2, 10**6, 86_400 * 10**6]),
                min_size=1,
                max_size=4,
            )
        )
    ]
    row = st.builds(
        _row,
        id=st.uuids(),
        email=st.sampled_from(emails).map(lambda local: f"{local}@x.example".lower()),
        stored_status=st.sampled_from(STORED_STATUSES),
        queued=st.booleans(),
        auto_notified=st.sampled_from([None, False, True]),
        created_date=st.sampled_from(instants),
        item_url=st.sampled_from([None, *urls]),
        app_id=st.sampled_from(apps),
        catalog_item_id=st.sampled_from(items),
    )
    return draw(st.lists(row, min_size=6, max_size=MAX_ROWS, unique_by=lambda r: r.id))


def _row(email: str, **values: Any) -> Row:
    return Row(email=email, contact_id=contact_id_for(email), **values)


# ------------------------------------------------------------------------------ filters


def _recased(text: str, how: int) -> str:
    return [text, text.upper(), text.lower(), text.swapcase()][how]


def _ids(rows: list[Row], of: Callable[[Row], uuid.UUID]) -> st.SearchStrategy[str]:
    known = [str(of(row)) for row in rows]
    known_ids = st.sampled_from(known) if known else st.nothing()
    spelled = st.tuples(known_ids, st.integers(0, 3)).map(lambda t: _recased(*t))
    return st.one_of(spelled, st.uuids().map(str))


def _prefixes(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Prefixes of the values in any letter case, and other text."""
    cut = st.tuples(values, st.integers(0, 40), st.integers(0, 3)).map(
        lambda t: _recased(t[0][: t[1]], t[2])
    )
    return st.one_of(cut, words)


def _dates(rows: list[Row]) -> st.SearchStrategy[str]:
    """Instants near the rows' (a microsecond either side), named in several offsets
    (or none, which is UTC)."""
    near = st.sampled_from([row.created_date for row in rows] or [BASE])
    moved = st.tuples(near, st.sampled_from([-1, 0, 1]), st.sampled_from(OFFSETS)).map(
        lambda t: (t[0] + timedelta(microseconds=t[1])).astimezone(t[2]).isoformat()
    )
    naive = near.map(lambda d: d.replace(tzinfo=None).isoformat())
    return st.one_of(moved, naive)


def _values(name: str, rows: list[Row]) -> st.SearchStrategy[Any]:
    """Filter values for one field: mostly ones the rows hold, in any spelling."""
    if name in ("id", "contactId"):
        return _ids(
            rows, (lambda r: r.id) if name == "id" else (lambda r: r.contact_id)
        )
    if name == "status":
        return st.sampled_from(STATUSES)
    if name == "autoNotified":
        return st.booleans()
    if name == "createdDate":
        return _dates(rows)
    held = {
        "itemUrl": [row.item_url for row in rows if row.item_url],
        "email": [row.email for row in rows],
        "appId": [row.app_id for row in rows],
        "catalogItemId": [row.catalog_item_id for row in rows],
    }[name]
    known = st.sampled_from(held) if held else words
    if name == "email":
        # The same address in other letter cases and with spaces around it.
        known = st.tuples(
            known, st.integers(0, 3), st.sampled_from(["", " ", "\t"])
        ).map(lambda t: f"{t[2]}{_recased(t[0], t[1])}{t[2]}")
    return st.one_of(known, words)


def field_filter(name: str, rows: list[Row]) -> st.SearchStrategy[dict[str, Any]]:
    """One to two operators of one field, each with a fitting value."""
    values = _values(name, rows)

    def operand(op: str) -> st.SearchStrategy[Any]:
        if op == "exists":
            return st.booleans()
        if op in ("in", "nin"):
            return st.lists(values, max_size=3)
        if op == "startsWith":
            return _prefixes(values) if name != "status" else st.nothing()
        return values

    return st.lists(
        st.sampled_from(OPERATORS[name]), min_size=1, max_size=2, unique=True
    ).flatmap(lambda ops: st.fixed_dictionaries({op: operand(op) for op in ops}))


@st.composite
def filters(
    draw: st.DrawFn,
    rows: list[Row],
    depth: int = 3,
    fields: tuple[str, ...] = tuple(FILTER_FIELDS),
) -> dict[str, Any]:
    """A filter object: a few of `fields` (and catalogReference), and below the top
    `depth` levels `and`, `or` and `not` of more filter objects."""
    parts = [*fields, "catalogReference", *(["and", "or", "not"] if depth else [])]
    names = draw(st.lists(st.sampled_from(parts), max_size=2, unique=True))
    spec: dict[str, Any] = {}
    for name in names:
        if name in ("and", "or"):
            spec[name] = draw(st.lists(filters(rows, depth - 1, fields), max_size=3))
        elif name == "not":
            spec[name] = draw(filters(rows, depth - 1, fields))
        elif name == "catalogReference":
            subs = draw(
                st.lists(
                    st.sampled_from(["appId", "catalogItemId"]), min_size=1, unique=True
                )
            )
            spec[name] = {sub: draw(field_filter(sub, rows)) for sub in subs}
        else:
            spec[name] = draw(field_filter(name, rows))
    return spec


sort_keys = st.fixed_dictionaries(
    {"field": st.sampled_from(SORT_FIELDS)},
    optional={"order": st.sampled_from(["ASC", "DESC"])},
)
# No sort (the default order) when the list drawn is empty.
sorts = st.lists(sort_keys, max_size=3).map(lambda keys: keys or None)
page_sizes = st.lists(st.integers(1, 7), min_size=1, max_size=3)


@dataclass(frozen=True)
class Walk:
    """One query, walked page by page; `edge` picks the edge whose cursor is tried."""

    filter: dict[str, Any] | None
    sort: list[dict[str, str]] | None
    sizes: list[int]
    edge: int


def walks(rows: list[Row], filtered: bool = False) -> st.SearchStrategy[list[Walk]]:
    """A few queries of the same rows (storing them costs more than a walk); each with
    a filter of at least one field when `filtered`."""
    one = st.builds(
        Walk,
        filter=filters(rows).filter(bool) if filtered else st.none() | filters(rows),
        sort=sorts,
        sizes=page_sizes,
        edge=st.integers(0, 100),
    )
    return st.lists(one, min_size=1, max_size=3)


# ------------------------------------------------------------------------------- the test


async def check_walks(
    store: Store, gql: GraphQLClient, key: str, rows: list[Row], queries: list[Walk]
) -> None:
    await wipe(store)
    await store_rows(store, rows)
    for query in queries:
        await check_walk(
            gql, key, rows, query.filter, query.sort, query.sizes, query.edge
        )


async def check_walk(
    gql: GraphQLClient,
    key: str,
    rows: list[Row],
    request_filter: dict[str, Any] | None,
    sort: list[dict[str, str]] | None,
    sizes: list[int],
    edge: int,
) -> None:
    wanted = [row.node() for row in expected(rows, request_filter, sort)]

    nodes, pages = await walk(gql, key, sizes, request_filter, sort)

    assert nodes == wanted
    check_pages(pages, len(wanted))
    empty = await gql(
        PAGE, {"filter": request_filter, "sort": sort, "first": 0}, key=key
    )
    info = empty.data["backInStockNotificationRequests"]
    assert info["edges"] == [] and info["pageInfo"]["hasNextPage"] is bool(wanted)
    if len(wanted) >= 2:
        # Any edge's cursor continues right after that edge.
        edges = (
            pages[0]["cursors"] + pages[1]["cursors"]
            if len(pages) > 1
            else pages[0]["cursors"]
        )
        chosen = edge % len(edges)
        rest, _ = await walk(gql, key, [100], request_filter, sort, after=edges[chosen])
        assert rest == wanted[chosen + 1 :]


# How pages are read (app/services/request_plans.py) must never change what they list.
# On a few rows the probes always find the walk short; these thresholds make every
# page sort its matches (read through one term's index, or walk that index in page
# order), or leave it to the database's own plan.
PLANNERS = {
    "walk when short": {},
    "sort the matches": {"WALK_PROBE_ROWS": 0},
    "as the database plans": {"WALK_PROBE_ROWS": 0, "SORTED_AT_MOST": 0},
    # No term counts as few: PROCESSING pages by date walk the queue's date index.
    "walk the queue": {"WALK_PROBE_ROWS": 0, "SORTED_AT_MOST": 1},
}
# Under the shipped thresholds, any query; under the others, filtered ones (a page
# without a filter is always read as the database plans it).
FILTERED_ONLY = {"sort the matches", "as the database plans", "walk the queue"}


@pytest.mark.parametrize("planner", PLANNERS)
def test_every_walk_by_cursor_lists_what_the_model_says(
    settings: Settings, planner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PLANNERS[planner].items():
        monkeypatch.setattr(request_plans, name, value)
    with asyncio.Runner() as runner, serving_in(runner, settings) as (app, gql, key):

        @PROFILE
        @given(data=st.data(), rows=worlds())
        def walk_matches_the_model(data: st.DataObject, rows: list[Row]) -> None:
            queries = data.draw(
                walks(rows, filtered=planner in FILTERED_ONLY), label="walks"
            )
            runner.run(check_walks(app.state.store, gql, key, rows, queries))

        walk_matches_the_model()
