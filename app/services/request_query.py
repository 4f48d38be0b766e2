"""Querying notification requests: total sort orders, keyset cursors and pages.

Filters are compiled in request_filters.py. Every order ends with `id`, in the
direction of the last sort field, so a cursor (the sort values of one row) names a unique
position and the next page is an index range scan whatever its depth.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    and_,
    false,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union_all,
)

from app.models import NotificationRequest, RequestStatus
from app.services.request_filters import compile_filter
from app.services.request_view import (
    COLUMNS,
    QUEUED,
    REQUEST_VIEW,
    RequestRecord,
    as_record,
    select_requests,
    status_in,
)
from app.services.rules import Violations
from app.storage import Store

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
_CURSOR_VERSION = 1

R = NotificationRequest
_PROCESSING = RequestStatus.PROCESSING.value
# Each sort field's column of the request view (the status is PROCESSING while queued).
SORT_COLUMNS: dict[str, Any] = {
    field: COLUMNS[name]
    for field, name in {
        "ID": "id",
        "CONTACT_ID": "contact_id",
        "STATUS": "status",
        "AUTO_NOTIFIED": "auto_notified",
        "CREATED_DATE": "created_date",
        "ITEM_URL": "item_url",
    }.items()
}
NULLABLE_SORT_FIELDS = {"AUTO_NOTIFIED", "ITEM_URL"}
DEFAULT_SORT: tuple[tuple[str, str], ...] = (("CREATED_DATE", "DESC"),)


@dataclass
class Page:
    rows: list[RequestRecord]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


# ---------------------------------------------------------------------------- sort + cursor


def _sort_keys(sort: Sequence[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """The sort fields as given (first of each), ended by ID in the last one's direction."""
    keys: list[tuple[str, str]] = []
    for field, order in sort or DEFAULT_SORT:
        if field not in (key for key, _ in keys):
            keys.append((field, order))
        if field == "ID":
            break
    if keys[-1][0] != "ID":
        keys.append(("ID", keys[-1][1]))
    return keys


def _order_by(
    keys: list[tuple[str, str]], dialect: str, columns: Any = None
) -> list[Any]:
    """ORDER BY for the keys, on the table or on `columns` (a subquery's `.c`)."""
    clauses = []
    for field, order in keys:
        column = SORT_COLUMNS[field]
        if columns is not None:
            column = columns[column.key]
        clause = column.asc() if order == "ASC" else column.desc()
        # SQLite already ranks NULL lowest; PostgreSQL must be told.
        if dialect == "postgresql" and field in NULLABLE_SORT_FIELDS:
            clause = clause.nulls_first() if order == "ASC" else clause.nulls_last()
        clauses.append(clause)
    return clauses


def _after(column: Any, order: str, value: Any) -> list[ColumnElement[bool]]:
    """Rows strictly after `value` in this column's order (NULL ranks lowest), as
    disjoint pieces that are each one range of the column's index."""
    if value is None:
        return [column.is_not(None)] if order == "ASC" else []
    if order == "ASC":
        return [column > value]
    return [column < value, column.is_(None)]


