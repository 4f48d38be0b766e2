"""A request filter decided for one class of requests: what it leaves on the catalog
reference (app/services/request_totals.py sums counters by it).

The counters tell requests apart by *class*: status as callers see it, and autoNotified
null, false or true. For one class, a filter reading only appId, catalogItemId, status
and autoNotified is a condition on the catalog reference alone: its status and
autoNotified conditions are decided by the rules of app/services/filter_match.py (the
filter in Python), its appId and catalogItemId conditions are left as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import cast

from app.models import RequestStatus
from app.services.demand_statements import RequestClass
from app.services.filter_match import matches
from app.services.request_filters import (
    OPPOSITE_OPERATORS,
    Condition,
    FilterField,
    Operator,
    RequestFilter,
)
from app.services.request_view import RequestRecord

APP, ITEM = FilterField.APP_ID, FilterField.CATALOG_ITEM_ID
COUNTED_FIELDS = frozenset({APP, ITEM, FilterField.STATUS, FilterField.AUTO_NOTIFIED})
CLASSES = tuple(
    RequestClass(status.value, auto_notified)
    for status in RequestStatus
    for auto_notified in (None, False, True)
)


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Left, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Left, ...]


@dataclass(frozen=True)
class NoneOf:
    part: Left


# What a filter leaves for a class: TRUE, FALSE, or a condition on appId and
# catalogItemId. Hashable, so that classes left the same are summed once.
Left = bool | Condition | AllOf | AnyOf | NoneOf


def all_of(parts: Iterable[Left]) -> Left:
    kept: list[Left] = []
    for part in parts:
        if part is False:
            return False
        for each in part.parts if isinstance(part, AllOf) else (part,):
            if each is not True and each not in kept:
                kept.append(each)
    return True if not kept else kept[0] if len(kept) == 1 else AllOf(tuple(kept))


def any_of(parts: Iterable[Left]) -> Left:
    kept: list[Left] = []
    for part in parts:
        if part is True:
            return True
        for each in part.parts if isinstance(part, AnyOf) else (part,):
            if each is not False and each not in kept:
                kept.append(each)
    return False if not kept else kept[0] if len(kept) == 1 else AnyOf(tuple(kept))


# A condition's opposite where the counters read it as one (a prefix's stays NOT(...)).
_OPPOSITES = {
    operator: opposite
    for operator, opposite in OPPOSITE_OPERATORS.items()
    if Operator.STARTS_WITH not in (operator, opposite)
}


def negated(part: Left) -> Left:
    if isinstance(part, bool):
        return not part
    # appId and catalogItemId are never null: each operator's opposite is exact, and an
    # index serves it (PostgreSQL uses none for NOT (x IS DISTINCT FROM v)).
    if isinstance(part, Condition) and part.operator in _OPPOSITES:
        return dataclasses.replace(part, operator=_OPPOSITES[part.operator])
    return part.part if isinstance(part, NoneOf) else NoneOf(part)


def _decided(condition: Condition, request_class: RequestClass) -> Left:
    """The condition on a request of the class: TRUE or FALSE unless it reads the item."""
    if condition.field in (APP, ITEM):
        if condition.operator is Operator.EXISTS:
            return bool(condition.value)  # a request always has both
        if condition.operator is Operator.STARTS_WITH and condition.value == "":
            return True  # not a range of the folded index worth reading
        return condition
    # Only status and autoNotified are read: a stand-in that has nothing else.
    request = cast(RequestRecord, SimpleNamespace(**request_class._asdict()))
    return matches(RequestFilter(conditions=(condition,)), request)


def left_for(spec: RequestFilter, request_class: RequestClass) -> Left:
    """What the filter asks of the item (or app) of a request of `request_class`."""
    parts: list[Left] = [_decided(c, request_class) for c in spec.conditions]
    if spec.and_ is not None:
        parts.append(all_of(left_for(part, request_class) for part in spec.and_))
    if spec.or_ is not None:
        parts.append(any_of(left_for(part, request_class) for part in spec.or_))
    if spec.not_ is not None:
        parts.append(negated(left_for(spec.not_, request_class)))
    return all_of(parts)


def reads_item(left: Left) -> bool:
    if isinstance(left, bool):
        return False
    if isinstance(left, Condition):
        return left.field is ITEM
    if isinstance(left, NoneOf):
        return reads_item(left.part)
    return any(reads_item(part) for part in left.parts)


def split(left: Left) -> tuple[Left, Left]:
    """`left` as (what it asks of the app) AND (what it asks of the item)."""
    parts = left.parts if isinstance(left, AllOf) else (left,)
    return (
        all_of(part for part in parts if not reads_item(part)),
        all_of(part for part in parts if reads_item(part)),
    )


_FOUND_BY_INDEX = {Operator.EQ, Operator.IN, Operator.STARTS_WITH}
_LEFT_OUT_BY_INDEX = {Operator.NE, Operator.NIN}
LOWER_BOUNDS = {Operator.GT, Operator.GTE}
_RANGES = {*LOWER_BOUNDS, Operator.LT, Operator.LTE}


def narrow(left: Left, negate: bool = False) -> bool:
    """Whether an index of the items finds those where `left` holds (or, `negate`,
    where it does not) without reading most of them."""
    if isinstance(left, bool):
        return False
    if isinstance(left, Condition):
        found = _LEFT_OUT_BY_INDEX if negate else _FOUND_BY_INDEX
        return left.field is ITEM and left.operator in found
    if isinstance(left, NoneOf):
        return narrow(left.part, not negate)
    # NOT (a AND b) is (NOT a) OR (NOT b): narrow when every part is.
    every = isinstance(left, AnyOf) != negate
    parts = (narrow(part, negate) for part in left.parts)
    return all(parts) if every else any(parts)


def item_ranges(of_item: Left) -> list[Condition] | None:
    """The catalogItemId ranges (of non-empty bounds) `of_item` AND-s, or None when it
    is not only those."""
    parts = of_item.parts if isinstance(of_item, AllOf) else (of_item,)
    ranges = [
        part
        for part in parts
        if isinstance(part, Condition) and part.operator in _RANGES and part.value
    ]
    return ranges if len(ranges) == len(parts) else None
