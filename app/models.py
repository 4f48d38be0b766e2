"""Every table of the service, with its indexes and constraints."""

from __future__ import annotations

import enum
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
    func,
    text,
    true,
)
from sqlmodel import Field, SQLModel

from app.sqltypes import GUID, PortableJSON, UTCDateTime, code_point_string


def utc_now() -> datetime:
    return datetime.now(UTC)


# What services read the time from: `utc_now`, or a test's own clock.
Clock = Callable[[], datetime]


def time_ordered_id(
    at: datetime, random_bits: Callable[[int], int] = secrets.randbits
) -> uuid.UUID:
    """A version 7 UUID (RFC 9562): `at` in milliseconds since the epoch, then 74 random bits.

    A new request's id sorts after older ones, so every index ending with the id (the primary
    key, `(status, id)`, `(auto_notified, id)`) takes it on its last page, not on a random
    one: at a million rows a create writes about a third fewer pages to the log.
    (Python 3.14 has `uuid.uuid7()`, but for the current time only.)
    """
    milliseconds = int(at.timestamp() * 1000) & 0xFFFF_FFFF_FFFF
    bits = random_bits(74)
    value = (
        milliseconds << 80
        | 0x7 << 76  # version
        | (bits >> 62) << 64  # 12 random bits
        | 0b10 << 62  # variant
        | bits & (1 << 62) - 1  # 62 random bits
    )
    return uuid.UUID(int=value)


def table_of(model: type[SQLModel]) -> Table:
    """A model's Core table, typed (SQLModel leaves `__table__` untyped).

    Services write statements against its columns (`table_of(M).c.status`), which type
    as SQL expressions; a model's class attributes type as the values they hold.
    """
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def only_on(dialect: str, index: Index) -> Index:
    """An index made on one database only; `info["dialect"]` tells migrations which."""
    index.info["dialect"] = dialect
    return index.ddl_if(dialect=dialect)


class RequestStatus(enum.StrEnum):
    RECEIVED = "RECEIVED"
    PROCESSING = "PROCESSING"
    NOTIFICATION_SENT = "NOTIFICATION_SENT"
    FAILED = "FAILED"


# Statuses a report moves to PROCESSING.
REPORTABLE_STATUSES = (RequestStatus.RECEIVED, RequestStatus.FAILED)


