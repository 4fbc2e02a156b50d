"""Call scripts: a validated list of verbs that a robot runs on a call.

Each step is a mapping with exactly one verb key and an optional `label`:

    steps:
      - say: "您好，{name}，您的购物车里还有商品。"
        label: greet
      - listen:
          keywords: {yes: ["好的", "可以"], no: ["不用"]}
          digits: {"1": yes, "2": no}
          timeout: 5s
          then: {yes: offer, no: bye}
          no_input: bye
      - hangup

`hangup` and `opt_out` may be written as a bare word. A script is checked as a whole
before any call uses it: labels are unique, every label a step refers to exists, the
intents `then` maps are recognised by `keywords` or `digits`, and `{placeholders}` are
plain names.
"""

from __future__ import annotations

import difflib
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Final, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from dialer.config.fields import (
    KEY,
    STRICT_KEYS,
    Duration,
    FrozenMap,
    KeyPath,
    Name,
    Problem,
    empty_map,
    raise_problems,
    show_value,
)
from dialer.config.loader import load_yaml, parse_data
from rules.dispositions import Disposition


def placeholders(text: str) -> tuple[str, ...]:
    """The `{names}` a text fills in, in order (ValueError if its braces are unbalanced)."""
    return tuple(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def _check_template(text: str) -> str:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise PydanticCustomError(
            "template",
            "unbalanced braces ({detail}); write '{{' or '}}' for a brace",
            {"detail": str(exc)},
        ) from None
    for _, name, spec, conversion in parsed:
        if name is not None and (not name.isidentifier() or spec or conversion):
            written = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise PydanticCustomError(
                "template",
                "placeholder {{name}} must be a plain name such as {first_name}",
                {"name": written},
            )
    return text


def _check_dtmf(value: str) -> str:
    if re.fullmatch(r"[0-9*#]+", value) is None:
        raise PydanticCustomError(
            "dtmf",
            "expected keys of the phone pad (0-9, * and #), got {shown}",
            {"shown": show_value(value)},
        )
    return value


def _keys_as_text(value: object) -> object:
    """YAML reads `1: yes` with an int key; the pad key is text."""
    if isinstance(value, Mapping):
        return {str(key) if isinstance(key, int) else key: item for key, item in value.items()}
    return value


Template = Annotated[str, AfterValidator(_check_template)]
Dtmf = Annotated[str, AfterValidator(_check_dtmf)]
Phrases = Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(min_length=1)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Listen:
    """Wait for the callee to say a keyword or press keys, and branch on the intent heard."""

    __pydantic_config__ = STRICT_KEYS

    keywords: FrozenMap[Name, Phrases] = field(default_factory=empty_map)  # intent -> phrases
    digits: Annotated[FrozenMap[Dtmf, Name], BeforeValidator(_keys_as_text)] = field(
        default_factory=empty_map
    )  # pad keys -> intent
    timeout: Duration = timedelta(seconds=5)
    then: FrozenMap[Name, Name] = field(default_factory=empty_map)  # intent -> step label
    no_input: Name | None = None  # label to go to when the callee says nothing
    no_match: Name | None = None  # label to go to when nothing heard matches an intent

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        if not self.keywords and not self.digits:
            problems.append(((), "give 'keywords' or 'digits' to listen for"))
        intents = set(self.keywords) | set(self.digits.values())
        problems += [
            (("then", intent, KEY), f"intent {intent!r} is in neither 'keywords' nor 'digits'")
            for intent in self.then
            if intent not in intents
        ]
        raise_problems(problems)

    @property
    def targets(self) -> dict[KeyPath, str]:
        """The labels this step may jump to, by the key path that names each."""
        found: dict[KeyPath, str] = {("then", intent): label for intent, label in self.then.items()}
        for key in ("no_input", "no_match"):
            label = getattr(self, key)
            if label is not None:
                found[(key,)] = label
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Menu(Listen):
    """A `listen` that first speaks its prompt (and speaks it again on a retry)."""

    prompt: Template


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """Hand the call to a human agent in a queue."""

    __pydantic_config__ = STRICT_KEYS

    queue: Name = "default"
    say: Template | None = None  # spoken before the transfer


@dataclass(frozen=True, slots=True, kw_only=True)
class OptOut:
    """Record that the callee wants no more calls, and optionally confirm it."""

    __pydantic_config__ = STRICT_KEYS

    say: Template | None = None


def _transfer_shorthand(value: object) -> object:
    return {"queue": value} if isinstance(value, str) else {} if value is None else value


def _opt_out_shorthand(value: object) -> object:
    return {"say": value} if isinstance(value, str) else {} if value in (None, True) else value


def _hangup(value: object) -> bool:
    if value is not None and value is not True:
        raise PydanticCustomError(
            "hangup",
            "'hangup' takes no settings: write '- hangup', got {shown}",
            {"shown": show_value(value)},
        )
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class StepBase:
    """What every step has besides its verb: an optional label to jump to."""

    __pydantic_config__ = STRICT_KEYS

    label: Name | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SayStep(StepBase):
    """Speak a text (TTS), with `{placeholders}` filled from the lead."""

    say: Template


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayStep(StepBase):
    """Play a recorded audio file."""

    play: Annotated[str, Field(min_length=1)]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenStep(StepBase):
    """Listen for keywords or keys."""

    listen: Listen


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuStep(StepBase):
    """Speak a prompt, then listen."""

    menu: Menu


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferStep(StepBase):
    """Transfer to an agent queue (`transfer: sales` is short for `transfer: {queue: sales}`)."""

    transfer: Annotated[Transfer, BeforeValidator(_transfer_shorthand)]


@dataclass(frozen=True, slots=True, kw_only=True)
class OptOutStep(StepBase):
    """Opt the callee out (`opt_out: "text"` is short for `opt_out: {say: "text"}`)."""

    opt_out: Annotated[OptOut, BeforeValidator(_opt_out_shorthand)]


#: What a script may record itself; the rest come from the call (an opt-out from
#: `opt_out`, a machine from the detector, a vacant number from the network).
SCRIPT_DISPOSITIONS: Final = frozenset({
    Disposition.COMPLETED, Disposition.TRANSFERRED, Disposition.OPTED_OUT,
    Disposition.ANSWERED_HUMAN,
})


def _script_disposition(value: Disposition) -> Disposition:
    if value not in SCRIPT_DISPOSITIONS:
        raise PydanticCustomError(
            "disposition",
            "a script can set {allowed}, not {shown}: the call itself tells the others",
            {"allowed": ", ".join(sorted(SCRIPT_DISPOSITIONS)), "shown": show_value(value.value)},
        )
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class SetDispositionStep(StepBase):
    """Record the attempt's disposition (the call goes on)."""

    set_disposition: Annotated[Disposition, AfterValidator(_script_disposition)]


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupStep(StepBase):
    """End the call."""

    hangup: Annotated[Literal[True], BeforeValidator(_hangup)] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class GotoStep(StepBase):
    """Continue at the step with `label`."""

    goto: Name


_STEP_TYPES: Final = {
    "say": SayStep,
    "play": PlayStep,
    "listen": ListenStep,
    "menu": MenuStep,
    "transfer": TransferStep,
    "opt_out": OptOutStep,
    "set_disposition": SetDispositionStep,
    "hangup": HangupStep,
    "goto": GotoStep,
}
_BARE_VERBS: Final = ("hangup", "opt_out")


def _one_verb(value: object) -> object:
    """A step as a mapping with exactly one verb key; bare `hangup` / `opt_out` expanded."""
    if isinstance(value, str) and value in _BARE_VERBS:
        return {value: None}
    if not isinstance(value, Mapping):
        raise PydanticCustomError(
            "step",
            "expected a step: a mapping with one verb ({verbs}), got {shown}",
            {"verbs": ", ".join(_STEP_TYPES), "shown": show_value(value)},
        )
    verbs = [key for key in value if key in _STEP_TYPES]
    if len(verbs) == 1:
        return value
    if verbs:
        raise _step_error("a step has exactly one verb, got {found}", " and ".join(verbs))
    unknown = [str(key) for key in value if key != "label"]
    close = [difflib.get_close_matches(key, list(_STEP_TYPES), n=1) for key in unknown]
    hints = [
        f"{key!r} (did you mean {match[0]!r}?)"
        for key, match in zip(unknown, close, strict=True)
        if match
    ]
    found = ", ".join(hints or map(repr, unknown)) or "none"
    raise _step_error("a step needs one verb ({verbs}), got {found}", found)


def _step_error(template: str, found: str) -> PydanticCustomError:
    return PydanticCustomError("step", template, {"verbs": ", ".join(_STEP_TYPES), "found": found})


def _verb_tag(value: object) -> str | None:
    if isinstance(value, Mapping):
        return next((f"<{key}>" for key in value if key in _STEP_TYPES), None)
    return None


Step = Annotated[
    Union[  # noqa: UP007 -- a tagged union of Annotated members reads better spelled out
        Annotated[SayStep, Tag("<say>")],
        Annotated[PlayStep, Tag("<play>")],
        Annotated[ListenStep, Tag("<listen>")],
        Annotated[MenuStep, Tag("<menu>")],
        Annotated[TransferStep, Tag("<transfer>")],
        Annotated[OptOutStep, Tag("<opt_out>")],
        Annotated[SetDispositionStep, Tag("<set_disposition>")],
        Annotated[HangupStep, Tag("<hangup>")],
        Annotated[GotoStep, Tag("<goto>")],
    ],
    Discriminator(_verb_tag),
    BeforeValidator(_one_verb),
]


#: Opt-out phrases a script hears unless it names its own, by language.
DEFAULT_OPT_OUT_PHRASES: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("stop", "stop calling", "unsubscribe", "do not call", "don't call me"),
    "zh": ("退订", "别再打了", "不要再打了", "不要再打"),
}


