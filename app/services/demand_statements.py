"""The statements that keep the demand counters (app/services/demand.py uses them).

Built once per dialect (their values come as parameters), so each change reuses the
compiled SQL; those that run on every create end with RETURNING, which lets them run as
reusable statements on SQLite's fast path (`Transaction.rows`).
"""

from __future__ import annotations

import functools
import operator
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from app.models import (
    CatalogItemDemand,
    DailyRequestStats,
    ItemUrlDemand,
    NotificationRequest,
    ReferenceRequestCounts,
    RequestStatus,
    RequestTotals,
    table_of,
)
from app.services.request_view import COLUMNS, REQUEST_VIEW

_DEMAND = table_of(CatalogItemDemand)
_STATS = table_of(DailyRequestStats)
_TOTALS = table_of(RequestTotals)
_REQUESTS = table_of(NotificationRequest)
_REFERENCES = table_of(ReferenceRequestCounts)
_URLS = table_of(ItemUrlDemand)
RECEIVED = RequestStatus.RECEIVED.value
FAILED = RequestStatus.FAILED.value
# Each status's counter column.
STATUS_COUNTS = {
    RECEIVED: "received_count",
    RequestStatus.PROCESSING.value: "processing_count",
    RequestStatus.NOTIFICATION_SENT.value: "notification_sent_count",
    FAILED: "failed_count",
}
# Of each status's requests, the counter of those with autoNotified true or false (the
# others have null: the status's count less these two).
AUTO_COUNTS = {
    (status, auto): f"{column.removesuffix('_count')}_auto_{str(auto).lower()}_count"
    for status, column in STATUS_COUNTS.items()
    for auto in (True, False)
}
# Every counter a change of status or autoNotified moves.
CLASS_COUNTS = (*STATUS_COUNTS.values(), *AUTO_COUNTS.values())


class RequestClass(NamedTuple):
    """A request as the counters tell requests apart: its status as callers see it, and
    its autoNotified."""

    status: str
    auto_notified: bool | None


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _earlier(dialect: str, a: Any, b: Any, later: bool = False) -> Any:
    """The earlier (or later) of two dates, either of which may be NULL."""
    if dialect == "postgresql":  # LEAST and GREATEST skip NULLs
        return func.greatest(a, b) if later else func.least(a, b)
    # SQLite's two-argument min()/max() are NULL if either is.
    both = func.max(a, b) if later else func.min(a, b)
    return func.coalesce(both, a, b)


def _created_upsert(dialect: str) -> Any:
    """A new RECEIVED request counted (RETURNING: it runs as a reusable statement)."""
    created = bindparam("b_created_date", type_=_DEMAND.c.oldest_waiting_date.type)
    statement = _insert(dialect)(_DEMAND).values(
        app_id=bindparam("b_app_id", type_=_DEMAND.c.app_id.type),
        catalog_item_id=bindparam(
            "b_catalog_item_id", type_=_DEMAND.c.catalog_item_id.type
        ),
        catalog_item_id_folded=bindparam(
            "b_catalog_item_id_folded", type_=_DEMAND.c.catalog_item_id_folded.type
        ),
        received_count=literal_column("1"),
        processing_count=literal_column("0"),
        notification_sent_count=literal_column("0"),
        failed_count=literal_column("0"),
        waiting_count=literal_column("1"),
        oldest_waiting_date=created,
        newest_waiting_date=created,
    )
    new, old = statement.excluded, _DEMAND.c
    return statement.on_conflict_do_update(
        index_elements=["app_id", "catalog_item_id"],
        set_={
            "received_count": old.received_count + 1,
            "waiting_count": old.waiting_count + 1,
            "oldest_waiting_date": _earlier(
                dialect, old.oldest_waiting_date, new.oldest_waiting_date
            ),
            "newest_waiting_date": _earlier(
                dialect, old.newest_waiting_date, new.newest_waiting_date, later=True
            ),
        },
    ).returning(old.waiting_count)


