"""Calling hours from answer rates: Wilson intervals, and the hours worth keeping.

Pure, like the rest of `rules`; `rules.tuning` is its user and documents the figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from types import MappingProxyType

Z95 = 1.959963984540054  # the standard normal quantile of 0.975
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MINUTES_PER_DAY = 24 * 60

Hours = tuple[tuple[time, time], ...]  # [start, end) ranges of one local day, as in windows
Span = tuple[int, int]  # [start, end) in minutes of the day


@dataclass(frozen=True, slots=True)
class Rate:
    """`successes` out of `trials`, with its Wilson score interval at 95 %."""

    successes: int
    trials: int

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0

    @property
    def low(self) -> float:
        return wilson(self.successes, self.trials)[0]

    @property
    def high(self) -> float:
        return wilson(self.successes, self.trials)[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One proposed change to the campaign file: `set` replaces the field, `add` appends
    names to a list field. `value` is plain data (a mapping of day keys to 'HH:MM-HH:MM'
    ranges for calling_hours, a tuple of names for the lists)."""

    field: str
    op: str
    value: Mapping[str, tuple[str, ...]] | tuple[str, ...]
    why: str


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    low = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact at the ends
    high = 1.0 if successes >= trials else min(1.0, centre + half)
    return low, high


def propose_hours(by_hour: Sequence[Rate], current: tuple[Hours, ...] | None,
                  min_attempts: int) -> tuple[Change | None, list[str]]:
    """Narrow the calling hours to those not clearly worse than the best hour.

    Rates are per local hour pooled over the weekdays (hour-by-day cells are too thin).
    Only hours with at least `min_attempts` verdicts that the campaign may call now are
    judged. The best is the one with the highest lower 95 % bound (the rate we are surest
    of); an hour is dropped when its upper bound is below that: the two intervals do not
    overlap, so it is worse beyond reasonable doubt. Hours with less data keep whatever
    they have now (we do not drop what we know nothing about), and the proposal only
    ever removes whole local hours from today's hours, on every day they apply.
    """
    days = _days_as_spans(current)
    open_hours = {h for h in range(24) if any(_overlaps(day, _hour_span(h)) for day in days)}
    judged = [h for h in sorted(open_hours) if by_hour[h].trials >= min_attempts]
    thin = sorted(open_hours - set(judged))
    notes = ([f"hours {_hour_list(thin)} have fewer than {min_attempts} attempts: "
              "left as they are"] if thin and judged else [])
    if len(judged) < 2:
        return None, [f"fewer than two calling hours have {min_attempts} attempts or more: "
                      "no change to the calling hours"]
    best = max(judged, key=lambda h: (by_hour[h].low, by_hour[h].rate))
    dropped = [h for h in judged if by_hour[h].high < by_hour[best].low]
    if not dropped:
        return None, [*notes, "no calling hour answers clearly worse than the best: "
                      "no change to the calling hours"]
    kept_days = [_subtract(day, [_hour_span(h) for h in dropped]) for day in days]
    ranking = sorted(judged, key=lambda h: -by_hour[h].rate)
    why = ("answer rate by local hour, best first: "
           + ", ".join(f"{h:02d}h {_shown(by_hour[h])}" for h in ranking)
           + f"; dropping {_hour_list(dropped)}, whose 95% intervals lie wholly below the best "
           f"hour's ({best:02d}h, from {by_hour[best].low:.1%})")
    return Change(field="calling_hours", op="set", value=group_days(kept_days), why=why), notes


def group_days(days: Sequence[Sequence[Span]]) -> Mapping[str, tuple[str, ...]]:
    """Seven days of spans as `windows` keys: `weekdays`/`weekend` when their days agree,
    single days otherwise; days without hours are left out (no hours)."""
    grouped: dict[str, tuple[str, ...]] = {}
    for key, members in (("weekdays", (0, 1, 2, 3, 4)), ("weekend", (5, 6))):
        first = list(days[members[0]])
        if all(list(days[d]) == first for d in members):
            if first:
                grouped[key] = tuple(_range_text(span) for span in first)
            continue
        for d in members:
            if days[d]:
                grouped[DAY_KEYS[d]] = tuple(_range_text(span) for span in days[d])
    return MappingProxyType(grouped)


def intersect_hours(first: tuple[Hours, ...] | None,
                    second: tuple[Hours, ...] | None) -> tuple[Hours, ...] | None:
    """Seven days of the hours open in both (None: any hour), as a call must be."""
    if first is None or second is None:
        return second if first is None else first
    return tuple(
        tuple(sorted((max(s1, s2), min(e1, e2)) for s1, e1 in one for s2, e2 in other
                     if max(s1, s2) < min(e1, e2)))
        for one, other in zip(first, second, strict=True)
    )


def _days_as_spans(current: tuple[Hours, ...] | None) -> list[list[Span]]:
    if current is None:
        return [[(0, _MINUTES_PER_DAY)] for _ in range(7)]
    return [sorted((_minutes(start), _minutes(end)) for start, end in day) for day in current]


def _subtract(day: Sequence[Span], cuts: Sequence[Span]) -> list[Span]:
    spans = list(day)
    for cut_start, cut_end in cuts:
        spans = [piece for start, end in spans
                 for piece in ((start, min(end, cut_start)), (max(start, cut_end), end))
                 if piece[0] < piece[1]]
    return spans


def _overlaps(day: Sequence[Span], span: Span) -> bool:
    return any(start < span[1] and span[0] < end for start, end in day)


def _hour_span(hour: int) -> Span:
    return hour * 60, hour * 60 + 60


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute


def _range_text(span: Span) -> str:
    def clock(minutes: int) -> str:  # a range cannot end at 24:00: the day's last is 23:59
        minutes = min(minutes, _MINUTES_PER_DAY - 1)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    return f"{clock(span[0])}-{clock(span[1])}"


def _hour_list(hours: Sequence[int]) -> str:
    return ", ".join(f"{h:02d}:00-{h + 1:02d}:00" for h in hours)


def _shown(rate: Rate) -> str:
    return f"{rate.rate:.1%} [{rate.low:.1%}-{rate.high:.1%}] of {rate.trials}"

