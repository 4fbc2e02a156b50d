"""The SIP softphone test harness's configuration: which virtual phone answers which number.

    listen: 127.0.0.1:5080        # where the dialer's trunk points
    workers: 4                    # phone processes (a few calls each)
    seed: 1                       # weighted choices are stable per number and seed
    phones:                       # named behaviours (a kind and its settings)
      shop-customer: {kind: person, ring: 3s, talk: 4s-8s, keys: "1"}
      空号: {kind: announcement, text: "您拨打的号码是空号", announcement: vacant}
    numbers:                      # by the called number (E.164 digits; a trailing * is a prefix)
      "+8613800138000": busy
      "+86138001381*": 空号
    weights: {shop-customer: 3, busy: 1, ring_forever: 1}   # every other number

Every kind can be named directly without a `phones` entry, with its defaults. What each
kind does and which disposition a dialer should conclude from it is in `PhoneKind`.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator, Field, PositiveInt, ValidationInfo
from pydantic_core import PydanticCustomError

from dialer.config.fields import (
    STRICT_KEYS,
    Duration,
    FrozenMap,
    Problem,
    empty_map,
    parse_duration,
    raise_problems,
    show_value,
)
from dialer.config.loader import base_dir_of, load_yaml, parse_data
from rules.dispositions import PERSON_ANSWERED, Disposition
from rules.signals import Announcement


class PhoneKind(enum.StrEnum):
    """What a virtual phone does with a call, and what a dialer should make of it."""

    PERSON = "person"  # rings, answers, says `text` ("hello?"), presses `keys`, hangs up
    BUSY = "busy"  # 486 Busy Here
    REJECT = "reject"  # the callee declines: 603
    VACANT = "vacant"  # 404 Not Found, with Q.850 cause 1
    ANNOUNCEMENT = "announcement"  # 183, the carrier's recording, then `status` (404)
    SIT = "sit"  # 183, its meaning's tone (a SIT or the busy tone), `text` if given, `status`
    RING_FOREVER = "ring_forever"  # 180 until the dialer gives up
    VOICEMAIL = "voicemail"  # answers, plays a greeting and a beep, listens
    AGENT = "agent"  # a dialer's agent: answers at once, talks `talk`, hangs up


#: What a dialer should conclude from each kind (a person: any person-answered outcome).
EXPECTED: Final[dict[PhoneKind, frozenset[Disposition]]] = {
    PhoneKind.PERSON: PERSON_ANSWERED,
    PhoneKind.BUSY: frozenset({Disposition.BUSY}),
    PhoneKind.REJECT: frozenset({Disposition.REJECTED}),
    PhoneKind.VACANT: frozenset({Disposition.VACANT}),
    PhoneKind.RING_FOREVER: frozenset({Disposition.NO_ANSWER}),
    PhoneKind.VOICEMAIL: frozenset({Disposition.ANSWERED_MACHINE}),
    PhoneKind.AGENT: PERSON_ANSWERED,
}
_BY_ANNOUNCEMENT: Final = {
    Announcement.VACANT: Disposition.VACANT, Announcement.SUSPENDED: Disposition.SUSPENDED,
    Announcement.POWERED_OFF: Disposition.POWERED_OFF,
    Announcement.UNREACHABLE: Disposition.UNREACHABLE, Announcement.BUSY: Disposition.BUSY,
}
_DEFAULT_STATUS: Final = {PhoneKind.BUSY: 486, PhoneKind.REJECT: 603, PhoneKind.VACANT: 404,
                          PhoneKind.ANNOUNCEMENT: 404, PhoneKind.SIT: 404}
_DEFAULT_RING: Final = {PhoneKind.AGENT: timedelta(0), PhoneKind.BUSY: timedelta(0),
                        PhoneKind.VACANT: timedelta(0)}


@dataclass(frozen=True, slots=True)
class TalkTime:
    """A fixed time, or a range drawn uniformly per call ('4s-8s')."""

    low: timedelta
    high: timedelta

    def draw(self, unit: float) -> float:
        """Seconds, for a draw `unit` in [0, 1)."""
        low, high = self.low.total_seconds(), self.high.total_seconds()
        return low + (high - low) * unit


def _talk_time(value: object) -> TalkTime:
    if isinstance(value, str) and "-" in value:
        low, _, high = value.partition("-")
        talk = TalkTime(parse_duration(low.strip()), parse_duration(high.strip()))
        if talk.low > talk.high:
            raise PydanticCustomError("talk_range", "the range's low end is above its high end")
        return talk
    fixed = parse_duration(value)
    return TalkTime(fixed, fixed)


def _beside(value: object, info: ValidationInfo) -> object:
    base_dir = base_dir_of(info)
    if isinstance(value, str) and base_dir is not None and not Path(value).is_absolute():
        return base_dir / value
    return value


def _check_status(value: int) -> int:
    if not 300 <= value <= 699:
        raise PydanticCustomError("sip_status", "expected a final failure status 300-699")
    return value


def _check_keys(value: str) -> str:
    if re.fullmatch(r"[0-9*#]*", value) is None:
        raise PydanticCustomError("dtmf", "expected DTMF digits 0-9, * and #")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Phone:
    """One behaviour."""

    __pydantic_config__ = STRICT_KEYS

    kind: PhoneKind
    ring: Duration | None = None  # before answering (or before the 183); default 2s
    talk: Annotated[TalkTime, BeforeValidator(_talk_time)] = field(
        default_factory=lambda: TalkTime(timedelta(seconds=5), timedelta(seconds=5)))
    status: Annotated[int, AfterValidator(_check_status)] | None = None  # final failure code
    q850: int | None = None  # Q.850 cause in the Reason header
    text: str | None = None  # spoken (TTS): greeting, announcement, "hello?"
    file: Annotated[Path, BeforeValidator(_beside)] | None = None  # or a recording (WAV)
    announcement: Announcement | None = None  # what the recording means (announcement, sit)
    keys: Annotated[str, AfterValidator(_check_keys)] = ""  # pressed after answering
    keys_after: Duration = timedelta(seconds=1)

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        if self.text is not None and self.file is not None:
            problems.append((("file",), "give 'text' or 'file', not both"))
        if self.kind is PhoneKind.ANNOUNCEMENT:
            if self.text is None and self.file is None:
                problems.append((("text",), "an announcement needs 'text' or 'file'"))
            if self.announcement is None:
                problems.append((("announcement",), "say what the announcement means: "
                                 + ", ".join(a.value for a in _BY_ANNOUNCEMENT)))
        if self.status is not None and self.kind in (PhoneKind.PERSON, PhoneKind.AGENT,
                                                     PhoneKind.VOICEMAIL,
                                                     PhoneKind.RING_FOREVER):
            problems.append((("status",), f"a {self.kind.value} phone ends no call with a "
                             "failure status"))
        raise_problems(problems)

    @property
    def final_status(self) -> int | None:
        return self.status if self.status is not None else _DEFAULT_STATUS.get(self.kind)

    @property
    def ring_time(self) -> timedelta:
        if self.ring is not None:
            return self.ring
        return _DEFAULT_RING.get(self.kind, timedelta(seconds=2))

    def expected(self) -> frozenset[Disposition]:
        """The dispositions a dialer may rightly conclude from this phone."""
        if self.kind in (PhoneKind.ANNOUNCEMENT, PhoneKind.SIT):
            meaning = self.announcement or Announcement.VACANT
            return frozenset({_BY_ANNOUNCEMENT.get(meaning, Disposition.VACANT)})
        return EXPECTED[self.kind]


def _listen(value: object) -> tuple[str, int]:
    if isinstance(value, str):
        host, _, port = value.rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return host, int(port)
    raise PydanticCustomError("listen", "expected host:port such as '127.0.0.1:5080', got "
                              "{shown}", {"shown": show_value(value)})


_NUMBER_RE: Final = re.compile(r"\+?[0-9]{3,20}\*?")


@dataclass(frozen=True, slots=True, kw_only=True)
class HarnessConfig:
    """The whole harness: where it listens, its phones and who answers which number."""

    __pydantic_config__ = STRICT_KEYS

    listen: Annotated[tuple[str, int], BeforeValidator(_listen)] = ("127.0.0.1", 5080)
    workers: PositiveInt = 2
    seed: int = 1
    phones: FrozenMap[str, Phone] = field(default_factory=empty_map)
    numbers: FrozenMap[str, str] = field(default_factory=empty_map)
    weights: FrozenMap[str, Annotated[float, Field(gt=0)]] = field(default_factory=empty_map)

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        names = set(self.phones) | {kind.value for kind in PhoneKind}
        for number, phone in self.numbers.items():
            if _NUMBER_RE.fullmatch(number) is None:
                problems.append((("numbers", number), "expected digits (with an optional + "
                                 "and a trailing * for a prefix)"))
            if phone not in names:
                problems.append((("numbers", number), f"no phone named {phone!r}"))
        problems += [(("weights", name), f"no phone named {name!r}")
                     for name in self.weights if name not in names]
        if not self.numbers and not self.weights:
            problems.append((("weights",), "give 'numbers' or 'weights' (or both): which "
                             "phone answers which number"))
        raise_problems(problems)

    def phone(self, name: str) -> Phone:
        return self.phones.get(name) or Phone(kind=PhoneKind(name))

    def choose(self, dialed: str) -> str | None:
        """The phone that answers `dialed` (its digits, with or without +): an exact number,
        else the longest matching prefix, else a weighted draw stable for the number;
        None when no rule takes it (the harness answers 404)."""
        digits = dialed.lstrip("+")
        prefixes: list[tuple[int, str]] = []
        for number, phone in self.numbers.items():
            key = number.lstrip("+")
            if key.endswith("*"):
                if digits.startswith(key[:-1]):
                    prefixes.append((len(key), phone))
            elif key == digits:
                return phone
        if prefixes:
            return max(prefixes)[1]
        if not self.weights:
            return None
        draw = _unit(f"{self.seed}:{digits}")
        total = sum(self.weights.values())
        for name, weight in self.weights.items():
            draw -= weight / total
            if draw < 0:
                return name
        return list(self.weights)[-1]

    def unit(self, dialed: str, what: str) -> float:
        """A stable draw in [0, 1) for the number (talk times and the like)."""
        return _unit(f"{self.seed}:{dialed.lstrip('+')}:{what}")


def _unit(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def load_harness(path: str | Path) -> HarnessConfig:
    """Load and check a harness file; ConfigError lists every problem."""
    return load_yaml(path, HarnessConfig)


def parse_harness(data: object, source_name: str = "<harness>", *,
                  base_dir: Path | None = None) -> HarnessConfig:
    return parse_data(data, HarnessConfig, source_name, base_dir=base_dir)
