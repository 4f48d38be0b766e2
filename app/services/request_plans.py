"""How one page of requests is read: walk the sort order's index, or sort the matches.

A page is the first rows, in the sort order, that match a filter (after a cursor). There
are two ways to read it. Walking the sort order's index and checking the filter on each
row costs about `page size / share of rows that match`: little for a filter most rows
meet, a whole index for one that none meets. Reading the filter's matches through the
filter's own index and sorting them costs what there are matches: little for a few, a
sort of most of the table for many. Planners choose from statistics and miss both ways
(an app with no requests walks a million rows; `itemUrl lt` sorts most of them).

So before a filtered page is read, bounded probes count what each way would meet:

1. the requests each term of the filter meets (request_terms.py: one comparison, both
   bounds of a range, one value each of the columns an index starts with), each counted
   up to SORTED_AT_MOST through its own index: the fewest bound the filter's matches;
2. unless that is less than a page, the matches among the first WALK_PROBE_ROWS rows of
   the order: a full page among them (or no more rows), and the page walks the order's
   index (`Plan.WALK`), ending within them; else their share tells about how long the
   walk would be;
3. the fewest matches, if fewer than the walk would cost, are read through their term's
   index and sorted (`Plan.SORT`), or, when that index holds them in page order (an
   item's requests by date), walked (`Plan.RANGE`);
4. else a walk of at most about WALKED_AT_MOST rows (`Plan.WALK`), else the database's
   own plan (`Plan.AS_PLANNED`), as for a page without a filter.

A page of PROCESSING requests only (queued ones, 1 in 200 at a million) by createdDate
that no term makes small enough to sort walks the queue's own date index instead
(`Plan.QUEUE`): the queue holds each request's createdDate.

A filter whose conditions on one field no value meets together reads nothing at all.
Each plan is forced in SQL both databases read alike: a set of matches is a MATERIALIZED
common table expression (read through the driving term's index, then sorted), and a
condition no index may serve is wrapped in `IS TRUE`. The plan changes how rows are
found, never which: every plan reads the same rows in the same order.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    and_,
    false,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.sql.expression import ColumnClause, True_

from app.services.filter_match import never_matches
from app.services.request_sort import (
    Segment,
    SortField,
    SortKey,
)
from app.services.request_terms import (
    Term,
    flat_terms,
    has_queued_notification,
    in_sort_order,
    no_queued_notification,
    ranged_expression,
    terms,
)
from app.services.request_view import (
    REQUEST_VIEW,
    counted_from,
)
from app.storage import Store

if TYPE_CHECKING:
    from app.services.request_query import RequestQuery


# Rows of the order the walk probe reads.
WALK_PROBE_ROWS = 1_000
# A page walks at most about this many rows when sorting would cost more.
WALKED_AT_MOST = 10_000
# At most this many matches are read through a term's index and sorted.
SORTED_AT_MOST = 1_000
# A match read through a term's index costs about this many walked rows: it lies
# anywhere in the table, where the walk's next rows are mostly on the same pages.
RANDOM_READ = 5


class Plan(enum.Enum):
    AS_PLANNED = "as planned"  # the database's own plan: no filter, or no cheap way
    WALK = "walk"  # walk the sort order's index, the filter checked on each row
    RANGE = "range"  # walk one term's index range, which holds its rows in page order
    SORT = "sort"  # read the matches through one term's index, then sort them
    QUEUE = "queue"  # walk the queue's date index: PROCESSING requests by createdDate


@dataclass(frozen=True)
class PagePlan:
    plan: Plan
    # The filter as the plan reads it: for RANGE and SORT, the term whose index finds
    # the matches and the rest unindexed; else the filter as compiled.
    where: ColumnElement[bool]
    # Names the plan among those of its query (its page statement is kept by it).
    key: Hashable = None


def unindexed(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """`condition`, as terms no index serves (checked on each row read).

    Each AND-ed term as `(...) IS TRUE` (which drops a row where it is NULL, as WHERE does):
    neither database looks inside it for an index, and PostgreSQL still estimates how
    many rows meet it. "No queued notification" stays as it is: no index of the
    requests serves it anyway, and PostgreSQL reads it as an anti-join (inside IS TRUE
    it would take it for almost no row, and sort the whole table rather than walk).
    """
    return and_(
        *(
            term if no_queued_notification(term) else term.is_(true())
            for term in flat_terms(condition)
        )
    )


def _count(statement: Select[Any]) -> Select[Any]:
    return select(func.count()).select_from(statement.subquery())


def matches_probe(
    condition: ColumnElement[bool],
    at_most: int,
    in_order_of: ColumnElement[Any] | None = None,
) -> Select[Any]:
    """How many requests meet `condition`, counted up to `at_most` (its matches read in
    the order of `in_order_of`, when given: see _term_probe)."""
    found = select(literal(1)).select_from(counted_from(condition)).where(condition)
    if in_order_of is not None:
        found = found.order_by(in_order_of)
    return _count(found.limit(at_most))


def _term_probe(term: Term, at_most: int, dialect: str) -> Select[Any]:
    """How many requests `term` meets, counted up to `at_most` through its index.

    On PostgreSQL a range of an expression index (`lower(item_url)`: startsWith) is
    counted in the index's order. PostgreSQL never reads an expression index alone
    (index-only), and unordered it may read a range it expects a few thousand in as a
    bitmap: every entry of the range before the first row (22,000 of them: 28 ms),
    where the index read in order stops at `at_most` (2 ms). A column's range is left
    unordered: read index-only, it stops at `at_most` anyway, and an order its index
    does not hold (NULLs first) would sort the whole range."""
    ranged = ranged_expression(term) if dialect == "postgresql" else None
    if isinstance(ranged, ColumnClause):
        ranged = None
    return matches_probe(term.condition, at_most, in_order_of=ranged)


# `hit` by name: a subquery's own columns (`.c`) would hold reference cycles.
_HIT = literal_column("hit", Boolean())


def walk_probe(query: RequestQuery, segment: Segment, dialect: str) -> Select[Any]:
    """How many of the first WALK_PROBE_ROWS rows of `segment`, in order, match the
    filter, counted up to a page (the filter a column, so it cannot pick the index)."""
    walked = (
        select(query.where.label("hit"))
        .select_from(REQUEST_VIEW)
        .where(segment.where(query.keys))
        .order_by(*segment.order_by(query.keys, dialect))
        .limit(WALK_PROBE_ROWS)
        .subquery()
    )
    # `hit` by name: the subquery's own columns (`.c`) would hold reference cycles.
    hits = select(literal(1)).select_from(walked).where(_HIT)
    return _count(hits.limit(query.first + 1))


async def _counts(
    store: Store,
    query: RequestQuery,
    name: str,
    counts: Callable[[], list[Select[Any]]],
) -> list[int]:
    """Several bounded counts in one statement (one round trip), kept by `name`."""
    statement = query.built.get(
        (name, store.dialect),
        lambda: select(*(count.scalar_subquery() for count in counts())),
    )
    (row,) = await store.rows(statement)
    return [int(value) for value in row]


async def _walk_length(store: Store, query: RequestQuery, segment: Segment) -> float:
    """About how many rows a walk of `segment` reads for the page: at most
    WALK_PROBE_ROWS when a full page matches among them or the segment is no longer,
    else the probe's share of matches stretched to a page (infinite for none)."""
    hits, rows = await _counts(
        store,
        query,
        "walk probe",
        lambda: [
            walk_probe(query, segment, store.dialect),
            matches_probe(segment.where(query.keys), WALK_PROBE_ROWS),
        ],
    )
    page = query.first + 1
    if hits >= page or rows < WALK_PROBE_ROWS:
        return float(min(rows, WALK_PROBE_ROWS))
    return WALK_PROBE_ROWS * page / hits if hits else math.inf


