"""Caller-ID pools: which of our numbers a call shows, and each number's use and lifecycle.

A pure state object: every method takes the day or time it is about; nothing reads a clock.
Days are `at.date()`, so pass times in the pool's operating time zone.

Choosing (`CallerIdPool.choose`): only numbers of the call's sub-pool (a service number is
never shown on a marketing call, nor the reverse) that are WARMING or ACTIVE and below
today's cap. Nearest first (`Closeness`: same city, same province or state, same country,
elsewhere), then the smallest share of today's cap used, then the best recent answer rate,
then the number itself. None when no number may call: the engine waits; caps are never
exceeded.

Caps: `NumberSpec.daily_cap` for an ACTIVE number. A WARMING number's cap rises linearly
from 5 calls on its first day to 10 on its 14th (`CallerIdSettings.warmup_cap`); the review
on its 15th day makes it ACTIVE.

Lifecycle (the table and the health rules are in `lines.callerid_health`): at the start,
the newest `reserve_share` of each sub-pool (the nearest whole count, never all of it)
waits in RESERVE; the others are ACTIVE, or WARMING while younger than the warm-up. The
daily `review` (run it at the start of each calling day: it judges the days before
`today`) retires, rests, returns, ends warm-ups and promotes. A number back from its rest
waits in the reserve and warms up again when promoted, so the reserve stays about
`reserve_share` of the pool; reserve numbers are promoted whenever a sub-pool has fewer
numbers in service (WARMING or ACTIVE) than at the start: never one still marked, and
first one in a city the numbers in service do not cover.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from lines.callerid_health import (
    IN_SERVICE,
    TRANSITIONS,
    CallerIdSettings,
    CallerIdState,
    CallerIdTrigger,
    Tally,
    UnknownCallerId,
    behind_pool_reason,
    calling_days,
    marks_reason,
    next_state,
    poor_record_reason,
    total,
    under_floor_reason,
)
from lines.callerid_locality import Closeness, Locality, closeness, locality
from rules.phone import mask

_S, _T = CallerIdState, CallerIdTrigger


class SubPool(enum.StrEnum):
    """What a number may be shown on."""

    SERVICE = "service"
    MARKETING = "marketing"


class NumberKind(enum.StrEnum):
    """The kind of line a number is."""

    FIXED_LINE = "fixed_line"
    MOBILE = "mobile"
    VIRTUAL = "virtual"


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberSpec:
    """One of our numbers, as configured."""

    number: str  # E.164
    sub_pool: SubPool
    kind: NumberKind
    added_on: date  # when we got it: its age counts from here
    daily_cap: int = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdChanged:
    """A number moved from one lifecycle state to another at a review."""

    number: str
    day: date
    before: CallerIdState
    after: CallerIdState
    trigger: CallerIdTrigger
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdRow:
    """One number in `CallerIdPool.status`."""

    number: str
    state: CallerIdState
    kind: NumberKind
    sub_pool: SubPool
    city: str  # `Locality.label`
    calls_today: int
    cap_today: int  # 0 when not in service
    recent_answer_rate: float | None  # over its last calling days (see callerid_health)
    marks: int
    marks_at: datetime | None  # when they were last reported


@dataclass(slots=True)
class _Number:
    """A number's mutable record inside the pool."""

    spec: NumberSpec
    place: Locality
    state: CallerIdState
    in_service_since: date  # the last promotion (or the start, or its addition)
    rested_on: date | None = None
    rests: int = 0
    marks: int = 0
    marks_at: datetime | None = None
    calls_day: date | None = None
    calls: int = 0  # on calls_day
    daily: dict[date, Tally] = field(default_factory=dict)
    health: float = -1.0  # recent answer rate at the last review; -1 before any

    def calls_on(self, day: date) -> int:
        return self.calls if day == self.calls_day else 0


