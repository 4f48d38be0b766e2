"""Requests counted per itemUrl and app, as they are per item.

totalCount of an itemUrl range that splits the requests near half counted half a
million index entries (PostgreSQL at 1,000,000 requests: 106-135 ms, over the 100 ms of
issue 16). item_url_demand holds, per URL and app, what catalog_item_demand holds per
item (app/models/demand.py, ItemUrlDemand): such a total adds up one row per URL.
Counted here from the requests there are, each with its status as callers see it
(PROCESSING while a notification is queued and it is not sent).

Revision ID: 0015_item_url_demand
Revises: 0014_queue_request_created
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.sqltypes import code_point_string

revision: str = "0015_item_url_demand"
down_revision: str | None = "0014_queue_request_created"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = {
    "received": "RECEIVED",
    "processing": "PROCESSING",
    "notification_sent": "NOTIFICATION_SENT",
    "failed": "FAILED",
}
_COUNTS = [
    *(f"{name}_count" for name in _STATUSES),
    *(f"{name}_auto_{auto}_count" for name in _STATUSES for auto in ("true", "false")),
]
_SEEN = (
    "CASE WHEN q.request_id IS NOT NULL AND r.status <> 'NOTIFICATION_SENT' "
    "THEN 'PROCESSING' ELSE r.status END"
)


def _sums() -> str:
    sums = [
        f"SUM(CASE WHEN {_SEEN} = '{status}' THEN 1 ELSE 0 END)"
        for status in _STATUSES.values()
    ]
    sums += [
        f"SUM(CASE WHEN {_SEEN} = '{status}' AND r.auto_notified = {auto} "
        "THEN 1 ELSE 0 END)"
        for status in _STATUSES.values()
        for auto in ("TRUE", "FALSE")
    ]
    return ", ".join(sums)


_COUNT = f"""
INSERT INTO item_url_demand (app_id, item_url, item_url_folded, {", ".join(_COUNTS)})
SELECT r.app_id, r.item_url, lower(r.item_url), {_sums()}
FROM notification_requests r LEFT JOIN notifications q ON q.request_id = r.id
WHERE r.item_url IS NOT NULL
GROUP BY r.app_id, r.item_url
"""


def upgrade() -> None:
    op.create_table(
        "item_url_demand",
        sa.Column("app_id", code_point_string(64), nullable=False),
        sa.Column("item_url", code_point_string(2048), nullable=False),
        sa.Column("item_url_folded", code_point_string(2048), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False, server_default="0")
            for name in _COUNTS
        ),
        sa.PrimaryKeyConstraint("item_url", "app_id", name="item_url_demand_pkey"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_item_url_demand_folded", "item_url_demand", ["item_url_folded"])
    op.execute(_COUNT)


def downgrade() -> None:
    op.drop_table("item_url_demand")
