"""The simulated callees: how numbers fail, who each number is, what a call to it meets.

The schema part (`Signal`, `Failure`, `DEFAULT_SIGNALS`) is the `population` section of a
scenario file, one entry per kind of failed call; `Callees` applies a scenario at run time.

A number's profile (vacant or suspended or live, the way its carrier signals failures, its
time zone) comes from a stable hash of (seed, number), so the same number behaves the
same in every run and after a restart. Each call to a number draws its fate from a
random stream seeded by (seed, number, attempt), so the n-th call to a number goes the
same way whatever else the engine dials, which makes two pacing runs comparable call for
call (common random numbers).
"""

from __future__ import annotations

import enum
import hashlib
import zoneinfo
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Final

from pydantic import BeforeValidator, Field, ValidationInfo

from dialer.config.fields import STRICT_KEYS
from dialer.sim.world import CallRandom, Dist, DistField
from rules.signals import Announcement

if TYPE_CHECKING:
    from dialer.sim.scenario import Scenario


Share = Annotated[float, Field(ge=0, le=1)]


# --- how numbers fail: the scenario schema -------------------------------------------

_QUICK: Final = Dist.uniform(0.2, 1.0)  # a final status straight away
_ANNOUNCED: Final = Dist.uniform(6, 12)  # a recording played to its end
_SHORT_RING: Final = Dist.uniform(2, 8)


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """One way the network reports a failed call: early media maybe, then a final status.

    With an `announcement` the call rings (183), the recording is recognised a moment
    later (`network.early_media_after`), and the final status comes `after` the first ring.
    """

    __pydantic_config__ = STRICT_KEYS

    sip: Annotated[int, Field(ge=300, le=699)]
    q850: Annotated[int, Field(ge=1, le=127)] | None = None
    announcement: Announcement | None = None
    rings: bool = False  # 180 before the final status (always so with an announcement)
    after: DistField = _QUICK  # from the first ring (or from setup) to the final status
    weight: Annotated[float, Field(gt=0)] = 1.0
    reason: str | None = None  # default: the status's reason phrase


def _sig(
    sip: int,
    weight: float,
    *,
    q850: int | None = None,
    announcement: Announcement | None = None,
    rings: bool = False,
    after: Dist | None = None,
) -> Signal:
    after = after or (_QUICK if announcement is None else _ANNOUNCED)
    return Signal(
        sip=sip, q850=q850, announcement=announcement, rings=rings, after=after, weight=weight
    )


