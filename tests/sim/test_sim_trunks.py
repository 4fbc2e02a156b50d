"""Simulated trunks: channel caps, unknown trunks, failure rates and failure windows."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from dialer.sim import (
    FailureWindow,
    Outcome,
    Scenario,
    SimTrunk,
    SimulatedNetwork,
    SimWorld,
    default_scenario,
)
from dialer.sim.scenario import CallerIdEffects
from lines.telephony import CallEnded, CallEvent, CallRequest, Party

SCENARIO = default_scenario()


class Harness:
    """A network with the given trunks, recording its events."""

    def __init__(self, scenario: Scenario) -> None:
        self.world = SimWorld(scenario.start)
        self.events: list[CallEvent] = []
        self.network = SimulatedNetwork(self.world, scenario, self.events.append, seed=1)
        self._count = 0

    def place(self, trunk: str) -> str:
        self._count += 1
        call_id = f"call-{self._count}"
        request = CallRequest(
            call_id=call_id,
            e164=f"+86138{self._count:08d}",
            caller_id="+862000000000",
            trunk=trunk,
            ring_timeout=timedelta(seconds=60),
        )
        self.network.place(request)
        return call_id

    def of(self, call_id: str) -> list[CallEvent]:
        return [event for event in self.events if event.call_id == call_id]

    def ended(self, call_id: str) -> CallEnded:
        last = self.of(call_id)[-1]
        assert isinstance(last, CallEnded)
        return last


def with_trunks(*trunks: SimTrunk) -> Scenario:
    return dataclasses.replace(SCENARIO, trunks=trunks)


def test_a_full_trunk_refuses_calls_with_503_no_free_channel() -> None:
    harness = Harness(with_trunks(SimTrunk(name="gz", channels=3), SimTrunk(name="sz")))
    calls = [harness.place(trunk="gz") for _ in range(5)]
    other = harness.place(trunk="sz")
    assert harness.network.channels_in_use("gz") == 3
    assert harness.network.channels_in_use("sz") == 1
    harness.world.run_for(timedelta(0))
    for call_id in calls[3:]:
        ended = harness.ended(call_id)
        assert (ended.sip_status, ended.reason) == (503, "no free channel")
        assert ended.at == SCENARIO.start
    assert not any(isinstance(e, CallEnded) for e in harness.of(other))
    harness.world.run_all()
    assert harness.network.channels_in_use("gz") == 0
    assert harness.network.outcomes[Outcome.NO_CHANNEL] == 2
    harness.place(trunk="gz")
    assert harness.network.channels_in_use("gz") == 1


def test_an_unknown_trunk_fails_the_call_without_a_status() -> None:
    harness = Harness(with_trunks(SimTrunk(name="gz")))
    call_id = harness.place(trunk="nowhere")
    harness.world.run_all()
    ended = harness.ended(call_id)
    assert (ended.sip_status, ended.reason) == (None, "unknown trunk")


def test_failure_windows_fail_only_the_calls_placed_inside() -> None:
    window = FailureWindow(start=timedelta(minutes=30), end=timedelta(minutes=60))
    trunk = SimTrunk(name="gz", failure_code=502, failure_windows=(window,))
    harness = Harness(with_trunks(trunk))
    inside: list[str] = []
    outside: list[str] = []
    for minute in range(90):
        for _ in range(10):
            (inside if 30 <= minute < 60 else outside).append(harness.place(trunk="gz"))
        harness.world.run_for(timedelta(minutes=1))
    harness.world.run_all()
    for call_id in inside:
        ended = harness.ended(call_id)
        assert (ended.sip_status, ended.ended_by) == (502, Party.NETWORK)
        assert len(harness.of(call_id)) == 1
    assert all(harness.ended(call_id).sip_status != 502 for call_id in outside)


def test_a_trunk_fails_calls_at_its_failure_rate() -> None:
    harness = Harness(with_trunks(SimTrunk(name="gz", failure_rate=0.2)))
    for _ in range(5000):
        harness.place(trunk="gz")
    harness.world.run_all()
    failed = harness.network.outcomes[Outcome.TRUNK_FAILURE]
    assert abs(failed / 5000 - 0.2) < 4 * (0.2 * 0.8 / 5000) ** 0.5


def test_silent_windows_end_calls_as_answered_with_no_media() -> None:
    window = FailureWindow(start=timedelta(minutes=10), end=timedelta(minutes=20))
    harness = Harness(with_trunks(SimTrunk(name="gz", silent_windows=(window,))))
    silent: list[str] = []
    for minute in range(30):
        for _ in range(5):
            call_id = harness.place(trunk="gz")
            if 10 <= minute < 20:
                silent.append(call_id)
        harness.world.run_for(timedelta(minutes=1))
    harness.world.run_all()
    for call_id in silent:
        ended = harness.ended(call_id)
        assert ended.no_media
        assert ended.sip_status == 200
        assert len(harness.of(call_id)) == 1  # never reported as answered
    assert harness.network.outcomes[Outcome.SILENT] == len(silent)
    assert not any(e.no_media for e in harness.events if isinstance(e, CallEnded)
                   and e.call_id not in silent)


def test_over_used_caller_ids_get_marked_and_answered_less() -> None:
    effects = CallerIdEffects(tolerated_per_day=20, mark_chance=0.5, loss_per_mark=0.05,
                              floor=0.3)
    harness = Harness(dataclasses.replace(SCENARIO, caller_ids=effects))
    plain = Harness(SCENARIO)
    for _ in range(400):  # one caller ID, one day: far over what callees tolerate
        harness.place(trunk="any")
        plain.place(trunk="any")
    harness.world.run_all()
    plain.world.run_all()
    marks = harness.network.marks["+862000000000"]
    assert 150 < marks < 250  # about half of the 380 calls over the tolerance
    humans = harness.network.outcomes[Outcome.HUMAN] + harness.network.outcomes[Outcome.MACHINE]
    before = plain.network.outcomes[Outcome.HUMAN] + plain.network.outcomes[Outcome.MACHINE]
    assert harness.network.outcomes[Outcome.SCREENED] > 0
    assert humans + harness.network.outcomes[Outcome.SCREENED] == before  # same fates
    assert humans < 0.6 * before
    assert plain.network.marks.total() == 0  # the default scenario marks nothing


def test_callees_answer_a_local_caller_id_more() -> None:
    effects = CallerIdEffects(nonlocal_factor=0.5)
    counts: dict[str, int] = {}
    for caller in ("+861012345678", "+862161234567"):  # Beijing, Shanghai fixed lines
        harness = Harness(dataclasses.replace(SCENARIO, caller_ids=effects))
        for i in range(600):  # Beijing mobiles (138 0013 8xxx)
            harness.network.place(CallRequest(
                call_id=f"c{i}", e164=f"+861380013{i:04d}", caller_id=caller, trunk="any",
                ring_timeout=timedelta(seconds=60)))
        harness.world.run_all()
        counts[caller] = harness.network.outcomes[Outcome.SCREENED]
    assert counts["+861012345678"] == 0  # local: nobody screens it out
    assert counts["+862161234567"] > 20
