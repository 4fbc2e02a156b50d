"""Baseline pacers, for comparison in the pacing benchmark (not for production campaigns).

Both follow the `Pacer` protocol, are pure, and read time only from `snapshot.at`.

`RatioPacer` is VICIdial's manual dial level: a fixed number of lines per agent. On every
call it tops the calls in flight up to `round(level * (ready + talking))`.

`VicidialAdaptPacer` re-implements VICIdial's ADAPT mode as commonly described:

- every second, sample R = agents ready, W = answered calls waiting, A = agents logged in,
  keeping the last 15 samples;
- every 15 s, `L *= 1 + (mean(R) - mean(W)) / mean(A)`, capped at `max_level`, floored at 1;
- every 60 s, halve L if over 20 calls were placed in the last minute and over half of
  them were dropped; and if over 50 calls were placed since the start and drops exceed 3%
  of live answers since the start, set L to 1 ("hard") or halve it ("average"); while
  the day is over that limit, the hard variant holds L at 1 (the 15 s step does not raise
  it): the "pinned to 1.0 all day" behaviour of VICIdial's defaults;
- every 2.5 s, top the calls in flight up to `round(L * (ready + talking))`; return 0
  in between.

Seconds are counted from the pacer's first snapshot. A gap between snapshots is caught up
second by second with the values of the snapshot that ends it.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from statistics import fmean
from typing import Literal

from dialer.engine.pacing import Observation, PaceSnapshot

SAMPLES = 15  # seconds of samples behind each level adjustment
ADJUST_EVERY = 15  # seconds
BRAKE_EVERY = 60  # seconds
PLACE_EVERY = timedelta(seconds=2.5)
MINUTE_MIN_DIALS = 20  # the last-minute brake needs more dials than this, over half dropped
DAY_MIN_DIALS = 50  # the since-start brake needs more dials than this...
DAY_DROP_PERCENT = 3  # ...and more drops than this percentage of live answers

Variant = Literal["hard", "average"]


def _top_up(level: float, snapshot: PaceSnapshot) -> int:
    """Calls to place so that `level` lines per working agent are in flight."""
    target = round(level * (snapshot.agents_ready + snapshot.agents_talking))
    in_flight = snapshot.calls_dialing + snapshot.calls_waiting + snapshot.calls_live
    return max(0, min(target - in_flight, snapshot.free_lines))


class RatioPacer:
    """A fixed dial level: `level` lines per ready or talking agent, topped up every call."""

    def __init__(self, level: float) -> None:
        if not level >= 1.0:  # also rejects NaN
            raise ValueError(f"a dial level must be at least 1.0, got {level!r}")
        self.level = level
        self.name = f"ratio:{level:g}"

    def calls_to_place(self, snapshot: PaceSnapshot) -> int:
        return _top_up(self.level, snapshot)

    def observe(self, observation: Observation) -> None:
        pass


class VicidialAdaptPacer:
    """VICIdial's ADAPT dial level: adjusted from ready agents and waiting calls, braked on
    drops, and acted on every 2.5 s."""

    def __init__(self, max_level: float = 3.0, variant: Variant = "hard") -> None:
        if not max_level >= 1.0:  # also rejects NaN
            raise ValueError(f"max_level must be at least 1.0, got {max_level!r}")
        if variant not in ("hard", "average"):
            raise ValueError(f"variant must be 'hard' or 'average', got {variant!r}")
        self.max_level = max_level
        self.variant: Variant = variant
        self.name = "vicidial-adapt" if variant == "hard" else f"vicidial-adapt:{variant}"
        self._level = 1.0
        self._start: datetime | None = None
        self._next_second = 0  # the next whole second (since the start) to sample
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=SAMPLES)  # (R, W, A)
        self._day_base = (0, 0, 0)  # (dials, answers, abandoned) at the first snapshot
        self._minute_base = (0, 0)  # (dials, abandoned) at the last 60 s check
        self._last_placed: datetime | None = None
        self._over_limit = False  # the drops since the day started exceed the limit

    @property
    def level(self) -> float:
        """The current dial level L (lines per ready or talking agent)."""
        return self._level

    def calls_to_place(self, snapshot: PaceSnapshot) -> int:
        self._advance(snapshot)
        if self._last_placed is not None and snapshot.at - self._last_placed < PLACE_EVERY:
            return 0
        self._last_placed = snapshot.at
        return _top_up(self._level, snapshot)

    def observe(self, observation: Observation) -> None:
        pass

    def _advance(self, snapshot: PaceSnapshot) -> None:
        """Run the per-second, 15 s and 60 s steps due up to `snapshot.at`."""
        if self._start is None:
            self._start = snapshot.at
            self._day_base = (snapshot.dials, snapshot.answers, snapshot.abandoned)
            self._minute_base = (snapshot.dials, snapshot.abandoned)
        elapsed = (snapshot.at - self._start) // timedelta(seconds=1)
        while self._next_second <= elapsed:
            second = self._next_second
            self._next_second += 1
            self._samples.append(
                (snapshot.agents_ready, snapshot.calls_waiting, snapshot.agents_logged_in)
            )
            if second > 0 and second % ADJUST_EVERY == 0:
                self._adjust()
            if second > 0 and second % BRAKE_EVERY == 0:
                self._brake(snapshot)

    def _adjust(self) -> None:
        if self._over_limit and self.variant == "hard":
            return  # the hard limit holds L at 1.0 while the day's drops are over it
        mean_logged_in = fmean(a for _, _, a in self._samples)
        if mean_logged_in == 0:
            return
        diff = fmean(r for r, _, _ in self._samples) - fmean(w for _, w, _ in self._samples)
        self._level = self._clamp(self._level * (1 + diff / mean_logged_in))

    def _brake(self, snapshot: PaceSnapshot) -> None:
        minute_dials = snapshot.dials - self._minute_base[0]
        minute_drops = snapshot.abandoned - self._minute_base[1]
        self._minute_base = (snapshot.dials, snapshot.abandoned)
        if minute_dials > MINUTE_MIN_DIALS and 2 * minute_drops > minute_dials:
            self._level = self._clamp(self._level / 2)
        day_dials = snapshot.dials - self._day_base[0]
        day_answers = snapshot.answers - self._day_base[1]
        day_drops = snapshot.abandoned - self._day_base[2]
        self._over_limit = (day_dials > DAY_MIN_DIALS
                            and 100 * day_drops > DAY_DROP_PERCENT * day_answers)
        if self._over_limit:
            self._level = 1.0 if self.variant == "hard" else self._clamp(self._level / 2)

    def _clamp(self, level: float) -> float:
        return max(1.0, min(level, self.max_level))