class NotificationRequest(SQLModel, table=True):
    """A shopper's request to be emailed when an item is back in stock."""

    __tablename__ = "notification_requests"
    __table_args__ = (
        # Race-free de-duplication: one open request per reference and email. NULLs never
        # collide in a unique index, so a sent request (open_request NULL) leaves room for
        # a new one. Its prefix serves counting and reporting by reference.
        Index(
            "uq_notification_requests_open",
            "catalog_reference_key",
            "email",
            "open_request",
            unique=True,
        ),
        # One index per filter and sort key, each ended by id for keyset paging.
        Index("ix_notification_requests_created", "created_date", "id"),
        Index("ix_notification_requests_contact", "contact_id", "id"),
        Index("ix_notification_requests_status", "status", "id"),
        # The nullable sort keys: see _nullable_sort_indexes below for PostgreSQL.
        only_on(
            "sqlite",
            Index("ix_notification_requests_auto_notified", "auto_notified", "id"),
        ),
        only_on("sqlite", Index("ix_notification_requests_item_url", "item_url", "id")),
        Index("ix_notification_requests_email", "email", "id"),
        # Filters by app and item; its tail finds an item's oldest and newest waiting
        # request, and its FAILED ones, in a few steps (app/services/demand.py).
        Index(
            "ix_notification_requests_item_status",
            "app_id",
            "catalog_item_id",
            "status",
            "created_date",
        ),
        # An item's requests newest first (the default order) are one range of it.
        Index(
            "ix_notification_requests_item_created",
            "catalog_item_id",
            "created_date",
            "id",
        ),
        # Requests auto-notified or not, newest first: one range however few there are
        # among the newest (most requests are not yet notified at all).
        Index(
            "ix_notification_requests_auto_notified_created",
            "auto_notified",
            "created_date",
            "id",
        ),
        # A status and autoNotified together (both of few values), newest first: one
        # range, however rare the pair (none is RECEIVED and auto-notified).
        Index(
            "ix_notification_requests_status_notified_created",
            "status",
            "auto_notified",
            "created_date",
            "id",
        ),
        # A reference's waiting requests oldest first: a report with a quantity takes
        # the first few (app/services/reports.py).
        Index(
            "ix_notification_requests_reference_waiting",
            "catalog_reference_key",
            "open_request",
            "created_date",
            "id",
        ),
        # Filtering by `confirmed`, and purging requests never confirmed.
        Index("ix_notification_requests_confirmed", "confirmed", "id"),
    )

    id: uuid.UUID = Field(sa_column=Column(GUID(), primary_key=True))
    app_id: str = Field(sa_column=Column(code_point_string(64), nullable=False))
    catalog_item_id: str = Field(
        sa_column=Column(code_point_string(36), nullable=False)
    )
    # None stands for both an absent and an empty options object.
    options: dict[str, Any] | None = Field(
        default=None, sa_column=Column(PortableJSON, nullable=True)
    )
    # sha256 of the canonical JSON of (appId, catalogItemId, options): reference equality.
    catalog_reference_key: str = Field(sa_column=Column(String(64), nullable=False))
    email: str = Field(sa_column=Column(code_point_string(254), nullable=False))
    contact_id: uuid.UUID = Field(sa_column=Column(GUID(), nullable=False))
    # RECEIVED, FAILED or NOTIFICATION_SENT: never PROCESSING, which is read from the
    # queue (app.services.request_view), so a report writes no request.
    status: str = Field(sa_column=Column(String(20), nullable=False))
    # TRUE while the request is open (RECEIVED, PROCESSING or FAILED), NULL once sent.
    open_request: bool | None = Field(
        default=True, sa_column=Column(Boolean, nullable=True, default=True)
    )
    auto_notified: bool | None = Field(
        default=None, sa_column=Column(Boolean, nullable=True)
    )
    created_date: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    item_url: str | None = Field(
        default=None, sa_column=Column(code_point_string(2048), nullable=True)
    )
    # The itemDetails given at create.
    item_name: str = Field(sa_column=Column(String(200), nullable=False))
    item_price: str = Field(sa_column=Column(String(64), nullable=False))
    item_image: str | None = Field(
        default=None, sa_column=Column(String(2048), nullable=True)
    )
    # Delivery bookkeeping of the last finished round (the queued notification holds the
    # current one's): its number, its attempts and its last error.
    delivery_round: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    delivery_attempts: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    last_delivery_error: str | None = Field(
        default=None, sa_column=Column(Text, nullable=True)
    )
    # False while a visitor's request waits for its email address to be confirmed
    # (REQUIRE_EMAIL_CONFIRMATION): a report skips it (app.services.confirmation).
    confirmed: bool = Field(
        default=True,
        sa_column=Column(Boolean, nullable=False, server_default=true()),
    )


def _nullable_sort_indexes(table: Table, *names: str) -> None:
    """Index nullable sort keys the way the contract ranks NULL: lowest.

    SQLite already puts NULL first in ascending order (and has no NULLS FIRST in indexes);
    PostgreSQL puts it last unless told, and an index only serves the order it was built
    in. Scanned backwards, `NULLS FIRST` also serves `DESC NULLS LAST`.
    """
    for name in names:
        only_on(
            "postgresql",
            Index(
                f"ix_{table.name}_{name}_nulls_first",
                table.c[name].nulls_first(),
                table.c.id,
            ),
        )


_nullable_sort_indexes(table_of(NotificationRequest), "auto_notified", "item_url")


def _folded_indexes(table: Table, *names: str) -> None:
    """Index lower(column) for `startsWith`, which ignores the case of A-Z: it reads a
    range of lower(column) (app/services/text_prefixes.py). Emails are stored in lower
    case and ids compare as UUIDs, so their own indexes serve them."""
    for name in names:
        Index(f"ix_{table.name}_{name}_folded", func.lower(table.c[name]))


_folded_indexes(table_of(NotificationRequest), "app_id", "catalog_item_id", "item_url")


