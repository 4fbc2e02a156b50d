"""Local alignment of a stream of fingerprints against a few reference recordings.

Every reference frame is a cell; each new call frame moves every live alignment one cell
on (Smith-Waterman along the diagonal), so a cell's score is the evidence that the call's
latest frames are that recording up to that frame, whatever the start offset.

- A frame adds `weight * (likeness - bias)`: positive where call and reference agree
  better than unrelated speech does, negative where they do not. Silent reference frames
  (weight 0) neither add nor take away, so pauses do not break a match.
- A call frame lost in transit (the call runs a frame ahead) is a step of two cells at a
  cost (`skip_penalty`); steady drift, such as the same words read 10 % faster, costs a
  penalty every few frames and dies.
- A recording that ends goes on at its own start (carriers loop the recording, with a
  gap): its last cell's alignment waits in a loop state that fades slowly.
- Alignments start only where the caller allows (`fresh`); afterwards only the cells
  just past live alignments are scored, which keeps a frame cheap once the start of the
  call's sound has passed.
- Each live alignment carries where it started in the call, its best score so far, its
  distinctive evidence and how much reference weight it has covered.

Distinctive evidence is what a frame adds to an alignment beyond what the leading
established alignment of each recording of another meaning gains from the same frame. A
carrier's vacant and suspended recordings may share "您拨打的号码" sample for sample; while
the call plays it both gain alike and neither gathers distinctive evidence; once the words
part, one gains and the other loses. A rival that began well after the alignment (say,
at the shared opening after this recording's own end looped) has not heard as much, and
does not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from voice.fingerprints import PHASES, ReferencePrints, Vectors

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
_VIRTUAL: Final = 2  # cells before each recording: a dead cell, then its loop state
# OpenBLAS runs a product on one thread below about 2**18 multiply-adds; on a busy server a
# thread pool woken for a few hundred microseconds of work costs more than it saves.
_PRODUCT_SIZE: Final = 200_000


@dataclass(frozen=True, slots=True, kw_only=True)
class AlignSettings:
    """The alignment's constants (frames are 20 ms)."""

    bias: float = 0.4  # likeness a frame must beat to count for an alignment
    skip_penalty: float = 3.0  # cost of a lost call frame
    loop_decay: float = 0.01  # per frame, of a finished recording's score while it loops
    rival_floor: float = 1.5  # score from which another meaning's alignment is a rival
    rival_lag: float = 10.0  # frames a rival may have begun after an alignment


