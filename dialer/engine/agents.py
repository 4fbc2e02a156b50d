"""Agent events: what a human agent's softphone, CRM or the simulator reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoggedIn:
    agent_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReady:
    """The agent can take a call (after logging in, a pause, or wrap-up)."""

    agent_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentPaused:
    agent_id: str
    at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoggedOut:
    agent_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRequestedLead:
    """Preview mode: a ready agent asks for the next lead to look at."""

    agent_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDialedLead:
    """Preview mode: the agent chose to call the lead they were shown."""

    agent_id: str
    lead_id: int
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSkippedLead:
    """Preview mode: the agent passed on the lead they were shown (it goes back to the
    queue)."""

    agent_id: str
    lead_id: int
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRecordedOptOut:
    """The agent recorded that the callee asked never to be called again, during the call
    or its wrap-up (`call_id` None: the agent's latest call)."""

    agent_id: str
    at: datetime
    call_id: str | None = None


PreviewEvent = AgentRequestedLead | AgentDialedLead | AgentSkippedLead
AgentEvent = (AgentLoggedIn | AgentReady | AgentPaused | AgentLoggedOut | PreviewEvent
              | AgentRecordedOptOut)
