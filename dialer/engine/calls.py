"""One call's state inside the engine, and how an ended call becomes its outcome."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from dialer.engine.commands import CloseAttempt
from dialer.store import AttemptOutcome, ClaimedLead
from lines.telephony import CallEnded, EarlyMediaHeard
from rules.call_state import CallState, Trigger, next_state
from rules.classify import classify_answered, classify_unanswered
from rules.dispositions import Disposition
from rules.number_status import RecheckPolicy
from rules.retry import LeadState, RetryPolicy, decide
from rules.segments import Segment, place
from rules.signals import Announcement, AnswerKind


@dataclass(slots=True)
class Call:
    """A call in flight: what the engine has learned about it so far."""

    call_id: str
    lead: ClaimedLead
    trunk: str
    placed_at: datetime
    probe: bool = False  # a probe of a trunk coming back into service
    caller_id: str = ""
    line_reported: bool = False  # its outcome was given to its trunk's health
    state: CallState = CallState.CLAIMED
    rang: bool = False
    announcement: Announcement | None = None  # what the latest early media meant
    network: bool = False  # ... and whether it said the network failed the call
    answered_at: datetime | None = None
    answer: AnswerKind | None = None
    waiting_since: datetime | None = None
    agent_id: str | None = None
    reserved_for: str | None = None  # preview: the agent who dialed it, held for its answer
    scripted: bool = False
    abandoned: bool = False
    opted_out: bool = False
    transferred: bool = False
    completed: bool = False
    carrier_answered: bool = False  # answered, then the carrier's recording or tone played

    def heard(self, early_media: EarlyMediaHeard) -> None:
        """Early media was classified: the latest classification is the one that counts."""
        self.announcement = early_media.announcement
        self.network = early_media.network

    @property
    def reached_someone(self) -> bool:
        """Answered by a person (or an unsure verdict): not a machine, not the carrier."""
        return (self.answered_at is not None and self.answer is not AnswerKind.MACHINE
                and not self.carrier_answered)

    @property
    def network_failed(self) -> bool:
        """Unanswered (or answered by the carrier's recording), and the network failed it,
        as early media said: the trunk's failure."""
        return self.network and (self.answered_at is None or self.carrier_answered)

    def move(self, trigger: Trigger) -> None:
        """Follow the call-lifecycle table; an illegal move raises IllegalTransition."""
        self.state = next_state(self.state, trigger)


@dataclass(slots=True)
class Outcomes:
    """Turns ended calls into their one `CloseAttempt`, and counts what happened."""

    retry: RetryPolicy
    recheck: RecheckPolicy = field(default_factory=RecheckPolicy)
    opt_out_reason: str = "opted out during a call"
    dispositions: Counter[Disposition] = field(default_factory=Counter)
    live_answers: int = 0  # answered by a person: the abandon rate's denominator
    segments: tuple[Segment, ...] = ()  # leads are placed again after each attempt

    def disposition_of(self, call: Call, ended: CallEnded) -> Disposition:
        if ended.no_media and call.answered_at is None:
            return Disposition.NETWORK_ERROR  # the trunk's fault, not the callee's
        if call.answered_at is None or call.carrier_answered:
            return classify_unanswered(sip_status=ended.sip_status, q850_cause=ended.q850_cause,
                                       announcement=call.announcement, rang=call.rang,
                                       network=call.network)
        machine = call.answer is AnswerKind.MACHINE  # an abandoned machine is no abandoned call
        return classify_answered(answer=call.answer, abandoned=call.abandoned and not machine,
                                 opted_out=call.opted_out, transferred=call.transferred,
                                 completed=call.completed, lost=ended.sip_status is None)

    def close(self, call: Call, ended: CallEnded) -> CloseAttempt:
        disposition = self.disposition_of(call, ended)
        self.dispositions[disposition] += 1
        if call.reached_someone and disposition is not Disposition.FAILED:  # lost: not counted
            self.live_answers += 1
        decision = decide(self.retry, disposition=disposition,
                          attempts_made=call.lead.attempts_made, now=ended.at,
                          lead_key=str(call.lead.id))
        state, next_at = decision.state, decision.next_attempt_at
        if state is LeadState.READY and call.lead.attempts_made + 1 >= self.retry.max_attempts:
            state, next_at = LeadState.EXHAUSTED, None  # every dial counts in the store
        status = None
        if decision.number_status is not None:
            status = self.recheck.record(call.lead.e164, decision.number_status, ended.at,
                                         "call", detail=disposition.value)
        outcome = AttemptOutcome(
            attempt_id=call.call_id, disposition=disposition.value, ended_at=ended.at,
            answered_at=call.answered_at, sip_status=ended.sip_status,
            q850_cause=ended.q850_cause, agent_id=call.agent_id,
            abandoned=disposition is Disposition.ABANDONED,
            reason=ended.reason, lead_state=state.value, next_attempt_at=next_at,
            placement=self._placement(call, disposition),
        )
        return CloseAttempt(outcome=outcome, number_status=status, e164=call.lead.e164,
                            suppress_reason=self.opt_out_reason if call.opted_out else None)

    def _placement(self, call: Call, disposition: Disposition) -> tuple[str, int] | None:
        if not self.segments:
            return None
        placed = place(self.segments, call.lead.attributes,
                       attempts_made=call.lead.attempts_made + 1,
                       last_disposition=disposition.value)
        return placed.name, placed.priority

    @property
    def abandon_rate(self) -> float:
        abandoned = self.dispositions[Disposition.ABANDONED]
        return abandoned / self.live_answers if self.live_answers else 0.0
