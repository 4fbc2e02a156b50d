"""The script runner: one call's script as a pure state machine.

A validated `dialer.config.script.Script` goes in; the runner walks its steps and says
what to do (`Speak` a text, `PlayFile`, `Act` towards the engine, `HangUp`), fed what
happened on the call: a prompt played to its end (`played`) or was stopped because the
callee talked over it (`interrupted`), the callee started talking (`speech_started`), an
utterance was recognised (`heard`, with the phrase's intent or None), a key was pressed
(`digit`), the agent leg was bridged (`bridged`), and time passed (`tick`). Time is a
value passed in (seconds on any monotonic scale); the runner reads no clock, starts no
thread and knows nothing of audio: `dialer.talk.session` does that around it.

What the verbs do:

- `say`, `play`: speak or play, then go on. A callee who talks over it stops it (the
  media handler's barge-in); the runner hears the utterance out, then says the step again
  from its start, once (the callee's "Hello?" over the greeting must not cost them it),
  and goes on after a second interruption.
- `listen`: wait up to `timeout` for a keyword or keys; go to `then[intent]`, else on to the
  next step; nothing heard: `no_input`; heard but no intent: `no_match` (either missing: on).
  While the callee is talking the timeout waits for what they said to be recognised.
- `menu`: `say` its prompt, then `listen`; an answer given over the prompt counts.
- `transfer`: say its text, ask the engine for an agent (`Act("agent")`), and wait for the
  bridge; with none in `transfer_wait_s`, go on with the next step (which should promise
  a call back).
- `opt_out`: tell the engine at once (`Act("opt_out")`: suppressed before anything else
  can go wrong), then say the confirmation, then go on.
- `set_disposition`: `completed`, `transferred`, `opted_out` or `answered_human`, as an
  `Act` the engine records.
- `goto`, `hangup`: jump; end the call. Running off the last step hangs up too. A script
  that ends with no disposition set is `completed`.

At any time, an opt-out phrase (the script's, or the language's defaults) or the opt-out
key opts the callee out: `Act("opt_out")`, then the script's first `opt_out` step (for its
confirmation and what follows it), or a hang-up if it has none.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from dialer.config.script import (
    GotoStep,
    HangupStep,
    Listen,
    ListenStep,
    MenuStep,
    OptOutStep,
    PlayStep,
    SayStep,
    Script,
    SetDispositionStep,
    Step,
    TransferStep,
)
from rules.dispositions import Disposition

logger = logging.getLogger(__name__)

OPT_OUT: Final = "opt_out"  # the intent every script hears, whatever its steps say
TRANSFER_WAIT_S: Final = 20.0  # for the agent leg to be bridged after asking for one
HEARD_OUT_S: Final = 5.0  # after an interrupted prompt, for the callee's words to come
INTER_DIGIT_S: Final = 3.0  # between the keys of a multi-key answer
_INSTANT_STEPS: Final = 4  # per step: more instant steps in a row than this is a goto loop

_DISPOSITION_INTENTS: Final = {
    Disposition.COMPLETED: "completed",
    Disposition.TRANSFERRED: "transferred",
    Disposition.OPTED_OUT: OPT_OUT,
    Disposition.ANSWERED_HUMAN: "answered",
}


@dataclass(frozen=True, slots=True)
class Speak:
    """Speak `text` (placeholders filled). `template` and `values` are what it was filled
    from, so a synthesizer can take the fixed parts from its cache."""

    text: str
    template: str = field(default="", compare=False)
    values: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class PlayFile:
    """Play the audio file at `path`."""

    path: str


@dataclass(frozen=True, slots=True)
class StopSpeaking:
    """Stop the prompt now (the callee answered a menu over it)."""


@dataclass(frozen=True, slots=True)
class Act:
    """Tell the engine: `opt_out`, `agent`, `completed`, `transferred` or `answered`."""

    intent: str


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the call; the script is over."""


Action = Speak | PlayFile | StopSpeaking | Act | HangUp


class Phase(enum.Enum):
    IDLE = "idle"  # not started
    SPEAKING = "speaking"  # a prompt plays
    HEARING_OUT = "hearing_out"  # a prompt was interrupted: waiting for the words
    LISTENING = "listening"  # a listen step waits for an answer
    TRANSFERRING = "transferring"  # waiting for the agent leg
    DONE = "done"


