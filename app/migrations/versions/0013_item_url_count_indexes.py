"""itemUrl ranges and-ed with a status or an app are counted from index ranges.

A totalCount of `itemUrl gte X AND status eq RECEIVED` walked itemUrl's covering index
and checked each entry's status: 120-320 ms at 1,000,000 requests when the range holds
half of them. An index led by the status (and one led by the app) holds exactly those
matches as one range, counted 2-3x faster. itemUrl's folded index (startsWith) also
holds app_id, status and id, so a startsWith and-ed with either is counted from its
entries too (160 ms -> 15-25 ms). Each ends with the id, which a count of RECEIVED or
FAILED requests reads to check for a queued notification.

Revision ID: 0013_item_url_count_indexes
Revises: 0012_reference_request_counts
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_item_url_count_indexes"
down_revision: str | None = "0012_reference_request_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "notification_requests"
_LED_BY = {
    "ix_notification_requests_status_item_url": "status",
    "ix_notification_requests_app_item_url": "app_id",
}
_FOLDED = "ix_notification_requests_item_url_folded"


def _folded(extra: list[str]) -> None:
    op.drop_index(_FOLDED, table_name=_TABLE)
    op.create_index(_FOLDED, _TABLE, [sa.text("lower(item_url)"), *extra])


def upgrade() -> None:
    for name, column in _LED_BY.items():
        op.create_index(name, _TABLE, [column, "item_url", "id"])
    _folded(["app_id", "status", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ANALYZE {_TABLE}")


def downgrade() -> None:
    _folded([])
    for name in _LED_BY:
        op.drop_index(name, table_name=_TABLE)
