"""Every pacer, on the simulated network: the engine's interlocks hold after every event.

Each example runs the real engine on the simulated network with an in-memory ledger for
20-40 simulated minutes; the agents take a break or not, and log out before the end, so
the engine also runs with nobody to take a call. After each event the engine handles:

- (a) no more calls up than line channels;
- (b) when it claims or places calls, calls dialing <= max_lines_per_agent x (agents
  ready or busy);
- (c) it claims and places nothing while no agent is ready or busy;
- (d) every placed call is closed exactly once, and by the end all are.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.config import parse_campaign
from dialer.config.campaign import Campaign, DialMode
from dialer.engine.agents import AgentLoggedIn, AgentLoggedOut, AgentPaused, AgentReady
from dialer.engine.build import build_engine
from dialer.engine.calls import Outcomes
from dialer.engine.commands import (
    ClaimLeads,
    CloseAttempt,
    Command,
    LeadsClaimed,
    PlaceCall,
    Tick,
)
from dialer.engine.core import Engine, EngineSettings, Event
from dialer.engine.ledger import MemoryLedger
from dialer.engine.lines import LinePlan
from dialer.engine.pacing import Observation, PaceSnapshot
from dialer.engine.simulate import SimOptions, run_engine
from dialer.engine.staff import AgentState
from dialer.sim.scenario import Break, Scenario, flat_scenario
from dialer.store import ClaimedLead
from lines.telephony import CallAnswered, CallEnded
from rules.retry import RetryPolicy

START = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)
PACERS = ("predictive", "progressive", "ratio:2.5", "vicidial-adapt", "greedy")
SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)


class GreedyPacer:
    """Asks for every free line: only the engine's interlocks hold it back."""

    name = "greedy"

    def calls_to_place(self, snapshot: PaceSnapshot) -> int:
        return max(0, snapshot.free_lines)

    def observe(self, observation: Observation) -> None:
        pass


def leads(count: int) -> tuple[ClaimedLead, ...]:
    return tuple(ClaimedLead(id=n, e164=f"+86135000{n:05d}", attempts_made=0, timezones=(),
                             attributes={}) for n in range(count))


@dataclass(slots=True)
class Tally:
    placed: set[str] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)
    idle_events: int = 0  # events handled with no agent ready or busy, before closing


class WatchedEngine(Engine):
    """The engine, checking the interlocks after each event it handles."""

    tally: Tally

    def handle(self, event: Event) -> list[Command]:
        commands = super().handle(event)
        check(self, event.at, commands)
        return commands


def watched(engine: Engine) -> WatchedEngine:
    copy = WatchedEngine(**{f.name: getattr(engine, f.name) for f in fields(engine)})
    copy.tally = Tally()
    return copy


def check(engine: WatchedEngine, at: datetime, commands: list[Command]) -> None:
    lines, tally = engine.lines, engine.tally
    trunks = lines.status(at)
    assert all(row.channels_in_use <= row.channels for row in trunks)
    assert len(engine.calls) <= sum(row.channels for row in trunks)  # (a)
    snapshot = engine.snapshot(at)
    assert snapshot.free_lines >= 0
    agents = snapshot.agents_ready + snapshot.agents_busy
    if agents == 0 and not engine.closing:
        tally.idle_events += 1
    placed = [c.request.call_id for c in commands if isinstance(c, PlaceCall)]
    if placed or any(isinstance(c, ClaimLeads) for c in commands):
        assert agents > 0  # (c)
        ceiling = int(engine.settings.max_lines_per_agent * agents + 1e-9)
        assert snapshot.calls_dialing <= ceiling  # (b)
    for call_id in placed:
        assert call_id not in tally.placed
        tally.placed.add(call_id)
    for command in commands:
        if isinstance(command, CloseAttempt):
            call_id = command.outcome.attempt_id
            assert call_id in tally.placed
            assert call_id not in tally.closed  # (d): once
            tally.closed.add(call_id)


@functools.cache
def campaign(pacer: str, lines_per_agent: float) -> Campaign:
    return parse_campaign({
        "name": "x", "region": "CN", "compliance": "cn-collections",
        "dial": {"mode": "predictive", "pacer": "progressive" if pacer == "greedy" else pacer,
                 "max_attempts": 3, "max_lines_per_agent": lines_per_agent},
        "retry": {"busy": {"after": "2m"}, "no_answer": {"after": "3m"}},
    }, "x.yaml")


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    scenario: Scenario
    minutes: int
    channels: int
    lines_per_agent: float
    seed: int


