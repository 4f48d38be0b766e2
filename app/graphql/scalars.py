"""The JSON scalar, whose output every encoder and client can read whatever is stored.

Input is checked by the services' rules (app.services.rules.json_problem); this is the
defence behind them, for rows stored before those rules or written around the API: a
value the response encoder (orjson: 64-bit integers, 254 levels) or a JavaScript client
(2^53) cannot keep exactly is shown safely rather than breaking the page it is on.
"""

from __future__ import annotations

import math
from typing import Any

from strawberry.scalars import JSON
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types.scalar import ScalarDefinition, scalar

from app.services.rules import MAX_JSON_DEPTH, MAX_SAFE_INTEGER

_JSON: ScalarDefinition = DEFAULT_SCALAR_REGISTRY[JSON]


def _unsafe_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) > MAX_SAFE_INTEGER
    if isinstance(value, float):
        return not math.isfinite(value) or (
            value.is_integer() and abs(value) > MAX_SAFE_INTEGER
        )
    return False


def _needs_care(value: Any) -> bool:
    """Whether anything in `value` is too deep or a number shown unsafely (no recursion)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            if depth >= MAX_JSON_DEPTH:
                return True
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            if depth >= MAX_JSON_DEPTH:
                return True
            pending.extend((child, depth + 1) for child in item)
        elif _unsafe_number(item):
            return True
    return False


def _safe_copy(value: Any, depth: int) -> Any:
    """`value` with big numbers as text (an integer's digits, a float's shortest form),
    non-finite ones and what nests deeper than MAX_JSON_DEPTH as null. Recursion stops at
    that depth."""
    if isinstance(value, dict):
        if depth >= MAX_JSON_DEPTH:
            return None
        return {str(key): _safe_copy(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        if depth >= MAX_JSON_DEPTH:
            return None
        return [_safe_copy(item, depth + 1) for item in value]
    if _unsafe_number(value):
        if isinstance(value, float):
            return repr(value) if math.isfinite(value) else None
        return str(value)
    return value


def serialize_json(value: Any) -> Any:
    """A JSON value every reader keeps exactly; the same object when it already is one."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if not _needs_care(value):
        return value
    return _safe_copy(value, 0)


SafeJSON = scalar(
    name=_JSON.name,
    description=_JSON.description,
    specified_by_url=_JSON.specified_by_url,
    serialize=serialize_json,
    parse_value=lambda value: value,
)
