"""What the engine asks its owner to do, and the engine-level events it is fed.

Commands are carried out in the order the engine returns them. The order is the engine's
promise: `RecordAttempts` always comes before the `PlaceCall`s of those attempts, so an
owner that commits each command before the next never dials an unrecorded attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from dialer.store import AttemptOutcome, ClaimedLead, NewAttempt
from lines.callerid import CallerIdChanged
from lines.health import HealthChanged
from lines.telephony import CallRequest
from rules.number_status import NumberStatusRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """Time passed; the engine looks at its deadlines and its pace."""

    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadsClaimed:
    """The answer to `ClaimLeads`: the leads now reserved for dialing (maybe fewer)."""

    at: datetime
    requested: int
    leads: tuple[ClaimedLead, ...]
    for_agent: str | None = None  # the `ClaimLeads.for_agent` this answers


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimLeads:
    count: int
    #: Preview mode: the lead is for this (reserved) agent to look at, not for dialing now.
    for_agent: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordAttempts:
    attempts: tuple[NewAttempt, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseLeads:
    """Claimed leads the engine will not dial now (no line free): back to the queue."""

    lead_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceCall:
    request: CallRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectAgent:
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StartScript:
    call_id: str
    script: str
    variables: Mapping[str, str] = field(default_factory=dict)  # the lead's attributes


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayAbandonMessage:
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HangUp:
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseAttempt:
    """Write the attempt's one outcome; with it, the number's new status and, for an
    opt-out, the suppression, all in one transaction."""

    outcome: AttemptOutcome
    number_status: NumberStatusRecord | None = None
    suppress_reason: str | None = None
    e164: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SuppressNumber:
    """Suppress a number now (an opt-out heard during a call): written before anything else
    happens to the call, so a crash cannot lose it."""

    e164: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentWrapping:
    """An agent's call ended and wrap-up began (a simulated agent becomes ready later)."""

    agent_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviewLead:
    """Preview mode: show `lead` to the agent now reserved for it; the agent dials it
    (`AgentDialedLead`) or skips it (`AgentSkippedLead`)."""

    agent_id: str
    lead: ClaimedLead


@dataclass(frozen=True, slots=True, kw_only=True)
class NoLeadForAgent:
    """Preview mode: the agent asked for a lead and none is due; the agent is ready again
    and may ask later."""

    agent_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReleased:
    """Preview mode: the agent's lead ended without a call for them (the call they dialed
    went unanswered, or no line was free to dial it); the agent is ready again."""

    agent_id: str


#: What the engine tells an agent's desk in preview mode.
DeskCommand = PreviewLead | NoLeadForAgent | AgentReleased

@dataclass(frozen=True, slots=True, kw_only=True)
class LineStateChanged:
    """A trunk went out of service, began probing or came back, or a caller ID moved on
    in its lifecycle (rested, promoted, retired, ...): log it and keep it."""

    change: HealthChanged | CallerIdChanged
    at: datetime

    @property
    def kind(self) -> str:
        return "trunk" if isinstance(self.change, HealthChanged) else "caller_id"

    @property
    def subject(self) -> str:
        change = self.change
        return change.trunk if isinstance(change, HealthChanged) else change.number


Command = (
    ClaimLeads | RecordAttempts | ReleaseLeads | PlaceCall | ConnectAgent | StartScript
    | PlayAbandonMessage | HangUp | CloseAttempt | SuppressNumber | AgentWrapping
    | DeskCommand | LineStateChanged
)
