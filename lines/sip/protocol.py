"""The message protocol between the SIP backend and its media workers, as JSON lines.

The backend sends commands, a worker answers with events; one JSON object per line, each
with the protocol version `v` and its `type`. Lines, not pickles, so that a worker may run
on another machine behind any byte pipe (ssh, socat) and a human can read a capture.

- Commands are handled in the order they arrive; a command about a call the worker does
  not know (it ended meanwhile) is a no-op.
- Every event carries `t`, the worker's wall clock (seconds since the epoch) when it
  happened: for measuring (setup latency is `Answered.t - Trying.t`), never for deciding.
- Per call, a worker sends `Trying` or `Incoming` first, then any of `Ringing`,
  `EarlyMedia`, `Answered`, `MediaFlowing`, `Dtmf`, `Bridged`, `Heard`, `Acted`,
  `Classified`, then exactly one
  `Ended`. Its slots are free again with it (`Ended.released`), or, when the worker gave
  up on a call pjsua2 still holds (a setup timeout), with a `Released` that follows.
  `Heard` findings of kind `early_media` come before the call's `Answered`.
- A placed call the worker cannot carry (no free slot, bad URI) still gets `Ended` (with
  `status` None).

Bytes (prompt audio) travel as base64. `Auth.password` never appears in a repr.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from lines.sip.errors import ProtocolError
from lines.sip.payloads import AnswerPlan as AnswerPlan
from lines.sip.payloads import Auth as Auth
from lines.sip.payloads import Finding as Finding
from lines.sip.payloads import FindingKind as FindingKind
from lines.sip.payloads import MediaStats as MediaStats
from rules.signals import AnswerKind as AnswerKind

VERSION = 1


# commands (backend -> worker)


@dataclass(frozen=True, slots=True, kw_only=True)
class Place:
    """Place a call. `reserve_slot` keeps a second slot for an agent leg bridged later;
    `into_reservation_of` places this call into the slot another call reserved.

    `no_media_timeout`: once the call is answered, the far end's RTP must come within
    this many seconds. The worker reports `MediaFlowing` when the first packet after the
    200 arrives; without one in time it hangs the call up, and the call's `Ended` says
    `no_media`. None: no watch, and no `MediaFlowing`.
    """

    type: ClassVar[str] = "place"
    call_id: str
    uri: str
    from_uri: str
    pai: str | None = None  # P-Asserted-Identity value, e.g. "<sip:+15551234567@host>"
    ring_timeout: float = 30.0
    setup_timeout: float = 8.0
    auth: Auth | None = None
    reserve_slot: bool = False
    into_reservation_of: str | None = None
    no_media_timeout: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HangUp:
    type: ClassVar[str] = "hang_up"
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDtmf:
    type: ClassVar[str] = "send_dtmf"  # over RFC 2833
    call_id: str
    digits: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadPrompt:
    """Keep 8 kHz 16-bit mono PCM under `name`: from a file the worker can read (`path`,
    a WAV or raw little-endian samples), or the samples themselves (`pcm`)."""

    type: ClassVar[str] = "load_prompt"
    name: str
    path: str | None = None
    pcm: bytes | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.pcm is None):
            raise ValueError("a prompt comes from a path or from bytes, exactly one")


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    """Queue a loaded prompt into a call; hang up once it has played if asked."""

    type: ClassVar[str] = "play"
    call_id: str
    prompt: str
    hang_up_after: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Converse:
    """Hand an answered call to its media handler's conversation `script` (a name the
    handler knows), with `variables` for its placeholders. A handler that holds no
    conversations ignores it."""

    type: ClassVar[str] = "converse"
    call_id: str
    script: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bridge:
    """Join the audio of two answered calls of this worker, both ways."""

    type: ClassVar[str] = "bridge"
    call_id: str
    other_call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPlans:
    """Answer mode: plans for incoming calls by the dialed user part, and a default one
    (None: reject what no plan names with 404)."""

    type: ClassVar[str] = "set_plans"
    plans: dict[str, AnswerPlan] = field(default_factory=dict)
    default: AnswerPlan | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    type: ClassVar[str] = "ping"  # a health check: answered with a Pong of the same seq
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """Hang up every call, free pjsua2 and exit."""

    type: ClassVar[str] = "stop"


Command = (
    Place | HangUp | SendDtmf | LoadPrompt | Play | Converse | Bridge | SetPlans | Ping | Stop
)


# events (worker -> backend)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    type: ClassVar[str] = "ready"
    t: float
    pid: int
    cap: int  # concurrent calls this worker can carry
    host: str
    port: int  # the SIP UDP port it is bound to


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed:
    """The worker cannot start or go on; it exits after sending this."""

    type: ClassVar[str] = "failed"
    t: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Trying:
    type: ClassVar[str] = "trying"  # the INVITE went out
    t: float
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Incoming:
    """Answer mode: a call came in (the worker named it `call_id`)."""

    type: ClassVar[str] = "incoming"
    t: float
    call_id: str
    from_uri: str
    to_uri: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ringing:
    type: ClassVar[str] = "ringing"
    t: float
    call_id: str
    status: int  # 180 or 183


@dataclass(frozen=True, slots=True, kw_only=True)
class EarlyMedia:
    """Media flows before answer (183 with SDP)."""

    type: ClassVar[str] = "early_media"
    t: float
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Answered:
    type: ClassVar[str] = "answered"
    t: float
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaFlowing:
    """The far end's first RTP packet after the answer arrived (calls placed with a
    `no_media_timeout` only)."""

    type: ClassVar[str] = "media_flowing"
    t: float
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Bridged:
    type: ClassVar[str] = "bridged"
    t: float
    call_id: str
    other_call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Dtmf:
    """A digit came from the far end (RFC 2833 or SIP INFO)."""

    type: ClassVar[str] = "dtmf"
    t: float
    call_id: str
    digit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Heard:
    """The call's media handler recognised something in the far end's audio (handlers
    that report findings only; see `lines.sip.media`)."""

    type: ClassVar[str] = "heard"
    t: float
    call_id: str
    finding: Finding


@dataclass(frozen=True, slots=True, kw_only=True)
class Acted:
    """The call's conversation heard the callee mean `intent` (or reached an end)."""

    type: ClassVar[str] = "acted"
    t: float
    call_id: str
    intent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Classified:
    """The call's media handler decided who answered (answering-machine detection)."""

    type: ClassVar[str] = "classified"
    t: float
    call_id: str
    kind: AnswerKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Ended:
    """The call is over. `status` None: it never left (no slot, bad URI, worker error)."""

    type: ClassVar[str] = "ended"
    t: float
    call_id: str
    status: int | None
    reason: str
    q850: int | None = None
    by: str = "network"  # "us"; "remote" (hung up after answer, or the caller of an incoming
    # call); "network" (a failure response or timeout before answer, or no media after it)
    media: MediaStats | None = None
    released: bool = True  # its slots are free; False: a `Released` follows
    #: Answered, but no RTP came from the far end before the call ended (calls placed with
    #: a `no_media_timeout` only). `by` is "network" when the worker hung up for it.
    no_media: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Released:
    """The slots of a call that ended with `released` False are free again (its own, and a
    reservation it never used)."""

    type: ClassVar[str] = "released"
    t: float
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    type: ClassVar[str] = "pong"
    t: float
    seq: int


