"""The counters counted again from the requests, for data written around the service
(the bench's seed, the paging model's rows): what app/services/demand.py and
reference_counts.py keep change by change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, delete, func, literal, or_, select

from app.models import (
    CatalogItemDemand,
    ItemUrlDemand,
    NotificationRequest,
    ReferenceRequestCounts,
    RequestStatus,
    RequestTotals,
    table_of,
)
from app.services.demand_statements import AUTO_COUNTS, CLASS_COUNTS, STATUS_COUNTS
from app.services.request_view import COLUMNS, REQUEST_VIEW
from app.storage import Transaction

_DEMAND = table_of(CatalogItemDemand)
_TOTALS = table_of(RequestTotals)
_REQUESTS = table_of(NotificationRequest)
_REFERENCES = table_of(ReferenceRequestCounts)
_URLS = table_of(ItemUrlDemand)
RECEIVED = RequestStatus.RECEIVED.value
FAILED = RequestStatus.FAILED.value


def rebuild_item_demand(tx: Transaction) -> int:
    """Count every item's requests again from scratch, every app's by initial, every
    reference's and every itemUrl's; returns the items counted."""
    status = COLUMNS["status"]
    waiting_date = case(
        (_REQUESTS.c.status.in_([RECEIVED, FAILED]), _REQUESTS.c.created_date)
    )
    counts = {
        column: func.sum(case((status == name, 1), else_=0))
        for name, column in STATUS_COUNTS.items()
    }
    auto = _REQUESTS.c.auto_notified
    auto_counts = {
        column: func.sum(case((and_(status == name, auto == value), 1), else_=0))
        for (name, value), column in AUTO_COUNTS.items()
    }
    counted = (
        select(
            _REQUESTS.c.app_id,
            _REQUESTS.c.catalog_item_id,
            # lower() folds A-Z only, as fold_ascii (see request_filters).
            func.lower(_REQUESTS.c.catalog_item_id).label("catalog_item_id_folded"),
            *(value.label(column) for column, value in counts.items()),
            (
                counts["received_count"]
                + counts["processing_count"]
                + counts["failed_count"]
            ).label("waiting_count"),
            func.min(waiting_date).label("oldest_waiting_date"),
            func.max(waiting_date).label("newest_waiting_date"),
            *(value.label(column) for column, value in auto_counts.items()),
        )
        .select_from(REQUEST_VIEW)
        .group_by(_REQUESTS.c.app_id, _REQUESTS.c.catalog_item_id)
        .having(or_(*(value > 0 for value in counts.values())))
    )
    tx.execute(delete(_DEMAND))
    items = tx.execute(
        _DEMAND.insert().from_select(
            [column.name for column in counted.selected_columns], counted
        )
    )
    initial = func.substr(_DEMAND.c.catalog_item_id, 1, 1)
    per_app = select(
        _DEMAND.c.app_id,
        initial.label("catalog_item_initial"),
        literal(0).label("shard"),
        *(func.sum(_DEMAND.c[column]).label(column) for column in CLASS_COUNTS),
    ).group_by(_DEMAND.c.app_id, initial)
    tx.execute(delete(_TOTALS))
    tx.execute(
        _TOTALS.insert().from_select(
            [column.name for column in per_app.selected_columns], per_app
        )
    )
    _rebuild_reference_counts(tx)
    _rebuild_url_demand(tx, {**counts, **auto_counts})
    return items


def _rebuild_reference_counts(tx: Transaction) -> None:
    key = _REQUESTS.c.catalog_reference_key
    per_reference = select(key, func.count().label("request_count")).group_by(key)
    tx.execute(delete(_REFERENCES))
    tx.execute(
        _REFERENCES.insert().from_select(
            ["catalog_reference_key", "request_count"], per_reference
        )
    )


def _rebuild_url_demand(tx: Transaction, counts: dict[str, Any]) -> None:
    """Every (app, itemUrl)'s requests per class, as the items' (`counts`: each counter's
    sum over a group of the requests as callers see them)."""
    url = _REQUESTS.c.item_url
    per_url = (
        select(
            _REQUESTS.c.app_id,
            url,
            func.lower(url).label("item_url_folded"),
            *(value.label(column) for column, value in counts.items()),
        )
        .select_from(REQUEST_VIEW)
        .where(url.is_not(None))
        .group_by(_REQUESTS.c.app_id, url)
    )
    tx.execute(delete(_URLS))
    tx.execute(
        _URLS.insert().from_select(
            [column.name for column in per_url.selected_columns], per_url
        )
    )
