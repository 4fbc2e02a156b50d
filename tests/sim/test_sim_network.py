"""The simulated network keeps the TelephonyBackend contract and does what the scenario says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.sim import (
    Callees,
    Outcome,
    Scenario,
    SimulatedNetwork,
    SimWorld,
    default_scenario,
    stable_seed,
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
    TelephonyBackend,
)
from rules.signals import Announcement, AnswerKind

SCENARIO = default_scenario()
E = TypeVar("E", bound=CallEvent)


class Harness:
    """A network on a fresh world, recording events; `react` plays the engine."""

    def __init__(
        self,
        scenario: Scenario = SCENARIO,
        seed: int = 1,
        react: Callable[[Harness, CallEvent], None] | None = None,
    ) -> None:
        self.world = SimWorld(scenario.start)
        self.events: list[CallEvent] = []
        self.react = react
        self.network = SimulatedNetwork(self.world, scenario, self._sink, seed=seed)
        self._count = 0

    def _sink(self, event: CallEvent) -> None:
        self.events.append(event)
        if self.react is not None:
            self.react(self, event)

    def place(self, e164: str | None = None, trunk: str = "t", ring_timeout: float = 60) -> str:
        self._count += 1
        call_id = f"call-{self._count}"
        self.network.place(
            CallRequest(
                call_id=call_id,
                e164=e164 or f"+86138{self._count:08d}",
                caller_id="+862000000000",
                trunk=trunk,
                ring_timeout=timedelta(seconds=ring_timeout),
            )
        )
        return call_id

    def of(self, call_id: str) -> list[CallEvent]:
        return [event for event in self.events if event.call_id == call_id]

    def ended(self, call_id: str) -> CallEnded:
        last = self.of(call_id)[-1]
        assert isinstance(last, CallEnded)
        return last

    def by_call(self) -> dict[str, list[CallEvent]]:
        calls: dict[str, list[CallEvent]] = defaultdict(list)
        for event in self.events:
            calls[event.call_id].append(event)
        return calls


def first(events: list[CallEvent], kind: type[E]) -> E:
    return next(event for event in events if isinstance(event, kind))


def a_call_that(harness: Harness, outcome: Outcome, ring_timeout: float = 60) -> str:
    """Place calls until one meets `outcome` (by the network's ground truth)."""
    for _ in range(500):
        before = harness.network.outcomes[outcome]
        call_id = harness.place(ring_timeout=ring_timeout)
        if harness.network.outcomes[outcome] > before:
            return call_id
    raise AssertionError(f"no {outcome} call in 500")


def test_it_is_a_telephony_backend() -> None:
    backend: TelephonyBackend = Harness().network
    assert backend is not None


# --- the contract --------------------------------------------------------------------

_ACTIONS = ("nothing", "connect", "script", "abandon", "hang_up", "hang_up_later")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), actions=st.lists(st.sampled_from(_ACTIONS), min_size=1))
def test_every_call_ends_exactly_once_and_last(seed: int, actions: list[str]) -> None:
    def react(harness: Harness, event: CallEvent) -> None:
        network, call_id = harness.network, event.call_id
        action = actions[int(call_id.split("-")[1]) % len(actions)]
        if isinstance(event, CallRinging) and action == "hang_up":
            network.hang_up(call_id)
        elif isinstance(event, AnswerClassified | CalleeActed):
            {
                "connect": lambda: network.connect_agent(call_id, "agent-01"),
                "script": lambda: network.start_script(call_id, "cart"),
                "abandon": lambda: network.play_abandon_message(call_id),
                "hang_up_later": lambda: network.hang_up(call_id),
            }.get(action, lambda: None)()
        elif isinstance(event, CallEnded):  # commands after the end are no-ops
            network.hang_up(call_id)
            network.connect_agent(call_id, "agent-01")
            network.start_script(call_id, "cart")
            network.play_abandon_message(call_id)

    harness = Harness(seed=seed, react=react)
    placed = [harness.place(ring_timeout=30) for _ in range(150)]
    harness.world.run_all()
    calls = harness.by_call()
    assert sorted(calls) == sorted(placed)
    for events in calls.values():
        ends = [event for event in events if isinstance(event, CallEnded)]
        assert len(ends) == 1
        assert events[-1] is ends[0]
        assert [event.at for event in events] == sorted(event.at for event in events)
    assert harness.network.active_calls == 0
    assert harness.network.channels_in_use("t") == 0


def test_commands_on_unknown_or_ended_calls_are_no_ops() -> None:
    harness = Harness()
    harness.network.hang_up("never-placed")
    harness.network.connect_agent("never-placed", "agent-01")
    call_id = a_call_that(harness, Outcome.VACANT)
    harness.world.run_all()
    count = len(harness.events)
    harness.network.hang_up(call_id)
    harness.network.connect_agent(call_id, "agent-01")
    harness.world.run_all()
    assert len(harness.events) == count


