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


AgentEvent = AgentLoggedIn | AgentReady | AgentPaused | AgentLoggedOut
