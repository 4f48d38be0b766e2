"""Every request as the API lists it, and the demand counters recounted from those."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from app.models import CatalogItemDemand, DailyRequestStats
from app.storage import Store

WAITING = {"RECEIVED", "PROCESSING", "FAILED"}
FIELDS = "id status createdDate catalogReference { appId catalogItemId }"
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


def recount(requests: dict[str, dict[str, Any]]) -> dict[tuple[str, str], tuple]:
    """catalog_item_demand as it should be, from the requests callers see."""
    statuses: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    waiting_dates: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for request in requests.values():
        item = (
            request["catalogReference"]["appId"],
            request["catalogReference"]["catalogItemId"],
        )
        statuses[item][request["status"]] += 1
        if request["status"] in WAITING:
            waiting_dates[item].append(datetime.fromisoformat(request["createdDate"]))
    expected = {}
    for item, counted in statuses.items():
        dates = waiting_dates[item]
        expected[item] = (
            counted["RECEIVED"],
            counted["PROCESSING"],
            counted["NOTIFICATION_SENT"],
            counted["FAILED"],
            sum(counted[s] for s in WAITING),
            min(dates, default=None),
            max(dates, default=None),
        )
    return expected


async def stored_demand(store: Store) -> dict[tuple[str, str], tuple]:
    table = CatalogItemDemand.__table__
    rows = await store.rows(sa.select(table))
    return {(row.app_id, row.catalog_item_id): tuple(row[2:]) for row in rows}


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