Event = (
    Ready | Failed | Trying | Incoming | Ringing | EarlyMedia | Answered | MediaFlowing
    | Bridged | Dtmf | Heard | Acted | Classified | Ended | Released | Pong
)
Message = Command | Event

_COMMANDS = {cls.type for cls in typing.get_args(Command)}
_TYPES: dict[str, type[Any]] = {
    cls.type: cls for cls in (*typing.get_args(Command), *typing.get_args(Event))
}


def encode(message: Message) -> bytes:
    """One JSON line (with its newline)."""
    body = {"v": VERSION, "type": message.type}
    body.update({f.name: _to_json(getattr(message, f.name))
                 for f in dataclasses.fields(message)})
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes | str) -> Message:
    """The message on one line; `ProtocolError` when it is not one of ours."""
    try:
        body = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not a JSON line: {exc}") from exc
    if not isinstance(body, dict):
        raise ProtocolError("a message is a JSON object")
    if body.get("v") != VERSION:
        raise ProtocolError(f"protocol version {body.get('v')!r}, expected {VERSION}")
    cls = _TYPES.get(body.get("type", ""))
    if cls is None:
        raise ProtocolError(f"unknown message type {body.get('type')!r}")
    return typing.cast(Message, _build(cls, body))


def decode_command(line: bytes | str) -> Command:
    message = decode(line)
    if message.type not in _COMMANDS:
        raise ProtocolError(f"{message.type} is an event, not a command")
    return typing.cast(Command, message)


def decode_event(line: bytes | str) -> Event:
    message = decode(line)
    if message.type in _COMMANDS:
        raise ProtocolError(f"{message.type} is a command, not an event")
    return typing.cast(Event, message)


def _to_json(value: object) -> object:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    return value


def _build(cls: type[Any], body: dict[str, Any]) -> object:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in body:
            kwargs[f.name] = _from_json(hints[f.name], body[f.name], f"{cls.__name__}.{f.name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"bad {cls.__name__}: {exc}") from exc


def _from_json(hint: Any, value: object, where: str) -> object:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _from_json(inner, value, where)
    if origin is dict:
        _, item_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ProtocolError(f"{where}: expected an object")
        return {str(key): _from_json(item_hint, item, where) for key, item in value.items()}
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ProtocolError(f"{where}: expected an object")
        return _build(typing.cast(type[Any], hint), value)
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: object, where: str) -> object:
    if hint is bytes:
        if not isinstance(value, str):
            raise ProtocolError(f"{where}: expected base64 text")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ProtocolError(f"{where}: bad base64") from exc
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise ProtocolError(f"{where}: {value!r} is not a valid {hint.__name__}") from None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ProtocolError(f"{where}: expected a number, got {value!r}")
    if not isinstance(value, hint):
        raise ProtocolError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
    return value
