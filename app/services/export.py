"""Every request a filter matches, streamed in batches for an export.

One SELECT read through a server-side cursor (`Store.stream`): a single snapshot of the
requests, and memory that stays flat however many match. The order is the API's default
(newest first, then id), which the (created_date, id) index serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from app.services.request_query import (
    SORT_COLUMNS,
    RequestQuery,
    count_requests,
    prepare_query,
)
from app.services.request_view import RequestRecord, as_record, select_requests
from app.storage import Store

EXPORT_BATCH_SIZE = 1000


def prepare_export(filter: dict[str, Any] | None) -> RequestQuery:
    """The checked query of an export (raises InvalidArgument for a bad filter)."""
    return prepare_query(filter=filter, sort=None, first=0, after=None)


async def count_export(store: Store, query: RequestQuery) -> int:
    return await count_requests(store, query)


def stream_requests(
    store: Store, query: RequestQuery, *, batch_size: int = EXPORT_BATCH_SIZE
) -> AsyncIterator[list[RequestRecord]]:
    """The matching requests as callers see them, `batch_size` at a time."""
    order = [
        SORT_COLUMNS[field].asc() if direction == "ASC" else SORT_COLUMNS[field].desc()
        for field, direction in query.keys
    ]
    statement = select_requests().where(query.where).order_by(*order)
    return store.stream(statement, batch_size=batch_size, into=as_record)
