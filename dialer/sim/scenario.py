"""The simulated world's settings: callees, network, trunks, agents; loaded from YAML.

Every share is a share of all dials (a 0.25 answer share: a quarter of the calls placed
are answered); whatever no outcome claims rings out unanswered. `vacant` and `suspended`
belong to a number (the same number is vacant on every call); the others are drawn per
call. Random durations are `Dist`s (see `dialer.sim.world`): `5s`, or
`{dist: uniform, min: 5s, max: 20s}`, `{dist: exponential, mean: 90s}`, ...
"""

from __future__ import annotations

import os
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime, Field, PositiveInt
from pydantic_core import PydanticCustomError

from dialer.config.fields import (
    STRICT_KEYS,
    Duration,
    FrozenMap,
    Name,
    empty_map,
    raise_problems,
    show_value,
    unique_problems,
)
from dialer.config.loader import load_yaml, parse_data
from dialer.sim.population import DEFAULT_SIGNALS, Failure, FailureField, Share, Signal
from dialer.sim.world import Dist, DistField

#: Relative answer rate by the callee's local hour (1.0 = `answer.share`), mainland China.
CN_HOURLY: Final = (
    0.15, 0.1, 0.1, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.0, 1.0, 1.0,
    0.8, 0.85, 1.0, 1.0, 1.0, 0.95, 0.9, 1.05, 1.05, 0.9, 0.6, 0.3,
)  # fmt: skip


_ANSWER_DELAY: Final = Dist.lognormal(8, 0.5)
_PATIENCE: Final = Dist.uniform(3, 8)
_MACHINE_HANGS_UP: Final = Dist.uniform(20, 40)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareChange:
    """From `after` into the simulation on, the answer share is `share` (a list going
    stale, a campaign reaching a colder segment)."""

    __pydantic_config__ = STRICT_KEYS

    after: Duration
    share: Share


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """Who answers, when, and what a person does when nobody speaks."""

    __pydantic_config__ = STRICT_KEYS

    share: Share = 0.25  # at an hour whose factor is 1.0
    by_local_hour: Annotated[tuple[float, ...], Field(min_length=24, max_length=24)] | None = (
        CN_HOURLY
    )
    delay: DistField = _ANSWER_DELAY  # first ring to answer
    machine_share: Share = 0.10  # of answers: voicemail and carrier "secretary" services
    patience: DistField = _PATIENCE  # a person hearing silence hangs up after
    machine_hangs_up: DistField = _MACHINE_HANGS_UP  # after answering, if left alone
    changes: tuple[ShareChange, ...] = ()  # in time order

    def __post_init__(self) -> None:
        if self.by_local_hour and min(self.by_local_hour) < 0:
            raise_problems([(("by_local_hour",), "factors must not be negative")])
        times = [change.after for change in self.changes]
        if times != sorted(times):
            raise_problems([(("changes",), "changes must be in time order")])

    def share_after(self, elapsed: timedelta) -> float:
        """The answer share `elapsed` into the simulation."""
        share = self.share
        for change in self.changes:
            if elapsed < change.after:
                break
            share = change.share
        return share

    def probability(self, local_hour: int, elapsed: timedelta = timedelta(0)) -> float:
        factor = 1.0 if self.by_local_hour is None else self.by_local_hour[local_hour]
        return self.share_after(elapsed) * factor


def _check_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "zone",
            "expected a time zone such as 'Asia/Shanghai', got {shown}",
            {"shown": show_value(value)},
        ) from None
    return value


Zone = Annotated[str, AfterValidator(_check_zone)]
Prefix = Annotated[str, Field(pattern=r"^\+\d{1,15}$")]


_CN_ZONES: Final = MappingProxyType({"+86": "Asia/Shanghai"})


def _failure(kind: str, share: float) -> Failure:
    return Failure(share=share, signals=DEFAULT_SIGNALS[kind])


_VACANT: Final = _failure("vacant", 0.07)
_SUSPENDED: Final = _failure("suspended", 0.03)
_POWERED_OFF: Final = _failure("powered_off", 0.06)
_UNREACHABLE: Final = _failure("unreachable", 0.03)
_BUSY: Final = _failure("busy", 0.04)
_REJECTED: Final = _failure("rejected", 0.03)


@dataclass(frozen=True, slots=True, kw_only=True)
class Population:
    """The callees: how numbers fail, how people answer, where they live."""

    __pydantic_config__ = STRICT_KEYS

    vacant: FailureField = _VACANT  # numbers never allocated
    suspended: FailureField = _SUSPENDED  # numbers cut off (停机)
    powered_off: FailureField = _POWERED_OFF
    unreachable: FailureField = _UNREACHABLE  # no signal, not in service area
    busy: FailureField = _BUSY
    rejected: FailureField = _REJECTED  # the callee declines after a ring
    answer: Answer = field(default_factory=Answer)
    time_zones: FrozenMap[Prefix, Zone] = field(default_factory=lambda: _CN_ZONES)  # by prefix
    default_time_zone: Zone = "Asia/Shanghai"

    def __post_init__(self) -> None:
        answer = self.answer
        shares = [answer.share, *(change.share for change in answer.changes)]
        top = max(shares) * max(answer.by_local_hour or (1.0,))
        total = sum(failure.share for _, failure in self.failures()) + top
        if total > 1 + 1e-9:
            message = f"the shares and the top hourly answer share add up to {total:.4g} > 1"
            raise_problems([((), message)])

    def failures(self) -> tuple[tuple[str, Failure], ...]:
        """(kind, failure) for every kind of failed call, numbers' own kinds first."""
        kinds = ("vacant", "suspended", "powered_off", "unreachable", "busy", "rejected")
        return tuple((kind, getattr(self, kind)) for kind in kinds)


