"""The demand a merchant sees, kept as counters in the transaction of every change.

`catalog_item_demand`: per catalog item (appId and catalogItemId, every options together)
its requests per status as callers see them, how many wait, and the creation dates of the
oldest and newest waiting one. `daily_request_stats`: per UTC day and app, the requests
created, notified (emailed by the dispatcher, or marked sent by hand) and failed (the
dispatcher gave up) that day. app/services/demand_query.py reads them.

A request *waits* while it is open: RECEIVED, PROCESSING or FAILED. Its shopper has not been
emailed, a new create for it returns it, and a FAILED one is retried by the next report,
so it is demand as much as a RECEIVED one.

Each service that changes requests calls in here inside its own transaction: before the
change, `lock_requests`/`lock_delivered` lock the request rows (PostgreSQL) and read their
status as callers see it; after it, `record_*` writes the counters. Counters are written
last, in key order, after the requests they count are locked, so two transactions never
wait for each other's counters in opposite orders.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    and_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from app.models import (
    CatalogItemDemand,
    DailyRequestStats,
    Notification,
    NotificationRequest,
    RequestStatus,
)
from app.services.request_view import COLUMNS, REQUEST_VIEW, RequestRecord
from app.storage import Transaction

_DEMAND = CatalogItemDemand.__table__
_STATS = DailyRequestStats.__table__
_REQUESTS = NotificationRequest.__table__
_QUEUE = Notification.__table__
RECEIVED = RequestStatus.RECEIVED.value
PROCESSING = RequestStatus.PROCESSING.value
SENT = RequestStatus.NOTIFICATION_SENT.value
FAILED = RequestStatus.FAILED.value
WAITING = frozenset({RECEIVED, PROCESSING, FAILED})
# Each status's counter column.
STATUS_COUNTS = {
    RECEIVED: "received_count",
    PROCESSING: "processing_count",
    SENT: "notification_sent_count",
    FAILED: "failed_count",
}
# Rows a day's counts are spread over: on PostgreSQL concurrent creates for one app would
# otherwise queue for one row's lock until they commit. SQLite has one writer anyway.
STATS_SHARDS = {"postgresql": 8, "sqlite": 1}


class Counted(NamedTuple):
    """A request as the counters know it: its item, status (as seen) and creation."""

    id: uuid.UUID | str
    app_id: str
    catalog_item_id: str
    status: str
    created_date: datetime


@dataclass
class _ItemChange:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_COUNTS, 0))
    # A waiting request stopped waiting: the oldest/newest dates are found again.
    left_waiting: bool = False

    def move(self, status: str | None, to: str | None, count: int = 1) -> None:
        if status is not None:
            self.counts[status] -= count
        if to is not None:
            self.counts[to] += count
        if status in WAITING and to not in WAITING:
            self.left_waiting = True


Items = dict[tuple[str, str], _ItemChange]


def day_of(moment: datetime) -> datetime:
    """The first instant of the UTC day of `moment` (how the stats table names a day)."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _shard(tx: Transaction, request_id: uuid.UUID | str) -> int:
    return uuid.UUID(str(request_id)).int % STATS_SHARDS.get(tx.dialect, 1)


# ------------------------------------------------------------------------ statements


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


def _stats_upsert(dialect: str) -> Any:
    statement = _insert(dialect)(_STATS).values(
        day=bindparam("b_day", type_=_STATS.c.day.type),
        app_id=bindparam("b_app_id", type_=_STATS.c.app_id.type),
        shard=bindparam("b_shard"),
        created_count=bindparam("b_created"),
        notified_count=bindparam("b_notified"),
        failed_count=bindparam("b_failed"),
    )
    new, old = statement.excluded, _STATS.c
    return statement.on_conflict_do_update(
        index_elements=["day", "app_id", "shard"],
        set_={
            name: old[name] + new[name]
            for name in ("created_count", "notified_count", "failed_count")
        },
    ).returning(old.created_count)


