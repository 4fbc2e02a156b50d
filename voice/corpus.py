"""Synthetic signals for the voice detectors: SIT codes, 450 Hz cadences, DTMF, speech-like
vowels, white noise and G.711, so tests and benchmarks measure the same things.

Signals are float64 sample arrays in the int16 scale (not yet clipped), so they can be
summed and scaled; `pcm` turns one into the bytes a call delivers (clipped, optionally
through G.711) and `frames` cuts those into 20 ms frames. Levels are RMS in dBFS (a
full-scale sine is -3 dBFS); `tone` sets the level of each frequency it sums.

A benchmark of the tone detector at one SNR (every case is at `level_dbfs`, so the noise
is set against that level, which also puts noise under the silence case):

    for case in tone_cases(level_dbfs=-30.0):
        for seed in range(40):
            rng = np.random.default_rng(seed)
            noisy = with_noise(case.signal, snr_db, rng, reference_power=dbfs_power(-30.0))
            heard = [h.tone for h in ToneDetector().feed(pcm(noisy, "ulaw"))]
            correct += heard == ([case.expected] if case.expected else [])

DTMF works the same way with `dtmf(keys, on_ms, off_ms, level_dbfs, twist_db)` against
the keys, and talk-off with `vowels` (or recorded speech) against no keys at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from voice.dtmf import COLUMNS_HZ, KEYS, ROWS_HZ
from voice.g711 import through_alaw, through_ulaw
from voice.goertzel import FRAME_BYTES, FULL_SCALE, SAMPLE_RATE, FloatArray, dbfs_power
from voice.tones import (
    CADENCE_HZ,
    CADENCES,
    LONG_MS,
    RINGBACK,
    SIT_CODES,
    THIRD_HZ,
    Cadence,
    SitCode,
    Tone,
)

__all__ = ["Case", "active_power", "cadence", "dbfs_power", "dial_tone", "dtmf", "frames",
           "join", "pcm", "ringback", "silence", "sit", "tone", "tone_cases", "vowels",
           "with_noise"]


# Vowel formants (Hz) for `vowels`: /a/, /i/, /u/, /e/, /o/ of an adult male voice.
_FORMANTS: Final = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
                    (570, 840, 2410))


@dataclass(frozen=True, slots=True)
class Case:
    """A labelled signal: what a tone detector should report for it (None: nothing)."""

    name: str
    signal: FloatArray
    expected: Tone | None


def silence(ms: float) -> FloatArray:
    return np.zeros(round(ms * SAMPLE_RATE / 1000))


def tone(hertz: float | Sequence[float], ms: float, level_dbfs: float = -20.0,
         ramp_ms: float = 2.0) -> FloatArray:
    """A steady tone, each frequency at `level_dbfs`, with short ramps against clicks."""
    frequencies = [hertz] if isinstance(hertz, float | int) else list(hertz)
    t = np.arange(round(ms * SAMPLE_RATE / 1000)) / SAMPLE_RATE
    amplitude = FULL_SCALE * 10 ** (level_dbfs / 20) * np.sqrt(2)
    wave = sum((np.sin(2 * np.pi * f * t) for f in frequencies), np.zeros_like(t)) * amplitude
    ramp = min(len(t) // 2, round(ramp_ms * SAMPLE_RATE / 1000))
    if ramp:
        wave[:ramp] *= np.linspace(0, 1, ramp)
        wave[len(t) - ramp:] *= np.linspace(1, 0, ramp)
    shaped: FloatArray = wave
    return shaped


def join(*parts: FloatArray) -> FloatArray:
    joined: FloatArray = np.concatenate(parts) if parts else silence(0)
    return joined


def sit(code: SitCode, level_dbfs: float = -30.0, short_ms: float | None = None) -> FloatArray:
    """The three segments of a SIT code, back to back (`short_ms` overrides 274 ms)."""
    def length(ms: int) -> float:
        return ms if ms == LONG_MS or short_ms is None else short_ms

    return join(tone(code.first_hz, length(code.first_ms), level_dbfs, ramp_ms=1),
                tone(code.second_hz, length(code.second_ms), level_dbfs, ramp_ms=1),
                tone(THIRD_HZ, LONG_MS, level_dbfs, ramp_ms=1))


def cadence(periods: Sequence[tuple[float, float]], total_ms: float,
            hertz: float = CADENCE_HZ, level_dbfs: float = -20.0) -> FloatArray:
    """A tone cycling through `periods` ((on ms, off ms) pairs), starting on, cut to
    `total_ms`."""
    cycle = join(*(part for on_ms, off_ms in periods
                   for part in (tone(hertz, on_ms, level_dbfs), silence(off_ms))))
    whole: FloatArray = np.tile(cycle, int(total_ms * SAMPLE_RATE / 1000 // len(cycle)) + 1)
    return whole[:round(total_ms * SAMPLE_RATE / 1000)]


def ringback(total_ms: float = 10_000, level_dbfs: float = -20.0) -> FloatArray:
    return cadence(RINGBACK, total_ms, level_dbfs=level_dbfs)


def dial_tone(total_ms: float = 3000, level_dbfs: float = -20.0) -> FloatArray:
    return tone(CADENCE_HZ, total_ms, level_dbfs)


def dtmf(keys: str, on_ms: float = 60, off_ms: float = 60, level_dbfs: float = -12.0,
         twist_db: float = 0.0) -> FloatArray:
    """Key tones: the low (row) tone at `level_dbfs`, the high one `twist_db` above it."""
    parts = []
    for key in keys:
        index = KEYS.index(key.upper())
        row, column = ROWS_HZ[index // 4], COLUMNS_HZ[index % 4]
        parts += [tone(row, on_ms, level_dbfs) + tone(column, on_ms, level_dbfs + twist_db),
                  silence(off_ms)]
    return join(*parts)


def vowels(total_ms: float, rng: np.random.Generator, level_dbfs: float = -20.0) -> FloatArray:
    """Speech-like sound: voiced syllables (120-300 ms, each a vowel from `_FORMANTS`) with
    a wandering, gliding pitch between 90 and 260 Hz, separated by short pauses."""
    count = round(total_ms * SAMPLE_RATE / 1000)
    f0 = np.empty(count)
    gain = np.zeros((count, len(_FORMANTS)))
    position = 0
    while position < count:
        length = int(rng.uniform(0.12, 0.30) * SAMPLE_RATE)
        pause = int(rng.uniform(0.02, 0.15) * SAMPLE_RATE)
        end = min(count, position + length)
        start_pitch, end_pitch = rng.uniform(90, 260, size=2)
        f0[position:end] = np.linspace(start_pitch, end_pitch, end - position)
        gain[position:end, rng.integers(len(_FORMANTS))] = np.hanning(end - position)
        f0[end:position + length + pause] = end_pitch
        position += length + pause
    f0 *= 1 + 0.01 * rng.standard_normal(count).cumsum() / np.sqrt(count)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    wave = np.zeros(count)
    for harmonic in range(1, 45):
        frequency = harmonic * f0
        weight = sum(gain[:, v] * _formant_gain(frequency, _FORMANTS[v])
                     for v in range(len(_FORMANTS)))
        wave += np.where(frequency < 3800, weight / harmonic, 0) * np.sin(harmonic * phase)
    return _at_level(wave, level_dbfs)


def _formant_gain(frequency: FloatArray, formants: Sequence[int]) -> FloatArray:
    total: FloatArray = sum((1 / (1 + ((frequency - f) / (60 + 0.06 * f)) ** 2)
                             for f in formants), np.zeros_like(frequency))
    return total


def _at_level(signal: FloatArray, level_dbfs: float) -> FloatArray:
    active = signal[np.abs(signal) > 1e-9]
    rms = np.sqrt(np.mean(active**2)) if len(active) else 1.0
    scaled: FloatArray = signal * (FULL_SCALE * 10 ** (level_dbfs / 20) / rms)
    return scaled


def with_noise(signal: FloatArray, snr_db: float, rng: np.random.Generator,
               reference_power: float | None = None) -> FloatArray:
    """`signal` plus white noise `snr_db` below the signal's power while it sounds (its
    silent stretches, such as a cadence's off periods, do not count), or below
    `reference_power` when given."""
    if reference_power is None:
        reference_power = active_power(signal)
    sigma = np.sqrt(reference_power / 10 ** (snr_db / 10))
    noisy: FloatArray = signal + sigma * rng.standard_normal(len(signal))
    return noisy


def active_power(signal: FloatArray, frame: int = 160) -> float:
    """Mean power over the 20 ms frames that are not silent (within 30 dB of the loudest)."""
    usable = len(signal) // frame * frame
    if not usable:
        return float(np.mean(signal**2)) if len(signal) else 0.0
    powers = np.mean(signal[:usable].reshape(-1, frame) ** 2, axis=1)
    return float(np.mean(powers[powers >= powers.max() / 1000]))


def pcm(signal: FloatArray, law: Literal["ulaw", "alaw"] | None = None) -> bytes:
    """`signal` as 16-bit little-endian PCM, clipped, optionally through G.711."""
    samples = np.clip(np.round(signal), -32768, 32767).astype(np.int16)
    if law == "ulaw":
        samples = through_ulaw(samples)
    elif law == "alaw":
        samples = through_alaw(samples)
    return samples.astype("<i2").tobytes()


def frames(data: bytes) -> list[bytes]:
    """20 ms frames of PCM bytes, the last one padded with silence."""
    cut = [data[i:i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES)]
    if cut and len(cut[-1]) < FRAME_BYTES:
        cut[-1] = cut[-1].ljust(FRAME_BYTES, b"\x00")
    return cut


def tone_cases(level_dbfs: float = -30.0) -> list[Case]:
    """Every SIT code and cadence with the tone it should be heard as, and signals that
    must give no finding (ringback, dial tone, silence), each with 300 ms of lead-in."""
    lead = silence(300)
    cases = [Case(f"SIT {code.name}", join(lead, sit(code, level_dbfs), silence(700)),
                  code.tone) for code in SIT_CODES]
    cases += [Case(f"SIT {code.name} (276 ms)", join(lead, sit(code, level_dbfs, 276),
                                                      silence(700)), code.tone)
              for code in SIT_CODES]
    cases += [Case(c.tone.value, join(lead, cadence(c.cycle, (c.repeats + 2) * _cycle_ms(c),
                                                    level_dbfs=level_dbfs)), c.tone)
              for c in CADENCES]
    cases += [Case("ringback", join(lead, ringback(11_000, level_dbfs)), None),
              Case("dial tone", join(lead, dial_tone(3000, level_dbfs)), None),
              Case("silence", silence(3000), None)]
    return cases


def _cycle_ms(cadence_: Cadence) -> float:
    return float(sum(on + off for on, off in cadence_.cycle))
