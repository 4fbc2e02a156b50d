"""The abandon rate over the regulator's rolling window, to the bucket."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.abandonment import AbandonWindow

T0 = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)  # on a minute: a 24 h window's bucket starts here
DAY = timedelta(hours=24)
MINUTE = timedelta(minutes=1)


def counted(window: AbandonWindow, now: datetime) -> float:
    return window.figures(now).live_answers


def test_the_rate_is_abandoned_over_live_answers() -> None:
    window = AbandonWindow(window=DAY)
    assert window.figures(T0).rate == 0.0  # no answers yet: no rate, no division by zero
    for n in range(10):
        window.live_answer(T0 + n * MINUTE, abandoned=n == 3)
    window.machine_answer(T0)
    figures = window.figures(T0 + 10 * MINUTE)
    assert (figures.live_answers, figures.abandoned, figures.machines) == (10, 1, 1)
    assert figures.rate == pytest.approx(0.1)  # the machine counts for nothing at share 0


def test_a_day_window_has_minute_buckets() -> None:
    assert AbandonWindow(window=DAY).bucket == MINUTE
    assert AbandonWindow(window=timedelta(days=30)).bucket == timedelta(minutes=30)


def test_events_older_than_the_window_drop_out_to_the_bucket() -> None:
    window = AbandonWindow(window=DAY)
    window.live_answer(T0 + timedelta(seconds=30), abandoned=True)
    window.live_answer(T0 + 5 * MINUTE, abandoned=False)
    assert window.figures(T0 + DAY).rate == 0.5
    assert window.figures(T0 + DAY + timedelta(seconds=59)).abandoned == 1  # same bucket
    figures = window.figures(T0 + DAY + MINUTE)  # the first bucket is out of the window
    assert (figures.live_answers, figures.abandoned, figures.rate) == (1, 0, 0.0)
    assert window.figures(T0 + DAY + 6 * MINUTE).live_answers == 0


def test_machines_drop_out_with_their_bucket() -> None:
    window = AbandonWindow(window=DAY, false_positive_share=0.5)
    window.machine_answer(T0)
    window.live_answer(T0 + 2 * MINUTE, abandoned=False)
    assert window.figures(T0 + MINUTE).machines == 1
    figures = window.figures(T0 + DAY + MINUTE)
    assert (figures.machines, figures.live_answers, figures.abandoned) == (0, 1, 0)


@given(
    offsets=st.lists(st.integers(0, 3 * 86_400), min_size=1, max_size=30),
    later=st.integers(0, 2 * 86_400),
)
def test_counts_are_exact_to_one_bucket(offsets: list[int], later: int) -> None:
    """In-order events: each counts while younger than the window, and none counts once
    older than the window and a bucket."""
    window = AbandonWindow(window=DAY)
    times = [T0 + timedelta(seconds=s) for s in sorted(offsets)]
    for at in times:
        window.live_answer(at, abandoned=True)
    now = times[-1] + timedelta(seconds=later)
    surely = sum(1 for at in times if now - at < DAY)
    maybe = sum(1 for at in times if now - at < DAY + MINUTE)
    figures = window.figures(now)
    assert surely <= figures.live_answers <= maybe
    assert figures.abandoned == figures.live_answers


def test_false_positives_count_as_abandoned_live_answers() -> None:
    window = AbandonWindow(window=DAY, false_positive_share=0.05)
    for n in range(100):
        window.live_answer(T0 + timedelta(seconds=n), abandoned=n < 2)
    for n in range(20):
        window.machine_answer(T0 + timedelta(seconds=n))
    figures = window.figures(T0 + MINUTE)
    assert figures.machines == 20
    assert figures.live_answers == pytest.approx(101)
    assert figures.abandoned == pytest.approx(3)
    assert figures.rate == pytest.approx(3 / 101)


@pytest.mark.parametrize(("share", "rate"), [(0.0, 0.0), (1.0, 1.0)])
def test_the_share_bounds_count_no_machine_or_every_machine(share: float, rate: float) -> None:
    window = AbandonWindow(window=DAY, false_positive_share=share)
    for _ in range(4):
        window.machine_answer(T0)
    figures = window.figures(T0)
    assert figures.live_answers == pytest.approx(4 * share)
    assert figures.rate == rate


@pytest.mark.parametrize("span", [timedelta(0), timedelta(seconds=-1), -DAY])
def test_a_window_must_be_positive(span: timedelta) -> None:
    with pytest.raises(ValueError, match="window"):
        AbandonWindow(window=span)


@pytest.mark.parametrize("share", [-0.01, 1.01, math.nan, math.inf])
def test_the_false_positive_share_must_be_a_share(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        AbandonWindow(window=DAY, false_positive_share=share)


def test_a_late_event_is_still_counted() -> None:
    window = AbandonWindow(window=DAY)
    window.live_answer(T0 + 10 * MINUTE, abandoned=False)
    window.live_answer(T0 + 2 * MINUTE, abandoned=True)  # reported late: before the newest
    figures = window.figures(T0 + 10 * MINUTE)
    assert (figures.live_answers, figures.abandoned) == (2, 1)
    # it went into the newest bucket, so it stays as long as that bucket does
    assert window.figures(T0 + 2 * MINUTE + DAY + MINUTE).abandoned == 1
    assert window.figures(T0 + 11 * MINUTE + DAY).live_answers == 0


def test_a_late_event_after_a_quiet_spell_is_counted() -> None:
    window = AbandonWindow(window=DAY)
    window.live_answer(T0, abandoned=False)
    assert window.figures(T0 + 3 * DAY).live_answers == 0  # every bucket expired
    window.live_answer(T0 + 3 * DAY - MINUTE, abandoned=True)  # late, but in the window
    assert window.figures(T0 + 3 * DAY).abandoned == 1