def _check_language(value: str) -> str:
    if re.fullmatch(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", value) is None:
        raise PydanticCustomError(
            "language",
            "expected a language tag such as 'zh', 'en' or 'zh-CN', got {shown}",
            {"shown": show_value(value)},
        )
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """A call script: what the robot says and listens for, step by step."""

    __pydantic_config__ = STRICT_KEYS

    name: Name
    language: Annotated[str, AfterValidator(_check_language)]
    voice: str | None = None  # a TTS voice name; None for the language's default
    speed: Annotated[float, Field(ge=0.5, le=2.0)] = 1.0  # of speech: 1.2 is 20% faster
    steps: Annotated[tuple[Step, ...], Field(min_length=1)]
    #: Heard at any point of the call, they opt the callee out. None: the language's
    #: defaults (`DEFAULT_OPT_OUT_PHRASES`); () hears none (the key still works).
    opt_out_phrases: tuple[Annotated[str, Field(min_length=1)], ...] | None = None
    opt_out_key: Annotated[Dtmf, Field(max_length=1)] | None = None  # e.g. "9"
    #: When answering-machine detection hears a machine: hang up, or leave `machine_message`
    #: after the beep (then hang up).
    on_machine: Literal["hang_up", "leave_message"] = "hang_up"
    machine_message: Template | None = None

    def __post_init__(self) -> None:
        problems = _label_problems(self.steps)
        if self.on_machine == "leave_message" and self.machine_message is None:
            problems.append((("machine_message",), "on_machine: leave_message needs the "
                             "message to leave"))
        raise_problems(problems)

    @property
    def opt_out_said(self) -> tuple[str, ...]:
        """The phrases that opt the callee out (this script's, or its language's)."""
        if self.opt_out_phrases is not None:
            return self.opt_out_phrases
        return DEFAULT_OPT_OUT_PHRASES.get(self.language.split("-")[0], ())

    def index_of(self, label: str) -> int:
        """The position of the step with `label` (KeyError if there is none)."""
        for index, step in enumerate(self.steps):
            if step.label == label:
                return index
        raise KeyError(label)


def _label_problems(steps: tuple[Step, ...]) -> list[Problem]:
    problems: list[Problem] = []
    labels: dict[str, int] = {}
    for index, step in enumerate(steps):
        if step.label is None:
            continue
        if step.label in labels:
            message = f"label {step.label!r} is already used by steps[{labels[step.label]}]"
            problems.append((("steps", index, "label"), message))
        labels.setdefault(step.label, index)
    for index, step in enumerate(steps):
        for path, label in _jumps(step).items():
            if label not in labels:
                close = difflib.get_close_matches(label, list(labels), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append((("steps", index, *path), f"no step has label {label!r}{hint}"))
    return problems


def _jumps(step: Step) -> dict[KeyPath, str]:
    """The labels a step refers to, by the key path (below the step) that names each."""
    if isinstance(step, GotoStep):
        return {("goto",): step.goto}
    if isinstance(step, ListenStep):
        return {("listen", *path): label for path, label in step.listen.targets.items()}
    if isinstance(step, MenuStep):
        return {("menu", *path): label for path, label in step.menu.targets.items()}
    return {}


def load_script(path: str | os.PathLike[str]) -> Script:
    """Load and validate one script file."""
    return load_yaml(path, Script)


def parse_script(
    data: object, source_name: str = "<script>", *, base_dir: Path | None = None
) -> Script:
    """Validate a script given as parsed data (a dict)."""
    return parse_data(data, Script, source_name, base_dir=base_dir)
