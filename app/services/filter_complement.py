"""The complement of a filter, said as conditions an index can serve.

`complement(spec)` matches exactly the requests `spec` does not. The contract's filters
are two-valued (null equals nothing; `ne` and `nin` match null), so each condition has an
exact opposite: `email ne x` leaves `email eq x`, `createdDate gt t` leaves
`createdDate lte t` (or no date, where the field may be null), and `and`, `or` and `not`
turn over by De Morgan. Counting the few requests a broad filter leaves out is one index
range, where NOT(...) would be checked row by row (app/services/request_totals.py);
`startsWith`'s is the two ranges around its own (an operator no filter input names).
"""

from __future__ import annotations

from app.services.request_filters import (
    NULLABLE_FIELDS,
    OPPOSITE_OPERATORS,
    Condition,
    Operator,
    RequestFilter,
)

_RANGES = {Operator.GT, Operator.GTE, Operator.LT, Operator.LTE}


def _of_condition(condition: Condition) -> RequestFilter | None:
    field, operator = condition.field, condition.operator
    if operator is Operator.EXISTS:
        return RequestFilter(
            conditions=(Condition(field, operator, not condition.value),)
        )
    opposite = OPPOSITE_OPERATORS.get(operator)
    if opposite is None:
        return None
    turned = RequestFilter(conditions=(Condition(field, opposite, condition.value),))
    if operator in _RANGES and field in NULLABLE_FIELDS:
        # A range matches no null; its opposite range does not either: add them.
        absent = RequestFilter(conditions=(Condition(field, Operator.EXISTS, False),))
        return RequestFilter(or_=(turned, absent))
    return turned


def _every(parts: list[RequestFilter | None]) -> tuple[RequestFilter, ...] | None:
    """The parts, or None if one has no complement."""
    if any(part is None for part in parts):
        return None
    return tuple(part for part in parts if part is not None)


def complement(spec: RequestFilter | None) -> RequestFilter | None:
    """A filter matching exactly the requests `spec` does not; None if it has none here.

    `spec` is an AND of its conditions and its `and`, `or` and `not` parts, so its
    complement is the OR of theirs (an empty OR matches nothing)."""
    spec = spec or RequestFilter()
    parts: list[RequestFilter | None] = [_of_condition(c) for c in spec.conditions]
    parts += [complement(part) for part in spec.and_ or ()]
    if spec.or_ is not None:
        each = _every([complement(part) for part in spec.or_])
        parts.append(None if each is None else RequestFilter(and_=each))
    if spec.not_ is not None:
        parts.append(spec.not_)
    every = _every(parts)
    return None if every is None else RequestFilter(or_=every)


def conjuncts(spec: RequestFilter | None) -> list[RequestFilter]:
    """The filters `spec` AND-s together, each as a filter of its own."""
    spec = spec or RequestFilter()
    units = [RequestFilter(conditions=(condition,)) for condition in spec.conditions]
    units += list(spec.and_ or ())
    if spec.or_ is not None:
        units.append(RequestFilter(or_=spec.or_))
    if spec.not_ is not None:
        units.append(RequestFilter(not_=spec.not_))
    return units
