"""Over many calls, what the engine observes matches what the scenario puts in.

Each check allows four standard errors of the sampling; the seeds are fixed, so a run is
reproducible and a failure is a real change in behaviour.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dialer.sim import (
    Outcome,
    Scenario,
    SimulatedNetwork,
    SimWorld,
    default_scenario,
    flat_scenario,
)
from lines.telephony import (
    AnswerClassified,
    CallAnswered,
    CalleeActed,
    CallEnded,
    CallEvent,
    CallRequest,
    CallRinging,
    EarlyMediaHeard,
    Party,
)
from rules.signals import Announcement, AnswerKind

CALLS = 20_000


def within(observed: float, expected: float, standard_error: float) -> bool:
    return abs(observed - expected) <= 4 * standard_error


def share_error(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


@dataclass
class Tally:
    """What an engine that connects every person at once would see."""

    network: SimulatedNetwork | None = None
    placed_at: dict[str, datetime] = field(default_factory=dict)
    answered: dict[str, datetime] = field(default_factory=dict)
    connected: dict[str, datetime] = field(default_factory=dict)
    talk: list[float] = field(default_factory=list)
    kinds: Counter[AnswerKind] = field(default_factory=Counter)
    vacant: set[str] = field(default_factory=set)
    ends: dict[str, CallEnded] = field(default_factory=dict)

    def __call__(self, event: CallEvent) -> None:
        assert self.network is not None
        call_id = event.call_id
        if isinstance(event, CallAnswered):
            self.answered[call_id] = event.at
        elif isinstance(event, AnswerClassified):
            self.kinds[event.kind] += 1
            if event.kind is AnswerKind.HUMAN:
                self.network.connect_agent(call_id, "agent-01")
                self.connected[call_id] = event.at
            else:
                self.network.hang_up(call_id)
        elif isinstance(event, EarlyMediaHeard) and event.announcement is Announcement.VACANT:
            self.vacant.add(call_id)
        elif isinstance(event, CallEnded):
            self.ends[call_id] = event
            if event.q850_cause == 1:
                self.vacant.add(call_id)
            if call_id in self.connected:
                self.talk.append((event.at - self.connected[call_id]).total_seconds())


def dial(scenario: Scenario, seed: int, ring_timeout: float, per_10s: int = 20) -> Tally:
    """Place CALLS calls to distinct numbers, `per_10s` every ten simulated seconds."""
    world = SimWorld(scenario.start)
    tally = Tally()
    network = tally.network = SimulatedNetwork(world, scenario, tally, seed=seed)
    for n in range(CALLS):
        call_id = f"c{n}"
        tally.placed_at[call_id] = world.now
        network.place(
            CallRequest(
                call_id=call_id,
                e164=f"+86139{n:08d}",
                caller_id="+862000000000",
                trunk="t",
                ring_timeout=timedelta(seconds=ring_timeout),
            )
        )
        if n % per_10s == per_10s - 1:
            world.run_for(timedelta(seconds=10))
    world.run_all()
    assert len(tally.ends) == CALLS
    return tally


@pytest.fixture(scope="module")
def default_run() -> tuple[Scenario, Tally]:
    scenario = default_scenario()
    return scenario, dial(scenario, seed=2024, ring_timeout=60)


def test_answer_rate_follows_the_share_and_the_local_hour(
    default_run: tuple[Scenario, Tally],
) -> None:
    scenario, tally = default_run
    answer = scenario.population.answer
    zone = ZoneInfo("Asia/Shanghai")
    chances = [answer.probability(at.astimezone(zone).hour) for at in tally.placed_at.values()]
    expected = statistics.fmean(chances)
    error = math.sqrt(sum(p * (1 - p) for p in chances)) / CALLS
    assert within(len(tally.answered) / CALLS, expected, error)


def test_vacant_share(default_run: tuple[Scenario, Tally]) -> None:
    scenario, tally = default_run
    share = scenario.population.vacant.share
    assert within(len(tally.vacant) / CALLS, share, share_error(share, CALLS))


def test_machine_share_of_answers(default_run: tuple[Scenario, Tally]) -> None:
    scenario, tally = default_run
    answers = sum(tally.kinds.values())
    share = scenario.population.answer.machine_share
    assert within(tally.kinds[AnswerKind.MACHINE] / answers, share, share_error(share, answers))


def test_mean_talk_time(default_run: tuple[Scenario, Tally]) -> None:
    scenario, tally = default_run
    assert len(tally.talk) == tally.kinds[AnswerKind.HUMAN]
    error = statistics.stdev(tally.talk) / math.sqrt(len(tally.talk))
    assert within(statistics.fmean(tally.talk), scenario.talk_time.expected(), error)


def test_every_failure_kind_keeps_its_share(default_run: tuple[Scenario, Tally]) -> None:
    scenario, tally = default_run
    outcomes = tally.network.outcomes if tally.network else Counter[Outcome]()
    for kind, failure in scenario.population.failures():
        observed = outcomes[Outcome(kind)] / CALLS
        assert within(observed, failure.share, share_error(failure.share, CALLS)), kind


# --- the pacing benchmark's flat model -----------------------------------------------


@pytest.fixture(scope="module")
def flat_run() -> tuple[Scenario, Tally]:
    scenario = flat_scenario(answer=0.3, fast_failure=0.15, talk_mean=120, wrap_up=10)
    return scenario, dial(scenario, seed=77, ring_timeout=25)


def test_flat_model_reproduces_p_and_f(flat_run: tuple[Scenario, Tally]) -> None:
    _, tally = flat_run
    ends = tally.ends.values()
    fast = [e for e in ends if e.sip_status == 486]
    timed_out = [e for e in ends if e.sip_status == 487 and e.call_id not in tally.answered]
    assert within(len(tally.answered) / CALLS, 0.3, share_error(0.3, CALLS))
    assert within(len(fast) / CALLS, 0.15, share_error(0.15, CALLS))
    assert len(tally.answered) + len(fast) + len(timed_out) == CALLS
    assert tally.kinds.keys() == {AnswerKind.HUMAN}
    assert not tally.vacant


def test_flat_model_timings(flat_run: tuple[Scenario, Tally]) -> None:
    _, tally = flat_run
    delays = [(at - tally.placed_at[c]).total_seconds() for c, at in tally.answered.items()]
    assert min(delays) >= 5
    assert max(delays) <= 20
    assert within(statistics.fmean(delays), 12.5, 15 / math.sqrt(12 * len(delays)))
    for end in tally.ends.values():
        after = (end.at - tally.placed_at[end.call_id]).total_seconds()
        if end.sip_status == 486:
            assert after == pytest.approx(5, abs=1e-6)
        elif end.call_id not in tally.answered:
            assert (end.sip_status, end.ended_by) == (487, Party.US)
            assert after == pytest.approx(25, abs=1e-6)
    error = 120 / math.sqrt(len(tally.talk))  # exponential: sd = mean
    assert within(statistics.fmean(tally.talk), 120, error)


def test_flat_model_callers_wait_two_seconds_for_an_agent() -> None:
    scenario = flat_scenario(answer=1.0, fast_failure=0, talk_mean=60, wrap_up=5)
    world = SimWorld(scenario.start)
    events: list[CallEvent] = []
    network = SimulatedNetwork(world, scenario, events.append, seed=1)
    network.place(
        CallRequest(
            call_id="c",
            e164="+8613900000000",
            caller_id="+862000000000",
            trunk="t",
            ring_timeout=timedelta(seconds=25),
        )
    )
    world.run_all()
    ringing, answered, classified, ended = events
    assert isinstance(ringing, CallRinging)
    assert ringing.at == scenario.start
    assert isinstance(answered, CallAnswered)
    assert isinstance(ended, CallEnded)
    assert classified.at == answered.at  # no machines to detect: AMD decides at once
    assert ended.at - answered.at == timedelta(seconds=2)
    assert ended.ended_by is Party.CALLEE


# --- robot scripts -------------------------------------------------------------------


def test_script_reactions_follow_their_shares() -> None:
    scenario = default_scenario()
    world = SimWorld(scenario.start)
    intents: Counter[str] = Counter()
    scripted: set[str] = set()
    hung_up_silently: set[str] = set()  # hung up during the script, without acting

    def sink(event: CallEvent) -> None:
        if isinstance(event, AnswerClassified) and event.kind is AnswerKind.HUMAN:
            network.start_script(event.call_id, "cart")
            scripted.add(event.call_id)
        elif isinstance(event, CalleeActed):
            intents[event.intent] += 1
            scripted.discard(event.call_id)
        elif isinstance(event, CallEnded) and event.call_id in scripted:
            assert event.ended_by is Party.CALLEE
            hung_up_silently.add(event.call_id)

    network = SimulatedNetwork(world, scenario, sink, seed=8)
    for n in range(CALLS):
        network.place(
            CallRequest(
                call_id=f"c{n}",
                e164=f"+86137{n:08d}",
                caller_id="+862000000000",
                trunk="t",
                ring_timeout=timedelta(seconds=60),
            )
        )
        if n % 20 == 19:
            world.run_for(timedelta(seconds=10))
    world.run_all()
    n = sum(intents.values()) + len(hung_up_silently)
    reactions = scenario.script
    expected = {
        "completed": reactions.completed,
        "opt_out": reactions.opt_out,
        "agent": reactions.agent,
        reactions.digit: reactions.key,
    }
    for intent, share in expected.items():
        assert within(intents[intent] / n, share, share_error(share, n)), intent
    rest = 1 - sum(expected.values())
    assert within(len(hung_up_silently) / n, rest, share_error(rest, n))


def test_how_scripted_calls_end() -> None:
    scenario = default_scenario()
    world = SimWorld(scenario.start)
    events: list[CallEvent] = []

    def sink(event: CallEvent) -> None:
        events.append(event)
        if isinstance(event, AnswerClassified):  # machines too: they record the message
            network.start_script(event.call_id, "cart")

    network = SimulatedNetwork(world, scenario, sink, seed=5)
    for n in range(3000):
        network.place(
            CallRequest(
                call_id=f"c{n}",
                e164=f"+86136{n:08d}",
                caller_id="+862000000000",
                trunk="t",
                ring_timeout=timedelta(seconds=60),
            )
        )
    world.run_all()
    ends = {e.call_id: e for e in events if isinstance(e, CallEnded)}
    machines = {e.call_id for e in events if getattr(e, "kind", None) is AnswerKind.MACHINE}
    acts = [e for e in events if isinstance(e, CalleeActed)]
    assert {act.intent for act in acts} == {"completed", "opt_out", "agent", "1"}
    for act in acts:
        ended = ends[act.call_id]
        if act.intent == "completed":  # we hang up when the script is over
            assert (ended.at, ended.ended_by, ended.sip_status) == (act.at, Party.US, 200)
        else:  # nobody answered the act: the callee gives up
            assert ended.ended_by is Party.CALLEE
            assert ended.at - act.at == scenario.script.wait_after_act.value
    assert machines
    assert all(act.intent == "completed" for act in acts if act.call_id in machines)
    assert machines <= {act.call_id for act in acts}
