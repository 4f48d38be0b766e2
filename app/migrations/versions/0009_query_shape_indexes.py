"""Indexes for the query shapes a dashboard sends (app/services/request_plans.py).

- `ix_notification_requests_{app_id,catalog_item_id,item_url}_folded`: lower(column),
  whose ranges `startsWith` reads (app/services/text_prefixes.py) instead of walking
  the date index for matches.
- `ix_notification_requests_item` (catalog_item_id) grows into
  `ix_notification_requests_item_created` (catalog_item_id, created_date, id): an item's
  requests newest first are one range.
- `ix_notification_requests_auto_notified_created` (auto_notified, created_date, id):
  requests auto-notified or not, newest first, however few are among the newest.
- `ix_notification_requests_status_notified_created` (status, auto_notified,
  created_date, id): a status and autoNotified together, however rare the pair.
- PostgreSQL: statistics of status and auto_notified together (`CREATE STATISTICS`),
  so that its planner knows a rare pair is rare (it would multiply their shares, and
  scan the table for a RECEIVED request that was auto-notified).

Revision ID: 0009_query_shape_indexes
Revises: 0008_events
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_query_shape_indexes"
down_revision: str | None = "0008_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOLDED = ("app_id", "catalog_item_id", "item_url")
_BY_DATE = {
    "ix_notification_requests_item_created": ["catalog_item_id", "created_date", "id"],
    "ix_notification_requests_auto_notified_created": [
        "auto_notified",
        "created_date",
        "id",
    ],
    "ix_notification_requests_status_notified_created": [
        "status",
        "auto_notified",
        "created_date",
        "id",
    ],
}


_PAIR_STATISTICS = "notification_requests_status_notified"


def upgrade() -> None:
    op.drop_index("ix_notification_requests_item", table_name="notification_requests")
    for name, columns in _BY_DATE.items():
        op.create_index(name, "notification_requests", columns)
    for name in _FOLDED:
        op.create_index(
            f"ix_notification_requests_{name}_folded",
            "notification_requests",
            [sa.text(f"lower({name})")],
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE STATISTICS {_PAIR_STATISTICS} (mcv) "
            "ON status, auto_notified FROM notification_requests"
        )
        op.execute("ANALYZE notification_requests")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP STATISTICS {_PAIR_STATISTICS}")
    for name in _FOLDED:
        op.drop_index(
            f"ix_notification_requests_{name}_folded",
            table_name="notification_requests",
        )
    for name in _BY_DATE:
        op.drop_index(name, table_name="notification_requests")
    op.create_index(
        "ix_notification_requests_item", "notification_requests", ["catalog_item_id"]
    )
