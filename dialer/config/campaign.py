"""Campaigns: who to call, how to dial, under which rules, over which lines, saying what.

A campaign file may name its compliance profile (a shipped profile's name or a profile
file), its line pools and its script by a path relative to the campaign file, or give
them inline. `load_campaign` loads every referenced file too and fails as a whole when
any of them is invalid; the error names the referenced file and its own problems.
"""

from __future__ import annotations

import enum
import os
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from dialer.config.compliance import (
    ComplianceProfile,
    DaySpec,
    is_profile_path,
    load_profile,
    window_problems,
)
from dialer.config.fields import (
    STRICT_KEYS,
    Duration,
    FrozenMap,
    Name,
    Problem,
    TimeRangeField,
    empty_map,
    raise_problems,
    show_value,
)
from dialer.config.lines import CallerIdPool, LinePools, SipUri, Tier, load_lines
from dialer.config.loader import base_dir_of, load_yaml, parse_data
from dialer.config.script import Script, load_script
from dialer.errors import ConfigError
from rules.dispositions import Disposition
from rules.phone import DEFAULT_ALLOWED_TYPES, NumberType
from rules.segments import Condition, condition_of, condition_problems

T = TypeVar("T")


class Purpose(enum.StrEnum):
    """Why the campaign calls; compliance rules differ by purpose."""

    MARKETING = "marketing"
    SERVICE = "service"  # notifications, reminders, cart recovery for consenting customers
    COLLECTIONS = "collections"


class DialMode(enum.StrEnum):
    """How calls are placed and who takes them."""

    PREVIEW = "preview"  # an agent sees the lead first and starts the call
    PROGRESSIVE = "progressive"  # one call per free agent
    PREDICTIVE = "predictive"  # more calls than free agents, paced by the answer rate
    ROBOCALL = "robocall"  # a script takes every answered call


def _region(value: object) -> str:
    code = value.upper() if isinstance(value, str) else value
    if not isinstance(code, str) or code not in phonenumbers.SUPPORTED_REGIONS:
        raise PydanticCustomError(
            "region",
            "expected a region code phonenumbers knows, such as 'CN' or 'US', got {shown}",
            {"shown": show_value(value)},
        )
    return str(code)


def _number_types(value: object) -> object:
    if isinstance(value, list | tuple) and NumberType.UNKNOWN.value in value:
        raise PydanticCustomError("number_type", "'unknown' is not a type of number one may dial")
    return value


Region = Annotated[str, BeforeValidator(_region)]


def _load_reference(reference: str, info: ValidationInfo, load: Callable[[Path], T]) -> T:
    """Load the file a campaign refers to, relative to the campaign file's folder."""
    base_dir = base_dir_of(info)
    if base_dir is None:
        raise PydanticCustomError(
            "reference",
            "'{reference}' refers to a file, but these settings did not come from a"
            " file to find it beside; give the settings inline",
            {"reference": reference},
        )
    return _loaded(reference, lambda: load(base_dir / reference))


def _loaded(reference: str, load: Callable[[], T]) -> T:
    try:
        return load()
    except ConfigError as exc:
        detail = textwrap.indent(str(exc), "    ")
        raise PydanticCustomError(
            "reference",
            "'{reference}' is invalid:\n{detail}",
            {"reference": reference, "detail": detail},
        ) from None


def _compliance(value: object, info: ValidationInfo) -> object:
    if not isinstance(value, str):
        return value
    if is_profile_path(value):
        return _load_reference(value, info, load_profile)
    try:
        return load_profile(value)
    except ConfigError as exc:
        raise PydanticCustomError("reference", "{detail}", {"detail": str(exc)}) from None


def _lines(value: object, info: ValidationInfo) -> object:
    return _load_reference(value, info, load_lines) if isinstance(value, str) else value


def _script(value: object, info: ValidationInfo) -> object:
    return _load_reference(value, info, load_script) if isinstance(value, str) else value


def _leads_file(value: object, info: ValidationInfo) -> object:
    base_dir = base_dir_of(info)
    if isinstance(value, str) and base_dir is not None and not Path(value).is_absolute():
        return base_dir / value
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Leads:
    """Where the campaign's leads come from."""

    __pydantic_config__ = STRICT_KEYS

    file: Annotated[Path, BeforeValidator(_leads_file)] | None = None  # CSV or Excel
    source: str | None = None  # the vendor or system that supplies them
    column: str | None = None  # the phone column, when it cannot be guessed


