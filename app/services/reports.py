"""Reporting items back in stock: queue one email per waiting request (now PROCESSING).

With an available quantity, only `available_quantity x notifications_per_unit` of them,
oldest first; the others stay waiting for a later report, which goes on with the next
oldest.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    exists,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite

from app.events import outbox as events
from app.models import (
    REPORTABLE_STATUSES,
    Clock,
    Notification,
    NotificationRequest,
    Report,
    table_of,
    utc_now,
)
from app.services import demand
from app.services.demand_statements import RequestClass
from app.services.errors import BothSelectorsGiven
from app.services.rules import (
    CatalogReference,
    ItemDetails,
    Violations,
    catalog_reference_key,
    check_catalog_reference,
    check_id,
    check_item_details,
    check_template_parameters,
)
from app.storage import Store, Transaction

MAX_REQUEST_IDS = 1000
MAX_AVAILABLE_QUANTITY = 1_000_000
MAX_NOTIFICATIONS_PER_UNIT = 1_000
# The most notifications one report with a quantity may ask for.
MAX_REPORTED_NOTIFICATIONS = 1_000_000
_REQUESTS = table_of(NotificationRequest)
_QUEUE = table_of(Notification)
_REPORTS = table_of(Report)
# PostgreSQL advisory locks (two-int form: a key space of its own) that make reports
# with a quantity take turns per reference, or all together for those naming ids.
_FAIR_REPORT_LOCK = 0x62_69_73_51
_BY_IDS_LOCK = 0


@dataclass(frozen=True)
class ReportOutcome:
    # Requests this report moved to PROCESSING.
    queued_count: int
    # Selected requests still waiting to be reported (RECEIVED or FAILED, none queued).
    remaining_count: int


@dataclass(frozen=True)
class _Selection:
    """The requests a report is about: their WHERE, and the reference's item or ids."""

    where: ColumnElement[bool]
    reference_key: str | None = None
    item: tuple[str, str] | None = None
    ids: frozenset[uuid.UUID] = frozenset()


def _selection(
    catalog_reference: CatalogReference | None,
    request_ids: Sequence[str] | None,
    violations: Violations,
) -> _Selection | None:
    """The requests the report is about."""
    if catalog_reference is not None:
        reference = check_catalog_reference(
            catalog_reference, "options.catalog_reference", violations
        )
        key = catalog_reference_key(reference)
        return _Selection(
            _REQUESTS.c.catalog_reference_key == key,
            reference_key=key,
            item=(reference.app_id, reference.catalog_item_id),
        )
    if request_ids is None:
        violations.add("options", "give options.catalogReference or options.requestIds")
        return None
    if not 1 <= len(request_ids) <= MAX_REQUEST_IDS:
        violations.add("options.request_ids", f"must hold 1 to {MAX_REQUEST_IDS} ids")
        return None
    checked = {
        check_id(value, f"options.request_ids[{index}]", violations)
        for index, value in enumerate(request_ids)
    }
    ids = frozenset(id for id in checked if id is not None)
    return _Selection(_REQUESTS.c.id.in_(ids), ids=ids)


def _check_quantity(
    available_quantity: int | None,
    notifications_per_unit: int | None,
    violations: Violations,
) -> int | None:
    """How many requests the report may queue; None: every waiting one."""
    per_unit = 1 if notifications_per_unit is None else notifications_per_unit
    per_unit_field = "options.notifications_per_unit"
    if not 1 <= per_unit <= MAX_NOTIFICATIONS_PER_UNIT:
        violations.add(per_unit_field, f"must be 1 to {MAX_NOTIFICATIONS_PER_UNIT}")
        return None
    if available_quantity is None:
        return None
    if not 0 <= available_quantity <= MAX_AVAILABLE_QUANTITY:
        violations.add(
            "options.available_quantity", f"must be 0 to {MAX_AVAILABLE_QUANTITY}"
        )
        return None
    if available_quantity * per_unit > MAX_REPORTED_NOTIFICATIONS:
        violations.add(
            per_unit_field,
            "times the available quantity must be at most "
            f"{MAX_REPORTED_NOTIFICATIONS} notifications",
        )
        return None
    return available_quantity * per_unit


