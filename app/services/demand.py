"""The demand a merchant sees, kept as counters in the transaction of every change.

`catalog_item_demand`: per catalog item (appId and catalogItemId, all options
together) its requests per status as callers see them (and of those, how many have
autoNotified true or false), how many wait, and the creation dates of the oldest and
newest waiting one. `item_url_demand`: the same counts per itemUrl and app
(url_demand.py). `request_totals`: the same counts added up per app.
`reference_request_counts`: per catalog reference, its requests (any status).
`daily_request_stats`: per UTC day and app, the requests created, notified (emailed by
the dispatcher, or marked sent by hand) and failed (the dispatcher gave up) that day.
app/services/demand_query.py and request_totals.py read them.

A request *waits* while it is open: RECEIVED, PROCESSING or FAILED. Its shopper has not
been emailed, a new create for it returns it, and a FAILED one is retried by the next
report, so it is demand as much as a RECEIVED one.

Each service that changes requests calls in here inside its own transaction: before the
change, `lock_request`/`lock_delivered` lock the request rows (PostgreSQL) and read
their status as callers see it; after it, `record_*` writes the counters. Counters are
written last, items then itemUrls then references then apps then days, each in key
order, after the
requests they count are locked, so two transactions never wait for each other's counters
in opposite orders.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    and_,
    select,
)

from app.models import (
    CatalogItemDemand,
    Notification,
    NotificationRequest,
    RequestStatus,
    RequestTotals,
    table_of,
)
from app.services import demand_statements as sql
from app.services import url_demand
from app.services.demand_statements import (
    AUTO_COUNTS,
    CLASS_COUNTS,
    STATUS_COUNTS,
    RequestClass,
)
from app.services.request_filters import fold_ascii
from app.services.request_view import REQUEST_VIEW, RequestRecord
from app.storage import Transaction

_DEMAND = table_of(CatalogItemDemand)
_TOTALS = table_of(RequestTotals)
_REQUESTS = table_of(NotificationRequest)
_QUEUE = table_of(Notification)
RECEIVED = RequestStatus.RECEIVED.value
PROCESSING = RequestStatus.PROCESSING.value
SENT = RequestStatus.NOTIFICATION_SENT.value
FAILED = RequestStatus.FAILED.value
WAITING = frozenset({RECEIVED, PROCESSING, FAILED})
# Where each outcome leaves a request (autoNotified: true when the service sent it).
SENT_BY_SERVICE = RequestClass(SENT, True)
MARKED_SENT = RequestClass(SENT, False)
DELIVERY_FAILED = RequestClass(FAILED, True)
# Rows a day's counts are spread over: on PostgreSQL concurrent creates for one app
# would otherwise queue for one row's lock until they commit. SQLite has one writer.
STATS_SHARDS = {"postgresql": 8, "sqlite": 1}


class Counted(NamedTuple):
    """A request as the counters know it: its item, status (as seen), autoNotified,
    creation, reference and itemUrl."""

    id: uuid.UUID | str
    app_id: str
    catalog_item_id: str
    status: str
    auto_notified: bool | None
    created_date: datetime
    catalog_reference_key: str
    item_url: str | None

    @property
    def request_class(self) -> RequestClass:
        return RequestClass(self.status, self.auto_notified)


@dataclass
class _CountsChange:
    """What a change adds to each counter of one item (or app)."""

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(CLASS_COUNTS, 0)
    )
    # A waiting request stopped waiting: the oldest/newest dates are found again.
    left_waiting: bool = False

    def move(
        self, before: RequestClass | None, to: RequestClass | None, count: int = 1
    ) -> None:
        for moved, by in ((before, -count), (to, count)):
            if moved is None:
                continue
            status, auto_notified = moved
            self.counts[STATUS_COUNTS[status]] += by
            if auto_notified is not None:
                self.counts[AUTO_COUNTS[(status, auto_notified)]] += by
        if before is not None and before.status in WAITING:
            self.left_waiting |= to is None or to.status not in WAITING

    def add(self, other: _CountsChange) -> None:
        for column, count in other.counts.items():
            self.counts[column] += count


# Changes per (appId, catalogItemId), and per (appId, itemUrl).
Items = dict[tuple[str, str], _CountsChange]


def day_of(moment: datetime) -> datetime:
    """The first instant of the UTC day of `moment`: how the stats name a day."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _shard(tx: Transaction, request_id: uuid.UUID | str) -> int:
    return uuid.UUID(str(request_id)).int % STATS_SHARDS.get(tx.dialect, 1)


