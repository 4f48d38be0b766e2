"""totalCount: from counters when the filter reads only the catalog reference, status
and autoNotified; else a count of the requests it matches.

app/services/demand.py keeps, in the transaction of every change, each item's requests
per *class* (status as callers see it, and autoNotified null, false or true) in
`catalog_item_demand`, and each app's in `request_totals`. For one class such a filter
is a condition on the item alone: its status and autoNotified conditions are decided for
the class by the rules of app/services/filter_match.py (the filter in Python), and its
appId and catalogItemId conditions are left, compiled as compile_filter compiles them
but on the counters' own copies of those columns. totalCount is then one SELECT adding
up, class by class, the counters of the apps whose condition holds, or, when a
catalogItemId condition is left, of the items: those an index finds where it can (or
all less those it finds where the condition does not hold), a range by the apps'
counters of whole initials and the items of its bounds' initials, else one pass over
the items.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    select,
)

from app.models import CatalogItemDemand, RequestStatus, RequestTotals, table_of
from app.services.demand_statements import AUTO_COUNTS, STATUS_COUNTS, RequestClass
from app.services.filter_match import fields_used, matches
from app.services.request_filters import (
    Condition,
    FilterField,
    Operator,
    RequestFilter,
    compile_condition,
    fold_ascii,
)
from app.services.request_view import REQUEST_VIEW, RequestRecord
from app.storage import Store

_DEMAND = table_of(CatalogItemDemand)
_TOTALS = table_of(RequestTotals)
_APP, _ITEM = FilterField.APP_ID, FilterField.CATALOG_ITEM_ID
# The fields the counters are kept by, and their columns there.
_KEY_COLUMNS = {_APP: "app_id", _ITEM: "catalog_item_id"}
COUNTED_FIELDS = frozenset({_APP, _ITEM, FilterField.STATUS, FilterField.AUTO_NOTIFIED})
CLASSES = tuple(
    RequestClass(status.value, auto_notified)
    for status in RequestStatus
    for auto_notified in (None, False, True)
)

# ------------------------------------------------------------- what is left of a filter


@dataclass(frozen=True)
class _All:
    parts: tuple[_Left, ...]


@dataclass(frozen=True)
class _Any:
    parts: tuple[_Left, ...]


@dataclass(frozen=True)
class _Not:
    part: _Left


# A filter with a class's status and autoNotified decided: TRUE, FALSE, or a condition
# on appId and catalogItemId. Hashable, so that classes left the same are summed once.
_Left = bool | Condition | _All | _Any | _Not


def _all(parts: Iterable[_Left]) -> _Left:
    kept: list[_Left] = []
    for part in parts:
        if part is False:
            return False
        if part is not True and part not in kept:
            kept.append(part)
    return True if not kept else kept[0] if len(kept) == 1 else _All(tuple(kept))


def _any(parts: Iterable[_Left]) -> _Left:
    kept: list[_Left] = []
    for part in parts:
        if part is True:
            return True
        if part is not False and part not in kept:
            kept.append(part)
    return False if not kept else kept[0] if len(kept) == 1 else _Any(tuple(kept))


# Each operator's opposite on a column that is never null, as an index can serve it
# (PostgreSQL uses none for NOT (x IS DISTINCT FROM v)).
_OPPOSITES = {
    Operator.EQ: Operator.NE,
    Operator.NE: Operator.EQ,
    Operator.IN: Operator.NIN,
    Operator.NIN: Operator.IN,
}


def _negated(part: _Left) -> _Left:
    if isinstance(part, bool):
        return not part
    if isinstance(part, Condition) and part.operator in _OPPOSITES:
        return dataclasses.replace(part, operator=_OPPOSITES[part.operator])
    return part.part if isinstance(part, _Not) else _Not(part)


def _decided(condition: Condition, request_class: RequestClass) -> _Left:
    """The condition on a request of the class: TRUE or FALSE unless it reads the item."""
    if condition.field in _KEY_COLUMNS:
        if condition.operator is Operator.EXISTS:
            return bool(condition.value)  # a request always has both
        if condition.operator is Operator.STARTS_WITH and condition.value == "":
            return True  # not a range of the folded index worth reading
        return condition
    # Only status and autoNotified are read: a stand-in that has nothing else.
    request = cast(RequestRecord, SimpleNamespace(**request_class._asdict()))
    return matches(RequestFilter(conditions=(condition,)), request)


def left_for(spec: RequestFilter, request_class: RequestClass) -> _Left:
    """What the filter asks of the item (or app) of a request of `request_class`."""
    parts: list[_Left] = [_decided(c, request_class) for c in spec.conditions]
    if spec.and_ is not None:
        parts.append(_all(left_for(part, request_class) for part in spec.and_))
    if spec.or_ is not None:
        parts.append(_any(left_for(part, request_class) for part in spec.or_))
    if spec.not_ is not None:
        parts.append(_negated(left_for(spec.not_, request_class)))
    return _all(parts)


def _reads_item(left: _Left) -> bool:
    if isinstance(left, bool):
        return False
    if isinstance(left, Condition):
        return left.field is _ITEM
    if isinstance(left, _Not):
        return _reads_item(left.part)
    return any(_reads_item(part) for part in left.parts)


_FOUND_BY_INDEX = {Operator.EQ, Operator.IN, Operator.STARTS_WITH}
_LOWER = {Operator.GT, Operator.GTE}
_RANGES = {*_LOWER, Operator.LT, Operator.LTE}
# appId conditions no cheaper decided per app than per item.
_CHEAP = {Operator.EQ, Operator.IN}
_LEFT_OUT_BY_INDEX = {Operator.NE, Operator.NIN}


def _narrow(left: _Left, negated: bool = False) -> bool:
    """Whether an index of the items finds those where `left` holds (or, `negated`,
    where it does not) without reading most of them."""
    if isinstance(left, bool):
        return False
    if isinstance(left, Condition):
        found = _LEFT_OUT_BY_INDEX if negated else _FOUND_BY_INDEX
        return left.field is _ITEM and left.operator in found
    if isinstance(left, _Not):
        return _narrow(left.part, not negated)
    # NOT (a AND b) is (NOT a) OR (NOT b): narrow when every part is.
    every = isinstance(left, _Any) != negated
    parts = (_narrow(part, negated) for part in left.parts)
    return all(parts) if every else any(parts)


# ---------------------------------------------------------------------------------- SQL


def _after_prefix(prefix: str) -> str | None:
    """The least text after every text starting with `prefix` (code point order), or
    None when there is none. Surrogates are skipped: no stored text holds one."""
    chars = list(prefix)
    while chars:
        following = ord(chars.pop()) + 1
        if following <= 0x10FFFF:
            following = 0xE000 if 0xD800 <= following <= 0xDFFF else following
            return "".join(chars) + chr(following)
    return None


def _starts_with(folded: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """startsWith as compile_filter has it (A-Z folded on both sides), as a range of the
    folded column: one range of its index. Both databases compare it by code point."""
    start = fold_ascii(prefix)
    end = _after_prefix(start)
    return folded >= start if end is None else and_(folded >= start, folded < end)


def _where(left: _Left, table: Table) -> ColumnElement[bool]:
    if isinstance(left, bool):
        raise ValueError("decided conditions are summed without a WHERE")
    if isinstance(left, Condition):
        if left.field is _ITEM and left.operator is Operator.STARTS_WITH:
            return _starts_with(table.c.catalog_item_id_folded, left.value)
        if left.field is _APP and table is _DEMAND and left.operator not in _CHEAP:
            # Decided once per app rather than once per item (request_totals has a
            # row for every app with requests counted).
            apps = select(_TOTALS.c.app_id).where(_where(left, _TOTALS))
            return table.c.app_id.in_(apps)
        return compile_condition(left, table.c[_KEY_COLUMNS[left.field]])
    if isinstance(left, _Not):
        return not_(_where(left.part, table))
    parts = [_where(part, table) for part in left.parts]
    return and_(*parts) if isinstance(left, _All) else or_(*parts)


def _counted(table: Table, classes: Iterable[RequestClass]) -> ColumnElement[int]:
    """The requests of these classes a row of `table` counts."""
    autos: dict[str, set[bool | None]] = {}
    for request_class in classes:
        autos.setdefault(request_class.status, set()).add(request_class.auto_notified)
    terms: list[ColumnElement[int]] = []
    for status, wanted in autos.items():
        counts: dict[bool | None, ColumnElement[int]] = {
            None: table.c[STATUS_COUNTS[status]],
            True: table.c[AUTO_COUNTS[(status, True)]],
            False: table.c[AUTO_COUNTS[(status, False)]],
        }
        if None in wanted:
            # Those with autoNotified null are the status's count less the others.
            term = counts[None]
            for value in {True, False} - wanted:
                term = term - counts[value]
            terms.append(term)
        else:
            terms.extend(counts[value] for value in wanted)
    return functools.reduce(operator.add, terms)


_Groups = dict[_Left, list[RequestClass]]


def _sum(
    table: Table, groups: _Groups, also: Sequence[ColumnElement[bool]] = ()
) -> ColumnElement[int]:
    """The sum over `table`'s rows of each group's counters where its condition holds
    (rows where none does are left out; a single group's rows where `also` holds too):
    a scalar subquery, 0 for no row."""
    if len(groups) == 1:
        ((left, classes),) = groups.items()
        statement = select(func.sum(_counted(table, classes))).where(*also)
        if left is not True:
            statement = statement.where(_where(left, table))
    else:
        terms = [
            _counted(table, classes)
            if left is True
            else case((_where(left, table), _counted(table, classes)), else_=0)
            for left, classes in groups.items()
        ]
        statement = select(func.sum(functools.reduce(operator.add, terms)))
        either = _any(groups)
        if _narrow(either):  # else each row is read anyway: each CASE decides it
            statement = statement.where(_where(either, table))
    return func.coalesce(statement.scalar_subquery(), 0)


def _split(left: _Left) -> tuple[_Left, _Left]:
    """`left` as (what it asks of the app) AND (what it asks of the item)."""
    parts = left.parts if isinstance(left, _All) else (left,)
    return (
        _all(part for part in parts if not _reads_item(part)),
        _all(part for part in parts if _reads_item(part)),
    )


def _ranges(of_item: _Left) -> list[Condition] | None:
    """The catalogItemId ranges (of non-empty bounds) `of_item` AND-s, or None when it
    is not only those."""
    parts = of_item.parts if isinstance(of_item, _All) else (of_item,)
    ranges = [
        part
        for part in parts
        if isinstance(part, Condition) and part.operator in _RANGES and part.value
    ]
    return ranges if len(ranges) == len(parts) else None


def _by_initial(
    of_app: _Left, ranges: list[Condition], classes: list[RequestClass]
) -> list[ColumnElement[int]]:
    """A catalogItemId range: the items whose first character lies strictly inside
    every range from request_totals, each of those starting with a bound's first
    character from catalog_item_demand (a short range of its key)."""
    initial, item = _TOTALS.c.catalog_item_initial, _DEMAND.c.catalog_item_id
    inside = [
        initial > bound.value[0]
        if bound.operator in _LOWER
        else initial < bound.value[0]
        for bound in ranges
    ]
    edges = []
    for bound in ranges:
        after = _after_prefix(bound.value[0])
        first = item >= bound.value[0]
        edges.append(first if after is None else and_(first, item < after))
    within = _all([of_app, *ranges])
    return [
        _sum(_TOTALS, {of_app: classes}, inside),
        _sum(_DEMAND, {within: classes}, [or_(*edges)]),
    ]


def _item_sums(groups: _Groups) -> list[ColumnElement[int]]:
    """The groups whose condition reads the item: each one an index finds, by itself;
    each one it finds the complement of (within the apps it asks for), as those apps'
    counters less that complement's; ranges by the items' first character; all others
    in one pass over the items."""
    sums: list[ColumnElement[int]] = []
    passed: _Groups = {}
    for left, classes in groups.items():
        of_app, of_item = _split(left)
        if _narrow(left):
            sums.append(_sum(_DEMAND, {left: classes}))
        elif _narrow(of_item, negated=True):
            sums.append(_sum(_TOTALS, {of_app: classes}))
            left_out = _all([of_app, _negated(of_item)])
            sums.append(-_sum(_DEMAND, {left_out: classes}))
        elif (ranges := _ranges(of_item)) is not None:
            sums.extend(_by_initial(of_app, ranges, classes))
        else:
            passed[left] = classes
    if passed:
        sums.append(_sum(_DEMAND, passed))
    return sums


def counters_statement(spec: RequestFilter | None) -> Any | None:
    """SELECT totalCount of `spec` from the counters; None if it reads other fields."""
    if fields_used(spec) - COUNTED_FIELDS:
        return None
    per_app: _Groups = {}
    per_item: _Groups = {}
    for request_class in CLASSES:
        left = left_for(spec or RequestFilter(), request_class)
        if left is not False:
            groups = per_item if _reads_item(left) else per_app
            groups.setdefault(left, []).append(request_class)
    sums = _item_sums(per_item)
    if per_app:
        sums.append(_sum(_TOTALS, per_app))
    return select(functools.reduce(operator.add, sums) if sums else literal(0))


async def count_matching(
    store: Store, spec: RequestFilter | None, where: ColumnElement[bool]
) -> int:
    """Every request the checked filter `spec` matches; `where` is its compiled form."""
    statement = counters_statement(spec)
    if statement is None:
        statement = select(func.count()).select_from(REQUEST_VIEW).where(where)
    return int(await store.scalar(statement) or 0)
