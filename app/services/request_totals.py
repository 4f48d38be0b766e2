"""totalCount from counters, when the filter reads only the catalog reference, status
and autoNotified (a filter on other fields: app/services/broad_counts.py).

app/services/demand.py keeps, in the transaction of every change, each item's requests
per class (status as callers see it, and autoNotified null, false or true) in
`catalog_item_demand`, and the same per app and first character of the item id in
`request_totals`. For each class the filter leaves a condition on the catalog
reference (app/services/request_classes.py), compiled as compile_filter compiles it but
on the counters' own copies of those columns. totalCount is then one SELECT adding up,
class by class, the counters of the apps whose condition holds, or, when a catalogItemId
condition is left, of the items: by an index, a complement, initials or inclusion and
exclusion where it can (`_sums_of`), else in one pass over the items.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

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

from app.models import CatalogItemDemand, RequestTotals, table_of
from app.services.demand_statements import AUTO_COUNTS, STATUS_COUNTS, RequestClass
from app.services.filter_match import fields_used
from app.services.request_classes import (
    APP,
    CLASSES,
    COUNTED_FIELDS,
    ITEM,
    LOWER_BOUNDS,
    AllOf,
    AnyOf,
    Left,
    NoneOf,
    all_of,
    any_of,
    item_ranges,
    left_for,
    narrow,
    negated,
    reads_item,
    split,
)
from app.services.request_filters import (
    Condition,
    Operator,
    RequestFilter,
    compile_condition,
    fold_ascii,
)
from app.services.text_prefixes import prefix_range

_DEMAND = table_of(CatalogItemDemand)
_TOTALS = table_of(RequestTotals)
# The fields the counters are kept by, and their columns there.
_KEY_COLUMNS = {APP: "app_id", ITEM: "catalog_item_id"}
# appId conditions no cheaper decided per app than per item.
_CHEAP = {Operator.EQ, Operator.IN}


def _where(left: Left, table: Table) -> ColumnElement[bool]:
    if isinstance(left, bool):
        raise ValueError("decided conditions are summed without a WHERE")
    if isinstance(left, Condition):
        if left.field is ITEM and left.operator is Operator.STARTS_WITH:
            return prefix_range(table.c.catalog_item_id_folded, fold_ascii(left.value))
        if left.field is APP and table is _DEMAND and left.operator not in _CHEAP:
            # Decided once per app rather than once per item (request_totals has a
            # row for every app with requests counted).
            apps = select(_TOTALS.c.app_id).where(_where(left, _TOTALS))
            return table.c.app_id.in_(apps)
        return compile_condition(left, table.c[_KEY_COLUMNS[left.field]])
    if isinstance(left, NoneOf):
        return not_(_where(left.part, table))
    parts = [_where(part, table) for part in left.parts]
    return and_(*parts) if isinstance(left, AllOf) else or_(*parts)


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


_Groups = dict[Left, list[RequestClass]]


def summed(
    table: Table, groups: _Groups, also: Sequence[ColumnElement[bool]] = ()
) -> ColumnElement[int]:
    """The sum over `table`'s rows (where `also` holds) of each group's counters where
    its condition holds (rows where none does are left out): a scalar subquery, 0 for
    no row. `table` is one of the counter tables keyed by app (and item, or itemUrl)."""
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
        statement = select(func.sum(functools.reduce(operator.add, terms))).where(*also)
        either = any_of(groups)
        if narrow(either):  # else each row is read anyway: each CASE decides it
            statement = statement.where(_where(either, table))
    return func.coalesce(statement.scalar_subquery(), 0)


def _by_initial(
    of_app: Left, ranges: list[Condition], classes: list[RequestClass]
) -> list[ColumnElement[int]]:
    """A catalogItemId range: the items whose first character lies strictly inside
    every range from request_totals, each of those starting with a bound's first
    character from catalog_item_demand (a short range of its key)."""
    initial, item = _TOTALS.c.catalog_item_initial, _DEMAND.c.catalog_item_id
    inside = [
        initial > bound.value[0]
        if bound.operator in LOWER_BOUNDS
        else initial < bound.value[0]
        for bound in ranges
    ]
    edges = [prefix_range(item, bound.value[0]) for bound in ranges]
    within = all_of([of_app, *ranges])
    return [
        summed(_TOTALS, {of_app: classes}, inside),
        summed(_DEMAND, {within: classes}, [or_(*edges)]),
    ]


# Most parts of an OR summed each by itself (the OR is then 2^parts - 1 sums), and
# most sums in one statement (a pass over the items costs less than more).
MAX_UNION = 3
MAX_SUMS = 40


def _sums_of(
    left: Left, classes: list[RequestClass]
) -> list[ColumnElement[int]] | None:
    """The sums that add up to the requests of `classes` whose item (or app) `left`
    holds for, none a pass over every item; None when only such a pass will do.

    An app's condition: its counters. One an index finds: those items. One whose
    complement it finds (within the apps it asks for): those apps less the complement.
    A range: the apps' counters of the initials inside it and the items of its bounds'
    initials. An app's condition AND (A OR B): (A + B - (A AND B)) within those apps,
    when each of those is one of the above.
    """
    if not reads_item(left):
        return [summed(_TOTALS, {left: classes})]
    of_app, of_item = split(left)
    if narrow(left):
        return [summed(_DEMAND, {left: classes})]
    if narrow(of_item, negate=True):
        left_out = all_of([of_app, negated(of_item)])
        return [
            summed(_TOTALS, {of_app: classes}),
            -summed(_DEMAND, {left_out: classes}),
        ]
    ranges = item_ranges(of_item)
    if ranges is not None:
        return _by_initial(of_app, ranges, classes)
    if isinstance(of_item, AnyOf) and len(of_item.parts) <= MAX_UNION:
        return _union(tuple(all_of([of_app, part]) for part in of_item.parts), classes)
    return None


def _union(
    parts: tuple[Left, ...], classes: list[RequestClass]
) -> list[ColumnElement[int]] | None:
    """Inclusion and exclusion: the sums of every conjunction of the parts, those of
    an even number of parts subtracted."""
    sums: list[ColumnElement[int]] = []
    for size in range(1, len(parts) + 1):
        for chosen in itertools.combinations(parts, size):
            both = all_of(chosen)
            found = [] if both is False else _sums_of(both, classes)
            if found is None:
                return None
            sums.extend(found if size % 2 else [-each for each in found])
    return sums


def _item_sums(groups: _Groups) -> list[ColumnElement[int]]:
    """The groups whose condition reads the item: each by `_sums_of` where it can, all
    others in one pass over the items."""
    sums: list[ColumnElement[int]] = []
    passed: _Groups = {}
    for left, classes in groups.items():
        found = _sums_of(left, classes)
        if found is None or len(sums) + len(found) > MAX_SUMS:
            passed[left] = classes
        else:
            sums.extend(found)
    if passed:
        sums.append(summed(_DEMAND, passed))
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
            groups = per_item if reads_item(left) else per_app
            groups.setdefault(left, []).append(request_class)
    sums = _item_sums(per_item)
    if per_app:
        sums.append(summed(_TOTALS, per_app))
    return select(functools.reduce(operator.add, sums) if sums else literal(0))
