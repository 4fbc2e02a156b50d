"""Abandoned calls counted the way a regulator counts them: over a rolling window.

An abandoned call is a live answer nobody took within the allowed seconds. The rate is
abandoned / live answers over the regulator's window (rolling 24 hours for Ofcom, 30 days
for the FTC's rule). Where the regulator asks for it (Ofcom), an estimated share of the
calls the answering-machine detector hung up on were people (false positives): they count
as live answers and as abandoned.

Counts are kept in time buckets (a 1/1440 of the window: a minute for 24 hours), so a
30-day window costs a few thousand small rows, and the rate is exact to one bucket.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

BUCKETS_PER_WINDOW = 1440
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class AbandonFigures:
    live_answers: float  # including estimated false positives
    abandoned: float  # including estimated false positives
    machines: int  # answers the detector took for machines
    false_positives: float = 0.0  # of `live_answers` and `abandoned`: the estimate

    @property
    def rate(self) -> float:
        return self.abandoned / self.live_answers if self.live_answers else 0.0


@dataclass(slots=True)
class _Bucket:
    start: datetime
    live: int = 0
    abandoned: int = 0
    machines: int = 0


@dataclass(slots=True)
class AbandonWindow:
    """Live answers, abandoned calls and machine answers over a rolling `window`.

    - `figures(now)` covers (now - window, now], to the bucket;
    - `false_positive_share` of machine answers count as abandoned live answers.
    """

    window: timedelta
    false_positive_share: float = 0.0
    _buckets: deque[_Bucket] = field(default_factory=deque)
    _live: int = 0
    _abandoned: int = 0
    _machines: int = 0

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError("the abandon window must be positive")
        if not 0 <= self.false_positive_share <= 1:
            raise ValueError("the false-positive share must be between 0 and 1")

    @property
    def bucket(self) -> timedelta:
        return self.window / BUCKETS_PER_WINDOW

    def live_answer(self, at: datetime, *, abandoned: bool) -> None:
        bucket = self._bucket_at(at)
        bucket.live += 1
        self._live += 1
        if abandoned:
            bucket.abandoned += 1
            self._abandoned += 1

    def machine_answer(self, at: datetime) -> None:
        self._bucket_at(at).machines += 1
        self._machines += 1

    def figures(self, now: datetime) -> AbandonFigures:
        self._expire(now)
        estimated = self.false_positive_share * self._machines
        return AbandonFigures(live_answers=self._live + estimated,
                              abandoned=self._abandoned + estimated, machines=self._machines,
                              false_positives=estimated)

    def _bucket_at(self, at: datetime) -> _Bucket:
        buckets = self._buckets
        if buckets and at < buckets[-1].start + self.bucket:
            return buckets[-1]  # a late event lands in the newest bucket: never lost
        start = at - (at - _EPOCH) % self.bucket
        buckets.append(_Bucket(start))
        self._expire(at)
        return buckets[-1]

    def _expire(self, now: datetime) -> None:
        buckets, horizon = self._buckets, now - self.window
        while buckets and buckets[0].start + self.bucket <= horizon:
            old = buckets.popleft()
            self._live -= old.live
            self._abandoned -= old.abandoned
            self._machines -= old.machines
