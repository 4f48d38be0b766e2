"""A mark or delete that meets a claimed notification asks for it to be cancelled.

- `notifications.cancel_requested`: false for every queued notification; the dispatcher
  starts no attempt of a notification that has it, and settles it as marked by hand.

Revision ID: 0003_notification_cancel
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_notification_cancel"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (SQLite accepts it with a constant default).
    op.add_column(
        "notifications",
        sa.Column(
            "cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("cancel_requested")
