"""Carrier tones in early media and just after answer: SIT codes and 450 Hz cadences.

`ToneDetector` hears a call's audio (8 kHz 16-bit mono PCM) and returns `ToneHeard`
findings: the tone, what it says about the number (`Announcement`), whether the network
rather than the number failed the call (`network`), and a confidence in [0, 1]. Speech,
silence, noise, dial tone and ringback give no finding.

Special information tones (Telcordia GR-1162 / ANSI T1.209, within ITU-T E.180): three
back-to-back segments, the first at 913.8 Hz (low) or 985.2 Hz (high), the second at
1370.6 Hz (low) or 1428.5 Hz (high), the third at 1776.7 Hz; the first two short (274 ms,
some equipment sends 276) or long (380 ms), the third long. The assigned codes:

| code | first      | second     | meaning (GR-1162)                        | finding              |
|------|------------|------------|------------------------------------------|----------------------|
| IC   | low short  | low short  | intercept: vacant, changed, disconnected | vacant               |
| VC   | high long  | low short  | vacant code: unassigned prefix or code   | vacant               |
| NC   | high long  | high long  | no circuit (inter-LATA): trunks blocked  | unreachable, network |
| NC   | low long   | low long   | no circuit (intra-LATA), emergency       | unreachable, network |
| RO   | high short | low long   | reorder (inter-LATA): equipment failure  | unreachable, network |
| RO   | low short  | high long  | reorder (intra-LATA)                     | unreachable, network |
| IO   | low long   | high short | ineffective other: miscellaneous         | unknown              |
| -    | high short | high short | reserved (and the 8 unassigned patterns) | unknown              |

IC and VC say the number as dialled does not exist. NC and RO say the network failed the
call and a later attempt may succeed: `unreachable` with `network=True`, to be counted
against the trunk or route (`Disposition.NETWORK_ERROR`), never against the number. IO and
reserved or unassigned codes say the call failed without saying why: `unknown`.

Chinese call-progress tones (the exchange tone plan; Asterisk's `indications.conf` [cn]
agrees): 450 +- 25 Hz. Busy 350 ms on / 350 off -> `busy`; congestion 700 / 700 ->
`unreachable`, `network=True`; vacant-number tone (空号音) 3 x (100 / 100) then 400 / 400
-> `vacant`; ringback 1 s / 4 s and continuous dial tone -> nothing. Busy and congestion
are reported after two on/off periods (the second off once long enough: about 1.3 s of
busy, 2.7 s of congestion tone), the vacant-number tone after one cycle (about 1.3 s);
every period within 25 % of its length.

How it hears: each 20 ms frame gets Goertzel powers at eight frequencies (the five SIT
ones; 425, 450, 475 Hz). A frame whose strongest frequency holds `_PURE` of its energy or
more (and is louder than `min_level_dbfs`) is labelled with that frequency's slot (SIT
first, second or third segment, or 450 Hz); consecutive frames of a slot make a run, which
survives `_GAP_FRAMES` unlabelled frames. A closed run takes the slot's frequency that held
most power; its edges are placed within their frames from the edge frames' power (a frame
half-filled by a tone has a quarter of its power), good to a few ms against the 106 ms
between short and long; and its level must hold steady (a voice's harmonic comes and goes).

Confidence scores the evidence, uncalibrated: a purity score (the tones' share of the
frames' energy, 1 from 2 dB SNR up) times a fit score (durations against the short/long
boundary or their tolerance; for SIT, each segment's frequency against its alternative).
Tones 3-5 dB below white noise are still recognised (else missed or `unknown`) with
confidences under 0.3; consumers wanting only clear evidence should ask for 0.5 or more.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from rules.signals import Announcement
from voice.goertzel import FRAME_MS, FRAME_SAMPLES, FloatArray, FrameSplitter, Goertzel, dbfs_power


class Tone(enum.StrEnum):
    """A tone pattern the detector recognises (ringback and dial tone are not findings)."""

    SIT_IC = "sit_intercept"
    SIT_VC = "sit_vacant_code"
    SIT_NC = "sit_no_circuit"
    SIT_RO = "sit_reorder"
    SIT_IO = "sit_ineffective_other"
    SIT_UNDEFINED = "sit_undefined"  # a SIT whose code is reserved or assigned to nothing
    BUSY = "busy"  # 450 Hz, 350 ms on / 350 ms off
    CONGESTION = "congestion"  # 450 Hz, 700 ms on / 700 ms off
    VACANT_TONE = "vacant_tone"  # 450 Hz, 3 x (100 ms on / 100 ms off), 400 ms on / 400 off


#: What each tone says: the announcement, and whether the network (not the number) failed.
MEANINGS: Final[Mapping[Tone, tuple[Announcement, bool]]] = {
    Tone.SIT_IC: (Announcement.VACANT, False),
    Tone.SIT_VC: (Announcement.VACANT, False),
    Tone.SIT_NC: (Announcement.UNREACHABLE, True),
    Tone.SIT_RO: (Announcement.UNREACHABLE, True),
    Tone.SIT_IO: (Announcement.UNKNOWN, False),
    Tone.SIT_UNDEFINED: (Announcement.UNKNOWN, False),
    Tone.BUSY: (Announcement.BUSY, False),
    Tone.CONGESTION: (Announcement.UNREACHABLE, True),
    Tone.VACANT_TONE: (Announcement.VACANT, False),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ToneHeard:
    """A tone pattern recognised in a call's audio. Times are ms from the detector's first
    sample: `started_ms` where the pattern began, `at_ms` the end of the frame completing it."""

    tone: Tone
    announcement: Announcement
    network: bool  # True: the network failed the call; say nothing about the number
    confidence: float
    started_ms: int
    at_ms: int


LOW_FIRST_HZ: Final = 913.8
HIGH_FIRST_HZ: Final = 985.2
LOW_SECOND_HZ: Final = 1370.6
HIGH_SECOND_HZ: Final = 1428.5
THIRD_HZ: Final = 1776.7
SHORT_MS: Final = 274
LONG_MS: Final = 380
CADENCE_HZ: Final = 450.0


@dataclass(frozen=True, slots=True)
class SitCode:
    """One row of the SIT code table: the first two segments and the tone they mean."""

    name: str
    first_hz: float
    first_ms: int
    second_hz: float
    second_ms: int
    tone: Tone


SIT_CODES: Final = (
    SitCode("IC", LOW_FIRST_HZ, SHORT_MS, LOW_SECOND_HZ, SHORT_MS, Tone.SIT_IC),
    SitCode("VC", HIGH_FIRST_HZ, LONG_MS, LOW_SECOND_HZ, SHORT_MS, Tone.SIT_VC),
    SitCode("NC inter-LATA", HIGH_FIRST_HZ, LONG_MS, HIGH_SECOND_HZ, LONG_MS, Tone.SIT_NC),
    SitCode("NC intra-LATA", LOW_FIRST_HZ, LONG_MS, LOW_SECOND_HZ, LONG_MS, Tone.SIT_NC),
    SitCode("RO inter-LATA", HIGH_FIRST_HZ, SHORT_MS, LOW_SECOND_HZ, LONG_MS, Tone.SIT_RO),
    SitCode("RO intra-LATA", LOW_FIRST_HZ, SHORT_MS, HIGH_SECOND_HZ, LONG_MS, Tone.SIT_RO),
    SitCode("IO", LOW_FIRST_HZ, LONG_MS, HIGH_SECOND_HZ, SHORT_MS, Tone.SIT_IO),
    SitCode("reserved", HIGH_FIRST_HZ, SHORT_MS, HIGH_SECOND_HZ, SHORT_MS, Tone.SIT_UNDEFINED),
)


@dataclass(frozen=True, slots=True)
class Cadence:
    """An on/off pattern at 450 Hz and the tone it means: `cycle` is (on ms, off ms) pairs,
    to be heard `repeats` times in a row, each period within `tolerance` of its length."""

    tone: Tone
    cycle: tuple[tuple[int, int], ...]
    repeats: int = 1
    tolerance: float = 0.25

    @property
    def periods(self) -> tuple[tuple[int, int], ...]:
        return self.cycle * self.repeats


CADENCES: Final = (
    Cadence(Tone.BUSY, ((350, 350),), repeats=2),
    Cadence(Tone.CONGESTION, ((700, 700),), repeats=2),
    Cadence(Tone.VACANT_TONE, ((100, 100), (100, 100), (100, 100), (400, 400))),
)
RINGBACK: Final = ((1000, 4000),)  # Chinese ringback (on ms, off ms): never a finding

# Goertzel bins, and the slot (segment position) each belongs to.
_FREQUENCIES: Final = (LOW_FIRST_HZ, HIGH_FIRST_HZ, LOW_SECOND_HZ, HIGH_SECOND_HZ, THIRD_HZ,
                       CADENCE_HZ - 25, CADENCE_HZ, CADENCE_HZ + 25)
_FIRST, _SECOND, _THIRD, _CADENCE = 0, 1, 2, 3
_SLOT_OF: Final = (_FIRST, _FIRST, _SECOND, _SECOND, _THIRD, _CADENCE, _CADENCE, _CADENCE)
_BINS_OF: Final = {_FIRST: (0, 1), _SECOND: (2, 3), _THIRD: (4,), _CADENCE: (5, 6, 7)}

_PURE: Final = 0.2  # share of a frame's energy at one frequency to call it a tone frame
_FULL_PURITY: Final = 0.6  # purity that scores 1 (a tone 2 dB above white noise)
_GAP_FRAMES: Final = 2  # unlabelled frames a run survives (noise dropouts)
_ADJACENT_FRAMES: Final = 3  # most frames between SIT segments (spec: < 4 ms of silence)
_THIRD_MIN_FRAMES: Final = 8  # labelled frames of the third segment before deciding
_SHORT_RANGE_MS: Final = (200.0, 327.0)  # measured first/second segment: short
_LONG_RANGE_MS: Final = (327.0, 470.0)  # ... long
_BOUNDARY_MS: Final = (SHORT_MS + LONG_MS) / 2
_SURE_MS: Final = 15.0  # measured this close to a nominal length: a perfect fit
_STEADY_DB: Final = 2.5  # most standard deviation of a tone run's level (inner frames)
_FREQ_MARGIN_DB: Final = (3.0, 10.0)  # chosen over alternative bin: scores 0 .. 1


@dataclass(slots=True)
class _Run:
    """Consecutive frames of one slot (internal, mutable while open)."""

    slot: int
    first: int
    before: FloatArray  # bin powers of the frame before `first`
    first_power: FloatArray  # bin powers of frame `first`
    last: int = -1
    last_power: FloatArray = field(default_factory=lambda: np.zeros(0))
    power_sum: FloatArray = field(default_factory=lambda: np.zeros(len(_FREQUENCIES)))
    purity_sum: FloatArray = field(default_factory=lambda: np.zeros(len(_FREQUENCIES)))
    level_sums: list[float] = field(default_factory=lambda: [0.0, 0.0])  # dB, dB squared
    frames: int = 0
    bin: int = -1
    start_ms: float = 0.0
    end_ms: float = 0.0
    margin_db: float = float("inf")
    unsteady_db: float = 0.0

    @property
    def duration_ms(self) -> float:
        return self.end_ms - self.start_ms

    @property
    def purity(self) -> float:
        return float(self.purity_sum[self.bin] / self.frames)

    def add(self, frame: int, power: FloatArray, relative: FloatArray) -> None:
        self.last, self.last_power = frame, power
        self.power_sum += power
        self.purity_sum += relative
        level = self._level(power)
        self.level_sums[0] += level
        self.level_sums[1] += level * level
        self.frames += 1

    def _level(self, power: FloatArray) -> float:
        return float(10 * np.log10(max(float(power[list(_BINS_OF[self.slot])].max()), 1e-9)))

    def close(self, after: FloatArray) -> None:
        """Choose the run's frequency, place its edges within their frames, and measure how
        much its level wandered (a tone's stays put; a voice's harmonic comes and goes)."""
        bins = _BINS_OF[self.slot]
        self.bin = max(bins, key=lambda b: float(self.power_sum[b]))
        if len(bins) > 1:
            other = max(float(self.power_sum[b]) for b in bins if b != self.bin)
            self.margin_db = float(10 * np.log10(max(self.power_sum[self.bin], 1e-9)
                                                 / max(other, 1e-9)))
        reference = float(self.power_sum[self.bin]) / self.frames

        def share(row: FloatArray) -> float:  # how much of the frame the tone filled
            return float(min(1.0, np.sqrt(max(float(row[self.bin]), 0.0) / reference)))

        # Frame `first` holds the tone's first `lead - share(before)` frames' worth, and so
        # on: the tone starts `lead` frames before the end of frame `first` and ends `tail`
        # frames after the start of frame `last` (after the end, for a one-frame run).
        lead = share(self.before) + share(self.first_power)
        tail = share(after) if self.first == self.last else share(self.last_power) + share(after)
        self.start_ms = FRAME_MS * (self.first + 1 - lead)
        self.end_ms = FRAME_MS * (self.last + (1 if self.first == self.last else 0) + tail)
        inner = self.frames - 2  # the edge frames are partly filled: leave them out
        if inner >= 2:
            edges = [self._level(self.first_power), self._level(self.last_power)]
            mean = (self.level_sums[0] - sum(edges)) / inner
            square = (self.level_sums[1] - sum(e * e for e in edges)) / inner
            self.unsteady_db = float(np.sqrt(max(square - mean * mean, 0.0)))


class ToneDetector:
    """Recognises SIT codes and 450 Hz cadences in a stream of PCM frames.

    - `feed` takes 16-bit little-endian mono PCM at 8 kHz, in 20 ms frames or any other
      chunking, and returns the findings completed by it (usually none).
    - Each `Tone` is reported at most once; use one detector per call.
    - Pure computation: no clock, no I/O; time is the count of samples fed.
    """

    def __init__(self, *, min_level_dbfs: float = -50.0) -> None:
        self._bank = Goertzel(_FREQUENCIES)
        self._floor = dbfs_power(min_level_dbfs) * FRAME_SAMPLES
        self._splitter = FrameSplitter()
        self._frame = 0
        self._previous: FloatArray = np.zeros(len(_FREQUENCIES))
        self._recent: deque[FloatArray] = deque(maxlen=_GAP_FRAMES + 2)
        self._open: _Run | None = None
        self._closed: deque[_Run] = deque(maxlen=3)
        self._on_runs: deque[_Run] = deque(maxlen=max(len(c.periods) for c in CADENCES))
        self._reported: set[Tone] = set()

    def feed(self, data: bytes) -> list[ToneHeard]:
        """Findings recognised in `data` (the stream's next bytes)."""
        frames = self._splitter.split(data)
        if not len(frames):
            return []
        power = self._bank.power(frames)
        energy = np.sum(frames * frames, axis=1)
        relative = 2 * power / (FRAME_SAMPLES * np.maximum(energy[:, None], 1e-9))
        heard: list[ToneHeard] = []
        for index in range(len(frames)):
            heard += self._step(power[index], relative[index], float(energy[index]))
        return heard

    def _step(self, power: FloatArray, relative: FloatArray, energy: float) -> list[ToneHeard]:
        strongest = int(np.argmax(relative))
        tonal = energy >= self._floor and relative[strongest] >= _PURE
        slot = _SLOT_OF[strongest] if tonal else None
        self._recent.append(power)
        heard: list[ToneHeard] = []
        run = self._open
        if run is not None and ((slot is not None and slot != run.slot)
                                or self._frame - run.last > _GAP_FRAMES):
            self._close(run)
            run = None
        if slot is not None:
            if run is None:
                run = self._open = _Run(slot, self._frame, self._previous, power)
            run.add(self._frame, power, relative)
            if run.slot == _THIRD and run.frames == _THIRD_MIN_FRAMES:
                heard += self._sit(run)
        if self._open is None or self._open.slot != _CADENCE:
            heard += self._cadence()
        self._previous = power
        self._frame += 1
        return heard

    def _close(self, run: _Run) -> None:
        offset = run.last + 1 - self._frame  # <= 0: how far back the frame after `last` is
        run.close(self._recent[len(self._recent) - 1 + offset])
        self._open = None
        self._closed.append(run)
        if run.slot == _CADENCE:
            self._on_runs.append(run)
        else:
            self._on_runs.clear()

    def _sit(self, third: _Run) -> list[ToneHeard]:
        if len(self._closed) < 2:
            return []
        first, second = self._closed[-2], self._closed[-1]
        if (first.slot, second.slot) != (_FIRST, _SECOND) or max(
                first.unsteady_db, second.unsteady_db) > _STEADY_DB:
            return []
        if (second.first - first.last > _ADJACENT_FRAMES
                or third.first - second.last > _ADJACENT_FRAMES):
            return []
        first_ms, second_ms = _length(first.duration_ms), _length(second.duration_ms)
        if first_ms is None or second_ms is None:
            return []
        key = (_FREQUENCIES[first.bin], first_ms, _FREQUENCIES[second.bin], second_ms)
        tone = _SIT_BY_KEY.get(key, Tone.SIT_UNDEFINED)
        third_purity = float(third.purity_sum[_BINS_OF[_THIRD][0]] / third.frames)
        purity = (first.purity + second.purity + third_purity) / 3
        fit = min(_duration_fit(first.duration_ms), _duration_fit(second.duration_ms),
                  _frequency_fit(first.margin_db), _frequency_fit(second.margin_db))
        return self._report(tone, _purity_score(purity) * (0.5 + 0.5 * fit), first.start_ms)

    def _cadence(self) -> list[ToneHeard]:
        if not self._on_runs:
            return []
        off_now = FRAME_MS * (self._frame + 1) - self._on_runs[-1].end_ms
        for cadence in CADENCES:
            periods = cadence.periods
            if cadence.tone in self._reported or len(self._on_runs) < len(periods):
                continue
            runs = list(self._on_runs)[-len(periods):]
            offs = [after.start_ms - before.end_ms for before, after in itertools.pairwise(runs)]
            errors = [abs(run.duration_ms - on) / on for run, (on, _) in zip(runs, periods,
                                                                              strict=True)]
            errors += [abs(off - want) / want for off, (_, want) in zip(offs, periods,
                                                                         strict=False)]
            if (max(errors) <= cadence.tolerance
                    and max(run.unsteady_db for run in runs) <= _STEADY_DB
                    and off_now >= periods[-1][1] * (1 - cadence.tolerance)):
                fit = 1 - max(errors) / cadence.tolerance
                purity = _purity_score(sum(run.purity for run in runs) / len(runs))
                return self._report(cadence.tone, purity * (0.5 + 0.5 * fit), runs[0].start_ms)
        return []

    def _report(self, tone: Tone, confidence: float, started_ms: float) -> list[ToneHeard]:
        if tone in self._reported:
            return []
        self._reported.add(tone)
        announcement, network = MEANINGS[tone]
        return [ToneHeard(tone=tone, announcement=announcement, network=network,
                          confidence=round(min(1.0, max(0.0, confidence)), 3),
                          started_ms=max(0, round(started_ms)),
                          at_ms=FRAME_MS * (self._frame + 1))]


_SIT_BY_KEY: Final = {(code.first_hz, code.first_ms, code.second_hz, code.second_ms): code.tone
                      for code in SIT_CODES}


def _length(duration_ms: float) -> int | None:
    """SHORT_MS or LONG_MS for a measured segment, or None when it is neither."""
    if _SHORT_RANGE_MS[0] <= duration_ms < _SHORT_RANGE_MS[1]:
        return SHORT_MS
    if _LONG_RANGE_MS[0] <= duration_ms <= _LONG_RANGE_MS[1]:
        return LONG_MS
    return None


def _duration_fit(duration_ms: float) -> float:
    """1 near or beyond the nominal short/long length, 0 on the boundary between them."""
    return min(1.0, abs(duration_ms - _BOUNDARY_MS) / (_BOUNDARY_MS - SHORT_MS - _SURE_MS))


def _frequency_fit(margin_db: float) -> float:
    low, high = _FREQ_MARGIN_DB
    return min(1.0, max(0.0, (margin_db - low) / (high - low)))


def _purity_score(purity: float) -> float:
    return min(1.0, max(0.0, (purity - _PURE) / (_FULL_PURITY - _PURE)))
