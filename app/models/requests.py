"""Notification requests, the reports that queue their emails, and the queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
    func,
    true,
)
from sqlmodel import Field, SQLModel

from app.models.base import (
    only_on,
    table_of,
)
from app.sqltypes import GUID, PortableJSON, UTCDateTime, code_point_string

# The counted fields most often and-ed with a filter on another field, carried by that
# field's index (see NotificationRequest.__table_args__).
COVERED = ("app_id", "status")


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
        # One index per filter and sort key, each ended by id for keyset paging. Those
        # of fields the counters do not keep also hold app_id and status (COVERED): a
        # totalCount of such a filter and-ed with appId or status counts index entries
        # instead of looking up each match in the table (20-30x faster).
        Index("ix_notification_requests_created", "created_date", "id", *COVERED),
        Index("ix_notification_requests_contact", "contact_id", "id", *COVERED),
        Index("ix_notification_requests_status", "status", "id"),
        # The nullable sort keys: see _nullable_sort_indexes below for PostgreSQL.
        only_on(
            "sqlite",
            Index("ix_notification_requests_auto_notified", "auto_notified", "id"),
        ),
        only_on(
            "sqlite",
            Index("ix_notification_requests_item_url", "item_url", "id", *COVERED),
        ),
        Index("ix_notification_requests_email", "email", "id", *COVERED),
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
        # An itemUrl range and-ed with a status or an app, counted: one range of index
        # entries each (the covering index checks app and status entry by entry, which
        # took 2-3x longer for the near-half splits a dashboard sends at 1M).
        # Ended by id, which a count's check for a queued notification reads.
        Index("ix_notification_requests_status_item_url", "status", "item_url", "id"),
        Index("ix_notification_requests_app_item_url", "app_id", "item_url", "id"),
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


def _nullable_sort_indexes(table: Table, **extra_columns: tuple[str, ...]) -> None:
    """Index nullable sort keys the way the contract ranks NULL: lowest.

    SQLite already puts NULL first in ascending order (and has no NULLS FIRST in indexes);
    PostgreSQL puts it last unless told, and an index only serves the order it was built
    in. Scanned backwards, `NULLS FIRST` also serves `DESC NULLS LAST`.
    """
    for name, extra in extra_columns.items():
        only_on(
            "postgresql",
            Index(
                f"ix_{table.name}_{name}_nulls_first",
                table.c[name].nulls_first(),
                table.c.id,
                *(table.c[column] for column in extra),
            ),
        )


_nullable_sort_indexes(
    table_of(NotificationRequest), auto_notified=(), item_url=COVERED
)


def _folded_indexes(table: Table, *names: str, covering: tuple[str, ...] = ()) -> None:
    """Index lower(column) for `startsWith`, which ignores the case of A-Z: it reads a
    range of lower(column) (app/services/text_prefixes.py). Emails are stored in lower
    case and ids compare as UUIDs, so their own indexes serve them."""
    for name in names:
        Index(
            f"ix_{table.name}_{name}_folded",
            func.lower(table.c[name]),
            *(table.c[column] for column in covering),
        )


_folded_indexes(table_of(NotificationRequest), "app_id", "catalog_item_id")
# itemUrl startsWith and-ed with appId or status is counted from index entries too.
_folded_indexes(table_of(NotificationRequest), "item_url", covering=(*COVERED, "id"))


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
        # The PROCESSING requests newest (or oldest) first, the default order: a page of
        # them walks this instead of the requests' date index (app/services/
        # request_plans.py, Plan.QUEUE), where 1 request in 200 is queued.
        Index("ix_notifications_request_created", "request_created_date", "request_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    # No foreign keys: checking (and on PostgreSQL share-locking) the request or report of
    # every queued row is most of what a large report would cost. Deleting a request
    # deletes its notification (app.services.requests), and the dispatcher drops one whose
    # request is gone. Reports are never deleted.
    request_id: uuid.UUID = Field(sa_column=Column(GUID(), nullable=False))
    # The request's createdDate, copied when queued (it never changes). NULL only in a
    # row queued by a server older than migration 0014, which copies it for those.
    request_created_date: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
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
