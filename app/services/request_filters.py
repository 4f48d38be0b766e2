"""Filters of the request query: plain dicts compiled to one SQL condition.

A filter arrives as plain dicts (`{"email": {"eq": "a@b.c"}, "or": [...]}`, Python names) so
the domain does not depend on the GraphQL input classes. Every comparison is TRUE or FALSE,
never NULL, so `not` and `ne` treat a null value as "not equal" the way people expect.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, false, func, not_, or_, true

from app.models import NotificationRequest, RequestStatus
from app.services.request_view import status_in
from app.services.rules import Violations, check_id, normalize_email

MAX_FILTER_DEPTH = 8
MAX_FILTER_NODES = 200
MAX_LIST_VALUES = 1000

R = NotificationRequest


def _value_kind(kind: str, value: Any, field: str, violations: Violations) -> Any:
    """A filter value in the form the column holds."""
    if kind == "id":
        return check_id(str(value), field, violations)
    if kind == "email":
        return normalize_email(value)
    if kind == "datetime":
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if kind == "status":
        return (
            RequestStatus(value).value
            if not isinstance(value, RequestStatus)
            else value.value
        )
    return value


# startsWith ignores the case of A-Z only: SQL's lower() folds just those on SQLite and
# under PostgreSQL's "C" collation, and the prefix is folded the same way, so a prefix
# with other capitals (É) still matches itself.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold_ascii(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _leaf(
    column: Any,
    kind: str,
    nullable: bool,
    operators: dict[str, Any],
    field: str,
    violations: Violations,
) -> ColumnElement[bool]:
    """AND of the operators given for one field; TRUE or FALSE even on NULL columns."""
    parts: list[ColumnElement[bool]] = []

    def value(op: str, raw: Any) -> Any:
        return _value_kind(
            kind, raw, f"{field}.{_GRAPHQL_NAMES.get(op, op)}", violations
        )

    def values(op: str, raw: list[Any]) -> list[Any]:
        if len(raw) > MAX_LIST_VALUES:
            violations.add(
                f"{field}.{op}", f"must hold at most {MAX_LIST_VALUES} values"
            )
            return []
        return [value(f"{op}[{index}]", item) for index, item in enumerate(raw)]

    def known(clause: ColumnElement[bool]) -> ColumnElement[bool]:
        # "x = v AND x IS NOT NULL" is FALSE, not NULL, on a NULL row: NOT() then works.
        return and_(clause, column.is_not(None)) if nullable else clause

    for op, raw in operators.items():
        if raw is None:
            continue
        if op == "eq":
            parts.append(known(column == value(op, raw)))
        elif op == "ne":
            parts.append(column.is_distinct_from(value(op, raw)))
        elif op == "in":
            parts.append(known(column.in_(values(op, raw))))
        elif op == "nin":
            excluded = column.not_in(values(op, raw))
            parts.append(or_(excluded, column.is_(None)) if nullable else excluded)
        elif op in _COMPARISONS:
            parts.append(known(_COMPARISONS[op](column, value(op, raw))))
        elif op == "starts_with":
            text_column = cast(column, String) if kind == "id" else column
            prefix = normalize_email(raw) if kind == "email" else _fold_ascii(str(raw))
            # lower() on the column only: on PostgreSQL a bound value's lower() would
            # follow the database's locale, not the column's "C" collation.
            folded = func.lower(text_column)
            parts.append(known(folded.startswith(prefix, autoescape=True)))
        elif op == "exists":
            parts.append(column.is_not(None) if raw else column.is_(None))
        else:
            violations.add(f"{field}.{op}", "is not an operator of this field")
    return and_(*parts) if parts else true()


_ALL_STATUSES = frozenset(status.value for status in RequestStatus)


def _status_leaf(
    operators: dict[str, Any], field: str, violations: Violations
) -> ColumnElement[bool]:
    """The status operators as one set of statuses wanted (PROCESSING is read from the
    queue, so the status is no plain column; see app.services.request_view)."""
    wanted = set(_ALL_STATUSES)
    for op, raw in operators.items():
        if raw is None:
            continue
        if op not in ("eq", "ne", "in", "nin"):
            violations.add(f"{field}.{op}", "is not an operator of this field")
            continue
        if op in ("in", "nin") and len(raw) > MAX_LIST_VALUES:
            violations.add(
                f"{field}.{op}", f"must hold at most {MAX_LIST_VALUES} values"
            )
            continue
        named = {
            _value_kind("status", value, field, violations)
            for value in (raw if op in ("in", "nin") else [raw])
        }
        wanted &= named if op in ("eq", "in") else _ALL_STATUSES - named
    return status_in(wanted)


_COMPARISONS = {
    "gt": lambda column, value: column > value,
    "gte": lambda column, value: column >= value,
    "lt": lambda column, value: column < value,
    "lte": lambda column, value: column <= value,
}

_FIELDS: dict[str, tuple[Any, str, bool]] = {
    "id": (R.id, "id", False),
    "contact_id": (R.contact_id, "id", False),
    "auto_notified": (R.auto_notified, "bool", True),
    "created_date": (R.created_date, "datetime", False),
    "item_url": (R.item_url, "string", True),
    "email": (R.email, "email", False),
}
_REFERENCE_FIELDS: dict[str, tuple[Any, str, bool]] = {
    "app_id": (R.app_id, "string", False),
    "catalog_item_id": (R.catalog_item_id, "string", False),
}
_GRAPHQL_NAMES = {
    "contact_id": "contactId",
    "auto_notified": "autoNotified",
    "created_date": "createdDate",
    "item_url": "itemUrl",
    "catalog_reference": "catalogReference",
    "app_id": "appId",
    "catalog_item_id": "catalogItemId",
    "starts_with": "startsWith",
}


class _FilterCompiler:
    def __init__(self, violations: Violations) -> None:
        self.violations = violations
        self.nodes = 0

    def compile(
        self, spec: dict[str, Any], path: str, depth: int
    ) -> ColumnElement[bool]:
        self.nodes += 1
        if depth > MAX_FILTER_DEPTH or self.nodes > MAX_FILTER_NODES:
            self.violations.add(
                path,
                f"nests too deep or too wide (at most {MAX_FILTER_DEPTH} levels, {MAX_FILTER_NODES} filters)",
            )
            return false()
        parts: list[ColumnElement[bool]] = []
        for name, operators in spec.items():
            if operators is None:
                continue
            field = f"{path}.{_GRAPHQL_NAMES.get(name, name)}"
            if name in _FIELDS:
                parts.append(_leaf(*_FIELDS[name], operators, field, self.violations))
            elif name == "status":
                parts.append(_status_leaf(operators, field, self.violations))
            elif name == "catalog_reference":
                for sub, sub_ops in operators.items():
                    if sub_ops is not None:
                        sub_field = f"{field}.{_GRAPHQL_NAMES[sub]}"
                        parts.append(
                            _leaf(
                                *_REFERENCE_FIELDS[sub],
                                sub_ops,
                                sub_field,
                                self.violations,
                            )
                        )
            elif name in ("and", "or"):
                children = [
                    self.compile(child, f"{field}[{i}]", depth + 1)
                    for i, child in enumerate(operators)
                ]
                combine = and_ if name == "and" else or_
                parts.append(
                    combine(*children)
                    if children
                    else (true() if name == "and" else false())
                )
            elif name == "not":
                parts.append(not_(self.compile(operators, field, depth + 1)))
            else:
                self.violations.add(field, "is not a filter field")
        return and_(*parts) if parts else true()


def compile_filter(
    spec: dict[str, Any] | None, violations: Violations
) -> ColumnElement[bool]:
    return _FilterCompiler(violations).compile(spec or {}, "filter", 1)