async def report_items_back_in_stock(
    store: Store,
    *,
    item: ItemDetails,
    catalog_reference: CatalogReference | None = None,
    request_ids: Sequence[str] | None = None,
    template_parameters: Any = None,
    available_quantity: int | None = None,
    notifications_per_unit: int | None = None,
    clock: Clock = utc_now,
) -> ReportOutcome:
    """Queue one email per waiting (RECEIVED or FAILED, and confirmed) request named, or, given an
    available quantity, per one of the `available_quantity x notifications_per_unit`
    oldest of them (by creation, then id). Repeating it queues nothing twice.

    One transaction whatever the report's size: the report, its notifications (one
    INSERT ... SELECT), and the counters of the demand they change.
    """
    if catalog_reference is not None and request_ids is not None:
        raise BothSelectorsGiven(
            "give either options.catalogReference or options.requestIds, not both"
        )
    violations = Violations()
    check_item_details(item, "item_details", violations)
    selection = _selection(catalog_reference, request_ids, violations)
    parameters = check_template_parameters(
        template_parameters, "options.extra_automation_template_parameters", violations
    )
    limit = _check_quantity(available_quantity, notifications_per_unit, violations)
    violations.raise_if_any()
    assert selection is not None
    report = {
        "item_name": item.name,
        "item_price": item.price,
        "item_image": item.image,
        "template_parameters": parameters,
        "created_date": clock(),
    }
    return await store.write(lambda tx: _report(tx, report, selection, limit))


def _report(
    tx: Transaction, report: dict[str, Any], selection: _Selection, limit: int | None
) -> ReportOutcome:
    if limit is not None and tx.dialect == "postgresql":
        _take_turns(tx, selection)
    report_id = tx.scalar(insert(Report).values(**report).returning(_REPORTS.c.id))
    now = report["created_date"]
    queued = tx.execute(
        _queue_waiting(tx.dialect, selection.where, report_id, now, limit)
    )
    if queued:
        demand.record_queued(tx, _taken(tx, selection, report_id), report_id)
        events.emit_reported(tx, selection.where, report_id, now)
    remaining = 0 if limit is None else tx.scalar(_still_waiting(selection.where))
    return ReportOutcome(queued_count=queued, remaining_count=int(remaining or 0))


def _take_turns(tx: Transaction, selection: _Selection) -> None:
    """PostgreSQL: wait for other reports with a quantity for the same requests.

    Without it two reports of 2 for 5 waiting requests would both pick the same oldest
    two, and the second, finding them queued by the first (ON CONFLICT), would queue
    none. Taken first, before any row lock: a report holding it waits only for rows.
    """
    key = _BY_IDS_LOCK
    if selection.reference_key is not None:
        key = int(selection.reference_key[:8], 16) - 2**31
    tx.scalar(select(func.pg_advisory_xact_lock(_FAIR_REPORT_LOCK, key)))


def _taken(
    tx: Transaction, selection: _Selection, report_id: int
) -> dict[tuple[str, str, str | None], dict[RequestClass, int]]:
    """Per item and itemUrl, how many requests this report queued from each class
    (stored status and autoNotified).

    The requests it queued are share-locked (see _queue_waiting), so they are still as
    it queued them. Read among the selected requests, which the report has just read.
    """
    rows = tx.rows(
        select(
            _REQUESTS.c.app_id,
            _REQUESTS.c.catalog_item_id,
            _REQUESTS.c.item_url,
            _REQUESTS.c.status,
            _REQUESTS.c.auto_notified,
            func.count(),
        )
        .select_from(_REQUESTS.join(_QUEUE, _QUEUE.c.request_id == _REQUESTS.c.id))
        .where(selection.where, _QUEUE.c.report_id == report_id)
        .group_by(
            _REQUESTS.c.app_id,
            _REQUESTS.c.catalog_item_id,
            _REQUESTS.c.item_url,
            _REQUESTS.c.status,
            _REQUESTS.c.auto_notified,
        )
    )
    taken: dict[tuple[str, str, str | None], dict[RequestClass, int]] = {}
    for app_id, catalog_item_id, item_url, status, auto_notified, count in rows:
        item = taken.setdefault((app_id, catalog_item_id, item_url), {})
        item[RequestClass(status, auto_notified)] = count
    return taken


