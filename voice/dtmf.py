"""In-band DTMF: keys pressed on the far end, heard in the call's audio.

`DtmfDetector` is fed 8 kHz 16-bit mono PCM (20 ms frames or any chunking) and returns a
`KeyPressed` for each key press, once, however long the key is held. RFC 2833/4733
telephone-events arrive out of band and are the SIP backend's business; this detector is
for far ends that send DTMF as sound.

How it hears: 20 ms windows (160 samples) every 10 ms get Goertzel powers at the four row
(697, 770, 852, 941 Hz) and four column (1209, 1336, 1477, 1633 Hz) frequencies. A window
holds a key when

- it is louder than `min_level_dbfs`;
- the strongest row and the strongest column together hold at least `_PURITY` of the
  window's energy (speech spreads its energy over many harmonics and formants; a key puts
  nearly all of it in two tones), and neither is weaker than `_EACH` of it;
- the twist is acceptable: the column tone at most 4 dB louder and at most 8 dB quieter
  than the row tone (`_TWIST_DB`, the usual receiver limits);
- the strongest row beats every other row, and the strongest column every other column,
  by `_PEAK_DB`.

A key is pressed when `_ON_WINDOWS` consecutive windows hold it (about 40 ms of tone), and
released after `_OFF_WINDOWS` consecutive windows without it (about 40 ms of gap); a
dropout shorter than that does not end a press, so a held key is reported once. A press
that changes straight to another key reports the new key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from voice.goertzel import (
    FRAME_MS,
    FRAME_SAMPLES,
    FloatArray,
    FrameSplitter,
    Goertzel,
    dbfs_power,
)

KEYS: Final = "123A456B789C*0#D"  # row by row
ROWS_HZ: Final = (697.0, 770.0, 852.0, 941.0)
COLUMNS_HZ: Final = (1209.0, 1336.0, 1477.0, 1633.0)

_HOP: Final = FRAME_SAMPLES // 2  # 10 ms
_HOP_MS: Final = FRAME_MS // 2
_PURITY: Final = 0.6
_EACH: Final = 0.08
_TWIST_DB: Final = (-8.0, 4.0)
_PEAK_DB: Final = 6.0
_TWIST: Final = (10 ** (_TWIST_DB[0] / 10), 10 ** (_TWIST_DB[1] / 10))  # as power ratios
_PEAK: Final = 10 ** (-_PEAK_DB / 10)
_ON_WINDOWS: Final = 3
_OFF_WINDOWS: Final = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyPressed:
    """A DTMF key heard; `at_ms` is where its tone began, from the detector's first sample."""

    key: str
    at_ms: int


class DtmfDetector:
    """Reports in-band DTMF key presses in a stream of PCM frames.

    - `feed` takes 16-bit little-endian mono PCM at 8 kHz in any chunking and returns the
      presses completed by it, in order.
    - A press is reported once, when its tone has lasted about 40 ms; holding the key
      reports nothing more.
    - Pure computation: no clock, no I/O; time is the count of samples fed.
    """

    def __init__(self, *, min_level_dbfs: float = -45.0) -> None:
        self._bank = Goertzel(ROWS_HZ + COLUMNS_HZ)
        self._floor = dbfs_power(min_level_dbfs) * FRAME_SAMPLES
        self._splitter = FrameSplitter()
        self._tail: FloatArray = np.zeros(_HOP)
        self._window = 0  # windows analysed so far
        self._candidate: str | None = None
        self._streak = 0
        self._streak_start = 0
        self._pressed: str | None = None
        self._misses = 0

    def feed(self, data: bytes) -> list[KeyPressed]:
        """Key presses recognised in `data` (the stream's next bytes)."""
        frames = self._splitter.split(data)
        if not len(frames):
            return []
        samples = np.concatenate([self._tail, frames.ravel()])
        self._tail = samples[-_HOP:]
        starts = np.arange(0, len(samples) - FRAME_SAMPLES + 1, _HOP)
        windows = samples[starts[:, None] + np.arange(FRAME_SAMPLES)]
        keys = self._keys(windows)
        pressed: list[KeyPressed] = []
        for key in keys:
            pressed += self._step(key)
        return pressed

    def _keys(self, windows: FloatArray) -> list[str | None]:
        """The key each window holds, or None."""
        energy = np.sum(windows * windows, axis=1)
        relative = 2 * self._bank.power(windows) / (FRAME_SAMPLES
                                                     * np.maximum(energy[:, None], 1e-9))
        # A window or two per frame: plain Python beats numpy's per-call cost here.
        return [_key(shares) if loud else None
                for shares, loud in zip(relative.tolist(), (energy >= self._floor).tolist(),
                                        strict=True)]

    def _step(self, key: str | None) -> list[KeyPressed]:
        window = self._window
        self._window += 1
        if key is None:
            self._candidate, self._streak = None, 0
            self._misses += 1
            if self._misses >= _OFF_WINDOWS:
                self._pressed = None
            return []
        self._misses = 0
        if key != self._candidate:
            self._candidate, self._streak, self._streak_start = key, 0, window
        self._streak += 1
        if self._streak >= _ON_WINDOWS and key != self._pressed:
            self._pressed = key
            # window w covers samples [HOP * (w - 1), HOP * (w - 1) + FRAME_SAMPLES)
            return [KeyPressed(key=key, at_ms=max(0, _HOP_MS * (self._streak_start - 1)))]
        return []


def _key(shares: list[float]) -> str | None:
    """The key whose two tones hold a window's energy (`shares` per frequency), if any."""
    rows, columns = shares[:4], shares[4:]
    low, high = max(rows), max(columns)
    if low + high < _PURITY or low < _EACH or high < _EACH:
        return None
    if not _TWIST[0] <= high / low <= _TWIST[1]:
        return None
    if sorted(rows)[-2] > low * _PEAK or sorted(columns)[-2] > high * _PEAK:
        return None
    return KEYS[4 * rows.index(low) + columns.index(high)]
