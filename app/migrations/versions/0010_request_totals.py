"""totalCount from counters: requests per status and autoNotified, per item and per app.

- `catalog_item_demand`: per status, how many of the item's requests have autoNotified
  true and how many false (the rest have null); `catalog_item_id_folded` (A-Z made
  a-z, as startsWith compares) and its index; the primary key starts with the item
  (on SQLite a table WITHOUT ROWID, made again).
- `request_totals`: the same counts added up per app and first character of the
  catalogItemId (spread over `shard` rows on PostgreSQL).

The new counters are counted from the requests there are.

Revision ID: 0010_request_totals
Revises: 0009_query_shape_indexes
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.sqltypes import UTCDateTime, code_point_string

revision: str = "0010_request_totals"
down_revision: str | None = "0009_query_shape_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = {
    "received": "RECEIVED",
    "processing": "PROCESSING",
    "notification_sent": "NOTIFICATION_SENT",
    "failed": "FAILED",
}
_STATUS_COUNTS = [f"{name}_count" for name in _STATUSES]
_AUTO_COUNTS = [
    f"{name}_auto_{value}_count" for name in _STATUSES for value in ("true", "false")
]
_COUNTS = [*_STATUS_COUNTS, *_AUTO_COUNTS]
# A request's status as callers see it: PROCESSING while a notification is queued.
_VISIBLE_STATUS = (
    "CASE WHEN n.request_id IS NOT NULL AND r.status <> 'NOTIFICATION_SENT' "
    "THEN 'PROCESSING' ELSE r.status END"
)


def _count(status: str, auto: str = "") -> str:
    also = f" AND r.auto_notified IS {auto.upper()}" if auto else ""
    return f"SUM(CASE WHEN {_VISIBLE_STATUS} = '{status}'{also} THEN 1 ELSE 0 END)"


_SET = ", ".join(f"{name} = counted.{name}" for name in _AUTO_COUNTS)
_SELECTED = ", ".join(
    f"{_count(status, value)} AS {name}_auto_{value}_count"
    for name, status in _STATUSES.items()
    for value in ("true", "false")
)
# The counters there are stay (kept since 0006); the new ones count the requests with
# an autoNotified. UPDATE ... FROM: SQLite 3.33 or later, as RETURNING needs 3.35.
_COUNT_AUTO_NOTIFIED = f"""
UPDATE catalog_item_demand SET {_SET}
FROM (
    SELECT r.app_id AS app_id, r.catalog_item_id AS catalog_item_id, {_SELECTED}
    FROM notification_requests r
    LEFT JOIN notifications n ON n.request_id = r.id
    WHERE r.auto_notified IS NOT NULL
    GROUP BY r.app_id, r.catalog_item_id
) counted
WHERE catalog_item_demand.app_id = counted.app_id
AND catalog_item_demand.catalog_item_id = counted.catalog_item_id
"""
_SUM_TOTALS = f"""
INSERT INTO request_totals (app_id, catalog_item_initial, shard, {", ".join(_COUNTS)})
SELECT app_id, substr(catalog_item_id, 1, 1), 0,
       {", ".join(f"SUM({name})" for name in _COUNTS)}
