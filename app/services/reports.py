"""Reporting items back in stock: queue one email per waiting request (now PROCESSING)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from app.events import outbox as events
from app.models import (
    Clock,
    REPORTABLE_STATUSES,
    Notification,
    NotificationRequest,
    Report,
    utc_now,
)
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


def _selection(
    catalog_reference: CatalogReference | None,
    request_ids: Sequence[str] | None,
    violations: Violations,
) -> ColumnElement[bool] | None:
    """The WHERE clause naming the requests the report is about."""
    if catalog_reference is not None:
        reference = check_catalog_reference(
            catalog_reference, "options.catalogReference", violations
        )
        return NotificationRequest.catalog_reference_key == catalog_reference_key(
            reference
        )
    if request_ids is None:
        violations.add("options", "give options.catalogReference or options.requestIds")
        return None
    if not 1 <= len(request_ids) <= MAX_REQUEST_IDS:
        violations.add("options.requestIds", f"must hold 1 to {MAX_REQUEST_IDS} ids")
        return None
    ids: set[uuid.UUID | None] = {
        check_id(value, f"options.requestIds[{index}]", violations)
        for index, value in enumerate(request_ids)
    }
    return NotificationRequest.id.in_(ids - {None})


async def report_items_back_in_stock(
    store: Store,
    *,
    item: ItemDetails,
    catalog_reference: CatalogReference | None = None,
    request_ids: Sequence[str] | None = None,
    template_parameters: Any = None,
    clock: Clock = utc_now,
) -> int:
    """Queue one email per waiting (RECEIVED or FAILED) request named; return how many.

    Two statements in one transaction, whatever the report's size: the report, then its
    notifications. Repeating it queues nothing twice.
    """
    if catalog_reference is not None and request_ids is not None:
        raise BothSelectorsGiven(
            "give either options.catalogReference or options.requestIds, not both"
        )
    violations = Violations()
    check_item_details(item, "itemDetails", violations)
    selection = _selection(catalog_reference, request_ids, violations)
    parameters = check_template_parameters(
        template_parameters, "options.extraAutomationTemplateParameters", violations
    )
    violations.raise_if_any()
    assert selection is not None
    report = {
        "item_name": item.name,
        "item_price": item.price,
        "item_image": item.image,
        "template_parameters": parameters,
        "created_date": clock(),
    }
    return await store.write(lambda tx: _report(tx, report, selection))


def _report(tx: Transaction, report: dict[str, Any], selection: Any) -> int:
    report_id = tx.scalar(insert(Report).values(**report).returning(Report.id))
    now = report["created_date"]
    queued = tx.execute(_queue_waiting(tx.dialect, selection, report_id, now))
    if queued:
        events.emit_reported(tx, selection, report_id, now)
    return queued


_QUEUE_COLUMNS = [
    "request_id",
    "report_id",
    "round",
    "attempts",
    "available_at",
    "created_date",
]


def _queue_waiting(
    dialect: str, selection: ColumnElement[bool], report_id: int, now: datetime
) -> Any:
    """One INSERT queueing a notification for each selected waiting request.

    Waiting: RECEIVED or FAILED as stored, and nothing queued yet (which makes it
    PROCESSING; see app.services.request_view). The unique index on `request_id` skips
    those already queued, by this report's predecessors or, on PostgreSQL, by a
    concurrent one (ON CONFLICT waits for it to commit). An index probe per row, where a
    NOT EXISTS may be planned as a scan of the queue per row when its statistics say it
    is empty. In id order, the index grows at its end rather than at random places. The
    request rows are only read.
    """
    waiting = (
        select(
            NotificationRequest.id,
            literal(report_id),
            NotificationRequest.delivery_round + 1,
            literal(0),
            literal(now, Notification.available_at.type),
            literal(now, Notification.created_date.type),
        )
        .where(
            selection,
            NotificationRequest.status.in_([s.value for s in REPORTABLE_STATUSES]),
        )
        .order_by(NotificationRequest.id)
        # PostgreSQL: a shared lock on each request read, so that a concurrent
        # markAsNotificationSent (an UPDATE) either waits for this report, then deletes the
        # notification it queued, or makes it wait and skip the request, now sent. Without
        # it the report could queue a notification just after the mark deleted none. SQLite
        # has one writer at a time.
        .with_for_update(read=True)
    )
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert_into(Notification)
        .from_select(_QUEUE_COLUMNS, waiting)
        .on_conflict_do_nothing(index_elements=["request_id"])
    )
