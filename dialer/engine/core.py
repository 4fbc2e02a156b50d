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
  hears the abandon message and counts against the abandon rate;
- in preview mode the engine places only the calls agents dial (`dialer.engine.preview`),
  each bound to its agent: answered, it goes to that agent, never waits, is never abandoned.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from dialer.config.campaign import DialMode
from dialer.engine.agents import (
    AgentEvent,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentReady,
    AgentRecordedOptOut,
    AgentRequestedLead,
    AgentSkippedLead,
    PreviewEvent,
)
from dialer.engine.calls import Call, Outcomes
from dialer.engine.commands import (
    AgentReleased,
    AgentWrapping,
    ClaimLeads,
    Command,
    ConnectAgent,
    HangUp,
    LeadsClaimed,
    LineStateChanged,
    PlaceCall,
    PlayAbandonMessage,
    RecordAttempts,
    ReleaseLeads,
    StartScript,
    SuppressNumber,
    Tick,
)
from dialer.engine.lines import LinePlan, Taken
from dialer.engine.pacing import Pacer, PaceSnapshot, Placed, Resolved, Served, TalkEnded, WrapEnded
from dialer.engine.preview import Desk
from dialer.engine.staff import AgentState, Staff
from dialer.store import ClaimedLead, NewAttempt
from lines.health import classify_failure
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
from rules.abandonment import AbandonFigures, AbandonWindow
from rules.call_state import CallState, Trigger
from rules.segments import Segment
from rules.signals import AnswerKind

