"""Block analysis of 8 kHz PCM: frames cut from a byte stream, and Goertzel bin powers.

The voice pipeline hears 8 kHz, 16-bit signed little-endian mono PCM in 20 ms frames
(160 samples, 320 bytes). `FrameSplitter` turns whatever byte chunks arrive into whole
frames; `Goertzel` measures how much of each block's energy lies at a few chosen
frequencies, which is all that tone and DTMF detection need.

Goertzel's recursion computes one DFT term, `X(f) = sum x[n] exp(-2j pi f n / rate)`, at any
`f` (not only at the FFT's bins). Here the same term comes from a dot product with a
precomputed cosine and sine basis: numpy does all frequencies of all blocks in one matrix
product, where the recursion would loop in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

SAMPLE_RATE: Final = 8000
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = SAMPLE_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES: Final = 2 * FRAME_SAMPLES  # 320
FULL_SCALE: Final = 32768.0


class FrameSplitter:
    """Cuts a stream of 16-bit little-endian PCM bytes into whole frames of samples.

    Chunks may have any length (even an odd number of bytes): what does not fill a frame
    waits for the next chunk.
    """

    def __init__(self, frame_samples: int = FRAME_SAMPLES) -> None:
        self._frame_bytes = 2 * frame_samples
        self._pending = b""

    def split(self, data: bytes) -> FloatArray:
        """The whole frames completed by `data`, shape (frames, frame_samples)."""
        pending = self._pending + data
        whole = len(pending) // self._frame_bytes * self._frame_bytes
        self._pending = pending[whole:]
        samples = np.frombuffer(pending[:whole], dtype="<i2").astype(np.float64)
        return samples.reshape(-1, self._frame_bytes // 2)


class Goertzel:
    """Power at fixed frequencies of fixed-length blocks, as a fraction of block energy.

    `relative_power` of a block that is a pure sine at one of the frequencies is about 1;
    of a block that is two equal sines at two of them, about 0.5 each; of white noise,
    about `2 / block` per frequency; of silence, 0. Blocks are shaped (block,) or
    (blocks, block); the result is shaped (frequencies,) or (blocks, frequencies).
    """

    def __init__(self, frequencies: Sequence[float], block: int = FRAME_SAMPLES,
                 rate: int = SAMPLE_RATE) -> None:
        if not frequencies or block <= 0:
            raise ValueError("Goertzel needs at least one frequency and a positive block length")
        self.frequencies: Final = tuple(float(f) for f in frequencies)
        self.block: Final = block
        phase = 2 * np.pi * np.outer(self.frequencies, np.arange(block)) / rate
        self._basis: FloatArray = np.concatenate([np.cos(phase), np.sin(phase)]).T

    def power(self, blocks: FloatArray) -> FloatArray:
        """|X(f)|^2 per block and frequency (in squared sample units)."""
        if blocks.shape[-1] != self.block:
            raise ValueError(f"blocks of {blocks.shape[-1]} samples; expected {self.block}")
        terms: FloatArray = blocks @ self._basis
        count = len(self.frequencies)
        squared: FloatArray = terms[..., :count] ** 2 + terms[..., count:] ** 2
        return squared

    def relative_power(self, blocks: FloatArray) -> FloatArray:
        """The share of each block's energy at each frequency (0 for a silent block)."""
        energy = np.sum(blocks * blocks, axis=-1, keepdims=True)
        relative: FloatArray = 2 * self.power(blocks) / (self.block * np.maximum(energy, 1e-9))
        return relative


def mean_square(blocks: FloatArray) -> FloatArray:
    """Mean power of each block (the last axis), in squared sample units."""
    power: FloatArray = np.mean(blocks * blocks, axis=-1)
    return power


def dbfs_power(dbfs: float) -> float:
    """The mean square of a signal whose RMS is `dbfs` relative to full scale (32768)."""
    return float((FULL_SCALE * 10 ** (dbfs / 20)) ** 2)