@st.composite
def runs(draw: st.DrawFn) -> Run:
    minutes = draw(st.integers(20, 40))
    shift_end = draw(st.integers(5, minutes - 2))
    scenario = flat_scenario(
        answer=draw(st.floats(0.05, 0.6)), fast_failure=draw(st.floats(0.0, 0.3)),
        talk_mean=draw(st.floats(15, 240)), wrap_up=draw(st.floats(1, 20)),
        agents=draw(st.integers(1, 8)),
    )
    breaks: tuple[Break, ...] = ()
    if draw(st.booleans()):
        at = draw(st.integers(1, shift_end))
        breaks = (Break(at=timedelta(minutes=at), length=timedelta(minutes=3),
                        spread=timedelta(minutes=2)),)
    team = replace(scenario.agents, shift_end=timedelta(minutes=shift_end), breaks=breaks)
    return Run(scenario=replace(scenario, agents=team), minutes=minutes,
               channels=draw(st.integers(1, 30)),
               lines_per_agent=draw(st.sampled_from([1.0, 1.5, 2.0, 3.0])),
               seed=draw(st.integers(0, 10_000)))


def simulate(pacer: str, run: Run) -> tuple[WatchedEngine, MemoryLedger]:
    config = campaign(pacer, run.lines_per_agent)
    ids = (f"call-{n}" for n in itertools.count())
    engine = watched(build_engine(config, 1, new_id=lambda: next(ids)))
    engine.lines = LinePlan.single("sim-trunk", run.channels, engine.lines.caller_ids)
    if pacer == "greedy":
        engine.pacer = GreedyPacer()
    ledger = MemoryLedger()
    run_engine(engine, ledger, config, run.scenario,
               SimOptions(start=START, duration=timedelta(minutes=run.minutes), seed=run.seed))
    return engine, ledger


@pytest.mark.parametrize("pacer", PACERS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run=runs())
def test_the_interlocks_hold_after_every_event(pacer: str, run: Run) -> None:
    engine, ledger = simulate(pacer, run)
    tally = engine.tally
    assert not engine.calls
    assert tally.placed == tally.closed  # (d): all of them
    assert ledger.recorded == ledger.closed == len(tally.placed)
    # the shift ended inside the run: nobody is left ready or on a break
    assert engine.staff.count(AgentState.READY) == engine.staff.count(AgentState.PAUSED) == 0


@pytest.mark.parametrize("pacer", PACERS)
def test_the_runs_go_on_with_nobody_to_take_a_call(pacer: str) -> None:
    """The worlds above reach the interlock: a shift ending at 10 of 30 minutes."""
    scenario = flat_scenario(answer=0.3, fast_failure=0.1, talk_mean=60, wrap_up=10, agents=4)
    team = replace(scenario.agents, shift_end=timedelta(minutes=10))
    run = Run(scenario=replace(scenario, agents=team), minutes=30, channels=12,
              lines_per_agent=2.0, seed=1)
    engine, _ = simulate(pacer, run)
    assert engine.tally.placed
    assert engine.staff.logged_in == 0
    assert engine.tally.idle_events > 100  # seconds and events with nobody there


def floor_engine(pacer: GreedyPacer) -> Engine:
    ids = (f"call-{n}" for n in itertools.count())
    return Engine(
        settings=EngineSettings(campaign_id=1, campaign="c", mode=DialMode.PREDICTIVE,
                                max_attempts=3, ring_timeout=timedelta(seconds=25),
                                abandon_after=timedelta(seconds=2), max_lines_per_agent=3.0),
        pacer=pacer, lines=LinePlan.single("t1", 10, ("+862100000001",)),
        outcomes=Outcomes(retry=RetryPolicy()), new_id=lambda: next(ids),
    )


def test_with_every_agent_gone_even_a_greedy_pacer_places_nothing() -> None:
    engine = floor_engine(GreedyPacer())
    assert engine.handle(Tick(at=START)) == []
    engine.handle(AgentLoggedIn(agent_id="a1", at=START))
    (claim,) = engine.handle(AgentReady(agent_id="a1", at=START))
    assert claim == ClaimLeads(count=3)  # three lines for the one agent, no more
    engine.handle(LeadsClaimed(at=START, requested=3, leads=leads(3)))
    assert engine.handle(AgentLoggedOut(agent_id="a1", at=START + SECOND)) == []
    ended = engine.handle(CallEnded(call_id="call-0", at=START + 2 * SECOND, sip_status=486,
                                    reason="busy"))  # a line is free again
    assert [type(c) for c in ended] == [CloseAttempt]
    assert engine.handle(Tick(at=START + MINUTE)) == []


@pytest.mark.parametrize("leaving", [AgentLoggedOut, AgentPaused])
def test_an_agent_leaving_after_this_call_gets_no_more_calls(
    leaving: type[AgentLoggedOut | AgentPaused],
) -> None:
    engine = floor_engine(GreedyPacer())
    engine.handle(AgentLoggedIn(agent_id="a1", at=START))
    engine.handle(AgentReady(agent_id="a1", at=START))
    engine.handle(LeadsClaimed(at=START, requested=3, leads=leads(1)))  # one lead left
    engine.handle(CallAnswered(call_id="call-0", at=START + 5 * SECOND))
    assert engine.calls["call-0"].agent_id == "a1"
    engine.handle(leaving(agent_id="a1", at=START + 6 * SECOND))  # takes effect after the call
    commands = engine.handle(Tick(at=START + MINUTE))  # past the empty list's back-off
    assert not any(isinstance(c, ClaimLeads) for c in commands)
