"""Lead segments: each lead's segment and priority, and the ready queue by priority.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False,
                                   server_default=sa.text("0")))
        batch.add_column(sa.Column("segment", sa.String(100), nullable=False,
                                   server_default=""))
    op.create_index("ix_leads_campaign_id_state_priority_next_attempt_at", "leads",
                    ["campaign_id", "state", "priority", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_leads_campaign_id_state_priority_next_attempt_at", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("segment")
        batch.drop_column("priority")
