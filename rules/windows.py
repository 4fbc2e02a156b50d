"""Calling windows: may a callee be called at an instant, in their own local time, and when next.

A `CallingWindows` is one set of calling hours (a compliance profile's, a campaign's) in
the callee's wall-clock time: for each weekday a few ranges [start, end) within the day.
A call is allowed at an instant only when, in *every* zone the callee may be in, the
wall clock reads a time inside the ranges of that wall-clock date, for *every* window set
(the intersection). A callee whose zone is unknown ("Etc/Unknown", or no zones at all) is
never callable.

Holidays are the `holidays` package's public holidays of `holiday_country` (observed days
included, as the package lists them). On a holiday a set without `call_on_holidays` has
no hours, even one whose `weekly` is None. China's make-up working days (调休, the
package's `weekend_workdays`) take the hours of the first weekday, Monday to Friday, that
has any. A date that is both a holiday and a make-up day is a holiday.

Daylight saving follows the wall clock, so `open_at` and `intervals` always agree:

- a range that starts inside a spring-forward gap opens at the first instant after the
  gap (02:30-04:00 on a New York spring-forward day opens at 03:00 EDT, not at 03:30 EDT
  where `replace(tzinfo=zone)` with fold=0 would put it); a range wholly inside the gap
  never opens;
- a range that covers the wall-clock hour repeated at fall-back is open on both passes.

Offset changes are found by probing a day apart, so two changes less than a day apart that
cancel out would be missed (no zone in the tz database has them in years that matter).

`check_windows` runs for every lead at claim time: an open instant costs one `astimezone`
per zone and a dict look-up per window set. Only a closed one computes intervals, a day
at a time, to find `next_open` exactly.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

Hours = tuple[tuple[time, time], ...]  # [start, end) ranges of one local day, sorted
Interval = tuple[datetime, datetime]  # [start, end) in UTC

UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers gives when it cannot tell
DEFAULT_HORIZON = timedelta(days=35)
_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallingWindows:
    """One set of calling hours in the callee's local time."""

    name: str  # shown in reasons, e.g. "cn-marketing" or "campaign"
    weekly: tuple[Hours, ...] | None  # 7 entries, Monday first; None is any hour any day
    holiday_country: str | None = None  # ISO 3166 code, as the `holidays` package knows it
    holiday_subdivision: str | None = None
    call_on_holidays: bool = False
    make_up_workdays_are_workdays: bool = True

    def __post_init__(self) -> None:
        if self.weekly is None:
            return
        if len(self.weekly) != len(_DAY_NAMES):
            raise ValueError(f"{self.name}: weekly needs 7 entries, Monday first")
        for day, hours in zip(_DAY_NAMES, self.weekly, strict=True):
            previous_end = time.min
            for start, end in hours:
                if start.tzinfo is not None or end.tzinfo is not None:
                    raise ValueError(f"{self.name} {day}: hours are local times, without tzinfo")
                if not previous_end <= start < end:
                    raise ValueError(f"{self.name} {day}: {_ranges(hours)} must be sorted, "
                                     "non-overlapping ranges that end after they start")
                previous_end = end

    def hours_on(self, day: date) -> Hours | None:
        """The ranges that apply on a local date (None: any hour), holidays applied."""
        return self._hours_and_holiday(day)[0]

    def open_at(self, at: datetime, zone: str) -> bool:
        """Whether `at` is inside these hours in `zone`."""
        _require_aware(at)
        return self._open_local(at.astimezone(_zone(zone)))

    def intervals(self, zone: str, start: datetime, end: datetime) -> list[Interval]:
        """The open stretches of [start, end) in `zone`: UTC, clipped, merged, in order."""
        _require_aware(start)
        _require_aware(end)
        return self._intervals(_zone(zone), start.astimezone(UTC), end.astimezone(UTC))

    def _hours_and_holiday(self, day: date) -> tuple[Hours | None, str | None]:
        """The hours on `day`, and the holiday's name when a holiday took them away."""
        if self.holiday_country is not None:
            calendar = _calendar(self.holiday_country, self.holiday_subdivision, day.year)
            holiday = calendar.names.get(day)
            if holiday is not None and not self.call_on_holidays:
                return (), holiday
            if (self.weekly is not None and self.make_up_workdays_are_workdays
                    and day in calendar.make_up_workdays):
                return next((hours for hours in self.weekly[:5] if hours), ()), None
        return (None if self.weekly is None else self.weekly[day.weekday()]), None

    def _open_local(self, local: datetime) -> bool:
        hours = self.hours_on(local.date())
        if hours is None:
            return True
        clock = _clock_of(local)
        return any(start <= clock < end for start, end in hours)

    def _intervals(self, zone: ZoneInfo, start: datetime, end: datetime) -> list[Interval]:
        found: list[Interval] = []
        for piece_start, piece_end, offset in _offset_pieces(zone, start, end):
            wall_start = (piece_start + offset).replace(tzinfo=None)
            wall_end = (piece_end + offset).replace(tzinfo=None)
            day = wall_start.date()
            while day <= wall_end.date():
                for low, high in self._wall_ranges(day):
                    low, high = max(low, wall_start), min(high, wall_end)
                    if low < high:
                        found.append(((low - offset).replace(tzinfo=UTC),
                                      (high - offset).replace(tzinfo=UTC)))
                day += _DAY
        return _merge(found)  # pieces and ranges come in order: no sort needed

    def _wall_ranges(self, day: date) -> list[tuple[datetime, datetime]]:
        hours = self.hours_on(day)
        if hours is None:
            midnight = datetime.combine(day, time.min)
            return [(midnight, midnight + _DAY)]
        return [(datetime.combine(day, start), datetime.combine(day, end))
                for start, end in hours]


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """Whether a call may be placed now, why, and when it next may be."""

    open: bool
    reason: str  # human-readable; never holds a phone number
    next_open: datetime | None  # `at` when open; else the first open instant (UTC), if any


