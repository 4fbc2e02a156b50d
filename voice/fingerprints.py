"""Spectral fingerprints of 8 kHz audio, for recognising one recording played again.

A recording played again (a carrier's announcement: every call the same file) keeps what a
new reading of the same words loses, the exact pitch of every syllable; and what another
sentence in the same voice loses, the sounds. A fingerprint holds both, per 20 ms frame,
from the log power spectrum over a 64 ms Hann window (15.6 Hz bins, so that a voice's
harmonics stand apart) between 250 and 2500 Hz:

- the fine structure (weight 0.7): the log spectrum minus its 140 Hz moving average, the
  comb of harmonic peaks and valleys. It moves by whole bins when the pitch changes by a
  few percent: another speaker, the same speaker another day, a synthesiser at another
  pitch or speed;
- the envelope (weight 0.3): 20 mel bands (log), less their mean: which vowel or consonant.

Both are differences of logs, so a level change leaves them be. Frames are compared by
the cosine of their fingerprints: 0.9-1 for the same recording (clean), 0.6-0.7 through
G.711 at 10 dB SNR, 0.1-0.5 for the same words read again, in another voice, or faster.

Noise: every bin's power gets a floor before the log, 1.5 times the larger of the bin's
noise estimate and the frame's 10th-percentile bin power, so bins that noise fills come
out flat instead of random and drop out of the comparison. The noise estimate: its shape
from each bin's least smoothed power over the last 1.1-1.3 s ("minimum statistics"), its
level from the 10th percentile of the last 2 s of frames' band power. A frame's print is
shortened by how little it stands over that noise (full length from 5 dB up, none at
0 dB): a frame of noise alone says nothing, rather than something random.

`PrintMaker` makes fingerprints from a stream of frames (its state: the last 352 samples
and the noise tracker). `reference_prints` makes them for a whole clean recording, at two
framings 10 ms apart (a call's frames fall anywhere against the recording's: a print half
a frame off compares at 0.76 instead of 0.96, clean), and weighs each frame by its level.
`Prints.active` marks frames with sound over the noise that is not one steady tone
(ringback, SIT, dial tone sit in one narrow peak; a voice spreads over many harmonics).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from voice.goertzel import FRAME_SAMPLES, SAMPLE_RATE, FloatArray

Vectors = npt.NDArray[np.float32]

FFT_SAMPLES: Final = 512  # 64 ms: harmonics of a 100 Hz voice are resolved
LOW_HZ: Final = 250.0
HIGH_HZ: Final = 2500.0
SMOOTH_BINS: Final = 9  # the envelope removed from the fine structure: 140 Hz
BANDS: Final = 20  # mel bands of the envelope
ENVELOPE_SHARE: Final = 0.3  # the envelope's part of the likeness; the rest is fine structure
PHASES: Final = 2  # framings of a reference recording, 10 ms apart

_BIN_HZ: Final = SAMPLE_RATE / FFT_SAMPLES
_FIRST_BIN: Final = int(np.ceil(LOW_HZ / _BIN_HZ))
_LAST_BIN: Final = int(HIGH_HZ / _BIN_HZ)
_BINS: Final = _LAST_BIN - _FIRST_BIN + 1
_PAD: Final = SMOOTH_BINS // 2
DIMENSIONS: Final = _BINS - 2 * _PAD + BANDS

_NOISE_FACTOR: Final = 1.5  # the floor added before the log, in noise estimates
_FLOOR_RANK: Final = _BINS // 10  # the frame's 10th-percentile bin
_NOISE_SMOOTHING: Final = 0.6  # weight of the past in the smoothed power
_NOISE_BLOCK: Final = 8  # frames per block of the minimum tracker
_NOISE_BLOCKS: Final = 7  # past blocks it remembers (with the one under way: 1.1-1.3 s)
_LEVEL_FRAMES: Final = 100  # frames the noise level is the 10th percentile of: 2 s
_WARM_FRAMES: Final = 3  # the first frames' windows start in silence: not noise samples
_ABSOLUTE_FLOOR_DBFS: Final = -85.0  # bin power floor, so that digital silence has a log
_TONAL_SHARE: Final = 0.75  # share of the energy above the noise in one peak: a tone
_ACTIVE_DB: Final = 6.0  # a frame this far over the noise is active
_HEARD_DB: Final = (0.0, 5.0)  # a print's length: 0 this far over the noise, 1 here
_LOUD_DB: Final = (24.0, 12.0)  # reference weight: 0 this far under the loud frames, 1 here

_WINDOW: Final = np.hanning(FFT_SAMPLES)
# A full-scale sine's power in its bin is (32768 * N / 4)^2 with a Hann window.
_ABSOLUTE_FLOOR: Final = float((32768 * FFT_SAMPLES / 4) ** 2 * 10 ** (_ABSOLUTE_FLOOR_DBFS / 10))


def _mel_bank() -> FloatArray:
    """Triangular mel filters over the fingerprint's bins, shaped (bins, BANDS)."""
    def mel(hz: FloatArray) -> FloatArray:
        return 2595 * np.log10(1 + hz / 700)

    hertz: FloatArray = np.arange(_FIRST_BIN, _LAST_BIN + 1, dtype=np.float64) * _BIN_HZ
    edges = 700 * (10 ** (np.linspace(mel(hertz[:1]), mel(hertz[-1:]), BANDS + 2)[:, 0] / 2595)
                   - 1)
    low, centre, high = edges[:-2], edges[1:-1], edges[2:]
    rising = (hertz[:, None] - low) / (centre - low)
    falling = (high - hertz[:, None]) / (high - centre)
    bank: FloatArray = np.clip(np.minimum(rising, falling), 0.0, None)
    return bank