FROM catalog_item_demand
GROUP BY app_id, substr(catalog_item_id, 1, 1)
"""


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), server_default="0", nullable=False)


# catalog_item_demand's columns as 0006 made them.
_KEPT = [
    "app_id",
    "catalog_item_id",
    *_STATUS_COUNTS,
    "waiting_count",
    "oldest_waiting_date",
    "newest_waiting_date",
]


def _demand_table(name: str, *, upgraded: bool) -> None:
    """catalog_item_demand as this revision (`upgraded`) or 0006 has it, named `name`;
    a SQLite table can change its primary key only so."""
    extra: list[sa.schema.SchemaItem] = []
    if upgraded:
        extra = [
            sa.Column("catalog_item_id_folded", code_point_string(36), nullable=False),
            *(_counter(column) for column in _AUTO_COUNTS),
        ]
        key = sa.PrimaryKeyConstraint(
            "catalog_item_id", "app_id", name="catalog_item_demand_pkey"
        )
    else:
        key = sa.PrimaryKeyConstraint("app_id", "catalog_item_id")
    op.create_table(
        name,
        sa.Column("app_id", code_point_string(64), nullable=False),
        sa.Column("catalog_item_id", code_point_string(36), nullable=False),
        *(sa.Column(column, sa.Integer(), nullable=False) for column in _STATUS_COUNTS),
        sa.Column("waiting_count", sa.Integer(), nullable=False),
        sa.Column("oldest_waiting_date", UTCDateTime(), nullable=True),
        sa.Column("newest_waiting_date", UTCDateTime(), nullable=True),
        *extra,
        key,
        sqlite_with_rowid=not upgraded,
    )


def _ranking_indexes() -> None:
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


def _copy_demand(*, upgraded: bool) -> None:
    """SQLite: catalog_item_demand made again, its counters kept."""
    _demand_table("catalog_item_demand_new", upgraded=upgraded)
    kept = ", ".join(_KEPT)
    # lower() folds A-Z only (SQLite has no other case rules built in).
    folded = (
        (", catalog_item_id_folded", ", lower(catalog_item_id)")
        if upgraded
        else ("", "")
    )
    op.execute(
        f"INSERT INTO catalog_item_demand_new ({kept}{folded[0]}) "
        f"SELECT {kept}{folded[1]} FROM catalog_item_demand"
    )
    op.drop_table("catalog_item_demand")
    op.rename_table("catalog_item_demand_new", "catalog_item_demand")
    _ranking_indexes()


def _alter_demand() -> None:
    """PostgreSQL: the new columns added, the primary key made again."""
    for name in _AUTO_COUNTS:
        op.add_column("catalog_item_demand", _counter(name))
    op.add_column(
        "catalog_item_demand",
        sa.Column("catalog_item_id_folded", code_point_string(36), nullable=True),
    )
    # lower() folds A-Z only under the column's "C" collation.
    op.execute(
        "UPDATE catalog_item_demand SET catalog_item_id_folded = lower(catalog_item_id)"
    )
    op.alter_column("catalog_item_demand", "catalog_item_id_folded", nullable=False)
    op.drop_constraint("catalog_item_demand_pkey", "catalog_item_demand", "primary")
    op.create_primary_key(
        "catalog_item_demand_pkey", "catalog_item_demand", ["catalog_item_id", "app_id"]
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_demand(upgraded=True)
    else:
        _alter_demand()
    op.create_index(
        "ix_catalog_item_demand_item_folded",
        "catalog_item_demand",
        ["catalog_item_id_folded"],
    )
    op.create_table(
        "request_totals",
        sa.Column("app_id", code_point_string(64), nullable=False),
        sa.Column("catalog_item_initial", code_point_string(1), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        *(_counter(name) for name in _COUNTS),
        sa.PrimaryKeyConstraint("app_id", "catalog_item_initial", "shard"),
    )
    op.execute(_COUNT_AUTO_NOTIFIED)
    op.execute(_SUM_TOTALS)


def downgrade() -> None:
    op.drop_table("request_totals")
    op.drop_index(
        "ix_catalog_item_demand_item_folded", table_name="catalog_item_demand"
    )
    if op.get_bind().dialect.name == "sqlite":
        _copy_demand(upgraded=False)
        return
    op.drop_constraint("catalog_item_demand_pkey", "catalog_item_demand", "primary")
    op.create_primary_key(
        "catalog_item_demand_pkey", "catalog_item_demand", ["app_id", "catalog_item_id"]
    )
    for name in (*_AUTO_COUNTS, "catalog_item_id_folded"):
        op.drop_column("catalog_item_demand", name)
