"""Which trunk and caller ID a call leaves on: the campaign's failover chain of trunk
pools (`lines.trunks`, with each trunk's health) and its caller IDs.

- `take` never hands out a channel a trunk does not have, nor more calls per second than
  it allows, nor a call to a trunk that is out of service (probing trunks get probe calls);
- every call taken is released once (`release`) and its outcome reported once (`report`),
  which is what moves trunks out of service and back;
- `advance` (every tick) and `report` return the trunks' changes of state, for the log.

Caller IDs: with a managed pool (`lines.callerid`, when the campaign lists its numbers)
each call shows the number the pool chooses (local presence, daily and warm-up caps,
health), and no call leaves when no number may call; the pool is reviewed at the first
moment of each day. Without one, the default numbers are used in turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from lines.callerid import CallerIdChanged, CallerIdPool, NumberSpec
from lines.callerid_health import CallerIdSettings
from lines.health import HealthChanged, HealthSettings
from lines.trunks import FailoverChain, TrunkLine, TrunkPool, TrunkSettings, TrunkStatus

#: Calls per second on a trunk the configuration gives no limit (the simulated default).
UNLIMITED_CPS = 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Taken:
    """A channel taken for one call."""

    trunk: str
    caller_id: str
    probe: bool = False  # a probe of a trunk coming back into service


LineChange = HealthChanged | CallerIdChanged
#: The day a number counts as added on when the configuration does not say (long ago).
LONG_AGO = date(2000, 1, 1)


@dataclass(slots=True)
class LinePlan:
    line: TrunkLine | TrunkPool | FailoverChain
    caller_ids: tuple[str, ...]
    #: The managed caller-ID pool's numbers (empty: the numbers above in turn), and the
    #: sub-pool calls show unless a segment asks for another.
    numbers: Sequence[NumberSpec] = ()
    sub_pool: str = "marketing"
    #: A number is rested for trailing the pool only when the gap is significant at 1%
    #: (one-sided): at 20 calls a day, the 5% gate rested a number for chance about once
    #: a day in a pool of 15 (scripts/bench_callerids.py); marks and the 40% floor still
    #: rest the numbers callees turn away from.
    caller_settings: CallerIdSettings = field(
        default_factory=lambda: CallerIdSettings(significance_z=2.33))
    _callers: CallerIdPool | None = None
    _reviewed: date | None = None
    _next_caller: int = 0

    @classmethod
    def single(cls, trunk: str, channels: int, caller_ids: tuple[str, ...]) -> LinePlan:
        """One trunk with `channels` and no calls-per-second limit to speak of."""
        settings = TrunkSettings(name=trunk, channels=channels, cps=UNLIMITED_CPS)
        return cls(line=TrunkLine(settings), caller_ids=caller_ids)

    @classmethod
    def chain(cls, trunks: Iterable[TrunkSettings], pools: dict[str, tuple[str, ...]],
              order: Iterable[str], health: HealthSettings, caller_ids: tuple[str, ...], *,
              numbers: Sequence[NumberSpec] = (), sub_pool: str = "marketing") -> LinePlan:
        """Trunk pools in failover `order` (a trunk in several pools is one trunk), and the
        managed caller-ID pool of `numbers` when there are any."""
        lines = {t.name: TrunkLine(t, health) for t in trunks}
        chain = FailoverChain([TrunkPool(name, [lines[m] for m in pools[name]])
                               for name in order])
        return cls(line=chain, caller_ids=caller_ids, numbers=tuple(numbers),
                   sub_pool=sub_pool)

    def free(self, at: datetime) -> int:
        """Calls that could leave now (channels, calls per second, trunk health)."""
        return self.line.free(at)

    def take(self, at: datetime, *, tier: str | None = None, pool: str | None = None,
             callee: str | None = None) -> Taken | None:
        """A channel (on a trunk of `tier` first, when asked) and a caller ID (the managed
        pool's choice from sub-pool `pool`, else the default numbers in turn); None when no
        trunk can carry a call now or no number may call."""
        callers = self._pool(at)
        chosen = None
        if callers is not None:
            chosen = callers.choose(callee or "", sub_pool=pool or self.sub_pool, at=at)
            if chosen is None:
                return None
        seized = self.line.take(at, tier=tier)
        if seized is None:
            return None
        if callers is not None and chosen is not None:
            callers.record_call(chosen, at)
            caller = chosen
        else:
            caller = self.caller_ids[self._next_caller % len(self.caller_ids)]
            self._next_caller += 1
        return Taken(trunk=seized.trunk, caller_id=caller, probe=seized.probe)

    def call_ended(self, caller_id: str, placed_at: datetime, *, answered: bool) -> None:
        """How a call showing `caller_id` went: the pool's health works from it."""
        if self._callers is not None and caller_id in self._callers:
            self._callers.record_outcome(caller_id, placed_at.date(), answered=answered)

    def replay(self, history: Iterable[tuple[str, datetime, bool]], today: date,
               marks: Iterable[tuple[str, int, datetime]] = ()) -> None:
        """Rebuild the caller-ID pool from earlier calls (number, placed at, answered by a
        person) and marks reports (number, tally, reported at), in the pool's time zone:
        each earlier day is reviewed in turn as it was, so a multi-day campaign keeps each
        number's lifecycle."""
        ours = {spec.number for spec in self.numbers}
        events = sorted([(at, 0, n, answered, 0) for n, at, answered in history if n in ours]
                        + [(at, 1, n, False, count) for n, count, at in marks if n in ours])
        if not events:
            return
        first = min(events[0][0].date(), today)
        self._callers = pool = CallerIdPool(
            [n for n in self.numbers if n.added_on <= first], start=first,
            settings=self.caller_settings)
        day = first
        for at, kind, number, answered, count in events:
            while day < at.date():
                day = date.fromordinal(day.toordinal() + 1)
                pool.review(day)
            if number not in pool:
                continue  # added after the history starts
            if kind:
                pool.record_marks(number, count, at)
            else:
                pool.record_call(number, at)
                pool.record_outcome(number, at.date(), answered=answered)
        self._reviewed = day  # the days since are reviewed at the next `advance`

    def record_marks(self, marks: Mapping[str, int], at: datetime) -> None:
        """Spam marks a marking service reports (tallies), for the pool's numbers."""
        callers = self._pool(at)
        if callers is not None:
            for number, count in marks.items():
                if number in callers:
                    callers.record_marks(number, count, at)

    @property
    def callers(self) -> CallerIdPool | None:
        """The managed caller-ID pool, once a call or a replay made it."""
        return self._callers

    def _pool(self, at: datetime) -> CallerIdPool | None:
        if self._callers is None and self.numbers:
            today = at.date()
            ours = [n for n in self.numbers if n.added_on <= today]  # added later: not yet
            self._callers = CallerIdPool(ours, start=today, settings=self.caller_settings)
            self._reviewed = today
        return self._callers

    def release(self, trunk: str) -> None:
        self.line.release(trunk)

    def report(self, at: datetime, trunk: str, *, failed: bool, probe: bool
               ) -> list[HealthChanged]:
        return self.line.report(at, trunk, failed, probe=probe)

    def advance(self, at: datetime) -> list[LineChange]:
        """Trunks' changes due by `at`; at a new day, the caller-ID pool's review."""
        changes: list[LineChange] = list(self.line.advance(at))
        callers = self._pool(at)
        if callers is not None and self._reviewed is not None and at.date() > self._reviewed:
            while self._reviewed < at.date():  # every day in between is reviewed, in turn
                self._reviewed = date.fromordinal(self._reviewed.toordinal() + 1)
                changes += callers.review(self._reviewed)
        elif callers is not None and self._reviewed is None:
            self._reviewed = at.date()
            changes += callers.review(at.date())
        return changes

    def status(self, at: datetime) -> tuple[TrunkStatus, ...]:
        return self.line.status(at)
