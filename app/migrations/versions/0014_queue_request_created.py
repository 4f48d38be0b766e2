"""The queue holds each request's createdDate, indexed: PROCESSING pages walk it.

A page of PROCESSING requests in the default order (newest first) walked the requests'
date index and looked each one up in the queue: 1 request in 200 is queued at
1,000,000 requests, so 20,000 of them for a page of 100 (38 ms on SQLite, 47-72 ms on
PostgreSQL). With the date in the queue, the page walks the queue's own
(request_created_date, request_id) index (app/services/request_plans.py, Plan.QUEUE).

Revision ID: 0014_queue_request_created
Revises: 0013_item_url_count_indexes
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_queue_request_created"
down_revision: str | None = "0013_item_url_count_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_notifications_request_created"
_COPY = """
UPDATE notifications SET request_created_date = (
    SELECT created_date FROM notification_requests
    WHERE notification_requests.id = notifications.request_id
)
"""


def upgrade() -> None:
    # As app.sqltypes.UTCDateTime makes it; the copy keeps each database's own form.
    column = sa.Column("request_created_date", sa.DateTime(timezone=True))
    op.add_column("notifications", column)
    op.execute(_COPY)
    op.create_index(_INDEX, "notifications", ["request_created_date", "request_id"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("request_created_date")
