"""Trunks, pools and failover chains: caps, choice, failover, and the issue's goal run in
simulated time; Hypothesis drives random pool structures to check the caps."""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lines.health import HealthChanged, HealthSettings, TrunkState
from lines.trunks import (
    FailoverChain,
    Line,
    Seizure,
    TokenBucket,
    TrunkLine,
    TrunkPool,
    TrunkSettings,
    TrunkStatus,
)

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
S = TrunkState


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def trunk(
    name: str, *, channels: int = 100, cps: float = 100, tier: str = "standard", weight: int = 1
) -> TrunkLine:
    return TrunkLine(
        TrunkSettings(name=name, channels=channels, cps=cps, tier=tier, weight=weight),
        HealthSettings(min_calls=2, window_calls=4, cool_off=timedelta(seconds=10)),
    )


def trip(line: Line, name: str, when: datetime = T0) -> None:
    """Put trunk `name` of `line` OUT with failed calls."""
    [leaf] = [leaf for leaf in line.trunks() if leaf.name == name]
    while leaf.health.state is S.IN_SERVICE:
        assert leaf.take(when) is not None
        leaf.release(name)
        line.report(when, name, True)
    assert leaf.health.state is S.OUT


def taken(line: Line, count: int, when: datetime = T0, tier: str | None = None) -> list[str]:
    names = []
    for _ in range(count):
        seizure = line.take(when, tier=tier)
        assert seizure is not None
        names.append(seizure.trunk)
    return names


# --- one trunk ------------------------------------------------------------------------


def test_the_bucket_starts_full_and_refills_with_time() -> None:
    bucket = TokenBucket(2.5)
    assert bucket.burst == Fraction(5, 2)
    assert [bucket.take(T0) for _ in range(3)] == [True, True, False]
    assert bucket.available(at(0.2)) == 1  # 0.5 left + 0.5 arrived
    assert bucket.available(at(10)) == 2  # never more than the burst


def test_a_slow_trunk_still_takes_one_call() -> None:
    bucket = TokenBucket(0.5)
    assert bucket.take(T0)
    assert not bucket.take(at(1.999999))
    assert bucket.take(at(2))


def test_a_trunk_never_exceeds_its_channels() -> None:
    line = trunk("a", channels=2)
    assert taken(line, 2) == ["a", "a"]
    assert (line.free(T0), line.take(T0)) == (0, None)
    line.release("a")
    assert line.take(T0) == Seizure(trunk="a", probe=False)


def test_release_and_report_check_the_trunk() -> None:
    line = trunk("a")
    with pytest.raises(ValueError, match="no channel in use"):
        line.release("a")
    with pytest.raises(ValueError, match="asked about trunk 'b'"):
        line.release("b")
    with pytest.raises(ValueError, match="asked about trunk 'b'"):
        line.report(T0, "b", False)


def test_free_is_the_least_of_channels_tokens_and_probe_slots() -> None:
    line = trunk("a", channels=5, cps=3)
    assert line.free(T0) == 3
    trip(line, "a")
    assert line.free(at(9)) == 0
    assert line.free(at(10)) == 3  # probing, 3 probes at once; the bucket is full again
    line.bucket.take(at(10))
    line.bucket.take(at(10))
    assert line.free(at(10)) == 1


def test_a_take_while_probing_is_a_probe_and_its_outcome_brings_the_trunk_back() -> None:
    line = trunk("a")
    trip(line, "a")
    seizures = [line.take(at(10)) for _ in range(4)]
    assert seizures[:3] == [Seizure(trunk="a", probe=True)] * 3
    assert seizures[3] is None  # probe slots full
    changes = [change for _ in range(3) for change in line.report(at(12), "a", False, probe=True)]
    assert [c.after for c in changes] == [S.PROBING, S.IN_SERVICE]


def test_status_rows() -> None:
    line = trunk("a", channels=3, tier="premium")
    trip(line, "a")
    assert line.status(at(1)) == (
        TrunkStatus(
            trunk="a",
            tier="premium",
            state=S.OUT,
            calls_in_window=2,
            failures_in_window=2,
            failure_rate=1.0,
            channels_in_use=0,
            channels=3,
            back_at=at(10),
        ),
    )


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="cps"):
        TrunkSettings(name="a", channels=1, cps=0)
    with pytest.raises(ValueError, match="channels"):
        TrunkSettings(name="a", channels=0, cps=1)


# --- pools and chains -----------------------------------------------------------------


def test_a_pool_shares_calls_by_weight_smoothly() -> None:
    pool = TrunkPool("p", [trunk("a", weight=5), trunk("b"), trunk("c")])
    assert taken(pool, 7) == ["a", "a", "b", "a", "c", "a", "a"]
    assert Counter(taken(pool, 70)) == {"a": 50, "b": 10, "c": 10}