_MEL: Final = _mel_bank()


@dataclass(frozen=True, slots=True)
class Prints:
    """Fingerprints of consecutive 20 ms frames: `vectors` (frames, DIMENSIONS), rows of
    length `heard` (0-1: how far the frame stands over the noise); `active`, whether a
    frame is sound over the noise other than a steady tone; `level_db`, each frame's power
    in the band, in dB against an arbitrary reference."""

    vectors: Vectors
    active: npt.NDArray[np.bool_]
    heard: FloatArray
    level_db: FloatArray

    def __len__(self) -> int:
        return len(self.vectors)


class PrintMaker:
    """Fingerprints of a stream of 20 ms frames, in order; one maker per stream. How the
    stream is cut into calls of `feed` does not change a frame's fingerprint."""

    def __init__(self) -> None:
        self._history = np.zeros(FFT_SAMPLES - FRAME_SAMPLES)
        self._smoothed: FloatArray | None = None  # the last frame's smoothed bin powers
        self._block_minimum = np.full(_BINS, np.inf)  # of the block of frames under way
        self._block_frames = 0
        self._minima: deque[FloatArray] = deque(maxlen=_NOISE_BLOCKS)  # of past blocks
        self._older = np.full(_BINS, np.inf)  # the least of `_minima`
        self._totals: deque[float] = deque(maxlen=_LEVEL_FRAMES)
        self._seen = 0

    def feed(self, frames: FloatArray) -> Prints:
        """Fingerprints of `frames`, shaped (count, 160), samples in the int16 scale."""
        count = len(frames)
        samples = np.concatenate([self._history, frames.reshape(-1)])
        self._history = samples[len(samples) - len(self._history):]
        starts = np.arange(count) * FRAME_SAMPLES
        windows = samples[starts[:, None] + np.arange(FFT_SAMPLES)] * _WINDOW
        power = np.abs(np.fft.rfft(windows, axis=1)[:, _FIRST_BIN:_LAST_BIN + 1]) ** 2
        return _prints(power, self._noise(power) if count else power)

    def _noise(self, power: FloatArray) -> FloatArray:
        """Each frame's noise spectrum. Its shape: each bin's least smoothed power over the
        last 7-8 blocks of _NOISE_BLOCK frames (1.1-1.3 s; speech leaves gaps in every bin,
        noise does not). Its level: the 10th percentile of the band power of the last 2 s
        of frames (speech pauses at least that often; the least would be too low)."""
        smoothed = self._smooth(power)
        noise = np.empty_like(power)
        for index, row in enumerate(smoothed):
            self._block_minimum = np.minimum(self._block_minimum, row)
            shape = np.minimum(self._older, self._block_minimum)
            self._block_frames += 1
            if self._block_frames == _NOISE_BLOCK:
                self._minima.append(self._block_minimum)
                self._older = np.min(self._minima, axis=0)
                self._block_minimum, self._block_frames = np.full(_BINS, np.inf), 0
            total = float(power[index].sum())
            self._seen += 1
            if self._seen > _WARM_FRAMES:
                self._totals.append(total)
            rank = len(self._totals) // 10
            level = np.partition(np.fromiter(self._totals, float), rank)[rank] \
                if self._totals else total
            noise[index] = shape * (level / max(float(shape.sum()), 1e-9))
        return noise

    def _smooth(self, power: FloatArray) -> FloatArray:
        """Each bin's power through a one-pole low-pass, as one product."""
        ages = np.arange(len(power))
        lags = ages[:, None] - ages[None, :]
        weights = np.where(lags >= 0, (1 - _NOISE_SMOOTHING) * _NOISE_SMOOTHING
                           ** np.maximum(lags, 0), 0.0)
        previous = power[0] if self._smoothed is None else self._smoothed
        smoothed: FloatArray = weights @ power + np.outer(_NOISE_SMOOTHING ** (ages + 1),
                                                          previous)
        self._smoothed = smoothed[-1]
        return smoothed


