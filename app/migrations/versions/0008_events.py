"""Events: the request events outbox, webhook endpoints and their deliveries.

- `request_events`: one row per change of a request, written in the change's transaction.
- `webhook_endpoints`: URLs that receive signed events, with their delivery state.
- `webhook_deliveries`: events owed to endpoints, claimed under leases like notifications.

Revision ID: 0008_events
Revises: 0007_sign_up_safety
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.sqltypes import GUID, PortableJSON, UTCDateTime

revision: str = "0008_events"
down_revision: str | None = "0007_sign_up_safety"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "request_events",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("request_id", GUID(), nullable=False),
        sa.Column("entity_event_sequence", sa.Integer(), nullable=False),
        sa.Column("event_time", UTCDateTime(), nullable=False),
        sa.Column("entity", PortableJSON, nullable=True),
        sa.Column("webhooks_pending", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_request_events_sequence",
        "request_events",
        ["request_id", "entity_event_sequence"],
        unique=True,
    )
    op.create_index("ix_request_events_time", "request_events", ["event_time", "id"])
    op.create_index(
        "ix_request_events_webhooks_pending",
        "request_events",
        ["id"],
        sqlite_where=sa.text("webhooks_pending"),
        postgresql_where=sa.text("webhooks_pending"),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", GUID(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("event_types", sa.String(length=64), nullable=True),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("previous_secret", sa.String(length=100), nullable=True),
        sa.Column("previous_secret_expires", UTCDateTime(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_date", UTCDateTime(), nullable=False),
        sa.Column("last_success_date", UTCDateTime(), nullable=True),
        sa.Column("last_failure_date", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failing_since", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("endpoint_id", GUID(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("request_id", GUID(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_date", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_deliveries_available",
        "webhook_deliveries",
        ["available_at", "id"],
    )
    op.create_index(
        "uq_webhook_deliveries_event",
        "webhook_deliveries",
        ["endpoint_id", "event_id"],
        unique=True,
    )
    op.create_index(
        "ix_webhook_deliveries_request",
        "webhook_deliveries",
        ["request_id", "endpoint_id", "event_id"],
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_table("request_events")
