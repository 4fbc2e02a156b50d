"""Voice activity on a call's received audio, and barge-in: when the callee's voice stops a
prompt.

`SpeechDetector` is fed the call's 20 ms frames (8 kHz 16-bit mono PCM, 320 bytes) and
reports `SpeechStarted` once speech has lasted `onset_ms` and `SpeechEnded` once it has been
quiet for `hangover_ms`; `segment()` is the audio of the open or last segment, for a
recogniser. A frame is speech when all of these hold (cheapest first: a quiet frame costs a
few microseconds, a loud one a few tens):

- it is over `min_level_dbfs` and `margin_db` over the line noise, which is tracked by
  minimum statistics (the quietest frame of the last 1.2-1.6 s: it follows a noise level
  that changes, speech does not lift it, and G.711's quantisation noise stays under it);
- webrtcvad (a GMM on six sub-band energies) calls it speech;
- it is not a tone: ringback, dial tone, SIT and DTMF put one or two spectral peaks, none
  under 330 Hz, in a 40 ms window; a voice puts harmonics and formants there.

`voice.bargein` decides, from these, what the callee's sound does to a prompt.

Pure computation on the frames and the times given: no clock, no I/O.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import webrtcvad

from voice.goertzel import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, FULL_SCALE, FloatArray

_FFT: Final = 512  # two frames (320 samples) zero-padded: autocorrelation to lag 192 is exact
_WINDOW: Final = np.hanning(2 * FRAME_SAMPLES)
_WINDOW_ACF: Final = np.fft.irfft(np.abs(np.fft.rfft(_WINDOW, _FFT)) ** 2)
_LAGS: Final = slice(20, 134)  # pitch 60-400 Hz at 8 kHz
_ACF_SCALE: Final = _WINDOW_ACF[0] / _WINDOW_ACF[_LAGS]  # undoes the window's taper (Boersma)
_NOISE_BIN: Final = float(np.sum(_WINDOW**2))  # white noise's power per bin, per unit variance
_BAND: Final = slice(6, 244)  # 94-3812 Hz
_UPPER: Final = round(700 * _FFT / 8000) - _BAND.start
_PEAK_FLOOR: Final = 0.01  # spectral peaks within 20 dB of the strongest count
_TONE_PEAKS: Final = 2  # a tone has at most this many,
_TONE_SHARE: Final = 0.8  # holding this much of the window's power (+-3 bins of each),
_TONE_LOWEST: Final = round(330 * _FFT / 8000) - _BAND.start  # none under 330 Hz
_SUBWINDOW_FRAMES: Final = 20  # minimum statistics: 4 sub-windows of 400 ms
_SUBWINDOWS: Final = 4
_MIN_BIAS: Final = 1.5  # the least of ~80 frames of white noise is ~1.8 dB under its mean
_VOICED: Final = 0.5  # voicing of the frames that tell the callee's speaking level


def _dbfs(power: float) -> float:
    return 10 * math.log10(max(power, 1e-3) / FULL_SCALE**2)


@dataclass(frozen=True, slots=True)
class Sound:
    """What a 40 ms window (a frame and the one before it) sounds like.

    `voicing`: the highest normalised autocorrelation at a pitch lag (60-400 Hz), near 1 for
    a vowel, 0.1-0.3 for noise. `flatness`: geometric over arithmetic mean of the power
    spectrum (94-3812 Hz), about 0.56 for white noise, under 0.1 for a vowel. `upper`: the
    share of the power over the line noise that lies above 700 Hz: 0.2-0.9 for most vowels,
    under 0.15 for a hummed "mm". `tonal`: a call-progress tone, not a voice.
    """

    voicing: float
    flatness: float
    upper: float
    tonal: bool


def sound_of(window: FloatArray, noise: float = 0.0) -> Sound:
    """The `Sound` of 320 samples on a line whose noise is white with mean square `noise`."""
    spectrum = np.fft.rfft(window * _WINDOW, _FFT)
    power = spectrum.real**2 + spectrum.imag**2
    acf = np.fft.irfft(power)
    voicing = float((acf[_LAGS] * _ACF_SCALE).max()) / max(float(acf[0]), 1e-9)
    band = power[_BAND] + 1e-9
    total = float(band.sum())
    flatness = float(np.exp(np.log(band).mean())) * len(band) / total
    floor = noise * _NOISE_BIN  # the noise's expected power per bin, taken off each band
    above = max(float(band[_UPPER:].sum()) - floor * (len(band) - _UPPER), 0.0)
    upper = min(above / max(total - floor * len(band), 1e-9), 1.0)
    strongest = int(band.argmax())
    tonal = (float(band[max(strongest - 3, 0):strongest + 4].sum()) >= _TONE_SHARE / 2 * total
             and _tonal(band, total))
    return Sound(voicing=voicing, flatness=flatness, upper=upper, tonal=tonal)


def _tonal(band: FloatArray, total: float) -> bool:
    inner = band[1:-1]
    peaks = np.flatnonzero((inner > band[:-2]) & (inner >= band[2:])
                           & (inner >= _PEAK_FLOOR * inner.max())) + 1
    if not 0 < len(peaks) <= _TONE_PEAKS or peaks[0] < _TONE_LOWEST:
        return False
    return sum(float(band[max(p - 3, 0):p + 4].sum()) for p in peaks) >= _TONE_SHARE * total


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted:
    """An onset confirmed: speech from `at_ms` (the start of its first speech frame) lasted
    to `confirmed_at_ms` (the end of the frame that confirmed it). Times are the detector's:
    the `at_ms` given with each frame, or 20 ms per frame from 0."""

    segment: int  # 1, 2, ... per detector
    at_ms: int
    confirmed_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechEnded:
    """A segment over: its last speech frame ended at `at_ms` (this is reported
    `hangover_ms` later), `duration_ms` after its first began."""

    segment: int
    at_ms: int
    duration_ms: int


VadEvent = SpeechStarted | SpeechEnded


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameVerdict:
    """The detector's verdict on one frame; `sound` only for a frame loud enough that
    webrtcvad called speech."""

    at_ms: int
    speech: bool
    level_dbfs: float
    noise_dbfs: float
    sound: Sound | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechSegment:
    """A segment's audio: `pcm` runs from `audio_start_ms` (up to `pre_roll_ms` before
    `start_ms`, the start of its first speech frame) to `end_ms` (the end of its last speech
    frame; while it is open, of the latest frame)."""

    segment: int
    start_ms: int
    end_ms: int
    audio_start_ms: int
    pcm: bytes
    ended: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class VadSettings:
    """How `SpeechDetector` decides. `aggressiveness` is webrtcvad's mode (0-3)."""

    onset_ms: int = 100
    onset_gaps: int = 1  # non-speech frames an onset may hold and still be confirmed
    hangover_ms: int = 300
    margin_db: float = 6.0
    min_level_dbfs: float = -50.0
    aggressiveness: int = 2
    pre_roll_ms: int = 200
    max_segment_ms: int = 30_000  # a longer segment keeps only its latest audio