_THIS_ITEM = and_(
    _DEMAND.c.app_id == bindparam("b_app_id"),
    _DEMAND.c.catalog_item_id == bindparam("b_catalog_item_id"),
)
_COUNTS_UPDATE = (
    update(_DEMAND)
    .where(_THIS_ITEM)
    .values(
        {
            column: _DEMAND.c[column] + bindparam(f"b_{column}")
            for column in (*STATUS_COUNTS.values(), "waiting_count")
        }
    )
)
_FORGET_EMPTY = delete(_DEMAND).where(
    _THIS_ITEM, sum(_DEMAND.c[column] for column in STATUS_COUNTS.values()) == 0
)


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
_CREATED_UPSERT = {name: _created_upsert(name) for name in _DIALECTS}
_STATS_UPSERT = {name: _stats_upsert(name) for name in _DIALECTS}
_DATES_UPDATE = {name: _dates_update(name) for name in _DIALECTS}
_COUNTED_COLUMNS = (
    _REQUESTS.c.id,
    _REQUESTS.c.app_id,
    _REQUESTS.c.catalog_item_id,
    COLUMNS["status"],
    _REQUESTS.c.created_date,
)
_COUNTED_BY_ID = (
    select(*_COUNTED_COLUMNS)
    .select_from(REQUEST_VIEW)
    .where(_REQUESTS.c.id == bindparam("id", type_=_REQUESTS.c.id.type))
)
_LOCK_BY_ID = (
    select(_REQUESTS.c.id)
    .where(_REQUESTS.c.id == bindparam("id", type_=_REQUESTS.c.id.type))
    .with_for_update()
)


# ------------------------------------------------------------------------ writes


def request_created(tx: Transaction, request: RequestRecord) -> None:
    """Count a request just stored (RECEIVED): two upserts, each one row."""
    tx.rows(
        _CREATED_UPSERT[tx.dialect],
        {
            "b_app_id": request.app_id,
            "b_catalog_item_id": request.catalog_item_id,
            "b_created_date": request.created_date,
        },
    )
    _count_stats(
        tx,
        {(day_of(request.created_date), request.app_id): (1, 0, 0)},
        _shard(tx, request.id),
    )


def lock_request(tx: Transaction, request_id: uuid.UUID) -> list[Counted]:
    """Before a mark or a delete: lock the request, then read it as callers see it.

    Read after the lock, in a statement of its own: on PostgreSQL a statement sees what
    committed before it began, and a report that queued the request meanwhile has now.
    """
    if tx.dialect == "postgresql":
        tx.rows(_LOCK_BY_ID, {"id": request_id})
    return tx.rows(_COUNTED_BY_ID, {"id": request_id}, into=Counted._make)


def lock_delivered(
    tx: Transaction, *, owner: str, notification_ids: Sequence[int]
) -> list[Counted]:
    """Before the dispatcher records outcomes: the requests it will finish, locked.

    Exactly those `queue._finish` updates: leased by `owner`, not sent (so PROCESSING).
    Requests are locked before notifications, the order of app/notify/queue.py.
    """
    mine = and_(_QUEUE.c.id.in_(notification_ids), _QUEUE.c.lease_owner == owner)
    if tx.dialect == "postgresql":
        tx.rows(
            select(_REQUESTS.c.id)
            .where(_REQUESTS.c.id.in_(select(_QUEUE.c.request_id).where(mine)))
            .order_by(_REQUESTS.c.id)
            .with_for_update()
        )
        # A claim taking over an expired lease skips locked rows, so none changes hands.
        tx.rows(select(_QUEUE.c.id).where(mine).order_by(_QUEUE.c.id).with_for_update())
    rows = tx.rows(
        select(
            _REQUESTS.c.id,
            _REQUESTS.c.app_id,
            _REQUESTS.c.catalog_item_id,
            _REQUESTS.c.created_date,
        )
        .select_from(_REQUESTS.join(_QUEUE, _QUEUE.c.request_id == _REQUESTS.c.id))
        .where(mine, _REQUESTS.c.status != SENT)
    )
    return [
        Counted(row.id, row.app_id, row.catalog_item_id, PROCESSING, row.created_date)
        for row in rows
    ]


