"""Filters of the request query: a typed tree, checked and compiled to one SQL condition.

A `RequestFilter` is one filter object of the API in the domain's names: its conditions
(a field, an operator, a value) and its `and` / `or` / `not` parts, all AND-ed. Under a
`not` every comparison compiles to TRUE or FALSE, never NULL, and `ne` is never NULL, so
`not` and `ne` treat a null value as "not equal" the way people expect (elsewhere a NULL
drops the row as FALSE does). Violation paths are snake_case
(`filter.and[0].catalog_reference.app_id.starts_with`); the API layer renames them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, true

from app.models import NotificationRequest, RequestStatus, table_of
from app.services.request_view import status_in
from app.services.rules import Violations, check_id, normalize_email
from app.services.text_prefixes import (
    outside_prefix_range,
    outside_uuid_prefix_range,
    prefix_range,
    uuid_prefix_range,
)

MAX_FILTER_DEPTH = 8
MAX_FILTER_NODES = 200
MAX_LIST_VALUES = 1000

R = table_of(NotificationRequest).c


class FilterField(enum.Enum):
    """A filterable field; its value is its path below a filter object."""

    ID = "id"
    CONTACT_ID = "contact_id"
    STATUS = "status"
    AUTO_NOTIFIED = "auto_notified"
    CREATED_DATE = "created_date"
    ITEM_URL = "item_url"
    EMAIL = "email"
    APP_ID = "catalog_reference.app_id"
    CATALOG_ITEM_ID = "catalog_reference.catalog_item_id"
    CONFIRMED = "confirmed"


class Operator(enum.Enum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NIN = "nin"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    STARTS_WITH = "starts_with"
    EXISTS = "exists"
    # Only in complements (filter_complement.py): no filter input names it.
    NOT_STARTS_WITH = "not_starts_with"


# Each operator's opposite, as an index can serve it; on a nullable field a range's
# opposite also takes the nulls (filter_complement.py).
OPPOSITE_OPERATORS = {
    Operator.EQ: Operator.NE,
    Operator.NE: Operator.EQ,
    Operator.IN: Operator.NIN,
    Operator.NIN: Operator.IN,
    Operator.GT: Operator.LTE,
    Operator.LTE: Operator.GT,
    Operator.GTE: Operator.LT,
    Operator.LT: Operator.GTE,
    Operator.STARTS_WITH: Operator.NOT_STARTS_WITH,
    Operator.NOT_STARTS_WITH: Operator.STARTS_WITH,
}


@dataclass(frozen=True)
class Condition:
    """`field operator value`; `in` and `nin` take a tuple, `exists` a bool."""

    field: FilterField
    operator: Operator
    value: Any


@dataclass(frozen=True)
class RequestFilter:
    """One filter object: its conditions, and its `and`, `or` and `not` parts."""

    conditions: tuple[Condition, ...] = ()
    and_: tuple[RequestFilter, ...] | None = None
    or_: tuple[RequestFilter, ...] | None = None
    not_: RequestFilter | None = None


class _Kind(enum.Enum):
    """How a field's values are checked and compared."""

    ID = "id"
    EMAIL = "email"
    TEXT = "text"
    DATE = "date"
    BOOLEAN = "boolean"


_EQUALITY = {Operator.EQ, Operator.NE, Operator.IN, Operator.NIN}
_RANGES = {Operator.GT, Operator.GTE, Operator.LT, Operator.LTE}
_PREFIXES = {Operator.STARTS_WITH, Operator.NOT_STARTS_WITH}
_OPERATORS: dict[_Kind, set[Operator]] = {
    _Kind.ID: _EQUALITY | _PREFIXES | {Operator.EXISTS},
    _Kind.EMAIL: _EQUALITY | _RANGES | _PREFIXES | {Operator.EXISTS},
    _Kind.TEXT: _EQUALITY | _RANGES | _PREFIXES | {Operator.EXISTS},
    _Kind.DATE: {Operator.EQ, Operator.NE, Operator.EXISTS} | _RANGES,
    _Kind.BOOLEAN: {Operator.EQ, Operator.NE, Operator.EXISTS},
}
# Each field's column, its kind, and whether it may be NULL (STATUS is compiled apart).
_COLUMNS: dict[FilterField, tuple[ColumnElement[Any], _Kind, bool]] = {
    FilterField.ID: (R.id, _Kind.ID, False),
    FilterField.CONTACT_ID: (R.contact_id, _Kind.ID, False),
    FilterField.AUTO_NOTIFIED: (R.auto_notified, _Kind.BOOLEAN, True),
    FilterField.CREATED_DATE: (R.created_date, _Kind.DATE, False),
    FilterField.ITEM_URL: (R.item_url, _Kind.TEXT, True),
    FilterField.EMAIL: (R.email, _Kind.EMAIL, False),
    FilterField.APP_ID: (R.app_id, _Kind.TEXT, False),
    FilterField.CATALOG_ITEM_ID: (R.catalog_item_id, _Kind.TEXT, False),
    FilterField.CONFIRMED: (R.confirmed, _Kind.BOOLEAN, False),
}
# The fields a request may hold no value of.
NULLABLE_FIELDS = frozenset(f for f, (_, _, nullable) in _COLUMNS.items() if nullable)
_COMPARISONS = {
    Operator.GT: lambda column, value: column > value,
    Operator.GTE: lambda column, value: column >= value,
    Operator.LT: lambda column, value: column < value,
    Operator.LTE: lambda column, value: column <= value,
}

