"""Virtual phones: what each kind does with a call, as a media worker's answer plan.

| kind         | signalling                                  | audio                              |
|--------------|---------------------------------------------|------------------------------------|
| person       | 180 for `ring` (2 s), 200; hangs up after   | says `text` ("Hello?"), presses    |
|              | `talk` (drawn per number)                   | `keys` `keys_after` the answer,    |
|              |                                             | talks over the caller once (below) |
| agent        | 200 at once; hangs up after `talk`          | says `text`                        |
| voicemail    | 180 for `ring`, 200; hangs up when the      | the greeting (`text` or `file`),   |
|              | caller does, or 2 min after the beep        | then a 1 kHz beep                  |
| busy         | 486, Q.850 cause 17                         |                                    |
| reject       | 180 for `ring`, then 603, Q.850 cause 21    |                                    |
| vacant       | 404, Q.850 cause 1                          |                                    |
| announcement | 183, then the final status of its meaning   | ringback for `ring`, the recording |
| sit          | 183, then the final status of its meaning   | ringback, the tone of its meaning  |
|              |                                             | (below), `text`/`file`             |
| ring_forever | 180 for an hour, then 480, Q.850 cause 19   |                                    |
| (no rule)    | 404, Q.850 cause 1                          |                                    |

Announcements and SIT phones end with what a carrier sends after such a recording, so a
dialer that reads signalling alone (`rules.classify`) concludes the phone's meaning:
vacant 404/cause 1, powered_off 480/cause 20, unreachable 480/cause 18, busy 486/cause 17.
Nothing in signalling says *suspended*: such a phone sends 480 without a cause, which
signalling alone reads as no_answer (it rang); only a dialer that recognises the
recording concludes suspended, and that is what the phone tests. An explicit `status` or
`q850` in the phone's config wins (`q850: 0` sends no Reason header).

A sit phone's tone says what a tone detector (`voice.tones`) takes for the phone's
meaning, or nothing: vacant plays the SIT intercept (IC: vacant) and busy the 450 Hz busy
cadence (busy). No SIT says suspended, powered off or unreachable: the codes that sound
closest (NC, RO) say the *network* failed the call, which a dialer must count against its
trunk (`network_error`), not against the number. Those meanings play the SIT ineffective
other (IO), which says only that the call failed; the final status (and a dialer that
understands the recording) says why. So a tone never contradicts the phone's expected
disposition, and with an uninformative status (`status: 480, q850: 0`) a vacant or busy
sit phone tests that a dialer hears its tone.

Barge-in: a person who, after its own greeting, hears 0.8 s of the caller's speech says
its text again over it, once, and times from its own speech onset until the caller's audio
goes quiet (the end of the last frame louder than -44 dBFS, confirmed by 300 ms without
one; an energy test, not the VAD, whose hangover would add ~100 ms):
`MediaStats.barge_in_ms`. None when it never had to interrupt, or the caller's audio did
not go quiet within 10 s. A caller that ignores barge-in shows the rest of its prompt.

The harness (`dialer.harness.runtime`) makes the phones' sounds once (`phone_sounds`),
writes them and the config into a run folder (`write_run`) and starts its media workers
with `planner` and `handler` below and `RUN_ENV` naming that folder. A worker answers each
call with `plan_call`; the harness calls the same pure function to know what the phone
did, so both sides agree without talking about it.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import webrtcvad

from dialer.harness import audio
from dialer.harness.audio import Samples
from dialer.harness.config import HarnessConfig, Phone, PhoneKind, parse_harness
from lines.sip.answer import IncomingCall
from lines.sip.pcm import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, split_frames
from lines.sip.protocol import AnswerPlan, MediaStats
from rules.dispositions import Disposition
from rules.signals import Announcement

RUN_ENV: Final = "DIALER_HARNESS_RUN"  # the run folder, for the workers
PLANNER: Final = "dialer.harness.phones:planner"
HANDLER: Final = "dialer.harness.phones:handler"
UNASSIGNED: Final = "(no rule)"  # the phone name of numbers no rule takes

PERSON_TEXT: Final = "Hello?"
AGENT_TEXT: Final = "Hello, this is the service desk. How can I help you?"
VOICEMAIL_TEXT: Final = ("Hello, you have reached the voicemail of this number. "
                         "Please leave a message after the tone.")
VOICEMAIL_LISTEN_S: Final = 120.0  # after the beep, unless the caller hangs up first
RING_FOREVER_S: Final = 3600.0
AFTER_RECORDING_S: Final = 0.5  # from the end of a recording to the final status

_SAY, _EARLY, _GREETING = "say", "early", "greeting"
_BY_MEANING: Final = {  # announcement meaning: (status, Q.850 cause)
    Announcement.VACANT: (404, 1), Announcement.SUSPENDED: (480, None),
    Announcement.POWERED_OFF: (480, 20), Announcement.UNREACHABLE: (480, 18),
    Announcement.BUSY: (486, 17),
}
_CAUSE: Final = {PhoneKind.BUSY: 17, PhoneKind.REJECT: 21, PhoneKind.VACANT: 1}


def prompt_name(phone: str, part: str) -> str:
    return f"{phone}/{part}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """Which phone answers a dialed number, and how."""

    phone: str  # its name (UNASSIGNED when no rule takes the number)
    kind: PhoneKind
    expected: frozenset[Disposition]
    plan: AnswerPlan
    interrupt: str | None = None  # the prompt a person says over the caller's speech


def plan_call(config: HarnessConfig, seconds: Mapping[str, float], dialed: str) -> Choice:
    """The phone for `dialed` and its plan; `seconds` gives each prompt's length."""
    name = config.choose(dialed)
    if name is None:
        return Choice(phone=UNASSIGNED, kind=PhoneKind.VACANT, plan=_refuse(404, 1),
                      expected=frozenset({Disposition.VACANT}))
    phone = config.phone(name)
    interrupt = prompt_name(name, _SAY) if phone.kind is PhoneKind.PERSON else None
    return Choice(phone=name, kind=phone.kind, expected=phone.expected(), interrupt=interrupt,
                  plan=_plan(name, phone, config.unit(dialed, "talk"), seconds))