class Report(SQLModel, table=True):
    """One reportItemsBackInStock call: the item details every queued email shows."""

    __tablename__ = "reports"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    item_name: str = Field(sa_column=Column(String(200), nullable=False))
    item_price: str = Field(sa_column=Column(String(64), nullable=False))
    item_image: str | None = Field(
        default=None, sa_column=Column(String(2048), nullable=True)
    )
    template_parameters: dict[str, Any] | None = Field(
        default=None, sa_column=Column(PortableJSON, nullable=True)
    )
    created_date: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Notification(SQLModel, table=True):
    """One queued email: exists from the report until the outcome is recorded.

    While it exists its request reads as PROCESSING, with this row's attempts and error.

    `available_at` is the moment it may next be claimed. A claim pushes it forward by the
    lease, so a claim held by a dispatcher that died expires on its own.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_available", "available_at", "id"),
        # At most one per request: the request is PROCESSING while it exists (see
        # app.services.request_view), and a report racing another queues nothing twice.
        Index("uq_notifications_request", "request_id", unique=True),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    # No foreign keys: checking (and on PostgreSQL share-locking) the request or report of
    # every queued row is most of what a large report would cost. Deleting a request
    # deletes its notification (app.services.requests), and the dispatcher drops one whose
    # request is gone. Reports are never deleted.
    request_id: uuid.UUID = Field(sa_column=Column(GUID(), nullable=False))
    report_id: int = Field(sa_column=Column(Integer, nullable=False))
    # The request's delivery round when queued; with the request id it names the message.
    round: int = Field(sa_column=Column(Integer, nullable=False))
    attempts: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    available_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    lease_owner: str | None = Field(
        default=None, sa_column=Column(String(64), nullable=True)
    )
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_date: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Set by a mark or delete that found this notification claimed: no attempt may start
    # any more, and the one in flight, if any, records what really happened
    # (docs/delivery.md, "Marking or deleting while an email is sent").
    cancel_requested: bool = Field(
        default=False,
        sa_column=Column(Boolean, nullable=False, server_default=false()),
    )


class CollectionState(SQLModel, table=True):
    """Whether the service accepts new requests for one app's items."""

    __tablename__ = "collection_states"

    app_id: str = Field(sa_column=Column(code_point_string(64), primary_key=True))
    collecting_requests: bool = Field(sa_column=Column(Boolean, nullable=False))
    updated_date: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ApiKey(SQLModel, table=True):
    """An API key: only its sha256 is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(sa_column=Column(GUID(), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    key_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    # Comma-separated permission names.
    permissions: str = Field(sa_column=Column(Text, nullable=False))
    created_date: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_used_date: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    revoked_date: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


# A bigint on PostgreSQL; on SQLite an INTEGER PRIMARY KEY is the rowid (64 bits anyway).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class RequestEvent(SQLModel, table=True):
    """The outbox: one row per change of a request, written in the change's transaction.

    `id` is the global order of events. `entity` is the request's record after the change
    (app.services.request_view.RequestRecord's fields), None for `deleted`. Webhook
    deliveries and subscriptions read from here (app/events/).
    """

    __tablename__ = "request_events"
    __table_args__ = (
        # Each request's events are numbered 1, 2, 3...: the next number is one index
        # probe, and two changes of one request can never take the same one.
        Index(
            "uq_request_events_sequence",
            "request_id",
            "entity_event_sequence",
            unique=True,
        ),
        Index("ix_request_events_time", "event_time", "id"),
        # The events webhooks have yet to fan out to their endpoints (a short list).
        Index(
            "ix_request_events_webhooks_pending",
            "id",
            sqlite_where=text("webhooks_pending"),
            postgresql_where=text("webhooks_pending"),
        ),
        # SQLite: ids are never reused, even after the newest events were purged, so a
        # reader's "events after id N" never misses one.
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True)
    )
    # created, updated or deleted.
    type: str = Field(sa_column=Column(String(8), nullable=False))
    request_id: uuid.UUID = Field(sa_column=Column(GUID(), nullable=False))
    entity_event_sequence: int = Field(sa_column=Column(Integer, nullable=False))
    event_time: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    entity: dict[str, Any] | None = Field(
        default=None, sa_column=Column(PortableJSON, nullable=True)
    )
    # True until the webhook dispatcher has made the event's deliveries (false from the
    # start when no endpoint was enabled).
    webhooks_pending: bool = Field(sa_column=Column(Boolean, nullable=False))


class WebhookEndpoint(SQLModel, table=True):
    """A URL that receives signed events (Standard Webhooks), with its delivery state."""

    __tablename__ = "webhook_endpoints"

    id: uuid.UUID = Field(sa_column=Column(GUID(), primary_key=True))
    url: str = Field(sa_column=Column(String(2048), nullable=False))
    # Comma-separated event types (created,updated,deleted); None for all.
    event_types: str | None = Field(
        default=None, sa_column=Column(String(64), nullable=True)
    )
    # "whsec_" + base64 of 32 random bytes; signing needs it, so it is stored as is.
    secret: str = Field(sa_column=Column(String(100), nullable=False))
    # After a rotation the old secret signs too, until `previous_secret_expires`.
    previous_secret: str | None = Field(
        default=None, sa_column=Column(String(100), nullable=True)
    )
    previous_secret_expires: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    enabled: bool = Field(sa_column=Column(Boolean, nullable=False))
    disabled_reason: str | None = Field(
        default=None, sa_column=Column(Text, nullable=True)
    )
    created_date: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_success_date: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    last_failure_date: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The first failure since the last success; None while deliveries succeed.
    failing_since: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class WebhookDelivery(SQLModel, table=True):
    """One event owed to one endpoint: exists until delivered or given up.

    `available_at` is when it may next be claimed (a claim pushes it past the lease);
    None while an earlier event of the same request waits for the same endpoint.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_available", "available_at", "id"),
        Index("uq_webhook_deliveries_event", "endpoint_id", "event_id", unique=True),
        # The delivery before (and after) this one of the same request and endpoint.
        Index("ix_webhook_deliveries_request", "request_id", "endpoint_id", "event_id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True)
    )
    # No foreign keys: deleting an endpoint deletes its deliveries (app/events/).
    endpoint_id: uuid.UUID = Field(sa_column=Column(GUID(), nullable=False))
    event_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    request_id: uuid.UUID = Field(sa_column=Column(GUID(), nullable=False))
    attempts: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    available_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    lease_owner: str | None = Field(
        default=None, sa_column=Column(String(64), nullable=True)
    )
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_date: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class TrustedDocument(SQLModel, table=True):
    """A GraphQL document a request may name by its sha256 instead of sending its text.

    `source` says who registered it: "apq" (a client, through Apollo's automatic persisted
    queries; never trusted by TRUSTED_DOCUMENTS_ONLY) or "manifest:<file name>" (the
    operator, with `python -m app trust-documents`).
    """

    __tablename__ = "trusted_documents"

    # The lower-case hex sha256 of the text's UTF-8 bytes.
    sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    text: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(sa_column=Column(String(200), nullable=False))
    created_date: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class TrustedDocumentId(SQLModel, table=True):
    """Another id of a trusted document: the one a Relay manifest gave it (md5 by
    default), which Relay clients send as `documentId` (or `doc_id`)."""

    __tablename__ = "trusted_document_ids"

    document_id: str = Field(sa_column=Column(String(200), primary_key=True))
    sha256: str = Field(
        sa_column=Column(
            String(64), ForeignKey("trusted_documents.sha256"), nullable=False
        )
    )


class ServerKey(SQLModel, table=True):
    """A secret the servers sharing this database sign with when SECRET_KEYS is unset
    (app/keys.py): generated by the first server that starts."""

    __tablename__ = "server_keys"

    name: str = Field(sa_column=Column(String(64), primary_key=True))
    key: str = Field(sa_column=Column(String(128), nullable=False))
    created_date: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def counter() -> Any:
    """A count kept by the service, 0 in a new row."""
    return Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )


