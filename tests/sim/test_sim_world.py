"""The discrete-event scheduler and random durations."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from dialer.sim.world import CallRandom, Dist, DistKind, SimWorld

START = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)


def test_callbacks_run_in_time_order_and_ties_in_insertion_order() -> None:
    world = SimWorld(START)
    ran: list[tuple[str, datetime]] = []

    def note(name: str) -> Callable[[], None]:
        return lambda: ran.append((name, world.now))

    for name, seconds in (("c", 3), ("a", 1), ("b1", 2), ("b2", 2), ("b3", 2)):
        world.schedule(START + timedelta(seconds=seconds), note(name))
    assert world.run_until(START + timedelta(seconds=10)) == 5
    assert [name for name, _ in ran] == ["a", "b1", "b2", "b3", "c"]
    assert [at - START for _, at in ran] == [timedelta(seconds=s) for s in (1, 2, 2, 2, 3)]
    assert world.now == START + timedelta(seconds=10)


def test_run_until_stops_at_its_time_and_leaves_later_callbacks() -> None:
    world = SimWorld(START)
    ran: list[int] = []
    world.schedule_in(timedelta(seconds=5), lambda: ran.append(5))
    world.schedule_in(7.5, lambda: ran.append(7))
    world.run_until(START + timedelta(seconds=5))
    assert ran == [5]
    assert world.next_time() == START + timedelta(seconds=7.5)
    world.run_for(timedelta(seconds=10))
    assert ran == [5, 7]
    assert world.next_time() is None
    assert world.clock.now() == START + timedelta(seconds=15)


def test_callbacks_may_schedule_more_for_now_and_later() -> None:
    world = SimWorld(START)
    ran: list[str] = []

    def first() -> None:
        ran.append("first")
        world.schedule_in(0, lambda: ran.append("same instant"))
        world.schedule_in(1, lambda: ran.append("a second later"))

    world.schedule_in(1, first)
    world.run_until(START + timedelta(seconds=1))
    assert ran == ["first", "same instant"]
    world.run_all()
    assert ran == ["first", "same instant", "a second later"]
    assert world.now == START + timedelta(seconds=2)


def test_cancelled_callbacks_do_not_run() -> None:
    world = SimWorld(START)
    ran: list[str] = []
    timer = world.schedule_in(1, lambda: ran.append("cancelled"))
    world.schedule_in(2, lambda: ran.append("kept"))
    timer.cancel()
    assert world.next_time() == START + timedelta(seconds=2)
    world.run_all()
    assert ran == ["kept"]
    timer.cancel()  # after the fact: harmless


def test_time_never_goes_backwards() -> None:
    world = SimWorld(START)
    world.run_for(timedelta(minutes=1))
    with pytest.raises(ValueError, match="past"):
        world.schedule(START, lambda: None)
    with pytest.raises(ValueError, match="past"):
        world.schedule_in(-1, lambda: None)
    with pytest.raises(ValueError, match="backwards"):
        world.run_until(START)


def test_run_all_with_a_limit() -> None:
    world = SimWorld(START)
    ran: list[int] = []
    for seconds in (1, 2, 30):
        world.schedule_in(seconds, partial(ran.append, seconds))
    world.run_all(limit=START + timedelta(seconds=10))
    assert ran == [1, 2]
    assert world.now == START + timedelta(seconds=2)
    assert world.elapsed == timedelta(seconds=2)


def test_the_clock_reads_the_callbacks_time_to_the_microsecond() -> None:
    world = SimWorld(START)
    seen: list[datetime] = []
    world.schedule(START + timedelta(seconds=1, microseconds=7), lambda: seen.append(world.now))
    world.schedule_in(2.000003, lambda: seen.append(world.clock.now()))
    world.run_all()
    assert seen == [
        START + timedelta(seconds=1, microseconds=7),
        START + timedelta(seconds=2, microseconds=3),
    ]


def test_running_until_the_next_time_runs_what_is_due_then() -> None:
    world = SimWorld(START)
    ran: list[float] = []
    for seconds in (0.1234567, 1 / 3, 2.5, 1e-7):
        world.schedule_in(seconds, partial(ran.append, seconds))
    while (due := world.next_time()) is not None:
        world.run_until(due)
    assert ran == [1e-7, 0.1234567, 1 / 3, 2.5]
    assert world.now == START + timedelta(seconds=2.5)


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        SimWorld(datetime(2024, 6, 3))


# --- random durations ----------------------------------------------------------------


def test_fixed_and_uniform_draws() -> None:
    rng = random.Random(1)
    assert Dist.fixed(5).draw(rng) == 5.0
    draws = [Dist.uniform(5, 20).draw(rng) for _ in range(2000)]
    assert min(draws) >= 5
    assert max(draws) <= 20
    assert Dist.uniform(5, 20).expected() == 12.5


@pytest.mark.parametrize(
    "dist", [Dist.exponential(90), Dist.lognormal(75, 0.7), Dist.uniform(2, 8)], ids=str
)
def test_draws_have_the_stated_mean(dist: Dist) -> None:
    rng = CallRandom(12345)
    draws = [dist.draw(rng) for _ in range(20_000)]
    standard_error = statistics.stdev(draws) / math.sqrt(len(draws))
    assert abs(statistics.fmean(draws) - dist.expected()) < 4 * standard_error


def test_min_and_max_clip_unbounded_draws() -> None:
    dist = Dist(
        dist=DistKind.EXPONENTIAL,
        mean=timedelta(seconds=60),
        min=timedelta(seconds=10),
        max=timedelta(seconds=100),
    )
    draws = [dist.draw(random.Random(seed)) for seed in range(500)]
    assert min(draws) == 10
    assert max(draws) == 100


def test_call_random_is_a_reproducible_uniform_stream() -> None:
    one, other, stream = CallRandom(42), CallRandom(42), CallRandom(42)
    assert [one.random() for _ in range(5)] == [other.random() for _ in range(5)]
    draws = [stream.random() for _ in range(50_000)]
    assert all(0 <= x < 1 for x in draws)
    assert abs(statistics.fmean(draws) - 0.5) < 4 * math.sqrt(1 / 12 / len(draws))
    assert CallRandom(43).random() != CallRandom(42).random()
