"""Caller-ID health: a number's lifecycle, and the rules that rest, return and retire it.

The lifecycle is one table, `TRANSITIONS`; `CallerIdPool` (in `lines.callerid`) applies it
at its daily review:

    RESERVE --PROMOTED--> WARMING --WARMED--> ACTIVE
    WARMING, ACTIVE --HEALTH_DROPPED | MARKED--> RESTING
    RESTING --RESTED--> RESERVE               (after `rest`, unless still marked)
    ACTIVE, RESTING --AGED_OUT--> RETIRED     (older than `life`, with a poor record)

The rules are pure functions over per-day tallies (`Tally`, keyed by calendar day):

- A number's *calling days* are the days before the review day, since it last came into
  service, on which it made at least `min_daily_sample` calls. Days it barely made calls
  (or none: weekends) neither count for nor against it.
- Behind the pool: over its last `window_days` calling days, its answer rate is at least
  `drop_points` below the rest of its sub-pool's on the same days, and the gap is
  significant (a one-sided two-proportion z-test, `z >= significance_z`). Without the test,
  a healthy number making 20 calls a day falls 5 points behind on 60 calls about one day in
  five by chance alone; `significance_z=0` gives the plain rule.
- Under the floor: its answer rate was under `floor_rate` on each of its last `floor_days`
  calling days.
- Marked: the marks reported for it exceed `max_marks`.
- A poor record (what retires a number past its `life`): rested `retire_after_rests` times
  or more, still marked while resting, or behind the rest of its sub-pool over its whole
  life (at least `min_record_sample` calls, same test as above).

`parse_marks_csv` reads a spam-mark export (one number and one count a row).

Errors::

    CallerIdError
    ├── IllegalTransition   a trigger that does not apply to the number's state
    ├── UnknownCallerId     a number the pool does not hold (also a KeyError)
    └── MarksFileError      a spam-mark CSV with bad rows (also a ValueError)

Messages and reasons never hold a phone number (an unknown caller ID is shown masked).
"""

from __future__ import annotations

import csv
import enum
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import Final

from rules.phone import CleanFailure, NumberParser, PhoneInfo, clean_number, mask

_EPSILON: Final = 1e-9  # rates are ratios of small integers: 0.45 - 0.50 is not quite -0.05


class CallerIdState(enum.StrEnum):
    """Where a number is in its life."""

    RESERVE = "reserve"  # unused, waiting to replace a number that rests
    WARMING = "warming"  # in service under the warm-up cap
    ACTIVE = "active"  # in service under its daily cap
    RESTING = "resting"  # out of service for a while after poor health or spam marks
    RETIRED = "retired"  # out of service for good


class CallerIdTrigger(enum.StrEnum):
    """What moves a number from one state to another."""

    PROMOTED = "promoted"  # taken from the reserve into service
    WARMED = "warmed"  # finished its warm-up
    HEALTH_DROPPED = "health_dropped"  # answer rate behind the pool or under the floor
    MARKED = "marked"  # too many spam marks
    RESTED = "rested"  # rested long enough; back to the reserve
    AGED_OUT = "aged_out"  # past its life with a poor record


_S, _T = CallerIdState, CallerIdTrigger
TRANSITIONS: Final[Mapping[tuple[CallerIdState, CallerIdTrigger], CallerIdState]] = (
    MappingProxyType(
        {
            (_S.RESERVE, _T.PROMOTED): _S.WARMING,
            (_S.WARMING, _T.WARMED): _S.ACTIVE,
            (_S.WARMING, _T.HEALTH_DROPPED): _S.RESTING,
            (_S.WARMING, _T.MARKED): _S.RESTING,
            (_S.ACTIVE, _T.HEALTH_DROPPED): _S.RESTING,
            (_S.ACTIVE, _T.MARKED): _S.RESTING,
            (_S.RESTING, _T.RESTED): _S.RESERVE,
            (_S.ACTIVE, _T.AGED_OUT): _S.RETIRED,
            (_S.RESTING, _T.AGED_OUT): _S.RETIRED,
        }
    )
)
IN_SERVICE: Final = frozenset({CallerIdState.WARMING, CallerIdState.ACTIVE})


class CallerIdError(Exception):
    """Base of the caller-ID pool's errors."""


class IllegalTransition(CallerIdError):
    """A trigger that does not apply to a number in its state."""

    def __init__(self, state: CallerIdState, trigger: CallerIdTrigger) -> None:
        self.state, self.trigger = state, trigger
        super().__init__(f"a {state} caller ID cannot be {trigger}")


class UnknownCallerId(CallerIdError, KeyError):
    """A number the pool does not hold."""

    def __init__(self, number: str) -> None:
        super().__init__(f"no caller ID {mask(number)} in this pool")

    def __str__(self) -> str:
        return str(self.args[0])


def next_state(state: CallerIdState, trigger: CallerIdTrigger) -> CallerIdState:
    """The state `trigger` moves a number in `state` to (`IllegalTransition` if none)."""
    try:
        return TRANSITIONS[state, trigger]
    except KeyError:
        raise IllegalTransition(state, trigger) from None


