"""Compliance profiles: when a number may be called, how often, and what may follow what.

A profile is data about a law or regulator's rules; `rules/` applies it. The shipped
profiles live in `dialer/profiles/*.yaml` and are found by name (`load_profile("us-tcpa")`);
a campaign may also name its own profile file.

Windows are in the callee's local time. A day with no window is a day without calls; a
profile without `windows` sets no calling hours at all. Caps left out are not capped.
"""

from __future__ import annotations

import difflib
import enum
import functools
import itertools
import os
import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Final

from pydantic import AfterValidator, Field, PositiveInt

from dialer.config.fields import (
    KEY,
    STRICT_KEYS,
    Cooldown,
    Duration,
    FrozenMap,
    Name,
    Problem,
    TimeRange,
    TimeRangeField,
    empty_map,
    raise_problems,
)
from dialer.config.loader import load_yaml, load_yaml_text, parse_data
from dialer.errors import ConfigError
from rules.dispositions import Disposition


class DaySpec(enum.StrEnum):
    """A key of `windows`: one weekday, or a group of them."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"
    WEEKDAYS = "weekdays"  # mon-fri
    WEEKEND = "weekend"  # sat and sun

    @property
    def weekdays(self) -> tuple[int, ...]:
        """The days this key covers, 0 being Monday (as `date.weekday()` counts)."""
        if self is DaySpec.WEEKDAYS:
            return (0, 1, 2, 3, 4)
        if self is DaySpec.WEEKEND:
            return (5, 6)
        return (list(DaySpec).index(self),)


class OptOutScope(enum.StrEnum):
    """Where an opt-out suppresses the number."""

    GLOBAL = "global"  # every campaign
    CAMPAIGN = "campaign"  # the campaign the callee opted out of


class TimezonePolicy(enum.StrEnum):
    """How to apply windows to a number whose time zone is not certain."""

    ALL_ZONES = "all_zones"  # the call must be inside the window in every zone it may be in


def _check_country(value: str) -> str:
    if re.fullmatch(r"[A-Z]{2}", value) is None:
        raise ValueError(f"expected an ISO 3166 alpha-2 country code such as 'CN', got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Holidays:
    """Public holidays, as the `holidays` package knows them for `country`."""

    __pydantic_config__ = STRICT_KEYS

    country: Annotated[str, AfterValidator(_check_country)]
    subdivision: str | None = None
    call_on_holidays: bool = False
    # China moves working days onto weekends around long holidays (调休); they are workdays.
    make_up_workdays_are_workdays: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Caps:
    """Attempts allowed per number; None is no cap."""

    __pydantic_config__ = STRICT_KEYS

    per_day: PositiveInt | None = None  # per calendar day in the callee's time
    per_24_hours: PositiveInt | None = None  # in any rolling 24 hours
    per_30_days: PositiveInt | None = None  # in any rolling 30 days
    min_interval: Duration | None = None  # between two attempts
    unanswered_per_day: PositiveInt | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Abandon:
    """The cap on abandoned calls, and what an abandoned callee must hear."""

    __pydantic_config__ = STRICT_KEYS

    cap: Annotated[float, Field(ge=0, le=1)]  # share of live-answered calls
    window: Duration  # the period the share is measured over
    message_within: Duration | None = None  # an information message starts within this
    #: The estimated share of answers the machine detector hung up on that were people
    #: (Ofcom counts them as abandoned calls); 0 where the regulator does not ask.
    amd_false_positives: Annotated[float, Field(ge=0, le=1)] = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ComplianceProfile:
    """The rules one law or regulator sets for calling a number."""

    __pydantic_config__ = STRICT_KEYS

    name: Name
    source: str  # the law or regulation the values come from
    timezone_policy: TimezonePolicy = TimezonePolicy.ALL_ZONES
    windows: FrozenMap[DaySpec, tuple[TimeRangeField, ...]] | None = None
    holidays: Holidays | None = None
    caps: Caps = field(default_factory=Caps)
    cooldowns: FrozenMap[Disposition, Cooldown] = field(default_factory=empty_map)
    consent_required: bool = False
    abandon: Abandon | None = None
    min_ring: Duration | None = None
    opt_out_scope: OptOutScope = OptOutScope.GLOBAL

    def __post_init__(self) -> None:
        raise_problems(window_problems(self.windows or {}))

    def windows_on(self, weekday: int) -> tuple[TimeRange, ...] | None:
        """The calling windows on a weekday (0 is Monday); None when hours are not limited."""
        if self.windows is None:
            return None
        for spec, ranges in self.windows.items():
            if weekday in spec.weekdays:
                return ranges
        return ()

    def cooldown_after(self, disposition: Disposition) -> timedelta | None:
        """How long a number rests after `disposition`: zero when the profile says nothing,
        None for ever."""
        return self.cooldowns.get(disposition, timedelta(0))


def weekly_hours(windows: FrozenMap[DaySpec, tuple[TimeRange, ...]] | None,
                 ) -> tuple[tuple[tuple[time, time], ...], ...] | None:
    """`windows` as seven days of (start, end) ranges, Monday first (None: any hour)."""
    if windows is None:
        return None
    days: list[tuple[tuple[time, time], ...]] = [()] * 7
    for spec, ranges in windows.items():
        for day in spec.weekdays:
            days[day] = tuple(sorted((r.start, r.end) for r in ranges))
    return tuple(days)


def window_problems(windows: FrozenMap[DaySpec, tuple[TimeRange, ...]],
                    key: str = "windows") -> list[Problem]:
    """Days given twice and overlapping ranges, as problems under `key`."""
    problems: list[Problem] = []
    covered: dict[int, DaySpec] = {}
    for spec, ranges in windows.items():
        for day in spec.weekdays:
            if day in covered:
                message = f"{covered[day].value!r} already gives the hours of {list(DaySpec)[day]}"
                problems.append(((key, spec.value, KEY), message))
            covered[day] = spec
        ordered = sorted(range(len(ranges)), key=lambda i: ranges[i].start)
        for before, after in itertools.pairwise(ordered):
            if ranges[after].start < ranges[before].end:
                message = f"{ranges[after]} overlaps {ranges[before]}"
                problems.append(((key, spec.value, after), message))
    return problems


_PROFILE_SUFFIXES: Final = (".yaml", ".yml")


def is_profile_path(reference: str | os.PathLike[str]) -> bool:
    """True when `reference` names a file rather than a shipped profile."""
    text = os.fspath(reference)
    return (
        not isinstance(reference, str)
        or text.endswith(_PROFILE_SUFFIXES)
        or any(sep in text for sep in ("/", "\\"))
    )


def shipped_profiles() -> tuple[str, ...]:
    """The names of the profiles shipped in `dialer/profiles/`."""
    folder = resources.files("dialer") / "profiles"
    return tuple(
        sorted(
            item.name.removesuffix(".yaml")
            for item in folder.iterdir()
            if item.name.endswith(".yaml")
        )
    )


def load_compliance(path: str | os.PathLike[str]) -> ComplianceProfile:
    """Load and validate one compliance profile file."""
    return load_yaml(path, ComplianceProfile)


def parse_compliance(
    data: object, source_name: str = "<compliance>", *, base_dir: Path | None = None
) -> ComplianceProfile:
    """Validate a compliance profile given as parsed data (a dict)."""
    return parse_data(data, ComplianceProfile, source_name, base_dir=base_dir)


def load_profile(name_or_path: str | os.PathLike[str]) -> ComplianceProfile:
    """A shipped profile by name (`"cn-marketing"`), or a profile file by path."""
    if is_profile_path(name_or_path):
        return load_compliance(name_or_path)
    return _load_shipped(os.fspath(name_or_path))


@functools.cache
def _load_shipped(name: str) -> ComplianceProfile:
    known = shipped_profiles()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown compliance profile {name!r}{hint} (shipped profiles: {', '.join(known)};"
            " or give the path of a profile file)"
        )
    resource = resources.files("dialer") / "profiles" / f"{name}.yaml"
    source_name = f"profiles/{name}.yaml"
    profile = load_yaml_text(resource.read_text("utf-8"), ComplianceProfile, source_name)
    if profile.name != name:
        raise ConfigError(f"{source_name}: name: expected {name!r}, got {profile.name!r}")
    return profile
