"""The request events outbox: each change of a request writes its event in the change's
own transaction, set-based wherever the change is.

An event is `(id, type, request_id, entity_event_sequence, event_time, entity)`: `id` is
the global order, the sequence numbers one request's events 1, 2, 3..., and `entity` is the
request's record after the change (the fields of RequestRecord but three derived or
internal ones, read through the request view, so a queued request is PROCESSING), None
for `deleted`. The shape callers see (the
webhook payload, the subscription's type) is made from that record at the edge.

Changes of one request never run at once (they lock its row, or are SQLite's one writer),
and the event is written after the change in a later statement of the same transaction,
so `max(sequence) + 1` is read after any earlier change of that request committed.
"""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Label,
    bindparam,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    true,
)

from app.events.wakeups import NOTIFY, note_written
from app.models import (
    NotificationRequest,
    RequestEvent,
    RequestStatus,
    WebhookEndpoint,
    table_of,
)
from app.services.request_view import COLUMNS, QUEUED, REQUEST_VIEW, RequestRecord
from app.services.rules import CatalogReference, catalog_reference_key
from app.storage import Transaction

_EVENTS = table_of(RequestEvent)
_REQUESTS = table_of(NotificationRequest)
_ENDPOINTS = table_of(WebhookEndpoint)
# Event ids are derived from (request, sequence): the same event always has the same id.
_EVENT_ID_NAMESPACE = uuid.UUID("0b6f1c43-6d3e-4f8e-9d7a-3c2b5e8f1a90")
# Record fields an event leaves out: derived from others, or internal (less to write for
# each of a large report's events).
_LEFT_OUT = ("catalog_reference_key", "open_request", "delivery_round")


