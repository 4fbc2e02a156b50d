"""Value types shared by the config schemas: durations, times of day, names, frozen maps.

Each is an `Annotated` type whose validator turns YAML's plain values into the value the
engine uses (`timedelta`, `datetime.time`, a read-only mapping) and raises a
`PydanticCustomError` whose message says what was expected; the loader adds file, line
and key path. Cross-field checks in the schemas' `__post_init__` report through
`raise_problems`, which can point at any key below the object being checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Annotated, Final, TypeVar

from pydantic import AfterValidator, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

#: The pydantic config every schema dataclass uses: unknown keys are errors.
STRICT_KEYS: Final = ConfigDict(extra="forbid", strict=False)

KeyPath = tuple[str | int, ...]
#: A problem found by a cross-field check: the key path below the checked object, a message.
#: A path ending in `KEY` (as pydantic does) is about the mapping key, not its value.
Problem = tuple[KeyPath, str]
KEY: Final = "[key]"

K = TypeVar("K")
V = TypeVar("V")


def format_path(path: KeyPath) -> str:
    """`('trunks', 2, 'channels')` as `trunks[2].channels`."""
    text = ""
    for part in path:
        if part == KEY:
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def raise_problems(problems: Sequence[Problem]) -> None:
    """Raise one validation error carrying every problem, or nothing if there is none."""
    if problems:
        summary = "; ".join(f"{format_path(path)}: {message}" for path, message in problems)
        raise PydanticCustomError(
            "config_problems", "{summary}", {"summary": summary, "problems": tuple(problems)}
        )


# --- durations -----------------------------------------------------------------------

_DURATION_RE: Final = re.compile(
    r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d{1,6})?)s)?"
)
_MAX_SECONDS: Final = Decimal(999_999_999 * 86400)
_DURATION_HELP: Final = (
    "expected a duration such as '90s', '10m', '2h', '7d' or '1h30m', or a number of seconds"
)


def parse_duration(value: object) -> timedelta:
    """A non-negative duration from `'90s'`, `'1h30m'`, `'7d'`, `90`, `'90'` or `1.5`."""
    seconds: Decimal | None
    if isinstance(value, timedelta):
        seconds = Decimal(value.days * 86400 + value.seconds) + Decimal(value.microseconds) / 10**6
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = _decimal(str(value))
    elif isinstance(value, str):
        seconds = _parse_duration_text(value.replace(" ", ""))
    else:
        seconds = None
    if seconds is None or not seconds.is_finite() or not 0 <= seconds <= _MAX_SECONDS:
        shown = {"shown": show_value(value)}
        raise PydanticCustomError("duration", _DURATION_HELP + ", got {shown}", shown)
    return timedelta(microseconds=int(seconds * 10**6))


def _parse_duration_text(text: str) -> Decimal | None:
    if text and (number := _decimal(text)) is not None:
        return number
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        return None
    days, hours, minutes = (int(match[unit] or 0) for unit in "dhm")
    return Decimal(((days * 24 + hours) * 60 + minutes) * 60) + Decimal(match["s"] or 0)


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def format_duration(value: timedelta) -> str:
    """The canonical text of a duration (`'1d2h3m4.5s'`, `'0s'`); `parse_duration` inverts it."""
    micros = value // timedelta(microseconds=1)
    if micros < 0:
        raise ValueError("durations are never negative")
    seconds, micros = divmod(micros, 10**6)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    text = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    if seconds or micros or not text:
        fraction = f".{micros:06d}".rstrip("0") if micros else ""
        text += f"{seconds}{fraction}s"
    return text


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _parse_cooldown(value: object) -> timedelta | None:
    if value == "forever":
        return None
    if value is None:
        raise PydanticCustomError("duration", "expected a duration or 'forever', got null")
    return parse_duration(value)


#: A duration, or None for `forever`.
Cooldown = Annotated[timedelta | None, BeforeValidator(_parse_cooldown)]


# --- times of day --------------------------------------------------------------------

_TIME_RE: Final = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def parse_time_of_day(value: object) -> time:
    """`'09:00'` as `time(9, 0)`."""
    if isinstance(value, time):
        return value
    match = _TIME_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise PydanticCustomError(
            "time_of_day",
            "expected a time of day 'HH:MM' (00:00-23:59), got {shown}",
            {"shown": show_value(value)},
        )
    return time(int(match[1]), int(match[2]))


TimeOfDay = Annotated[time, BeforeValidator(parse_time_of_day)]


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeRange:
    """A span of the day, `start` inclusive and `end` exclusive; written `'09:00-12:00'`."""

    __pydantic_config__ = STRICT_KEYS

    start: TimeOfDay
    end: TimeOfDay

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise PydanticCustomError(
                "time_range",
                "the range must end after it starts, got '{text}'",
                {"text": str(self)},
            )

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def __contains__(self, moment: time) -> bool:
        return self.start <= moment < self.end


def parse_time_range(value: object) -> object:
    """`'09:00-12:00'` as a `TimeRange`; other values are left for the dataclass schema."""
    if not isinstance(value, str):
        return value
    start, dash, end = value.partition("-")
    if not dash:
        raise PydanticCustomError(
            "time_range",
            "expected a range of times 'HH:MM-HH:MM', got {shown}",
            {"shown": show_value(value)},
        )
    return TimeRange(start=parse_time_of_day(start), end=parse_time_of_day(end))


TimeRangeField = Annotated[TimeRange, BeforeValidator(parse_time_range)]


# --- names and maps ------------------------------------------------------------------

_NAME_RE: Final = re.compile(r"[\w-]{1,64}")


def _check_name(value: str) -> str:
    if _NAME_RE.fullmatch(value) is None:
        raise PydanticCustomError(
            "name",
            "expected a name of 1-64 letters, digits, '-' or '_' (CJK allowed), got {shown}",
            {"shown": show_value(value)},
        )
    return value


#: A name people write and other keys refer to: letters (any script), digits, `-`, `_`.
Name = Annotated[str, AfterValidator(_check_name)]


def _freeze(mapping: Mapping[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(mapping))


#: A mapping that cannot be changed once loaded (keys keep the file's order).
FrozenMap = Annotated[Mapping[K, V], AfterValidator(_freeze)]


def empty_map() -> Mapping[K, V]:
    """A read-only empty mapping, for `field(default_factory=empty_map)`."""
    return MappingProxyType({})


def unique_problems(path: KeyPath, items: Sequence[object], what: str) -> list[Problem]:
    """A problem for each repeat of an item already seen earlier in `items`."""
    seen: set[object] = set()
    problems: list[Problem] = []
    for index, item in enumerate(items):
        if item in seen:
            problems.append(((*path, index), f"{what} {item!r} appears more than once"))
        seen.add(item)
    return problems


def show_value(value: object) -> str:
    """A short, quoted rendering of a value from a file, for error messages."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list" if value else "an empty list"
    return str(value)