def _plan(name: str, phone: Phone, talk_unit: float, seconds: Mapping[str, float]
          ) -> AnswerPlan:
    ring = phone.ring_time.total_seconds()
    kind = phone.kind
    if kind in _CAUSE:
        return _refuse(phone.final_status or 404, _cause(phone, _CAUSE[kind]), ring)
    if kind is PhoneKind.RING_FOREVER:
        return _refuse(480, 19, RING_FOREVER_S)
    if kind in (PhoneKind.ANNOUNCEMENT, PhoneKind.SIT):
        early = prompt_name(name, _EARLY)
        status, cause = _BY_MEANING.get(phone.announcement or Announcement.VACANT,
                                        _BY_MEANING[Announcement.VACANT])
        return AnswerPlan(ring_s=seconds[early] + AFTER_RECORDING_S, early_media=early,
                          status=phone.status or status,
                          reason_header=_reason_header(_cause(phone, cause)))
    if kind is PhoneKind.VOICEMAIL:
        greeting = prompt_name(name, _GREETING)
        return AnswerPlan(ring_s=ring, play=greeting,
                          hang_up_after_s=seconds[greeting] + VOICEMAIL_LISTEN_S)
    return AnswerPlan(ring_s=ring, play=prompt_name(name, _SAY), dtmf=phone.keys,
                      dtmf_delay_s=phone.keys_after.total_seconds(),
                      hang_up_after_s=phone.talk.draw(talk_unit))


def _cause(phone: Phone, default: int | None) -> int | None:
    if phone.q850 is not None:
        return phone.q850 or None  # 0: no Reason header
    return default


def _refuse(status: int, cause: int | None, ring_s: float = 0.0) -> AnswerPlan:
    return AnswerPlan(ring_s=ring_s, status=status, reason_header=_reason_header(cause))


def _reason_header(cause: int | None) -> str | None:
    return None if cause is None else f"Q.850;cause={cause}"


# sounds


