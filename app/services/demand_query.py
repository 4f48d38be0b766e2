"""Reading the demand: catalog items ranked by waiting requests, and requests per day.

Both read the counters app/services/demand.py keeps, never the requests: a page of the
ranking is one index range of `catalog_item_demand`, a year of days at most 366 x apps x
shards rows of `daily_request_stats`, whatever the number of requests.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import ColumnElement, and_, func, select, tuple_

from app.models import CatalogItemDemand, DailyRequestStats, table_of
from app.services.rules import MAX_APP_ID_LENGTH, Violations
from app.storage import Store

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_STATS_DAYS = 366
_CURSOR_VERSION = 1
_DEMAND = table_of(CatalogItemDemand)
_STATS = table_of(DailyRequestStats)


class ItemDemand(NamedTuple):
    """One catalog item's requests per status, as callers see them."""

    app_id: str
    catalog_item_id: str
    received_count: int
    processing_count: int
    notification_sent_count: int
    failed_count: int
    waiting_count: int
    oldest_waiting_date: datetime | None
    newest_waiting_date: datetime | None


as_item_demand = ItemDemand._make
_ITEM_COLUMNS = [_DEMAND.c[name] for name in ItemDemand._fields]


@dataclass(frozen=True)
class DemandQuery:
    """A checked ranking query: the app (or every app), where to start, how many."""

    app_id: str | None
    first: int
    after: tuple[int, str, str] | None
    fingerprint: str


@dataclass
class DemandPage:
    rows: list[ItemDemand]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


class DayStats(NamedTuple):
    day: date
    created_count: int
    notified_count: int
    failed_count: int


# ---------------------------------------------------------------------------- ranking


def _fingerprint(app_id: str | None) -> str:
    return hashlib.sha256(orjson.dumps({"app_id": app_id})).hexdigest()[:16]


def encode_cursor(fingerprint: str, row: ItemDemand) -> str:
    payload = [
        _CURSOR_VERSION,
        fingerprint,
        row.waiting_count,
        row.app_id,
        row.catalog_item_id,
    ]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def _decode_cursor(
    cursor: str, fingerprint: str, violations: Violations
) -> tuple[int, str, str] | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, made_for, waiting, app_id, item_id = orjson.loads(
            base64.urlsafe_b64decode(padded.encode())
        )
        if (
            version != _CURSOR_VERSION
            or type(waiting) is not int
            or not isinstance(app_id, str)
            or not isinstance(item_id, str)
        ):
            raise ValueError("not one of our cursors")
    except (ValueError, TypeError, orjson.JSONDecodeError, UnicodeError):
        violations.add("after", "is not a cursor of this connection")
        return None
    if made_for != fingerprint:
        violations.add("after", "was made for another appId")
        return None
    return waiting, app_id, item_id


def _check_app_id(app_id: str | None, violations: Violations) -> None:
    if app_id is not None and not 1 <= len(app_id) <= MAX_APP_ID_LENGTH:
        violations.add("app_id", f"must be 1 to {MAX_APP_ID_LENGTH} characters")


def prepare_demand_query(
    *, app_id: str | None, first: int | None, after: str | None
) -> DemandQuery:
    violations = Violations()
    _check_app_id(app_id, violations)
    first = DEFAULT_PAGE_SIZE if first is None else first
    if not 0 <= first <= MAX_PAGE_SIZE:
        violations.add("first", f"must be 0 to {MAX_PAGE_SIZE}")
    fingerprint = _fingerprint(app_id)
    cursor = None if after is None else _decode_cursor(after, fingerprint, violations)
    violations.raise_if_any()
    return DemandQuery(app_id, first, cursor, fingerprint)


def _ranked(query: DemandQuery) -> tuple[list[ColumnElement[bool]], list[Any]]:
    """WHERE and ORDER BY of the ranking: most waiting first, ties by appId then
    catalogItemId, both descending; one range of the ranking index either way."""
    demand = _DEMAND.c
    where: list[ColumnElement[bool]] = [demand.waiting_count > 0]
    if query.app_id is not None:
        # The app's ranking: (app_id, waiting_count, catalog_item_id).
        where.append(demand.app_id == query.app_id)
        keys = [demand.waiting_count, demand.catalog_item_id]
        if query.after is not None:
            waiting, _, item_id = query.after
            where.append(tuple_(*keys) < tuple_(waiting, item_id))
        return where, [key.desc() for key in keys]
    keys = [demand.waiting_count, demand.app_id, demand.catalog_item_id]
    if query.after is not None:
        where.append(tuple_(*keys) < tuple_(*query.after))
    return where, [key.desc() for key in keys]


async def demand_page(store: Store, query: DemandQuery) -> DemandPage:
    """One page of the ranking: a single SELECT."""
    where, order = _ranked(query)
    rows = await store.rows(
        select(*_ITEM_COLUMNS)
        .where(and_(*where))
        .order_by(*order)
        .limit(query.first + 1),
        into=as_item_demand,
    )
    page = rows[: query.first]
    return DemandPage(
        rows=page,
        cursors=[encode_cursor(query.fingerprint, row) for row in page],
        has_next_page=len(rows) > query.first,
        has_previous_page=query.after is not None,
    )


async def count_demand(store: Store, query: DemandQuery) -> int:
    """How many items have requests waiting (for the app, when one is given)."""
    where = [_DEMAND.c.waiting_count > 0]
    if query.app_id is not None:
        where.append(_DEMAND.c.app_id == query.app_id)
    total = await store.scalar(select(func.count()).where(*where))
    return int(total or 0)


# ---------------------------------------------------------------------------- per day


def _utc_day(moment: datetime) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


async def request_stats(
    store: Store, *, app_id: str | None, start: datetime, end: datetime
) -> list[DayStats]:
    """Every UTC day from the day of `start` to the day of `end` (at most 366), with
    the requests created, notified and failed that day (zeros included)."""
    violations = Violations()
    _check_app_id(app_id, violations)
    first_day, last_day = _utc_day(start), _utc_day(end)
    days = (last_day - first_day).days + 1
    if days < 1:
        violations.add("to", "must not be before from")
    elif days > MAX_STATS_DAYS:
        violations.add("to", f"must be within {MAX_STATS_DAYS} days of from")
    violations.raise_if_any()
    stats = _STATS.c
    first = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    where = [stats.day >= first, stats.day < first + timedelta(days=days)]
    if app_id is not None:
        where.append(stats.app_id == app_id)
    rows = await store.rows(
        select(
            stats.day,
            func.sum(stats.created_count),
            func.sum(stats.notified_count),
            func.sum(stats.failed_count),
        )
        .where(*where)
        .group_by(stats.day)
    )
    found = {row[0].date(): row[1:] for row in rows}
    series = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        created, notified, failed = found.get(day, (0, 0, 0))
        series.append(DayStats(day, int(created), int(notified), int(failed)))
    return series
