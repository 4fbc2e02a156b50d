"""The engine core: the call flow, and its invariants under random event sequences."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.config.campaign import DialMode
from dialer.engine.agents import AgentLoggedIn, AgentReady
from dialer.engine.calls import Outcomes
from dialer.engine.commands import (
    ClaimLeads,
    CloseAttempt,
    Command,
    ConnectAgent,
    LeadsClaimed,
    PlaceCall,
    PlayAbandonMessage,
    RecordAttempts,
    StartScript,
    Tick,
)
from dialer.engine.core import Engine, EngineSettings
from dialer.engine.lines import LinePlan
from dialer.engine.pacing import ProgressivePacer, RobocallPacer
from dialer.store import ClaimedLead
from lines.telephony import (
    CallAnswered,
    CalleeActed,
    CallEnded,
    CallRinging,
    EarlyMediaHeard,
    Party,
)
from rules.call_state import CallState
from rules.retry import RetryPolicy
from rules.signals import Announcement

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def engine(mode: DialMode = DialMode.PROGRESSIVE, channels: int = 10) -> Engine:
    ids = (f"call-{n}" for n in itertools.count())
    return Engine(
        settings=EngineSettings(campaign_id=1, campaign="c", mode=mode, max_attempts=3,
                                ring_timeout=timedelta(seconds=25),
                                abandon_after=timedelta(seconds=2), script="s"),
        pacer=RobocallPacer(5) if mode is DialMode.ROBOCALL else ProgressivePacer(),
        lines=LinePlan.single("t1", channels, ("+862100000001",)),
        outcomes=Outcomes(retry=RetryPolicy()),
        new_id=lambda: next(ids),
    )


def leads(count: int, start: int = 0) -> tuple[ClaimedLead, ...]:
    return tuple(ClaimedLead(id=i, e164=f"+86135000{i:05d}", attempts_made=0,
                             timezones=("Asia/Shanghai",), attributes={})
                 for i in range(start, start + count))


def of(kind: type, commands: list[Command]) -> list:  # type: ignore[type-arg]
    return [c for c in commands if isinstance(c, kind)]


def test_no_agents_no_dialing() -> None:
    assert engine().handle(Tick(at=T0)) == []


def test_progressive_dials_one_call_per_ready_agent_and_records_first() -> None:
    e = engine()
    e.handle(AgentLoggedIn(agent_id="a1", at=T0))
    commands = e.handle(AgentReady(agent_id="a1", at=T0))
    assert of(ClaimLeads, commands) == [ClaimLeads(count=1)]
    commands = e.handle(LeadsClaimed(at=T0, requested=1, leads=leads(1)))
    assert [type(c) for c in commands] == [RecordAttempts, PlaceCall]
    assert commands[0].attempts[0].attempt_id == commands[1].request.call_id  # type: ignore[union-attr]
    assert e.handle(Tick(at=T0 + timedelta(seconds=1))) == []  # the agent's call is out


def test_answered_call_connects_then_closes_once() -> None:
    e = engine()
    e.handle(AgentLoggedIn(agent_id="a1", at=T0))
    e.handle(AgentReady(agent_id="a1", at=T0))
    e.handle(LeadsClaimed(at=T0, requested=1, leads=leads(1)))
    e.handle(CallRinging(call_id="call-0", at=T0 + timedelta(seconds=2)))
    commands = e.handle(CallAnswered(call_id="call-0", at=T0 + timedelta(seconds=9)))
    assert commands == [ConnectAgent(call_id="call-0", agent_id="a1")]
    commands = e.handle(CallEnded(call_id="call-0", at=T0 + timedelta(seconds=99),
                                  sip_status=200, reason="bye", ended_by=Party.CALLEE))
    (close,) = of(CloseAttempt, commands)
    assert close.outcome.disposition == "answered_human"
    assert close.outcome.lead_state == "done"
    assert e.staff.busy == 1  # wrapping up


def test_answered_with_no_agent_is_abandoned_after_two_seconds() -> None:
    e = engine()
    e.handle(AgentLoggedIn(agent_id="a1", at=T0))
    e.handle(AgentReady(agent_id="a1", at=T0))
    e.handle(LeadsClaimed(at=T0, requested=1, leads=leads(1)))
    e.staff.pause("a1", T0)  # the agent walks away
    e.handle(CallAnswered(call_id="call-0", at=T0 + timedelta(seconds=5)))
    assert e.calls["call-0"].state is CallState.WAITING_FOR_AGENT
    assert e.handle(Tick(at=T0 + timedelta(seconds=6))) == []
    commands = e.handle(Tick(at=T0 + timedelta(seconds=7)))
    assert of(PlayAbandonMessage, commands) == [PlayAbandonMessage(call_id="call-0")]
    commands = e.handle(CallEnded(call_id="call-0", at=T0 + timedelta(seconds=12),
                                  sip_status=200, reason="abandon message played"))
    (close,) = of(CloseAttempt, commands)
    assert close.outcome.disposition == "abandoned"
    assert close.outcome.abandoned
    assert e.outcomes.abandon_rate == 1.0


def test_robocall_opt_out_suppresses() -> None:
    e = engine(DialMode.ROBOCALL)
    assert of(ClaimLeads, e.handle(Tick(at=T0))) == [ClaimLeads(count=5)]
    e.handle(LeadsClaimed(at=T0, requested=5, leads=leads(2)))
    assert of(StartScript, e.handle(CallAnswered(call_id="call-0", at=T0)))
    e.handle(CalleeActed(call_id="call-0", at=T0, intent="opt_out"))
    commands = e.handle(CallEnded(call_id="call-0", at=T0, sip_status=200, reason="bye"))
    (close,) = of(CloseAttempt, commands)
    assert close.outcome.disposition == "opted_out"
    assert close.suppress_reason
    assert close.e164 == "+8613500000000"


def test_a_carrier_that_answers_then_says_vacant_closes_the_call_as_vacant() -> None:
    from dialer.engine.commands import HangUp

    e = engine(DialMode.ROBOCALL)
    e.handle(Tick(at=T0))
    e.handle(LeadsClaimed(at=T0, requested=5, leads=leads(1)))
    e.handle(CallAnswered(call_id="call-0", at=T0))
    heard = EarlyMediaHeard(call_id="call-0", at=T0 + timedelta(seconds=2),
                            announcement=Announcement.VACANT, after_answer=True)
    assert of(HangUp, e.handle(heard)) == [HangUp(call_id="call-0")]
    assert of(HangUp, e.handle(heard)) == []  # once
    commands = e.handle(CallEnded(call_id="call-0", at=T0 + timedelta(seconds=3),
                                  sip_status=200, reason="normal clearing"))
    (close,) = of(CloseAttempt, commands)
    assert close.outcome.disposition == "vacant"
    assert close.number_status is not None
    assert e.outcomes.live_answers == 0  # nobody answered: no share of the abandon rate


def test_unanswered_vacant_marks_the_number() -> None:
    e = engine(DialMode.ROBOCALL)
    e.handle(Tick(at=T0))
    e.handle(LeadsClaimed(at=T0, requested=5, leads=leads(1)))
    commands = e.handle(CallEnded(call_id="call-0", at=T0, sip_status=404, reason="not found"))
    (close,) = of(CloseAttempt, commands)
    assert close.outcome.disposition == "vacant"
    assert close.outcome.lead_state == "dead"
    assert close.number_status is not None
    assert close.number_status.status == "vacant"


def unanswered_after(*heard: EarlyMediaHeard, status: int = 480) -> tuple[CloseAttempt, int]:
    """Dial one robocall, let it ring and hear `heard`, end it with `status` (no cause):
    its close, and the failures its trunk counts."""
    e = engine(DialMode.ROBOCALL)
    e.handle(Tick(at=T0))
    e.handle(LeadsClaimed(at=T0, requested=5, leads=leads(1)))
    e.handle(CallRinging(call_id="call-0", at=T0))
    for event in heard:
        e.handle(event)
    commands = e.handle(CallEnded(call_id="call-0", at=T0 + timedelta(seconds=5),
                                  sip_status=status, reason="unavailable"))
    (close,) = of(CloseAttempt, commands)
    (trunk,) = e.lines.status(T0 + timedelta(seconds=5))
    return close, trunk.failures_in_window


def early(announcement: Announcement, *, network: bool = False) -> EarlyMediaHeard:
    return EarlyMediaHeard(call_id="call-0", at=T0, announcement=announcement, network=network)


def test_a_recognised_tone_overrides_the_unknown_early_media_before_it() -> None:
    close, failures = unanswered_after(early(Announcement.UNKNOWN), early(Announcement.VACANT))
    assert (close.outcome.disposition, close.outcome.lead_state, failures) == ("vacant", "dead",
                                                                               0)
    close, _ = unanswered_after(early(Announcement.UNKNOWN))
    assert close.outcome.disposition == "no_answer"  # 480 after it rang: signalling alone


def test_a_network_tone_is_the_trunks_failure_not_the_numbers() -> None:
    close, failures = unanswered_after(early(Announcement.UNKNOWN),
                                       early(Announcement.UNREACHABLE, network=True))
    assert (close.outcome.disposition, failures) == ("network_error", 1)
    assert close.number_status is None  # nothing is said about the number
    assert close.outcome.lead_state == "ready"  # tried again soon


actions = st.lists(st.tuples(st.sampled_from(["tick", "ready", "answer", "end", "login"]),
                             st.integers(0, 30)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(actions=actions, mode=st.sampled_from([DialMode.PROGRESSIVE, DialMode.ROBOCALL]),
       channels=st.integers(1, 8))
def test_invariants_under_random_events(actions: list[tuple[str, int]], mode: DialMode,
                                        channels: int) -> None:
    e = engine(mode, channels)
    now, next_lead, closed, placed = T0, 0, set(), set()
    for action, n in actions:
        now += timedelta(seconds=1)
        if action == "login":
            commands = e.handle(AgentLoggedIn(agent_id=f"a{n % 4}", at=now)) if \
                f"a{n % 4}" not in e.staff.agents or e.staff.agents[f"a{n % 4}"].state == \
                "logged_out" else []
        elif action == "ready" and f"a{n % 4}" in e.staff.agents and \
                e.staff.agents[f"a{n % 4}"].state in ("paused", "wrap_up", "ready"):
            commands = e.handle(AgentReady(agent_id=f"a{n % 4}", at=now))
        elif action == "answer" and e.calls:
            call_id = sorted(e.calls)[n % len(e.calls)]
            if e.calls[call_id].answered_at is None:
                commands = e.handle(CallAnswered(call_id=call_id, at=now))
            else:
                commands = []
        elif action == "end" and e.calls:
            call_id = sorted(e.calls)[n % len(e.calls)]
            commands = e.handle(CallEnded(call_id=call_id, at=now, sip_status=486,
                                          reason="busy"))
        else:
            commands = e.handle(Tick(at=now))
        recorded: set[str] = set()
        for command in commands:
            if isinstance(command, ClaimLeads):
                ready_before = e.staff.ready
                reply = e.handle(LeadsClaimed(at=now, requested=command.count,
                                              leads=leads(command.count, next_lead)))
                next_lead += command.count
                commands.extend(reply)
                if mode is DialMode.PROGRESSIVE:
                    dialing = sum(1 for c in e.calls.values() if c.answered_at is None)
                    assert dialing <= ready_before
            elif isinstance(command, RecordAttempts):
                recorded |= {a.attempt_id for a in command.attempts}
            elif isinstance(command, PlaceCall):
                assert command.request.call_id in recorded  # written before dialed
                placed.add(command.request.call_id)
            elif isinstance(command, CloseAttempt):
                assert command.outcome.attempt_id not in closed  # closed exactly once
                closed.add(command.outcome.attempt_id)
        assert len(e.calls) <= channels  # never more calls in flight than lines
        if mode is DialMode.PROGRESSIVE and e.staff.logged_in == 0:
            assert not any(isinstance(c, PlaceCall) for c in commands)
    assert closed <= placed
    assert placed - closed == set(e.calls)


def connected_engine() -> Engine:
    e = engine()
    e.handle(AgentLoggedIn(agent_id="a1", at=T0))
    e.handle(AgentReady(agent_id="a1", at=T0))
    e.handle(LeadsClaimed(at=T0, requested=1, leads=leads(1)))
    return e


def test_a_scripted_opt_out_is_suppressed_at_once_and_the_script_ends_the_call() -> None:
    from dialer.engine.commands import SuppressNumber

    e = engine(DialMode.ROBOCALL)
    e.handle(Tick(at=T0))
    e.handle(LeadsClaimed(at=T0, requested=5, leads=leads(1)))
    e.handle(CallAnswered(call_id="call-0", at=T0))
    commands = e.handle(CalleeActed(call_id="call-0", at=T0, intent="opt_out"))
    assert [type(c) for c in commands] == [SuppressNumber]  # it confirms, then hangs up
    assert e.handle(CalleeActed(call_id="call-0", at=T0, intent="opt_out")) == []  # once


def test_opt_out_on_a_call_no_script_holds_is_written_before_the_hang_up() -> None:
    from dialer.engine.commands import HangUp, SuppressNumber

    e = connected_engine()
    e.handle(Tick(at=T0))
    e.handle(CallAnswered(call_id="call-0", at=T0))
    commands = e.handle(CalleeActed(call_id="call-0", at=T0, intent="opt_out"))
    assert [type(c) for c in commands] == [SuppressNumber, HangUp]


def test_a_machine_verdict_never_cuts_an_agent_conversation() -> None:
    from lines.telephony import AnswerClassified
    from rules.signals import AnswerKind

    e = connected_engine()
    e.handle(CallAnswered(call_id="call-0", at=T0 + timedelta(seconds=5)))
    assert e.calls["call-0"].state is CallState.CONNECTED
    verdict = AnswerClassified(call_id="call-0", at=T0 + timedelta(seconds=8),
                               kind=AnswerKind.MACHINE)
    assert e.handle(verdict) == []


def test_hanging_up_on_dead_air_is_abandoned() -> None:
    e = connected_engine()
    e.staff.pause("a1", T0)
    e.handle(CallAnswered(call_id="call-0", at=T0 + timedelta(seconds=5)))
    commands = e.handle(CallEnded(call_id="call-0", at=T0 + timedelta(seconds=6),
                                  sip_status=200, reason="bye", ended_by=Party.CALLEE))
    (close,) = of(CloseAttempt, commands)
    assert close.outcome.disposition == "abandoned"


def test_an_abandoned_machine_is_not_an_abandoned_call() -> None:
    from lines.telephony import AnswerClassified
    from rules.signals import AnswerKind

    e = connected_engine()
    e.staff.pause("a1", T0)
    e.handle(CallAnswered(call_id="call-0", at=T0 + timedelta(seconds=5)))
    e.handle(Tick(at=T0 + timedelta(seconds=7)))  # abandoned at 2 s
    e.handle(AnswerClassified(call_id="call-0", at=T0 + timedelta(seconds=8),
                              kind=AnswerKind.MACHINE))
    commands = e.handle(CallEnded(call_id="call-0", at=T0 + timedelta(seconds=9),
                                  sip_status=200, reason="bye"))
    (close,) = of(CloseAttempt, commands)
    assert close.outcome.disposition == "answered_machine"
    assert e.outcomes.abandon_rate == 0.0


def test_a_machine_waiting_in_the_queue_is_never_given_to_an_agent() -> None:
    from lines.telephony import AnswerClassified
    from rules.signals import AnswerKind

    e = engine()
    e.handle(AgentLoggedIn(agent_id="a1", at=T0))
    e.handle(AgentReady(agent_id="a1", at=T0))
    e.handle(LeadsClaimed(at=T0, requested=1, leads=leads(1)))
    e.staff.pause("a1", T0)
    e.handle(CallAnswered(call_id="call-0", at=T0 + timedelta(seconds=5)))
    e.handle(AnswerClassified(call_id="call-0", at=T0 + timedelta(seconds=6),
                              kind=AnswerKind.MACHINE))
    commands = e.handle(AgentReady(agent_id="a1", at=T0 + timedelta(seconds=6.5)))
    assert not of(ConnectAgent, commands)  # it is being hung up
    assert e.answers == 0  # and is no served live answer
