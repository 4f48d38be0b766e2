"""The SELECT of a page, as each plan of app/services/request_plans.py reads it.

Each reads the same rows in the same order; they differ in which index finds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, literal, literal_column, or_, select, tuple_

from app.services.request_plans import unindexed
from app.services.request_sort import Segment, SortField, SortKey, column_of, order_by
from app.services.request_terms import REQUESTS
from app.services.request_view import (
    QUEUED,
    REQUEST_VIEW,
    select_queued_requests,
    select_requests,
)

if TYPE_CHECKING:
    from app.services.request_query import RequestQuery


# The queue's copies of a queued request's createdDate and id, by sort field.
_IN_QUEUE = {
    SortField.CREATED_DATE.value: QUEUED.c.request_created_date,
    SortField.ID.value: QUEUED.c.request_id,
}


def queue_statement(query: RequestQuery, segment: Segment, dialect: str) -> Any:
    """The page, walking the queue's date index (see walks_queue). A queued request's
    createdDate and id are the queue's copies, so ordering and bounding by those reads
    the same rows in the same order; the filter is checked on each."""
    where = [unindexed(query.where)]
    if segment.bound is not None:
        kind, values = segment.bound
        columns = list(_IN_QUEUE.values())
        row = tuple_(*columns)
        cursor = tuple_(
            *(literal(v, c.type) for v, c in zip(values, columns, strict=True))
        )
        where.append(row > cursor if kind == "row_gt" else row < cursor)
    return (
        select_queued_requests()
        .where(*where)
        .order_by(*order_by(query.keys, dialect, _IN_QUEUE))
        .limit(query.first + 1)
    )


def range_statement(
    query: RequestQuery, where: ColumnElement[bool], segment: Segment, dialect: str
) -> Any:
    """The page, walking `segment` through the one term of `where` left indexed."""
    return (
        select_requests()
        .where(where, segment.where(query.keys))
        .order_by(*segment.order_by(query.keys, dialect))
        .limit(query.first + 1)
    )


def walk_statement(query: RequestQuery, segment: Segment, dialect: str) -> Any:
    """The page, walking `segment` through the order's index, the filter unindexed."""
    return range_statement(query, unindexed(query.where), segment, dialect)


def sort_statement(
    query: RequestQuery,
    where: ColumnElement[bool],
    segments: Sequence[Segment],
    dialect: str,
) -> Any:
    """The page, from the filter's matches after the cursor, sorted.

    The matches are a MATERIALIZED set of their own, read through the driving term's
    index (the cursor's ranges unindexed), never by walking the order's index; only
    their ids and sort keys, so an index holding those reads none of their rows. The
    page's rows are then read by id.
    """
    sort_keys = [column_of(key.field).label(_sort_name(key)) for key in query.keys]
    matched = (
        select(REQUESTS.c.id.label("request_id"), *sort_keys)
        .select_from(REQUEST_VIEW)
        .where(where)
    )
    if query.after is not None:
        after = or_(*(segment.where(query.keys) for segment in segments))
        matched = matched.where(unindexed(after))
    matches = matched.cte("matches").prefix_with("MATERIALIZED")
    first = (
        select(_named("request_id"), *(_named(_sort_name(key)) for key in query.keys))
        .select_from(matches)
        .order_by(*order_by(query.keys, dialect, _by_field(query.keys)))
        .limit(query.first + 1)
        .subquery("first_matches")
    )
    return (
        select_requests()
        .join(first, _named("first_matches.request_id") == REQUESTS.c.id)
        .order_by(
            *order_by(query.keys, dialect, _by_field(query.keys, "first_matches."))
        )
    )


def _sort_name(key: SortKey) -> str:
    return f"sort_{key.field.value}"


def _named(name: str, type_: Any = None) -> Any:
    """A column by its name. A subquery's own columns (`.c`) would hold reference
    cycles, which only the garbage collector frees (see app/gc_tuning.py)."""
    return literal_column(name, type_)


def _by_field(keys: Sequence[SortKey], prefix: str = "") -> dict[str, Any]:
    """The sort keys' columns of a subquery, by name, for `order_by`."""
    return {
        key.field.value: _named(prefix + _sort_name(key), column_of(key.field).type)
        for key in keys
    }
