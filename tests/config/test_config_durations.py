"""Durations, times of day and time ranges."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from dialer.config import TimeRange, format_duration, parse_duration
from dialer.config.fields import parse_time_of_day, parse_time_range


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1.5s", timedelta(seconds=1.5)),
        ("90", timedelta(seconds=90)),
        (90, timedelta(seconds=90)),
        (2.5, timedelta(seconds=2.5)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "5q", "h", "-5s", -1, "1m1h", True, None, "nan", [5]])
def test_bad_durations_say_what_is_expected(bad: object) -> None:
    with pytest.raises(PydanticCustomError, match="expected a duration such as '90s'"):
        parse_duration(bad)


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100_000)))
def test_durations_round_trip(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@given(
    st.integers(0, 999),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
def test_written_durations_format_canonically(
    days: int, hours: int, minutes: int, seconds: int
) -> None:
    text = "".join(
        f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n
    )
    parsed = parse_duration(text or "0s")
    assert format_duration(parsed) == (text or "0s")


def test_times_of_day() -> None:
    assert parse_time_of_day("09:00") == time(9)
    assert parse_time_of_day("9:05") == time(9, 5)
    for bad in ("24:00", "9", "09:60", 900):
        with pytest.raises(PydanticCustomError, match="expected a time of day 'HH:MM'"):
            parse_time_of_day(bad)


def test_time_ranges() -> None:
    span = parse_time_range("09:00-12:00")
    assert span == TimeRange(start=time(9), end=time(12))
    assert str(span) == "09:00-12:00"
    assert time(11, 59) in span
    assert time(12) not in span
    with pytest.raises(PydanticCustomError, match="must end after it starts, got '12:00-09:00'"):
        parse_time_range("12:00-09:00")
    with pytest.raises(PydanticCustomError, match="'HH:MM-HH:MM'"):
        parse_time_range("09:00")
