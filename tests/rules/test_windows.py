"""Calling windows: concrete cases (China, US multi-zone, DST) and their invariants."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.windows import CallingWindows, Hours, WindowCheck, check_windows

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
US_ZONES = ("America/New_York", "America/Chicago")

OFFICE: Hours = ((time(9), time(12)), (time(14), time(18)))
CN_MARKETING = CallingWindows(name="cn-marketing", weekly=(OFFICE,) * 5 + ((), ()),
                              holiday_country="CN")
US_DAY = CallingWindows(name="profile", weekly=(((time(8), time(21)),),) * 7)
CAMPAIGN = CallingWindows(name="campaign", weekly=(((time(10), time(12)),),) * 7)


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def new_york(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


# China: office hours, public holidays and make-up working days


def test_national_day_is_closed_with_a_holiday_reason() -> None:
    check = check_windows([CN_MARKETING], ["Asia/Shanghai"], shanghai(2026, 10, 1, 10))
    assert not check.open
    assert check.reason == ("2026-10-01 is a public holiday in CN (National Day) and "
                            "cn-marketing does not call on holidays")
    assert check.next_open == shanghai(2026, 10, 8, 9)  # 1-7 October off, the 4th a Sunday


def test_a_make_up_saturday_takes_weekday_hours() -> None:
    assert date(2026, 2, 14) in holidays.country_holidays("CN", years=2026).weekend_workdays
    assert date(2026, 2, 14).weekday() == 5
    check = check_windows([CN_MARKETING], ["Asia/Shanghai"], shanghai(2026, 2, 14, 10))
    assert check.open
    assert check.reason == "inside cn-marketing hours in Asia/Shanghai (10:00 Sat)"
    assert CN_MARKETING.hours_on(date(2026, 2, 14)) == OFFICE


def test_make_up_days_can_be_ignored() -> None:
    windows = CallingWindows(name="strict", weekly=CN_MARKETING.weekly, holiday_country="CN",
                             make_up_workdays_are_workdays=False)
    assert windows.hours_on(date(2026, 2, 14)) == ()
    assert not windows.open_at(shanghai(2026, 2, 14, 10), "Asia/Shanghai")


def test_calling_on_holidays_keeps_the_weekday_hours() -> None:
    windows = CallingWindows(name="service", weekly=CN_MARKETING.weekly, holiday_country="CN",
                             call_on_holidays=True)
    assert CN_MARKETING.hours_on(date(2026, 10, 1)) == ()
    assert windows.hours_on(date(2026, 10, 1)) == OFFICE


def test_holidays_close_even_unlimited_hours() -> None:
    windows = CallingWindows(name="any-hour", weekly=None, holiday_country="CN")
    assert windows.hours_on(date(2026, 10, 1)) == ()
    assert windows.hours_on(date(2026, 10, 8)) is None


def test_an_ordinary_saturday_is_closed_until_monday_morning() -> None:
    assert date(2026, 3, 7) not in holidays.country_holidays("CN", years=2026).weekend_workdays
    check = check_windows([CN_MARKETING], ["Asia/Shanghai"], shanghai(2026, 3, 7, 10))
    assert not check.open
    assert check.reason == ("10:00 Sat in Asia/Shanghai is outside cn-marketing hours "
                            "(none that day)")
    assert check.next_open == shanghai(2026, 3, 9, 9)
    assert check.next_open is not None
    assert check.next_open.tzinfo is UTC


def test_lunch_break_reopens_at_two() -> None:
    check = check_windows([CN_MARKETING], ["Asia/Shanghai"], shanghai(2026, 3, 10, 12, 30))
    assert not check.open
    assert check.reason == ("12:30 Tue in Asia/Shanghai is outside cn-marketing hours "
                            "09:00-12:00, 14:00-18:00")
    assert check.next_open == shanghai(2026, 3, 10, 14)


def test_intervals_of_a_week_in_utc() -> None:
    start, end = shanghai(2026, 3, 6, 10), shanghai(2026, 3, 9, 10)
    got = CN_MARKETING.intervals("Asia/Shanghai", start, end)
    assert got == [
        (shanghai(2026, 3, 6, 10), shanghai(2026, 3, 6, 12)),
        (shanghai(2026, 3, 6, 14), shanghai(2026, 3, 6, 18)),
        (shanghai(2026, 3, 9, 9), shanghai(2026, 3, 9, 10)),
    ]
    assert all(edge.tzinfo is UTC for interval in got for edge in interval)


# The US: one number, several zones; several window sets


def test_open_while_every_zone_is_inside() -> None:
    check = check_windows([US_DAY], US_ZONES, new_york(2026, 6, 9, 20, 30))
    assert check.open
    assert check.reason == ("inside profile hours in America/New_York (20:30 Tue), "
                            "America/Chicago (19:30 Tue)")
    assert check.next_open == new_york(2026, 6, 9, 20, 30)


def test_late_in_new_york_waits_for_the_next_morning() -> None:
    check = check_windows([US_DAY], US_ZONES, new_york(2026, 6, 9, 21, 10))
    assert not check.open
    assert check.reason == "21:10 Tue in America/New_York is outside profile hours 08:00-21:00"
    assert check.next_open == new_york(2026, 6, 10, 9)
    assert check.next_open == datetime(2026, 6, 10, 8, tzinfo=CHICAGO)


def test_early_in_chicago_waits_for_chicago() -> None:
    check = check_windows([US_DAY], US_ZONES, new_york(2026, 6, 9, 8, 30))
    assert not check.open
    assert check.reason == "07:30 Tue in America/Chicago is outside profile hours 08:00-21:00"
    assert check.next_open == new_york(2026, 6, 9, 9)


@pytest.mark.parametrize(
    ("hour", "is_open", "next_open"),
    [
        (9, False, new_york(2026, 6, 9, 10)),
        (11, True, new_york(2026, 6, 9, 11)),
        (12, False, new_york(2026, 6, 10, 10)),
    ],
)
def test_two_window_sets_intersect(hour: int, is_open: bool, next_open: datetime) -> None:
    check = check_windows([US_DAY, CAMPAIGN], ["America/New_York"], new_york(2026, 6, 9, hour))
    assert check.open is is_open
    assert check.next_open == next_open
    if is_open:
        assert check.reason.startswith("inside profile and campaign hours")
    else:
        assert "campaign" in check.reason


def test_no_window_sets_is_always_open() -> None:
    check = check_windows([], ["America/New_York"], new_york(2026, 6, 9, 3))
    assert check.open
    assert check.reason == "no calling hours apply in America/New_York (03:00 Tue)"


# Daylight saving in New York: 2026-03-08 02:00 EST -> 03:00 EDT, 2026-11-01 02:00 EDT -> 01:00 EST


def test_spring_forward_day_opens_at_eight_daylight_time() -> None:
    check = check_windows([US_DAY], ["America/New_York"], new_york(2026, 3, 8, 1, 30))
    assert not check.open
    assert check.next_open == datetime(2026, 3, 8, 12, tzinfo=UTC)  # 08:00 EDT
    assert US_DAY.intervals("America/New_York", new_york(2026, 3, 8), new_york(2026, 3, 9)) == [
        (datetime(2026, 3, 8, 12, tzinfo=UTC), datetime(2026, 3, 9, 1, tzinfo=UTC)),
    ]


def test_a_range_starting_in_the_gap_opens_when_the_gap_ends() -> None:
    windows = CallingWindows(name="night", weekly=(((time(2, 30), time(4)),),) * 7)
    check = check_windows([windows], ["America/New_York"], datetime(2026, 3, 8, 6, 59, tzinfo=UTC))
    assert not check.open
    assert check.next_open == datetime(2026, 3, 8, 7, tzinfo=UTC)  # 03:00 EDT, the gap's end
    gap_only = CallingWindows(name="gap", weekly=(((time(2, 15), time(2, 45)),),) * 7)
    assert gap_only.intervals("America/New_York", new_york(2026, 3, 8), new_york(2026, 3, 9)) == []


def test_the_repeated_hour_at_fall_back_is_open_twice() -> None:
    windows = CallingWindows(name="night", weekly=(((time(1, 15), time(1, 45)),),) * 7)
    first = datetime(2026, 11, 1, 5, 15, tzinfo=UTC)  # 01:15 EDT
    second = datetime(2026, 11, 1, 6, 15, tzinfo=UTC)  # 01:15 EST
    assert windows.intervals("America/New_York", new_york(2026, 11, 1), new_york(2026, 11, 2)) == [
        (first, first + timedelta(minutes=30)),
        (second, second + timedelta(minutes=30)),
    ]
    check = check_windows([windows], ["America/New_York"], first + timedelta(minutes=35))
    assert not check.open
    assert check.next_open == second


# Unknown zones and bad input


@pytest.mark.parametrize("zones", [(), ("Etc/Unknown",), ("America/New_York", "Etc/Unknown")])
def test_an_unknown_zone_is_never_callable(zones: tuple[str, ...]) -> None:
    check = check_windows([US_DAY], zones, new_york(2026, 6, 9, 12))
    assert check == WindowCheck(open=False, reason="the callee's time zone is unknown",
                                next_open=None)


def test_a_naive_datetime_is_refused() -> None:
    naive = datetime(2026, 6, 9, 12)
    with pytest.raises(ValueError, match="timezone-aware"):
        check_windows([US_DAY], US_ZONES, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        US_DAY.open_at(naive, "America/New_York")
    with pytest.raises(ValueError, match="timezone-aware"):
        US_DAY.intervals("America/New_York", naive, new_york(2026, 6, 10))


def test_an_unknown_zone_name_is_named() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus_Mons"):
        check_windows([US_DAY], ["America/New_York", "Mars/Olympus_Mons"], new_york(2026, 6, 9))


def test_an_unknown_holiday_country_is_named() -> None:
    windows = CallingWindows(name="x", weekly=None, holiday_country="XX")
    with pytest.raises(ValueError, match="'XX'"):
        windows.hours_on(date(2026, 6, 9))


@pytest.mark.parametrize(
    "weekly",
    [
        (OFFICE,) * 6,
        (((time(12), time(9)),),) * 7,
        (((time(9), time(12)), (time(11), time(13))),) * 7,
    ],
)
def test_malformed_hours_are_refused(weekly: tuple[Hours, ...]) -> None:
    with pytest.raises(ValueError, match="bad"):
        CallingWindows(name="bad", weekly=weekly)


# Invariants

ZONES = ("America/New_York", "America/Chicago", "Europe/London", "Asia/Shanghai",
         "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham")
# Offset changes, so that DST days come up often: New York, London, Lord Howe (30 minutes).
CHANGES = (datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC),
           datetime(2025, 3, 30, 1, tzinfo=UTC), datetime(2025, 10, 26, 1, tzinfo=UTC),
           datetime(2025, 4, 5, 15, tzinfo=UTC), datetime(2025, 10, 4, 15, 30, tzinfo=UTC))


def _hours(minutes: list[int]) -> Hours:
    edges = [time(m // 60, m % 60) for m in sorted(minutes)]
    return tuple(zip(edges[::2], edges[1::2], strict=False))


hours_of_a_day = st.lists(st.integers(0, 24 * 60 - 1), unique=True, max_size=6).map(_hours)
window_sets = st.builds(
    CallingWindows,
    name=st.sampled_from(["profile", "campaign"]),
    weekly=st.none() | st.tuples(*[hours_of_a_day] * 7),
    holiday_country=st.sampled_from([None, "CN", "US"]),
    call_on_holidays=st.booleans(),
    make_up_workdays_are_workdays=st.booleans(),
)
instants = st.one_of(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31),
                 timezones=st.just(UTC)),
    st.builds(lambda change, shift: change + shift, st.sampled_from(CHANGES),
              st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2))),
)
fractions = st.lists(st.floats(0, 1, exclude_min=True, exclude_max=True), max_size=3)


@given(windows=st.lists(window_sets, max_size=2),
       zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
       instant=instants, at_zone=st.sampled_from(ZONES), fractions=fractions)
def test_next_open_is_the_first_instant_open_everywhere(
    windows: list[CallingWindows], zones: list[str], instant: datetime, at_zone: str,
    fractions: list[float],
) -> None:
    at = instant.astimezone(ZoneInfo(at_zone))
    check = check_windows(windows, zones, at)
    everywhere = all(window.open_at(at, zone) for window in windows for zone in zones)
    assert check.open is everywhere
    if check.open:
        assert check.next_open == at
        return
    horizon_end = at + timedelta(days=35)
    until = horizon_end if check.next_open is None else check.next_open
    assert until > at
    if check.next_open is not None:
        assert check.next_open < horizon_end
        assert check_windows(windows, zones, check.next_open).open
        assert not check_windows(windows, zones, check.next_open - timedelta(microseconds=1)).open
    for fraction in fractions:
        probe = at + (until - at) * fraction
        if at < probe < until:
            assert not check_windows(windows, zones, probe).open


@given(windows=window_sets, zone=st.sampled_from(ZONES), start=instants,
       span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
       fractions=fractions)
def test_intervals_agree_with_open_at(
    windows: CallingWindows, zone: str, start: datetime, span: timedelta, fractions: list[float],
) -> None:
    end = start + span
    got = windows.intervals(zone, start, end)
    for low, high in got:
        assert start <= low < high <= end
        assert low.tzinfo is UTC
    for (_, high), (low, _) in itertools.pairwise(got):
        assert high < low  # merged: disjoint and not touching
    for fraction in [0.0, *fractions]:
        probe = start + span * fraction
        if probe < end:
            inside = any(low <= probe < high for low, high in got)
            assert windows.open_at(probe, zone) is inside
