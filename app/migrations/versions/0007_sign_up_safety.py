"""A public sign-up that cannot be turned into an email cannon (issue 14).

- `rate_limit_counters`: anonymous creates per client and per email address, per window.
- `email_confirmations`: the confirmation email of an address (double opt-in), queued.
- `notification_requests.confirmed`: true for every existing request.

Revision ID: 0007_sign_up_safety
Revises: 0006_restock_and_demand
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.sqltypes import GUID, UTCDateTime, code_point_string

revision: str = "0007_sign_up_safety"
down_revision: str | None = "0006_restock_and_demand"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("window_seconds", sa.Integer(), primary_key=True),
        sa.Column("window_start", UTCDateTime(), primary_key=True),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_rate_limit_counters_expires", "rate_limit_counters", ["expires_at"]
    )
    op.create_table(
        "email_confirmations",
        sa.Column("contact_id", GUID(), primary_key=True),
        sa.Column("email", code_point_string(254), nullable=False),
        sa.Column("requested_date", UTCDateTime(), nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_date", UTCDateTime(), nullable=True),
    )
    op.create_index(
        "ix_email_confirmations_available", "email_confirmations", ["available_at"]
    )
    # A plain ADD COLUMN on both databases (SQLite accepts it with a constant default).
    op.add_column(
        "notification_requests",
        sa.Column("confirmed", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_index(
        "ix_notification_requests_confirmed",
        "notification_requests",
        ["confirmed", "id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_notification_requests_confirmed", table_name="notification_requests"
    )
    with op.batch_alter_table("notification_requests") as batch:
        batch.drop_column("confirmed")
    op.drop_index("ix_email_confirmations_available", table_name="email_confirmations")
    op.drop_table("email_confirmations")
    op.drop_index("ix_rate_limit_counters_expires", table_name="rate_limit_counters")
    op.drop_table("rate_limit_counters")
