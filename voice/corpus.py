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

Barge-in puts one sound from the callee on a noisy line, levels set against the callee's
speaking level (`at_level` sets a sound's active power): speech at it, coughs 6 dB either
side, backchannels under it, the line noise 15-25 dB under it:

    rng = np.random.default_rng(seed)
    level = rng.uniform(-30, -16)
    scene = on_the_line(backchannel(rng, level - rng.uniform(6, 14)), rng,
                        noise_dbfs=level - rng.uniform(15, 25))
    frames(pcm(scene.signal, "alaw"))  # a pause or stop before scene.onset_ms is wrong
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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

__all__ = ["Case", "Scene", "active_power", "at_level", "backchannel", "cadence", "cough",
           "dbfs_power", "dial_tone", "dtmf", "frames", "join", "line_noise", "on_the_line",
           "pcm", "ringback", "silence", "sit", "tone", "tone_cases", "vowels", "with_noise"]


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


# Barge-in: what a callee does while a prompt plays. Coughs and backchannels must not stop
# the prompt; interruptions (real speech, recorded or synthesised by the caller of
# `on_the_line`) must stop it at once.

def cough(rng: np.random.Generator, level_dbfs: float = -20.0) -> FloatArray:
    """A cough: a 100-300 ms burst of broadband noise (one broad resonance between 400 and
    2000 Hz over a flat floor), attacking in 3-15 ms and decaying; half of them carry a weak
    glottal buzz 8-20 dB under the noise (a cough is little voiced, not unvoiced)."""
    count = round(rng.uniform(100, 300) * SAMPLE_RATE / 1000)
    centre, width, floor = rng.uniform(400, 2000), rng.uniform(0.7, 2.0), rng.uniform(0.1, 0.4)
    burst = _shaped_noise(count, rng, lambda f: np.sqrt(_peak(f, centre, centre * width)) + floor)
    ms = np.arange(count) * 1000 / SAMPLE_RATE
    attack, decay = rng.uniform(3, 15), rng.uniform(0.25, 0.6) * ms[-1]
    envelope = np.where(ms < attack, ms / attack, np.exp(-(ms - attack) / decay))
    envelope *= np.minimum(1, (ms[-1] - ms) / 10)  # a 10 ms release against a click
    burst *= envelope
    if rng.random() < 0.5:
        buzz = _voiced(np.full(count, rng.uniform(100, 250)), lambda f: np.ones_like(f))
        buzz *= envelope * np.sqrt(np.mean(burst**2) / np.mean((buzz * envelope) ** 2))
        burst += buzz * 10 ** (rng.uniform(-20, -8) / 20)
    return at_level(burst, level_dbfs)


def backchannel(rng: np.random.Generator, level_dbfs: float = -32.0,
                kind: Literal["mm", "uh-huh"] = "mm") -> FloatArray:
    """A backchannel. "mm" (also 嗯): a hummed nasal murmur, 150-350 ms, its pitch (90-240 Hz)
    gliding up to 20 % either way; the energy sits at a 220-320 Hz resonance, with an
    antiresonance near 1 kHz and only a trace of higher formants. "uh-huh": two short /ʌ/
    (100-160 ms each, the second rising) around 50-90 ms of breath, 250-410 ms in all."""
    if kind == "mm":
        count = round(rng.uniform(150, 350) * SAMPLE_RATE / 1000)
        start = rng.uniform(90, 240)
        f0 = np.linspace(start, start * rng.uniform(0.8, 1.2), count)
        murmur, zero, trace = rng.uniform(220, 320), rng.uniform(700, 1300), rng.uniform(1000, 2200)
        hum = _voiced(f0, lambda f: (_peak(f, murmur, 70) + 0.05 * _peak(f, trace, 150))
                      * (1 - 0.9 * _peak(f, zero, 150)))
        return at_level(hum * _envelope(count, rng.uniform(20, 50), rng.uniform(30, 70)),
                        level_dbfs)
    start = rng.uniform(90, 220)
    parts = []
    for rising in (False, True):
        count = round(rng.uniform(100, 160) * SAMPLE_RATE / 1000)
        end = start * (rng.uniform(1.1, 1.35) if rising else rng.uniform(0.9, 1.0))
        vowel = _voiced(np.linspace(start, end, count), _uh)
        parts.append(vowel * _envelope(count, 25, 40))
        if not rising:
            breath = _shaped_noise(round(rng.uniform(50, 90) * SAMPLE_RATE / 1000), rng,
                                   lambda f: _uh(f) + 0.3)
            parts.append(breath * 0.1 * np.sqrt(np.mean(parts[0] ** 2) / np.mean(breath**2)))
    return at_level(join(*parts), level_dbfs)


def at_level(signal: FloatArray, level_dbfs: float) -> FloatArray:
    """`signal` scaled so that its active power (see `active_power`) is at `level_dbfs`:
    speech with pauses, a cough and a hum compare by how loud they are while they sound."""
    scaled: FloatArray = signal * np.sqrt(dbfs_power(level_dbfs) / max(active_power(signal),
                                                                         1e-12))
    return scaled


@dataclass(frozen=True, slots=True)
class Scene:
    """What a call delivers while a prompt plays on an echo-free line: line noise, then one
    sound from the callee, then more line noise (`signal`, before G.711: see `pcm`).

    Where the sound starts, by its clean power in 10 ms blocks against the line noise's:
    `onset_ms` where it first stands clear of the noise (6 dB over it), `audible_ms` where it
    first reaches the noise's power, `first_ms` where it begins at all (within 30 dB of its
    active power, however deep under the noise). They differ for a soft start: the /s/ of
    "stop" is audible, barely, some 100 ms before its vowel stands clear. `end_ms`: where
    the sound ends."""

    signal: FloatArray
    onset_ms: float
    audible_ms: float
    first_ms: float
    end_ms: float


def on_the_line(sound: FloatArray, rng: np.random.Generator, *, noise_dbfs: float,
                lead_ms: float = 1000.0, tail_ms: float = 800.0,
                before: FloatArray | None = None) -> Scene:
    """`sound` after `lead_ms` of white line noise at `noise_dbfs`, `tail_ms` more after it;
    `before` (say, the callee's greeting) comes ahead of the lead-in. Set `noise_dbfs` from
    the callee's speech level and the line's SNR, so that quieter sounds (backchannels) sit
    nearer the noise."""
    lead = round(lead_ms * SAMPLE_RATE / 1000) + (0 if before is None else len(before))
    whole = join(silence(0) if before is None else before, silence(lead_ms), sound,
                 silence(tail_ms))
    noise_power = dbfs_power(noise_dbfs)
    noisy: FloatArray = whole + np.sqrt(noise_power) * rng.standard_normal(len(whole))
    block = SAMPLE_RATE // 100
    blocks = np.mean(sound[:len(sound) // block * block].reshape(-1, block) ** 2, axis=1)
    sounding = np.flatnonzero(np.abs(sound) > 0)

    def first_ms(threshold: float) -> float:
        over = np.flatnonzero(blocks >= threshold)
        return float((lead + block * (over[0] if len(over) else 0)) * 1000 / SAMPLE_RATE)

    return Scene(noisy, onset_ms=first_ms(4 * noise_power), audible_ms=first_ms(noise_power),
                 first_ms=first_ms(active_power(sound) / 1000),
                 end_ms=float((lead + (sounding[-1] + 1 if len(sounding) else 0)) * 1000
                              / SAMPLE_RATE))


def line_noise(ms: float, rng: np.random.Generator, level_dbfs: float = -45.0,
               hum_hz: float | None = None) -> FloatArray:
    """Line noise at `level_dbfs`: white noise with a low-pass (pink-ish) part, and mains hum
    (odd harmonics of `hum_hz`, 6 dB under the noise) when asked."""
    count = round(ms * SAMPLE_RATE / 1000)
    noise = _shaped_noise(count, rng, lambda f: 0.5 + 1 / np.sqrt(1 + (f / 300) ** 2))
    if hum_hz:
        t = np.arange(count) / SAMPLE_RATE
        hum = sum((np.sin(2 * np.pi * k * hum_hz * t + rng.uniform(0, 6)) / k
                   for k in (1, 3, 5, 7)), np.zeros(count))
        noise += hum * np.sqrt(np.mean(noise**2) / np.mean(hum**2) / 4)
    return at_level(noise, level_dbfs)


def _shaped_noise(count: int, rng: np.random.Generator,
                  gain: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """White noise through the amplitude response `gain(frequency in Hz)`."""
    frequencies = np.fft.rfftfreq(count, 1 / SAMPLE_RATE).astype(np.float64)
    shaped: FloatArray = np.fft.irfft(np.fft.rfft(rng.standard_normal(count)) * gain(frequencies),
                                      count)
    return shaped


def _voiced(f0: FloatArray, gain: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """A glottal buzz on the pitch track `f0` (Hz per sample): harmonics falling 6 dB per
    octave, each weighted by `gain` at its frequency, up to 3.8 kHz."""
    harmonics = np.arange(1, int(3800 // max(float(np.min(f0)), 1.0)) + 1)[:, None]
    frequency = harmonics * f0
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    weight = np.where(frequency < 3800, gain(frequency) / harmonics, 0)
    wave: FloatArray = np.sum(weight * np.sin(harmonics * phase), axis=0)
    return wave


def _peak(frequency: FloatArray, centre: float, width: float) -> FloatArray:
    peak: FloatArray = 1 / (1 + ((frequency - centre) / width) ** 2)
    return peak


def _uh(frequency: FloatArray) -> FloatArray:
    """The formants of /ʌ/ (640, 1190, 2390 Hz)."""
    return _peak(frequency, 640, 80) + 0.5 * _peak(frequency, 1190, 110) + 0.3 * _peak(
        frequency, 2390, 150)


def _envelope(count: int, attack_ms: float, release_ms: float) -> FloatArray:
    ms = np.arange(count) * 1000 / SAMPLE_RATE
    shape: FloatArray = np.clip(np.minimum(ms / attack_ms, (ms[-1] - ms) / release_ms), 0, 1)
    return shape