@dataclass(frozen=True, slots=True, kw_only=True)
class Then:
    """What a segment's leads get."""

    __pydantic_config__ = STRICT_KEYS

    priority: int = 0  # higher is dialed first
    tier: Tier | None = None  # lines of this tier first (premium lines for valuable leads)
    script: Annotated[Script, BeforeValidator(_script)] | None = None  # else the campaign's
    caller_ids: CallerIdPool | None = None  # the caller-ID sub-pool


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentConfig:
    """One segment: `when` (conditions over lead columns and history, see
    `rules.segments`), `then` (priority, tier, script, caller-ID pool)."""

    __pydantic_config__ = STRICT_KEYS

    name: Name
    when: FrozenMap[str, object] = field(default_factory=empty_map)
    then: Then = field(default_factory=Then)

    def __post_init__(self) -> None:
        raise_problems(condition_problems(self.when))

    def conditions(self) -> tuple[Condition, ...]:
        return tuple(condition_of(name, spec) for name, spec in self.when.items())


PACER_PATTERN = (r"^(predictive|progressive|vicidial-adapt(:hard|:average)?"
                 r"|ratio:([1-9][0-9]*)(\.[0-9]+)?)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial:
    """How calls are placed."""

    __pydantic_config__ = STRICT_KEYS

    mode: DialMode = DialMode.PROGRESSIVE
    max_attempts: PositiveInt = 3  # per lead
    ring_timeout: Duration = timedelta(seconds=25)
    abandon_after: Duration = timedelta(seconds=2)  # answered with nobody to take it
    max_concurrent: PositiveInt | None = None  # calls at once; required for robocall
    abandon_rate_target: Annotated[float, Field(gt=0, le=0.03)] = 0.03
    #: predictive mode's pacer: predictive, progressive, ratio:<L>, vicidial-adapt[:average]
    pacer: Annotated[str, Field(pattern=PACER_PATTERN)] = "predictive"
    max_lines_per_agent: Annotated[float, Field(ge=1, le=20)] = 3.0  # calls dialing per agent


class Telephony(enum.StrEnum):
    """Where a campaign's calls go."""

    SIMULATED = "simulated"  # the simulated network, in simulated time (the default)
    SIP = "sip"  # real SIP calls over the campaign's trunks, in real time


@dataclass(frozen=True, slots=True, kw_only=True)
class Agents:
    """The agents who take calls. On the simulated network `count`, `talk_time` and
    `wrap_up` drive the simulation; over SIP each agent is a softphone reached by its SIP
    URI, and `wrap_up` is the after-call time before the agent is offered the next call."""

    __pydantic_config__ = STRICT_KEYS

    count: NonNegativeInt = 0
    talk_time: Duration | None = None  # mean talk time of a call
    wrap_up: Duration | None = None  # mean after-call work
    softphones: FrozenMap[Name, SipUri] = field(default_factory=empty_map)  # agent id: URI

    def __post_init__(self) -> None:
        if self.softphones and self.count and self.count != len(self.softphones):
            raise_problems([(("count",), f"is {self.count} but {len(self.softphones)} "
                             "softphones are listed; give one or make them agree")])

    @property
    def team_size(self) -> int:
        """How many agents take calls: one per softphone, else `count`."""
        return len(self.softphones) or self.count


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryRule:
    """When to call again after a disposition: after a delay, within a range, or never."""

    __pydantic_config__ = STRICT_KEYS

    after: Duration | None = None
    after_min: Duration | None = None
    after_max: Duration | None = None
    dead: bool = False  # never call this lead again

    def __post_init__(self) -> None:
        low, high = self.after_min, self.after_max
        ranged = low is not None or high is not None
        problems: list[Problem] = []
        if sum((self.after is not None, ranged, self.dead)) != 1:
            message = "give one of 'after', 'after_min' with 'after_max', or 'dead: true'"
            problems.append(((), message))
        elif ranged and (low is None or high is None):
            problems.append(((), "'after_min' and 'after_max' go together"))
        elif low is not None and high is not None and low > high:
            problems.append((("after_max",), "must not be less than after_min"))
        raise_problems(problems)


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected an IANA time zone such as 'Asia/Shanghai', got {value!r}"
                         ) from None
    return value


