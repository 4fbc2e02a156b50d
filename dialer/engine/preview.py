"""Preview mode's desk: which agent holds which lead, and the call they dialed for it.

An agent asks for a lead (`AgentRequestedLead`): the engine reserves the agent
(`Staff.reserve`) and claims one lead for them (`ClaimLeads(for_agent=...)`). The lead
comes back and is shown to them (`PreviewLead`), or none is due (`NoLeadForAgent`, the
agent is ready again). The agent dials it (`AgentDialedLead`: the engine places the call,
bound to the agent) or skips it (`AgentSkippedLead`: the lead goes back to the queue). A
bound call that is answered goes to its agent, never to the queue; one that ends
unanswered lets the agent go (`AgentReleased`).

A pause or logout while the agent looks at a lead (or waits for one) lets the agent go
at once, the lead back to the queue; while their call is out, it waits for the call
(`Staff`). Agent desks send odd events (twice, late, for a lead they were not shown):
whatever does not fit the agent's reservation is logged and ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from dialer.engine.agents import AgentDialedLead, AgentRequestedLead, AgentSkippedLead
from dialer.engine.commands import (
    ClaimLeads,
    Command,
    LeadsClaimed,
    NoLeadForAgent,
    PreviewLead,
    ReleaseLeads,
)
from dialer.engine.staff import Staff
from dialer.store import ClaimedLead

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Reservation:
    """What a reserved agent holds."""

    lead: ClaimedLead | None = None  # None while the claim is out
    call_id: str | None = None  # the call placed for the lead, once the agent dialed it


@dataclass(slots=True)
class Desk:
    """The reservations of preview mode, by agent; each agent here is `reserved` in the
    staff table, and the other way round."""

    held: dict[str, Reservation] = field(default_factory=dict)

    def request(self, staff: Staff, event: AgentRequestedLead, commands: list[Command], *,
                closing: bool) -> None:
        agent_id = event.agent_id
        if not staff.reserve(agent_id, event.at):
            return  # not ready (logged by the staff table)
        if closing:  # the dialing window is over: no new calls
            staff.release(agent_id, event.at)
            commands.append(NoLeadForAgent(agent_id=agent_id))
            return
        self.held[agent_id] = Reservation()
        commands.append(ClaimLeads(count=1, for_agent=agent_id))

    def claimed(self, staff: Staff, event: LeadsClaimed, commands: list[Command]) -> None:
        assert event.for_agent is not None
        agent_id, leads = event.for_agent, list(event.leads)
        held = self.held.get(agent_id)
        if held is None or held.lead is not None:
            logger.info("lead claimed for agent %s, who waits for none; released", agent_id)
        elif leads:
            held.lead = leads.pop(0)
            commands.append(PreviewLead(agent_id=agent_id, lead=held.lead))
        else:
            self.let_go(staff, agent_id, event.at, commands)
            commands.append(NoLeadForAgent(agent_id=agent_id))
        if leads:
            commands.append(ReleaseLeads(lead_ids=tuple(lead.id for lead in leads)))

    def shown(self, event: AgentDialedLead | AgentSkippedLead) -> ClaimedLead | None:
        """The lead the event names if its agent is looking at it (not dialed yet); else
        None, logged."""
        held = self.held.get(event.agent_id)
        if held is None or held.lead is None or held.lead.id != event.lead_id \
                or held.call_id is not None:
            logger.info("agent %s: %s for lead %s, which they are not looking at; ignored",
                        event.agent_id, type(event).__name__, event.lead_id)
            return None
        return held.lead

    def dialed(self, agent_id: str, call_id: str) -> None:
        self.held[agent_id].call_id = call_id

    def answered(self, staff: Staff, agent_id: str, at: datetime) -> None:
        """The call the agent dialed was answered: the agent is on it."""
        del self.held[agent_id]
        staff.take_reserved(agent_id, at)

    def let_go(self, staff: Staff, agent_id: str, at: datetime,
               commands: list[Command]) -> None:
        """End the agent's reservation with no call for them: the lead back to the queue
        unless it was dialed, the agent ready (or the pause or logout that waited)."""
        held = self.held.pop(agent_id)
        if held.lead is not None and held.call_id is None:
            commands.append(ReleaseLeads(lead_ids=(held.lead.id,)))
        staff.release(agent_id, at)

    def agent_left(self, staff: Staff, agent_id: str, at: datetime,
                   commands: list[Command]) -> None:
        """The agent paused or logged out: with no call out for them, they go now."""
        held = self.held.get(agent_id)
        if held is not None and held.call_id is None:
            self.let_go(staff, agent_id, at, commands)