def test_a_pool_prefers_the_asked_tier_then_takes_any() -> None:
    pool = TrunkPool("p", [trunk("s"), trunk("p", channels=2, tier="premium")])
    assert taken(pool, 3, tier="premium") == ["p", "p", "s"]


def test_a_pool_skips_a_trunk_that_is_out() -> None:
    pool = TrunkPool("p", [trunk("a"), trunk("b")])
    trip(pool, "a")
    assert set(taken(pool, 5)) == {"b"}
    assert pool.free(T0) == 100 - 5  # b's tokens: 100 a second, 5 spent


def test_a_chain_fails_over_in_order_and_comes_back() -> None:
    first = TrunkPool("first", [trunk("a")])
    chain = FailoverChain([first, TrunkPool("second", [trunk("b")])])
    assert taken(chain, 2) == ["a", "a"]
    trip(chain, "a")
    assert taken(chain, 2) == ["b", "b"]
    assert chain.take(at(10)) == Seizure(trunk="a", probe=True)  # cooled off: a probes
    assert [c.after for c in chain.advance(at(10))] == [S.PROBING]


def test_a_chain_honours_a_tier_further_down() -> None:
    premium = TrunkPool("pre", [trunk("p", tier="premium")])
    chain = FailoverChain([TrunkPool("std", [trunk("s")]), premium])
    assert taken(chain, 1, tier="premium") == ["p"]
    assert taken(chain, 1) == ["s"]


def test_a_trunk_in_two_pools_is_one_trunk() -> None:
    shared = trunk("a", channels=3)
    both = TrunkPool("y", [shared, trunk("b", channels=2)])
    chain = FailoverChain([TrunkPool("x", [shared]), both])
    assert [leaf.name for leaf in chain.trunks()] == ["a", "b"]
    assert chain.free(T0) == 5
    chain.release(taken(chain, 1)[0])
    assert shared.in_use == 0


def test_composites_refuse_ambiguous_or_empty_members() -> None:
    with pytest.raises(ValueError, match="share a name"):
        TrunkPool("p", [trunk("a"), trunk("a")])
    with pytest.raises(ValueError, match="at least one member"):
        FailoverChain([])
    with pytest.raises(ValueError, match="no trunk 'zz'"):
        TrunkPool("p", [trunk("a")]).report(T0, "zz", True)


# --- the goal, in simulated time ------------------------------------------------

ONSET, HEAL, END = timedelta(minutes=30), timedelta(minutes=40), timedelta(minutes=50)


@dataclass
class Run:
    changes: list[HealthChanged] = field(default_factory=list)
    takes: list[tuple[datetime, Seizure, bool]] = field(default_factory=list)  # (at, on, failed)
    offered: int = 0


def simulate(seed: int) -> Run:
    """5 calls a second over trunks a and b of one pool (config defaults); a fails 40% of
    its calls from 30 to 40 minutes, both fail 1% otherwise. A failure (a 503) comes back
    within a second; a good call proves itself when answered or ended, 1-25 s later."""
    rng = random.Random(seed)
    chain = FailoverChain(
        [TrunkPool("main", [TrunkLine(TrunkSettings(name=n, channels=200, cps=10)) for n in "ab"])]
    )
    pending: list[tuple[datetime, int, Seizure, bool]] = []
    run, now = Run(), T0
    while now < T0 + END:
        while pending and pending[0][0] <= now:
            done, _, call, failed = heapq.heappop(pending)
            chain.release(call.trunk)
            run.changes += chain.report(done, call.trunk, failed, probe=call.probe)
        run.changes += chain.advance(now)
        run.offered += 1
        seizure = chain.take(now)
        if seizure is not None:
            sick = seizure.trunk == "a" and T0 + ONSET <= now < T0 + HEAL
            failed = rng.random() < (0.40 if sick else 0.01)
            delay = rng.uniform(0.1, 1.0) if failed else rng.uniform(1.0, 25.0)
            ends = now + timedelta(seconds=delay)
            heapq.heappush(pending, (ends, len(run.takes), seizure, failed))
            run.takes.append((now, seizure, failed))
        now += timedelta(milliseconds=200)
    return run


def test_goal_traffic_leaves_a_trunk_failing_40_percent_and_returns_when_it_heals() -> None:
    # A chance outcome; over seeds 0-399: out within 19 s (median 6 s), within 25 of its
    # calls in 96% (median 15, worst 48), back within 2 minutes in 98.5% (median 33 s,
    # worst 175 s: a 1% probe failure after healing), at most 0.3% of calls lost; 2 runs
    # saw a healthy trunk trip on its first 20 calls (3 failures: the config's small sample).
    run = simulate(seed=0)
    onset, heal = T0 + ONSET, T0 + HEAL
    assert all(c.trunk == "a" and c.at >= onset for c in run.changes)  # no false trips
    out = run.changes[0]
    assert out.after is S.OUT
    on_a = [(when, s, failed) for when, s, failed in run.takes if s.trunk == "a"]
    before_out = [when for when, _, _ in on_a if onset <= when <= out.at]
    assert out.at - onset <= timedelta(seconds=30)
    assert len(before_out) <= 25
    lost = [when for when, _, failed in on_a if failed and out.at < when < heal]
    assert len(lost) < 0.01 * run.offered
    assert run.changes[-1].after is S.IN_SERVICE
    assert run.changes[-1].at <= heal + timedelta(minutes=2)
    assert len(run.takes) == run.offered  # the pool always had room: nothing was refused


