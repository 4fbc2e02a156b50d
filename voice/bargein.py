"""Barge-in: what the callee's voice does to the prompt playing into the call.

`BargeIn` decides, while a prompt plays, what the callee's sound does to it. It must decide
about 100 ms into the sound, before its length is known. Only a voiced sound (periodic at a
60-400 Hz pitch, a spectrum far from flat) counts: a cough is a noise burst and never stops
a prompt, however loud. A voiced sound is *oral* once a frame has a vowel's upper formants
(over 15 % of its power above 700 Hz), else a hum ("mm", 嗯: the mouth is closed); it is
*quiet* when its loudest voiced frame is over 1 dB under the callee's speaking level (the
mean power of the voiced frames heard from them so far, as in their greeting; before any,
quiet means under 15 dB over the line noise). Then:

|                    | at speaking level       | quiet                            |
|--------------------|-------------------------|----------------------------------|
| oral               | `StopPrompt`            | `PausePrompt` ("uh-huh"? "yes"?) |
| a hum, so far      | `PausePrompt` ("n-o"?)  | play on ("mm")                   |

A paused or played-on sound becomes a `StopPrompt` when it turns oral at speaking level or
lasts `backchannel_ms`; a paused prompt gets `ResumePrompt` when the sound ends first (quiet
for `resume_ms`). That is the product decision: the prompt falls silent within ~100 ms of
any voiced onset that may be speech; a quiet "uh-huh" costs a gap of 200-450 ms, never the
prompt; a short word said softly ("stop", under the callee's usual level) is taken for a
backchannel, and the recogniser, fed the segment, has to catch it. Before the callee has
been heard at all, the noise is a poor yardstick: most "uh-huh"s then stop the prompt.

Pure computation on the frames and the times given: no clock, no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from voice.goertzel import FRAME_MS, FRAME_SAMPLES
from voice.vad import FrameVerdict, SpeechDetector, VadEvent, VadSettings, pcm_samples


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPrompt:
    """Stop the prompt (play `fade_out` of what remains, then nothing) and listen: the callee
    is talking, since `onset_ms`. `at_ms` is the end of the frame that decided."""

    segment: int
    onset_ms: int
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PausePrompt:
    """Fade the prompt out (`fade_out`) and hold its place: the callee's sound since
    `onset_ms` may be speech. A `StopPrompt` or a `ResumePrompt` follows."""

    segment: int
    onset_ms: int
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumePrompt:
    """The sound paused for was a backchannel: play on from where the fade began (`fade_in`)."""

    segment: int
    at_ms: int


PromptCommand = StopPrompt | PausePrompt | ResumePrompt


@dataclass(frozen=True, slots=True, kw_only=True)
class BargeInSettings:
    """How `BargeIn` decides (the module's docstring tells how they combine)."""

    vad: VadSettings = field(default_factory=VadSettings)
    voicing: float = 0.4  # a voiced frame: autocorrelation at a pitch lag at least this,
    flatness: float = 0.25  # and a spectrum at most this flat
    voiced_frames: int = 2  # voiced frames that make a sound voiced
    upper: float = 0.15  # a voiced frame with this share above 700 Hz: oral, not a hum
    quiet_db: float = 1.0  # loudest voiced frame this far under the speaking level: quiet
    quiet_snr_db: float = 15.0  # speaking level unknown: quiet under this much over noise
    backchannel_ms: int = 450  # a voiced sound lasting this long is speech
    resume_ms: int = 200  # quiet this long after a sound paused for: it was a backchannel


class _Prompt(enum.Enum):
    SILENT = "silent"  # no prompt playing, or stopped: nothing to decide
    PLAYING = "playing"
    PAUSED = "paused"


@dataclass(slots=True)
class _Heard:
    """What the callee's current sound has shown so far (internal, mutable)."""

    start_ms: int
    voiced: int = 0
    oral: bool = False
    peak_dbfs: float = -200.0  # of the voiced frames


class BargeIn:
    """Decides, frame by frame, what the callee's sounds do to a playing prompt.

    - `start_prompt` when a prompt starts, `end_prompt` when it ends or has been stopped;
      commands come only in between.
    - `feed` takes every received frame and returns the detector's events and the prompt
      commands in order: at most one `StopPrompt` per prompt, and after a `PausePrompt` a
      `StopPrompt` or a `ResumePrompt` (unless the prompt ends first).
    - A sound that is never voiced (a cough, a knock, breath) never pauses or stops it.
    """

    def __init__(self, settings: BargeInSettings | None = None) -> None:
        self.settings: Final = settings or BargeInSettings()
        self.detector: Final = SpeechDetector(self.settings.vad)
        self._prompt = _Prompt.SILENT
        self._heard: _Heard | None = None

    @property
    def paused(self) -> bool:
        return self._prompt is _Prompt.PAUSED

    def start_prompt(self) -> None:
        self._prompt, self._heard = _Prompt.PLAYING, None

    def end_prompt(self) -> None:
        self._prompt = _Prompt.SILENT

    def feed(self, frame: bytes, at_ms: int | None = None) -> list[VadEvent | PromptCommand]:
        """The events and commands completed by `frame` (see `SpeechDetector.feed`)."""
        events: list[VadEvent | PromptCommand] = []
        events += self.detector.feed(frame, at_ms)
        verdict = self.detector.last
        if self._prompt is not _Prompt.SILENT and verdict is not None:
            events += self._decide(verdict)
        return events

    def _decide(self, verdict: FrameVerdict) -> list[PromptCommand]:
        detector, settings = self.detector, self.settings
        end, segment = verdict.at_ms + FRAME_MS, detector.segments
        heard = self._heard
        if heard is None:
            if not verdict.speech:
                return []
            heard = self._heard = _Heard(start_ms=verdict.at_ms)
        sound = verdict.sound
        if verdict.speech and sound is not None and sound.voicing >= settings.voicing \
                and sound.flatness <= settings.flatness:
            heard.voiced += 1
            heard.oral |= sound.upper >= settings.upper
            heard.peak_dbfs = max(heard.peak_dbfs, verdict.level_dbfs)
        if detector.onset_ms is None or end - detector.last_speech_ms >= settings.resume_ms:
            self._heard = None  # the sound is over
            if self._prompt is _Prompt.PAUSED:
                self._prompt = _Prompt.PLAYING
                return [ResumePrompt(segment=segment, at_ms=end)]
            return []
        if not detector.speaking or end - heard.start_ms < settings.vad.onset_ms \
                or heard.voiced < settings.voiced_frames:
            return []
        loud = not self._quiet(heard.peak_dbfs, verdict.noise_dbfs)
        if (heard.oral and loud) or \
                detector.last_speech_ms - heard.start_ms >= settings.backchannel_ms:
            self._prompt = _Prompt.SILENT
            return [StopPrompt(segment=segment, onset_ms=heard.start_ms, at_ms=end)]
        if (heard.oral or loud) and self._prompt is _Prompt.PLAYING:
            self._prompt = _Prompt.PAUSED
            return [PausePrompt(segment=segment, onset_ms=heard.start_ms, at_ms=end)]
        return []

    def _quiet(self, peak_dbfs: float, noise_dbfs: float) -> bool:
        reference = self.detector.speech_level_dbfs
        if reference is not None:
            return peak_dbfs < reference - self.settings.quiet_db
        return peak_dbfs < noise_dbfs + self.settings.quiet_snr_db


def fade_out(remaining: bytes, ms: int = 30) -> bytes:
    """What to play instead of the rest of a prompt that stops or pauses: the first `ms` of
    `remaining` (16-bit PCM) under a raised-cosine fade to silence, padded with silence to
    whole 20 ms frames. A cut mid-wave clicks; 20-40 ms of fade does not, and is too short
    to hear as more prompt."""
    samples = pcm_samples(remaining)[:ms * 8]
    ramp = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, len(samples) + 1) / (len(samples) + 1))
    faded = np.zeros(-(-len(samples) // FRAME_SAMPLES) * FRAME_SAMPLES)
    faded[:len(samples)] = samples * ramp
    return np.round(faded).astype("<i2").tobytes()


def fade_in(pcm: bytes, ms: int = 20) -> bytes:
    """`pcm` (16-bit PCM) with its first `ms` faded in from silence: a paused prompt resumes
    without a click."""
    samples = pcm_samples(pcm)
    count = min(len(samples), ms * 8)
    samples[:count] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(count) / count) if count else 1
    return np.round(samples).astype("<i2").tobytes()
