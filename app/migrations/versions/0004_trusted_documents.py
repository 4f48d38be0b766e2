"""Trusted documents: GraphQL documents kept by their sha256 (from manifests and APQ), and
the other ids (Relay's) a manifest gave them.

Revision ID: 0004_trusted_documents
Revises: 0003_notification_cancel
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.sqltypes import UTCDateTime

revision: str = "0004_trusted_documents"
down_revision: str | None = "0003_notification_cancel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trusted_documents",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("created_date", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "trusted_document_ids",
        sa.Column("document_id", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["sha256"], ["trusted_documents.sha256"]),
        sa.PrimaryKeyConstraint("document_id"),
    )


def downgrade() -> None:
    op.drop_table("trusted_document_ids")
    op.drop_table("trusted_documents")
