"""The values the store takes and returns: frozen rows, never live ORM objects.

Every datetime in these values is timezone-aware UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class SuppressionScope(enum.StrEnum):
    """Where a suppression applies: every campaign, or one named campaign."""

    GLOBAL = "global"
    CAMPAIGN = "campaign"


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadList:
    """One imported lead file; (campaign_id, sha256) is unique, so a file imports once."""

    id: int
    campaign_id: int
    source: str
    file_name: str
    sha256: str
    imported_at: datetime
    summary: dict[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewLead:
    """A lead to insert. `region`, `number_type` and `carrier` are '' when unknown."""

    campaign_id: int
    list_id: int
    row_number: int
    e164: str
    raw: str
    attributes: dict[str, str]
    region: str
    number_type: str
    timezones: tuple[str, ...]
    carrier: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Lead:
    """A stored lead: what was inserted, plus its id and dialing state."""

    id: int
    campaign_id: int
    list_id: int
    row_number: int
    e164: str
    raw: str
    attributes: dict[str, str]
    region: str
    number_type: str
    timezones: tuple[str, ...]
    carrier: str
    state: str
    attempts_made: int
    next_attempt_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppression:
    """A number that must not be called; `campaign` is None for a global suppression."""

    e164: str
    scope: SuppressionScope
    campaign: str | None
    reason: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One line of the audit log: who did what to which subject, and when."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, object]
