"""A call's conversation inside a media worker: the script runner, given a mouth and ears.

`Conversation` drives one `ScriptRunner` on one call. Its inputs come from two threads:

- the media clock thread (through the call's media handler) says when a prompt played out
  or was stopped by barge-in, when the callee started talking, and hands over each
  utterance's audio: these go into an inbox (a deque: appends are atomic), nothing more;
- the worker's main thread runs everything else: `start`, `digit`, `bridged` and `step`,
  which the handler's `notes` calls every turn of the worker's loop (every 20 ms or so).

Slow work (synthesising a prompt, recognising an utterance) runs on the `Voicebox`'s one
background thread, so the worker's loop never waits on it; `step` picks up what finished.
Prompts carry an id from the mouth, so the end of a prompt that was stopped is never taken
for the end of the next one.

`Voicebox` is what every call in the worker process shares: the campaign's scripts by
name, the TTS with its disk cache, one recogniser per script (its phrases fixed), and the
background thread. `Voicebox.from_environment()` builds it from the settings the dialer
hands its workers (`TalkSettings`, a JSON file named by `DIALER_TALK`).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from dialer.config.script import Script
from dialer.errors import ConfigError
from dialer.talk.runner import (
    Act,
    Action,
    HangUp,
    PlayFile,
    ScriptRunner,
    Speak,
    StopSpeaking,
    script_templates,
)
from lines.sip.payloads import AnswerVerdict, CalleeIntent, EndCall, HandlerNote
from rules.signals import AnswerKind
from voice.errors import AudioFileError, VoiceError
from voice.tts import Tts, to_pcm
from voice.wavfile import read_wav_8k

logger = logging.getLogger(__name__)

ENV: Final = "DIALER_TALK"  # names the worker's `TalkSettings` file
BEEP_WAIT_S: Final = 10.0  # for a machine's beep before its message is left anyway

#: Recognises one utterance (8 kHz PCM): the script phrase said in it, or None.
Hearing = Callable[[bytes], str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class TalkSettings:
    """What a media worker needs to hold the campaign's conversations."""

    campaign_file: str  # the scripts come from it (and the files it names)
    cache_dir: str | None = None  # the TTS prompt cache; None: no disk cache
    asr_model: str | None = None  # a vosk model directory; None: the built-in choice

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> TalkSettings:
        try:
            return cls(**json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"talk settings {path}: {exc}") from exc


class Mouth(Protocol):
    """The call's media handler, as a conversation speaks through it."""

    def play_prompt(self, pcm: bytes) -> int:
        """Queue a prompt; its id comes back with its end (`played` or `interrupted`)."""

    def stop_playing(self) -> None: ...


class Voicebox:
    """The worker process's shared voice parts (see the module docstring)."""

    def __init__(self, scripts: Mapping[str, Script], tts: Tts,
                 hearing: Callable[[Script], Hearing | None]) -> None:
        self.scripts = dict(scripts)
        self.tts = tts
        self._hearing_for = hearing
        self._hearings: dict[str, Hearing | None] = {}
        self._files: dict[str, bytes] = {}
        self._voices: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice")

    def hearing(self, script: Script) -> Hearing | None:
        """The script's recogniser, made on first use (None: the script hears no words)."""
        with self._lock:
            if script.name not in self._hearings:
                self._hearings[script.name] = self._hearing_for(script)
            return self._hearings[script.name]

    def voice_of(self, script: Script) -> str:
        """The voice a script speaks with (its own, else one for its language)."""
        with self._lock:
            if script.name not in self._voices:
                self._voices[script.name] = self.tts.pick_voice(script.language, script.voice)
            return self._voices[script.name]

    def speak(self, script: Script, speak: Speak) -> Future[bytes]:
        return self._thread.submit(self.tts.render_template, speak.template or speak.text,
                                   speak.values, voice=self.voice_of(script),
                                   speed=script.speed)

    def play(self, path: str) -> Future[bytes]:
        return self._thread.submit(self._file, path)

    def recognize(self, script: Script, pcm: bytes) -> Future[str | None]:
        hearing = self.hearing(script)
        if hearing is None:
            done: Future[str | None] = Future()
            done.set_result(None)
            return done
        return self._thread.submit(hearing, pcm)

    def prerender(self) -> None:
        """Synthesise every script's fixed text now (into the cache)."""
        for script in self.scripts.values():
            self.tts.prerender(script_templates(script), voice=self.voice_of(script),
                               speed=script.speed)

    def _file(self, path: str) -> bytes:
        with self._lock:
            if path not in self._files:
                self._files[path] = read_audio(path)
            return self._files[path]

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


