"""PROCESSING is read from the queue: a report inserts notifications and writes no request.

- `notifications.request_id`: no foreign key, and unique (one queued notification per
  request).
- A stored PROCESSING becomes RECEIVED: the request still reads as PROCESSING while its
  notification is queued (app.services.request_view), and is reported again if none is.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOREIGN_KEY = "notifications_request_id_fkey"
# Names SQLite's unnamed foreign keys, so that batch mode can drop one.
_UNNAMED_FK = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    # Only one notification per request was ever queued; keep the newest if not.
    op.execute(
        "DELETE FROM notifications WHERE id NOT IN "
        "(SELECT max(id) FROM notifications GROUP BY request_id)"
    )
    op.execute(
        "UPDATE notification_requests SET status = 'RECEIVED' WHERE status = 'PROCESSING'"
    )
    op.drop_index("ix_notifications_request_id", table_name="notifications")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_FOREIGN_KEY, "notifications", type_="foreignkey")
    else:
        # SQLite cannot drop a constraint: copy the table without it. The unnamed foreign
        # key is found by reflection.
        with op.batch_alter_table(
            "notifications", recreate="always", naming_convention=_UNNAMED_FK
        ) as batch:
            batch.drop_constraint(
                "fk_notifications_request_id_notification_requests", type_="foreignkey"
            )
    op.create_index(
        "uq_notifications_request", "notifications", ["request_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_notifications_request", table_name="notifications")
    op.execute(
        "DELETE FROM notifications WHERE request_id NOT IN "
        "(SELECT id FROM notification_requests)"
    )
    # Revision 0001 stores PROCESSING, and the round a report queued on the request.
    op.execute(
        "UPDATE notification_requests SET status = 'PROCESSING', delivery_round = "
        "(SELECT round FROM notifications WHERE request_id = notification_requests.id) "
        "WHERE status <> 'NOTIFICATION_SENT' "
        "AND id IN (SELECT request_id FROM notifications)"
    )
    with op.batch_alter_table("notifications") as batch:
        batch.create_foreign_key(
            _FOREIGN_KEY,
            "notification_requests",
            ["request_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_index("ix_notifications_request_id", "notifications", ["request_id"])
