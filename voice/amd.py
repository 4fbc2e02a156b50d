"""Answering-machine detection (AMD): did a person or a voicemail answer, and where does
the voicemail's beep end.

Both detectors take the call's received audio (8 kHz 16-bit mono PCM, 20 ms frames) from
the moment it was answered, one frame at a time; audio time is the frame count (the end of
frame n is 20 * n ms). `feed` returns an `AnswerDecided` once, on the frame that decides;
`close` (the call ended, or the caller stops listening) decides NOT_SURE if nothing did.

`AnswerDetector`, ours, listens for the shape of a call's opening (the settings named are
`AmdSettings`; the figures are from scripts/bench_voice_amd.py):

- People answer with a short greeting ("Hello?", "喂？", "你好，哪位？", 0.3-1.4 s) and wait
  for the caller: the greeting and then `silence_ms` (1 s) of silence is HUMAN; after a
  very short one (up to `quick_greeting_ms`: "Hi.", "喂？") `quick_silence_ms` is enough.
  The wait is the price of short voicemail greetings ("Leave a message.", 1 s): only their
  beep, which comes 0.15-1 s after them, tells them from a person. While a tone sounds no
  silence counts, and a person hears the caller about 1 s after their greeting.
- A voicemail greeting is long speech (2-10 s) with pauses of 0.2-0.6 s between its
  sentences, then a beep: a greeting spanning `long_greeting_ms` (2.6 s) without a
  person's pause is MACHINE, and so is a beep (`voice.beep.BeepDetector`; the verdict
  comes where it ends).
- Where speech begins is the VAD's (`voice.vad.SpeechDetector`: it follows the line
  noise, and tones never read as speech). What ends a silence is any frame `active_db`
  over the noise. Talk in the callee's room (a television, people nearby, 15-30 dB under
  their voice) must not read as the callee's: the callee's speaking level is the mean
  power of their voiced frames; sound more than `voice_range_db` under it, or not
  `room_margin_db` over talk heard before them (a voice `restart_db` louder than all
  before it is the callee's), counts toward HUMAN after `murmur_ms` more silence than on
  a quiet line. (On the voice alone, a short voicemail's fading last word would read as
  silence.)
- Nothing heard for `initial_silence_ms` (3 s) is NOT_SURE, not MACHINE as in Asterisk:
  a person who picks up and waits for the caller to speak is as common as a voicemail
  that plays nothing, and hanging up on a person is the costlier mistake. A campaign
  should treat NOT_SURE as a person (speak first) and keep listening for a beep. Nothing
  decided by `max_ms` (6 s) is NOT_SURE too.

After the decision the detector goes on listening for beeps (not speech), so that a
campaign can leave a message after the beep: `beep` is the latest `BeepEnded`, whose
`at_ms` is where the tone stopped (within a few ms; the end of the frame that told is
`reported_ms`).

`AsteriskAmd` is Asterisk's app_amd (the algorithm and defaults of app_amd.c and the DSP
silence detector it uses), as the baseline ours is measured against: a frame is silent
when its mean absolute sample is under 256; words are voice runs of 100 ms or more after
50 ms of silence; 2.5 s of initial silence, a greeting of 1.5 s of voice, 3 words or a
5 s word are MACHINE; 800 ms of silence after the first word is HUMAN; 5 s is NOT_SURE.

Pure computation on the frames given: no clock, no I/O. One detector per call.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np

from rules.signals import AnswerKind
from voice.beep import BeepDetector, BeepEnded, BeepSettings, frame_samples
from voice.goertzel import FRAME_MS, FRAME_SAMPLES
from voice.vad import SpeechDetector, SpeechStarted, VadEvent, VadSettings

__all__ = ["AmdSettings", "AnswerClassifier", "AnswerDecided", "AnswerDetector", "AsteriskAmd",
           "AsteriskSettings", "BeepDetector", "BeepEnded", "BeepSettings", "Cause"]

_VOICED: Final = 0.5  # the voicing of the frames that tell the callee's speaking level


class Cause(enum.StrEnum):
    """Why a detector decided (Asterisk's AMDCAUSE names where they match)."""

    SILENCE_AFTER_GREETING = "human"  # HUMAN: a greeting, then the silence of waiting
    LONG_GREETING = "longgreeting"  # MACHINE: more speech than a person's greeting
    MAX_WORDS = "maxwords"  # MACHINE (Asterisk): too many words
    MAX_WORD_LENGTH = "maxwordlength"  # MACHINE (Asterisk): one word too long
    BEEP = "beep"  # MACHINE (ours): a voicemail beep
    INITIAL_SILENCE = "initialsilence"  # Asterisk: MACHINE; ours: NOT_SURE
    TOO_LONG = "toolong"  # NOT_SURE: no decision within the analysis time
    CALL_ENDED = "callended"  # NOT_SURE: closed before a decision


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerDecided:
    """Who answered. `at_ms`: the end of the frame that decided, from the answer;
    `speech_ms`: how much of the audio until then was speech (voice, for Asterisk);
    `words`: the words (voice runs of 100 ms or more) counted."""

    kind: AnswerKind
    cause: Cause
    at_ms: int
    speech_ms: int
    words: int

class AnswerClassifier(Protocol):
    """What the media worker (and the benchmark) drives; both detectors are one.

    - `feed(frame)` takes the next 20 ms frame (320 bytes) and returns the decision on the
      frame that makes it, None on every other frame; a decision is made once.
    - `close()` ends the analysis: NOT_SURE (CALL_ENDED) if nothing was decided, else None.
    - `decision` is the decision made so far, None before.
    """

    def feed(self, frame: bytes) -> AnswerDecided | None: ...

    def close(self) -> AnswerDecided | None: ...

    @property
    def decision(self) -> AnswerDecided | None: ...

@dataclass(frozen=True, slots=True, kw_only=True)
class AmdSettings:
    """How `AnswerDetector` decides (see the module docstring for why)."""

    quick_greeting_ms: int = 450
    quick_silence_ms: int = 650
    silence_ms: int = 1000
    long_greeting_ms: int = 2600
    initial_silence_ms: int = 3000
    max_ms: int = 6000
    word_ms: int = 100
    active_db: float = 6.0
    voice_range_db: float = 15.0
    restart_db: float = 12.0
    room_margin_db: float = 6.0
    murmur_ms: int = 400
    vad: VadSettings = field(default_factory=lambda: VadSettings(onset_gaps=2))
    beep: BeepSettings = field(default_factory=BeepSettings)


class AnswerDetector:
    """Ours: a person's short greeting and wait against a voicemail's long greeting and beep.
    An `AnswerClassifier`; `beep` is the latest beep, also after the decision."""

    def __init__(self, settings: AmdSettings | None = None) -> None:
        self.settings: Final = settings or AmdSettings()
        self._vad = SpeechDetector(self.settings.vad)
        self._beeps = BeepDetector(self.settings.beep)
        self._now = 0  # the end of the latest frame
        self._first: int | None = None  # where the greeting's first segment began
        self._last = 0  # the end of the callee's latest frame of voice
        self._heard = 0  # the end of the latest frame of any sound (voice, the room)
        self._voiced = (0.0, 0)  # the callee's voiced frames: summed power, count
        self._room = -math.inf  # the level of the talk heard before the callee's
        self._speech = 0  # ms of the callee's voice
        self._run = 0  # ms of the current run of speech frames
        self._words = 0
        self._decision: AnswerDecided | None = None
        self.beep: BeepEnded | None = None

    @property
    def decision(self) -> AnswerDecided | None:
        return self._decision

    def feed(self, frame: bytes) -> AnswerDecided | None:
        samples = frame_samples(frame)
        at, self._now = self._now, self._now + FRAME_MS
        beep = self._beeps.feed(frame, samples)
        if beep is not None:
            self.beep = beep
        if self._decision is not None:
            return None
        events = self._vad.feed(frame, at)
        self._follow(events, at)
        self._decision = self._decide(beep)
        return self._decision

    def close(self) -> AnswerDecided | None:
        if self._decision is not None:
            return None
        self._decision = self._decided(AnswerKind.UNSURE, Cause.CALL_ENDED)
        return self._decision

    def _follow(self, events: list[VadEvent], at: int) -> None:
        """Count words; place the greeting's start, its latest voice and latest sound.

        The callee's voice is the loudest speech on the line. Sound more than
        `voice_range_db` under its speaking level, or not `room_margin_db` over the talk
        heard before the callee spoke, may be the room (a television, people nearby):
        it is sound (`_heard`) but not voice (`_last`)."""
        settings, verdict = self.settings, self._vad.last
        assert verdict is not None
        if self._first is None and any(isinstance(e, SpeechStarted) for e in events):
            self._first, self._last, self._heard = at, self._now, self._now
        self._learn_voice(verdict.level_dbfs, at, voiced=verdict.speech and (
            verdict.sound is not None and verdict.sound.voicing >= _VOICED))
        level = verdict.level_dbfs
        sound = verdict.speech or (not self._beeps.sounding
                                   and level >= verdict.noise_dbfs + settings.active_db)
        voice = sound and level >= max(self._voice_level() - settings.voice_range_db,
                                       self._room + settings.room_margin_db)
        self._run = self._run + FRAME_MS if voice else 0
        self._speech += FRAME_MS if voice else 0
        self._words += self._run == settings.word_ms
        if self._first is not None:
            self._heard = self._now if sound else self._heard
            self._last = self._now if voice else self._last

    def _learn_voice(self, level: float, at: int, *, voiced: bool) -> None:
        """Follow the callee's speaking level; a voice `restart_db` louder than the one
        heard so far is the callee's, and what came before was the room's."""
        if not voiced:
            return
        heard = self._voice_level()
        if level > heard + self.settings.restart_db:
            self._voiced, self._room = (0.0, 0), heard
            if self._first is not None:
                self._first, self._last, self._heard = at, self._now, self._now
        total, count = self._voiced
        self._voiced = (total + 10 ** (level / 10), count + 1)

    def _voice_level(self) -> float:
        """The callee's speaking level: the mean power of their voiced frames, in dBFS."""
        total, count = self._voiced
        return 10 * math.log10(total / count) if count else -math.inf

    def _decide(self, beep: BeepEnded | None) -> AnswerDecided | None:
        settings, now, first = self.settings, self._now, self._first
        if beep is not None:
            return self._decided(AnswerKind.MACHINE, Cause.BEEP)
        if first is None:
            if now >= settings.initial_silence_ms:
                return self._decided(AnswerKind.UNSURE, Cause.INITIAL_SILENCE)
            return None
        if self._vad.speaking and self._last - first >= settings.long_greeting_ms:
            return self._decided(AnswerKind.MACHINE, Cause.LONG_GREETING)
        pending = self._vad.onset_ms is not None and not self._vad.speaking
        if not pending and not self._beeps.sounding and (
                now - self._heard >= self._silence_after(self._heard - first)
                or now - self._last >= self._silence_after(self._last - first)
                + settings.murmur_ms):
            return self._decided(AnswerKind.HUMAN, Cause.SILENCE_AFTER_GREETING)
        if now >= settings.max_ms:
            return self._decided(AnswerKind.UNSURE, Cause.TOO_LONG)
        return None

    def _silence_after(self, greeting_ms: int) -> int:
        """The silence that tells a person has finished a greeting this long and waits."""
        settings = self.settings
        if greeting_ms <= settings.quick_greeting_ms:
            return settings.quick_silence_ms
        return settings.silence_ms

    def _decided(self, kind: AnswerKind, cause: Cause) -> AnswerDecided:
        return AnswerDecided(kind=kind, cause=cause, at_ms=self._now, speech_ms=self._speech,
                             words=self._words)


@dataclass(frozen=True, slots=True, kw_only=True)
class AsteriskSettings:
    """app_amd's parameters and defaults (amd.conf's sample sets maximum_number_of_words
    to 2; the code's default is 3)."""

    initial_silence_ms: int = 2500
    greeting_ms: int = 1500
    after_greeting_silence_ms: int = 800
    total_analysis_time_ms: int = 5000
    min_word_length_ms: int = 100
    between_words_silence_ms: int = 50
    maximum_number_of_words: int = 3
    silence_threshold: int = 256  # mean absolute sample of a silent frame
    maximum_word_length_ms: int = 5000


class _WordState(enum.Enum):
    IN_WORD = "in_word"  # app_amd starts here: a call's first word counts only after silence
    IN_SILENCE = "in_silence"


class AsteriskAmd:
    """Asterisk's app_amd, frame for frame, as a baseline. An `AnswerClassifier`."""

    def __init__(self, settings: AsteriskSettings | None = None) -> None:
        self.settings: Final = settings or AsteriskSettings()
        self._total = 0
        self._dsp_silence = 0  # the DSP's count of consecutive silent ms
        self._silence = 0
        self._voice = 0
        self._consecutive_voice = 0
        self._words = 0
        self._state = _WordState.IN_WORD
        self._in_initial_silence = True
        self._in_greeting = False
        self._decision: AnswerDecided | None = None

    @property
    def decision(self) -> AnswerDecided | None:
        return self._decision

    def feed(self, frame: bytes) -> AnswerDecided | None:
        samples = frame_samples(frame)
        if self._decision is not None:
            return None
        settings = self.settings
        self._total += FRAME_MS
        if self._total >= settings.total_analysis_time_ms:
            return self._decide(AnswerKind.UNSURE, Cause.TOO_LONG)
        mean_absolute = int(np.abs(samples).sum()) // FRAME_SAMPLES  # C's integer division
        self._dsp_silence = self._dsp_silence + FRAME_MS \
            if mean_absolute < settings.silence_threshold else 0
        if self._dsp_silence > 0:
            return self._silent_frame()
        return self._voiced_frame()

    def close(self) -> AnswerDecided | None:
        if self._decision is not None:
            return None
        return self._decide(AnswerKind.UNSURE, Cause.CALL_ENDED)

    def _silent_frame(self) -> AnswerDecided | None:
        settings = self.settings
        self._silence = self._dsp_silence
        if self._silence >= settings.between_words_silence_ms:
            self._state = _WordState.IN_SILENCE
            self._consecutive_voice = 0
        if self._in_initial_silence and self._silence >= settings.initial_silence_ms:
            return self._decide(AnswerKind.MACHINE, Cause.INITIAL_SILENCE)
        if self._in_greeting and self._silence >= settings.after_greeting_silence_ms:
            return self._decide(AnswerKind.HUMAN, Cause.SILENCE_AFTER_GREETING)
        return None

    def _voiced_frame(self) -> AnswerDecided | None:
        settings = self.settings
        self._consecutive_voice += FRAME_MS
        self._voice += FRAME_MS
        word = self._consecutive_voice >= settings.min_word_length_ms
        if word and self._state is _WordState.IN_SILENCE:
            self._words += 1
            self._state = _WordState.IN_WORD
        if self._consecutive_voice >= settings.maximum_word_length_ms:
            return self._decide(AnswerKind.MACHINE, Cause.MAX_WORD_LENGTH)
        if self._words >= settings.maximum_number_of_words:
            return self._decide(AnswerKind.MACHINE, Cause.MAX_WORDS)
        if self._in_greeting and self._voice >= settings.greeting_ms:
            return self._decide(AnswerKind.MACHINE, Cause.LONG_GREETING)
        if self._voice >= settings.min_word_length_ms:
            self._silence = 0
        if word and not self._in_greeting:
            self._in_initial_silence, self._in_greeting = False, True
        return None

    def _decide(self, kind: AnswerKind, cause: Cause) -> AnswerDecided:
        self._decision = AnswerDecided(kind=kind, cause=cause, at_ms=self._total,
                                       speech_ms=self._voice, words=self._words)
        return self._decision
