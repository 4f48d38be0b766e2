"""Sort orders of the request query, and the keyset rule that pages through them.

An order is a list of `SortKey`s made total by `id`, in the direction of the last key. A
cursor holds the sort values of one row; the rows after it are split into `Segment`s, each
one range of one index, so a deep page costs about what the first page costs.

The one rule, for every key whatever its type or direction: after the cursor `v` come
  the rows equal to `v` on the keys before key i and after `v[i]` on key i, for each i.
"After" on one key is a list of disjoint pieces, in the order the rows come:
- a field of a few values (STATUS, AUTO_NOTIFIED) is never compared with < or >: each
  value ranked after `v[i]` is a piece of its own (`status = 'RECEIVED'`), in which the
  next key is one index range in either direction;
- a nullable field puts NULL lowest: after NULL in ascending order is `IS NOT NULL`, and
  in descending order NULL rows are a piece after every value;
- any other field is `> v[i]` (ascending) or `< v[i]` (descending).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, literal, true, tuple_

from app.models import RequestStatus
from app.services.request_view import COLUMNS, QUEUED, status_in


class SortField(enum.Enum):
    ID = "id"
    CONTACT_ID = "contact_id"
    STATUS = "status"
    AUTO_NOTIFIED = "auto_notified"
    CREATED_DATE = "created_date"
    ITEM_URL = "item_url"


class SortOrder(enum.Enum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True)
class SortKey:
    field: SortField
    order: SortOrder = SortOrder.ASC


DEFAULT_SORT = (SortKey(SortField.CREATED_DATE, SortOrder.DESC),)
NULLABLE_FIELDS = frozenset({SortField.AUTO_NOTIFIED, SortField.ITEM_URL})
_PROCESSING = RequestStatus.PROCESSING.value
# Fields of a few values, each value in ascending rank: NULL lowest, false before true,
# statuses by name.
RANKED_VALUES: dict[SortField, tuple[Any, ...]] = {
    SortField.STATUS: tuple(sorted(status.value for status in RequestStatus)),
    SortField.AUTO_NOTIFIED: (None, False, True),
}


def sort_keys(sort: Sequence[SortKey] | None) -> tuple[SortKey, ...]:
    """The keys as given (the first of each field), ended by ID in the last one's
    direction; keys after an ID change nothing and are dropped."""
    keys: list[SortKey] = []
    for key in sort or DEFAULT_SORT:
        if key.field not in {k.field for k in keys}:
            keys.append(key)
        if key.field is SortField.ID:
            break
    if keys[-1].field is not SortField.ID:
        keys.append(SortKey(SortField.ID, keys[-1].order))
    return tuple(keys)


def column_of(field: SortField) -> ColumnElement[Any]:
    """The field's column of the request view (its name is the field's value)."""
    return COLUMNS[field.value]


def order_by(
    keys: Sequence[SortKey], dialect: str, columns: Mapping[str, Any] = COLUMNS
) -> list[Any]:
    """ORDER BY for the keys: on the request view, or on `columns` by name (a
    subquery's `.c`)."""
    clauses = []
    for key in keys:
        column = columns[key.field.value]
        ascending = key.order is SortOrder.ASC
        clause = column.asc() if ascending else column.desc()
        # SQLite already ranks NULL lowest; PostgreSQL must be told.
        if dialect == "postgresql" and key.field in NULLABLE_FIELDS:
            clause = clause.nulls_first() if ascending else clause.nulls_last()
        clauses.append(clause)
    return clauses


@dataclass(frozen=True)
class Segment:
    """Rows whose first keys equal `equal` (one value each) and whose next key lies in
    `bound`: one range of an index, read in the order of the keys not fixed.

    `bound` is None (any value), ("gt", v), ("lt", v), ("not_null",), or ("row_gt", vs)
    / ("row_lt", vs) for a row-value comparison of every key at once.
    """

    equal: tuple[Any, ...]
    bound: tuple[Any, ...] | None = None

    def where(self, keys: Sequence[SortKey]) -> ColumnElement[bool]:
        id_column = self._id_column(keys)
        parts = [
            _same(key.field, value, id_column)
            for key, value in zip(keys, self.equal, strict=False)
        ]
        if self.bound is not None:
            parts.append(self._bounded(keys, id_column))
        return and_(true(), *parts)

    def order_by(self, keys: Sequence[SortKey], dialect: str) -> list[Any]:
        """ORDER BY within the segment: the keys it does not fix."""
        columns = {**COLUMNS, SortField.ID.value: self._id_column(keys)}
        return order_by(keys[len(self.equal) :], dialect, columns)

    def _id_column(self, keys: Sequence[SortKey]) -> ColumnElement[Any]:
        # A PROCESSING request's id is its queued notification's `request_id`: ordering
        # and bounding by that column lets the queue's unique index drive the read.
        if self.equal[:1] == (_PROCESSING,) and keys[0].field is SortField.STATUS:
            return QUEUED.c.request_id
        return column_of(SortField.ID)

    def _bounded(
        self, keys: Sequence[SortKey], id_column: ColumnElement[Any]
    ) -> ColumnElement[bool]:
        assert self.bound is not None
        kind, *values = self.bound
        if kind in ("row_gt", "row_lt"):
            columns = [column_of(key.field) for key in keys]
            # Bound with the columns' types, as a plain comparison is (UUID text, UTC).
            row = tuple_(*columns)
            cursor = tuple_(
                *[literal(v, c.type) for v, c in zip(values[0], columns, strict=True)]
            )
            return row > cursor if kind == "row_gt" else row < cursor
        field = keys[len(self.equal)].field
        column = id_column if field is SortField.ID else column_of(field)
        if kind == "not_null":
            return column.is_not(None)
        bounded: ColumnElement[bool] = (
            column > values[0] if kind == "gt" else column < values[0]
        )
        return bounded


def _same(
    field: SortField, value: Any, id_column: ColumnElement[Any]
) -> ColumnElement[bool]:
    if field is SortField.STATUS:
        return status_in({value})
    column = id_column if field is SortField.ID else column_of(field)
    if value is None:
        return column.is_(None)
    if isinstance(value, bool):
        # `= true`: an index range on both databases (`IS TRUE` is none on PostgreSQL).
        return column == (true() if value else false())
    same: ColumnElement[bool] = column == value
    return same


def _pieces_after(key: SortKey, value: Any, equal: tuple[Any, ...]) -> list[Segment]:
    """The rows after `value` on this key (with the keys before it equal to `equal`),
    as disjoint segments in the order the rows come."""
    ascending = key.order is SortOrder.ASC
    ranked = RANKED_VALUES.get(key.field)
    if ranked is not None:
        position = ranked.index(value)
        later = ranked[position + 1 :] if ascending else ranked[:position][::-1]
        return [Segment((*equal, each)) for each in later]
    if value is None:
        # NULL ranks lowest: first of all ascending, last of all descending.
        return [Segment(equal, ("not_null",))] if ascending else []
    pieces = [Segment(equal, ("gt" if ascending else "lt", value))]
    if not ascending and key.field in NULLABLE_FIELDS:
        pieces.append(Segment((*equal, None)))
    return pieces


def _first_segments(keys: Sequence[SortKey]) -> list[Segment]:
    """The whole order, as segments the indexes serve.

    Two keys (a field, then the id): a field of a few values is split into one segment
    per value, and a nullable field ordered against the id's direction into its NULL
    rows and the rest. Else one index would have to be read in two directions at once,
    and the first page would sort every row of a value (often most of the table).
    """
    first = keys[0]
    if len(keys) != 2:
        return [Segment(())]
    ranked = RANKED_VALUES.get(first.field)
    if ranked is not None:
        in_order = ranked if first.order is SortOrder.ASC else ranked[::-1]
        return [Segment((value,)) for value in in_order]
    if first.field in NULLABLE_FIELDS and first.order is not keys[1].order:
        nulls, rest = Segment((None,)), Segment((), ("not_null",))
        return [nulls, rest] if first.order is SortOrder.ASC else [rest, nulls]
    return [Segment(())]


def segments_after(
    keys: Sequence[SortKey], cursor: Sequence[Any] | None
) -> list[Segment]:
    """The rows after `cursor` (every row when None), as disjoint segments in order."""
    if cursor is None:
        return _first_segments(keys)
    directions = {key.order for key in keys}
    plain = not any(key.field in RANKED_VALUES for key in keys)
    if len(directions) == 1 and plain and None not in cursor:
        # One direction, no NULL in the cursor: one row-value comparison, which the
        # (field, id) index serves as one range. A NULL compares as unknown and drops
        # out: right ascending, where NULL ranks before any value; descending it ranks
        # after, so those rows are added back.
        ascending = directions == {SortOrder.ASC}
        segments = [Segment((), ("row_gt" if ascending else "row_lt", tuple(cursor)))]
        if not ascending:
            segments += [
                Segment((*cursor[:index], None))
                for index, key in enumerate(keys)
                if key.field in NULLABLE_FIELDS
            ]
        return segments
    segments = []
    for index, key in enumerate(keys):
        segments += _pieces_after(key, cursor[index], tuple(cursor[:index]))
    return segments