def test_answer_only_commands_on_a_ringing_call_are_refused() -> None:
    harness = Harness()
    call_id = harness.place()
    commands: list[Callable[[], None]] = [
        lambda: harness.network.connect_agent(call_id, "agent-01"),
        lambda: harness.network.start_script(call_id, "cart"),
        lambda: harness.network.play_abandon_message(call_id),
    ]
    for command in commands:
        with pytest.raises(ValueError, match="not been answered"):
            command()


def test_a_call_id_in_progress_cannot_be_placed_again() -> None:
    harness = Harness()
    harness.place()
    with pytest.raises(ValueError, match="already in progress"):
        harness.network.place(
            CallRequest(
                call_id="call-1",
                e164="+8613800000000",
                caller_id="+862000000000",
                trunk="t",
                ring_timeout=timedelta(seconds=30),
            )
        )


def test_commands_never_emit_at_once() -> None:
    harness = Harness()
    call_id = harness.place()
    harness.world.run_for(timedelta(seconds=3))
    count = len(harness.events)
    harness.network.hang_up(call_id)
    assert len(harness.events) == count
    harness.world.run_for(timedelta(0))
    assert harness.ended(call_id).at == harness.world.now


# --- hanging up and ring timeouts ----------------------------------------------------


def test_hang_up_before_the_answer_is_a_487_from_us() -> None:
    harness = Harness()
    call_id = a_call_that(harness, Outcome.NO_ANSWER)
    harness.world.run_for(timedelta(seconds=10))
    harness.network.hang_up(call_id)
    harness.world.run_all()
    ended = harness.ended(call_id)
    assert (ended.sip_status, ended.ended_by) == (487, Party.US)
    assert ended.at == SCENARIO.start + timedelta(seconds=10)


def test_hang_up_after_the_answer_is_a_200_from_us() -> None:
    def react(harness: Harness, event: CallEvent) -> None:
        if isinstance(event, CallAnswered):
            harness.network.hang_up(event.call_id)

    harness = Harness(react=react)
    call_id = a_call_that(harness, Outcome.HUMAN)
    harness.world.run_all()
    answered, ended = harness.of(call_id)[-2:]
    assert isinstance(answered, CallAnswered)
    assert isinstance(ended, CallEnded)
    assert (ended.sip_status, ended.ended_by, ended.at) == (200, Party.US, answered.at)


def test_an_unanswered_call_is_cancelled_at_our_ring_timeout() -> None:
    harness = Harness()
    call_id = a_call_that(harness, Outcome.NO_ANSWER, ring_timeout=25)
    harness.world.run_all()
    ended = harness.ended(call_id)
    assert (ended.sip_status, ended.ended_by) == (487, Party.US)
    assert ended.at - SCENARIO.start == timedelta(seconds=25)


def test_the_network_gives_up_first_when_its_timeout_is_shorter() -> None:
    harness = Harness()
    call_id = a_call_that(harness, Outcome.NO_ANSWER, ring_timeout=90)
    harness.world.run_all()
    ended = harness.ended(call_id)
    assert (ended.sip_status, ended.q850_cause, ended.ended_by) == (480, 19, Party.NETWORK)
    assert ended.at - SCENARIO.start == SCENARIO.network.no_answer_timeout


def test_an_answer_after_the_ring_timeout_never_comes() -> None:
    harness = Harness()
    call_id = a_call_that(harness, Outcome.HUMAN, ring_timeout=0.5)  # before any ring
    harness.world.run_all()
    assert [type(event) for event in harness.of(call_id)] == [CallEnded]
    assert harness.ended(call_id).sip_status == 487


# --- failures --------------------------------------------------------------------------


def test_announced_failures_ring_then_announce_then_fail() -> None:
    harness = Harness()
    seen = Counter[tuple[type[CallEvent], ...]]()
    for _ in range(400):
        call_id = a_call_that(harness, Outcome.VACANT)
        harness.world.run_all()
        events = harness.of(call_id)
        seen[tuple(type(event) for event in events)] += 1
        heard = [e for e in events if isinstance(e, EarlyMediaHeard)]
        ended = harness.ended(call_id)
        if heard:
            assert heard[0].announcement is Announcement.VACANT
            assert ended.sip_status in (480, 487, 503)
        else:
            assert (ended.sip_status, ended.q850_cause) in ((404, 1), (480, 1))
        assert ended.ended_by is Party.NETWORK
    assert seen.keys() == {(CallRinging, EarlyMediaHeard, CallEnded), (CallEnded,)}


