"""Preview mode: an agent asks for the next lead, looks at it, and dials it or skips it."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.config import parse_campaign
from dialer.config.campaign import DialMode
from dialer.engine.agents import (
    AgentDialedLead,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentReady,
    AgentRequestedLead,
    AgentSkippedLead,
)
from dialer.engine.build import build_engine, pacer_for
from dialer.engine.calls import Outcomes
from dialer.engine.commands import (
    AgentReleased,
    AgentWrapping,
    ClaimLeads,
    CloseAttempt,
    Command,
    ConnectAgent,
    LeadsClaimed,
    NoLeadForAgent,
    PlaceCall,
    PlayAbandonMessage,
    PreviewLead,
    RecordAttempts,
    ReleaseLeads,
    Tick,
)
from dialer.engine.core import Engine, EngineSettings
from dialer.engine.ledger import MemoryLedger
from dialer.engine.lines import LinePlan
from dialer.engine.pacing import PreviewPacer, ProgressivePacer
from dialer.engine.simulate import SimOptions, run_engine
from dialer.engine.staff import AgentState
from dialer.sim.scenario import Break, flat_scenario
from dialer.store import ClaimedLead
from lines.telephony import AnswerClassified, CallAnswered, CallEnded, CallRinging, Party
from rules.call_state import CallState
from rules.retry import RetryPolicy
from rules.signals import AnswerKind

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def engine(mode: DialMode = DialMode.PREVIEW, channels: int = 10) -> Engine:
    ids = (f"call-{n}" for n in itertools.count())
    return Engine(
        settings=EngineSettings(campaign_id=1, campaign="c", mode=mode, max_attempts=3,
                                ring_timeout=timedelta(seconds=25),
                                abandon_after=timedelta(seconds=2)),
        pacer=PreviewPacer() if mode is DialMode.PREVIEW else ProgressivePacer(),
        lines=LinePlan.single("t1", channels, ("+862100000001",)),
        outcomes=Outcomes(retry=RetryPolicy()),
        new_id=lambda: next(ids),
    )


def lead(lead_id: int) -> ClaimedLead:
    return ClaimedLead(id=lead_id, e164=f"+86135000{lead_id:05d}", attempts_made=0,
                       timezones=("Asia/Shanghai",), attributes={})


def of(kind: type, commands: list[Command]) -> list:  # type: ignore[type-arg]
    return [c for c in commands if isinstance(c, kind)]


def ready(e: Engine, *agent_ids: str, at: datetime = T0) -> None:
    for agent_id in agent_ids:
        e.handle(AgentLoggedIn(agent_id=agent_id, at=at))
        e.handle(AgentReady(agent_id=agent_id, at=at))


def shown(e: Engine, agent_id: str, lead_id: int, at: datetime = T0) -> list[Command]:
    """The agent asks for a lead and is shown lead `lead_id`."""
    assert e.handle(AgentRequestedLead(agent_id=agent_id, at=at)) == [
        ClaimLeads(count=1, for_agent=agent_id)]
    return e.handle(LeadsClaimed(at=at, requested=1, leads=(lead(lead_id),),
                                 for_agent=agent_id))


def dialed(e: Engine, agent_id: str, lead_id: int, at: datetime = T0) -> str:
    """The agent is shown lead `lead_id` and dials it; returns the call id."""
    shown(e, agent_id, lead_id, at)
    (place,) = of(PlaceCall, e.handle(AgentDialedLead(agent_id=agent_id, lead_id=lead_id,
                                                      at=at + S)))
    return place.request.call_id  # type: ignore[no-any-return]


def state(e: Engine, agent_id: str) -> AgentState:
    return e.staff.agents[agent_id].state


def test_the_pacer_never_dials_on_its_own() -> None:
    e = engine()
    ready(e, "a1", "a2")
    for n in range(5):
        assert e.handle(Tick(at=T0 + n * S)) == []
    campaign = parse_campaign({"name": "pv", "region": "CN", "compliance": "cn-collections",
                               "dial": {"mode": "preview"}}, "pv.yaml")
    assert isinstance(pacer_for(campaign), PreviewPacer)


def test_a_request_reserves_the_agent_and_shows_them_a_lead() -> None:
    e = engine()
    ready(e, "a1")
    commands = shown(e, "a1", 7)
    assert commands == [PreviewLead(agent_id="a1", lead=lead(7))]
    assert state(e, "a1") is AgentState.RESERVED
    assert e.snapshot(T0).agents_ready == 0


def test_no_lead_due_lets_the_agent_go() -> None:
    e = engine()
    ready(e, "a1")
    e.handle(AgentRequestedLead(agent_id="a1", at=T0))
    commands = e.handle(LeadsClaimed(at=T0, requested=1, leads=(), for_agent="a1"))
    assert commands == [NoLeadForAgent(agent_id="a1")]
    assert state(e, "a1") is AgentState.READY
    assert e.queue.claims_in_flight == 0


def test_dialing_records_the_attempt_then_places_the_call() -> None:
    e = engine()
    ready(e, "a1")
    shown(e, "a1", 7)
    commands = e.handle(AgentDialedLead(agent_id="a1", lead_id=7, at=T0 + 5 * S))
    assert [type(c) for c in commands] == [RecordAttempts, PlaceCall]
    record, place = commands
    assert isinstance(record, RecordAttempts)
    assert isinstance(place, PlaceCall)
    assert record.attempts[0].attempt_id == place.request.call_id
    assert record.attempts[0].lead_id == 7
    assert place.request.e164 == lead(7).e164
    assert e.lines.free(T0 + 5 * S) == 9
    assert state(e, "a1") is AgentState.RESERVED  # held for the answer


def test_the_answer_goes_to_the_agent_who_dialed_never_to_the_queue() -> None:
    e = engine()
    ready(e, "a2")  # ready first: the longest waiting, who would get an unbound call
    ready(e, "a1", "a3", at=T0 + S)
    busy_call = dialed(e, "a3", 3, at=T0 + S)
    e.handle(CallAnswered(call_id=busy_call, at=T0 + 5 * S))  # a3 is busy
    call_id = dialed(e, "a1", 1, at=T0 + 2 * S)
    e.handle(AgentPaused(agent_id="a1", at=T0 + 4 * S))  # waits for the call
    e.handle(CallRinging(call_id=call_id, at=T0 + 4 * S))
    commands = e.handle(CallAnswered(call_id=call_id, at=T0 + 9 * S))
    assert commands == [ConnectAgent(call_id=call_id, agent_id="a1")]
    assert e.calls[call_id].state is CallState.CONNECTED
    assert not e.waiting
    assert state(e, "a2") is AgentState.READY
    e.handle(AnswerClassified(call_id=call_id, at=T0 + 10 * S, kind=AnswerKind.MACHINE))
    for n in range(10, 30):
        assert not of(PlayAbandonMessage, e.handle(Tick(at=T0 + n * S)))
    commands = e.handle(CallEnded(call_id=call_id, at=T0 + 90 * S, sip_status=200,
                                  reason="bye", ended_by=Party.CALLEE))
    (close,) = of(CloseAttempt, commands)
    assert close.outcome.disposition == "answered_human"
    assert close.outcome.agent_id == "a1"
    assert of(AgentWrapping, commands) == [AgentWrapping(agent_id="a1")]
    assert state(e, "a1") is AgentState.PAUSED  # the pause asked for during the call
    assert (e.abandoned, e.answers) == (0, 2)


def test_an_unanswered_call_lets_its_agent_go() -> None:
    e = engine()
    ready(e, "a1")
    call_id = dialed(e, "a1", 7)
    commands = e.handle(CallEnded(call_id=call_id, at=T0 + 26 * S, sip_status=480,
                                  reason="no answer"))
    assert [type(c) for c in commands] == [CloseAttempt, AgentReleased]
    assert commands[1] == AgentReleased(agent_id="a1")
    assert state(e, "a1") is AgentState.READY
    assert not e.desk.held
    assert e.lines.free(T0 + 26 * S) == 10


def test_skipping_puts_the_lead_back() -> None:
    e = engine()
    ready(e, "a1")
    shown(e, "a1", 7)
    commands = e.handle(AgentSkippedLead(agent_id="a1", lead_id=7, at=T0 + S))
    assert commands == [ReleaseLeads(lead_ids=(7,))]
    assert state(e, "a1") is AgentState.READY
    assert not e.desk.held


def test_no_free_line_puts_the_lead_back_and_lets_the_agent_go() -> None:
    e = engine(channels=1)
    ready(e, "a1", "a2")
    dialed(e, "a2", 2)
    shown(e, "a1", 1)
    commands = e.handle(AgentDialedLead(agent_id="a1", lead_id=1, at=T0 + S))
    assert commands == [ReleaseLeads(lead_ids=(1,)), AgentReleased(agent_id="a1")]
    assert state(e, "a1") is AgentState.READY


def test_pause_or_logout_while_looking_at_a_lead_puts_it_back_at_once() -> None:
    e = engine()
    ready(e, "a1", "a2")
    shown(e, "a1", 1)
    assert of(ReleaseLeads, e.handle(AgentPaused(agent_id="a1", at=T0 + S))) == [
        ReleaseLeads(lead_ids=(1,))]
    assert state(e, "a1") is AgentState.PAUSED
    e.handle(AgentRequestedLead(agent_id="a2", at=T0))  # the claim is out
    assert not of(ReleaseLeads, e.handle(AgentLoggedOut(agent_id="a2", at=T0 + S)))
    assert state(e, "a2") is AgentState.LOGGED_OUT
    late = e.handle(LeadsClaimed(at=T0 + 2 * S, requested=1, leads=(lead(2),),
                                 for_agent="a2"))
    assert late == [ReleaseLeads(lead_ids=(2,))]
    assert not e.desk.held


def test_logout_while_the_call_rings_waits_for_the_call() -> None:
    e = engine()
    ready(e, "a1")
    call_id = dialed(e, "a1", 1)
    assert e.handle(AgentLoggedOut(agent_id="a1", at=T0 + 2 * S)) == []
    assert state(e, "a1") is AgentState.RESERVED
    e.handle(CallEnded(call_id=call_id, at=T0 + 9 * S, sip_status=486, reason="busy"))
    assert state(e, "a1") is AgentState.LOGGED_OUT


def test_the_window_closed_no_more_leads_or_calls() -> None:
    e = engine()
    ready(e, "a1", "a2")
    shown(e, "a1", 1)
    e.closing = True
    assert e.handle(AgentRequestedLead(agent_id="a2", at=T0 + S)) == [
        NoLeadForAgent(agent_id="a2")]
    commands = e.handle(AgentDialedLead(agent_id="a1", lead_id=1, at=T0 + S))
    assert commands == [ReleaseLeads(lead_ids=(1,)), AgentReleased(agent_id="a1")]
    assert e.dials == 0


def test_odd_agent_events_are_ignored() -> None:
    e = engine()
    ready(e, "a1", "a2")
    assert e.handle(AgentDialedLead(agent_id="ghost", lead_id=1, at=T0)) == []
    assert e.handle(AgentRequestedLead(agent_id="ghost", at=T0)) == []
    assert e.handle(AgentSkippedLead(agent_id="a2", lead_id=1, at=T0)) == []  # shown none
    shown(e, "a1", 1)
    assert e.handle(AgentRequestedLead(agent_id="a1", at=T0)) == []  # asks twice
    assert e.handle(AgentDialedLead(agent_id="a1", lead_id=2, at=T0)) == []  # not shown it
    assert e.handle(AgentReady(agent_id="a1", at=T0)) == []
    assert state(e, "a1") is AgentState.RESERVED
    assert len(of(PlaceCall, e.handle(AgentDialedLead(agent_id="a1", lead_id=1, at=T0)))) == 1
    assert e.handle(AgentDialedLead(agent_id="a1", lead_id=1, at=T0)) == []  # twice
    assert e.handle(AgentSkippedLead(agent_id="a1", lead_id=1, at=T0)) == []  # too late
    assert e.dials == 1
    assert state(e, "a1") is AgentState.RESERVED


def test_preview_events_outside_preview_mode_are_ignored() -> None:
    e = engine(DialMode.PROGRESSIVE)
    ready(e, "a1")
    e.handle(LeadsClaimed(at=T0, requested=1, leads=(lead(0),)))
    assert e.handle(AgentRequestedLead(agent_id="a1", at=T0 + S)) == []
    assert e.handle(AgentDialedLead(agent_id="a1", lead_id=0, at=T0 + S)) == []
    assert e.handle(AgentSkippedLead(agent_id="a1", lead_id=0, at=T0 + S)) == []
    assert not e.desk.held


actions = st.lists(st.tuples(
    st.sampled_from(["request"] * 3 + ["claim"] * 3 + ["dial"] * 3 + ["answer", "end"] * 2
                    + ["ready"] * 2 + ["empty", "skip", "pause", "logout", "login", "tick"]),
    st.integers(0, 2), st.integers(0, 3)), min_size=10, max_size=80)


@settings(max_examples=150, deadline=None)
@given(actions=actions, channels=st.integers(1, 3))
def test_invariants_under_random_agent_events(actions: list[tuple[str, int, int]],
                                              channels: int) -> None:
    e = engine(channels=channels)
    ready(e, "a0", "a1", "a2")
    now, placed, closed, next_lead = T0, set(), set(), 0
    claims: list[str] = []  # agents with a claim out, oldest first
    for action, agent, n in actions:
        now += S
        agent_id, held = f"a{agent}", e.desk.held.get(f"a{agent}")
        shown_id = held.lead.id if held is not None and held.lead is not None else n
        if action == "claim" and claims:
            next_lead += 1
            event: object = LeadsClaimed(at=now, requested=1, leads=(lead(next_lead),),
                                         for_agent=claims.pop(0))
        elif action == "empty" and claims:
            event = LeadsClaimed(at=now, requested=1, leads=(), for_agent=claims.pop(0))
        elif action in ("answer", "end") and e.calls:
            call_id = sorted(e.calls)[n % len(e.calls)]
            event = CallEnded(call_id=call_id, at=now, sip_status=200, reason="bye") \
                if action == "end" else CallAnswered(call_id=call_id, at=now)
            if action == "answer" and e.calls[call_id].answered_at is not None:
                event = Tick(at=now)
        else:
            event = {
                "request": AgentRequestedLead(agent_id=agent_id, at=now),
                "dial": AgentDialedLead(agent_id=agent_id, lead_id=shown_id, at=now),
                "skip": AgentSkippedLead(agent_id=agent_id, lead_id=shown_id, at=now),
                "pause": AgentPaused(agent_id=agent_id, at=now),
                "ready": AgentReady(agent_id=agent_id, at=now),
                "logout": AgentLoggedOut(agent_id=agent_id, at=now),
                "login": AgentLoggedIn(agent_id=agent_id, at=now),
            }.get(action, Tick(at=now))
        commands = e.handle(event)  # type: ignore[arg-type]
        recorded: set[str] = set()
        for command in commands:
            assert not isinstance(command, PlayAbandonMessage)
            if isinstance(command, ClaimLeads):
                assert command.for_agent is not None  # the engine never claims for itself
                claims.append(command.for_agent)
            elif isinstance(command, RecordAttempts):
                recorded |= {a.attempt_id for a in command.attempts}
            elif isinstance(command, PlaceCall):
                assert command.request.call_id in recorded
                placed.add(command.request.call_id)
            elif isinstance(command, CloseAttempt):
                assert command.outcome.attempt_id not in closed
                closed.add(command.outcome.attempt_id)
        reserved = {a for a, x in e.staff.agents.items() if x.state is AgentState.RESERVED}
        assert reserved == set(e.desk.held)
        assert all(e.calls[h.call_id].reserved_for == a
                   for a, h in e.desk.held.items() if h.call_id is not None)
        assert not e.waiting
        assert len(e.calls) <= channels
    assert placed - closed == set(e.calls)
    assert e.abandoned == 0


PREVIEW = parse_campaign({
    "name": "pv", "region": "CN", "agents": {"count": 3},
    "dial": {"mode": "preview", "max_attempts": 1, "ring_timeout": "25s",
             "abandon_after": "2s"},
    "compliance": "cn-collections",
}, "pv.yaml")
START = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)


def test_a_preview_campaign_runs_with_no_abandoned_call() -> None:
    engine_, ledger = build_engine(PREVIEW, 1), MemoryLedger()
    scenario = flat_scenario(answer=0.25, fast_failure=0.2, talk_mean=120, wrap_up=10,
                             agents=3)
    run_engine(engine_, ledger, PREVIEW, scenario,
               SimOptions(start=START, duration=timedelta(hours=1), seed=1))
    assert engine_.dials > 50
    assert engine_.answers > 10
    assert engine_.abandoned == 0
    assert engine_.outcomes.dispositions["abandoned"] == 0
    assert ledger.recorded == ledger.closed == engine_.dials
    assert engine_.staff.time_in[AgentState.RESERVED] > 0
    assert not engine_.desk.held


@pytest.mark.parametrize("log_out", [False, True])
def test_breaks_and_the_shift_end_wait_for_an_agent_s_lead(log_out: bool) -> None:
    engine_, ledger = build_engine(PREVIEW, 1), MemoryLedger()
    scenario = flat_scenario(answer=0.4, fast_failure=0.2, talk_mean=60, wrap_up=10,
                             agents=3)
    team = replace(scenario.agents, shift_end=timedelta(minutes=50), breaks=(
        Break(at=timedelta(minutes=10), length=timedelta(minutes=5), spread=timedelta(
            minutes=3), log_out=log_out),))
    run_engine(engine_, ledger, PREVIEW, replace(scenario, agents=team),
               SimOptions(start=START, duration=timedelta(hours=1), seed=2))
    assert engine_.dials > 20
    assert engine_.abandoned == 0
    assert ledger.recorded == ledger.closed == engine_.dials
    assert engine_.staff.logged_in == 0
    assert not engine_.desk.held