async def _fewest_matches(
    store: Store, query: RequestQuery, candidates: Sequence[Term], at_most: int
) -> tuple[int, int]:
    """How many requests the term meeting the fewest meets (each counted up to
    `at_most`), and its place among `candidates`: an upper bound on the filter's
    matches, read through its index."""
    found = await _counts(
        store,
        query,
        "term probes",
        lambda: [_term_probe(term, at_most, store.dialect) for term in candidates],
    )
    return min(zip(found, range(len(candidates)), strict=True))


async def choose_plan(
    store: Store, query: RequestQuery, segments: Sequence[Segment]
) -> PagePlan:
    """The cheapest way to read the page, from bounded probes (see the module's doc)."""
    as_planned = PagePlan(Plan.AS_PLANNED, query.where, Plan.AS_PLANNED)
    if isinstance(query.where, True_):
        return as_planned
    if query.filter is not None and never_matches(query.filter):
        return PagePlan(Plan.SORT, false(), "nothing")  # nothing to read, nor to sort
    page = query.first + 1
    candidates = query.built.get(
        ("terms", store.dialect), lambda: terms(query.where, store.dialect)
    )
    found, driver = (
        await _fewest_matches(store, query, candidates, SORTED_AT_MOST)
        if candidates and SORTED_AT_MOST > 0
        else (SORTED_AT_MOST, None)
    )
    if driver is not None and found >= SORTED_AT_MOST and walks_queue(query, segments):
        return PagePlan(Plan.QUEUE, query.where, Plan.QUEUE)
    walk = math.inf  # fewer matches than a page: a walk would read to the end
    if len(segments) == 1 and (driver is None or found >= page):
        walk = await _walk_length(store, query, segments[0])
        if walk <= WALK_PROBE_ROWS:
            return PagePlan(Plan.WALK, query.where, Plan.WALK)
    # Sorting is worth it below the walk's cost, each match read from anywhere.
    if driver is not None and found < min(SORTED_AT_MOST, walk / RANDOM_READ):
        term = candidates[driver]
        where = query.built.get(
            ("driven by", store.dialect, driver),
            lambda: _driven_by(term, query.where),
        )
        single = len(segments) == 1
        if single and in_sort_order(term, keys_of(segments[0], query), store.dialect):
            # Its index holds the matches in page order: walk that range instead.
            return PagePlan(Plan.RANGE, where, (Plan.RANGE, driver))
        return PagePlan(Plan.SORT, where, (Plan.SORT, driver))
    if walk <= WALKED_AT_MOST:
        return PagePlan(Plan.WALK, query.where, Plan.WALK)
    return as_planned


def walks_queue(query: RequestQuery, segments: Sequence[Segment]) -> bool:
    """Whether the page may walk the queue's (request_created_date, request_id) index:
    its filter asks for a queued notification, in an order by createdDate then id (one
    direction), after at most one row-value cursor."""
    if [key.field for key in query.keys] != [SortField.CREATED_DATE, SortField.ID]:
        return False
    if len({key.order for key in query.keys}) > 1 or len(segments) != 1:
        return False
    bound = segments[0].bound
    if bound is not None and bound[0] not in ("row_gt", "row_lt"):
        return False
    return any(has_queued_notification(part) for part in flat_terms(query.where))


def _driven_by(driver: Term, where: ColumnElement[bool]) -> ColumnElement[bool]:
    """`where` with only `driver` left for an index to serve."""
    rest = [
        part for part in flat_terms(where) if not any(part is p for p in driver.parts)
    ]
    return and_(driver.condition, unindexed(and_(*rest))) if rest else driver.condition


def keys_of(segment: Segment, query: RequestQuery) -> Sequence[SortKey]:
    """The sort keys `segment` leaves to an index (its first ones are fixed values)."""
    return query.keys[len(segment.equal) :]
