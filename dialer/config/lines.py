"""Line pools: the SIP trunks, how they are grouped and failed over, and the caller IDs.

Secrets never live in these files: a trunk names the environment variable that holds its
password (`password_env`) or a secrets file holding it (`password_file`), and a `password`
key is refused with a message saying so.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Final

import phonenumbers
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from dialer.config.fields import (
    STRICT_KEYS,
    Duration,
    FrozenMap,
    Name,
    Problem,
    raise_problems,
    show_value,
    unique_problems,
)
from dialer.config.loader import base_dir_of, load_yaml, parse_data
from dialer.errors import ConfigError
from lines.callerid import NumberKind, SubPool


class Transport(enum.StrEnum):
    """The SIP transport to a trunk."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class Tier(enum.StrEnum):
    """A trunk's quality class; premium trunks carry the calls that matter most."""

    PREMIUM = "premium"
    STANDARD = "standard"


# One vocabulary with the caller-ID pools that run the numbers.
CallerIdPool = SubPool  # what a caller ID may be shown on: service or marketing calls
CallerIdKind = NumberKind  # fixed line, mobile or virtual


_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SIP_URI_RE: Final = re.compile(
    rf"sips?:(?:[^@\s:;]+@)?(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::(\d{{1,5}}))?"
    r"(?:;[^\s;]+)*"
)


def _check_sip_uri(value: str) -> str:
    match = _SIP_URI_RE.fullmatch(value)
    if match is None or (match[1] is not None and not 0 < int(match[1]) < 65536):
        raise PydanticCustomError(
            "sip_uri",
            "expected a SIP URI 'sip:host[:port]' (port 1-65535), got {shown}",
            {"shown": show_value(value)},
        )
    return value


def _check_env_name(value: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) is None:
        raise PydanticCustomError(
            "env_name", "expected the name of an environment variable such as 'TRUNK_A_PASSWORD'"
        )
    return value


def _check_codec(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9./_-]*", value) is None:
        raise PydanticCustomError(
            "codec",
            "expected a codec name such as 'PCMA', got {shown}",
            {"shown": show_value(value)},
        )
    return value


def _parse_e164(value: object) -> str:
    """An E.164 number, written as a quoted string with its `+` (YAML reads `+86...` as int)."""
    error = PydanticCustomError(
        "e164", "expected a valid phone number in E.164 form, quoted, such as '+861012345678'"
    )
    if not isinstance(value, str) or not value.strip().startswith("+"):
        raise error
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise error from None
    if not phonenumbers.is_valid_number(number):
        raise error
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _beside(value: object, info: ValidationInfo) -> object:
    """A relative path is relative to the file the settings came from."""
    base_dir = base_dir_of(info)
    if isinstance(value, str) and base_dir is not None and not Path(value).is_absolute():
        return base_dir / value
    return value