class CatalogItemDemand(SQLModel, table=True):
    """One catalog item's requests (any options) per status, as callers see them.

    Kept in the transaction of every change of a request (app/services/demand.py), so
    ranking items by demand reads a page of this table, not the requests. Waiting is
    RECEIVED + PROCESSING + FAILED: every open request, whose shopper has not been emailed.
    """

    __tablename__ = "catalog_item_demand"
    __table_args__ = (
        # The ranking, most waiting first, and within one app (keyset pages of both).
        Index(
            "ix_catalog_item_demand_ranking",
            "waiting_count",
            "app_id",
            "catalog_item_id",
        ),
        Index(
            "ix_catalog_item_demand_app_ranking",
            "app_id",
            "waiting_count",
            "catalog_item_id",
        ),
        # The item first: totalCount of catalogItemId eq, in and ranges reads a range
        # of it, and of startsWith one of the folded index (app/services/
        # request_totals.py). On SQLite the table is that key's tree (no rowid).
        PrimaryKeyConstraint(
            "catalog_item_id", "app_id", name="catalog_item_demand_pkey"
        ),
        Index("ix_catalog_item_demand_item_folded", "catalog_item_id_folded"),
        {"sqlite_with_rowid": False},
    )

    app_id: str = Field(sa_column=Column(code_point_string(64), primary_key=True))
    catalog_item_id: str = Field(
        sa_column=Column(code_point_string(36), primary_key=True)
    )
    # catalog_item_id with A-Z made a-z, as a filter's startsWith compares it.
    catalog_item_id_folded: str = Field(
        sa_column=Column(code_point_string(36), nullable=False)
    )
    received_count: int = Field(sa_column=Column(Integer, nullable=False))
    processing_count: int = Field(sa_column=Column(Integer, nullable=False))
    notification_sent_count: int = Field(sa_column=Column(Integer, nullable=False))
    failed_count: int = Field(sa_column=Column(Integer, nullable=False))
    # received + processing + failed, stored so that an index can rank by it.
    waiting_count: int = Field(sa_column=Column(Integer, nullable=False))
    # Creation dates of the oldest and newest waiting request; NULL when none waits.
    oldest_waiting_date: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    newest_waiting_date: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # Of each status's requests, those with autoNotified true and false (the rest have
    # null): totalCount of a filter on these fields sums counters (request_totals.py).
    received_auto_true_count: int = counter()
    received_auto_false_count: int = counter()
    processing_auto_true_count: int = counter()
    processing_auto_false_count: int = counter()
    notification_sent_auto_true_count: int = counter()
    notification_sent_auto_false_count: int = counter()
    failed_auto_true_count: int = counter()
    failed_auto_false_count: int = counter()