_SETUP_DELAY: Final = Dist.uniform(0.5, 2.5)
_EARLY_MEDIA_AFTER: Final = Dist.uniform(1, 3)
_ABANDON_MESSAGE: Final = Dist.fixed(5)


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    __pydantic_config__ = STRICT_KEYS

    setup_delay: DistField = _SETUP_DELAY  # dial to first ring or final status
    early_media_after: DistField = _EARLY_MEDIA_AFTER  # first ring to announcement recognised
    no_answer_timeout: Duration | None = timedelta(seconds=60)  # then 480; null: rings on
    abandon_message: DistField = _ABANDON_MESSAGE  # `play_abandon_message`, then we hang up


_HUMAN_AFTER: Final = Dist.uniform(1, 2)
_MACHINE_AFTER: Final = Dist.uniform(2.5, 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class Amd:
    """When answering-machine detection decides, after the answer."""

    __pydantic_config__ = STRICT_KEYS

    human_after: DistField = _HUMAN_AFTER
    machine_after: DistField = _MACHINE_AFTER
    unsure_share: Share = 0.0  # of answers classified UNSURE instead of the truth


_SCRIPT_LENGTH: Final = Dist.uniform(20, 40)
_WAIT_AFTER_ACT: Final = Dist.fixed(15)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptReactions:
    """What a person does with a robot script; `hang_up` takes the share that is left."""

    __pydantic_config__ = STRICT_KEYS

    length: DistField = _SCRIPT_LENGTH  # the script played to its end
    completed: Share = 0.45  # listens to the end
    opt_out: Share = 0.05  # says stop / 别再打了
    agent: Share = 0.05  # asks for a person
    key: Share = 0.10  # presses `digit`
    digit: Annotated[str, Field(pattern=r"^[0-9*#]$")] = "1"
    wait_after_act: DistField = _WAIT_AFTER_ACT  # then hangs up if we do nothing

    def __post_init__(self) -> None:
        total = self.completed + self.opt_out + self.agent + self.key
        if total > 1 + 1e-9:
            raise_problems([((), f"the reaction shares add up to {total:.4g} > 1")])


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureWindow:
    """From `start` to `end` after the simulation starts, calls fail at `rate`."""

    __pydantic_config__ = STRICT_KEYS

    start: Duration
    end: Duration
    rate: Share = 1.0

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise_problems([(("end",), "must be after start")])


_FAILURE_DELAY: Final = Dist.uniform(0.1, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimTrunk:
    __pydantic_config__ = STRICT_KEYS

    name: Name
    channels: PositiveInt | None = None  # null: unlimited
    failure_rate: Share = 0.0
    failure_code: Annotated[int, Field(ge=400, le=699)] = 503
    failure_delay: DistField = _FAILURE_DELAY
    failure_windows: tuple[FailureWindow, ...] = ()
    #: Calls "answered" with no media (a broken media path), in all or in windows.
    silent_rate: Share = 0.0
    silent_windows: tuple[FailureWindow, ...] = ()

    def failure_rate_at(self, elapsed: timedelta) -> float:
        return _rate_at(self.failure_windows, self.failure_rate, elapsed)

    def silent_rate_at(self, elapsed: timedelta) -> float:
        return _rate_at(self.silent_windows, self.silent_rate, elapsed)


def _rate_at(windows: tuple[FailureWindow, ...], otherwise: float, elapsed: timedelta) -> float:
    for window in windows:
        if window.start <= elapsed < window.end:
            return window.rate
    return otherwise


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdEffects:
    """How the number shown changes who answers (spam-marking apps, local presence).

    Each call a caller ID places beyond `tolerated_per_day` in one simulated day is marked
    as spam by its callee with `mark_chance`; each mark makes callees who would have
    answered let it ring with `loss_per_mark` more probability (never below `floor` of
    the answers left). A caller ID outside the callee's area (another city; by the
    phonenumbers geocoder: `lines.callerid_locality`) keeps `nonlocal_factor` of the
    answers.
    """

    __pydantic_config__ = STRICT_KEYS

    tolerated_per_day: PositiveInt = 30
    mark_chance: Share = 0.0
    loss_per_mark: Share = 0.02
    floor: Share = 0.3
    nonlocal_factor: Share = 1.0
    #: A marking service reports each caller ID's marks to the dialer every morning.
    reported: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Break:
    """A pause for every agent `at` into the simulation, each starting within `spread`."""

    __pydantic_config__ = STRICT_KEYS

    at: Duration
    length: Duration
    reason: str = "break"
    spread: Duration = timedelta(0)
    share: Share = 1.0  # of the team (the first agents by id) take this break
    log_out: bool = False  # they log out for it (lunch) and back in after, not pause


_WRAP_UP: Final = Dist.fixed(10)
_PREVIEW_TIME: Final = Dist.fixed(5)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentTeam:
    __pydantic_config__ = STRICT_KEYS

    count: Annotated[int, Field(ge=0, le=10_000)] = 10
    id_prefix: str = "agent-"
    shift_start: Duration = timedelta(0)  # after the simulation starts
    shift_end: Duration | None = timedelta(hours=8)  # null: never log out
    wrap_up: DistField = _WRAP_UP
    breaks: tuple[Break, ...] = ()
    preview_time: DistField = _PREVIEW_TIME  # preview mode: reading a lead before dialing
    #: Share of an agent's calls whose callee asks not to be called again (recorded in
    #: the wrap-up).
    opt_out_share: Annotated[float, Field(ge=0, le=1)] = 0.0

    def __post_init__(self) -> None:
        if self.shift_end is not None and self.shift_end <= self.shift_start:
            raise_problems([(("shift_end",), "must be after shift_start")])


_CN_MORNING: Final = datetime(2024, 6, 3, 9, tzinfo=timezone(timedelta(hours=8)))


_TALK_TIME: Final = Dist.lognormal(75, 0.7)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A whole simulated world. Defaults: a Chinese e-commerce list on a weekday morning."""

    __pydantic_config__ = STRICT_KEYS

    start: AwareDatetime = _CN_MORNING
    population: Population = field(default_factory=Population)
    network: Network = field(default_factory=Network)
    amd: Amd = field(default_factory=Amd)
    talk_time: DistField = _TALK_TIME  # with an agent
    script: ScriptReactions = field(default_factory=ScriptReactions)
    scripts: FrozenMap[Name, ScriptReactions] = field(default_factory=empty_map)  # by name
    trunks: tuple[SimTrunk, ...] = ()  # none: any trunk name, unlimited channels
    caller_ids: CallerIdEffects = field(default_factory=CallerIdEffects)
    agents: AgentTeam = field(default_factory=AgentTeam)

    def __post_init__(self) -> None:
        names = [trunk.name for trunk in self.trunks]
        problems = [
            ((*path, "name"), m) for path, m in unique_problems(("trunks",), names, "trunk")
        ]
        raise_problems(problems)

    def reactions(self, script: str) -> ScriptReactions:
        """How callees react to the script called `script`."""
        return self.scripts.get(script, self.script)


def default_scenario() -> Scenario:
    """The built-in scenario (what `examples/scenarios/cn-ecommerce.yaml` spells out)."""
    return Scenario()


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario file (`ConfigError` with file:line when invalid)."""
    return load_yaml(path, Scenario)


def parse_scenario(data: object, source_name: str = "<scenario>") -> Scenario:
    return parse_data(data, Scenario, source_name)


def flat_scenario(
    *,
    answer: float,
    fast_failure: float,
    talk_mean: float,
    wrap_up: float,
    agents: int = 10,
    answer_delay: tuple[float, float] = (5.0, 20.0),
    failure_after: float = 5.0,
    patience: float = 2.0,
) -> Scenario:
    """The pacing benchmark's world, in seconds and shares of all dials.

    Each dial is answered by a person with probability `answer`, uniformly `answer_delay`
    after the dial; else it fails fast with probability `fast_failure` (486, released
    `failure_after` the dial); else it rings until the engine's ring timeout. Talk time is
    exponential with mean `talk_mean`, wrap-up is `wrap_up` fixed, a person waits
    `patience` for someone to speak. No machines, no hourly curve, no setup delay; AMD
    decides at the answer; agents never log out.
    """
    failures = {
        kind: Failure(share=0, signals=signals) for kind, signals in DEFAULT_SIGNALS.items()
    }
    busy = Signal(sip=486, q850=17, after=Dist.fixed(failure_after))
    answers = Answer(
        share=answer,
        by_local_hour=None,
        delay=Dist.uniform(*answer_delay),
        machine_share=0,
        patience=Dist.fixed(patience),
    )
    population = Population(
        vacant=failures["vacant"],
        suspended=failures["suspended"],
        powered_off=failures["powered_off"],
        unreachable=failures["unreachable"],
        busy=Failure(share=fast_failure, signals=(busy,)),
        rejected=failures["rejected"],
        answer=answers,
    )
    return Scenario(
        population=population,
        network=Network(setup_delay=Dist.fixed(0), no_answer_timeout=None),
        amd=Amd(human_after=Dist.fixed(0), machine_after=Dist.fixed(0)),
        talk_time=Dist.exponential(talk_mean),
        agents=AgentTeam(count=agents, shift_end=None, wrap_up=Dist.fixed(wrap_up)),
    )