SipUri = Annotated[str, AfterValidator(_check_sip_uri)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
Codec = Annotated[str, AfterValidator(_check_codec)]
E164 = Annotated[str, BeforeValidator(_parse_e164)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Trunk:
    """One SIP trunk: where calls go and how many it carries."""

    __pydantic_config__ = STRICT_KEYS

    name: Name
    sip: SipUri  # where INVITEs go
    registrar: SipUri | None = None
    username: str | None = None
    password_env: EnvName | None = None  # the environment variable holding the password
    #: Or a secrets file holding only the password (relative to the lines file).
    password_file: Annotated[Path, BeforeValidator(_beside)] | None = None
    transport: Transport = Transport.UDP
    codecs: Annotated[tuple[Codec, ...], Field(min_length=1)] = ("PCMA", "PCMU")
    tier: Tier = Tier.STANDARD
    cost_per_minute: Annotated[Decimal, Field(ge=0)] = Decimal(0)
    channels: PositiveInt  # concurrent calls
    cps: PositiveFloat  # new calls per second
    weight: PositiveInt = 1  # share of calls among trunks of one pool

    def __post_init__(self) -> None:
        problems = unique_problems(("codecs",), self.codecs, "codec")
        if self.password_env is not None and self.password_file is not None:
            problems.append((("password_file",), "give 'password_env' or 'password_file', "
                             "not both"))
        raise_problems(problems)

    def password(self) -> str | None:
        """The trunk's password, read from its environment variable or secrets file when
        asked (never kept in the configuration; a missing file is a ConfigError)."""
        if self.password_env is not None:
            return os.environ.get(self.password_env)
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"trunk {self.name}: cannot read its password file "
                              f"{self.password_file}: {exc.strerror}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Failover:
    """When a trunk counts as failing, and which pool takes over.

    Each trunk keeps a window of its last `window_calls` calls placed within `window`;
    once the window holds at least `min_calls` calls and more than `failure_threshold` of
    them failed on the carrier's side (5xx, 408, timeouts, no media), the trunk is taken
    out and its pool's traffic goes to the next trunk or pool in `chain`. After
    `cool_off` it is probed with single calls and comes back when they pass
    (`lines.health`).
    """

    __pydantic_config__ = STRICT_KEYS

    chain: tuple[Name, ...] = ()  # pool names in order of preference; empty: as declared
    failure_threshold: Annotated[float, Field(ge=0, le=1)] = 0.10
    min_calls: PositiveInt = 20
    window_calls: PositiveInt = 100
    window: Duration = timedelta(minutes=5)
    cool_off: Duration = timedelta(seconds=60)

    def __post_init__(self) -> None:
        problems = unique_problems(("chain",), self.chain, "pool")
        if self.min_calls > self.window_calls:
            problems.append((("min_calls",), f"must not exceed window_calls ({self.window_calls})"))
        raise_problems(problems)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerId:
    """A number we may show as the caller."""

    __pydantic_config__ = STRICT_KEYS

    number: E164
    pool: CallerIdPool
    kind: CallerIdKind
    daily_cap: PositiveInt = 20  # calls a day before the number rests
    #: When we got the number: it warms up for two weeks from then (None: long ago).
    added_on: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LinePools:
    """All trunks, the named pools of them, failover between pools, and caller IDs."""

    __pydantic_config__ = STRICT_KEYS

    trunks: Annotated[tuple[Trunk, ...], Field(min_length=1)]
    pools: Annotated[
        FrozenMap[Name, Annotated[tuple[Name, ...], Field(min_length=1)]], Field(min_length=1)
    ]
    failover: Failover = field(default_factory=Failover)
    caller_ids: tuple[CallerId, ...] = ()

    def __post_init__(self) -> None:
        raise_problems(_pool_problems(self))

    def trunk(self, name: str) -> Trunk:
        """The trunk called `name` (KeyError if there is none)."""
        for trunk in self.trunks:
            if trunk.name == name:
                return trunk
        raise KeyError(name)

    def pool_trunks(self, pool: str) -> tuple[Trunk, ...]:
        """The trunks of a pool, in its order of preference."""
        return tuple(self.trunk(name) for name in self.pools[pool])

    @property
    def failover_chain(self) -> tuple[str, ...]:
        """Pool names in the order failover tries them."""
        return self.failover.chain or tuple(self.pools)


def _pool_problems(lines: LinePools) -> list[Problem]:
    names = [trunk.name for trunk in lines.trunks]
    problems = [
        ((*path, "name"), message)
        for path, message in unique_problems(("trunks",), names, "trunk name")
    ]
    for pool, members in lines.pools.items():
        problems += unique_problems(("pools", pool), members, "trunk")
        problems += [
            (("pools", pool, index), _unknown("trunk", member, names))
            for index, member in enumerate(members)
            if member not in names
        ]
    problems += [
        (("failover", "chain", index), _unknown("pool", pool, list(lines.pools)))
        for index, pool in enumerate(lines.failover.chain)
        if pool not in lines.pools
    ]
    numbers = [caller_id.number for caller_id in lines.caller_ids]
    problems += [
        ((*path, "number"), "this number appears more than once")
        for path, _ in unique_problems(("caller_ids",), numbers, "number")
    ]
    return problems


def _unknown(what: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"unknown {what} {name!r}; did you mean {close[0]!r}?"
    return f"unknown {what} {name!r}; defined: {', '.join(map(repr, dict.fromkeys(known)))}"


def load_lines(path: str | os.PathLike[str]) -> LinePools:
    """Load and validate one line-pools file."""
    return load_yaml(path, LinePools)


def parse_lines(
    data: object, source_name: str = "<lines>", *, base_dir: Path | None = None
) -> LinePools:
    """Validate line pools given as parsed data (a dict)."""
    return parse_data(data, LinePools, source_name, base_dir=base_dir)