# ------------------------------------------------------------------------ writes


_ONE_RECEIVED = {f"b_{column}": 0 for column in CLASS_COUNTS} | {"b_received_count": 1}


def request_created(tx: Transaction, request: RequestRecord) -> None:
    """Count a request just stored (RECEIVED, autoNotified null): five one-row upserts
    (four without an itemUrl; one statement on PostgreSQL)."""
    reference = {"b_catalog_reference_key": request.catalog_reference_key}
    item = {
        "b_app_id": request.app_id,
        "b_catalog_item_id": request.catalog_item_id,
        "b_catalog_item_id_folded": fold_ascii(request.catalog_item_id),
        "b_created_date": request.created_date,
    }
    shard = _shard(tx, request.id)
    totals = {
        "b_app_id": request.app_id,
        "b_initial": request.catalog_item_id[:1],
        "b_shard": shard,
        **_ONE_RECEIVED,
    }
    url = {
        "b_app_id": request.app_id,
        "b_item_url": request.item_url,
        "b_item_url_folded": fold_ascii(request.item_url or ""),
    }
    day = (day_of(request.created_date), request.app_id)
    if tx.dialect == "postgresql":
        stats = _stats_values(day, (1, 0, 0), shard)
        tx.rows(
            sql.CREATED_COUNTS_POSTGRESQL,
            {**item, **url, **reference, **totals, **stats},
        )
        return
    tx.rows(sql.CREATED_UPSERT[tx.dialect], item)
    if request.item_url is not None:
        tx.rows(sql.URL_UPSERT[tx.dialect], url)
    tx.rows(sql.REFERENCE_UPSERT[tx.dialect], reference)
    tx.rows(sql.TOTALS_UPSERT[tx.dialect], totals)
    _count_stats(tx, {day: (1, 0, 0)}, shard)


def lock_request(tx: Transaction, request_id: uuid.UUID) -> list[Counted]:
    """Before a mark or a delete: lock the request, then read it as callers see it.

    Read after the lock, in a statement of its own: on PostgreSQL a statement sees what
    committed before it began, and a report that queued the request meanwhile has now.
    """
    if tx.dialect == "postgresql":
        tx.rows(sql.LOCK_BY_ID, {"id": request_id})
    return tx.rows(sql.COUNTED_BY_ID, {"id": request_id}, into=Counted._make)


def lock_selected(tx: Transaction, selection: ColumnElement[bool]) -> list[Counted]:
    """Before removing the requests `selection` names (erase, unsubscribe, purge): lock
    them, then read them as callers see them (as `lock_request`, for many)."""
    if tx.dialect == "postgresql":
        tx.rows(
            select(_REQUESTS.c.id)
            .where(selection)
            .order_by(_REQUESTS.c.id)
            .with_for_update()
        )
    return tx.rows(
        select(*sql.COUNTED_COLUMNS).select_from(REQUEST_VIEW).where(selection),
        into=Counted._make,
    )


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
            _REQUESTS.c.auto_notified,
            _REQUESTS.c.created_date,
            _REQUESTS.c.catalog_reference_key,
            _REQUESTS.c.item_url,
        )
        .select_from(_REQUESTS.join(_QUEUE, _QUEUE.c.request_id == _REQUESTS.c.id))
        .where(mine, _REQUESTS.c.status != SENT)
    )
    return [
        Counted(
            row.id,
            row.app_id,
            row.catalog_item_id,
            PROCESSING,
            row.auto_notified,
            row.created_date,
            row.catalog_reference_key,
            row.item_url,
        )
        for row in rows
    ]