class RequestTotals(SQLModel, table=True):
    """An app's requests per status as callers see them, and of those how many have
    autoNotified true and false: what catalog_item_demand holds, added up per app and
    first character of the catalogItemId.

    Kept in the same transactions (app/services/demand.py), so totalCount of a filter on
    appId, status and autoNotified reads a few rows, and of a catalogItemId range the
    items of one or two initials. On PostgreSQL the counts are spread over a few `shard`
    rows (as daily_request_stats); readers add them up, and one shard alone may well be
    negative.
    """

    __tablename__ = "request_totals"

    app_id: str = Field(sa_column=Column(code_point_string(64), primary_key=True))
    catalog_item_initial: str = Field(
        sa_column=Column(code_point_string(1), primary_key=True)
    )
    shard: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    received_count: int = counter()
    processing_count: int = counter()
    notification_sent_count: int = counter()
    failed_count: int = counter()
    received_auto_true_count: int = counter()
    received_auto_false_count: int = counter()
    processing_auto_true_count: int = counter()
    processing_auto_false_count: int = counter()
    notification_sent_auto_true_count: int = counter()
    notification_sent_auto_false_count: int = counter()
    failed_auto_true_count: int = counter()
    failed_auto_false_count: int = counter()


class DailyRequestStats(SQLModel, table=True):
    """Per UTC day and app: requests created, notified (sent) and failed that day.

    Counted when it happens (app/services/demand.py); deleting a request later does not
    uncount it. On PostgreSQL a day's counts are spread over a few `shard` rows, so that
    concurrent creates for one app do not all wait for one row's lock; readers add them up.
    """

    __tablename__ = "daily_request_stats"
    __table_args__ = (Index("ix_daily_request_stats_app_day", "app_id", "day"),)

    # The day's first instant (00:00 UTC).
    day: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    app_id: str = Field(sa_column=Column(code_point_string(64), primary_key=True))
    shard: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    created_count: int = Field(sa_column=Column(Integer, nullable=False))
    notified_count: int = Field(sa_column=Column(Integer, nullable=False))
    failed_count: int = Field(sa_column=Column(Integer, nullable=False))


class RateLimitCounter(SQLModel, table=True):
    """Anonymous creates counted per client or email address and fixed window; two
    windows in a row give the sliding estimate (app.services.limits)."""

    __tablename__ = "rate_limit_counters"
    __table_args__ = (Index("ix_rate_limit_counters_expires", "expires_at"),)

    # "client:" or "email:" and the SHA-256 of the address, never the address itself.
    key: str = Field(sa_column=Column(String(80), primary_key=True))
    window_seconds: int = Field(sa_column=Column(Integer, primary_key=True))
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    hits: int = Field(sa_column=Column(Integer, nullable=False))
    # When the window no longer counts (its end plus one window): purged after that.
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class EmailConfirmation(SQLModel, table=True):
    """The confirmation email of one address with requests waiting to be confirmed: a
    queue of its own, leased like `notifications` (app.notify.confirmations)."""

    __tablename__ = "email_confirmations"
    __table_args__ = (Index("ix_email_confirmations_available", "available_at"),)

    contact_id: uuid.UUID = Field(sa_column=Column(GUID(), primary_key=True))
    email: str = Field(sa_column=Column(code_point_string(254), nullable=False))
    # When an email was last asked for: another is queued only some time after it.
    requested_date: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # When the pending email may next be claimed (a claim pushes it past its lease);
    # NULL when no email is pending.
    available_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    lease_owner: str | None = Field(
        default=None, sa_column=Column(String(64), nullable=True)
    )
    # Emails asked for so far: with the contact it names the message (Message-ID).
    round: int = Field(sa_column=Column(Integer, nullable=False))
    attempts: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sent_date: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
