"""Server keys: the secret that signs cursors, kept for servers without SECRET_KEYS.

Revision ID: 0005_server_keys
Revises: 0004_trusted_documents
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.sqltypes import UTCDateTime

revision: str = "0005_server_keys"
down_revision: str | None = "0004_trusted_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("created_date", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_keys")