def record_change(
    tx: Transaction,
    before: Iterable[Counted],
    to: str | None,
    at: datetime | None = None,
) -> None:
    """Count requests read by `lock_*` that are now in status `to` (None: deleted);
    a request sent or failed counts on the day of `at`."""
    items: Items = defaultdict(_ItemChange)
    stats: dict[tuple[datetime, str], tuple[int, int, int]] = {}
    shard_of = None
    for request in before:
        if request.status == to:
            continue  # marking a sent request sent changes nothing
        items[(request.app_id, request.catalog_item_id)].move(request.status, to)
        if to in (SENT, FAILED) and at is not None:
            key = (day_of(at), request.app_id)
            created, notified, failed = stats.get(key, (0, 0, 0))
            stats[key] = (created, notified + (to == SENT), failed + (to == FAILED))
        shard_of = shard_of or request.id
    if not items:
        return
    _count_items(tx, items, forget_empty=to is None)
    if stats and shard_of is not None:
        _count_stats(tx, stats, _shard(tx, shard_of))


def record_queued(
    tx: Transaction, moved: dict[tuple[str, str], dict[str, int]]
) -> None:
    """Count requests a report queued: per item, how many it took from each status."""
    items: Items = defaultdict(_ItemChange)
    for item, counts in moved.items():
        for status, count in counts.items():
            if count:
                items[item].move(status, PROCESSING, count)
    if items:
        _count_items(tx, items, forget_empty=False)


def _count_items(tx: Transaction, items: Items, *, forget_empty: bool) -> None:
    ordered = sorted(items)
    keys = [{"b_app_id": app, "b_catalog_item_id": item} for app, item in ordered]
    counts = []
    for key, item in zip(keys, ordered):
        change = items[item].counts
        values = {f"b_{STATUS_COUNTS[s]}": n for s, n in change.items()}
        values["b_waiting_count"] = sum(n for s, n in change.items() if s in WAITING)
        counts.append({**key, **values})
    tx.execute(_COUNTS_UPDATE, counts)
    left = [key for key, item in zip(keys, ordered) if items[item].left_waiting]
    if left:
        tx.execute(_DATES_UPDATE[tx.dialect], left)
    if forget_empty:
        tx.execute(_FORGET_EMPTY, keys)


def _count_stats(
    tx: Transaction,
    stats: dict[tuple[datetime, str], tuple[int, int, int]],
    shard: int,
) -> None:
    for (day, app_id), (created, notified, failed) in sorted(stats.items()):
        tx.rows(
            _STATS_UPSERT[tx.dialect],
            {
                "b_day": day,
                "b_app_id": app_id,
                "b_shard": shard,
                "b_created": created,
                "b_notified": notified,
                "b_failed": failed,
            },
        )


# ------------------------------------------------------------------------ rebuild


def rebuild_item_demand(tx: Transaction) -> int:
    """Count every item's requests again from scratch (for data written around the
    service, e.g. the bench's seed); returns the items counted."""
    status = COLUMNS["status"]
    waiting_date = case(
        (_REQUESTS.c.status.in_([RECEIVED, FAILED]), _REQUESTS.c.created_date)
    )
    counts = {
        column: func.sum(case((status == name, 1), else_=0))
        for name, column in STATUS_COUNTS.items()
    }
    counted = (
        select(
            _REQUESTS.c.app_id,
            _REQUESTS.c.catalog_item_id,
            *(value.label(column) for column, value in counts.items()),
            (counts["received_count"] + counts["processing_count"] + counts["failed_count"]).label("waiting_count"),
            func.min(waiting_date).label("oldest_waiting_date"),
            func.max(waiting_date).label("newest_waiting_date"),
        )
        .select_from(REQUEST_VIEW)
        .group_by(_REQUESTS.c.app_id, _REQUESTS.c.catalog_item_id)
        .having(or_(*(value > 0 for value in counts.values())))
    )
    tx.execute(delete(_DEMAND))
    return tx.execute(
        _DEMAND.insert().from_select(
            [column.name for column in counted.selected_columns], counted
        )
    )