def _same(column: Any, value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _keyset(keys: list[tuple[str, str]], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after the cursor `values` in the order of `keys`."""
    return or_(false(), *_keyset_segments(keys, values))


def _keyset_segments(
    keys: list[tuple[str, str]], values: list[Any]
) -> list[ColumnElement[bool]]:
    """The rows after the cursor as disjoint conditions, each one index range.

    An OR of them is the whole answer; but no database walks an index through an OR of
    ranges (e.g. "after v, or NULL" in a DESC NULLS LAST order), so a deep page would
    cost its depth. Queried one by one and merged, each costs a page.
    """
    columns = [SORT_COLUMNS[field] for field, _ in keys]
    orders = {order for _, order in keys}
    if len(orders) == 1 and None not in values:
        # One direction, no NULL in the cursor: a row-value comparison the index serves.
        # (A NULL row compares as NULL and drops out, which is right for ASC where NULL ranks
        # before any value; for DESC it ranks after, so add those rows back.)
        order = orders.pop()
        # Bind with the columns' types, as a plain comparison would (UUID text, UTC time).
        row = tuple_(*columns)
        cursor = tuple_(
            *[literal(v, column.type) for v, column in zip(values, columns)]
        )
        segments = [row > cursor if order == "ASC" else row < cursor]
        if order == "DESC":
            segments += [
                _nulls_after(keys, values, i)
                for i, (f, _) in enumerate(keys)
                if f in NULLABLE_SORT_FIELDS
            ]
        return segments
    segments = []
    for index, ((_, order), column, value) in enumerate(zip(keys, columns, values)):
        prefix = [_same(columns[i], values[i]) for i in range(index)]
        segments += [and_(*prefix, after) for after in _after(column, order, value)]
    return segments


def _nulls_after(
    keys: list[tuple[str, str]], values: list[Any], index: int
) -> ColumnElement[bool]:
    columns = [SORT_COLUMNS[field] for field, _ in keys]
    prefix = [_same(columns[i], values[i]) for i in range(index)]
    return and_(*prefix, columns[index].is_(None))


def _fingerprint(filter: dict[str, Any] | None, keys: list[tuple[str, str]]) -> str:
    text = orjson.dumps(
        {"filter": filter or {}, "sort": keys}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(text).hexdigest()[:16]


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return {"t": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decode_value(field: str, raw: Any) -> Any:
    if raw is None:
        return None
    if field == "CREATED_DATE":
        return datetime.fromisoformat(raw["t"])
    if field in ("ID", "CONTACT_ID"):
        return uuid.UUID(raw)
    if field == "AUTO_NOTIFIED":
        if not isinstance(raw, bool):
            raise ValueError("not a boolean")
        return raw
    if not isinstance(raw, str):
        raise ValueError("not a string")
    return raw


def _row_values(row: Any, keys: list[tuple[str, str]]) -> list[Any]:
    return [getattr(row, SORT_COLUMNS[field].key) for field, _ in keys]


def encode_cursor(fingerprint: str, values: list[Any]) -> str:
    payload = orjson.dumps(
        [_CURSOR_VERSION, fingerprint, [_encode_value(v) for v in values]]
    )
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(
    cursor: str, fingerprint: str, keys: list[tuple[str, str]], violations: Violations
) -> list[Any] | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, cursor_fingerprint, raw = orjson.loads(
            base64.urlsafe_b64decode(padded.encode())
        )
        if (
            version != _CURSOR_VERSION
            or not isinstance(raw, list)
            or len(raw) != len(keys)
        ):
            raise ValueError("not one of our cursors")
        values = [_decode_value(field, value) for (field, _), value in zip(keys, raw)]
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError, UnicodeError):
        violations.add("after", "is not a cursor of this connection")
        return None
    if cursor_fingerprint != fingerprint:
        violations.add("after", "was made for another filter or sort")
        return None
    return values


# ---------------------------------------------------------------------------- queries


@dataclass
class RequestQuery:
    """A checked query: its WHERE, its order, where to start and how many to take."""

    where: ColumnElement[bool]
    keys: list[tuple[str, str]]
    fingerprint: str
    first: int
    after: list[Any] | None


def prepare_query(
    *,
    filter: dict[str, Any] | None,
    sort: Sequence[tuple[str, str]] | None,
    first: int | None,
    after: str | None,
) -> RequestQuery:
    violations = Violations()
    first = DEFAULT_PAGE_SIZE if first is None else first
    if not 0 <= first <= MAX_PAGE_SIZE:
        violations.add("first", f"must be 0 to {MAX_PAGE_SIZE}")
    if sort is not None and len(sort) > len(SORT_COLUMNS):
        violations.add("sort", f"must hold at most {len(SORT_COLUMNS)} fields")
    where = compile_filter(filter, violations)
    keys = _sort_keys(sort)
    fingerprint = _fingerprint(filter, keys)
    cursor = (
        decode_cursor(after, fingerprint, keys, violations)
        if after is not None
        else None
    )
    violations.raise_if_any()
    return RequestQuery(where, keys, fingerprint, first, cursor)


_STATUSES = sorted(status.value for status in RequestStatus)


def _status_pieces(query: RequestQuery, limit: int) -> list[Any] | None:
    """A page in STATUS order as one piece per status, each in id order; None for other
    orders.

    The status is no column (PROCESSING is read from the queue), so no index holds the
    order; but each status alone is one index range: of `(status, id)` for a stored one,
    of the queue's `request_id` for PROCESSING.
    """
    if [field for field, _ in query.keys] != ["STATUS", "ID"]:
        return None
    descending = query.keys[0][1] == "DESC"
    statuses = _STATUSES[::-1] if descending else _STATUSES
    after_status, after_id = query.after or (None, None)
    if after_status is not None:
        if after_status not in statuses:
            return None
        statuses = statuses[statuses.index(after_status) :]
    pieces = []
    for status in statuses:
        # The same values, but the queue's column lets PROCESSING be read from its index.
        id_column = QUEUED.c.request_id if status == _PROCESSING else R.id
        conditions = [query.where, status_in({status})]
        if status == after_status:
            conditions.append(R.id < after_id if descending else R.id > after_id)
        pieces.append(
            select_requests()
            .where(*conditions)
            .order_by(id_column.desc() if descending else id_column.asc())
            .limit(limit)
            .subquery()
        )
    return pieces


def _page_statement(query: RequestQuery, dialect: str) -> Any:
    order = _order_by(query.keys, dialect)
    limit = query.first + 1
    segments = (
        _keyset_segments(query.keys, query.after)
        if query.after is not None
        else [true()]
    )
    pieces = _status_pieces(query, limit)
    # Merging pieces pays where one index serves them: one sort field (ended by id).
    if pieces is None and (len(segments) == 1 or len(query.keys) > 2):
        return (
            select_requests()
            .where(query.where, or_(false(), *segments))
            .order_by(*order)
            .limit(limit)
        )
    pieces = pieces or [
        select_requests()
        .where(query.where, segment)
        .order_by(*order)
        .limit(limit)
        .subquery()
        for segment in segments
    ]
    merged = union_all(*(select(piece) for piece in pieces)).subquery()
    return (
        select(*merged.c)
        .order_by(*_order_by(query.keys, dialect, merged.c))
        .limit(limit)
    )


async def query_requests(store: Store, query: RequestQuery) -> Page:
    """One page: a single SELECT."""
    statement = _page_statement(query, store.dialect)
    rows = await store.rows(statement, into=as_record)
    page = rows[: query.first]
    cursors = [
        encode_cursor(query.fingerprint, _row_values(row, query.keys)) for row in page
    ]
    return Page(
        rows=page,
        cursors=cursors,
        has_next_page=len(rows) > query.first,
        has_previous_page=query.after is not None,
    )


async def count_requests(store: Store, query: RequestQuery) -> int:
    """Every request the query's filter matches."""
    total = await store.scalar(
        select(func.count()).select_from(REQUEST_VIEW).where(query.where)
    )
    return int(total or 0)
