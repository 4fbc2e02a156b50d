"""The store's tables, as SQLAlchemy Core metadata.

This module is the model that `migrations/versions/` must build; a test compares the
two on every supported database. JSON documents are stored as text (`json.dumps` with
`ensure_ascii=False`), so both SQLite and PostgreSQL keep them byte for byte.

Callees' phone numbers and what a lead file says about them are encrypted at rest
(`dialer.store.crypto`, text `v1:<key id>:...`): `leads.e164`, `leads.raw`,
`leads.attributes`, `attempts.e164`, `suppressions.e164` and `number_status.e164`
(`ENCRYPTED`). Beside each `e164`, `e164_hash` (the keyed lookup hash, 64 hex characters)
carries the unique constraints, lookups and joins. Our own numbers (caller IDs) and the
audit log's campaign subjects stay readable; a number's audit subject is `number:<hash>`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: How a lead's `timezones` tuple is joined into one text column.
TIMEZONE_SEPARATOR = ","


def split_timezones(text: str) -> tuple[str, ...]:
    """The `timezones` column back as a tuple."""
    return tuple(zone for zone in text.split(TIMEZONE_SEPARATOR) if zone)


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    """`value` converted to UTC; raises ValueError if it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got a naive datetime)")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in Python; naive UTC text in SQLite, timestamptz in PostgreSQL.

    - binding a naive datetime raises ValueError;
    - results are always aware UTC, microseconds intact, on every database.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(DateTime())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = require_aware(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: A 64-bit id that still autoincrements in SQLite (only INTEGER PRIMARY KEY does).
BigId = BigInteger().with_variant(Integer(), "sqlite")

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("default_region", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("settings", Text, nullable=False, server_default="{}"),
)

lead_lists = Table(
    "lead_lists",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id"), nullable=False),
    Column("source", String(100), nullable=False, server_default="unknown"),
    Column("file_name", Text, nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False, server_default="{}"),
    UniqueConstraint("campaign_id", "content_sha256"),
)

leads = Table(
    "leads",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id"), nullable=False),
    Column("list_id", Integer, ForeignKey("lead_lists.id"), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("e164", Text, nullable=False),  # encrypted, as are raw and attributes
    Column("e164_hash", String(64), nullable=False),
    Column("raw", Text, nullable=False),
    Column("attributes", Text, nullable=False),  # a JSON document, encrypted
    Column("region", String(8), nullable=False, server_default=""),
    Column("number_type", String(32), nullable=False, server_default=""),
    Column("timezones", Text, nullable=False, server_default=""),
    Column("carrier", Text, nullable=False, server_default=""),
    Column("state", String(32), nullable=False, server_default="ready"),
    Column("attempts_made", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("priority", Integer, nullable=False, server_default=text("0")),  # from segments
    Column("segment", String(100), nullable=False, server_default=""),
    UniqueConstraint("campaign_id", "e164_hash"),  # also finds a campaign's lead by number
    Index(None, "campaign_id", "state", "next_attempt_at"),
    Index(None, "campaign_id", "state", "priority", "next_attempt_at"),  # the ready queue
)

number_status = Table(
    "number_status",
    metadata,
    Column("e164_hash", String(64), primary_key=True),
    Column("e164", Text, nullable=False),  # encrypted
    Column("status", String(32), nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("source", String(100), nullable=False),
    Column("recheck_at", UTCDateTime, nullable=True),
    Column("detail", Text, nullable=False, server_default=""),
)

# The unique constraint's index leads with e164_hash, so it also serves lookups by number.
suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("e164", Text, nullable=False),  # encrypted
    Column("e164_hash", String(64), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("campaign", String(200), nullable=False, server_default=""),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("e164_hash", "scope", "campaign"),
    CheckConstraint(
        "(scope = 'global' AND campaign = '') OR (scope = 'campaign' AND campaign <> '')",
        name="scope_matches_campaign",
    ),
)

attempts = Table(
    "attempts",
    metadata,
    Column("attempt_id", String(64), primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id"), nullable=False),
    Column("lead_id", BigId, ForeignKey("leads.id"), nullable=False),
    Column("e164", Text, nullable=False),  # encrypted
    Column("e164_hash", String(64), nullable=False),
    Column("trunk", String(100), nullable=False),
    Column("caller_id", String(32), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("sip_status", Integer, nullable=True),
    Column("q850_cause", Integer, nullable=True),
    Column("disposition", String(32), nullable=True),
    Column("agent_id", String(100), nullable=True),
    Column("abandoned", Boolean, nullable=False, server_default=false()),
    Column("reason", Text, nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("purpose", String(16), nullable=False, server_default=""),  # '' before 0003
    Column("script", String(200), nullable=False, server_default=""),
    Index(None, "lead_id"),
    Index("ix_attempts_campaign_open", "campaign_id", "disposition"),
    Index(None, "e164_hash", "placed_at"),  # a callee's history across campaigns
)

#: The encrypted columns, by table: each value's associated data is "<table>.<column>".
ENCRYPTED: dict[str, tuple[str, ...]] = {
    "leads": ("e164", "raw", "attributes"),
    "attempts": ("e164",),
    "suppressions": ("e164",),
    "number_status": ("e164",),
}

key_fingerprints = Table(  # one-way digests of the keys the data was written with
    "key_fingerprints",
    metadata,
    Column("name", String(64), primary_key=True),  # `hash`, or `data:<key id>`
    Column("fingerprint", String(64), nullable=False),
)

line_events = Table(
    "line_events",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # trunk (caller_id later)
    Column("subject", String(200), nullable=False),
    Column("before", String(32), nullable=False),
    Column("after", String(32), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Index("ix_line_events_campaign_at", "campaign", "at"),
)

caller_id_marks = Table(  # a tally per report: the latest one counts
    "caller_id_marks",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("number", String(32), nullable=False),
    Column("marks", Integer, nullable=False),
    Column("reported_at", UTCDateTime, nullable=False),
    Column("source", String(200), nullable=False),
    Index("ix_caller_id_marks_number_reported_at", "number", "reported_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),
    Index(None, "subject", "id"),
)

# --- the service (`dialer serve`): access, idempotent requests, the webhook outbox ---

api_keys = Table(  # machines: a key is `dk_<key_id>_<secret>`; only the secret's hash is kept
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", String(32), nullable=False, unique=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

users = Table(  # people: a password (scrypt) and a role
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
)

idempotency_keys = Table(  # a request's `Idempotency-Key`: its answer, given again
    "idempotency_keys",
    metadata,
    Column("principal", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

webhook_events = Table(  # the outbox: written in the transaction that caused the event
    "webhook_events",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("campaign", String(200), nullable=False, server_default=""),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

webhook_deliveries = Table(  # one row per event and endpoint that wants it
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("event_id", String(64), ForeignKey("webhook_events.event_id"), nullable=False),
    Column("endpoint", String(200), nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_try_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("delivered_at", UTCDateTime, nullable=True),
    UniqueConstraint("event_id", "endpoint"),
    Index("ix_webhook_deliveries_due", "state", "next_try_at"),
)