class References:
    """Reference recordings laid out for alignment: cells in order, each recording
    preceded by _VIRTUAL cells (a dead cell, then its loop state)."""

    def __init__(self, prints: Sequence[ReferencePrints], meanings: Sequence[str]) -> None:
        if not prints:
            raise ValueError("References need at least one recording")
        lengths = [len(p) for p in prints]
        self.first: Ints = np.cumsum([0, *[n + _VIRTUAL for n in lengths[:-1]]]) + _VIRTUAL
        self.last: Ints = self.first + np.array(lengths, np.int64) - 1
        self.cells = int(self.last[-1] + 1)
        self.recording: Ints = np.zeros(self.cells, np.int64)
        self.weights = np.zeros(self.cells, np.float32)
        vectors = np.zeros((PHASES, self.cells, prints[0].vectors.shape[2]), np.float32)
        for index, print_ in enumerate(prints):
            cells = slice(self.first[index], self.last[index] + 1)
            self.recording[self.first[index] - _VIRTUAL:self.last[index] + 1] = index
            self.weights[cells] = print_.weights
            vectors[:, cells] = print_.vectors
        self.real: Ints = np.concatenate([np.arange(start, end + 1) for start, end in zip(
            self.first, self.last, strict=True)])
        self.is_real: Bools = np.zeros(self.cells, bool)
        self.is_real[self.real] = True
        kinds = np.unique(np.array(meanings), return_inverse=True)[1]
        self.rivals: Bools = kinds[:, None] != kinds[None, :]  # [r, q]: q means otherwise
        loud = np.flatnonzero(self.weights > 0)  # cells worth comparing
        self._column: Ints = np.full(self.cells, -1, np.int64)
        self._column[loud] = np.arange(len(loud))
        # (dimensions, loud cells * phases): one product scores a batch of call frames
        matrix = vectors[:, loud].transpose(2, 1, 0)
        self._matrix: Vectors = np.ascontiguousarray(matrix.reshape(matrix.shape[0], -1))

    def likeness(self, vectors: Vectors, cells: Ints | None = None) -> Vectors:
        """Cosine likeness of each call frame to each of `cells` (default: every cell),
        the better of the phases: shaped (frames, cells); silent cells get 0."""
        columns = self._column if cells is None else self._column[cells]
        loud = columns >= 0
        wanted = (columns[loud][:, None] * PHASES + np.arange(PHASES)).ravel()
        matrix = self._matrix if cells is None else self._matrix[:, wanted]
        step = max(PHASES * 16, _PRODUCT_SIZE // max(vectors.size, 1) // PHASES * PHASES)
        scores = np.concatenate([vectors @ matrix[:, start:start + step]
                                 for start in range(0, matrix.shape[1], step)] or
                                [np.zeros((len(vectors), 0), np.float32)], axis=1)
        result = np.zeros((len(vectors), len(columns)), np.float32)
        result[:, loud] = scores.reshape(len(vectors), -1, PHASES).max(axis=2)
        return result


@dataclass(frozen=True, slots=True)
class Best:
    """A live alignment: its recording, the cell it has reached (frame index within the
    recording), its score, evidence, the call frame it started at, the weight it matched
    and the weight it has gone through."""

    recording: int
    cell: int
    score: float
    evidence: float
    start: int
    covered: float
    length: float


SCORE, EVIDENCE, PEAK, COVERED, START, LENGTH = range(6)  # rows of Aligner.state


class Aligner:
    """All alignments of one call against `References`, one call frame at a time.

    `state` holds, per cell, the best alignment ending there: its score (0: none), its
    distinctive evidence, its best score so far (peak), the reference weight it matched
    (covered: frames that gained), the call frame it started at, and its length (the
    reference weight it has gone through); `live` lists the real cells with a score and
    `loops` the loop cells with one.
    """

    def __init__(self, references: References, settings: AlignSettings) -> None:
        self._refs = references
        self._settings = settings
        self._loop = references.first - 1
        self.state = np.zeros((6, references.cells), np.float32)
        self.live: Ints = np.zeros(0, np.int64)
        self.loops: Ints = np.zeros(0, np.int64)
        self.frame = 0

    def reachable(self, steps: int) -> Ints:
        """The real cells live alignments can reach in `steps` frames (cells to score).
        Recordings are apart by two virtual cells, so no step of two leaves one."""
        if not len(self.live) and not len(self.loops):
            return self.live
        reach = np.zeros(self._refs.cells + 2 * steps, bool)
        for offset in range(1, 2 * steps + 1):
            reach[self.live + offset] = True
            reach[self.loops + offset] = True
        reach = reach[: self._refs.cells] & self._refs.is_real
        found: Ints = np.flatnonzero(reach)
        return found

    def step(self, likeness: Vectors, cells: Ints, fresh: bool) -> Vectors:
        """Advance every alignment by one call frame, and return the new state of the live
        cells. `likeness` is the frame's likeness to `cells`, which must hold every cell a
        live alignment can step to (every real cell when `fresh`: alignments may begin)."""
        state, settings = self.state, self._settings
        skipped = np.float32(settings.skip_penalty)
        loops = self._looped()
        diagonal = state[SCORE, cells - 1]
        skip = state[SCORE, cells - 2] - skipped
        from_skip = skip > diagonal
        before = np.maximum(skip, diagonal)
        gain = self._refs.weights[cells] * (likeness - np.float32(settings.bias))
        score = before + gain
        alive = (before > 0) & (score > 0)
        counted = (score > 0) if fresh else alive
        new = state[:, cells - 1 - from_skip] * alive
        new[SCORE] = score
        new[START] = np.where(alive, new[START], np.float32(self.frame))
        new[EVIDENCE] += gain - self._rival_gain(cells, gain, np.where(alive, before, 0),
                                                 new[START]) - skipped * from_skip
        np.maximum(new[PEAK], score, out=new[PEAK])
        weights = self._refs.weights[cells]
        new[COVERED] += weights * (gain > 0)
        new[LENGTH] += weights
        state[SCORE, self.live] = 0
        self.live = cells[counted]
        state[:, self.live] = new[:, counted]
        state[:, self._loop] = loops
        self.loops = self._loop[loops[SCORE] > 0]
        self.frame += 1
        live: Vectors = new[:, counted]
        return live

    def idle(self) -> None:
        """A frame with no alignment alive and none allowed to begin."""
        self.frame += 1

    def _rival_gain(self, cells: Ints, gain: Vectors, before: Vectors, start: Vectors
                    ) -> Vectors:
        """Per cell, what the leading alignment of each recording of another meaning gains
        from this frame, at most (0 when none is established or none gains). A rival that
        began more than `rival_lag` frames after the cell's alignment does not count: it
        has not heard what this one has (say, this recording's end before it looped)."""
        established = before >= self._settings.rival_floor
        if not established.any():
            return np.zeros(len(cells), np.float32)
        owners = self._refs.recording[cells]
        recordings = len(self._refs.first)
        top = np.zeros(recordings, np.float32)
        np.maximum.at(top, owners[established], before[established])
        leading = np.flatnonzero(established & (before == top[owners]))
        rival_gain = np.zeros(recordings, np.float32)
        rival_start = np.full(recordings, np.inf, np.float32)
        rival_gain[owners[leading]] = gain[leading]
        rival_start[owners[leading]] = start[leading]
        counts = self._refs.rivals[owners] & (rival_start[None, :]
                                              <= start[:, None] + self._settings.rival_lag)
        rival: Vectors = np.max(np.where(counts, np.maximum(rival_gain, 0), 0), axis=1)
        return rival

    def _looped(self) -> Vectors:
        """The loop states after this frame: each keeps the better of its recording's last
        cell and its own past, faded (a recording that ends goes on at its start)."""
        loop, last = self.state[:, self._loop], self.state[:, self._refs.last]
        faded = np.maximum(loop[SCORE] - np.float32(self._settings.loop_decay), 0)
        take = last[SCORE] > faded
        values: Vectors = np.where(take, last, loop)
        values[SCORE] = np.where(take, last[SCORE], faded)
        return values

    def leading(self, live: Vectors) -> Bools:
        """Which live cells hold their recording's best score (`live` as `step` returns)."""
        owners = self._refs.recording[self.live]
        top = np.zeros(len(self._refs.first), np.float32)
        np.maximum.at(top, owners, live[SCORE])
        leads: Bools = live[SCORE] >= top[owners]
        return leads

    def alignments(self, cells: Ints) -> list[Best]:
        """The alignments ending at `cells` (real cells)."""
        refs, state = self._refs, self.state
        return [Best(int(refs.recording[c]), int(c - refs.first[refs.recording[c]]),
                     float(state[SCORE, c]), float(state[EVIDENCE, c]), int(state[START, c]),
                     float(state[COVERED, c]), float(state[LENGTH, c])) for c in cells]

    def contradicted(self, live: Vectors, min_peak: float, drop: float) -> set[int]:
        """Recordings whose best alignment reached `min_peak` and has since fallen by
        `drop`, with no other alignment of the recording as high: the call went on
        differently from the recording, so it is another recording sharing some words.
        `live`: the state of the live cells, as `step` returned it."""
        fallen = (live[PEAK] >= min_peak) & (live[PEAK] - live[SCORE] >= drop)
        if not fallen.any():
            return set()
        owners = self._refs.recording[self.live]
        highest = np.zeros(len(self._refs.first), np.float32)
        np.maximum.at(highest, owners, live[SCORE])
        np.maximum.at(highest, self._refs.recording[self.loops], self.state[SCORE, self.loops])
        lost = highest[owners[fallen]] <= live[PEAK][fallen] - drop
        return {int(owner) for owner in owners[fallen][lost]}
