"""The request filter evaluated in Python on one request: what `compile_filter` makes the
database do, for requests that are not in a table (a subscription's events).

Same rules as app.services.request_filters: fields of one filter object are AND-ed;
every comparison is TRUE or FALSE, never unknown (`ne` and `nin` match a null value, `eq`,
`in` and the ranges never do, `not` of a comparison on null is true); strings compare by
code point, dates by instant; `startsWith` folds A-Z only, ids as lower-case text; email
values are normalised like stored emails. Validate a filter with `compile_filter` first:
this module assumes it is well formed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC
from types import SimpleNamespace
from typing import Any, cast

from app.models import RequestStatus
from app.services.request_view import RequestRecord
from app.services.rules import normalize_email

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ALL_STATUSES = frozenset(status.value for status in RequestStatus)

# Each field: how to read it from a record, and the kind of its values.
_FIELDS: dict[str, tuple[Callable[[RequestRecord], Any], str]] = {
    "id": (lambda r: uuid.UUID(r.id), "id"),
    "contact_id": (lambda r: uuid.UUID(r.contact_id), "id"),
    "auto_notified": (lambda r: r.auto_notified, "bool"),
    "created_date": (lambda r: r.created_date, "datetime"),
    "item_url": (lambda r: r.item_url, "string"),
    "email": (lambda r: r.email, "email"),
}
_REFERENCE_FIELDS: dict[str, tuple[Callable[[RequestRecord], Any], str]] = {
    "app_id": (lambda r: r.app_id, "string"),
    "catalog_item_id": (lambda r: r.catalog_item_id, "string"),
}


def _fold_ascii(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _value(kind: str, raw: Any) -> Any:
    """A filter value in the form the field holds."""
    if kind == "id":
        return uuid.UUID(str(raw).strip())
    if kind == "email":
        return normalize_email(raw)
    if kind == "datetime":
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    return raw


def _as_text(kind: str, value: Any) -> str:
    return str(value) if kind == "id" else value


def _operator(kind: str, op: str, raw: Any, value: Any) -> bool:
    """One operator on one field's value (None: the field is null)."""
    if op == "exists":
        return (value is not None) == bool(raw)
    if op == "ne":
        return value is None or value != _value(kind, raw)
    if op == "nin":
        return value is None or value not in {_value(kind, item) for item in raw}
    if value is None:
        return False
    if op == "eq":
        return bool(value == _value(kind, raw))
    if op == "in":
        return value in {_value(kind, item) for item in raw}
    if op == "starts_with":
        prefix = normalize_email(raw) if kind == "email" else _fold_ascii(str(raw))
        return _fold_ascii(_as_text(kind, value)).startswith(prefix)
    compared = _value(kind, raw)
    if kind == "datetime":
        value, compared = value.astimezone(UTC), compared.astimezone(UTC)
    if op == "gt":
        return bool(value > compared)
    if op == "gte":
        return bool(value >= compared)
    if op == "lt":
        return bool(value < compared)
    if op == "lte":
        return bool(value <= compared)
    raise ValueError(f"unknown operator {op!r}")


def _leaf(
    read: Callable[[RequestRecord], Any],
    kind: str,
    operators: dict[str, Any],
    record: RequestRecord,
) -> bool:
    value = read(record)
    return all(
        _operator(kind, op, raw, value)
        for op, raw in operators.items()
        if raw is not None
    )


def _status_value(value: Any) -> str:
    return (
        value.value if isinstance(value, RequestStatus) else RequestStatus(value).value
    )


def _status(operators: dict[str, Any], record: RequestRecord) -> bool:
    wanted = set(_ALL_STATUSES)
    for op, raw in operators.items():
        if raw is None:
            continue
        named = {_status_value(v) for v in (raw if op in ("in", "nin") else [raw])}
        wanted &= named if op in ("eq", "in") else _ALL_STATUSES - named
    return record.status in wanted


def matches(spec: dict[str, Any] | None, record: RequestRecord) -> bool:
    """Whether `record` is one the filter `spec` (the domain's plain form) picks."""
    for name, operators in (spec or {}).items():
        if operators is None:
            continue
        if name in _FIELDS:
            found = _leaf(*_FIELDS[name], operators, record)
        elif name == "status":
            found = _status(operators, record)
        elif name == "catalog_reference":
            found = all(
                _leaf(*_REFERENCE_FIELDS[sub], sub_ops, record)
                for sub, sub_ops in operators.items()
                if sub_ops is not None
            )
        elif name == "and":
            found = all(matches(child, record) for child in operators)
        elif name == "or":
            found = any(matches(child, record) for child in operators)
        elif name == "not":
            found = not matches(operators, record)
        else:
            raise ValueError(f"unknown filter field {name!r}")
        if not found:
            return False
    return True


def fields_used(spec: dict[str, Any] | None) -> set[str]:
    """Every field the filter compares, at any depth."""
    used: set[str] = set()
    for name, operators in (spec or {}).items():
        if operators is None:
            continue
        if name in ("and", "or"):
            for child in operators:
                used |= fields_used(child)
        elif name == "not":
            used |= fields_used(operators)
        else:
            used.add(name)
    return used


def matches_id_only(spec: dict[str, Any] | None, request_id: str) -> bool | None:
    """For a request known only by its id (a deletion): whether the filter picks it,
    or None when the filter looks at more than the id."""
    if fields_used(spec) - {"id"}:
        return None
    # Only the id is read: a stand-in that has nothing else.
    return matches(spec, cast(RequestRecord, SimpleNamespace(id=request_id)))
