"""`startsWith` as one index range: the strings starting with a prefix, by code point.

Both databases compare this service's text by code point (SQLite's BINARY, PostgreSQL's
"C" collation), where the strings starting with `p` are exactly those from `p` up to,
not including, `p` with its last character raised by one. A range, unlike LIKE, is read
from an ordinary (or expression) index on both databases, whatever the escaping.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, true

_LAST_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)
# A UUID's canonical text (lower-case hex, dashes at fixed places): its lowest and
# highest completion of any prefix.
_UUID_LOWEST = "00000000-0000-0000-0000-000000000000"
_UUID_HIGHEST = "ffffffff-ffff-ffff-ffff-ffffffffffff"
_HEX = frozenset("0123456789abcdef")


def prefix_end(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if last in _SURROGATES:  # never in valid text: on to the next character
            last = _SURROGATES.stop
        if last <= _LAST_CODE_POINT:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    return None


def prefix_range(expression: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
    """`expression` (text, compared by code point) starts with `prefix`."""
    end = prefix_end(prefix)
    at_least: ColumnElement[bool] = expression >= prefix
    if end is None:
        return at_least
    # Grouped: one term, which a planner (app/services/request_plans.py) counts whole.
    return and_(at_least, expression < end).self_group()


def outside_prefix_range(
    expression: ColumnElement[Any], prefix: str
) -> ColumnElement[bool]:
    """`expression` does not start with `prefix`: the two ranges around its own."""
    end = prefix_end(prefix)
    below: ColumnElement[bool] = expression < prefix
    return below if end is None else or_(below, expression >= end).self_group()


def _uuid_bounds(prefix: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The least and greatest UUIDs whose canonical text starts with `prefix`."""
    if len(prefix) > len(_UUID_LOWEST) or not all(
        char == shape if shape == "-" else char in _HEX
        for char, shape in zip(prefix, _UUID_LOWEST, strict=False)
    ):
        return None
    lowest = uuid.UUID(prefix + _UUID_LOWEST[len(prefix) :])
    highest = uuid.UUID(prefix + _UUID_HIGHEST[len(prefix) :])
    return lowest, highest


def uuid_prefix_range(column: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
    """A UUID column whose canonical text starts with `prefix` (lower case): the UUIDs
    between the prefix's lowest and highest completions, FALSE if none completes it."""
    bounds = _uuid_bounds(prefix)
    return false() if bounds is None else column.between(*bounds)


def outside_uuid_prefix_range(
    column: ColumnElement[Any], prefix: str
) -> ColumnElement[bool]:
    """A UUID column whose canonical text does not start with `prefix`."""
    bounds = _uuid_bounds(prefix)
    if bounds is None:
        return true()
    lowest, highest = bounds
    return or_(column < lowest, column > highest).self_group()
