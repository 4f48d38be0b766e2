"""The request filter evaluated in Python on one request: what `compile_filter` makes the
database do, for requests that are not in a table (a subscription's events).

Same rules as app.services.request_filters: the conditions and parts of one filter
object are AND-ed (`and: []` is true, `or: []` false); every comparison is TRUE or FALSE,
never unknown (`ne` and `nin` match a null value, `eq`, `in` and the ranges never do, and
`not` of a comparison on null is true); strings compare by code point, dates by instant;
`startsWith` folds A-Z only, ids as lower-case text; email values are normalised like
stored emails. Check a filter with `compile_filter` first: this module assumes it is well
formed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC
from types import SimpleNamespace
from typing import Any, cast

from app.models import RequestStatus
from app.services.request_filters import (
    Condition,
    FilterField,
    Operator,
    RequestFilter,
    fold_ascii,
)
from app.services.request_view import RequestRecord
from app.services.rules import normalize_email

F = FilterField
# Each field: how to read it from a record, and the kind of its values.
_FIELDS: dict[FilterField, tuple[Callable[[RequestRecord], Any], str]] = {
    F.ID: (lambda r: uuid.UUID(r.id), "id"),
    F.CONTACT_ID: (lambda r: uuid.UUID(r.contact_id), "id"),
    F.STATUS: (lambda r: r.status, "status"),
    F.AUTO_NOTIFIED: (lambda r: r.auto_notified, "boolean"),
    F.CREATED_DATE: (lambda r: r.created_date, "date"),
    F.ITEM_URL: (lambda r: r.item_url, "text"),
    F.EMAIL: (lambda r: r.email, "email"),
    F.APP_ID: (lambda r: r.app_id, "text"),
    F.CATALOG_ITEM_ID: (lambda r: r.catalog_item_id, "text"),
}


def _value(kind: str, raw: Any) -> Any:
    """A filter value in the form the field holds."""
    if kind == "id":
        return uuid.UUID(str(raw).strip())
    if kind == "email":
        return normalize_email(raw)
    if kind == "date":
        return (raw if raw.tzinfo else raw.replace(tzinfo=UTC)).astimezone(UTC)
    if kind == "status":
        return raw.value if isinstance(raw, RequestStatus) else RequestStatus(raw).value
    return raw


def _compare(operator: Operator, value: Any, other: Any) -> bool:
    if operator is Operator.GT:
        return bool(value > other)
    if operator is Operator.GTE:
        return bool(value >= other)
    if operator is Operator.LT:
        return bool(value < other)
    return bool(value <= other)


def _holds(condition: Condition, record: RequestRecord) -> bool:
    """One condition on one request (a null field is `value is None`)."""
    read, kind = _FIELDS[condition.field]
    operator, raw, value = condition.operator, condition.value, read(record)
    if operator is Operator.EXISTS:
        return (value is not None) == bool(raw)
    if operator is Operator.NE:
        return value is None or value != _value(kind, raw)
    if operator is Operator.NIN:
        return value is None or value not in {_value(kind, item) for item in raw}
    if operator is Operator.NOT_STARTS_WITH:
        inside = Condition(condition.field, Operator.STARTS_WITH, raw)
        return value is None or not _holds(inside, record)
    if value is None:
        return False
    if operator is Operator.EQ:
        return bool(value == _value(kind, raw))
    if operator is Operator.IN:
        return value in {_value(kind, item) for item in raw}
    if operator is Operator.STARTS_WITH:
        prefix = normalize_email(raw) if kind == "email" else fold_ascii(str(raw))
        return fold_ascii(str(value)).startswith(prefix)
    return _compare(operator, value, _value(kind, raw))


def matches(spec: RequestFilter | None, record: RequestRecord) -> bool:
    """Whether `record` is one the filter `spec` picks (every request for none)."""
    if spec is None:
        return True
    return (
        all(_holds(condition, record) for condition in spec.conditions)
        and (spec.and_ is None or all(matches(part, record) for part in spec.and_))
        and (spec.or_ is None or any(matches(part, record) for part in spec.or_))
        and (spec.not_ is None or not matches(spec.not_, record))
    )


# Each field's attribute of a record (ids are their text there).
_ATTRIBUTES = {
    F.ID: "id",
    F.CONTACT_ID: "contact_id",
    F.STATUS: "status",
    F.AUTO_NOTIFIED: "auto_notified",
    F.CREATED_DATE: "created_date",
    F.ITEM_URL: "item_url",
    F.EMAIL: "email",
    F.APP_ID: "app_id",
    F.CATALOG_ITEM_ID: "catalog_item_id",
}


def _anded(spec: RequestFilter) -> list[Condition]:
    """The conditions every match meets: the object's own and its `and` parts'."""
    conditions = list(spec.conditions)
    for part in spec.and_ or ():
        conditions += _anded(part)
    return conditions


def _one_field_never_holds(conditions: list[Condition]) -> bool:
    """Whether no value of one field meets all `conditions` on it, when one of them is
    an `eq` or `in`: then only the values it names can, and each is tried."""
    allows = next(
        (c for c in conditions if c.operator in (Operator.EQ, Operator.IN)), None
    )
    if allows is None or allows.field not in _ATTRIBUTES:
        return False
    _, kind = _FIELDS[allows.field]
    named = allows.value if allows.operator is Operator.IN else [allows.value]
    for raw in named:
        value = _value(kind, raw)
        stored = str(value) if kind == "id" else value
        record = cast(
            RequestRecord, SimpleNamespace(**{_ATTRIBUTES[allows.field]: stored})
        )
        if all(_holds(condition, record) for condition in conditions):
            return False
    return True


def never_matches(spec: RequestFilter) -> bool:
    """Whether no request can match `spec`, as far as its values tell: the conditions it
    AND-s on one field admit no value (`appId eq "a"` and `appId startsWith "b"`), a
    part of its AND never matches, or none of its `or` parts can. False when unsure."""
    if spec.or_ is not None and all(never_matches(part) for part in spec.or_):
        return True
    if any(never_matches(part) for part in spec.and_ or ()):
        return True
    by_field: dict[FilterField, list[Condition]] = {}
    for condition in _anded(spec):
        by_field.setdefault(condition.field, []).append(condition)
    return any(_one_field_never_holds(group) for group in by_field.values())


def fields_used(spec: RequestFilter | None) -> set[FilterField]:
    """Every field the filter compares, at any depth."""
    if spec is None:
        return set()
    used = {condition.field for condition in spec.conditions}
    for part in (*(spec.and_ or ()), *(spec.or_ or ())):
        used |= fields_used(part)
    return used | fields_used(spec.not_)


def matches_id_only(spec: RequestFilter | None, request_id: str) -> bool | None:
    """For a request known only by its id (a deletion): whether the filter picks it,
    or None when the filter looks at more than the id."""
    if fields_used(spec) - {FilterField.ID}:
        return None
    # Only the id is read: a stand-in that has nothing else.
    return matches(spec, cast(RequestRecord, SimpleNamespace(id=request_id)))
