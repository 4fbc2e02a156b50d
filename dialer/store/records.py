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
    priority: int = 0  # higher is dialed first (`rules.segments`)
    segment: str = ""
    due_at: datetime | None = None  # first due (default: created_at)


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
    priority: int = 0
    segment: str = ""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedLead:
    """A lead taken from the ready queue for dialing (its state is now `dialing`)."""

    id: int
    e164: str
    attempts_made: int
    timezones: tuple[str, ...]
    attributes: dict[str, str]
    segment: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAttempt:
    """An attempt to write before its dial command leaves."""

    attempt_id: str  # the pre-generated call id
    campaign_id: int
    lead_id: int
    e164: str
    trunk: str
    caller_id: str
    placed_at: datetime
    purpose: str = ""  # the campaign's: contact rules count calls per purpose
    script: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptOutcome:
    """How an attempt ended, and what follows for its lead (written exactly once)."""

    attempt_id: str
    disposition: str
    ended_at: datetime
    answered_at: datetime | None = None
    sip_status: int | None = None
    q850_cause: int | None = None
    agent_id: str | None = None
    abandoned: bool = False
    reason: str = ""
    lead_state: str  # ready, done, dead, exhausted
    next_attempt_at: datetime | None = None
    #: The lead's segment after this attempt (segments may look at its history); None:
    #: unchanged.
    placement: tuple[str, int] | None = None  # (segment, priority)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovery:
    """What opening a campaign after a stop or a crash put right."""

    attempts_closed: int  # open attempts closed as `failed`
    leads_released: int  # leads left in `dialing` put back in the queue
    #: The attempts closed: (attempt id, lead id, placed at), for their outcome events.
    closed: tuple[tuple[str, int, datetime], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRow:
    """One line of the outcome log, as `dialer export attempts` writes it."""

    attempt_id: str
    campaign: str
    lead_id: int
    e164: str
    list_source: str
    trunk: str
    caller_id: str
    placed_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    sip_status: int | None
    disposition: str | None
    agent_id: str | None
    abandoned: bool
    callee_timezones: tuple[str, ...]
    reason: str
    purpose: str = ""
    script: str = ""

    def to_record(self) -> dict[str, object]:
        """The row as `dialer export attempts` and the API give it (`ATTEMPT_FIELDS`;
        times UTC, ISO 8601 with `Z`)."""
        def utc(value: datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value is not None else None

        return {
            "attempt_id": self.attempt_id, "campaign": self.campaign, "lead_id": self.lead_id,
            "e164": self.e164, "list_source": self.list_source, "trunk": self.trunk,
            "caller_id": self.caller_id, "placed_at": utc(self.placed_at),
            "answered_at": utc(self.answered_at), "ended_at": utc(self.ended_at),
            "sip_status": self.sip_status, "disposition": self.disposition,
            "agent_id": self.agent_id, "abandoned": self.abandoned,
            "callee_timezones": list(self.callee_timezones),
            "purpose": self.purpose, "script": self.script, "reason": self.reason,
        }


#: The outcome log's columns, in order (a public contract: add at the end, never rename).
ATTEMPT_FIELDS = ("attempt_id", "campaign", "lead_id", "e164", "list_source", "trunk",
                  "caller_id", "placed_at", "answered_at", "ended_at", "sip_status",
                  "disposition", "agent_id", "abandoned", "callee_timezones", "purpose",
                  "script", "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptFilter:
    """Which attempts of the outcome log: by campaign, disposition and time placed
    (`since` inclusive, `until` exclusive); `after` is a page's cursor (the last row's
    placed_at and attempt_id); at most `limit` rows (None: all)."""

    campaign: str | None = None
    disposition: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: tuple[datetime, str] | None = None
    limit: int | None = None
