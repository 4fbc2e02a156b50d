"""Voicemail beeps: where a steady pure tone (380-2500 Hz, 120 ms-2 s) ends.

A voicemail records from the end of its beep, so a campaign that leaves a message starts
speaking at `BeepEnded.at_ms`. `BeepDetector` is fed a call's 20 ms frames (8 kHz 16-bit
mono PCM, 320 bytes). A frame is a tone's when its windowed spectrum has one peak in the
band holding `purity` of its power; consecutive such frames at one frequency (within
`drift_hz`; one frame lost in noise is forgiven) are one tone. A tone is a beep when it
lasted `min_ms` to `max_ms` at a steady level; its edges are placed within their frames
by the edge frames' energy (a frame half filled by the tone has half its energy), to a
few ms. Speech does not make beeps: a vowel's harmonics spread its power, and its pitch
and level move within 120 ms; the band starts above the highest voices' fundamentals.

Pure computation on the frames given: no clock, no I/O. `voice.amd` uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

from voice.goertzel import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, FULL_SCALE, SAMPLE_RATE, FloatArray

_FFT: Final = 256
_WINDOW: Final = np.hanning(FRAME_SAMPLES)
_LOBE: Final = 3  # FFT bins either side of a peak that hold a windowed sine's main lobe
_HZ_PER_BIN: Final = SAMPLE_RATE / _FFT
_SOUNDING_FRAMES: Final = 3  # a vowel may look like a tone for a frame or two


@dataclass(frozen=True, slots=True, kw_only=True)
class BeepEnded:
    """A beep heard from `started_ms` to `at_ms` (estimated within their frames), at
    `hertz`; `reported_ms` is the end of the frame that told."""

    started_ms: int
    at_ms: int
    reported_ms: int
    hertz: float


def frame_samples(frame: bytes) -> FloatArray:
    """The frame's samples, after checking that it is one 20 ms frame."""
    if len(frame) != FRAME_BYTES:
        raise ValueError(f"a frame of {len(frame)} bytes; expected {FRAME_BYTES} (20 ms)")
    return np.frombuffer(frame, dtype="<i2").astype(np.float64)


@dataclass(frozen=True, slots=True, kw_only=True)
class BeepSettings:
    """What a voicemail beep is: one steady tone in a band, for a while, clean enough."""

    lowest_hz: float = 380.0  # a voice's fundamental (a high one) may hold a frame alone
    highest_hz: float = 2500.0
    min_ms: int = 120
    max_ms: int = 2000  # longer: a dial tone, a fax's answer tone, not a beep
    purity: float = 0.75  # the share of a frame's power in the tone's main lobe
    drift_hz: float = 15.0  # how far a frame's frequency may stray from the tone's
    steadiness_db: float = 4.0  # the spread of the tone's frame levels, edges left out
    min_level_dbfs: float = -50.0


@dataclass(slots=True)
class _Tone:
    start_ms: int
    hertz: float
    energies: list[float] = field(default_factory=list)
    missed: float | None = None  # the energy of a frame the tone did not hold (noise)


class BeepDetector:
    """Finds beeps: runs of frames whose power lies in one narrow peak at a steady frequency.

    `feed` returns a `BeepEnded` on the first frame after a tone of the right length and
    steadiness stops; `sounding` is True while a tone (a beep or not) lasts.
    """

    def __init__(self, settings: BeepSettings | None = None) -> None:
        self.settings: Final = settings or BeepSettings()
        self._floor = (FULL_SCALE * 10 ** (self.settings.min_level_dbfs / 20)) ** 2 \
            * FRAME_SAMPLES
        self._bins = (int(self.settings.lowest_hz / _HZ_PER_BIN),
                      int(self.settings.highest_hz / _HZ_PER_BIN) + 1)
        self._next_ms = 0
        self._tone: _Tone | None = None

    @property
    def sounding(self) -> bool:
        """A steady tone has lasted 60 ms (a vowel's single frame may look like one)."""
        return self._tone is not None and len(self._tone.energies) >= _SOUNDING_FRAMES

    def feed(self, frame: bytes, samples: FloatArray | None = None) -> BeepEnded | None:
        """The beep that `frame` shows to have ended, if any (`samples`: the frame's, if the
        caller has them already)."""
        samples = frame_samples(frame) if samples is None else samples
        start, self._next_ms = self._next_ms, self._next_ms + FRAME_MS
        energy = float(np.dot(samples, samples))
        hertz = self._pure_tone(samples) if energy >= self._floor else None
        tone = self._tone
        if tone is not None and hertz is not None \
                and abs(hertz - tone.hertz) <= self.settings.drift_hz:
            if tone.missed is not None:
                tone.energies.append(tone.missed)
                tone.missed = None
            tone.energies.append(energy)
            tone.hertz += (hertz - tone.hertz) / len(tone.energies)
            return None
        if tone is not None and hertz is None and tone.missed is None:
            tone.missed = energy  # one frame in noise may fail; the tone may go on
            return None
        self._tone = None if hertz is None else _Tone(start, hertz, [energy])
        if tone is None:
            return None
        if tone.missed is None:
            return self._ended(tone, start, energy)
        return self._ended(tone, start - FRAME_MS, tone.missed, reported_ms=start + FRAME_MS)

    def _pure_tone(self, samples: FloatArray) -> float | None:
        """The frequency of the frame's one tone, or None if its power is not in one."""
        spectrum = np.fft.rfft(samples * _WINDOW, _FFT)
        power = spectrum.real**2 + spectrum.imag**2
        low, high = self._bins
        peak = low + int(np.argmax(power[low:high]))
        if float(power[peak - _LOBE:peak + _LOBE + 1].sum()) < self.settings.purity \
                * float(power.sum()):
            return None
        left, middle, right = np.log(power[peak - 1:peak + 2] + 1e-9)
        bend = left - 2 * middle + right
        offset = 0.5 * (left - right) / bend if bend < 0 else 0.0
        hertz = float((peak + offset) * _HZ_PER_BIN)
        return hertz if self.settings.lowest_hz <= hertz <= self.settings.highest_hz else None

    def _ended(self, tone: _Tone, next_ms: int, next_energy: float,
               reported_ms: int | None = None) -> BeepEnded | None:
        """The tone as a beep, its edges placed within their frames by their energy."""
        energies = tone.energies
        inner = energies[1:-1] if len(energies) > 2 else energies
        typical = float(np.median(inner))
        if max(inner) > typical * 10 ** (self.settings.steadiness_db / 10) \
                or min(inner) < typical / 10 ** (self.settings.steadiness_db / 10):
            return None
        if energies[-1] < 0.8 * typical:  # the tone stopped inside its last frame
            end = next_ms - FRAME_MS + FRAME_MS * energies[-1] / typical
        else:  # ... or inside the next one
            end = next_ms + FRAME_MS * min(1.0, next_energy / typical)
        start = tone.start_ms + FRAME_MS * (1 - min(1.0, energies[0] / typical))
        if not self.settings.min_ms <= end - start <= self.settings.max_ms:
            return None
        return BeepEnded(started_ms=round(start), at_ms=round(end),
                         reported_ms=reported_ms or next_ms + FRAME_MS,
                         hertz=round(tone.hertz, 1))