class CallerIdPool:
    """Our numbers, their use today, their health and their lifecycle (see the module)."""

    def __init__(
        self,
        numbers: Iterable[NumberSpec],
        *,
        start: date,
        settings: CallerIdSettings | None = None,
    ) -> None:
        self.settings = settings or CallerIdSettings()
        self._numbers: dict[str, _Number] = {}
        self._pool_daily: dict[SubPool, dict[date, Tally]] = {sub: {} for sub in SubPool}
        self._target: dict[SubPool, int] = {}
        specs = tuple(numbers)
        for sub_pool in SubPool:
            members = [spec for spec in specs if spec.sub_pool is sub_pool]
            self._target[sub_pool] = len(members) - self._reserve_size(len(members))
            for rank, spec in enumerate(sorted(members, key=lambda s: (s.added_on, s.number))):
                self._enrol(spec, start, reserve=rank >= self._target[sub_pool])

    def _reserve_size(self, count: int) -> int:
        return min(int(count * self.settings.reserve_share + 0.5), max(count - 1, 0))

    def _enrol(self, spec: NumberSpec, start: date, *, reserve: bool) -> None:
        if spec.number in self._numbers:
            raise ValueError(f"caller ID {mask(spec.number)} is listed twice")
        if spec.added_on > start or spec.daily_cap < 1:
            raise ValueError(f"caller ID {mask(spec.number)}: added after the start, or cap < 1")
        warm = (start - spec.added_on).days >= self.settings.warmup_days
        state = _S.RESERVE if reserve else _S.ACTIVE if warm else _S.WARMING
        self._numbers[spec.number] = _Number(
            spec, locality(spec.number), state, in_service_since=spec.added_on
        )

    def __contains__(self, number: object) -> bool:
        return number in self._numbers

    def __len__(self) -> int:
        return len(self._numbers)

    def state(self, number: str) -> CallerIdState:
        """The number's lifecycle state."""
        return self._get(number).state

    def _get(self, number: str) -> _Number:
        try:
            return self._numbers[number]
        except KeyError:
            raise UnknownCallerId(number) from None

    # Choosing and counting ------------------------------------------------------------

    def cap_today(self, number: str, day: date) -> int:
        """Calls the number may make on `day` in its current state (0 out of service)."""
        return self._cap(self._get(number), day)

    def _cap(self, record: _Number, day: date) -> int:
        if record.state is _S.ACTIVE:
            return record.spec.daily_cap
        if record.state is _S.WARMING:
            day_of_warmup = (day - record.in_service_since).days + 1
            return self.settings.warmup_cap(day_of_warmup, record.spec.daily_cap)
        return 0

    def choose(self, callee_e164: str, *, sub_pool: str, at: datetime) -> str | None:
        """The caller ID for a call to `callee_e164` at `at`, or None if none may call.

        Does not count the call: `record_call` it once placed.
        """
        wanted = SubPool(sub_pool)
        day, place = at.date(), locality(callee_e164)
        best: tuple[Closeness, float, int, float, str] | None = None
        for record in self._numbers.values():
            if record.spec.sub_pool is not wanted or record.state not in IN_SERVICE:
                continue
            cap, used = self._cap(record, day), record.calls_on(day)
            if used >= cap:
                continue
            near = closeness(place, record.place)
            key = (near, used / cap, used, -record.health, record.spec.number)
            best = key if best is None or key < best else best
        return None if best is None else best[-1]

    def record_call(self, number: str, at: datetime) -> None:
        """Count a call placed with `number` at `at` toward that day's use."""
        record, day = self._get(number), at.date()
        record.calls = record.calls_on(day) + 1
        record.calls_day = day

    def record_outcome(self, number: str, day: date, *, answered: bool) -> None:
        """Count a finished call made with `number` on `day` (the day it was placed)."""
        record = self._get(number)
        tally = Tally(1, int(answered))
        record.daily[day] = record.daily.get(day, Tally()) + tally
        pool = self._pool_daily[record.spec.sub_pool]
        pool[day] = pool.get(day, Tally()) + tally

    def record_marks(self, number: str, count: int, at: datetime) -> None:
        """The spam marks a marking service (or the API) shows for `number` at `at`.

        A tally, not an increment: importing the same file twice changes nothing, and a
        lower count (marks cleared after an appeal) lowers it. Judged at the next review.
        """
        if count < 0:
            raise ValueError("a marks count cannot be negative")
        record = self._get(number)
        record.marks, record.marks_at = count, at

    # The daily review -----------------------------------------------------------------

    def review(self, today: date) -> list[CallerIdChanged]:
        """Retire, rest, return, finish warm-ups and promote, judging the days before `today`.

        Run once at the start of each calling day; running it again changes nothing new.
        """
        changes: list[CallerIdChanged] = []
        for number in sorted(self._numbers):
            record = self._numbers[number]
            change = (
                self._retire(record, today)
                or self._rest(record, today)
                or self._end_rest(record, today)
                or self._end_warmup(record, today)
            )
            if change is not None:
                changes.append(change)
        for sub_pool in SubPool:
            changes += self._promote(sub_pool, today)
        for record in self._numbers.values():
            rate = self._recent(record, today).rate
            record.health = -1.0 if rate is None else rate
        return changes

    def _move(
        self, record: _Number, trigger: CallerIdTrigger, today: date, reason: str
    ) -> CallerIdChanged:
        before = record.state
        record.state = next_state(before, trigger)
        if trigger is _T.PROMOTED:
            record.in_service_since = today
        elif record.state is _S.RESTING:
            record.rested_on, record.rests = today, record.rests + 1
        return CallerIdChanged(
            number=record.spec.number,
            day=today,
            before=before,
            after=record.state,
            trigger=trigger,
            reason=reason,
        )

    def _retire(self, record: _Number, today: date) -> CallerIdChanged | None:
        too_young = today - record.spec.added_on < self.settings.life
        if (record.state, _T.AGED_OUT) not in TRANSITIONS or too_young:
            return None
        reason = poor_record_reason(
            {day: tally for day, tally in record.daily.items() if day < today},
            self._pool_daily[record.spec.sub_pool],
            rests=record.rests,
            marks=record.marks if record.state is _S.RESTING else 0,  # marked: rest first
            settings=self.settings,
        )
        if reason is None:
            return None
        age = (today - record.spec.added_on).days
        return self._move(
            record, _T.AGED_OUT, today, f"{age} days old with a poor record: {reason}"
        )

    def _rest(self, record: _Number, today: date) -> CallerIdChanged | None:
        if record.state not in IN_SERVICE:
            return None
        marked = marks_reason(record.marks, self.settings)
        if marked is not None:
            return self._move(record, _T.MARKED, today, marked)
        days = calling_days(
            record.daily, since=record.in_service_since, before=today, settings=self.settings
        )
        reason = under_floor_reason(record.daily, days, self.settings)
        window = days[: self.settings.window_days]
        if reason is None and len(window) == self.settings.window_days:
            reason = behind_pool_reason(
                total(record.daily, window),
                total(self._pool_daily[record.spec.sub_pool], window),
                self.settings,
                over=f"over its last {len(window)} calling days",
            )
        return None if reason is None else self._move(record, _T.HEALTH_DROPPED, today, reason)

    def _end_rest(self, record: _Number, today: date) -> CallerIdChanged | None:
        if record.state is not _S.RESTING or record.rested_on is None:
            return None
        if today - record.rested_on < self.settings.rest or record.marks > self.settings.max_marks:
            return None
        days = (today - record.rested_on).days
        return self._move(record, _T.RESTED, today, f"rested {days} days; back in the reserve")

    def _end_warmup(self, record: _Number, today: date) -> CallerIdChanged | None:
        warmed = (today - record.in_service_since).days >= self.settings.warmup_days
        if record.state is not _S.WARMING or not warmed:
            return None
        return self._move(
            record, _T.WARMED, today, f"warmed up over {self.settings.warmup_days} days"
        )

    def _promote(self, sub_pool: SubPool, today: date) -> list[CallerIdChanged]:
        members = [r for r in self._numbers.values() if r.spec.sub_pool is sub_pool]
        serving = [r for r in members if r.state in IN_SERVICE]
        reserve = [
            r for r in members if r.state is _S.RESERVE and r.marks <= self.settings.max_marks
        ]
        changes = []
        while len(serving) < self._target[sub_pool] and reserve:
            covered = {r.place for r in serving}
            reserve.sort(
                key=lambda r: (r.place in covered, r.rests, r.spec.added_on, r.spec.number)
            )
            record = reserve.pop(0)
            reason = (
                f"from the reserve: {len(serving)} of {self._target[sub_pool]} "
                f"{sub_pool} numbers were in service"
            )
            changes.append(self._move(record, _T.PROMOTED, today, reason))
            serving.append(record)
        return changes

    def _recent(self, record: _Number, today: date) -> Tally:
        days = calling_days(
            record.daily, since=record.in_service_since, before=today, settings=self.settings
        )
        return total(record.daily, days[: self.settings.window_days])

    # Reporting ------------------------------------------------------------------------

    def status(self, today: date) -> list[CallerIdRow]:
        """One row per number, by sub-pool then number, for `dialer lines status`."""
        return [
            CallerIdRow(
                number=record.spec.number,
                state=record.state,
                kind=record.spec.kind,
                sub_pool=record.spec.sub_pool,
                city=record.place.label,
                calls_today=record.calls_on(today),
                cap_today=self._cap(record, today),
                recent_answer_rate=self._recent(record, today).rate,
                marks=record.marks,
                marks_at=record.marks_at,
            )
            for record in sorted(
                self._numbers.values(), key=lambda r: (r.spec.sub_pool, r.spec.number)
            )
        ]