class Conversation:
    """One call's script run (see the module docstring). Clock-thread methods:
    `prompt_ended`, `speech_started`, `utterance`. The rest: the main thread."""

    def __init__(self, box: Voicebox, script: Script, variables: Mapping[str, str],
                 mouth: Mouth) -> None:
        self._box, self._script, self._mouth = box, script, mouth
        self.runner = ScriptRunner(script, variables)
        self._inbox: collections.deque[tuple[str, object]] = collections.deque()
        self._audio: Future[bytes] | None = None  # a prompt being made
        self._prompt: int | None = None  # the id of the prompt playing
        self._hearing: list[Future[str | None]] = []  # utterances being recognised
        self._notes: list[HandlerNote] = []
        self.over = False
        self._message: Speak | None = None  # to leave on a machine, after its beep
        self._beep_wait: float | None = None  # until when a beep is waited for
        self._leaving = False  # a message is being left on a machine

    # the media clock thread

    def prompt_ended(self, prompt_id: int, *, interrupted: bool) -> None:
        self._inbox.append(("interrupted" if interrupted else "played", prompt_id))

    def speech_started(self) -> None:
        self._inbox.append(("speech", None))

    def utterance(self, pcm: bytes) -> None:
        self._inbox.append(("utterance", pcm))

    # the main thread

    def start(self, now: float) -> None:
        self._carry_out(self.runner.start(now), now)

    def digit(self, key: str, now: float) -> None:
        self._carry_out(self.runner.digit(key, now), now)

    def bridged(self, now: float) -> None:
        self._mouth.stop_playing()
        self._carry_out(self.runner.bridged(now), now)

    def answer_decided(self, kind: AnswerKind, beep_heard: bool, now: float) -> None:
        """Answering-machine detection decided. A machine gets the script's machine
        treatment: hang up (the engine does, on the verdict), or, after the beep, the
        message (the verdict is told once it has played, then the call ends)."""
        if kind is not AnswerKind.MACHINE or self.over:
            self._notes.append(AnswerVerdict(kind=kind))
            return
        self.over = True  # the script stops here
        self._audio = self._prompt = None
        self._mouth.stop_playing()
        message = self._script.machine_message
        if self._script.on_machine != "leave_message" or message is None:
            self._notes.append(AnswerVerdict(kind=kind))
            return
        self._message, self._leaving = self.runner.speak(message), True
        self._beep_wait = now if beep_heard else now + BEEP_WAIT_S

    def beep_ended(self, now: float) -> None:
        if self._beep_wait is not None:
            self._beep_wait = now  # the message starts now

    def step(self, now: float) -> list[HandlerNote]:
        """Take in what happened since the last step; the notes for the worker."""
        if self._leaving:
            return self._leave_message(now)
        if self.over:
            notes, self._notes = self._notes, []
            return notes
        while self._inbox:
            kind, value = self._inbox.popleft()
            self._carry_out(self._take(kind, value, now), now)
        if self._audio is not None and self._audio.done():
            self._start_prompt(self._audio, now)
        while self._hearing and self._hearing[0].done():
            self._carry_out(self.runner.heard(_result(self._hearing.pop(0)), now), now)
        self._carry_out(self.runner.tick(now), now)
        notes, self._notes = self._notes, []
        return notes

    def _leave_message(self, now: float) -> list[HandlerNote]:
        """A machine answered: wait for its beep, say the message, then end the call."""
        if self._message is not None and self._beep_wait is not None and now >= self._beep_wait:
            self._audio, self._message = self._box.speak(self._script, self._message), None
        left = False
        if self._audio is not None and self._audio.done():
            pcm, self._audio = self._made(self._audio), None
            if pcm:
                self._prompt = self._mouth.play_prompt(pcm)
            left = not pcm
        while self._inbox:
            kind, value = self._inbox.popleft()
            left = left or (kind in ("played", "interrupted") and value == self._prompt)
        if not left:
            return []
        self._leaving = False
        return [AnswerVerdict(kind=AnswerKind.MACHINE),
                EndCall(note=f"script {self._script.name}: message left")]

    def _take(self, kind: str, value: object, now: float) -> list[Action]:
        if kind == "speech":
            return self.runner.speech_started(now)
        if kind == "utterance":
            assert isinstance(value, bytes)
            self._hearing.append(self._box.recognize(self._script, value))
            return []
        if value != self._prompt:
            return []  # the end of a prompt already stopped
        self._prompt = None
        if kind == "interrupted":
            return self.runner.interrupted(now)
        return self.runner.played(now)

    def _made(self, audio: Future[bytes]) -> bytes:
        """A prompt's audio; b"" (logged) if it could not be made."""
        try:
            return audio.result()
        except (VoiceError, OSError, ValueError) as exc:
            logger.error("script %s: a prompt could not be made (%s); skipped",
                         self._script.name, exc)
            return b""

    def _start_prompt(self, audio: Future[bytes], now: float) -> None:
        self._audio = None
        pcm = self._made(audio)
        if pcm:
            self._prompt = self._mouth.play_prompt(pcm)
        else:
            self._carry_out(self.runner.played(now), now)

    def _carry_out(self, actions: list[Action], now: float) -> None:
        for action in actions:
            if isinstance(action, Speak | PlayFile):
                self._prompt = None
                self._audio = (self._box.speak(self._script, action) if isinstance(action, Speak)
                               else self._box.play(action.path))
            elif isinstance(action, StopSpeaking):
                self._audio = self._prompt = None
                self._mouth.stop_playing()
            elif isinstance(action, Act):
                self._notes.append(CalleeIntent(intent=action.intent))
            elif isinstance(action, HangUp):
                self.over = True
                self._notes.append(EndCall(note=f"script {self._script.name} ended"))


def _result(future: Future[str | None]) -> str | None:
    try:
        return future.result()
    except (VoiceError, OSError, ValueError) as exc:
        logger.error("an utterance could not be recognised (%s)", exc)
        return None


def read_audio(path: str | os.PathLike[str]) -> bytes:
    """A WAV file (any rate, width and channel count) as 8 kHz 16-bit mono PCM."""
    try:
        samples = read_wav_8k(Path(path))
    except AudioFileError as exc:
        raise ConfigError(f"audio file {exc}") from None
    return to_pcm((samples / 32768).astype(np.float32))