Event = Tick | LeadsClaimed | CallEvent | AgentEvent
logger = logging.getLogger(__name__)
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
    #: Calls dialing at most this many times the agents ready or busy (agent modes).
    max_lines_per_agent: float = 3.0
    purpose: str = ""  # written on each attempt: contact rules count calls per purpose
    #: The campaign's segments by name: a lead's segment may ask for a line tier, a
    #: caller-ID sub-pool and its own script (robocall) instead of `script`.
    segments: Mapping[str, Segment] = field(default_factory=lambda: MappingProxyType({}))

    def lines_for(self, lead: ClaimedLead) -> tuple[str | None, str | None]:
        segment = self.segments.get(lead.segment)
        return (segment.tier, segment.caller_ids) if segment is not None else (None, None)

    def script_for(self, lead: ClaimedLead) -> str:
        segment = self.segments.get(lead.segment)
        own = segment.script if segment is not None else None
        return own or self.script or ""


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
    desk: Desk = field(default_factory=Desk)  # preview mode's reservations
    calls: dict[str, Call] = field(default_factory=dict)
    queue: _Queue = field(default_factory=_Queue)
    closing: bool = False  # the campaign's window is over: finish calls, place no more
    #: Abandoned calls over the regulator's window (default: 30 days, nothing estimated).
    abandonment: AbandonWindow = field(
        default_factory=lambda: AbandonWindow(window=timedelta(days=30)))
    #: Calls by stage: unanswered, waiting for an agent, live (kept as calls move).
    stages: dict[_Stage, int] = field(default_factory=lambda: dict.fromkeys(_Stage, 0))
    #: Calls waiting for an agent, longest waiting first.
    waiting: dict[str, Call] = field(default_factory=dict)
    _figures: tuple[datetime, AbandonFigures] | None = None
    #: Each agent's latest call (id, number), for dispositions recorded in wrap-up.
    last_call_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    dials: int = 0
    answers: int = 0  # answered calls that needed an agent
    abandoned: int = 0

    def handle(self, event: Event) -> list[Command]:
        """The commands that follow from `event`, in the order to carry them out."""
        commands: list[Command] = []
        if isinstance(event, Tick):
            self._on_tick(event.at, commands)
        elif isinstance(event, LeadsClaimed):
            self._on_claimed(event, commands)
        elif isinstance(event, AgentLoggedIn | AgentReady | AgentPaused | AgentLoggedOut):
            self._on_agent(event, commands)
        elif isinstance(event, PreviewEvent):
            self._on_preview(event, commands)
        elif isinstance(event, AgentRecordedOptOut):
            self._on_agent_opt_out(event, commands)
        else:
            self._on_call_event(event, commands)
        return commands

    def next_deadline(self) -> datetime | None:
        """The earliest moment a waiting call must be abandoned (for precise ticking)."""
        for call in self.waiting.values():
            assert call.waiting_since is not None
            return call.waiting_since + self.settings.abandon_after
        return None

    @property
    def busy(self) -> bool:
        """True while calls are up, claims are outstanding or agents hold previewed leads."""
        return bool(self.calls) or self.queue.claims_in_flight > 0 or bool(self.desk.held)

    # ticks and pacing

    def _on_tick(self, at: datetime, commands: list[Command]) -> None:
        for change in self.lines.advance(at):
            commands.append(LineStateChanged(change=change, at=at))
        limit = self.settings.abandon_after
        while self.waiting:
            call = next(iter(self.waiting.values()))
            assert call.waiting_since is not None
            if at - call.waiting_since < limit:
                break
            self._move(call, Trigger.ABANDON)
            call.abandoned = True  # counted when it ends, once the detector had its say
            commands.append(PlayAbandonMessage(call_id=call.call_id))
        self._pace(at, commands)

    def _pace(self, at: datetime, commands: list[Command]) -> None:
        if self.closing:
            return
        if self.queue.empty_until is not None and at < self.queue.empty_until:
            return
        snapshot = self.snapshot(at)
        count = min(self.pacer.calls_to_place(snapshot), snapshot.free_lines)
        if self.settings.mode is not DialMode.ROBOCALL:
            # Interlocks: nobody to take a call, no call; at most so many lines per agent.
            agents = snapshot.agents_ready + snapshot.agents_busy
            ceiling = int(self.settings.max_lines_per_agent * agents + 1e-9)
            count = min(count, ceiling - snapshot.calls_dialing)
        if count > 0:
            self.queue.claims_in_flight += count
            commands.append(ClaimLeads(count=count))

    def snapshot(self, at: datetime) -> PaceSnapshot:
        stages, counts = self.stages, self.staff.counts
        figures = self._window_figures(at)
        leaving = self.staff.leaving  # on a call, then gone: no more calls for them
        return PaceSnapshot(
            at=at,
            agents_ready=counts[AgentState.READY],
            agents_busy=counts[AgentState.ON_CALL] + counts[AgentState.WRAP_UP] - leaving,
            agents_talking=counts[AgentState.ON_CALL] - leaving,
            agents_logged_in=len(self.staff.agents) - counts[AgentState.LOGGED_OUT],
            calls_dialing=stages[_Stage.DIALING] + self.queue.claims_in_flight,
            calls_waiting=stages[_Stage.WAITING],
            calls_live=stages[_Stage.LIVE],
            free_lines=self.lines.free(at) - self.queue.claims_in_flight,
            dials=self.dials, answers=self.answers, abandoned=self.abandoned,
            window_rate=figures.rate, window_answers=figures.live_answers,
            window_false_positives=figures.false_positives,
            floor=self,
        )

    def _window_figures(self, at: datetime) -> AbandonFigures:
        """The regulator-window figures, worked out at most once a second (they move
        slowly, and pacers steer over many minutes)."""
        cached = self._figures
        if cached is None or at - cached[0] >= _SECOND:
            cached = self._figures = (at, self.abandonment.figures(at))
        return cached[1]

    # the floor, for pacers that look at ages

    def dialing_ages(self, at: datetime) -> list[float]:
        return [(at - c.placed_at) / _SECOND for c in self.calls.values()
                if c.state in _UNANSWERED]

    def talking_ages(self, at: datetime) -> list[float]:
        return self.staff.ages(AgentState.ON_CALL, at)

    def wrapping_ages(self, at: datetime) -> list[float]:
        return self.staff.ages(AgentState.WRAP_UP, at)

    def _move(self, call: Call, trigger: Trigger) -> None:
        """Move a call along its lifecycle, keeping the stage counts."""
        before = _STAGE_OF.get(call.state)
        call.move(trigger)
        after = _STAGE_OF.get(call.state)
        if before is not after:
            if before is not None:
                self.stages[before] -= 1
            if after is not None:
                self.stages[after] += 1
            if before is _Stage.WAITING:
                del self.waiting[call.call_id]
            elif after is _Stage.WAITING:
                self.waiting[call.call_id] = call

    def _served(self, call: Call, at: datetime, *, abandoned: bool) -> None:
        """An answered call that needed an agent got one, or was abandoned."""
        self.answers += 1
        self.abandoned += abandoned
        self.abandonment.live_answer(at, abandoned=abandoned)
        self.pacer.observe(Served(at=at, abandoned=abandoned))

    def _on_claimed(self, event: LeadsClaimed, commands: list[Command]) -> None:
        if event.for_agent is not None:
            self.desk.claimed(self.staff, event, commands)
            return
        self.queue.claims_in_flight = max(0, self.queue.claims_in_flight - event.requested)
        if len(event.leads) < event.requested:
            self.queue.empty_until = event.at + IDLE_BACKOFF
        attempts, requests, released = [], [], []
        for lead in event.leads:
            tier, pool = self.settings.lines_for(lead)
            line = self.lines.take(event.at, tier=tier, pool=pool, callee=lead.e164)
            if line is None:
                released.append(lead.id)
                continue
            attempt, request = self._new_call(lead, line, event.at)
            attempts.append(attempt)
            requests.append(request)
        if released:
            commands.append(ReleaseLeads(lead_ids=tuple(released)))
            if not requests:  # no line or caller ID for any of them: wait a little
                self.queue.empty_until = event.at + IDLE_BACKOFF
        self._place(attempts, requests, event.at, commands)

    def _new_call(self, lead: ClaimedLead, line: Taken,
                  at: datetime) -> tuple[NewAttempt, CallRequest]:
        call_id = self.new_id()
        trunk, caller_id = line.trunk, line.caller_id
        self.calls[call_id] = Call(call_id=call_id, lead=lead, trunk=trunk, placed_at=at,
                                   probe=line.probe, caller_id=caller_id)
        self.stages[_Stage.DIALING] += 1
        return (NewAttempt(attempt_id=call_id, campaign_id=self.settings.campaign_id,
                           lead_id=lead.id, e164=lead.e164, trunk=trunk,
                           caller_id=caller_id, placed_at=at, purpose=self.settings.purpose,
                           script=self.settings.script_for(lead)),
                CallRequest(call_id=call_id, e164=lead.e164, caller_id=caller_id,
                            trunk=trunk, ring_timeout=self.settings.ring_timeout))

    def _place(self, attempts: list[NewAttempt], requests: list[CallRequest], at: datetime,
               commands: list[Command]) -> None:
        """Record the attempts, then place their calls (the order is the promise)."""
        if attempts:
            commands.append(RecordAttempts(attempts=tuple(attempts)))
        for request in requests:
            self._move(self.calls[request.call_id], Trigger.DIAL)
            commands.append(PlaceCall(request=request))
        self.dials += len(requests)
        if requests:
            self.pacer.observe(Placed(at=at, count=len(requests)))

    # agents

    def _on_agent(self, event: AgentEvent, commands: list[Command]) -> None:
        if isinstance(event, AgentLoggedIn):
            self.staff.log_in(event.agent_id, event.at)
        elif isinstance(event, AgentPaused | AgentLoggedOut):
            if isinstance(event, AgentPaused):
                self.staff.pause(event.agent_id, event.at)
            else:
                self.staff.log_out(event.agent_id, event.at)
            self.desk.agent_left(self.staff, event.agent_id, event.at, commands)
        else:
            wrapped = self.staff.ready_up(event.agent_id, event.at)
            if wrapped is not None:
                self.pacer.observe(WrapEnded(at=event.at, seconds=wrapped))
            self._serve_waiting(event.at, commands)
        self._pace(event.at, commands)

    def _on_agent_opt_out(self, event: AgentRecordedOptOut, commands: list[Command]) -> None:
        """An opt-out an agent heard: the number is suppressed at once (the ledger writes it
        in the scope the profile says); a call still up ends as `opted_out`."""
        latest = self.last_call_of.get(event.agent_id)
        call_id = event.call_id or (latest[0] if latest else None)
        if latest is None or call_id != latest[0]:
            logger.warning("agent %s recorded an opt-out for a call they did not take",
                           event.agent_id)
            return
        call = self.calls.get(call_id)
        if call is not None:  # still up: it ends as opted_out
            call.opted_out = True
        e164 = latest[1]
        commands.append(SuppressNumber(e164=e164, reason=f"opted out to agent {event.agent_id}",
                                       at=event.at))

    def _serve_waiting(self, at: datetime, commands: list[Command]) -> None:
        for call in list(self.waiting.values()):
            if call.answer is AnswerKind.MACHINE:
                continue  # being hung up: no agent for a machine
            if not self._connect(call, at, commands):
                return

    def _connect(self, call: Call, at: datetime, commands: list[Command]) -> bool:
        agent_id = call.reserved_for
        if agent_id is not None:
            self.desk.answered(self.staff, agent_id, at)  # the agent who dialed it
        else:
            agent_id = self.staff.take(at, call.call_id)
        if agent_id is None:
            return False
        if not call.scripted:
            self._served(call, at, abandoned=False)
        self._move(call, Trigger.CONNECT_AGENT)
        if call.scripted:
            call.transferred = True
        call.agent_id = agent_id
        self.last_call_of[agent_id] = (call.call_id, call.lead.e164)
        commands.append(ConnectAgent(call_id=call.call_id, agent_id=agent_id))
        return True

    # calls

    def _on_call_event(self, event: CallEvent, commands: list[Command]) -> None:
        call = self.calls.get(event.call_id)
        if call is None:
            return  # a late event for a call already closed
        if call.probe and isinstance(event, CallRinging | EarlyMediaHeard | CallAnswered):
            self._report_line(call, event.at, False, commands)  # the carrier carried it
        if isinstance(event, CallRinging):
            call.rang = True
            self._move(call, Trigger.RING)
        elif isinstance(event, EarlyMediaHeard) and event.after_answer:
            self._on_carrier_answer(call, event, commands)
        elif isinstance(event, EarlyMediaHeard):
            call.heard(event)
            self._move(call, Trigger.EARLY_MEDIA)
        elif isinstance(event, CallAnswered):
            self._on_answered(call, event.at, commands)
        elif isinstance(event, AnswerClassified):
            self._on_classified(call, event, commands)
        elif isinstance(event, CalleeActed):
            self._on_callee_acted(call, event, commands)
        elif isinstance(event, CallEnded):
            self._on_ended(call, event, commands)

    def _report_line(self, call: Call, at: datetime, failed: bool,
                     commands: list[Command]) -> None:
        """The call's outcome for its trunk's health, once: at its end, or for a probe at
        its first sign of progress (so a trunk coming back is judged in seconds)."""
        if call.line_reported:
            return
        call.line_reported = True
        for change in self.lines.report(at, call.trunk, failed=failed, probe=call.probe):
            commands.append(LineStateChanged(change=change, at=at))

    def _on_answered(self, call: Call, at: datetime, commands: list[Command]) -> None:
        call.answered_at = at
        self.pacer.observe(Resolved(at=at, after=(at - call.placed_at) / _SECOND, answered=True))
        self._move(call, Trigger.ANSWER)
        if self.settings.mode is DialMode.ROBOCALL:
            self._move(call, Trigger.START_SCRIPT)
            call.scripted = True
            commands.append(StartScript(call_id=call.call_id,
                                        script=self.settings.script_for(call.lead),
                                        variables=call.lead.attributes))
        elif not self._connect(call, at, commands):
            call.waiting_since = at
            self._move(call, Trigger.QUEUE)

    def _on_carrier_answer(self, call: Call, event: EarlyMediaHeard,
                           commands: list[Command]) -> None:
        """The carrier answered and played why the call failed: nobody is there."""
        if call.state is CallState.CONNECTED or call.carrier_answered:
            return  # an agent is talking: a tone heard is theirs to judge
        call.heard(event)
        call.carrier_answered = True
        commands.append(HangUp(call_id=call.call_id))

    def _on_classified(self, call: Call, event: AnswerClassified, commands: list[Command]) -> None:
        if call.state is CallState.CONNECTED:
            return  # an agent is talking on it: the agent decides, not the detector
        call.answer = event.kind
        if event.kind is AnswerKind.MACHINE:
            self.abandonment.machine_answer(event.at)
            commands.append(HangUp(call_id=call.call_id))

    def _on_callee_acted(self, call: Call, event: CalleeActed, commands: list[Command]) -> None:
        if event.intent == "opt_out":
            if call.opted_out:
                return
            call.opted_out = True
            commands.append(SuppressNumber(e164=call.lead.e164, reason=self.outcomes.opt_out_reason,
                                           at=event.at))
            if call.state is not CallState.SCRIPTED:
                commands.append(HangUp(call_id=call.call_id))  # a script confirms, then ends
        elif event.intent == "agent" and call.state is CallState.SCRIPTED:
            if not self._connect(call, event.at, commands):
                # The robot took this call: no agent free is not an abandoned call. The
                # script promises a call back and goes on to its end.
                call.completed = True
        elif event.intent == "completed":
            call.completed = True
        elif event.intent == "transferred":  # the script says so (a queue took it)
            call.transferred = True
        elif event.intent == "answered":  # the script says: a person, nothing more
            call.completed = False

    def _on_ended(self, call: Call, event: CallEnded, commands: list[Command]) -> None:
        if call.state is CallState.WAITING_FOR_AGENT:
            call.abandoned = True  # a person hung up on dead air: abandoned, not reached
        if call.abandoned and call.answer is not AnswerKind.MACHINE:
            self._served(call, event.at, abandoned=True)
        elif call.answered_at is None:
            after = (event.at - call.placed_at) / _SECOND
            self.pacer.observe(Resolved(at=event.at, after=after, answered=False))
        self._move(call, Trigger.END)
        del self.calls[call.call_id]
        self.lines.release(call.trunk)
        failed = classify_failure(event.sip_status, timed_out=False, no_media=event.no_media,
                                  network_error=call.network_failed)
        self._report_line(call, event.at, failed, commands)
        self.lines.call_ended(call.caller_id, call.placed_at, answered=call.reached_someone)
        if call.agent_id is not None:
            talked = self.staff.wrap_up(call.agent_id, event.at)
            wraps = self.staff.state_of(call.agent_id) is AgentState.WRAP_UP
            self.pacer.observe(TalkEnded(at=event.at, seconds=talked, wraps=wraps))
            commands.append(AgentWrapping(agent_id=call.agent_id))
        commands.append(self.outcomes.close(call, event))
        if call.agent_id is None and call.reserved_for is not None:
            self._let_go(call.reserved_for, event.at, commands)  # dialed, never answered
        self._pace(event.at, commands)

    # preview mode

    def _on_preview(self, event: PreviewEvent, commands: list[Command]) -> None:
        if self.settings.mode is not DialMode.PREVIEW:
            logger.info("agent %s: %s outside preview mode; ignored", event.agent_id,
                        type(event).__name__)
        elif isinstance(event, AgentRequestedLead):
            self.desk.request(self.staff, event, commands, closing=self.closing)
        elif (lead := self.desk.shown(event)) is None:
            pass  # an odd event, logged
        elif isinstance(event, AgentSkippedLead):
            self.desk.let_go(self.staff, event.agent_id, event.at, commands)
        else:
            self._dial_for(event.agent_id, lead, event.at, commands)

    def _dial_for(self, agent_id: str, lead: ClaimedLead, at: datetime,
                  commands: list[Command]) -> None:
        """Place the call an agent chose, bound to them (its answer is theirs)."""
        tier, pool = self.settings.lines_for(lead)
        line = None if self.closing else self.lines.take(at, tier=tier, pool=pool,
                                                         callee=lead.e164)
        if line is None:
            self._let_go(agent_id, at, commands)
            return
        attempt, request = self._new_call(lead, line, at)
        self.calls[request.call_id].reserved_for = agent_id
        self.desk.dialed(agent_id, request.call_id)
        self._place([attempt], [request], at, commands)

    def _let_go(self, agent_id: str, at: datetime, commands: list[Command]) -> None:
        """No call came of the agent's lead: the agent is told and ready again."""
        self.desk.let_go(self.staff, agent_id, at, commands)
        commands.append(AgentReleased(agent_id=agent_id))


class _Stage(enum.Enum):
    DIALING = "dialing"  # placed, not answered yet
    WAITING = "waiting"  # answered, waiting for an agent
    LIVE = "live"  # answered, with an agent or a script (or hearing the abandon message)


_UNANSWERED = frozenset({CallState.CLAIMED, CallState.DIALING, CallState.RINGING,
                         CallState.EARLY_MEDIA})
_LIVE = frozenset({CallState.ANSWERED, CallState.CONNECTED, CallState.SCRIPTED,
                   CallState.ABANDONING})
_STAGE_OF: dict[CallState, _Stage] = {
    **dict.fromkeys(_UNANSWERED, _Stage.DIALING),
    CallState.WAITING_FOR_AGENT: _Stage.WAITING,
    **dict.fromkeys(_LIVE, _Stage.LIVE),
}
_SECOND = timedelta(seconds=1)
