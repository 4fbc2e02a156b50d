"""The engine: one pure decision core for a campaign, in simulated or real time.

It consumes events (ticks, claimed leads, call progress, agent state) and returns commands
(claim, record, dial, connect, script, abandon, hang up, close). It never reads a clock,
opens a socket or touches the store: its owner carries out the commands, in order.

Invariants (property-tested in tests/engine):
- a lead is dialed only after `RecordAttempts` for it was returned earlier in the same
  command list; every placed call gets exactly one `CloseAttempt`;
- never more calls in flight than free lines; in progressive mode never more calls
  dialing than ready agents;
- an answered human call that no agent takes within `abandon_after` is abandoned: it
  hears the abandon message and counts against the abandon rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dialer.config.campaign import DialMode
from dialer.engine.agents import (
    AgentEvent,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentReady,
)
from dialer.engine.calls import Call, Outcomes
from dialer.engine.commands import (
    AgentWrapping,
    ClaimLeads,
    Command,
    ConnectAgent,
    HangUp,
    LeadsClaimed,
    PlaceCall,
    PlayAbandonMessage,
    RecordAttempts,
    ReleaseLeads,
    StartScript,
    SuppressNumber,
    Tick,
)
from dialer.engine.lines import LinePlan
from dialer.engine.pacing import Pacer, PaceSnapshot
from dialer.engine.staff import Staff
from dialer.store import NewAttempt
from lines.telephony import (
    AnswerClassified,
    CallAnswered,
    CalleeActed,
    CallEnded,
    CallEvent,
    CallRequest,
    CallRinging,
    EarlyMediaHeard,
)
from rules.call_state import CallState, Trigger
from rules.signals import AnswerKind

Event = Tick | LeadsClaimed | CallEvent | AgentEvent
#: How long the engine waits before asking the store again after it found no due lead.
IDLE_BACKOFF = timedelta(seconds=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    """What the engine needs to know about its campaign."""

    campaign_id: int
    campaign: str
    mode: DialMode
    max_attempts: int
    ring_timeout: timedelta
    abandon_after: timedelta
    script: str | None = None


@dataclass(slots=True)
class _Queue:
    claims_in_flight: int = 0
    empty_until: datetime | None = None
    exhausted: bool = False


@dataclass(slots=True)
class Engine:
    """Runs one campaign. Feed it events with `handle`; carry out what it returns."""

    settings: EngineSettings
    pacer: Pacer
    lines: LinePlan
    outcomes: Outcomes
    new_id: Callable[[], str]
    staff: Staff = field(default_factory=Staff)
    calls: dict[str, Call] = field(default_factory=dict)
    queue: _Queue = field(default_factory=_Queue)
    closing: bool = False  # the campaign's window is over: finish calls, place no more

    def handle(self, event: Event) -> list[Command]:
        """The commands that follow from `event`, in the order to carry them out."""
        commands: list[Command] = []
        if isinstance(event, Tick):
            self._on_tick(event.at, commands)
        elif isinstance(event, LeadsClaimed):
            self._on_claimed(event, commands)
        elif isinstance(event, AgentLoggedIn | AgentReady | AgentPaused | AgentLoggedOut):
            self._on_agent(event, commands)
        else:
            self._on_call_event(event, commands)
        return commands

    def next_deadline(self) -> datetime | None:
        """The earliest moment a waiting call must be abandoned (for precise ticking)."""
        waiting = [c.waiting_since for c in self.calls.values()
                   if c.state is CallState.WAITING_FOR_AGENT and c.waiting_since is not None]
        return min(waiting) + self.settings.abandon_after if waiting else None

    @property
    def busy(self) -> bool:
        """True while calls are up or claims are outstanding."""
        return bool(self.calls) or self.queue.claims_in_flight > 0

    # ticks and pacing

    def _on_tick(self, at: datetime, commands: list[Command]) -> None:
        limit = self.settings.abandon_after
        for call in [c for c in self.calls.values() if c.state is CallState.WAITING_FOR_AGENT]:
            if call.waiting_since is not None and at - call.waiting_since >= limit:
                call.move(Trigger.ABANDON)
                call.abandoned = True
                commands.append(PlayAbandonMessage(call_id=call.call_id))
        self._pace(at, commands)

    def _pace(self, at: datetime, commands: list[Command]) -> None:
        if self.closing:
            return
        if self.queue.empty_until is not None and at < self.queue.empty_until:
            return
        if self.settings.mode is not DialMode.ROBOCALL and self.staff.logged_in == 0:
            return
        count = self.pacer.calls_to_place(self.snapshot(at))
        if count > 0:
            self.queue.claims_in_flight += count
            commands.append(ClaimLeads(count=count))

    def snapshot(self, at: datetime) -> PaceSnapshot:
        states = [call.state for call in self.calls.values()]
        dialing = sum(1 for s in states if s in _UNANSWERED) + self.queue.claims_in_flight
        return PaceSnapshot(
            at=at,
            agents_ready=self.staff.ready,
            agents_busy=self.staff.busy,
            calls_dialing=dialing,
            calls_waiting=sum(1 for s in states if s is CallState.WAITING_FOR_AGENT),
            calls_live=sum(1 for s in states if s in _LIVE),
            free_lines=self.lines.free - self.queue.claims_in_flight,
        )

    def _on_claimed(self, event: LeadsClaimed, commands: list[Command]) -> None:
        self.queue.claims_in_flight = max(0, self.queue.claims_in_flight - event.requested)
        if len(event.leads) < event.requested:
            self.queue.empty_until = event.at + IDLE_BACKOFF
        attempts, requests, released = [], [], []
        for lead in event.leads:
            line = self.lines.take()
            if line is None:
                released.append(lead.id)
                continue
            call_id = self.new_id()
            trunk, caller_id = line
            attempts.append(NewAttempt(attempt_id=call_id, campaign_id=self.settings.campaign_id,
                                       lead_id=lead.id, e164=lead.e164, trunk=trunk,
                                       caller_id=caller_id, placed_at=event.at))
            requests.append(CallRequest(call_id=call_id, e164=lead.e164, caller_id=caller_id,
                                        trunk=trunk, ring_timeout=self.settings.ring_timeout))
            self.calls[call_id] = Call(call_id=call_id, lead=lead, trunk=trunk,
                                       placed_at=event.at)
        if released:
            commands.append(ReleaseLeads(lead_ids=tuple(released)))
        if attempts:
            commands.append(RecordAttempts(attempts=tuple(attempts)))
        for request in requests:
            self.calls[request.call_id].move(Trigger.DIAL)
            commands.append(PlaceCall(request=request))

    # agents

    def _on_agent(self, event: AgentEvent, commands: list[Command]) -> None:
        if isinstance(event, AgentLoggedIn):
            self.staff.log_in(event.agent_id, event.at)
        elif isinstance(event, AgentPaused):
            self.staff.pause(event.agent_id, event.at)
        elif isinstance(event, AgentLoggedOut):
            self.staff.log_out(event.agent_id, event.at)
        else:
            self.staff.ready_up(event.agent_id, event.at)
            self._serve_waiting(event.at, commands)
        self._pace(event.at, commands)

    def _serve_waiting(self, at: datetime, commands: list[Command]) -> None:
        waiting = sorted((c for c in self.calls.values()
                          if c.state is CallState.WAITING_FOR_AGENT),
                         key=lambda c: c.waiting_since or at)
        for call in waiting:
            if not self._connect(call, at, commands):
                return

    def _connect(self, call: Call, at: datetime, commands: list[Command]) -> bool:
        agent_id = self.staff.take(at, call.call_id)
        if agent_id is None:
            return False
        call.move(Trigger.CONNECT_AGENT)
        if call.scripted:
            call.transferred = True
        call.agent_id = agent_id
        commands.append(ConnectAgent(call_id=call.call_id, agent_id=agent_id))
        return True

    # calls

    def _on_call_event(self, event: CallEvent, commands: list[Command]) -> None:
        call = self.calls.get(event.call_id)
        if call is None:
            return  # a late event for a call already closed
        if isinstance(event, CallRinging):
            call.rang = True
            call.move(Trigger.RING)
        elif isinstance(event, EarlyMediaHeard):
            call.announcement = event.announcement
            call.move(Trigger.EARLY_MEDIA)
        elif isinstance(event, CallAnswered):
            self._on_answered(call, event.at, commands)
        elif isinstance(event, AnswerClassified):
            self._on_classified(call, event, commands)
        elif isinstance(event, CalleeActed):
            self._on_callee_acted(call, event, commands)
        elif isinstance(event, CallEnded):
            self._on_ended(call, event, commands)

    def _on_answered(self, call: Call, at: datetime, commands: list[Command]) -> None:
        call.answered_at = at
        call.move(Trigger.ANSWER)
        if self.settings.mode is DialMode.ROBOCALL:
            call.move(Trigger.START_SCRIPT)
            call.scripted = True
            commands.append(StartScript(call_id=call.call_id, script=self.settings.script or ""))
        elif not self._connect(call, at, commands):
            call.move(Trigger.QUEUE)
            call.waiting_since = at

    def _on_classified(self, call: Call, event: AnswerClassified, commands: list[Command]) -> None:
        if call.state is CallState.CONNECTED:
            return  # an agent is talking on it: the agent decides, not the detector
        call.answer = event.kind
        if event.kind is AnswerKind.MACHINE:
            commands.append(HangUp(call_id=call.call_id))

    def _on_callee_acted(self, call: Call, event: CalleeActed, commands: list[Command]) -> None:
        if event.intent == "opt_out":
            call.opted_out = True
            commands.append(SuppressNumber(e164=call.lead.e164, reason=self.outcomes.opt_out_reason,
                                           at=event.at))
            commands.append(HangUp(call_id=call.call_id))
        elif event.intent == "agent" and call.state is CallState.SCRIPTED:
            if not self._connect(call, event.at, commands):
                # The robot took this call: no agent free is not an abandoned call. The
                # script promises a call back and goes on to its end.
                call.completed = True
        elif event.intent == "completed":
            call.completed = True

    def _on_ended(self, call: Call, event: CallEnded, commands: list[Command]) -> None:
        if call.state is CallState.WAITING_FOR_AGENT:
            call.abandoned = True  # a person hung up on dead air: abandoned, not reached
        call.move(Trigger.END)
        del self.calls[call.call_id]
        self.lines.release(call.trunk)
        if call.agent_id is not None:
            self.staff.wrap_up(call.agent_id, event.at)
            commands.append(AgentWrapping(agent_id=call.agent_id))
        commands.append(self.outcomes.close(call, event))
        self._pace(event.at, commands)


_UNANSWERED = frozenset({CallState.CLAIMED, CallState.DIALING, CallState.RINGING,
                         CallState.EARLY_MEDIA})
_LIVE = frozenset({CallState.ANSWERED, CallState.CONNECTED, CallState.SCRIPTED,
                   CallState.ABANDONING})