@dataclass(frozen=True, slots=True)
class ReferencePrints:
    """Fingerprints of a whole clean recording, as a matcher compares against it.

    `vectors` (PHASES, frames, DIMENSIONS): the recording framed at PHASES offsets 10 ms
    apart. `weights` (frames,) in [0, 1]: 1 for frames within 12 dB of the recording's loud
    frames, falling to 0 at 24 dB under them (pauses and breath say nothing).
    """

    vectors: Vectors
    weights: Vectors

    def __len__(self) -> int:
        return int(self.vectors.shape[1])


def reference_prints(samples: FloatArray) -> ReferencePrints:
    """The fingerprints of a clean recording (8 kHz samples in the int16 scale)."""
    frames = len(samples) // FRAME_SAMPLES
    phases = []
    level_db = np.zeros(frames)
    for phase in range(PHASES):
        shift = phase * FRAME_SAMPLES // PHASES
        shifted = np.concatenate([samples[shift:], np.zeros(shift)])
        prints = PrintMaker().feed(shifted[: frames * FRAME_SAMPLES].reshape(frames, -1))
        phases.append(prints.vectors)
        level_db = prints.level_db if phase == 0 else level_db
    loud = float(np.percentile(level_db, 90)) if frames else 0.0
    low, full = _LOUD_DB
    weights = np.clip((level_db - loud + low) / (low - full), 0.0, 1.0).astype(np.float32)
    return ReferencePrints(np.stack(phases), weights)


def _prints(power: FloatArray, noise: FloatArray) -> Prints:
    """Fingerprints from bin powers and noise estimates, shaped (frames, bins)."""
    quiet = np.partition(power, _FLOOR_RANK, axis=1)[:, _FLOOR_RANK:_FLOOR_RANK + 1]
    floored = power + _NOISE_FACTOR * np.maximum(noise, quiet) + _ABSOLUTE_FLOOR
    logs = np.log10(floored)
    fine = logs[:, _PAD:_BINS - _PAD] - _running_sums(logs, SMOOTH_BINS) / SMOOTH_BINS
    envelope = np.log10(floored @ _MEL)
    envelope -= envelope.mean(axis=1, keepdims=True)
    total = power.sum(axis=1) + _ABSOLUTE_FLOOR
    over_noise = 10 * np.log10(total / (noise.sum(axis=1) + _ABSOLUTE_FLOOR))
    heard = np.clip((over_noise - _HEARD_DB[0]) / (_HEARD_DB[1] - _HEARD_DB[0]), 0.0, 1.0)
    vectors = np.concatenate([_unit(fine) * np.sqrt(1 - ENVELOPE_SHARE),
                              _unit(envelope) * np.sqrt(ENVELOPE_SHARE)], axis=1) * heard[:, None]
    active = (over_noise >= _ACTIVE_DB) & ~_tonal(np.maximum(power - noise, 0.0))
    return Prints(vectors.astype(np.float32), active, heard, 10 * np.log10(total))


def _unit(rows: FloatArray) -> FloatArray:
    unit: FloatArray = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)
    return unit


def _running_sums(rows: FloatArray, width: int) -> FloatArray:
    """Sums of `width` consecutive values along each row (np.pad is slow at this size)."""
    cumulative = np.cumsum(rows, axis=1)
    sums: FloatArray = cumulative[:, width - 1:].copy()
    sums[:, 1:] -= cumulative[:, :-width]
    return sums


def _tonal(excess: FloatArray) -> npt.NDArray[np.bool_]:
    """Frames whose power over the noise lies mostly in one peak (five bins, 78 Hz)."""
    peak = np.max(_running_sums(excess, 5), axis=1)
    tonal: npt.NDArray[np.bool_] = peak >= _TONAL_SHARE * np.maximum(excess.sum(axis=1), 1e-9)
    return tonal