# startsWith ignores the case of A-Z only: SQL's lower() folds just those on SQLite and
# under PostgreSQL's "C" collation, and the prefix is folded the same way, so a prefix
# with other capitals (É) still matches itself.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_ascii(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _starts_with(
    column: ColumnElement[Any], kind: _Kind, prefix: str, *, outside: bool = False
) -> ColumnElement[bool]:
    """`column` starts with `prefix`, A-Z folded (or, `outside`, does not): as one index
    range, or the two around it (text_prefixes.py)."""
    if kind is _Kind.ID:
        of_uuid = outside_uuid_prefix_range if outside else uuid_prefix_range
        return of_uuid(column, fold_ascii(prefix))
    of_text = outside_prefix_range if outside else prefix_range
    if kind is _Kind.EMAIL:
        # Emails are stored normalised (lower case), so lower() would change nothing:
        # the email index serves the range as it is.
        return of_text(column, normalize_email(prefix))
    # lower() on the column only: on PostgreSQL a bound value's lower() would follow
    # the database's locale, not the column's "C" collation. The range is read from
    # the lower(column) index of app/models/requests.py.
    return of_text(func.lower(column), fold_ascii(prefix))


def _text(value: Any, path: str, violations: Violations) -> str | None:
    if not isinstance(value, str):
        violations.add(path, "must be a string")
        return None
    if "\x00" in value:
        # PostgreSQL cannot hold NUL in text, so no stored value has one: refused on
        # both databases alike.
        violations.add(path, "must not contain a NUL character")
        return None
    return value


def _date(value: Any, path: str, violations: Violations) -> datetime | None:
    """The instant, in UTC; a date without an offset is taken as UTC."""
    if not isinstance(value, datetime):
        violations.add(path, "must be a date-time")
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        violations.add(path, "must name an instant from year 1 to 9999 in UTC")
        return None


def _value(kind: _Kind, value: Any, path: str, violations: Violations) -> Any:
    """One comparison value in the form the column holds (None: refused)."""
    if kind is _Kind.ID:
        text = _text(value, path, violations)
        return None if text is None else check_id(text, path, violations)
    if kind is _Kind.EMAIL:
        text = _text(value, path, violations)
        return None if text is None else normalize_email(text)
    if kind is _Kind.TEXT:
        return _text(value, path, violations)
    if kind is _Kind.DATE:
        return _date(value, path, violations)
    if not isinstance(value, bool):
        violations.add(path, "must be true or false")
        return None
    return value


def _values(kind: _Kind, value: Any, path: str, violations: Violations) -> list[Any]:
    if not isinstance(value, (tuple, list)):
        violations.add(path, "must be a list")
        return []
    if len(value) > MAX_LIST_VALUES:
        violations.add(path, f"must hold at most {MAX_LIST_VALUES} values")
        return []
    checked = [
        _value(kind, item, f"{path}[{i}]", violations) for i, item in enumerate(value)
    ]
    return [item for item in checked if item is not None]


def _condition(
    condition: Condition,
    path: str,
    violations: Violations,
    column: ColumnElement[Any] | None = None,
    two_valued: bool = True,
) -> ColumnElement[bool]:
    """One condition on its field's column (or on `column`, which holds the same
    values); TRUE or FALSE even where the column is NULL, or, not `two_valued` (no NOT
    above it), NULL there where that means FALSE."""
    own, kind, nullable = _COLUMNS[condition.field]
    column = own if column is None else column
    operator, raw = condition.operator, condition.value
    if operator not in _OPERATORS[kind]:
        violations.add(path, "is not an operator of this field")
        return false()

    def known(clause: ColumnElement[bool]) -> ColumnElement[bool]:
        # "x = v AND x IS NOT NULL" is FALSE, not NULL, on a NULL row: NOT() then works.
        # Without a NOT above, NULL drops the row as FALSE does, and the IS NOT NULL
        # would have each match looked up in the table (`lower(x)`'s index lacks x).
        return and_(clause, column.is_not(None)) if nullable and two_valued else clause

    if operator is Operator.EXISTS:
        if not isinstance(raw, bool):
            violations.add(path, "must be true or false")
            return false()
        if raw and kind in (_Kind.TEXT, _Kind.EMAIL):
            # Every text is >= '' (by code point): the same rows as IS NOT NULL, but a
            # range, which planners read from the field's index (SQLite would rather
            # look each row of an appId up in the table).
            return column >= ""
        return column.is_not(None) if raw else column.is_(None)
    if operator in _PREFIXES:
        prefix = _text(raw, path, violations)
        if prefix is None:
            return false()
        if operator is Operator.STARTS_WITH:
            return known(_starts_with(column, kind, prefix))
        outside = _starts_with(column, kind, prefix, outside=True)
        return or_(outside, column.is_(None)) if nullable else outside
    if operator in (Operator.IN, Operator.NIN):
        values = _values(kind, raw, path, violations)
        if operator is Operator.IN:
            return known(column.in_(values))
        excluded = column.not_in(values)
        return or_(excluded, column.is_(None)) if nullable else excluded
    value = _value(kind, raw, path, violations)
    if value is None:  # refused: the query never runs
        return false()
    if operator is Operator.EQ:
        return known(column == value)
    if operator is Operator.NE:
        return column.is_distinct_from(value)
    return known(_COMPARISONS[operator](column, value))


