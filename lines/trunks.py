"""Trunks, pools of trunks and failover chains: one `Line` interface, composed.

A `TrunkLine` is one trunk: a channel cap, a calls-per-second token bucket and a
`TrunkHealth`. A `TrunkPool` spreads calls over its members by weight; a `FailoverChain`
gives each call to the first of its pools that can carry it. Both offer the same
interface as a trunk, so a pool may hold trunks, pools or chains.

Caps, for every trunk at all times:
- channels in use never exceed `channels` (a take that would is refused);
- over any closed interval of T seconds, at most floor(burst + cps × T) calls are taken,
  with burst = max(1, cps) (the token bucket; exact rational arithmetic, no rounding);
- an OUT trunk gets no call, a PROBING trunk only probe calls (`Seizure.probe`).

The caller keeps a contract: each call taken is released exactly once (`release`) and its
outcome reported exactly once (`report`, with the `probe` flag `take` gave); it calls
`advance` on every tick to collect the health changes time brings. Time is the value `at`
(an aware datetime); a time earlier than one a trunk has seen counts as that one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Protocol

from lines.health import HealthChanged, HealthSettings, TrunkHealth, TrunkState

_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrunkSettings:
    """What the line core needs of a trunk (the integrator maps the config's `Trunk`)."""

    name: str
    channels: int  # concurrent calls
    cps: float  # new calls per second
    tier: str = "standard"  # "premium" or "standard"
    weight: int = 1  # share of calls among the members of one pool

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a trunk needs a name")
        if self.channels < 1 or self.weight < 1:
            raise ValueError(f"trunk {self.name}: channels and weight must be at least 1")
        if not (math.isfinite(self.cps) and self.cps > 0):
            raise ValueError(f"trunk {self.name}: cps must be a positive number")


@dataclass(frozen=True, slots=True, kw_only=True)
class Seizure:
    """A channel taken for one call: the trunk that carries it, and whether it probes."""

    trunk: str
    probe: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TrunkStatus:
    """One row of `dialer lines status`."""

    trunk: str
    tier: str
    state: TrunkState
    calls_in_window: int
    failures_in_window: int
    failure_rate: float
    channels_in_use: int
    channels: int
    back_at: datetime | None  # while OUT: when probing may start


class Line(Protocol):
    """A trunk, a pool of trunks or a failover chain of pools.

    - `take` returns a seizure exactly when `free(at) > 0`; when a trunk of `tier` can
      take a call the seizure is on such a trunk (a preference: any trunk otherwise);
    - `take` never exceeds a trunk's channel or cps cap, never seizes an OUT trunk, and
      seizes a PROBING trunk only for probes;
    - `release` and `report` name the trunk the seizure was on (ValueError if unknown);
    - `trunks` lists each trunk of the line once, in order.
    """

    @property
    def name(self) -> str: ...

    def take(self, at: datetime, *, tier: str | None = None) -> Seizure | None: ...

    def release(self, trunk: str) -> None: ...

    def report(
        self, at: datetime, trunk: str, failed: bool, *, probe: bool = False
    ) -> list[HealthChanged]: ...

    def free(self, at: datetime) -> int: ...

    def trunks(self) -> tuple[TrunkLine, ...]: ...


class TokenBucket:
    """Calls-per-second: `rate` tokens a second, holding at most `burst`; a call takes one.

    It starts full. Over any closed interval [t, t + T] at most floor(burst + rate × T)
    takes succeed: the tokens held at t are at most `burst`, at most rate × T arrive
    during the interval, each take spends a whole token, and tokens never go negative.
    Arithmetic is exact (integers scaled to the rate's fraction per microsecond), so the
    bound holds to the token. A
    time earlier than the latest seen counts as the latest (no refill).
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = Fraction(rate)
        self.burst = Fraction(max(1.0, rate) if burst is None else burst)
        # Integers scaled so one token is `self._one`: the rate becomes a whole number of
        # scaled units per microsecond, so refilling is exact and cheap.
        self._one = self.rate.denominator * 1_000_000
        self._per_microsecond = self.rate.numerator
        self._cap = math.floor(self.burst * self._one)
        self._tokens = self._cap
        self._last: datetime | None = None

    def available(self, at: datetime) -> int:
        """Whole tokens at `at`: how many takes would succeed now."""
        return self._refill(at) // self._one

    def take(self, at: datetime) -> bool:
        """Spend one token at `at`, if there is one."""
        if self._refill(at) < self._one:
            return False
        self._tokens -= self._one
        return True

    def _refill(self, at: datetime) -> int:
        last = self._last
        if last is None:
            self._last = at
        elif at > last:
            elapsed = (at - last) // _MICROSECOND
            self._tokens = min(self._cap, self._tokens + self._per_microsecond * elapsed)
            self._last = at
        return self._tokens


class TrunkLine:
    """One trunk as a `Line`: channels, calls per second and health.

    `free(at)` is the number of takes that would succeed now: 0 unless health admits a
    call, else the least of free channels, whole cps tokens and (PROBING) probe slots.
    """

    def __init__(
        self, settings: TrunkSettings, health_settings: HealthSettings | None = None
    ) -> None:
        self.settings = settings
        self.health = TrunkHealth(settings.name, health_settings)
        self.bucket = TokenBucket(settings.cps)
        self._in_use = 0

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def tier(self) -> str:
        return self.settings.tier

    @property
    def weight(self) -> int:
        return self.settings.weight

    @property
    def in_use(self) -> int:
        return self._in_use

    def free(self, at: datetime) -> int:
        if not self.health.admits(at):
            return 0
        free = min(self.settings.channels - self._in_use, self.bucket.available(at))
        if self.health.state is TrunkState.PROBING:
            free = min(free, self.health.probe_slots)
        return max(0, free)

    def take(self, at: datetime, *, tier: str | None = None) -> Seizure | None:
        """A channel on this trunk (whatever `tier` asks), or None when `free(at)` is 0."""
        if self.free(at) <= 0:
            return None
        probe = self.health.start_call(at)
        self.bucket.take(at)
        self._in_use += 1
        return Seizure(trunk=self.name, probe=probe)

    def release(self, trunk: str) -> None:
        """Give back a channel; ValueError for another trunk or none in use."""
        self._check(trunk)
        if self._in_use == 0:
            raise ValueError(f"trunk {self.name}: release with no channel in use")
        self._in_use -= 1

    def report(
        self, at: datetime, trunk: str, failed: bool, *, probe: bool = False
    ) -> list[HealthChanged]:
        """A call's outcome (`failed`: see `classify_failure`); returns health changes."""
        self._check(trunk)
        return self.health.record(at, failed, probe=probe)

    def advance(self, at: datetime) -> list[HealthChanged]:
        """Health changes due by `at` (cool-offs ending); call on every tick."""
        return self.health.advance(at)

    def trunks(self) -> tuple[TrunkLine, ...]:
        return (self,)

    def status(self, at: datetime) -> tuple[TrunkStatus, ...]:
        """This trunk's row (its state as of the last `advance`, `take` or `report`)."""
        calls, failures = self.health.window_counts(at)
        return (
            TrunkStatus(
                trunk=self.name,
                tier=self.tier,
                state=self.health.state,
                calls_in_window=calls,
                failures_in_window=failures,
                failure_rate=failures / calls if calls else 0.0,
                channels_in_use=self._in_use,
                channels=self.settings.channels,
                back_at=self.health.back_at,
            ),
        )

    def _check(self, trunk: str) -> None:
        if trunk != self.name:
            raise ValueError(f"trunk {self.name} asked about trunk {trunk!r}")


class _Composite:
    """What a pool and a chain share: everything but the choice, done on their trunks."""

    def __init__(self, name: str, members: Sequence[Line]) -> None:
        if not members:
            raise ValueError(f"{name}: needs at least one member")
        leaves = list({id(leaf): leaf for m in members for leaf in m.trunks()}.values())
        names = [leaf.name for leaf in leaves]
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: two different trunks share a name")
        self.name = name
        self.members = tuple(members)
        self._by_name = dict(zip(names, leaves, strict=True))

    def trunks(self) -> tuple[TrunkLine, ...]:
        return tuple(self._by_name.values())

    def free(self, at: datetime) -> int:
        """Takes that would succeed now: the sum over the trunks (each counted once)."""
        return sum(leaf.free(at) for leaf in self._by_name.values())

    def release(self, trunk: str) -> None:
        self._trunk(trunk).release(trunk)

    def report(
        self, at: datetime, trunk: str, failed: bool, *, probe: bool = False
    ) -> list[HealthChanged]:
        return self._trunk(trunk).report(at, trunk, failed, probe=probe)

    def advance(self, at: datetime) -> list[HealthChanged]:
        """Health changes due by `at` on every trunk; call on every tick."""
        return [change for leaf in self._by_name.values() for change in leaf.advance(at)]

    def status(self, at: datetime) -> tuple[TrunkStatus, ...]:
        return tuple(row for leaf in self._by_name.values() for row in leaf.status(at))

    def _trunk(self, trunk: str) -> TrunkLine:
        try:
            return self._by_name[trunk]
        except KeyError:
            raise ValueError(f"{self.name}: no trunk {trunk!r}") from None


def can_take(line: Line, at: datetime, tier: str | None = None) -> bool:
    """Whether `line` has a trunk (of `tier`, when given) that can take a call now."""
    return any(
        leaf.free(at) > 0 and (tier is None or leaf.tier == tier) for leaf in line.trunks()
    )


class TrunkPool(_Composite):
    """Members that share traffic by weight: smooth weighted round-robin.

    A member's weight is the sum of its trunks' weights. Each take considers the members
    that can take a call now (those with a free trunk of the asked tier when there are
    any, else all): each adds its weight to its running score, the highest score (the
    first on a tie) gets the call and gives back the sum of the considered weights. Over
    a run where the same members can take, each gets calls in proportion to its weight,
    evenly interleaved; the choice is deterministic.
    """

    def __init__(self, name: str, members: Sequence[Line]) -> None:
        super().__init__(name, members)
        self._weights = [sum(leaf.weight for leaf in m.trunks()) for m in self.members]
        self._scores = [0] * len(self.members)

    def take(self, at: datetime, *, tier: str | None = None) -> Seizure | None:
        candidates = self._candidates(at, tier)
        if not candidates and tier is not None:
            candidates = self._candidates(at, None)
        if not candidates:
            return None
        total = sum(self._weights[i] for i in candidates)
        for i in candidates:
            self._scores[i] += self._weights[i]
        chosen = max(candidates, key=lambda i: self._scores[i])
        self._scores[chosen] -= total
        return self.members[chosen].take(at, tier=tier)

    def _candidates(self, at: datetime, tier: str | None) -> list[int]:
        return [i for i, member in enumerate(self.members) if can_take(member, at, tier)]


class FailoverChain(_Composite):
    """Pools in order of preference: a call goes to the first that can take it.

    With a tier asked, the first pool with a free trunk of that tier wins, else the first
    that can take any call. A pool whose trunks are all OUT (or full) is skipped, so its
    traffic moves down the chain, and comes back when a trunk of it admits calls again.
    """

    def __init__(self, pools: Sequence[Line], *, name: str = "failover") -> None:
        super().__init__(name, pools)

    def take(self, at: datetime, *, tier: str | None = None) -> Seizure | None:
        for wanted in (tier, None) if tier is not None else (None,):
            for pool in self.members:
                if can_take(pool, at, wanted):
                    return pool.take(at, tier=tier)
        return None