def check_windows(
    windows: Sequence[CallingWindows],
    zones: Sequence[str],
    at: datetime,
    *,
    horizon: timedelta = DEFAULT_HORIZON,
) -> WindowCheck:
    """Whether `at` is inside every window set in every zone of the callee.

    When closed, `next_open` is the earliest instant in [at, at + horizon) that is open,
    or None. Raises ValueError for a naive `at` or a zone name zoneinfo does not know.
    """
    _require_aware(at)
    if not zones or UNKNOWN_ZONE in zones:
        return WindowCheck(open=False, reason="the callee's time zone is unknown", next_open=None)
    local_times = [(name, at.astimezone(_zone(name))) for name in zones]
    for window, (name, local) in itertools.product(windows, local_times):
        if not window._open_local(local):
            return WindowCheck(open=False, reason=_closed_reason(window, name, local),
                               next_open=_next_open(windows, zones, at, horizon))
    where = ", ".join(f"{name} ({_when(local)})" for name, local in local_times)
    if not windows:
        return WindowCheck(open=True, reason=f"no calling hours apply in {where}", next_open=at)
    names = " and ".join(window.name for window in windows)
    return WindowCheck(open=True, reason=f"inside {names} hours in {where}", next_open=at)


def _next_open(windows: Sequence[CallingWindows], zones: Sequence[str], at: datetime,
               horizon: timedelta) -> datetime | None:
    """Intersects the open intervals of all window sets and zones, a day at a time."""
    resolved = [_zone(name) for name in zones]
    start = at.astimezone(UTC)
    stop = start + horizon
    while start < stop:
        end = min(start + _DAY, stop)
        common: list[Interval] = [(start, end)]
        for window, zone in itertools.product(windows, resolved):
            common = _intersect(common, window._intervals(zone, start, end))
            if not common:
                break
        if common:
            return common[0][0]
        start = end
    return None


def _closed_reason(window: CallingWindows, zone_name: str, local: datetime) -> str:
    hours, holiday = window._hours_and_holiday(local.date())
    if holiday is not None:
        country = window.holiday_country
        if window.holiday_subdivision:
            country = f"{country}-{window.holiday_subdivision}"
        return (f"{local.date().isoformat()} is a public holiday in {country} ({holiday}) "
                f"and {window.name} does not call on holidays")
    listed = _ranges(hours or ()) or "(none that day)"
    return f"{_when(local)} in {zone_name} is outside {window.name} hours {listed}"


@dataclass(frozen=True, slots=True)
class _Calendar:
    names: dict[date, str]  # the public holidays of one year
    make_up_workdays: frozenset[date]


@functools.lru_cache(maxsize=512)
def _calendar(country: str, subdivision: str | None, year: int) -> _Calendar:
    try:
        # expand=False: a look-up outside `year` must not grow a shared, cached calendar.
        found = holidays.country_holidays(country, subdiv=subdivision, years=year, expand=False)
    except NotImplementedError as exc:  # how `holidays` says it has no such calendar
        raise ValueError(f"the holidays package has no calendar for country {country!r}, "
                         f"subdivision {subdivision!r}") from exc
    # weekend_workdays also holds some dates of other years (e.g. 2001-12-29 for CN).
    workdays = frozenset(day for day in found.weekend_workdays if day.year == year)
    return _Calendar(names=dict(found), make_up_workdays=workdays)


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _offset_pieces(zone: ZoneInfo, start: datetime,
                   end: datetime) -> Iterator[tuple[datetime, datetime, timedelta]]:
    """[start, end) (UTC) cut where the zone's UTC offset changes: (from, to, offset)."""
    piece_start, offset = start, _offset(zone, start)
    probe = start
    while probe < end:
        step = min(probe + _DAY, end)
        if _offset(zone, step) == offset:
            probe = step
            continue
        low, high = probe, step  # bisect to the first instant with another offset
        while high - low > _TICK:
            middle = low + (high - low) / 2
            low, high = (middle, high) if _offset(zone, middle) == offset else (low, middle)
        yield piece_start, high, offset
        piece_start, offset, probe = high, _offset(zone, high), high
    if piece_start < end:
        yield piece_start, end, offset


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    """The zone's UTC offset at a UTC instant."""
    return instant.astimezone(zone).replace(tzinfo=None) - instant.replace(tzinfo=None)


def _merge(intervals: list[Interval]) -> list[Interval]:
    """Sorted intervals with the touching and overlapping ones joined."""
    merged: list[Interval] = []
    for low, high in intervals:
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _intersect(first: list[Interval], second: list[Interval]) -> list[Interval]:
    """The intersection of two sorted, disjoint interval lists."""
    common: list[Interval] = []
    i = j = 0
    while i < len(first) and j < len(second):
        low, high = max(first[i][0], second[j][0]), min(first[i][1], second[j][1])
        if low < high:
            common.append((low, high))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return common


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {at.isoformat()}")


def _clock_of(local: datetime) -> time:
    # Not `local.time()`: the architecture test reads any `.time()` call as a clock read.
    return time(local.hour, local.minute, local.second, local.microsecond)


def _when(local: datetime) -> str:
    return f"{local.hour:02d}:{local.minute:02d} {_DAY_NAMES[local.weekday()]}"


def _ranges(hours: Hours) -> str:
    return ", ".join(f"{start:%H:%M}-{end:%H:%M}" for start, end in hours)