Zone = Annotated[str, AfterValidator(_check_zone)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """When `dialer serve` runs the campaign: it starts at each window's start, pauses at
    its end (calls up finish) and resumes at the next; a service started inside a window
    starts at once. Times are in `timezone` (the deployment's, not the callee's: the
    compliance windows in the callee's time still apply within)."""

    __pydantic_config__ = STRICT_KEYS

    timezone: Zone = "Asia/Shanghai"
    windows: FrozenMap[DaySpec, tuple[TimeRangeField, ...]]

    def __post_init__(self) -> None:
        problems = window_problems(self.windows, "windows")
        if not self.windows:
            problems.append((("windows",), "give at least one day with a time range"))
        raise_problems(problems)


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerRule:
    """A lead made by an event (`POST .../triggers/<event>`): called `delay` after the
    event (a cart-recovery call two hours after the cart was left)."""

    __pydantic_config__ = STRICT_KEYS

    delay: Duration = timedelta(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Campaign:
    """One campaign, with its compliance profile, lines and script loaded."""

    __pydantic_config__ = STRICT_KEYS

    name: Name
    description: str = ""
    purpose: Purpose = Purpose.MARKETING
    region: Region = "CN"  # default region for numbers written without a country code
    allowed_number_types: Annotated[
        frozenset[NumberType], BeforeValidator(_number_types), Field(min_length=1)
    ] = DEFAULT_ALLOWED_TYPES
    leads: Leads | None = None
    dial: Dial = field(default_factory=Dial)
    agents: Agents = field(default_factory=Agents)
    compliance: Annotated[ComplianceProfile, BeforeValidator(_compliance)]
    #: The campaign's own calling hours in the callee's time, within the profile's.
    calling_hours: FrozenMap[DaySpec, tuple[TimeRangeField, ...]] | None = None
    #: Leads in the first segment whose `when` holds get its `then` (`rules.segments`).
    segments: tuple[SegmentConfig, ...] = ()
    retired_scripts: tuple[str, ...] = ()  # segments naming these use the campaign's script
    stopped_sources: tuple[str, ...] = ()  # leads of these list sources are not dialed
    telephony: Telephony = Telephony.SIMULATED
    lines: Annotated[LinePools, BeforeValidator(_lines)] | None = None
    script: Annotated[Script, BeforeValidator(_script)] | None = None
    retry: FrozenMap[Disposition, RetryRule] = field(default_factory=empty_map)
    schedule: Schedule | None = None  # `dialer serve`: when to dial (None: when started)
    triggers: FrozenMap[Name, TriggerRule] = field(default_factory=empty_map)  # event: rule

    def __post_init__(self) -> None:
        problems: list[Problem] = window_problems(self.calling_hours or {}, "calling_hours")
        names = [segment.name for segment in self.segments]
        problems += [(("segments", i, "name"), f"segment {name!r} is named twice")
                     for i, name in enumerate(names) if name in names[:i]]
        if self.purpose is Purpose.MARKETING:
            problems += [(("segments", i, "then", "caller_ids"),
                          "a service caller ID is never used for marketing calls")
                         for i, s in enumerate(self.segments)
                         if s.then.caller_ids is CallerIdPool.SERVICE]
        if self.telephony is Telephony.SIP:
            if self.lines is None:
                problems.append((("lines",), "required when telephony is 'sip': the trunks "
                                 "the calls go out on"))
            if self.dial.mode is not DialMode.ROBOCALL and not self.agents.softphones:
                problems.append((("agents", "softphones"), "required when telephony is 'sip' "
                                 f"and dial.mode is {self.dial.mode.value!r}: the SIP URI "
                                 "of each agent's softphone"))
        if self.dial.mode is DialMode.ROBOCALL:
            required = "required when dial.mode is 'robocall'"
            if self.script is None:
                problems.append((("script",), required))
            if self.dial.max_concurrent is None:
                problems.append((("dial", "max_concurrent"), required))
        raise_problems(problems)


_CAMPAIGN_SOURCE: Final = "<campaign>"


def load_campaign(path: str | os.PathLike[str]) -> Campaign:
    """Load a campaign file and every file it refers to; all valid, or ConfigError."""
    return load_yaml(path, Campaign)


def parse_campaign(
    data: Mapping[str, object], source_name: str = _CAMPAIGN_SOURCE, *, base_dir: Path | None = None
) -> Campaign:
    """Validate a campaign given as parsed data; file references need `base_dir`."""
    return parse_data(data, Campaign, source_name, base_dir=base_dir)
