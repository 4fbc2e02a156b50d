"""Time as a value: the engine and the rules never read the wall clock themselves."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where `now` comes from.

    - `now()` returns a timezone-aware UTC datetime.
    - Successive calls never go backwards.
    """

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, for the real world and the CLI."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: simulations and tests."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("time does not go backwards")
        self._now += delta


class OffsetClock:
    """The real clock's pace from a chosen start: a real-time run "as if" at another
    moment (tests and QA runs of calling-hour rules, never production dialing)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("OffsetClock needs an aware datetime")
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)


class ScaledClock:
    """The real clock's pace times `speed`, from a chosen start: a service running the
    simulated network faster than life (a demo's day in an hour). `speed` 1 from now is
    the real clock's pace."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("ScaledClock needs an aware datetime")
        if speed <= 0:
            raise ValueError("ScaledClock needs a speed above 0")
        self.speed = speed
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)
