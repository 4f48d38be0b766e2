"""A filter's terms as indexes see them, for the page planner (request_plans.py).

A compiled filter is an AND of terms. An index serves some of them as one range: both
bounds of a range on one expression, or one value each of the columns it starts with
(`appId = a AND catalogItemId = i`). Counting, or reading, through such a range meets
only the rows it holds, where a bound or a column alone may meet most of the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Index, and_
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import (
    BinaryExpression,
    BindParameter,
    BooleanClauseList,
    Grouping,
)

from app.models import NotificationRequest, table_of
from app.services.request_sort import SortKey, column_of

REQUESTS = table_of(NotificationRequest)
_RANGES = {operators.gt, operators.ge, operators.lt, operators.le}
# Operators naming one value of a column: an index holds its rows as one range.
_ONE_VALUE = {operators.eq, operators.is_}


@dataclass(frozen=True)
class Term:
    """What one index range can serve: `condition`, the AND of the filter's `parts`."""

    condition: ColumnElement[bool]
    parts: tuple[ColumnElement[bool], ...]
    # The columns it fixes to one value each, in the order of an index starting so.
    fixed: tuple[str, ...] = ()


def flat_terms(condition: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    if (
        isinstance(condition, BooleanClauseList)
        and condition.operator is operators.and_
    ):
        return list(condition.clauses)  # SQLAlchemy keeps nested ANDs flat
    return [condition]


def _one_value_column(part: ColumnElement[bool]) -> str | None:
    """The request column `part` fixes to one value (`x = v`, `x IS NULL`, `x IN (v)`:
    both databases read that as `=`), if any."""
    if not isinstance(part, BinaryExpression):
        return None
    one_listed = (
        part.operator is operators.in_op
        and isinstance(part.right, BindParameter)
        and isinstance(part.right.value, (list, tuple))
        and len(part.right.value) == 1
    )
    if part.operator not in _ONE_VALUE and not one_listed:
        return None
    column = part.left
    if isinstance(column, Column) and column.table is REQUESTS:
        return str(column.name)
    return None


def no_queued_notification(part: ColumnElement[bool]) -> bool:
    """Whether `part` says a request has no queued notification (most have none): no
    index finds those, and counting them reads the whole table."""
    return (
        isinstance(part, BinaryExpression)
        and part.operator is operators.is_
        and isinstance(part.left, Column)
        and part.left.table is not REQUESTS
    )


def has_queued_notification(part: ColumnElement[bool]) -> bool:
    """Whether `part` says a request has a queued notification (PROCESSING ones)."""
    return (
        isinstance(part, BinaryExpression)
        and part.operator is operators.is_not
        and isinstance(part.left, Column)
        and part.left.table is not REQUESTS
    )


def _index_columns(index: Index) -> list[str | None]:
    return [
        str(each.name) if isinstance(each, Column) else None
        for each in index.expressions
    ]


def indexes(dialect: str) -> list[Index]:
    """The requests' indexes made on `dialect` (see models.only_on)."""
    return [
        index
        for index in REQUESTS.indexes
        if index.info.get("dialect", dialect) == dialect
    ]


def terms(condition: ColumnElement[bool], dialect: str) -> list[Term]:
    """Every term an index range could serve: each part of the AND alone (but the
    bounds of one range together, never apart), and one value each of the columns an
    index starts with."""
    parts = flat_terms(condition)
    one_value = {
        name: part for part in parts if (name := _one_value_column(part)) is not None
    }
    ranges: list[list[Any]] = []
    for part in parts:
        if isinstance(part, BinaryExpression) and part.operator in _RANGES:
            same = next((r for r in ranges if r[0].left.compare(part.left)), None)
            if same is None:
                ranges.append([part])
            else:
                same.append(part)
    together = [bounds for bounds in ranges if len(bounds) > 1]
    # A bound alone never meets fewer rows than its range: only the range is probed.
    bounded = {id(bound) for bounds in together for bound in bounds}
    found = [
        Term(part, (part,), (name,) if part is one_value.get(name) else ())
        for part in parts
        if not no_queued_notification(part) and id(part) not in bounded
        for name in [_one_value_column(part) or ""]
    ]
    found += [Term(and_(*bounds), tuple(bounds)) for bounds in together]
    for index in indexes(dialect):
        prefix: list[str] = []
        for name in _index_columns(index):
            if name is None or name not in one_value:
                break
            prefix.append(name)
        if len(prefix) > 1 and not any(term.fixed == tuple(prefix) for term in found):
            chosen = tuple(one_value[name] for name in prefix)
            found.append(Term(and_(*chosen), chosen, tuple(prefix)))
    return found


def ranged_expression(term: Term) -> ColumnElement[Any] | None:
    """The one expression every comparison of `term` bounds (`x >= a AND x < b`, a
    startsWith's grouped range), or None: a term of other comparisons."""
    comparisons: list[Any] = []
    pending: list[Any] = list(term.parts)
    while pending:
        part = pending.pop()
        if isinstance(part, Grouping):
            pending.append(part.element)
        elif isinstance(part, BooleanClauseList) and part.operator is operators.and_:
            pending.extend(part.clauses)
        elif isinstance(part, BinaryExpression) and part.operator in _RANGES:
            comparisons.append(part)
        else:
            return None
    first: ColumnElement[Any] | None = comparisons[0].left if comparisons else None
    if first is None or not all(each.left.compare(first) for each in comparisons):
        return None
    return first


def in_sort_order(term: Term, keys: Sequence[SortKey], dialect: str) -> bool:
    """Whether an index holds the rows meeting `term` in the order of `keys`: it starts
    with the columns `term` fixes, then the keys' columns."""
    if not term.fixed or len({key.order for key in keys}) > 1:
        return False  # no range of one value each, or an order of mixed directions
    sorted_by = [column_of(key.field) for key in keys]
    if not all(
        isinstance(column, Column) and column.table is REQUESTS and not column.nullable
        for column in sorted_by
    ):
        return False  # the derived status, or NULLs placed by hand on PostgreSQL
    wanted = [*term.fixed, *(str(column.name) for column in sorted_by)]
    return any(
        _index_columns(index)[: len(wanted)] == wanted for index in indexes(dialect)
    )