def test_a_number_keeps_its_status_and_signalling() -> None:
    harness = Harness()
    call_id = a_call_that(harness, Outcome.VACANT)
    e164 = f"+86138{int(call_id.split('-')[1]):08d}"
    harness.world.run_all()
    shape = [(type(e), getattr(e, "announcement", None)) for e in harness.of(call_id)]
    status = harness.ended(call_id).sip_status
    for _ in range(3):
        again = harness.place(e164)
        harness.world.run_all()
        assert [(type(e), getattr(e, "announcement", None)) for e in harness.of(again)] == shape
        assert harness.ended(again).sip_status == status


def test_profiles_are_stable_across_processes() -> None:
    numbers = [f"+86139{n:08d}" for n in range(0, 400, 7)]
    here = [Callees(SCENARIO, 5).profile(e164) for e164 in numbers]
    code = (
        "from dialer.sim import Callees, default_scenario\n"
        f"numbers = {numbers!r}\n"
        "c = Callees(default_scenario(), 5)\n"
        "print([(p.status and p.status.value, p.signal_draw) for p in map(c.profile, numbers)])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.strip() == repr([(p.status and p.status.value, p.signal_draw) for p in here])
    assert stable_seed(1, "+8613800000000", 0) == stable_seed(1, "+8613800000000", 0)


def test_the_nth_call_to_a_number_goes_the_same_whatever_else_is_dialed() -> None:
    def timeline(harness: Harness, call_id: str) -> list[tuple[str, timedelta]]:
        placed = harness.world.start
        return [(type(e).__name__, e.at - placed) for e in harness.of(call_id)]

    alone, busy = Harness(seed=9), Harness(seed=9)
    for _ in range(50):
        busy.place(f"+86137{_:08d}")
    target_alone, target_busy = alone.place("+8613512345678"), busy.place("+8613512345678")
    alone.world.run_all()
    busy.world.run_all()
    assert timeline(alone, target_alone) == timeline(busy, target_busy)


def test_same_seed_same_events_and_another_seed_others() -> None:
    def run(seed: int) -> list[CallEvent]:
        def react(harness: Harness, event: CallEvent) -> None:
            if isinstance(event, AnswerClassified) and event.kind is AnswerKind.HUMAN:
                harness.network.start_script(event.call_id, "cart")
            elif isinstance(event, CalleeActed) and event.intent == "agent":
                harness.network.connect_agent(event.call_id, "agent-01")

        harness = Harness(seed=seed, react=react)
        for _ in range(300):
            harness.place()
            harness.world.run_for(timedelta(seconds=1))
        harness.world.run_all()
        return harness.events

    assert run(3) == run(3)
    assert run(3) != run(4)


# --- after the answer ----------------------------------------------------------------


def test_a_person_left_in_silence_hangs_up() -> None:
    harness = Harness()
    call_id = a_call_that(harness, Outcome.HUMAN)
    harness.world.run_all()
    events = harness.of(call_id)
    answered, ended = first(events, CallAnswered), harness.ended(call_id)
    assert first(events, AnswerClassified).kind is AnswerKind.HUMAN
    assert (ended.sip_status, ended.ended_by) == (200, Party.CALLEE)
    assert timedelta(seconds=3) <= ended.at - answered.at <= timedelta(seconds=8)


def test_a_machine_is_classified_and_hangs_up_when_left_alone() -> None:
    harness = Harness()
    call_id = a_call_that(harness, Outcome.MACHINE)
    harness.world.run_all()
    events = harness.of(call_id)
    answered, classified = first(events, CallAnswered), first(events, AnswerClassified)
    assert classified.kind is AnswerKind.MACHINE
    assert timedelta(seconds=2.5) <= classified.at - answered.at <= timedelta(seconds=4)
    ended = harness.ended(call_id)
    assert ended.ended_by is Party.CALLEE
    assert timedelta(seconds=20) <= ended.at - answered.at <= timedelta(seconds=40)


def test_the_abandon_message_plays_then_we_hang_up() -> None:
    def react(harness: Harness, event: CallEvent) -> None:
        if isinstance(event, CallAnswered):
            harness.network.play_abandon_message(event.call_id)

    harness = Harness(react=react)
    call_id = a_call_that(harness, Outcome.HUMAN)
    harness.world.run_all()
    answered, ended = first(harness.of(call_id), CallAnswered), harness.ended(call_id)
    assert (ended.sip_status, ended.ended_by) == (200, Party.US)
    assert ended.at - answered.at == timedelta(seconds=5)


def test_a_connected_person_talks_then_hangs_up() -> None:
    def react(harness: Harness, event: CallEvent) -> None:
        if isinstance(event, CallAnswered):
            harness.network.connect_agent(event.call_id, "agent-01")

    harness = Harness(react=react)
    call_id = a_call_that(harness, Outcome.HUMAN)
    harness.world.run_all()
    ended = harness.ended(call_id)
    assert (ended.sip_status, ended.ended_by) == (200, Party.CALLEE)
    assert AnswerKind.HUMAN in [getattr(e, "kind", None) for e in harness.of(call_id)]