def used_phones(config: HarnessConfig) -> list[str]:
    """The phones some number may reach, in a stable order."""
    return list(dict.fromkeys([*config.numbers.values(), *config.weights, *config.phones]))


def phone_sounds(name: str, phone: Phone, speak: Callable[[str], Samples],
                 load: Callable[[Path], Samples]) -> dict[str, Samples]:
    """The prompts a phone plays, by name: what it says, or its early media."""
    kind = phone.kind

    def recording(default: str | None) -> Samples | None:
        if phone.file is not None:
            return load(phone.file)
        text = phone.text if phone.text is not None else default
        return speak(text) if text else None

    if kind in (PhoneKind.PERSON, PhoneKind.AGENT):
        said = recording(PERSON_TEXT if kind is PhoneKind.PERSON else AGENT_TEXT)
        return {prompt_name(name, _SAY): said if said is not None else audio.silence(0.2)}
    if kind is PhoneKind.VOICEMAIL:
        greeting = recording(VOICEMAIL_TEXT)
        parts = [greeting] if greeting is not None else []
        return {prompt_name(name, _GREETING): audio.join(*parts, audio.silence(0.3),
                                                          audio.beep())}
    if kind in (PhoneKind.ANNOUNCEMENT, PhoneKind.SIT):
        parts = [audio.ringback(phone.ring_time.total_seconds())]
        if kind is PhoneKind.SIT:
            parts += [_tone_of(phone.announcement or Announcement.VACANT), audio.silence(0.3)]
        said = recording(None)
        parts += [said] if said is not None else []
        return {prompt_name(name, _EARLY): audio.join(*parts)}
    return {}


def _tone_of(meaning: Announcement) -> Samples:
    """A sit phone's tone (see the module docstring)."""
    if meaning is Announcement.VACANT:
        return audio.sit_tones("intercept")
    if meaning is Announcement.BUSY:
        return audio.busy_tone()
    return audio.sit_tones("ineffective_other")  # failed, for a reason the status gives


# the run folder: what the harness tells its workers


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    config: HarnessConfig
    prompts: Mapping[str, Path]  # name: an 8 kHz WAV file
    seconds: Mapping[str, float]  # name: its length