_A = Announcement
DEFAULT_SIGNALS: Final[dict[str, tuple[Signal, ...]]] = {
    "vacant": (
        _sig(480, 0.45, announcement=_A.VACANT),
        _sig(487, 0.15, announcement=_A.VACANT),
        _sig(503, 0.10, announcement=_A.VACANT),
        _sig(404, 0.20, q850=1),
        _sig(480, 0.10, q850=1),
    ),
    "suspended": (
        _sig(480, 0.55, announcement=_A.SUSPENDED),
        _sig(487, 0.20, announcement=_A.SUSPENDED),
        _sig(503, 0.10, announcement=_A.SUSPENDED),
        _sig(403, 0.15, q850=21),
    ),
    "powered_off": (
        _sig(480, 0.50, announcement=_A.POWERED_OFF),
        _sig(487, 0.15, announcement=_A.POWERED_OFF),
        _sig(480, 0.25, q850=20),
        _sig(480, 0.10, q850=18),
    ),
    "unreachable": (
        _sig(480, 0.45, announcement=_A.UNREACHABLE),
        _sig(503, 0.15, announcement=_A.UNREACHABLE),
        _sig(480, 0.10, announcement=_A.UNKNOWN),
        _sig(480, 0.15, q850=18),
        _sig(408, 0.15, rings=True, after=Dist.uniform(8, 20)),
    ),
    "busy": (
        _sig(486, 0.60, q850=17),
        _sig(480, 0.30, announcement=_A.BUSY),
        _sig(487, 0.10, announcement=_A.BUSY),
    ),
    "rejected": (
        _sig(603, 0.70, q850=21, rings=True, after=_SHORT_RING),
        _sig(486, 0.30, q850=17, rings=True, after=_SHORT_RING),
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """One kind of failed call: its share of dials and the ways it is signalled."""

    __pydantic_config__ = STRICT_KEYS

    share: Share
    signals: Annotated[tuple[Signal, ...], Field(min_length=1)]


def _fill_failure(value: object, info: ValidationInfo) -> object:
    """`0.05` means `{share: 0.05}`; without `signals`, the kind's built-in signalling."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = {"share": value}
    if isinstance(value, dict) and "signals" not in value and info.field_name in DEFAULT_SIGNALS:
        value = {**value, "signals": DEFAULT_SIGNALS[info.field_name]}
    return value


FailureField = Annotated[Failure, BeforeValidator(_fill_failure)]


# --- callees at run time ---------------------------------------------------------------


class Outcome(enum.StrEnum):
    """What a call really met: the simulation's ground truth, never sent to the engine."""

    VACANT = "vacant"
    SUSPENDED = "suspended"
    POWERED_OFF = "powered_off"
    UNREACHABLE = "unreachable"
    BUSY = "busy"
    REJECTED = "rejected"
    HUMAN = "human"
    MACHINE = "machine"
    NO_ANSWER = "no_answer"
    NO_CHANNEL = "no_channel"  # the trunk had no free channel (or is unknown)
    TRUNK_FAILURE = "trunk_failure"
    SILENT = "silent"  # the trunk "answered" with no media
    SCREENED = "screened"  # would have answered, but not a call from this caller ID


_CALL_KINDS = (Outcome.POWERED_OFF, Outcome.UNREACHABLE, Outcome.BUSY, Outcome.REJECTED)


_MASK: Final = (1 << 64) - 1


def stable_seed(*parts: object, bits: int = 64) -> int:
    """A seed from the parts' text: the same in every process (unlike `hash()`)."""
    text = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=bits // 8).digest(), "big")


def _mix64(z: int) -> int:
    """splitmix64's finaliser: a 64-bit value whose bits all depend on all of `z`'s."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _unit(seed: int) -> float:
    return (seed >> 11) / float(1 << 53)


@dataclass(frozen=True, slots=True)
class CalleeProfile:
    """What a number is, whenever it is called."""

    e164: str
    status: Outcome | None  # VACANT or SUSPENDED for a dead number, None for a live one
    signal_draw: float  # in [0, 1): picks how the carrier signals a failure, per number
    time_zone: str
    stream_seed: int  # the n-th call's random stream comes from this and n


@dataclass(slots=True, eq=False)  # not frozen: one is made per call, and fast
class Fate:
    """How one call goes before anyone acts on it; times in seconds after the dial.

    An answered call (`answer_at`) has no final status here: what follows depends on what
    the engine does. A failed call has `end_at` and its final status. A call with neither
    rings until it is cut off.
    """

    outcome: Outcome
    rng: CallRandom  # the call's own stream, for every later draw
    ring_at: float | None = None
    early_media_at: float | None = None
    announcement: Announcement | None = None
    answer_at: float | None = None
    end_at: float | None = None
    signal: Signal | None = None


class Callees:
    """Profiles and fates of the callees of one scenario and seed."""

    def __init__(self, scenario: Scenario, seed: int, start: datetime | None = None) -> None:
        self._scenario = scenario
        self._seed = seed
        self._start = start or scenario.start  # answer-share changes count from here
        population = scenario.population
        self._dead_shares = (population.vacant.share, population.suspended.share)
        self._live_share = 1.0 - sum(self._dead_shares)
        self._call_failures: tuple[Failure, ...] = tuple(
            getattr(population, kind.value) for kind in _CALL_KINDS
        )
        self._zones_by_prefix = sorted(population.time_zones.items(), key=lambda i: -len(i[0]))
        self._zones: dict[str, zoneinfo.ZoneInfo] = {}
        self._attempts: Counter[str] = Counter()

    def profile(self, e164: str) -> CalleeProfile:
        """The number's stable profile."""
        draw = stable_seed(self._seed, "profile", e164, bits=192)
        status_draw, signal_draw = _unit(draw >> 128), _unit((draw >> 64) & _MASK)
        status = None
        vacant, suspended = self._dead_shares
        if status_draw < vacant:
            status = Outcome.VACANT
        elif status_draw < vacant + suspended:
            status = Outcome.SUSPENDED
        return CalleeProfile(e164, status, signal_draw, self._time_zone(e164), draw & _MASK)

    def attempts(self, e164: str) -> int:
        """How many calls to the number have drawn their fate."""
        return self._attempts[e164]

    def fate(self, e164: str, at: datetime) -> Fate:
        """Draw the fate of the next call to `e164`, dialed at `at`."""
        attempt = self._attempts[e164]
        self._attempts[e164] = attempt + 1
        profile = self.profile(e164)
        # The day is mixed in too: a campaign continued by a new process (whose attempt
        # counts start again) on a later day draws fresh fates, not yesterday's again.
        day = at.astimezone(UTC).date().toordinal()
        rng = CallRandom(_mix64(profile.stream_seed ^ _mix64(attempt + 1) ^ _mix64(day << 20)))
        setup = self._scenario.network.setup_delay.draw(rng)
        outcome = profile.status or self._call_outcome(rng, profile, at)
        if outcome is Outcome.NO_ANSWER:
            return Fate(outcome, rng, ring_at=setup)
        if outcome is Outcome.HUMAN or outcome is Outcome.MACHINE:
            answer_at = setup + self._scenario.population.answer.delay.draw(rng)
            return Fate(outcome, rng, ring_at=setup, answer_at=answer_at)
        failure: Failure = getattr(self._scenario.population, outcome.value)
        return self._failed(outcome, rng, _pick(failure.signals, profile.signal_draw), setup)

    def _call_outcome(self, rng: CallRandom, profile: CalleeProfile, at: datetime) -> Outcome:
        """The outcome of a call to a live number: shares of all dials, rescaled to live ones."""
        draw = rng.random() * self._live_share
        for kind, failure in zip(_CALL_KINDS, self._call_failures, strict=True):
            if draw < failure.share:
                return kind
            draw -= failure.share
        answer = self._scenario.population.answer
        hour = 0 if answer.by_local_hour is None else self._local_hour(profile, at)
        if draw < answer.probability(hour, at - self._start):
            return Outcome.MACHINE if rng.random() < answer.machine_share else Outcome.HUMAN
        return Outcome.NO_ANSWER

    def _failed(self, outcome: Outcome, rng: CallRandom, signal: Signal, setup: float) -> Fate:
        after = signal.after.draw(rng)
        if signal.announcement is None:
            ring_at = setup if signal.rings else None
            return Fate(outcome, rng, ring_at=ring_at, end_at=setup + after, signal=signal)
        heard = setup + self._scenario.network.early_media_after.draw(rng)
        return Fate(
            outcome,
            rng,
            ring_at=setup,
            early_media_at=heard,
            announcement=signal.announcement,
            end_at=max(setup + after, heard),
            signal=signal,
        )

    def _time_zone(self, e164: str) -> str:
        for prefix, zone in self._zones_by_prefix:
            if e164.startswith(prefix):
                return zone
        return self._scenario.population.default_time_zone

    def _local_hour(self, profile: CalleeProfile, at: datetime) -> int:
        zone = self._zones.get(profile.time_zone)
        if zone is None:
            zone = self._zones[profile.time_zone] = zoneinfo.ZoneInfo(profile.time_zone)
        return at.astimezone(zone).hour


def _pick(signals: tuple[Signal, ...], draw: float) -> Signal:
    """The signal whose slice of the weights `draw` (in [0, 1)) falls in."""
    point = draw * sum(signal.weight for signal in signals)
    for signal in signals:
        if point < signal.weight:
            return signal
        point -= signal.weight
    return signals[-1]
