"""The comparison baselines: a fixed dial ratio and VICIdial's ADAPT mode, step by step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.engine.baselines import RatioPacer, Variant, VicidialAdaptPacer
from dialer.engine.pacing import PaceSnapshot

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def snap(
    seconds: float = 0.0,
    *,
    ready: int = 0,
    talking: int = 0,
    dialing: int = 0,
    waiting: int = 0,
    live: int = 0,
    free: int = 100,
    logged_in: int = 10,
    dials: int = 0,
    answers: int = 0,
    abandoned: int = 0,
) -> PaceSnapshot:
    return PaceSnapshot(
        at=T0 + timedelta(seconds=seconds),
        agents_ready=ready,
        agents_busy=talking,
        agents_talking=talking,
        calls_dialing=dialing,
        calls_waiting=waiting,
        calls_live=live,
        free_lines=free,
        agents_logged_in=logged_in,
        dials=dials,
        answers=answers,
        abandoned=abandoned,
    )


def feed(pacer: VicidialAdaptPacer, start: int, stop: int, **fields: int) -> None:
    """One snapshot per second, at seconds `start` to `stop` inclusive."""
    for second in range(start, stop + 1):
        pacer.calls_to_place(snap(second, **fields))


# RatioPacer


def test_ratio_tops_up_to_level_times_working_agents() -> None:
    pacer = RatioPacer(2.5)
    # round(2.5 * (3 + 1)) = 10 wanted, 2 + 1 + 3 = 6 in flight
    assert pacer.calls_to_place(snap(ready=3, talking=1, dialing=2, waiting=1, live=3)) == 4
    # round(2.5 * 3) = round(7.5) = 8 (round half to even), none in flight
    assert pacer.calls_to_place(snap(ready=3)) == 8


def test_ratio_clamps_to_free_lines_and_zero() -> None:
    pacer = RatioPacer(3.0)
    assert pacer.calls_to_place(snap(ready=5, free=4)) == 4
    assert pacer.calls_to_place(snap(ready=5, free=0)) == 0
    assert pacer.calls_to_place(snap(ready=1, talking=1, dialing=5, live=2)) == 0


def test_ratio_names_its_level() -> None:
    assert RatioPacer(2.0).name == "ratio:2"
    assert RatioPacer(1.5).name == "ratio:1.5"


@pytest.mark.parametrize("level", [0.99, 0.0, -1.0, float("nan")])
def test_ratio_rejects_a_level_below_one(level: float) -> None:
    with pytest.raises(ValueError, match=r"at least 1\.0"):
        RatioPacer(level)


# VicidialAdaptPacer: the 15 s level adjustment


def test_adapt_level_doubles_when_every_agent_sits_ready() -> None:
    pacer = VicidialAdaptPacer(max_level=5.0)
    feed(pacer, 0, 14, ready=10, logged_in=10)
    assert pacer.level == 1.0  # no adjustment before 15 s
    pacer.calls_to_place(snap(15, ready=10, logged_in=10))
    assert pacer.level == 2.0  # m = (10 - 0) / 10
    feed(pacer, 16, 30, ready=10, logged_in=10)
    assert pacer.level == 4.0


def test_adapt_averages_the_last_fifteen_samples() -> None:
    pacer = VicidialAdaptPacer()
    feed(pacer, 0, 5, ready=10, waiting=1, logged_in=10)  # seconds 1-5 count, 0 falls out
    feed(pacer, 6, 15, ready=0, waiting=1, logged_in=10)
    # mean(R) = 50 / 15, mean(W) = 1, mean(A) = 10
    assert pacer.level == pytest.approx(1 + (50 / 15 - 1) / 10)


def test_adapt_samples_once_per_second_however_often_it_is_asked() -> None:
    pacer = VicidialAdaptPacer()
    for tenth in range(151):  # every 0.1 s to 15 s; the first 5 s have agents ready
        pacer.calls_to_place(snap(tenth / 10, ready=6 if tenth < 55 else 0, logged_in=10))
    # samples at seconds 1-5 have 6 ready (second 5 is sampled at 5.0 s)
    assert pacer.level == pytest.approx(1 + (5 * 6 / 15) / 10)


def test_adapt_catches_up_a_gap_with_the_current_values() -> None:
    pacer = VicidialAdaptPacer(max_level=10.0)
    pacer.calls_to_place(snap(0, ready=10, logged_in=10))
    pacer.calls_to_place(snap(31.5, ready=10, logged_in=10))  # adjustments at 15 s and 30 s
    assert pacer.level == 4.0


def test_adapt_level_is_capped_at_max_level() -> None:
    pacer = VicidialAdaptPacer(max_level=3.0)
    feed(pacer, 0, 30, ready=10, logged_in=10)
    assert pacer.level == 3.0


def test_adapt_level_floors_at_one_when_calls_wait() -> None:
    pacer = VicidialAdaptPacer()
    feed(pacer, 0, 15, ready=10, logged_in=10)
    assert pacer.level == 2.0
    feed(pacer, 16, 30, waiting=20, logged_in=10)  # m = -2: L would go negative
    assert pacer.level == 1.0


def test_adapt_skips_the_adjustment_with_nobody_logged_in() -> None:
    pacer = VicidialAdaptPacer()
    feed(pacer, 0, 15, ready=3, logged_in=0)
    assert pacer.level == 1.0


# VicidialAdaptPacer: placing calls every 2.5 s


def test_adapt_places_calls_only_every_two_and_a_half_seconds() -> None:
    pacer = VicidialAdaptPacer()
    fields = {"ready": 4, "talking": 2, "dialing": 1}  # round(1.0 * 6) - 1 = 5
    placed = [
        (seconds, pacer.calls_to_place(snap(seconds, **fields)))
        for seconds in (0.0, 0.5, 2.4, 2.5, 3.0, 4.9, 5.2, 7.6, 7.7)
    ]
    assert placed == [
        (0.0, 5), (0.5, 0), (2.4, 0), (2.5, 5), (3.0, 0), (4.9, 0), (5.2, 5), (7.6, 0),
        (7.7, 5),
    ]  # fmt: skip


def test_adapt_places_with_the_current_level_clamped_to_free_lines() -> None:
    pacer = VicidialAdaptPacer(max_level=5.0)
    feed(pacer, 0, 15, ready=10, logged_in=10)  # L = 2, last placement at 15 s
    assert pacer.calls_to_place(snap(17.5, ready=3, talking=2, live=2, free=50)) == 8
    assert pacer.calls_to_place(snap(20, ready=3, talking=2, live=2, free=6)) == 6
    assert pacer.calls_to_place(snap(22.5, ready=3, talking=2, live=12, free=50)) == 0


# VicidialAdaptPacer: the 60 s drop brakes


def brake_pacer(variant: Variant = "hard") -> VicidialAdaptPacer:
    """A pacer at L = 3 after 59 s, its counters starting away from zero."""
    pacer = VicidialAdaptPacer(max_level=3.0, variant=variant)
    base = {"dials": 1000, "answers": 600, "abandoned": 1}
    feed(pacer, 0, 59, ready=10, logged_in=10, **base)
    assert pacer.level == 3.0
    return pacer


def test_adapt_halves_the_level_when_most_of_the_last_minute_was_dropped() -> None:
    pacer = brake_pacer()
    pacer.calls_to_place(snap(60, ready=10, dials=1030, answers=620, abandoned=17))
    assert pacer.level == 1.5  # 30 dials, 16 dropped (the since-start brake needs > 50)
    feed(pacer, 61, 119, ready=10, dials=1030, answers=620, abandoned=17)
    assert pacer.level == 3.0  # the 75 s adjustment; no dials in the second minute
    feed(pacer, 120, 120, ready=10, dials=1030, answers=620, abandoned=17)
    assert pacer.level == 3.0


@pytest.mark.parametrize(
    ("dials", "drops"),
    [(1030, 15), (1020, 20)],  # exactly half dropped; 20 dials is not "more than 20"
)
def test_adapt_minute_brake_needs_over_half_of_over_twenty_dials(dials: int, drops: int) -> None:
    pacer = brake_pacer()
    pacer.calls_to_place(snap(60, ready=10, dials=dials, answers=620, abandoned=1 + drops))
    assert pacer.level == 3.0


@pytest.mark.parametrize(("variant", "level"), [("hard", 1.0), ("average", 1.5)])
def test_adapt_since_start_brake_over_three_percent(variant: Variant, level: float) -> None:
    pacer = brake_pacer(variant)
    # 60 dials and 30 live answers since the start, one of them dropped: 3.3 %
    pacer.calls_to_place(snap(60, ready=10, dials=1060, answers=630, abandoned=2))
    assert pacer.level == level


def test_the_hard_limit_pins_the_level_while_the_day_is_over_three_percent() -> None:
    pacer = brake_pacer("hard")
    over = {"dials": 1060, "answers": 630, "abandoned": 2}  # 3.3 % since the start
    pacer.calls_to_place(snap(60, ready=10, **over))
    feed(pacer, 61, 119, ready=10, logged_in=10, **over)  # agents sit ready: L would rise
    assert pacer.level == 1.0
    under = {"dials": 1400, "answers": 1000, "abandoned": 2}  # 0.25 % since the start
    feed(pacer, 120, 135, ready=10, logged_in=10, **under)
    assert pacer.level > 1.0  # back under the limit: the adjustment works again


def test_adapt_since_start_brake_spares_exactly_three_percent() -> None:
    pacer = brake_pacer()
    pacer.calls_to_place(snap(60, ready=10, dials=1060, answers=700, abandoned=4))
    assert pacer.level == 3.0


def test_adapt_since_start_brake_needs_over_fifty_dials() -> None:
    pacer = brake_pacer()
    pacer.calls_to_place(snap(60, ready=10, dials=1050, answers=630, abandoned=11))
    assert pacer.level == 3.0


def test_adapt_names_and_arguments() -> None:
    assert VicidialAdaptPacer().name == "vicidial-adapt"
    assert VicidialAdaptPacer(variant="average").name == "vicidial-adapt:average"
    with pytest.raises(ValueError, match="max_level"):
        VicidialAdaptPacer(max_level=0.5)
    with pytest.raises(ValueError, match="variant"):
        VicidialAdaptPacer(variant="soft")  # type: ignore[arg-type]


# Both: the pacing contract


snapshots = st.builds(
    snap,
    st.floats(min_value=0, max_value=600),
    ready=st.integers(0, 50),
    talking=st.integers(0, 50),
    dialing=st.integers(0, 50),
    waiting=st.integers(0, 50),
    live=st.integers(0, 50),
    free=st.integers(0, 100),
    logged_in=st.integers(0, 100),
)


@given(st.lists(snapshots, min_size=1, max_size=30), st.floats(1.0, 5.0))
def test_baselines_never_exceed_free_lines(batch: list[PaceSnapshot], level: float) -> None:
    adapt = VicidialAdaptPacer(max_level=level)
    for snapshot in sorted(batch, key=lambda s: s.at):
        for pacer in (RatioPacer(level), adapt):
            assert 0 <= pacer.calls_to_place(snapshot) <= snapshot.free_lines
        assert 1.0 <= adapt.level <= level