@dataclass(frozen=True, slots=True)
class Tally:
    """Calls made and answered (on one day, or summed over days)."""

    attempts: int = 0
    answered: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.attempts + other.attempts, self.answered + other.answered)

    def __sub__(self, other: Tally) -> Tally:
        return Tally(self.attempts - other.attempts, self.answered - other.answered)

    @property
    def rate(self) -> float | None:
        """The answer rate, or None before any call."""
        return self.answered / self.attempts if self.attempts else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdSettings:
    """How a caller-ID pool is run.

    The issue's numbers, plus our own: the significance gate and the minimum samples.
    """

    reserve_share: float = 0.25  # of each sub-pool kept unused until a number rests
    warmup_days: int = 14  # a new (or returning) number's ramp, in days
    warmup_first_cap: int = 5  # calls on its first day of warm-up
    warmup_last_cap: int = 10  # calls on its last day of warm-up (never above its daily cap)
    window_days: int = 3  # calling days compared with the pool
    min_daily_sample: int = 5  # calls that make a day a calling day
    drop_points: float = 0.05  # behind the pool by this much rests a number
    significance_z: float = 1.645  # ... when the gap is this significant (0: always)
    floor_rate: float = 0.40  # under this ...
    floor_days: int = 3  # ... on this many calling days in a row rests a number
    max_marks: int = 5  # more spam marks than this rest a number
    rest: timedelta = timedelta(days=7)  # how long a number rests
    life: timedelta = timedelta(days=90)  # from its addition; older with a poor record: retired
    retire_after_rests: int = 2  # rests that make a poor record
    min_record_sample: int = 100  # calls before a lifetime answer rate counts

    def __post_init__(self) -> None:
        problems = [
            message
            for bad, message in (
                (not 0 <= self.reserve_share < 1, "reserve_share must be in [0, 1)"),
                (self.warmup_days < 1, "warmup_days must be at least 1"),
                (self.warmup_first_cap < 1, "warmup_first_cap must be at least 1"),
                (
                    self.warmup_last_cap < self.warmup_first_cap,
                    "warmup_last_cap must be at least warmup_first_cap",
                ),
                (self.window_days < 1 or self.floor_days < 1, "window_days, floor_days >= 1"),
                (self.min_daily_sample < 1, "min_daily_sample must be at least 1"),
                (not 0 < self.drop_points < 1, "drop_points must be in (0, 1)"),
                (self.significance_z < 0, "significance_z must not be negative"),
                (not 0 < self.floor_rate < 1, "floor_rate must be in (0, 1)"),
                (self.max_marks < 0, "max_marks must not be negative"),
                (self.rest <= timedelta(0) or self.life <= timedelta(0), "rest, life > 0"),
                (self.retire_after_rests < 1, "retire_after_rests must be at least 1"),
                (self.min_record_sample < 1, "min_record_sample must be at least 1"),
            )
            if bad
        ]
        if problems:
            raise ValueError("caller-ID settings: " + "; ".join(problems))

    def warmup_cap(self, day_of_warmup: int, daily_cap: int) -> int:
        """Calls allowed on day `day_of_warmup` (1 = its first) of a number's warm-up.

        Rises linearly (rounded down) from `warmup_first_cap` to `warmup_last_cap` on day
        `warmup_days`, and stays there until the review ends the warm-up.
        """
        step = min(max(day_of_warmup, 1), self.warmup_days) - 1
        span = self.warmup_last_cap - self.warmup_first_cap
        rise = span * step // (self.warmup_days - 1) if self.warmup_days > 1 else span
        return min(self.warmup_first_cap + rise, daily_cap)


def total(daily: Mapping[date, Tally], days: Iterable[date]) -> Tally:
    """The tallies of `days` added up (days without one count as nothing)."""
    return sum((daily.get(day, Tally()) for day in days), Tally())


def calling_days(
    daily: Mapping[date, Tally], *, since: date, before: date, settings: CallerIdSettings
) -> list[date]:
    """The number's calling days in [since, before), latest first."""
    return sorted(
        (
            day
            for day, tally in daily.items()
            if since <= day < before and tally.attempts >= settings.min_daily_sample
        ),
        reverse=True,
    )


def behind_pool_reason(
    own: Tally, pool: Tally, settings: CallerIdSettings, *, over: str
) -> str | None:
    """Why `own` counts as behind the rest of the pool (`pool` includes `own`), or None."""
    others = pool - own
    if own.rate is None or others.rate is None:
        return None
    gap = others.rate - own.rate
    if gap < settings.drop_points - _EPSILON or _z_score(own, others) < settings.significance_z:
        return None
    return (
        f"answer rate {own.rate:.1%} on {own.attempts} calls {over}, "
        f"{gap * 100:.1f} points below the rest of the pool ({others.rate:.1%})"
    )


def _z_score(own: Tally, others: Tally) -> float:
    """How many standard errors `others` answers better than `own` (pooled proportions)."""
    pooled = (own.answered + others.answered) / (own.attempts + others.attempts)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / own.attempts + 1 / others.attempts))
    gap = (others.answered / others.attempts) - (own.answered / own.attempts)
    if spread == 0:
        return math.inf if gap > 0 else 0.0
    return gap / spread