# --- properties -----------------------------------------------------------------------


@st.composite
def structures(draw: st.DrawFn) -> FailoverChain:
    """A chain of 1-3 pools over 1-4 trunks (shared, nested) with a twitchy breaker."""
    health = HealthSettings(
        threshold=0.3,
        min_calls=2,
        window_calls=4,
        window=timedelta(seconds=draw(st.integers(2, 30))),
        cool_off=timedelta(seconds=draw(st.integers(1, 5))),
        burst_factor=draw(st.sampled_from([None, 1.5])),
        probe_calls=draw(st.integers(1, 3)),
        max_probes_in_flight=draw(st.integers(1, 3)),
        max_cool_off=timedelta(seconds=8),
    )
    members: list[Line] = [
        TrunkLine(
            TrunkSettings(
                name=f"t{i}",
                channels=draw(st.integers(1, 3)),
                cps=draw(st.sampled_from([0.3, 0.5, 1.0, 2.5, 4.0])),
                tier=draw(st.sampled_from(["premium", "standard"])),
                weight=draw(st.integers(1, 3)),
            ),
            health,
        )
        for i in range(draw(st.integers(1, 4)))
    ]
    pools = []
    for j in range(draw(st.integers(1, 3))):
        chosen = draw(st.lists(st.sampled_from(members), min_size=1, max_size=3, unique_by=id))
        pools.append(TrunkPool(f"p{j}", chosen))
        members.append(pools[-1])  # later pools may hold earlier ones
    return FailoverChain(pools)


STEP = st.tuples(
    st.sampled_from(["take", "take", "take", "end", "end", "end", "tick", "tick"]),
    st.sampled_from([None, "premium", "standard"]),  # the tier a take asks for
    st.integers(0, 50),  # which open call ends
    st.booleans(),  # whether it failed
    st.sampled_from([0, 1, 100, 250, 500, 1000, 3000]),  # milliseconds a tick lasts
)


@settings(max_examples=250, deadline=None)
@given(chain=structures(), steps=st.lists(STEP, min_size=10, max_size=120))
def test_caps_hold_and_out_trunks_get_no_calls(
    chain: FailoverChain, steps: list[tuple[str, str | None, int, bool, int]]
) -> None:
    leaves = {leaf.name: leaf for leaf in chain.trunks()}
    now, open_calls = T0, list[Seizure]()
    starts: dict[str, list[datetime]] = {name: [] for name in leaves}
    changes: list[HealthChanged] = []
    for kind, tier, which, failed, millis in steps:
        if kind == "take":
            free = {name: leaf.free(now) for name, leaf in leaves.items()}
            seizure = chain.take(now, tier=tier)
            assert (seizure is None) == (sum(free.values()) == 0)
            if seizure is not None:
                leaf = leaves[seizure.trunk]
                assert leaf.health.state is (S.PROBING if seizure.probe else S.IN_SERVICE)
                if any(free[n] and leaves[n].tier == tier for n in leaves):
                    assert leaf.tier == tier
                open_calls.append(seizure)
                starts[seizure.trunk].append(now)
        elif kind == "end" and open_calls:
            seizure = open_calls.pop(which % len(open_calls))
            chain.release(seizure.trunk)
            changes += chain.report(now, seizure.trunk, failed, probe=seizure.probe)
        elif kind == "tick":
            now += timedelta(milliseconds=millis)
            changes += chain.advance(now)
        for name, leaf in leaves.items():
            assert leaf.in_use == sum(s.trunk == name for s in open_calls) <= leaf.settings.channels
    changes += chain.advance(now)
    for name, leaf in leaves.items():
        assert_cps_held(starts[name], leaf.settings.cps)
        assert_changes_chain([c for c in changes if c.trunk == name], leaf.health.state)


def assert_cps_held(starts: list[datetime], cps: float) -> None:
    """No window [t_i, t_j] holds more than floor(burst + cps × (t_j - t_i)) takes."""
    burst = max(Fraction(1), Fraction(cps))
    for i, first in enumerate(starts):
        for j in range(i, len(starts)):
            seconds = Fraction((starts[j] - first) // timedelta(microseconds=1), 1_000_000)
            assert j - i + 1 <= math.floor(burst + Fraction(cps) * seconds)


def assert_changes_chain(changes: list[HealthChanged], final: TrunkState) -> None:
    state = S.IN_SERVICE
    for change in changes:
        assert change.before is state
        state = change.after
    assert state is final
