"""The initial schema: campaigns, lists, leads, number status, suppressions, attempts, audit.

Revision ID: 0001
Revises:
Create Date: 2024-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Aware datetimes: timestamptz in PostgreSQL, naive-UTC DATETIME text in SQLite.
UTC_DATETIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    _create_campaigns_and_lists()
    _create_leads()
    _create_number_status_and_suppressions()
    _create_attempts_and_audit()


def downgrade() -> None:
    for table in (
        "audit_log",
        "attempts",
        "suppressions",
        "number_status",
        "leads",
        "lead_lists",
        "campaigns",
    ):
        op.drop_table(table)


def _create_campaigns_and_lists() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("default_region", sa.String(8), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("settings", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )
    op.create_table(
        "lead_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(100), server_default="unknown", nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("imported_at", UTC_DATETIME, nullable=False),
        sa.Column("summary", sa.Text(), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_lead_lists_campaign_id_campaigns"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_lead_lists"),
        sa.UniqueConstraint(
            "campaign_id", "content_sha256", name="uq_lead_lists_campaign_id_content_sha256"
        ),
    )


def _create_leads() -> None:
    op.create_table(
        "leads",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(32), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("attributes", sa.Text(), server_default="{}", nullable=False),
        sa.Column("region", sa.String(8), server_default="", nullable=False),
        sa.Column("number_type", sa.String(32), server_default="", nullable=False),
        sa.Column("timezones", sa.Text(), server_default="", nullable=False),
        sa.Column("carrier", sa.Text(), server_default="", nullable=False),
        sa.Column("state", sa.String(32), server_default="ready", nullable=False),
        sa.Column("attempts_made", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_leads_campaign_id_campaigns"
        ),
        sa.ForeignKeyConstraint(["list_id"], ["lead_lists.id"], name="fk_leads_list_id_lead_lists"),
        sa.PrimaryKeyConstraint("id", name="pk_leads"),
        sa.UniqueConstraint("campaign_id", "e164", name="uq_leads_campaign_id_e164"),
    )
    op.create_index(
        "ix_leads_campaign_id_state_next_attempt_at",
        "leads",
        ["campaign_id", "state", "next_attempt_at"],
    )


def _create_number_status_and_suppressions() -> None:
    op.create_table(
        "number_status",
        sa.Column("e164", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("observed_at", UTC_DATETIME, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("recheck_at", UTC_DATETIME, nullable=True),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("e164", name="pk_number_status"),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("campaign", sa.String(200), server_default="", nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.CheckConstraint(
            "(scope = 'global' AND campaign = '') OR (scope = 'campaign' AND campaign <> '')",
            name="ck_suppressions_scope_matches_campaign",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
        sa.UniqueConstraint(
            "e164", "scope", "campaign", name="uq_suppressions_e164_scope_campaign"
        ),
    )


def _create_attempts_and_audit() -> None:
    op.create_table(
        "attempts",
        sa.Column("attempt_id", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", BIG_ID, nullable=False),
        sa.Column("e164", sa.String(32), nullable=False),
        sa.Column("trunk", sa.String(100), nullable=False),
        sa.Column("caller_id", sa.String(32), nullable=False),
        sa.Column("placed_at", UTC_DATETIME, nullable=False),
        sa.Column("answered_at", UTC_DATETIME, nullable=True),
        sa.Column("ended_at", UTC_DATETIME, nullable=True),
        sa.Column("sip_status", sa.Integer(), nullable=True),
        sa.Column("q850_cause", sa.Integer(), nullable=True),
        sa.Column("disposition", sa.String(32), nullable=True),
        sa.Column("agent_id", sa.String(100), nullable=True),
        sa.Column("abandoned", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_attempts_campaign_id_campaigns"
        ),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name="fk_attempts_lead_id_leads"),
        sa.PrimaryKeyConstraint("attempt_id", name="pk_attempts"),
    )
    op.create_index("ix_attempts_lead_id", "attempts", ["lead_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_subject_id", "audit_log", ["subject", "id"])