def write_run(folder: Path, config: HarnessConfig, sounds: Mapping[str, Samples]) -> Run:
    """Write the config and the prompts (as WAV files) into `folder`."""
    prompts: dict[str, Path] = {}
    for index, (name, samples) in enumerate(sounds.items()):
        prompts[name] = folder / f"prompt-{index}.wav"
        audio.write_wav(prompts[name], samples)
    seconds = {name: audio.seconds_of(samples) for name, samples in sounds.items()}
    manifest = {"config": config_data(config),
                "prompts": {name: {"path": str(path), "seconds": seconds[name]}
                            for name, path in prompts.items()}}
    (folder / "run.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return Run(config=config, prompts=prompts, seconds=seconds)


def read_run(folder: Path) -> Run:
    manifest = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    entries = manifest["prompts"]
    return Run(config=parse_harness(manifest["config"], str(folder / "run.json")),
               prompts={name: Path(entry["path"]) for name, entry in entries.items()},
               seconds={name: float(entry["seconds"]) for name, entry in entries.items()})


def config_data(config: HarnessConfig) -> dict[str, object]:
    """The config as data `parse_harness` reads back into an equal config."""
    phones: dict[str, object] = {}
    for name, phone in config.phones.items():
        talk = phone.talk
        body: dict[str, object] = {
            "kind": phone.kind.value, "keys": phone.keys,
            "keys_after": phone.keys_after.total_seconds(),
            "talk": f"{talk.low.total_seconds()}-{talk.high.total_seconds()}"}
        optional = {"ring": phone.ring.total_seconds() if phone.ring is not None else None,
                    "status": phone.status, "q850": phone.q850, "text": phone.text,
                    "file": str(phone.file) if phone.file is not None else None,
                    "announcement": phone.announcement.value if phone.announcement else None}
        body.update({key: value for key, value in optional.items() if value is not None})
        phones[name] = body
    host, port = config.listen
    return {"listen": f"{host}:{port}", "workers": config.workers, "seed": config.seed,
            "phones": phones, "numbers": dict(config.numbers), "weights": dict(config.weights)}


# inside a media worker

_TRIGGER_FRAMES = 40  # speech heard after our greeting before we talk over it (0.8 s)
_QUIET_S = 0.3  # nothing loud for this long: the caller's audio went quiet
_LOUD_RMS = 200  # about -44 dBFS: above line noise and comfort noise
_GIVE_UP_S = 10.0


class PhoneHandler:
    """A phone's ear and mouth in a media worker (a `lines.sip.media.MediaHandler`): plays
    what the worker queues, counts the speech it hears, and, once `arm`ed, talks over the
    caller's speech once and times how long the caller takes to go quiet."""

    def __init__(self) -> None:
        self._vad = webrtcvad.Vad(2)
        self._queue: collections.deque[bytes] = collections.deque()
        self._received = self._speech = self._sent = 0
        self._interrupt: list[bytes] | None = None
        self._heard = 0  # speech frames heard since we last talked
        self._starting = False  # our interruption is queued, not yet sent
        self._onset: float | None = None
        self._last_sound = 0.0  # when we last heard a loud frame
        self._barge_in_ms: float | None = None
        self._measured = False

    def arm(self, pcm: bytes) -> None:
        self._interrupt = split_frames(pcm)

    def on_frame(self, pcm: bytes, at: float) -> None:
        self._received += 1
        speech = len(pcm) == FRAME_BYTES and self._vad.is_speech(pcm, SAMPLE_RATE)
        self._speech += speech
        samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.float32)
        if len(samples) and float(np.sqrt(np.mean(samples * samples))) >= _LOUD_RMS:
            self._last_sound = at
        if self._interrupt is None or self._measured:
            return
        if self._onset is not None:
            self._check_quiet(at)
        elif self._queue or self._starting:
            self._heard = 0  # we are talking
        elif speech:
            self._heard += 1
            if self._heard >= _TRIGGER_FRAMES:
                self._queue.extend(self._interrupt)
                self._starting = True

    def _check_quiet(self, now: float) -> None:
        assert self._onset is not None
        if now - max(self._last_sound, self._onset) >= _QUIET_S:
            went_on = max(0.0, self._last_sound + FRAME_MS / 1000 - self._onset)
            self._barge_in_ms = round(went_on * 1000, 1)
            self._measured = True
        elif now - self._onset > _GIVE_UP_S:
            self._measured = True

    def next_frame(self) -> bytes | None:
        try:
            frame = self._queue.popleft()
        except IndexError:
            frame = None
        now = time.monotonic()
        if frame is not None and self._starting:
            self._starting, self._onset = False, now
        elif self._onset is not None and not self._measured:
            self._check_quiet(now)  # also when the caller sends no frames at all
        self._sent += frame is not None
        return frame

    def play(self, pcm: bytes) -> None:
        self._queue.extend(split_frames(pcm))

    def stop_playing(self) -> None:
        self._queue.clear()

    def stats(self) -> MediaStats:
        return MediaStats(frames_received=self._received, speech_frames=self._speech,
                          frames_sent=self._sent, barge_in_ms=self._barge_in_ms)


_handlers: weakref.WeakValueDictionary[str, PhoneHandler] = weakref.WeakValueDictionary()


def handler(call_id: str) -> PhoneHandler:
    """The worker's media handler factory (`--handler dialer.harness.phones:handler`)."""
    made = PhoneHandler()
    _handlers[call_id] = made  # for the planner, which the worker asks right after
    return made


def planner(call: IncomingCall) -> AnswerPlan:
    """The worker's planner (`--planner dialer.harness.phones:planner`)."""
    run = _run()
    choice = plan_call(run.config, run.seconds, call.to_user)
    listener = _handlers.get(call.call_id)
    if choice.interrupt is not None and listener is not None:
        listener.arm(_pcm(choice.interrupt))
    return choice.plan


@functools.cache
def _run() -> Run:
    return read_run(Path(os.environ[RUN_ENV]))


@functools.cache
def _pcm(prompt: str) -> bytes:
    return audio.to_pcm(audio.read_wav(_run().prompts[prompt]))