class ScriptRunner:
    """Runs one script on one call (see the module docstring). Every input returns the
    actions to take, in order; after `HangUp` (or a bridge) every input returns none."""

    def __init__(self, script: Script, variables: Mapping[str, str], *,
                 transfer_wait_s: float = TRANSFER_WAIT_S) -> None:
        self.script = script
        self._variables = dict(variables)
        self._transfer_wait_s = transfer_wait_s
        self.phase = Phase.IDLE
        self._index = 0
        self._listen: Listen | None = None  # the answer being waited for (menu or listen)
        self._after_speech: Step | None = None  # a menu or transfer waiting on its prompt
        self._deadline: float | None = None
        self._hearing = False  # the callee is talking: the deadline waits for the result
        self._keys = ""  # keys pressed towards a multi-key answer
        self._disposition_set = False
        self._replayed: set[int] = set()  # steps said again after the callee talked over them
        self.opted_out = False

    # the callee's intents

    def intent_of(self, phrase: str) -> str | None:
        """What a recognised phrase means now: an answer to the question being asked
        first, else an opt-out, else nothing (an answer to some other question)."""
        listen = self._listen
        if listen is not None:
            for intent, phrases in listen.keywords.items():
                if phrase in phrases:
                    return intent
        return OPT_OUT if phrase in self.script.opt_out_said else None

    # inputs

    def start(self, now: float) -> list[Action]:
        if self.phase is not Phase.IDLE:
            return []
        return self._run(now)

    def played(self, now: float) -> list[Action]:
        """The prompt played to its end (or was stopped by `StopSpeaking`)."""
        if self.phase is not Phase.SPEAKING:
            return []
        return self._after_prompt(now)

    def interrupted(self, now: float) -> list[Action]:
        """The callee talked over the prompt and it stopped: hear them out."""
        if self.phase is not Phase.SPEAKING:
            return []
        if self._after_speech is not None:
            return self._after_prompt(now)  # a menu listens; a transfer goes ahead
        self.phase, self._deadline, self._hearing = Phase.HEARING_OUT, now + HEARD_OUT_S, True
        return []

    def speech_started(self, now: float) -> list[Action]:
        if self.phase in (Phase.LISTENING, Phase.HEARING_OUT):
            self._hearing = True
        return []

    def heard(self, phrase: str | None, now: float) -> list[Action]:
        """An utterance ended; `phrase` is the script phrase recognised in it (None:
        nothing, or it was no speech)."""
        self._hearing = False
        intent = None if phrase is None else self.intent_of(phrase)
        if self.phase in (Phase.IDLE, Phase.DONE):
            return []
        if intent == OPT_OUT:
            return self._opt_out(now)
        if self.phase is Phase.HEARING_OUT:
            if self._index not in self._replayed:  # "Hello?" over the greeting: say it again
                self._replayed.add(self._index)
                return self._run(now)
            return self._next(now)
        listen = self._listen
        if listen is None or intent is None or intent not in listen.keywords:
            if self.phase is Phase.LISTENING and listen is not None:
                return self._jump(listen.no_match, now)
            return []  # a remark over a prompt: it plays on
        over_prompt = self.phase is Phase.SPEAKING
        answered = self._answer(listen, intent, now)
        return [StopSpeaking(), *answered] if over_prompt else answered

    def digit(self, key: str, now: float) -> list[Action]:
        if self.phase in (Phase.IDLE, Phase.DONE):
            return []
        if key == self.script.opt_out_key:
            return self._opt_out(now)
        listen = self._listen
        if listen is None or self.phase not in (Phase.SPEAKING, Phase.LISTENING):
            return []
        self._keys += key
        intent = listen.digits.get(self._keys)
        if intent is None:
            if any(keys.startswith(self._keys) for keys in listen.digits):
                self._deadline = max(self._deadline or now, now + INTER_DIGIT_S)
                return []  # more keys to come
            self._keys = ""
            return self._jump(listen.no_match, now) if self.phase is Phase.LISTENING else []
        over_prompt = self.phase is Phase.SPEAKING
        answered = self._answer(listen, intent, now)
        return [StopSpeaking(), *answered] if over_prompt else answered

    def bridged(self, now: float) -> list[Action]:
        """The call is with an agent now: the script is over (the agent hangs up)."""
        self.phase = Phase.DONE
        return []

    def tick(self, now: float) -> list[Action]:
        if self._deadline is None or now < self._deadline or self._hearing:
            return []
        if self.phase is Phase.LISTENING and self._listen is not None:
            return self._jump(self._listen.no_input, now)
        if self.phase is Phase.HEARING_OUT:
            return self.heard(None, now)
        if self.phase is Phase.TRANSFERRING:
            return self._next(now)
        return []

    # stepping

    def _answer(self, listen: Listen, intent: str, now: float) -> list[Action]:
        target = listen.then.get(intent)
        return self._jump(target, now)

    def _jump(self, label: str | None, now: float) -> list[Action]:
        if label is None:
            return self._next(now)
        self._index = self.script.index_of(label)
        return self._run(now)

    def _next(self, now: float) -> list[Action]:
        self._index += 1
        return self._run(now)

    def _after_prompt(self, now: float) -> list[Action]:
        step, self._after_speech = self._after_speech, None
        if isinstance(step, MenuStep):
            return self._start_listening(step.menu, now)
        if isinstance(step, TransferStep):
            return self._transfer(now)
        return self._next(now)

    def _run(self, now: float) -> list[Action]:
        """Run steps from `_index` until one waits for something (or the script ends)."""
        actions: list[Action] = []
        self._listen, self._deadline, self._hearing, self._keys = None, None, False, ""
        self._after_speech = None
        for _ in range(_INSTANT_STEPS * len(self.script.steps) + 1):
            if self._index >= len(self.script.steps):
                return actions + self._finish()
            step = self.script.steps[self._index]
            waits = self._do(step, actions, now)
            if waits:
                return actions
        logger.error("script %s: steps jump in a loop without waiting; hanging up",
                     self.script.name)
        return actions + self._finish()

    def _do(self, step: Step, actions: list[Action], now: float) -> bool:
        """Carry out one step; True if it waits (for a prompt, an answer or a bridge)."""
        if isinstance(step, SayStep | PlayStep):
            actions.append(self.speak(step.say) if isinstance(step, SayStep)
                           else PlayFile(step.play))
            self.phase = Phase.SPEAKING
            return True
        if isinstance(step, MenuStep):
            actions.append(self.speak(step.menu.prompt))
            self.phase, self._after_speech, self._listen = Phase.SPEAKING, step, step.menu
            return True
        if isinstance(step, ListenStep):
            actions += self._start_listening(step.listen, now)
            return True
        if isinstance(step, TransferStep):
            if step.transfer.say is None:
                actions += self._transfer(now)
            else:
                actions.append(self.speak(step.transfer.say))
                self.phase, self._after_speech = Phase.SPEAKING, step
            return True
        if isinstance(step, OptOutStep):
            actions += self._mark_opted_out()
            if step.opt_out.say is not None:
                actions.append(self.speak(step.opt_out.say))
                self.phase = Phase.SPEAKING  # `played` moves on past this step
                return True
            self._index += 1
            return False
        if isinstance(step, SetDispositionStep):
            actions.append(Act(_DISPOSITION_INTENTS[step.set_disposition]))
            self._disposition_set = True
            self._index += 1
            return False
        if isinstance(step, GotoStep):
            self._index = self.script.index_of(step.goto)
            return False
        assert isinstance(step, HangupStep)
        actions += self._finish()
        return True

    def _start_listening(self, listen: Listen, now: float) -> list[Action]:
        self.phase, self._listen = Phase.LISTENING, listen
        self._deadline = now + listen.timeout.total_seconds()
        return []

    def _transfer(self, now: float) -> list[Action]:
        self.phase, self._deadline = Phase.TRANSFERRING, now + self._transfer_wait_s
        self._disposition_set = True  # the engine knows what a transfer became
        return [Act("agent")]

    def _opt_out(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.phase is Phase.SPEAKING:
            actions.append(StopSpeaking())
        actions += self._mark_opted_out()
        step = next((i for i, s in enumerate(self.script.steps) if isinstance(s, OptOutStep)),
                    None)
        if step is None:
            return actions + self._finish()
        self._index = step
        return actions + self._run(now)

    def _mark_opted_out(self) -> list[Action]:
        """Tell the engine, once, before anything else the opt-out brings."""
        if self.opted_out:
            return []
        self.opted_out = self._disposition_set = True
        return [Act(OPT_OUT)]

    def _finish(self) -> list[Action]:
        if self.phase is Phase.DONE:
            return []
        actions: list[Action] = [] if self._disposition_set else [Act("completed")]
        self.phase = Phase.DONE
        return [*actions, HangUp()]

    def speak(self, template: str) -> Speak:
        """A template of this script, filled from the lead, as a `Speak`."""
        values = _Lenient(self._variables)
        text = template.format_map(values)  # a missing value is now in `values`, as ""
        return Speak(text, template, dict(values))


class _Lenient(dict[str, str]):
    """Lead attributes for a template: a missing one is said as nothing, not an error
    (a call must not fail because one lead lacks a column)."""

    def __missing__(self, key: str) -> str:
        logger.info("script placeholder {%s} has no value for this lead", key)
        return ""


def script_phrases(script: Script) -> dict[str, tuple[str, ...]]:
    """Every phrase a script may hear, by intent: its keywords and its opt-out phrases (its
    recogniser listens for all of them all the time)."""
    found: dict[str, list[str]] = {}
    if script.opt_out_said:
        found[OPT_OUT] = list(script.opt_out_said)
    for step in script.steps:
        if isinstance(step, ListenStep | MenuStep):
            listen = step.listen if isinstance(step, ListenStep) else step.menu
            for intent, phrases in listen.keywords.items():
                found.setdefault(intent, []).extend(phrases)
    return {intent: tuple(dict.fromkeys(phrases)) for intent, phrases in found.items()}


def script_templates(script: Script) -> list[str]:
    """Every text a script speaks, as templates (to synthesise their fixed parts early)."""
    found: list[str] = []
    for step in script.steps:
        if isinstance(step, SayStep):
            found.append(step.say)
        elif isinstance(step, MenuStep):
            found.append(step.menu.prompt)
        elif isinstance(step, TransferStep | OptOutStep):
            text = step.transfer.say if isinstance(step, TransferStep) else step.opt_out.say
            found += [text] if text else []
    return found