def compile_condition(
    condition: Condition, column: ColumnElement[Any]
) -> ColumnElement[bool]:
    """A checked condition (see compile_filter) on `column`, another table's copy of
    its field (a counter table's appId, say): the same SQL as on the field's own."""
    return _condition(condition, "filter", Violations(), column)


_ALL_STATUSES = frozenset(status.value for status in RequestStatus)


def _status(value: Any, path: str, violations: Violations) -> str | None:
    try:
        return RequestStatus(value).value
    except ValueError:
        violations.add(path, "is not a status")
        return None


def _statuses(
    conditions: list[tuple[Condition, str]], violations: Violations
) -> ColumnElement[bool]:
    """The status conditions of one filter object as one set of statuses wanted.

    PROCESSING is read from the queue, so the status is no plain column (see
    app.services.request_view); one `status_in` of the intersection lets its index serve.
    """
    wanted = set(_ALL_STATUSES)
    for condition, path in conditions:
        operator, raw = condition.operator, condition.value
        if operator not in _EQUALITY:
            violations.add(path, "is not an operator of this field")
            continue
        if operator in (Operator.IN, Operator.NIN):
            if not isinstance(raw, (tuple, list)) or len(raw) > MAX_LIST_VALUES:
                violations.add(path, f"must be a list of at most {MAX_LIST_VALUES}")
                continue
            items = [(item, f"{path}[{i}]") for i, item in enumerate(raw)]
        else:
            items = [(raw, path)]
        named = {_status(item, at, violations) for item, at in items} - {None}
        if operator in (Operator.EQ, Operator.IN):
            wanted &= named
        else:
            wanted -= named
    return status_in(wanted)


class _FilterCompiler:
    def __init__(self, violations: Violations) -> None:
        self.violations = violations
        self.nodes = 0

    def compile(
        self, spec: RequestFilter, path: str, depth: int, two_valued: bool = False
    ) -> ColumnElement[bool]:
        """`spec`'s condition; only `two_valued` (under a NOT) is it never NULL."""
        self.nodes += 1
        if depth > MAX_FILTER_DEPTH or self.nodes > MAX_FILTER_NODES:
            self.violations.add(
                path,
                f"nests too deep or too wide (at most {MAX_FILTER_DEPTH} levels, "
                f"{MAX_FILTER_NODES} filters)",
            )
            return false()
        parts: list[ColumnElement[bool]] = []
        status_conditions = []
        for condition in spec.conditions:
            at = f"{path}.{condition.field.value}.{condition.operator.value}"
            if condition.field is FilterField.STATUS:
                status_conditions.append((condition, at))
            else:
                parts.append(
                    _condition(condition, at, self.violations, two_valued=two_valued)
                )
        if status_conditions:
            parts.append(_statuses(status_conditions, self.violations))
        if spec.and_ is not None:
            each = self._each(spec.and_, f"{path}.and", depth, two_valued)
            parts.append(and_(true(), *each))
        if spec.or_ is not None:
            each = self._each(spec.or_, f"{path}.or", depth, two_valued)
            parts.append(or_(false(), *each))
        if spec.not_ is not None:
            inner = self.compile(spec.not_, f"{path}.not", depth + 1, two_valued=True)
            parts.append(not_(inner))
        return and_(*parts) if parts else true()

    def _each(
        self, specs: tuple[RequestFilter, ...], path: str, depth: int, two_valued: bool
    ) -> list[ColumnElement[bool]]:
        return [
            self.compile(spec, f"{path}[{i}]", depth + 1, two_valued)
            for i, spec in enumerate(specs)
        ]


def compile_filter(
    spec: RequestFilter | None, violations: Violations, path: str = "filter"
) -> ColumnElement[bool]:
    """The SQL condition of `spec` (TRUE for none), for a WHERE: it may be NULL where it
    does not hold. Broken rules go to `violations`."""
    return _FilterCompiler(violations).compile(spec or RequestFilter(), path, 1)
