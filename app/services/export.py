"""Every request a filter matches, streamed in batches for an export.

One SELECT read through a server-side cursor (`Store.stream`): a single snapshot of the
requests, and memory that stays flat however many match. The order is the API's default
(newest first, then id), which the (created_date, id) index serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select

from app.services.request_filters import RequestFilter, compile_filter
from app.services.request_sort import order_by, sort_keys
from app.services.request_view import (
    RequestRecord,
    as_record,
    counted_from,
    select_requests,
)
from app.services.rules import Violations
from app.storage import Store

EXPORT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class ExportQuery:
    """The checked filter of an export."""

    where: ColumnElement[bool]


def prepare_export(filter: RequestFilter | None) -> ExportQuery:
    """The checked query of an export (raises InvalidArgument for a bad filter)."""
    violations = Violations()
    where = compile_filter(filter, violations)
    violations.raise_if_any()
    return ExportQuery(where)


async def count_export(store: Store, query: ExportQuery) -> int:
    total = await store.scalar(
        select(func.count()).select_from(counted_from(query.where)).where(query.where)
    )
    return int(total or 0)


def stream_requests(
    store: Store, query: ExportQuery, *, batch_size: int = EXPORT_BATCH_SIZE
) -> AsyncIterator[list[RequestRecord]]:
    """The matching requests as callers see them, `batch_size` at a time."""
    order = order_by(sort_keys(None), store.dialect)
    statement = select_requests().where(query.where).order_by(*order)
    return store.stream(statement, batch_size=batch_size, into=as_record)