class _State(enum.Enum):
    QUIET = "quiet"
    PENDING = "pending"  # speech heard, onset not yet confirmed
    SPEAKING = "speaking"  # confirmed; ends after the hangover


class SpeechDetector:
    """Finds speech segments in a call's received audio, one 20 ms frame at a time.

    - `feed` takes a frame (320 bytes) and its start time and returns the events it
      completes; every `SpeechStarted` is followed by one `SpeechEnded` (or `close`).
    - An onset is confirmed when speech has lasted `onset_ms` from the start of its first
      speech frame with at most `onset_gaps` non-speech frames inside, and the latest frame
      is speech; else it is forgotten without an event.
    - `last` is the verdict on the latest frame; `segment()` the open or last segment's
      audio. One detector per call.
    """

    def __init__(self, settings: VadSettings | None = None) -> None:
        self.settings: Final = settings or VadSettings()
        self._vad = webrtcvad.Vad(self.settings.aggressiveness)
        self._floor = (FULL_SCALE * 10 ** (self.settings.min_level_dbfs / 20)) ** 2 \
            * FRAME_SAMPLES
        self._margin = 10 ** (self.settings.margin_db / 10)
        self._minima: deque[float] = deque(maxlen=_SUBWINDOWS - 1)
        self._subwindow = (float("inf"), 0)  # least frame energy so far, frames so far
        self._previous: FloatArray = np.zeros(FRAME_SAMPLES)
        self._next_ms = 0
        self._state = _State.QUIET
        self._start_ms = 0
        self._last_speech_ms = 0
        self._gaps = 0
        self._segments = 0
        self._pre_roll: deque[tuple[int, bytes]] = deque(
            maxlen=self.settings.pre_roll_ms // FRAME_MS)
        self._audio: deque[tuple[int, bytes]] = deque(
            maxlen=self.settings.max_segment_ms // FRAME_MS)
        self._last_segment: SpeechSegment | None = None
        self._energy = (0.0, 0)  # the open segment's voiced frames: summed energy, count
        self._spoken = (0.0, 0)  # ... of every segment so far
        self.last: FrameVerdict | None = None

    @property
    def onset_ms(self) -> int | None:
        """Start of the pending onset or the open segment; None while quiet."""
        return None if self._state is _State.QUIET else self._start_ms

    @property
    def speaking(self) -> bool:
        """A confirmed segment is open (its hangover not yet over)."""
        return self._state is _State.SPEAKING

    @property
    def segments(self) -> int:
        """How many segments were confirmed (the latest one's number)."""
        return self._segments

    @property
    def last_speech_ms(self) -> int:
        """The end of the latest speech frame."""
        return self._last_speech_ms

    @property
    def speech_level_dbfs(self) -> float | None:
        """The callee's speaking level: the mean power of the voiced speech frames of every
        ended segment (long speech outweighs a short "mm"; noise that passed for speech
        counts for nothing); None before one has ended."""
        total, count = self._spoken
        return _dbfs(total / count / FRAME_SAMPLES) if count else None

    def feed(self, frame: bytes, at_ms: int | None = None) -> list[VadEvent]:
        """The events completed by `frame` (320 bytes), which starts at `at_ms` (by default
        where the previous frame ended)."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"a frame of {len(frame)} bytes; expected {FRAME_BYTES} (20 ms)")
        start = self._next_ms if at_ms is None else at_ms
        self._next_ms = start + FRAME_MS
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        energy = float(np.dot(samples, samples))
        noise = self._track_noise(energy)
        sound = None
        if energy >= max(self._floor, noise * self._margin) and self._vad.is_speech(
                frame, 8000):
            sound = sound_of(np.concatenate([self._previous, samples]), noise / FRAME_SAMPLES)
        self._previous = samples
        speech = sound is not None and not sound.tonal
        self.last = FrameVerdict(at_ms=start, speech=speech, sound=sound,
                                 level_dbfs=_dbfs(energy / FRAME_SAMPLES),
                                 noise_dbfs=_dbfs(noise / FRAME_SAMPLES))
        voiced = speech and sound is not None and sound.voicing >= _VOICED
        return self._step(frame, start, speech, energy if voiced else None)

    def close(self) -> list[VadEvent]:
        """End the open segment now (the call is over); nothing if none is open."""
        if self._state is _State.SPEAKING:
            return [self._end()]
        self._state = _State.QUIET
        return []

    def segment(self) -> SpeechSegment | None:
        """The open segment's audio so far, else the last segment's; None before any."""
        if self._state is not _State.SPEAKING:
            return self._last_segment
        return self._snapshot(self._next_ms, ended=False)

    def _track_noise(self, energy: float) -> float:
        """The line noise's energy per frame: the least of the last 1.2-1.6 s, unbiased."""
        least, count = self._subwindow
        least, count = min(least, energy), count + 1
        if count == _SUBWINDOW_FRAMES:
            self._minima.append(least)
            least, count = float("inf"), 0
        self._subwindow = (least, count)
        return min(least, *self._minima) * _MIN_BIAS if self._minima else least * _MIN_BIAS

    def _step(self, frame: bytes, start: int, speech: bool,
              voiced_energy: float | None) -> list[VadEvent]:
        settings, end = self.settings, start + FRAME_MS
        if self._state is _State.QUIET:
            if not speech:
                self._pre_roll.append((start, frame))
                return []
            self._state, self._start_ms, self._gaps = _State.PENDING, start, 0
            self._audio.clear()
            self._audio.extend(self._pre_roll)
            self._energy = (0.0, 0)
        self._audio.append((start, frame))
        if speech:
            self._last_speech_ms = end
        if voiced_energy is not None:
            self._energy = (self._energy[0] + voiced_energy, self._energy[1] + 1)
        if self._state is _State.PENDING:
            self._gaps += not speech
            if self._gaps > settings.onset_gaps:  # not an onset after all
                self._state = _State.QUIET
                self._pre_roll.extend(self._audio)
            elif speech and end - self._start_ms >= settings.onset_ms:
                self._state = _State.SPEAKING
                self._segments += 1
                return [SpeechStarted(segment=self._segments, at_ms=self._start_ms,
                                      confirmed_at_ms=end)]
            return []
        if end - self._last_speech_ms >= settings.hangover_ms:
            return [self._end()]
        return []

    def _end(self) -> SpeechEnded:
        self._state = _State.QUIET
        self._last_segment = self._snapshot(self._last_speech_ms, ended=True)
        self._pre_roll.extend(self._audio)
        (total, count), (spoken, frames) = self._energy, self._spoken
        self._spoken = (spoken + total, frames + count)
        return SpeechEnded(segment=self._segments, at_ms=self._last_speech_ms,
                           duration_ms=self._last_speech_ms - self._start_ms)

    def _snapshot(self, end_ms: int, *, ended: bool) -> SpeechSegment:
        kept = [(start, frame) for start, frame in self._audio if start + FRAME_MS <= end_ms]
        return SpeechSegment(segment=self._segments, start_ms=self._start_ms, end_ms=end_ms,
                             audio_start_ms=kept[0][0] if kept else end_ms,
                             pcm=b"".join(frame for _, frame in kept), ended=ended)


def pcm_samples(pcm: bytes) -> FloatArray:
    if len(pcm) % 2:
        raise ValueError(f"16-bit PCM comes in whole 2-byte samples, not {len(pcm)} bytes")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)
