"""Contact history: each attempt's purpose and script, and attempts found by number.

The contact rules count a callee's calls across campaigns by purpose (`rules.contact`),
and tuning counts outcomes per script.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("purpose", sa.String(16), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("script", sa.String(200), nullable=False,
                                   server_default=""))
    op.create_index("ix_attempts_e164_placed_at", "attempts", ["e164", "placed_at"])


def downgrade() -> None:
    op.drop_index("ix_attempts_e164_placed_at", table_name="attempts")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("script")
        batch.drop_column("purpose")
