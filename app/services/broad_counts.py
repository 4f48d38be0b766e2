"""totalCount of a filter on fields the counters do not keep (email, itemUrl, dates, ids).

A filter of itemUrl conditions only, and-ed with what the counters keep, is summed from
the counters per itemUrl (url_totals.py). Otherwise, what the filter's counted part (appId, status, ...) matches is known from the counters
(app/services/request_totals.py); the rest splits those requests in two: the ones it
matches and the ones it leaves out (its complement, app/services/filter_complement.py).
Either side, counted, gives the total. One statement counts the side likelier to be
small, then the other, up to a share of the counted part; only when both
are larger does it count one side whole: the one a sample of the counted part's
requests says is the smaller.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal,
    literal_column,
    select,
    true,
)

from app.services.built_statements import Built
from app.services.filter_complement import complement, conjuncts
from app.services.filter_match import fields_used
from app.services.request_classes import COUNTED_FIELDS
from app.services.request_filters import (
    FilterField,
    Operator,
    RequestFilter,
    compile_filter,
)
from app.services.request_plans import matches_probe, unindexed
from app.services.request_terms import REQUESTS as _REQUESTS
from app.services.request_terms import flat_terms, no_queued_notification
from app.services.request_totals import counters_statement
from app.services.request_view import QUEUED, REQUEST_VIEW, counted_from
from app.services.rules import Violations
from app.services.url_totals import url_counters_statement
from app.storage import Store

# How many matches the sides of a broad filter are counted to before one is counted
# whole: 1/PROBE_SHARE of the requests the counted part (appId, status, ...) holds,
# at least PROBE_AT_LEAST, the first side at most PROBE_ROWS and the second at most
# SECOND_PROBE_ROWS. A probe row (looked up in the queue) costs about three rows of a
# full count, and past both probes the smaller side is counted whole anyway (see
# _count_smaller_side): at 250,000 requests probes of 20,000 were half of the time of
# `email lt AND status`, which then counted its matches whole.
PROBE_ROWS = 20_000
SECOND_PROBE_ROWS = 20_000
PROBE_SHARE = 50
PROBE_AT_LEAST = 1_000
# Fields whose index also holds app_id and status (app/models/requests.py, COVERED),
# read by SQLite through that index. itemUrl is not among them: indexes led by the
# status and by the app hold its ranges and-ed with either as one range each (0013).
_COVERING = {
    FilterField.EMAIL,
    FilterField.CREATED_DATE,
    FilterField.CONTACT_ID,
}
# Conditions that match only the values they name.
_NAMED = {Operator.EQ, Operator.IN}
# The requests of the counted part read to tell which side is larger, and the share of
# them the filter must match for its complement to be counted instead: clearly more than
# half, as a complement is often an OR (the range's other side, or NULL), which
# PostgreSQL counts by scanning the table (itemUrl gt, 60 % of a million: 115 ms through
# the index, 190 ms for the 40 % left out). At 80 % (itemUrl exists true) counting the
# 20 % left out is 2-3x faster on both databases.
SAMPLE_ROWS = 200
COUNT_COMPLEMENT_ABOVE = 0.7


def every_match(condition: ColumnElement[bool]) -> Select[Any]:
    """SELECT how many requests meet `condition`, counting each.

    Where it asks for no queued notification (RECEIVED or FAILED), as the requests that
    meet the rest less those of them that are queued: the first walks an index of the
    requests, the second the queue (a few thousand), instead of looking each request up
    in the queue (2-4x slower for half a million)."""
    terms = flat_terms(condition)
    rest = [term for term in terms if not no_queued_notification(term)]
    if not rest or len(rest) == len(terms) or counted_from(and_(*rest)) is REQUEST_VIEW:
        return (
            select(func.count()).select_from(counted_from(condition)).where(condition)
        )
    every = select(func.count()).select_from(_REQUESTS).where(*rest)
    # Each queued request looked up by its id (the planner would rather walk an index of
    # the requests, not knowing how short the queue is).
    its_request = (
        select(literal(1))
        .select_from(_REQUESTS)
        .where(_REQUESTS.c.id == QUEUED.c.request_id, unindexed(and_(*rest)))
    )
    queued = select(func.count()).select_from(QUEUED).where(its_request.exists())
    return select(every.scalar_subquery() - queued.scalar_subquery())


def _split_counted(
    spec: RequestFilter | None,
) -> tuple[RequestFilter | None, RequestFilter]:
    """`spec` as (what the counters count, the rest), AND-ed: the parts reading only
    counted fields (None if there are none), and the others."""
    counted: list[RequestFilter] = []
    rest: list[RequestFilter] = []
    for unit in conjuncts(spec):
        (rest if fields_used(unit) - COUNTED_FIELDS else counted).append(unit)
    return (RequestFilter(and_=tuple(counted)) if counted else None), RequestFilter(
        and_=tuple(rest)
    )


def _broad_count(
    spec: RequestFilter | None,
    where: ColumnElement[bool],
    dialect: str,
    probe_rows: tuple[int, int] = (PROBE_ROWS, SECOND_PROBE_ROWS),
) -> Any | None:
    """totalCount of a filter on other fields, when it matches many and leaves out few:
    what its counted part (appId, status, ...) matches, from the counters, less what the
    rest leaves out of that; None without a complement.

    One statement, so one snapshot: the side likelier to be small is counted up to
    `probe_rows[0]`, then, if it has more, the other up to `probe_rows[1]`; a side is
    counted whole only when both are larger, and each database evaluates a CASE branch's subquery only
    when the branch is taken."""
    counted, rest = _split_counted(spec)
    rest_left_out = complement(rest)
    if rest_left_out is None:
        return None
    violations = Violations()
    matched_where = where
    rest_where = compile_filter(rest, violations)
    left_out_where = compile_filter(rest_left_out, violations)
    counted_where: ColumnElement[bool] = true()
    if counted is not None:
        counted_where = compile_filter(counted, violations)
        if dialect == "sqlite" and fields_used(rest) <= _COVERING:
            # Both probes read the rest's index, which holds appId and status too:
            # SQLite would rather take an app's index and look up each of its requests
            # in the table (1.4 s for `email startsWith AND appId` at 1M).
            counted_where = unindexed(counted_where)
            matched_where = and_(counted_where, rest_where)
        left_out_where = and_(counted_where, left_out_where)
    base = counters_statement(counted)
    if violations or base is None:  # e.g. nested deeper than a filter may be
        return None
    sides = [matched_where, left_out_where]
    if _finds_few(rest_left_out):  # `id ne x`: x is one request, its side many
        sides.reverse()
    first_rows, second_rows = probe_rows
    first, second = (
        matches_probe(side, rows).subquery()
        for side, rows in zip(sides, (first_rows, second_rows), strict=True)
    )
    (first_count,), (second_count,) = first.c, second.c

    def total(side: ColumnElement[bool], count: Any) -> Any:
        return count if side is matched_where else base.scalar_subquery() - count

    otherwise = (
        select(
            case(
                (second_count < second_rows, total(sides[1], second_count)),
                else_=_count_smaller_side(
                    base, counted_where, rest_where, matched_where, left_out_where
                ),
            )
        )
        .select_from(second)
        .scalar_subquery()
    )
    return select(
        case(
            (first_count < first_rows, total(sides[0], first_count)),
            else_=otherwise,
        )
    ).select_from(first)


def _count_smaller_side(
    base: Any,
    counted_where: ColumnElement[bool],
    rest_where: ColumnElement[bool],
    matched_where: ColumnElement[bool],
    left_out_where: ColumnElement[bool],
) -> Any:
    """Every match counted, or the counted part less every request left out: whichever
    side SAMPLE_ROWS of the counted part's requests say is the smaller. Exact either
    way; the sample only picks the cheaper count. It is the newest requests (the date
    index walked, the counted part checked on each), not the first of an index of the
    filtered field, which would hold the requests it matches, or its NULLs, first."""
    sample = (
        select(case((rest_where, 1), else_=0).label("hit"))
        .select_from(counted_from(and_(counted_where, rest_where)))
        .where(unindexed(counted_where))
        .order_by(_REQUESTS.c.created_date.desc(), _REQUESTS.c.id.desc())
        .limit(SAMPLE_ROWS)
        .subquery()
    )
    share = select(func.coalesce(func.avg(literal_column("hit")), 0)).select_from(
        sample
    )
    return case(
        (
            share.scalar_subquery() > COUNT_COMPLEMENT_ABOVE,
            base.scalar_subquery() - every_match(left_out_where).scalar_subquery(),
        ),
        else_=every_match(matched_where).scalar_subquery(),
    )


def _finds_few(spec: RequestFilter) -> bool:
    """Whether `spec` matches only requests of values it names (`eq`, `in`): few, so
    its side is probed first (the other side's probe would count PROBE_ROWS)."""
    if any(condition.operator in _NAMED for condition in spec.conditions):
        return True
    if any(_finds_few(part) for part in spec.and_ or ()):
        return True
    return bool(spec.or_) and all(_finds_few(part) for part in spec.or_ or ())


async def _probe_rows(
    store: Store, spec: RequestFilter | None, built: Built
) -> tuple[int, int]:
    """Both probes' sizes for `spec` (see PROBE_SHARE), from the counters' count of the
    requests its counted part matches (all of them for none)."""
    within = built.get(
        ("counted part", store.dialect),
        lambda: _or_nothing(counters_statement(_split_counted(spec)[0])),
    )
    if within is _NOTHING_COUNTED:
        return PROBE_ROWS, SECOND_PROBE_ROWS
    share = max(PROBE_AT_LEAST, int(await store.scalar(within) or 0) // PROBE_SHARE)
    return min(PROBE_ROWS, share), min(SECOND_PROBE_ROWS, share)


async def count_matching(
    store: Store,
    spec: RequestFilter | None,
    where: ColumnElement[bool],
    built: Built | None = None,
) -> int:
    """Every request the checked filter `spec` matches; `where` is its compiled form.
    `built` keeps the statements for the same query again (built_statements.py)."""
    built = Built() if built is None else built
    statement = built.get(("count", store.dialect), lambda: _from_counters(spec))
    if statement is _NOTHING_COUNTED:
        probe_rows = await _probe_rows(store, spec, built)
        statement = built.get(
            ("count", store.dialect, probe_rows),
            lambda: _broad_or_every(spec, where, store.dialect, probe_rows),
        )
    return int(await store.scalar(statement) or 0)


# Kept for a filter whose count the counters cannot give (None is never kept).
_NOTHING_COUNTED = literal(None)


def _or_nothing(statement: Any | None) -> Any:
    return _NOTHING_COUNTED if statement is None else statement


def _from_counters(spec: RequestFilter | None) -> Any:
    """totalCount of `spec` from the counters alone, or _NOTHING_COUNTED."""
    statement = counters_statement(spec)
    if statement is None:
        statement = url_counters_statement(*_split_counted(spec))
    return _or_nothing(statement)


def _broad_or_every(
    spec: RequestFilter | None,
    where: ColumnElement[bool],
    dialect: str,
    probe_rows: tuple[int, int],
) -> Any:
    """The count of `spec` from its counted part and probes, or of every match."""
    statement = _broad_count(spec, where, dialect, probe_rows)
    return every_match(where) if statement is None else statement
