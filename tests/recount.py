"""Every request as the API lists it, and the demand counters recounted from those."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from app.models import (
    CatalogItemDemand,
    DailyRequestStats,
    ItemUrlDemand,
    NotificationRequest,
    ReferenceRequestCounts,
    RequestTotals,
)
from app.services.request_filters import fold_ascii
from app.storage import Store

WAITING = {"RECEIVED", "PROCESSING", "FAILED"}
STATUSES = ("RECEIVED", "PROCESSING", "NOTIFICATION_SENT", "FAILED")
FIELDS = "id status autoNotified createdDate itemUrl catalogReference { appId catalogItemId }"
LIST = """
query List($filter: BackInStockNotificationRequestFilter, $first: Int, $after: String) {
  backInStockNotificationRequests(filter: $filter, first: $first, after: $after) {
    nodes { %s }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


async def list_all(
    gql: Any, key: str, fields: str = FIELDS, filter: Any = None
) -> list[dict[str, Any]]:
    """Every request the API lists for `filter`, page after page (default order)."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        variables = {"filter": filter, "first": 100, "after": after}
        result = await gql(LIST % fields, variables, key=key)
        assert result.errors == [], result.errors
        page = result.data["backInStockNotificationRequests"]
        found.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def all_requests(gql: Any, key: str) -> dict[str, dict[str, Any]]:
    """Every request, by id."""
    return {node["id"]: node for node in await list_all(gql, key)}


def _class_counts(counted: Counter[tuple[str, bool | None]]) -> tuple[int, ...]:
    """Per status, then per status its autoNotified true and false: the counters'
    order in catalog_item_demand and request_totals."""
    per_status = tuple(
        sum(n for (status, _), n in counted.items() if status == wanted)
        for wanted in STATUSES
    )
    per_auto = tuple(
        counted[(status, auto)] for status in STATUSES for auto in (True, False)
    )
    return per_status + per_auto


def _class_of(request: dict[str, Any]) -> tuple[str, bool | None]:
    # Requests listed without autoNotified count as null.
    return (request["status"], request.get("autoNotified"))


def recount(requests: dict[str, dict[str, Any]]) -> dict[tuple[str, str], tuple]:
    """catalog_item_demand as it should be, from the requests callers see."""
    classes: dict[tuple[str, str], Counter[tuple[str, bool | None]]] = defaultdict(
        Counter
    )
    waiting_dates: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for request in requests.values():
        item = (
            request["catalogReference"]["appId"],
            request["catalogReference"]["catalogItemId"],
        )
        classes[item][_class_of(request)] += 1
        if request["status"] in WAITING:
            waiting_dates[item].append(datetime.fromisoformat(request["createdDate"]))
    expected = {}
    for item, counted in classes.items():
        dates = waiting_dates[item]
        counts = _class_counts(counted)
        expected[item] = (
            fold_ascii(item[1]),  # catalog_item_id_folded
            *counts[:4],
            sum(n for (status, _), n in counted.items() if status in WAITING),
            min(dates, default=None),
            max(dates, default=None),
            *counts[4:],
        )
    return expected


def recount_totals(requests: dict[str, dict[str, Any]]) -> dict[tuple[str, str], tuple]:
    """request_totals as it should be (its shards added up), from the requests: per app
    and first character of the catalogItemId."""
    classes: dict[tuple[str, str], Counter[tuple[str, bool | None]]] = defaultdict(
        Counter
    )
    for request in requests.values():
        reference = request["catalogReference"]
        key = (reference["appId"], reference["catalogItemId"][:1])
        classes[key][_class_of(request)] += 1
    return {key: _class_counts(counted) for key, counted in classes.items()}


def recount_urls(requests: dict[str, dict[str, Any]]) -> dict[tuple[str, str], tuple]:
    """item_url_demand as it should be, from the requests: per app and itemUrl (its
    folded form, then the counts); requests without an itemUrl are not counted."""
    classes: dict[tuple[str, str], Counter[tuple[str, bool | None]]] = defaultdict(
        Counter
    )
    for request in requests.values():
        if request.get("itemUrl") is not None:
            key = (request["catalogReference"]["appId"], request["itemUrl"])
            classes[key][_class_of(request)] += 1
    return {
        key: (fold_ascii(key[1]), *_class_counts(counted))
        for key, counted in classes.items()
    }


async def stored_url_demand(store: Store) -> dict[tuple[str, str], tuple]:
    """item_url_demand, rows whose requests were all deleted left out."""
    table = ItemUrlDemand.__table__
    rows = await store.rows(sa.select(table))
    return {(row.app_id, row.item_url): tuple(row[2:]) for row in rows if any(row[3:7])}


async def stored_demand(store: Store) -> dict[tuple[str, str], tuple]:
    table = CatalogItemDemand.__table__
    rows = await store.rows(sa.select(table))
    return {(row.app_id, row.catalog_item_id): tuple(row[2:]) for row in rows}


async def stored_totals(store: Store) -> dict[tuple[str, str], tuple]:
    """request_totals, its shards added up, apps with no request left out."""
    table = RequestTotals.__table__
    counters = [column for column in table.c if column.name.endswith("_count")]
    key = (table.c.app_id, table.c.catalog_item_initial)
    rows = await store.rows(
        sa.select(*key, *(sa.func.sum(c) for c in counters)).group_by(*key)
    )
    return {
        (row[0], row[1]): tuple(int(n) for n in row[2:]) for row in rows if any(row[2:])
    }


async def stored_stats(store: Store) -> dict[tuple[date, str], tuple[int, int, int]]:
    table = DailyRequestStats.__table__
    rows = await store.rows(
        sa.select(
            table.c.day,
            table.c.app_id,
            sa.func.sum(table.c.created_count),
            sa.func.sum(table.c.notified_count),
            sa.func.sum(table.c.failed_count),
        ).group_by(table.c.day, table.c.app_id)
    )
    return {
        (day(row[0]), row[1]): (int(row[2]), int(row[3]), int(row[4]))
        for row in rows
        if any(row[2:])
    }


async def stored_reference_counts(store: Store) -> dict[str, int]:
    """reference_request_counts: requests per catalog reference key."""
    table = ReferenceRequestCounts.__table__
    rows = await store.rows(
        sa.select(table.c.catalog_reference_key, table.c.request_count)
    )
    return dict(rows)


async def recount_references(store: Store) -> dict[str, int]:
    """reference_request_counts as it should be: the stored requests per reference."""
    key = NotificationRequest.__table__.c.catalog_reference_key
    rows = await store.rows(sa.select(key, sa.func.count()).group_by(key))
    return dict(rows)
