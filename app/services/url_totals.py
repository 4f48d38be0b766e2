"""totalCount of itemUrl conditions (and-ed with appId, status and autoNotified) from
the counters per itemUrl (item_url_demand, kept by app/services/url_demand.py).

Its rows hold the requests that have an itemUrl, one row per URL and app, so a range of
URLs is one range of the table however many requests it holds. The requests without an
itemUrl are counted too when every condition holds for a missing one (`ne`, `nin`,
`exists false`): the total is then the counted part's requests (request_totals.py) less
the URLs' that fail a condition.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, and_, literal, or_, select

from app.models import ItemUrlDemand, table_of
from app.services.demand_statements import RequestClass
from app.services.filter_complement import conjuncts
from app.services.request_classes import CLASSES, Left, left_for, reads_item
from app.services.request_filters import (
    Condition,
    FilterField,
    Operator,
    RequestFilter,
    compile_condition,
    fold_ascii,
)
from app.services.request_totals import counters_statement, summed
from app.services.text_prefixes import outside_prefix_range, prefix_range

_URLS = table_of(ItemUrlDemand)
# Operators that hold for a request without an itemUrl (see request_filters._condition),
# and what holds for exactly the other URLs.
_MATCH_MISSING = {
    Operator.NE: Operator.EQ,
    Operator.NIN: Operator.IN,
    Operator.NOT_STARTS_WITH: Operator.STARTS_WITH,
}


def _url_conditions(spec: RequestFilter) -> list[Condition] | None:
    """The itemUrl conditions `spec` AND-s together; None if it holds anything else (an
    OR, a NOT, another field)."""
    found: list[Condition] = []
    for unit in conjuncts(spec):
        if unit.or_ is not None or unit.not_ is not None:
            return None
        if unit.and_ is not None:
            inner = _url_conditions(RequestFilter(and_=unit.and_))
            if inner is None:
                return None
            found += inner
        if any(
            condition.field is not FilterField.ITEM_URL for condition in unit.conditions
        ):
            return None
        found += unit.conditions
    return found


def _left_out_urls(condition: Condition) -> Condition | None:
    """The condition a URL meets where `condition` does not, if `condition` holds for a
    missing itemUrl (`ne`, `nin`, `exists false`); else None."""
    if condition.operator is Operator.EXISTS:
        return replace(condition, value=True) if condition.value is False else None
    opposite = _MATCH_MISSING.get(condition.operator)
    return None if opposite is None else replace(condition, operator=opposite)


def _on_urls(condition: Condition) -> ColumnElement[bool]:
    """`condition` on item_url_demand's URLs (startsWith on their folded copy)."""
    if condition.operator is Operator.STARTS_WITH:
        return prefix_range(_URLS.c.item_url_folded, fold_ascii(condition.value))
    if condition.operator is Operator.NOT_STARTS_WITH:
        return outside_prefix_range(
            _URLS.c.item_url_folded, fold_ascii(condition.value)
        )
    return compile_condition(condition, _URLS.c.item_url)


def url_counters_statement(counted: RequestFilter | None, rest: RequestFilter) -> Any:
    """SELECT totalCount of `counted AND rest` from the counters, where `rest` is only
    itemUrl conditions and `counted` reads no catalogItemId; else None."""
    conditions = _url_conditions(rest)
    if not conditions:
        return None
    groups: dict[Left, list[RequestClass]] = {}
    for request_class in CLASSES:
        left = left_for(counted or RequestFilter(), request_class)
        if reads_item(left):
            return None  # item_url_demand knows no item
        if left is not False:
            groups.setdefault(left, []).append(request_class)
    if not groups:
        return select(literal(0))
    left_out = [_left_out_urls(condition) for condition in conditions]
    if None in left_out:
        return select(summed(_URLS, groups, [and_(*(_on_urls(c) for c in conditions))]))
    # Every condition holds for a missing itemUrl: the counted part's requests less the
    # URLs that fail one (`ne x`: less the requests of x, one row).
    base = counters_statement(counted)
    if base is None:
        return None
    failing = or_(*(_on_urls(c) for c in left_out if c is not None))
    return select(base.scalar_subquery() - summed(_URLS, groups, [failing]))
