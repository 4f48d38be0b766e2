"""Request events (the outbox) and their webhook endpoints and deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlmodel import Field, SQLModel

from app.models.base import (
    BigId,
)
from app.sqltypes import GUID, PortableJSON, UTCDateTime


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