class EventType(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"

    @property
    def wix_name(self) -> str:
        """The event's name in Wix's API and in webhook payloads."""
        return f"wix.ecom.v1.back_in_stock_notification_request_{self.value}"


class StoredEvent(NamedTuple):
    """One event of the outbox as read back."""

    id: int
    type: str
    request_id: uuid.UUID
    entity_event_sequence: int
    event_time: datetime
    entity: dict[str, Any] | None

    @property
    def event_type(self) -> EventType:
        return EventType(self.type)

    @property
    def event_id(self) -> uuid.UUID:
        """The event's own id: the `webhook-id` and `metadata.id`, stable forever."""
        return event_id(self.request_id, self.entity_event_sequence)

    @property
    def record(self) -> RequestRecord | None:
        return record_of(self.entity) if self.entity is not None else None


def event_id(request_id: uuid.UUID, sequence: int) -> uuid.UUID:
    return uuid.uuid5(_EVENT_ID_NAMESPACE, f"{request_id}/{sequence}")


def record_of(entity: dict[str, Any]) -> RequestRecord:
    """The request record an event's entity holds (JSON gives dates as text, SQLite
    booleans as 0 and 1); the fields left out are derived again, but the delivery
    round, which nothing outside the queue reads, is 0."""
    values = dict(entity)
    for name in ("auto_notified", "confirmed"):
        if values.get(name) is not None:
            values[name] = bool(values[name])
    values["open_request"] = (
        None if values["status"] == RequestStatus.NOTIFICATION_SENT.value else True
    )
    values["catalog_reference_key"] = catalog_reference_key(
        CatalogReference(values["app_id"], values["catalog_item_id"], values["options"])
    )
    values["delivery_round"] = 0
    created = datetime.fromisoformat(values["created_date"])
    values["created_date"] = (
        created.replace(tzinfo=UTC)
        if created.tzinfo is None
        else created.astimezone(UTC)
    )
    values["id"] = str(values["id"])
    values["contact_id"] = str(values["contact_id"])
    return RequestRecord._make(values.get(name) for name in RequestRecord._fields)


def _unlabelled(column: Any) -> Any:
    return column.element if isinstance(column, Label) else column


def _entity(dialect: str) -> Any:
    """The request's record as one JSON object, built by the database."""
    pairs: list[Any] = []
    for name in RequestRecord._fields:
        if name in _LEFT_OUT:
            continue
        value = _unlabelled(COLUMNS[name])
        if dialect == "sqlite" and name == "options":
            value = func.json(value)  # stored as JSON text: embed it as JSON
        pairs += [literal_column(f"'{name}'"), value]
    build = func.json_object if dialect == "sqlite" else func.jsonb_build_object
    return build(*pairs)


_NEXT_SEQUENCE = (
    func.coalesce(
        select(func.max(_EVENTS.c.entity_event_sequence))
        .where(_EVENTS.c.request_id == _REQUESTS.c.id)
        .correlate(_REQUESTS)
        .scalar_subquery(),
        0,
    )
    + 1
)
# Events wait for the webhook dispatcher only when some endpoint could want them.
_ANY_ENDPOINT = exists().where(_ENDPOINTS.c.enabled == true())
_COLUMNS = [
    "type",
    "request_id",
    "entity_event_sequence",
    "event_time",
    "entity",
    "webhooks_pending",
]


def _event_rows(
    dialect: str,
    type: EventType,
    where: ColumnElement[bool],
    now: ColumnElement[Any],
    *,
    first: bool,
) -> Any:
    """The SELECT of `_emit`: an event of `type` for each request `where` picks (from the
    request view, so its columns and the queued notification's may be used)."""
    entity = null() if type is EventType.DELETED else _entity(dialect)
    source = _REQUESTS if type is EventType.DELETED else REQUEST_VIEW
    return (
        select(
            literal(type.value, _EVENTS.c.type.type),
            _REQUESTS.c.id,
            literal(1) if first else _NEXT_SEQUENCE,
            now,
            entity,
            _ANY_ENDPOINT,
        )
        .select_from(source)
        .where(where)
        .order_by(_REQUESTS.c.id)
    )


def _emit(
    tx: Transaction,
    type: EventType,
    where: ColumnElement[bool],
    now: datetime,
    *,
    first: bool = False,
) -> int:
    """One INSERT ... SELECT writing an event of `type` for each request `where` picks."""
    rows = _event_rows(
        tx.dialect, type, where, literal(now, _EVENTS.c.event_time.type), first=first
    )
    written = tx.execute(insert(RequestEvent).from_select(_COLUMNS, rows))
    if written:
        note_written(tx)
    return written


@functools.cache
def _created_statement(dialect: str) -> Any:
    """`emit_created`'s INSERT ... SELECT, built once per dialect with bind parameters:
    every create runs it, and building and compiling it anew cost more than the rest of
    the create's statements together."""
    rows = _event_rows(
        dialect,
        EventType.CREATED,
        _REQUESTS.c.id == bindparam("request_id", type_=_REQUESTS.c.id.type),
        bindparam("event_time", type_=_EVENTS.c.event_time.type),
        first=True,
    )
    statement = insert(RequestEvent).from_select(_COLUMNS, rows)
    if dialect == "postgresql":
        # NOTIFY with the event, not in a round trip of its own (one of a create's).
        return statement.returning(_EVENTS.c.id, NOTIFY.label("notified"))
    return statement.returning(_EVENTS.c.id)


def emit_created(tx: Transaction, request_id: uuid.UUID | str, now: datetime) -> None:
    """The `created` event of a request this transaction just inserted."""
    written = tx.rows(
        _created_statement(tx.dialect),
        {"request_id": _as_uuid(request_id), "event_time": now},
    )
    if written:
        note_written(tx, notified=tx.dialect == "postgresql")


def emit_updated(tx: Transaction, ids: Sequence[uuid.UUID], now: datetime) -> int:
    """`updated` events of the requests with these ids (changed by this transaction)."""
    if not ids:
        return 0
    return _emit(tx, EventType.UPDATED, _REQUESTS.c.id.in_(ids), now)


def emit_changed(tx: Transaction, where: ColumnElement[bool], now: datetime) -> int:
    """`updated` events of the requests `where` picks, which this transaction changed
    (and so holds locked)."""
    return _emit(tx, EventType.UPDATED, where, now)


def emit_reported(
    tx: Transaction, selection: ColumnElement[bool], report_id: int, now: datetime
) -> int:
    """`updated` events (now PROCESSING) of the requests `selection` names that report
    `report_id` queued: one statement whatever the report's size."""
    return _emit(
        tx, EventType.UPDATED, selection & (QUEUED.c.report_id == report_id), now
    )


def lock_changing(tx: Transaction, where: ColumnElement[bool]) -> list[uuid.UUID]:
    """The ids of the requests `where` picks, locked (PostgreSQL) until the transaction
    ends, so the change that follows changes exactly them; for `emit_updated`."""
    locked = select(_REQUESTS.c.id).where(where).with_for_update(key_share=True)
    return [_as_uuid(id) for (id,) in tx.rows(locked)]


def emit_deleted(tx: Transaction, selection: ColumnElement[bool], now: datetime) -> int:
    """`deleted` events of the requests `selection` picks; call it right before deleting
    them (in the same transaction; see `deletion_written` and
    app.services.privacy.remove_requests).

    On PostgreSQL the requests are locked first, so no change of theirs commits between
    the event and the delete.
    """
    if tx.dialect == "postgresql":
        locked = select(_REQUESTS.c.id).where(selection).with_for_update().subquery()
        tx.scalar(select(func.count()).select_from(locked))
    return _emit(tx, EventType.DELETED, selection, now)


def deletion_written() -> ColumnElement[bool]:
    """The request's `deleted` event was written (by this transaction: nothing follows a
    deletion): add it to the DELETE after `emit_deleted`, so a request created meanwhile
    (PostgreSQL) is not deleted without its event."""
    return exists().where(
        _EVENTS.c.request_id == _REQUESTS.c.id,
        _EVENTS.c.type == EventType.DELETED.value,
    )


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# -- reading ---------------------------------------------------------------------------

_EVENT_COLUMNS = [
    _EVENTS.c.id,
    _EVENTS.c.type,
    _EVENTS.c.request_id,
    _EVENTS.c.entity_event_sequence,
    _EVENTS.c.event_time,
    _EVENTS.c.entity,
]


def events_after(after: int, limit: int) -> Any:
    """SELECT up to `limit` events with an id above `after`, oldest first."""
    return (
        select(*_EVENT_COLUMNS)
        .where(_EVENTS.c.id > after)
        .order_by(_EVENTS.c.id)
        .limit(limit)
    )


def events_of(ids: Iterable[int]) -> Any:
    return select(*_EVENT_COLUMNS).where(_EVENTS.c.id.in_(list(ids)))


as_event = StoredEvent._make
LAST_EVENT_ID = select(func.max(_EVENTS.c.id))