def under_floor_reason(
    daily: Mapping[date, Tally], days: list[date], settings: CallerIdSettings
) -> str | None:
    """Why the number's last `floor_days` calling days (`days`, latest first) fail the floor."""
    last = days[: settings.floor_days]
    rates = [daily[day].answered / daily[day].attempts for day in reversed(last)]
    if len(last) < settings.floor_days or any(rate >= settings.floor_rate for rate in rates):
        return None
    shown = ", ".join(f"{rate:.0%}" for rate in rates)
    return f"answer rate under {settings.floor_rate:.0%} on {len(last)} calling days ({shown})"


def marks_reason(marks: int, settings: CallerIdSettings) -> str | None:
    """Why the marks reported for a number rest it, or None."""
    if marks <= settings.max_marks:
        return None
    return f"{marks} spam marks reported (more than {settings.max_marks})"


def poor_record_reason(
    daily: Mapping[date, Tally],
    pool_daily: Mapping[date, Tally],
    *,
    rests: int,
    marks: int,
    settings: CallerIdSettings,
) -> str | None:
    """Why a number's whole record is poor (see the module docstring), or None."""
    if rests >= settings.retire_after_rests:
        return f"rested {rests} time{'s' if rests != 1 else ''}"
    marked = marks_reason(marks, settings)
    if marked is not None:
        return marked
    own = total(daily, daily)
    if own.attempts < settings.min_record_sample:
        return None
    return behind_pool_reason(own, total(pool_daily, daily), settings, over="over its life")


# Marks files -------------------------------------------------------------------------------

NUMBER_HEADERS: Final = frozenset(
    {"number", "phone", "phone_number", "caller_id", "callerid", "号码", "电话",
     "电话号码", "手机号", "手机号码", "主叫号码", "外显号码"}
)  # fmt: skip
COUNT_HEADERS: Final = frozenset(
    {"marks", "mark_count", "marks_count", "count", "spam_marks", "reports",
     "标记次数", "标记数", "标记数量", "被标记次数", "次数"}
)  # fmt: skip


class MarksFileError(CallerIdError, ValueError):
    """A marks file that cannot be read; `problems` are (line, message) pairs.

    Messages never repeat a cell holding a phone number.
    """

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(f"line {line}: {message}" for line, message in problems[:20])
        more = f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"marks file: {len(problems)} problem(s): {shown}{more}")


def parse_marks_csv(text: str, *, default_region: str = "CN") -> dict[str, int]:
    """Spam marks per number (E.164) from a CSV with a number and a count column.

    Headers may be English or Chinese (see `NUMBER_HEADERS`, `COUNT_HEADERS`; case, spaces
    and a BOM are ignored); the delimiter may be a comma, tab or semicolon. Numbers are
    normalised as `rules.phone` does, national ones in `default_region`. Rows of one number
    add up (exports list one row per mark category); blank rows are skipped. All or
    nothing: any bad row raises `MarksFileError` naming every bad line, so a file is never
    half imported.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), _sniff(text))
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        raise MarksFileError([(1, "the file is empty")])
    columns = _columns(header, reader.line_num)
    parser = NumberParser(default_region)
    marks: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        parsed = _marks_row(row, columns, parser)
        if isinstance(parsed, str):
            problems.append((reader.line_num, parsed))
        else:
            marks[parsed[0]] = marks.get(parsed[0], 0) + parsed[1]
    if problems:
        raise MarksFileError(problems)
    return marks


def _sniff(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        return csv.excel


def _columns(header: list[str], line: int) -> tuple[int, int]:
    names = [re.sub(r"[\s-]+", "_", cell.strip().lstrip("\ufeff").lower()) for cell in header]
    number = next((i for i, name in enumerate(names) if name in NUMBER_HEADERS), None)
    count = next((i for i, name in enumerate(names) if name in COUNT_HEADERS), None)
    if number is None or count is None:
        missing = " and ".join(
            f"a {what} column (one of {', '.join(sorted(known))})"
            for what, index, known in (
                ("number", number, NUMBER_HEADERS),
                ("count", count, COUNT_HEADERS),
            )
            if index is None
        )
        raise MarksFileError([(line, f"the header needs {missing}; found {header}")])
    return number, count


def _marks_row(
    row: list[str], columns: tuple[int, int], parser: NumberParser
) -> tuple[str, int] | str:
    number_at, count_at = columns
    if len(row) <= max(columns):
        return f"expected at least {max(columns) + 1} cells, found {len(row)}"
    count = row[count_at].strip()
    if not (count.isascii() and count.isdigit()):
        shown = repr(count) if len(count) <= 6 else "a longer value"  # may be a number
        return f"the count must be a whole number of at least 0, got {shown}"
    cleaned = clean_number(row[number_at])
    info = parser.parse(cleaned) if not isinstance(cleaned, CleanFailure) else None
    if not isinstance(info, PhoneInfo):
        return "the number cell does not hold one valid phone number"
    return info.e164, int(count)
