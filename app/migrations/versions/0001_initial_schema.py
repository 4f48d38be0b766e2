"""Initial schema: notification requests, reports, the notification queue, collection
states and API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.sqltypes import GUID, PortableJSON, UTCDateTime, code_point_string

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create_nullable_sort_index(name: str, column: str) -> None:
    """Index a nullable sort key in the contract's order: NULL ranks lowest."""
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            f"{name}_nulls_first",
            "notification_requests",
            [sa.nullsfirst(sa.column(column)), "id"],
        )
    else:
        op.create_index(name, "notification_requests", [column, "id"])


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", GUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("created_date", UTCDateTime(), nullable=False),
        sa.Column("last_used_date", UTCDateTime(), nullable=True),
        sa.Column("revoked_date", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "collection_states",
        sa.Column("app_id", code_point_string(64), nullable=False),
        sa.Column("collecting_requests", sa.Boolean(), nullable=False),
        sa.Column("updated_date", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("app_id"),
    )
    op.create_table(
        "notification_requests",
        sa.Column("id", GUID(), nullable=False),
        sa.Column("app_id", code_point_string(64), nullable=False),
        sa.Column("catalog_item_id", code_point_string(36), nullable=False),
        sa.Column("options", PortableJSON, nullable=True),
        sa.Column("catalog_reference_key", sa.String(length=64), nullable=False),
        sa.Column("email", code_point_string(254), nullable=False),
        sa.Column("contact_id", GUID(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("open_request", sa.Boolean(), nullable=True),
        sa.Column("auto_notified", sa.Boolean(), nullable=True),
        sa.Column("created_date", UTCDateTime(), nullable=False),
        sa.Column("item_url", code_point_string(2048), nullable=True),
        sa.Column("item_name", sa.String(length=200), nullable=False),
        sa.Column("item_price", sa.String(length=64), nullable=False),
        sa.Column("item_image", sa.String(length=2048), nullable=True),
        sa.Column("delivery_round", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "delivery_attempts", sa.Integer(), server_default="0", nullable=False
        ),
        sa.Column("last_delivery_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    requests_indexes = {
        "ix_notification_requests_app_item": ["app_id", "catalog_item_id"],
        "ix_notification_requests_contact": ["contact_id", "id"],
        "ix_notification_requests_created": ["created_date", "id"],
        "ix_notification_requests_email": ["email", "id"],
        "ix_notification_requests_item": ["catalog_item_id"],
        "ix_notification_requests_status": ["status", "id"],
    }
    for name, columns in requests_indexes.items():
        op.create_index(name, "notification_requests", columns)
    _create_nullable_sort_index(
        "ix_notification_requests_auto_notified", "auto_notified"
    )
    _create_nullable_sort_index("ix_notification_requests_item_url", "item_url")
    op.create_index(
        "uq_notification_requests_open",
        "notification_requests",
        ["catalog_reference_key", "email", "open_request"],
        unique=True,
    )

    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_name", sa.String(length=200), nullable=False),
        sa.Column("item_price", sa.String(length=64), nullable=False),
        sa.Column("item_image", sa.String(length=2048), nullable=True),
        sa.Column("template_parameters", PortableJSON, nullable=True),
        sa.Column("created_date", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", GUID(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_date", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["notification_requests.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_notifications_available", "notifications", ["available_at", "id"]
    )
    op.create_index("ix_notifications_request_id", "notifications", ["request_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes.
    op.drop_table("notifications")
    op.drop_table("reports")
    op.drop_table("notification_requests")
    op.drop_table("collection_states")
    op.drop_table("api_keys")
