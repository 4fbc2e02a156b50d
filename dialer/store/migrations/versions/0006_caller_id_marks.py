"""Spam marks reported for our caller IDs (a marking service's export, or the API).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "caller_id_marks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("marks", sa.Integer(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_id_marks")),
    )
    op.create_index("ix_caller_id_marks_number_reported_at", "caller_id_marks",
                    ["number", "reported_at"])


def downgrade() -> None:
    op.drop_index("ix_caller_id_marks_number_reported_at", table_name="caller_id_marks")
    op.drop_table("caller_id_marks")