def _upsert_values(
    dialect: str,
    table: Any,
    values: dict[str, Any],
    after: Any | None,
    when: ColumnElement[bool] | None = None,
) -> Any:
    """INSERT one row of `values`; given `after` (a CTE of one row), the row is selected
    from it (only `when` that holds), so PostgreSQL writes that CTE's row first (see
    _created_counts_postgresql)."""
    if after is None:
        return _insert(dialect)(table).values(values)
    typed = [
        type_coerce(value, table.c[name].type).label(name)
        for name, value in values.items()
    ]
    selected = select(*typed).select_from(after)
    if when is not None:
        selected = selected.where(when)
    return _insert(dialect)(table).from_select(list(values), selected)


def _stats_upsert(dialect: str, after: Any | None = None) -> Any:
    statement = _upsert_values(
        dialect,
        _STATS,
        {
            "day": bindparam("b_day", type_=_STATS.c.day.type),
            "app_id": bindparam("b_app_id", type_=_STATS.c.app_id.type),
            "shard": bindparam("b_shard"),
            "created_count": bindparam("b_created"),
            "notified_count": bindparam("b_notified"),
            "failed_count": bindparam("b_failed"),
        },
        after,
    )
    new, old = statement.excluded, _STATS.c
    return statement.on_conflict_do_update(
        index_elements=["day", "app_id", "shard"],
        set_={
            name: old[name] + new[name]
            for name in ("created_count", "notified_count", "failed_count")
        },
    ).returning(old.created_count)


def _totals_upsert(dialect: str, after: Any | None = None) -> Any:
    """An app's counters (of items with one initial) moved by `b_<counter>`
    (RETURNING: it runs on every create)."""
    statement = _upsert_values(
        dialect,
        _TOTALS,
        {
            "app_id": bindparam("b_app_id", type_=_TOTALS.c.app_id.type),
            "catalog_item_initial": bindparam(
                "b_initial", type_=_TOTALS.c.catalog_item_initial.type
            ),
            "shard": bindparam("b_shard"),
            **{column: bindparam(f"b_{column}") for column in CLASS_COUNTS},
        },
        after,
    )
    new, old = statement.excluded, _TOTALS.c
    return statement.on_conflict_do_update(
        index_elements=["app_id", "catalog_item_initial", "shard"],
        set_={column: old[column] + new[column] for column in CLASS_COUNTS},
    ).returning(old.received_count)


def _url_upsert(dialect: str, after: Any | None = None) -> Any:
    """A new RECEIVED request counted for its itemUrl, `b_item_url` (RETURNING: a
    reusable statement); after a CTE, only when the request has one."""
    url = bindparam("b_item_url", type_=_URLS.c.item_url.type)
    statement = _upsert_values(
        dialect,
        _URLS,
        {
            "app_id": bindparam("b_app_id", type_=_URLS.c.app_id.type),
            "item_url": url,
            "item_url_folded": bindparam(
                "b_item_url_folded", type_=_URLS.c.item_url_folded.type
            ),
            "received_count": literal_column("1"),
        },
        after,
        when=url.is_not(None),
    )
    count = _URLS.c.received_count
    return statement.on_conflict_do_update(
        index_elements=["item_url", "app_id"], set_={"received_count": count + 1}
    ).returning(count)


def _reference_upsert(dialect: str, after: Any | None = None) -> Any:
    """A new request counted for its catalog reference (its first makes the row)."""
    key = _REFERENCES.c.catalog_reference_key
    statement = _upsert_values(
        dialect,
        _REFERENCES,
        {
            "catalog_reference_key": bindparam(
                "b_catalog_reference_key", type_=key.type
            ),
            "request_count": literal_column("1"),
        },
        after,
    )
    count = _REFERENCES.c.request_count
    return statement.on_conflict_do_update(
        index_elements=["catalog_reference_key"], set_={"request_count": count + 1}
    ).returning(count)


def _created_counts_postgresql() -> Any:
    """A create's five upserts (item, itemUrl, reference, app totals, day stats) as one
    statement: one round trip instead of four. Each selects its row from the one before,
    so the rows are written, and locked, in that order, the order every other change
    takes them in (PostgreSQL leaves the order of independent data-modifying CTEs open)."""
    item = CREATED_UPSERT["postgresql"].cte("counted_item")
    # The itemUrl's row, when the request has one: none may come back, so the next
    # selects from the item's row joined to it (which still makes it come first).
    url = _url_upsert("postgresql", after=item).cte("counted_url")
    after_url = item.outerjoin(url, true())
    reference = _reference_upsert("postgresql", after=after_url).cte(
        "counted_reference"
    )
    totals = _totals_upsert("postgresql", after=reference).cte("counted_totals")
    return _stats_upsert("postgresql", after=totals)


