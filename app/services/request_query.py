"""Querying notification requests: checked queries, pages and counts.

Filters are compiled in request_filters.py, orders and the keyset rule live in
request_sort.py, cursors in cursors.py. A page is one SELECT: a single index range, or
when the rows after the cursor are several ranges (request_sort.segments_after), a merge
of one short ordered read per range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import Signer
from sqlalchemy import ColumnElement, column, select, union_all

from app.keys import ServerKeys
from app.services.broad_counts import count_matching
from app.services.built_statements import Built, built_for
from app.services.cursors import (
    CURSOR_PURPOSE,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from app.services.plan_statements import (
    queue_statement,
    range_statement,
    sort_statement,
    walk_statement,
)
from app.services.request_filters import RequestFilter, compile_filter
from app.services.request_plans import PagePlan, Plan, choose_plan
from app.services.request_sort import (
    SortField,
    SortKey,
    order_by,
    segments_after,
    sort_keys,
)
from app.services.request_view import (
    RequestRecord,
    as_record,
    select_requests,
)
from app.services.rules import Violations
from app.storage import Store

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_SORT_KEYS = len(SortField)


@dataclass
class Page:
    rows: list[RequestRecord]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


@dataclass
class RequestQuery:
    """A checked query: its WHERE, its order, where to start and how many to take."""

    where: ColumnElement[bool]
    keys: tuple[SortKey, ...]
    fingerprint: str
    first: int
    after: list[Any] | None
    signer: Signer
    # The checked filter `where` was compiled from (totalCount may read counters).
    filter: RequestFilter | None
    # Its statements, kept while the same query comes again (built_statements.py):
    # a query with another `where` needs another (Built.narrowed).
    built: Built = field(default_factory=Built)


def prepare_query(
    *,
    keys: ServerKeys,
    filter: RequestFilter | None,
    sort: Sequence[SortKey] | None,
    first: int | None,
    after: str | None,
) -> RequestQuery:
    """Check every argument (all broken rules at once) before anything is read."""
    violations = Violations()
    first = DEFAULT_PAGE_SIZE if first is None else first
    if not 0 <= first <= MAX_PAGE_SIZE:
        violations.add("first", f"must be 0 to {MAX_PAGE_SIZE}")
    if sort is not None and len(sort) > MAX_SORT_KEYS:
        violations.add("sort", f"must hold at most {MAX_SORT_KEYS} fields")
    compiled = compile_filter(filter, violations)
    order = sort_keys(sort)
    made_for = fingerprint(filter, order)
    signer = keys.signer(CURSOR_PURPOSE)
    cursor = (
        decode_cursor(signer, after, made_for, order, violations)
        if after is not None
        else None
    )
    violations.raise_if_any()
    built = built_for((filter, order, first, None if cursor is None else tuple(cursor)))
    # The kept statements were built from the first such query's WHERE: the plans tell
    # its parts apart by identity (request_plans._driven_by).
    where = built.get("where", lambda: compiled)
    return RequestQuery(where, order, made_for, first, cursor, signer, filter, built)


# The columns of select_requests(), by name, to read them from a subquery of it.
_BY_NAME = {
    selected.key: column(selected.key, selected.type)
    for selected in select_requests().selected_columns
}


def page_statement(
    query: RequestQuery, dialect: str, plan: PagePlan | None = None
) -> Any:
    """The SELECT of one page (one row more than asked, to tell whether more follow),
    read the way `plan` says (app/services/request_plans.py; none: as planned)."""
    key = ("page", dialect, None if plan is None else plan.key)
    return query.built.get(key, lambda: _page_statement(query, dialect, plan))


def _page_statement(query: RequestQuery, dialect: str, plan: PagePlan | None) -> Any:
    limit = query.first + 1
    segments = segments_after(query.keys, query.after)
    if plan is not None and plan.plan is Plan.QUEUE:
        return queue_statement(query, segments[0], dialect)
    if plan is not None and plan.plan is Plan.SORT:
        return sort_statement(query, plan.where, segments, dialect)
    if plan is not None and plan.plan is Plan.RANGE and len(segments) == 1:
        return range_statement(query, plan.where, segments[0], dialect)
    if plan is not None and plan.plan is Plan.WALK and len(segments) == 1:
        return walk_statement(query, segments[0], dialect)
    if len(segments) == 1:
        (segment,) = segments
        return (
            select_requests()
            .where(query.where, segment.where(query.keys))
            .order_by(*segment.order_by(query.keys, dialect))
            .limit(limit)
        )
    # No database reads an index through an OR of ranges, so a deep page would cost its
    # depth; read `limit` rows of each range in its own order, then merge those.
    pieces = [
        select_requests()
        .where(query.where, segment.where(query.keys))
        .order_by(*segment.order_by(query.keys, dialect))
        .limit(limit)
        .subquery()
        for segment in segments
    ]
    # The pieces' columns by name (a subquery's own `.c` costs a copy of every column).
    merged = union_all(
        *(select(*_BY_NAME.values()).select_from(piece) for piece in pieces)
    ).subquery()
    return (
        select(*_BY_NAME.values())
        .select_from(merged)
        .order_by(*order_by(query.keys, dialect, _BY_NAME))
        .limit(limit)
    )


def _sort_values(row: RequestRecord, keys: Sequence[SortKey]) -> list[Any]:
    return [getattr(row, key.field.value) for key in keys]


async def query_requests(store: Store, query: RequestQuery) -> Page:
    """One page: a single SELECT, planned by a few bounded counts when filtered."""
    plan = await choose_plan(store, query, segments_after(query.keys, query.after))
    rows = await store.rows(page_statement(query, store.dialect, plan), into=as_record)
    page = rows[: query.first]
    cursors = [
        encode_cursor(query.signer, query.fingerprint, _sort_values(row, query.keys))
        for row in page
    ]
    return Page(
        rows=page,
        cursors=cursors,
        has_next_page=len(rows) > query.first,
        has_previous_page=query.after is not None,
    )


async def count_requests(store: Store, query: RequestQuery) -> int:
    """Every request the query's filter matches (see broad_counts.py)."""
    return await count_matching(store, query.filter, query.where, query.built)