def _not_queued() -> ColumnElement[bool]:
    return ~exists().where(_QUEUE.c.request_id == _REQUESTS.c.id)


def _still_waiting(selection: ColumnElement[bool]) -> Any:
    """How many selected requests a later report could queue (stored RECEIVED or FAILED
    is an open request; none queued; the address confirmed)."""
    return (
        select(func.count())
        .select_from(NotificationRequest)
        .where(
            selection,
            _REQUESTS.c.open_request == true(),
            _REQUESTS.c.confirmed.is_(True),
            _not_queued(),
        )
    )


_QUEUE_COLUMNS = [
    "request_id",
    "request_created_date",
    "report_id",
    "round",
    "attempts",
    "available_at",
    "created_date",
]


def _queue_waiting(
    dialect: str,
    selection: ColumnElement[bool],
    report_id: int,
    now: datetime,
    limit: int | None,
) -> Any:
    """One INSERT queueing a notification for each selected waiting request (or for the
    `limit` oldest of them).

    Waiting: RECEIVED or FAILED as stored, and nothing queued yet (which makes it
    PROCESSING; see app.services.request_view). The unique index on `request_id` skips
    those already queued, by this report's predecessors or, on PostgreSQL, by a
    concurrent one (ON CONFLICT waits for it to commit). An index probe per row, where a
    NOT EXISTS may be planned as a scan of the queue per row when its statistics say it
    is empty. In id order, the index grows at its end rather than at random places. The
    request rows are only read.

    With a `limit` the queued ones must be left out before counting to it, by NOT
    EXISTS: the oldest waiting requests come first in the (catalog_reference_key,
    open_request, created_date, id) index, and each is probed in the queue's index until
    `limit` are found. Concurrent reports with a limit take turns (see _take_turns).
    """
    waiting = select(
        _REQUESTS.c.id,
        _REQUESTS.c.created_date,
        literal(report_id),
        _REQUESTS.c.delivery_round + 1,
        literal(0),
        literal(now, _QUEUE.c.available_at.type),
        literal(now, _QUEUE.c.created_date.type),
    ).where(
        selection,
        _REQUESTS.c.status.in_([s.value for s in REPORTABLE_STATUSES]),
        # A request whose address is not confirmed yet is never notified.
        _REQUESTS.c.confirmed.is_(True),
    )
    if limit is None:
        waiting = waiting.order_by(_REQUESTS.c.id)
    else:
        waiting = (
            waiting.where(_REQUESTS.c.open_request == true(), _not_queued())
            .order_by(_REQUESTS.c.created_date, _REQUESTS.c.id)
            .limit(limit)
        )
    # PostgreSQL: a shared lock on each request read, so that a concurrent
    # markAsNotificationSent (an UPDATE) either waits for this report, then deletes the
    # notification it queued, or makes it wait and skip the request, now sent. Without
    # it the report could queue a notification just after the mark deleted none. SQLite
    # has one writer at a time. (With a limit, a request skipped this way is not made
    # up for: the report queues fewer, and `remaining_count` says what still waits.)
    waiting = waiting.with_for_update(read=True)
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert_into(Notification)
        .from_select(_QUEUE_COLUMNS, waiting)
        .on_conflict_do_nothing(index_elements=["request_id"])
    )
