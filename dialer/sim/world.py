"""Simulated time: a discrete-event scheduler that owns a `ManualClock`; random durations.

Callbacks are kept in a heap by (time, insertion order), so two callbacks due at the same
moment run in the order they were scheduled and a run is reproducible. Nothing here
sleeps or reads the wall clock: `run_until` jumps the clock from one due callback to the
next, so an 8-hour shift takes as long as its callbacks take to run.

A `Dist` is a random duration as scenarios write it: `5s` (fixed), or a mapping such as
`{dist: uniform, min: 5s, max: 20s}`, `{dist: exponential, mean: 90s}` or
`{dist: lognormal, mean: 75s, sigma: 0.7}`; `min`/`max` clip exponential and lognormal draws.
"""

from __future__ import annotations

import enum
import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Final, Protocol

from pydantic import BeforeValidator, Field

from dialer.clock import ManualClock
from dialer.config.fields import STRICT_KEYS, Duration, Problem, raise_problems


class Timer:
    """A scheduled callback; `cancel()` stops it from running (a no-op once it has run)."""

    __slots__ = ("cancelled", "fn")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimWorld:
    """The simulated world's clock and its queue of things to happen.

    - `schedule` never runs a callback at once: it runs inside `run_until`, at its time.
    - Callbacks due at the same time run in the order they were scheduled.
    - A callback may schedule more callbacks, also for the current moment; `run_until(t)`
      runs them too when they are due by `t`.
    - Time never goes backwards: scheduling in the past is an error.

    Inside, times are whole microseconds since `start` (exact, cheap to compare); the
    clock is moved to each callback's time before it runs. A time from `next_time` given
    back to `run_until` runs exactly the callbacks due then.
    """

    def __init__(self, start: datetime) -> None:
        self.clock = ManualClock(start)
        self.start = self.clock.now()
        self._t = 0  # microseconds since start
        self._heap: list[tuple[int, int, Timer]] = []
        self._seq = 0

    @property
    def now(self) -> datetime:
        return self.clock.now()

    @property
    def elapsed(self) -> timedelta:
        """Simulated time since the world started."""
        return self.clock.now() - self.start

    def schedule(self, at: datetime, fn: Callable[[], None]) -> Timer:
        """Run `fn` at simulated time `at` (not before `now`)."""
        if at < self.clock.now():
            raise ValueError("cannot schedule a callback in the past")
        return self._push(self._micros(at), fn)

    def schedule_in(self, delay: timedelta | float, fn: Callable[[], None]) -> Timer:
        """Run `fn` after `delay` (a timedelta, or seconds)."""
        micros = delay // _MICRO if isinstance(delay, timedelta) else round(delay * 1_000_000)
        if micros < 0:
            raise ValueError("cannot schedule a callback in the past")
        return self._push(self._t + micros, fn)

    def _push(self, t: int, fn: Callable[[], None]) -> Timer:
        timer = Timer(fn)
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, timer))
        return timer

    def next_time(self) -> datetime | None:
        """When the next callback is due, or None when nothing is pending."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return self._at(heap[0][0]) if heap else None

    def run_until(self, until: datetime) -> int:
        """Run every callback due by `until`, in order; leave the clock at `until`.

        Returns how many callbacks ran.
        """
        if until < self.clock.now():
            raise ValueError("time does not go backwards")
        last = self._micros(until)
        ran = self._run_to(last)
        self._t = last
        self._move_clock(until)
        return ran

    def run_for(self, duration: timedelta) -> int:
        """Run the next `duration` of simulated time."""
        return self.run_until(self.clock.now() + duration)

    def run_all(self, *, limit: datetime | None = None) -> int:
        """Run until nothing is pending (or until `limit`); the clock stops at the last callback."""
        return self._run_to(None if limit is None else self._micros(limit))

    def _run_to(self, last: int | None) -> int:
        heap, ran = self._heap, 0
        while heap and (last is None or heap[0][0] <= last):
            t, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            timer.cancelled = True  # it has run: a later cancel() is harmless
            if t != self._t:
                self._t = t
                self.clock.advance(self._at(t) - self.clock.now())
            timer.fn()
            ran += 1
        return ran

    @property
    def pending(self) -> int:
        """Callbacks waiting to run (cancelled ones may be counted until they are dropped)."""
        return len(self._heap)

    def _micros(self, at: datetime) -> int:
        return max((at - self.start) // _MICRO, self._t)

    def _at(self, t: int) -> datetime:
        return self.start + timedelta(microseconds=t)

    def _move_clock(self, to: datetime) -> None:
        if to > self.clock.now():
            self.clock.advance(to - self.clock.now())


_MICRO: Final = timedelta(microseconds=1)


# --- random durations ----------------------------------------------------------------


class RandomSource(Protocol):
    """What a draw needs; `random.Random` and `CallRandom` both are one."""

    def random(self) -> float: ...

    def uniform(self, a: float, b: float) -> float: ...

    def expovariate(self, lambd: float) -> float: ...

    def lognormvariate(self, mu: float, sigma: float) -> float: ...


_MASK: Final = (1 << 64) - 1


class CallRandom:
    """A small random stream (splitmix64) for one call: cheap to make, the same on every
    platform. `random.Random` takes microseconds to seed; a run makes one of these per call.
    """

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK

    def random(self) -> float:
        """A float in [0, 1)."""
        self._state = z = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return ((z ^ (z >> 31)) >> 11) * (1.0 / (1 << 53))

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()

    def expovariate(self, lambd: float) -> float:
        return -math.log(1.0 - self.random()) / lambd

    def lognormvariate(self, mu: float, sigma: float) -> float:
        radius = math.sqrt(-2.0 * math.log(1.0 - self.random()))  # Box-Muller
        return math.exp(mu + sigma * radius * math.cos(math.tau * self.random()))


class DistKind(enum.StrEnum):
    """The shape of a random duration."""

    FIXED = "fixed"
    UNIFORM = "uniform"
    EXPONENTIAL = "exponential"
    LOGNORMAL = "lognormal"


_NEEDS: Final = {
    DistKind.FIXED: ({"value"}, set()),
    DistKind.UNIFORM: ({"min", "max"}, set()),
    DistKind.EXPONENTIAL: ({"mean"}, {"min", "max"}),
    DistKind.LOGNORMAL: ({"mean", "sigma"}, {"min", "max"}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Dist:
    """A random duration; `draw` gives seconds."""

    __pydantic_config__ = STRICT_KEYS

    dist: DistKind = DistKind.FIXED
    value: Duration | None = None
    min: Duration | None = None
    max: Duration | None = None
    mean: Duration | None = None
    sigma: Annotated[float, Field(gt=0, le=5)] | None = None

    def __post_init__(self) -> None:
        required, optional = _NEEDS[self.dist]
        problems: list[Problem] = []
        for name in ("value", "min", "max", "mean", "sigma"):
            given = getattr(self, name) is not None
            if name in required and not given:
                problems.append(((name,), f"required for a {self.dist} distribution"))
            elif given and name not in required | optional:
                problems.append(((name,), f"not used by a {self.dist} distribution"))
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append((("max",), "must not be less than min"))
        if self.mean is not None and not self.mean:
            problems.append((("mean",), "must be more than 0s"))
        raise_problems(problems)

    @classmethod
    def fixed(cls, seconds: float) -> Dist:
        return cls(value=timedelta(seconds=seconds))

    @classmethod
    def uniform(cls, low: float, high: float) -> Dist:
        return cls(dist=DistKind.UNIFORM, min=timedelta(seconds=low), max=timedelta(seconds=high))

    @classmethod
    def exponential(cls, mean: float) -> Dist:
        return cls(dist=DistKind.EXPONENTIAL, mean=timedelta(seconds=mean))

    @classmethod
    def lognormal(cls, mean: float, sigma: float) -> Dist:
        return cls(dist=DistKind.LOGNORMAL, mean=timedelta(seconds=mean), sigma=sigma)

    def draw(self, rng: RandomSource) -> float:
        """One draw, in seconds."""
        if self.value is not None:
            return self.value.total_seconds()
        low = self.min.total_seconds() if self.min is not None else 0.0
        high = self.max.total_seconds() if self.max is not None else math.inf
        if self.dist is DistKind.UNIFORM:
            return rng.uniform(low, high)
        mean = self.mean.total_seconds() if self.mean is not None else 0.0
        if self.sigma is None:
            seconds = rng.expovariate(1.0 / mean)
        else:
            seconds = rng.lognormvariate(math.log(mean) - self.sigma**2 / 2, self.sigma)
        return min(max(seconds, low), high)

    def expected(self) -> float:
        """The mean in seconds, ignoring any clipping by `min`/`max`."""
        if self.value is not None:
            return self.value.total_seconds()
        if self.mean is not None:
            return self.mean.total_seconds()
        low, high = self.min or timedelta(0), self.max or timedelta(0)
        return (low + high).total_seconds() / 2


def _dist_shorthand(value: object) -> object:
    return value if isinstance(value, dict | Dist) else {"dist": "fixed", "value": value}


DistField = Annotated[Dist, BeforeValidator(_dist_shorthand)]
