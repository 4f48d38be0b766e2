"""Fair partial restocks and the demand a merchant can see.

- `ix_notification_requests_reference_waiting` (catalog_reference_key, open_request,
  created_date, id): a report with a quantity takes a reference's oldest waiting
  requests.
- `ix_notification_requests_app_item` (app_id, catalog_item_id) grows into
  `ix_notification_requests_item_status` (app_id, catalog_item_id, status,
  created_date): an item's oldest and newest waiting request, and its FAILED ones, in a
  few steps.
- `catalog_item_demand` and `daily_request_stats`, filled from the requests there are.
  The requests do not say when they were sent or failed, so `daily_request_stats` counts
  those from this migration on; `created_count` covers every request still stored.

Revision ID: 0006_restock_and_demand
Revises: 0005_server_keys
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.sqltypes import UTCDateTime, code_point_string

revision: str = "0006_restock_and_demand"
down_revision: str | None = "0005_server_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A request's status as callers see it: PROCESSING while a notification is queued.
_VISIBLE_STATUS = (
    "CASE WHEN n.request_id IS NOT NULL AND r.status <> 'NOTIFICATION_SENT' "
    "THEN 'PROCESSING' ELSE r.status END"
)


def _count(status: str) -> str:
    return f"SUM(CASE WHEN {_VISIBLE_STATUS} = '{status}' THEN 1 ELSE 0 END)"


_WAITING = "r.status IN ('RECEIVED', 'FAILED')"
_BACKFILL_DEMAND = f"""
INSERT INTO catalog_item_demand (
    app_id, catalog_item_id, received_count, processing_count,
    notification_sent_count, failed_count, waiting_count,
    oldest_waiting_date, newest_waiting_date
)
SELECT app_id, catalog_item_id, received, processing, sent, failed,
       received + processing + failed, oldest, newest
FROM (
    SELECT r.app_id AS app_id, r.catalog_item_id AS catalog_item_id,
           {_count("RECEIVED")} AS received,
           {_count("PROCESSING")} AS processing,
           {_count("NOTIFICATION_SENT")} AS sent,
           {_count("FAILED")} AS failed,
           MIN(CASE WHEN {_WAITING} THEN r.created_date END) AS oldest,
           MAX(CASE WHEN {_WAITING} THEN r.created_date END) AS newest
    FROM notification_requests r
    LEFT JOIN notifications n ON n.request_id = r.id
    GROUP BY r.app_id, r.catalog_item_id
) counted
WHERE received + processing + sent + failed > 0
"""
# The UTC day of created_date, as its first instant in the form UTCDateTime stores.
_DAY = {
    "sqlite": "date(created_date) || ' 00:00:00.000000'",
    "postgresql": (
        "date_trunc('day', created_date AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    ),
}


def _backfill_daily_stats(dialect: str) -> str:
    return f"""
INSERT INTO daily_request_stats (
    day, app_id, shard, created_count, notified_count, failed_count
)
SELECT {_DAY[dialect]}, app_id, 0, COUNT(*), 0, 0
FROM notification_requests
GROUP BY {_DAY[dialect]}, app_id
"""


def upgrade() -> None:
    op.drop_index(
        "ix_notification_requests_app_item", table_name="notification_requests"
    )
    op.create_index(
        "ix_notification_requests_item_status",
        "notification_requests",
        ["app_id", "catalog_item_id", "status", "created_date"],
    )
    op.create_index(
        "ix_notification_requests_reference_waiting",
        "notification_requests",
        ["catalog_reference_key", "open_request", "created_date", "id"],
    )
    op.create_table(
        "catalog_item_demand",
        sa.Column("app_id", code_point_string(64), nullable=False),
        sa.Column("catalog_item_id", code_point_string(36), nullable=False),
        sa.Column("received_count", sa.Integer(), nullable=False),
        sa.Column("processing_count", sa.Integer(), nullable=False),
        sa.Column("notification_sent_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("waiting_count", sa.Integer(), nullable=False),
        sa.Column("oldest_waiting_date", UTCDateTime(), nullable=True),
        sa.Column("newest_waiting_date", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("app_id", "catalog_item_id"),
    )
    op.create_index(
        "ix_catalog_item_demand_ranking",
        "catalog_item_demand",
        ["waiting_count", "app_id", "catalog_item_id"],
    )
    op.create_index(
        "ix_catalog_item_demand_app_ranking",
        "catalog_item_demand",
        ["app_id", "waiting_count", "catalog_item_id"],
    )
    op.create_table(
        "daily_request_stats",
        sa.Column("day", UTCDateTime(), nullable=False),
        sa.Column("app_id", code_point_string(64), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_count", sa.Integer(), nullable=False),
        sa.Column("notified_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "app_id", "shard"),
    )
    op.create_index(
        "ix_daily_request_stats_app_day", "daily_request_stats", ["app_id", "day"]
    )
    op.execute(_BACKFILL_DEMAND)
    op.execute(_backfill_daily_stats(op.get_bind().dialect.name))


def downgrade() -> None:
    op.drop_table("daily_request_stats")
    op.drop_table("catalog_item_demand")
    op.drop_index(
        "ix_notification_requests_reference_waiting",
        table_name="notification_requests",
    )
    op.drop_index(
        "ix_notification_requests_item_status", table_name="notification_requests"
    )
    op.create_index(
        "ix_notification_requests_app_item",
        "notification_requests",
        ["app_id", "catalog_item_id"],
    )