def record_change(
    tx: Transaction,
    before: Iterable[Counted],
    to: RequestClass | None,
    at: datetime | None = None,
) -> None:
    """Count requests read by `lock_*` that are now of class `to` (None: deleted);
    a request sent or failed counts on the day of `at`."""
    items: Items = defaultdict(_CountsChange)
    urls: Items = defaultdict(_CountsChange)
    removed: Counter[str] = Counter()  # deleted requests per reference
    stats: dict[tuple[datetime, str], tuple[int, int, int]] = {}
    shard_of = None
    status = None if to is None else to.status
    for request in before:
        if request.status == status:
            continue  # marking a sent request sent changes nothing
        items[(request.app_id, request.catalog_item_id)].move(request.request_class, to)
        if request.item_url is not None:
            urls[(request.app_id, request.item_url)].move(request.request_class, to)
        if to is None:
            removed[request.catalog_reference_key] += 1
        if status in (SENT, FAILED) and at is not None:
            key = (day_of(at), request.app_id)
            created, notified, failed = stats.get(key, (0, 0, 0))
            stats[key] = (
                created,
                notified + (status == SENT),
                failed + (status == FAILED),
            )
        shard_of = shard_of or request.id
    if not items or shard_of is None:
        return
    shard = _shard(tx, shard_of)
    _count_items(tx, items, shard, urls, removed=removed)
    if stats:
        _count_stats(tx, stats, shard)


def record_queued(
    tx: Transaction,
    moved: dict[tuple[str, str, str | None], dict[RequestClass, int]],
    report_id: int,
) -> None:
    """Count requests a report queued: per item and itemUrl (appId, catalogItemId,
    itemUrl), how many it took from each class (a queued request keeps its
    autoNotified)."""
    items: Items = defaultdict(_CountsChange)
    urls: Items = defaultdict(_CountsChange)
    for (app_id, catalog_item_id, item_url), counts in moved.items():
        for taken, count in counts.items():
            if count:
                queued = RequestClass(PROCESSING, taken.auto_notified)
                items[(app_id, catalog_item_id)].move(taken, queued, count)
                if item_url is not None:
                    urls[(app_id, item_url)].move(taken, queued, count)
    if items:
        shard = report_id % STATS_SHARDS.get(tx.dialect, 1)
        _count_items(tx, items, shard, urls)


def _count_items(
    tx: Transaction,
    items: Items,
    shard: int,
    urls: Items,
    *,
    removed: Counter[str] | None = None,
) -> None:
    """Write the items' changes, then the itemUrls', then the references' of `removed`
    (deleted requests, whose items and itemUrls are forgotten if left with none), then
    the apps' by initial (on `shard`)."""
    ordered = sorted(items)
    keys = [{"b_app_id": app, "b_catalog_item_id": item} for app, item in ordered]
    counts = []
    apps: dict[tuple[str, str], _CountsChange] = defaultdict(_CountsChange)
    for key, item in zip(keys, ordered, strict=True):
        change = items[item].counts
        values = {f"b_{column}": n for column, n in change.items()}
        values["b_waiting_count"] = sum(change[STATUS_COUNTS[s]] for s in WAITING)
        counts.append({**key, **values})
        app_id, catalog_item_id = item
        apps[(app_id, catalog_item_id[:1])].add(items[item])
    tx.execute(sql.COUNTS_UPDATE, counts)
    left = [
        key for key, item in zip(keys, ordered, strict=True) if items[item].left_waiting
    ]
    if left:
        tx.execute(sql.DATES_UPDATE[tx.dialect], left)
    url_demand.count_urls(tx, urls, removed=bool(removed))
    if removed:
        tx.execute(sql.FORGET_EMPTY, keys)
        references = [
            {"b_catalog_reference_key": key, "b_removed": count}
            for key, count in sorted(removed.items())
        ]
        tx.execute(sql.REFERENCES_UPDATE, references)
        keys_only = [{"b_catalog_reference_key": key} for key in sorted(removed)]
        tx.execute(sql.FORGET_EMPTY_REFERENCES, keys_only)
    for (app_id, initial), app_change in sorted(apps.items()):
        values = {f"b_{column}": n for column, n in app_change.counts.items()}
        tx.rows(
            sql.TOTALS_UPSERT[tx.dialect],
            {"b_app_id": app_id, "b_initial": initial, "b_shard": shard, **values},
        )


def _count_stats(
    tx: Transaction,
    stats: dict[tuple[datetime, str], tuple[int, int, int]],
    shard: int,
) -> None:
    for day, counts in sorted(stats.items()):
        tx.rows(sql.STATS_UPSERT[tx.dialect], _stats_values(day, counts, shard))


def _stats_values(
    day: tuple[datetime, str], counts: tuple[int, int, int], shard: int
) -> dict[str, object]:
    (moment, app_id), (created, notified, failed) = day, counts
    names = ("b_day", "b_app_id", "b_shard", "b_created", "b_notified", "b_failed")
    return dict(
        zip(names, (moment, app_id, shard, created, notified, failed), strict=True)
    )