_THIS_ITEM = and_(
    _DEMAND.c.app_id == bindparam("b_app_id"),
    _DEMAND.c.catalog_item_id == bindparam("b_catalog_item_id"),
)
COUNTS_UPDATE = (
    update(_DEMAND)
    .where(_THIS_ITEM)
    .values(
        {
            column: _DEMAND.c[column] + bindparam(f"b_{column}")
            for column in (*CLASS_COUNTS, "waiting_count")
        }
    )
)
_ALL_COUNTS: ColumnElement[int] = functools.reduce(
    operator.add, (_DEMAND.c[column] for column in STATUS_COUNTS.values())
)
FORGET_EMPTY = delete(_DEMAND).where(_THIS_ITEM, _ALL_COUNTS == 0)


def _first_waiting(status: str, latest: bool) -> Any:
    """Creation date of the item's first (or last) request stored in `status`: one step
    of the (app_id, catalog_item_id, status, created_date) index."""
    created = _REQUESTS.c.created_date
    return (
        select(created)
        .where(
            _REQUESTS.c.app_id == _DEMAND.c.app_id,
            _REQUESTS.c.catalog_item_id == _DEMAND.c.catalog_item_id,
            _REQUESTS.c.status == status,
        )
        .order_by(created.desc() if latest else created.asc())
        .limit(1)
        .scalar_subquery()
    )


def _dates_update(dialect: str) -> Any:
    """The item's oldest and newest waiting dates found again from its requests (waiting
    requests are stored RECEIVED or FAILED: PROCESSING is read from the queue)."""
    return (
        update(_DEMAND)
        .where(_THIS_ITEM)
        .values(
            oldest_waiting_date=_earlier(
                dialect, _first_waiting(RECEIVED, False), _first_waiting(FAILED, False)
            ),
            newest_waiting_date=_earlier(
                dialect,
                _first_waiting(RECEIVED, True),
                _first_waiting(FAILED, True),
                later=True,
            ),
        )
    )


_DIALECTS = ("sqlite", "postgresql")
CREATED_UPSERT = {name: _created_upsert(name) for name in _DIALECTS}
STATS_UPSERT = {name: _stats_upsert(name) for name in _DIALECTS}
TOTALS_UPSERT = {name: _totals_upsert(name) for name in _DIALECTS}
DATES_UPDATE = {name: _dates_update(name) for name in _DIALECTS}
REFERENCE_UPSERT = {name: _reference_upsert(name) for name in _DIALECTS}
URL_UPSERT = {name: _url_upsert(name) for name in _DIALECTS}
CREATED_COUNTS_POSTGRESQL = _created_counts_postgresql()
_THIS_REFERENCE = _REFERENCES.c.catalog_reference_key == bindparam(
    "b_catalog_reference_key"
)
# A deletion's references, each less its requests deleted; those left with none go.
REFERENCES_UPDATE = (
    update(_REFERENCES)
    .where(_THIS_REFERENCE)
    .values(request_count=_REFERENCES.c.request_count - bindparam("b_removed"))
)
FORGET_EMPTY_REFERENCES = delete(_REFERENCES).where(
    _THIS_REFERENCE, _REFERENCES.c.request_count <= 0
)
COUNTED_COLUMNS = (
    _REQUESTS.c.id,
    _REQUESTS.c.app_id,
    _REQUESTS.c.catalog_item_id,
    COLUMNS["status"],
    _REQUESTS.c.auto_notified,
    _REQUESTS.c.created_date,
    _REQUESTS.c.catalog_reference_key,
    _REQUESTS.c.item_url,
)
COUNTED_BY_ID = (
    select(*COUNTED_COLUMNS)
    .select_from(REQUEST_VIEW)
    .where(_REQUESTS.c.id == bindparam("id", type_=_REQUESTS.c.id.type))
)
LOCK_BY_ID = (
    select(_REQUESTS.c.id)
    .where(_REQUESTS.c.id == bindparam("id", type_=_REQUESTS.c.id.type))
    .with_for_update()
)
