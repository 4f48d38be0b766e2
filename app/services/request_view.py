"""A request as callers see it: the stored row, with PROCESSING read from the queue.

A report queues one notification per waiting request and writes nothing else, so a large
report is a single INSERT of narrow rows, not a rewrite of every request and its indexes.
The stored `status` is therefore never PROCESSING: a request is PROCESSING exactly while a
notification is queued for it (and it is not sent), and until then its delivery bookkeeping
is the queued notification's. The dispatcher writes the outcome to the request when it
drops the notification.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    FromClause,
    String,
    and_,
    case,
    cast,
    false,
    or_,
    select,
)
from sqlalchemy.sql import visitors

from app.models import Notification, NotificationRequest, RequestStatus, table_of

_REQUESTS = table_of(NotificationRequest)
QUEUED = table_of(Notification).alias("queued")
_SENT = RequestStatus.NOTIFICATION_SENT.value
_PROCESSING = RequestStatus.PROCESSING.value

# Every request with its queued notification, if it has one (at most one: a unique index).
REQUEST_VIEW = _REQUESTS.outerjoin(QUEUED, QUEUED.c.request_id == _REQUESTS.c.id)


def counted_from(condition: ColumnElement[bool]) -> FromClause:
    """Where to count the requests `condition` picks: the requests alone when it reads
    nothing of the queue, else the view. A request joins at most one queued notification
    and the join is outer, so it neither adds nor drops a request; without it a count
    walks one index instead of looking each request up in the queue (3x slower)."""
    reads_queue = any(
        getattr(element, "table", None) is QUEUED
        for element in visitors.iterate(condition)
    )
    return REQUEST_VIEW if reads_queue else _REQUESTS


# Queued and not yet sent. Reports share-lock the requests they read, so a request marked
# sent meanwhile is either skipped or loses its notification; should one be left (queued
# before that lock existed), it never shows as PROCESSING and the dispatcher drops it unsent.
_IS_PROCESSING = and_(QUEUED.c.request_id.is_not(None), _REQUESTS.c.status != _SENT)


def _while_queued(queued: Any, stored: Any, name: str) -> Any:
    """`queued` while the request is PROCESSING, else the stored column, named `name`."""
    return case((_IS_PROCESSING, queued), else_=stored).label(name)


_DERIVED = {
    "status": _while_queued(_PROCESSING, _REQUESTS.c.status, "status"),
    "delivery_attempts": _while_queued(
        QUEUED.c.attempts, _REQUESTS.c.delivery_attempts, "delivery_attempts"
    ),
    "last_delivery_error": _while_queued(
        QUEUED.c.last_error, _REQUESTS.c.last_delivery_error, "last_delivery_error"
    ),
}
# The request's columns, by name, as callers see them.
COLUMNS: dict[str, ColumnElement[Any]] = {
    column.key: _DERIVED.get(column.key, column) for column in _REQUESTS.c
}


class RequestRecord(NamedTuple):
    """A notification request as callers see it (what every request service returns).

    Ids are their canonical text, which is what every caller shows (and SQLite stores): a
    page converted 200 ids to UUIDs and straight back to text.
    """

    id: str
    app_id: str
    catalog_item_id: str
    options: dict[str, Any] | None
    catalog_reference_key: str
    email: str
    contact_id: str
    status: str
    open_request: bool | None
    auto_notified: bool | None
    created_date: datetime
    item_url: str | None
    item_name: str
    item_price: str
    item_image: str | None
    delivery_round: int
    delivery_attempts: int
    last_delivery_error: str | None
    # False while its email address awaits confirmation (double opt-in).
    confirmed: bool

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(self.id)


_AS_TEXT = ("id", "contact_id")
_READ_COLUMNS = [
    cast(COLUMNS[name], String).label(name) if name in _AS_TEXT else COLUMNS[name]
    for name in RequestRecord._fields
]
# Rows of select_requests() and of record_columns(), made into records.
as_record = RequestRecord._make


def record_columns() -> list[Any]:
    """The stored columns in a record's order (for RETURNING, where nothing is queued)."""
    return [
        cast(_REQUESTS.c[name], String).label(name)
        if name in _AS_TEXT
        else _REQUESTS.c[name]
        for name in RequestRecord._fields
    ]


def select_requests() -> Any:
    """SELECT requests as callers see them; read them `into=as_record`."""
    return select(*_READ_COLUMNS).select_from(REQUEST_VIEW)


def select_queued_requests() -> Any:
    """SELECT the requests with a queued notification, read from the queue (an inner
    join, so the queue's indexes may drive the read); as select_requests()."""
    queued = QUEUED.join(_REQUESTS, _REQUESTS.c.id == QUEUED.c.request_id)
    return select(*_READ_COLUMNS).select_from(queued)


def status_in(statuses: Iterable[str]) -> ColumnElement[bool]:
    """`status IN statuses`, written so the stored status's index can serve it."""
    wanted = set(statuses)
    stored = wanted - {_PROCESSING}
    if _SENT in stored:
        # A sent request is never PROCESSING, whatever is queued.
        clauses = [_REQUESTS.c.status == _SENT]
        stored.discard(_SENT)
    else:
        clauses = []
    if stored:
        # One status as `=`: with the columns after it in an index, a range in order.
        one_of = (
            _REQUESTS.c.status == next(iter(stored))
            if len(stored) == 1
            else _REQUESTS.c.status.in_(sorted(stored))
        )
        clauses.append(and_(one_of, QUEUED.c.request_id.is_(None)))
    if _PROCESSING in wanted:
        clauses.append(_IS_PROCESSING)
    return or_(false(), *clauses)
