"""Carrier voice announcements in early media, recognised against a library of recordings.

Chinese networks say why a call fails in words, not tones: "您拨打的号码是空号，请查证后再
拨" (vacant), "...已停机" (suspended), "...已关机" (powered off), "...暂时无法接通" (unreachable),
"...正在通话中" (busy), often followed by the same in English, played in early media (SIP
183) or after a fake answer, while the final SIP code says nothing. Each carrier plays the
same recording every time, so a deployment keeps a library of the recordings it has met,
labelled by meaning, and `AnnouncementMatcher` recognises them in a call's audio (audio
fingerprinting, not speech recognition). An announcement that is not in the library gives
no finding: never a guess, and above all never `vacant`.

The library folder holds the recordings (PCM WAV files of any rate, 8 to 32 bit, mono or
stereo; they are mixed to mono and resampled to 8 kHz) and an index, `index.csv`: a header
line, then one line per recording; lines starting with `#` are comments::

    file,meaning,carrier,language
    a-vacant.wav,vacant,carrier-a,cmn+en
    b-busy.wav,busy,carrier-b,cmn

`file` is a path relative to the folder, `meaning` an `Announcement` value (vacant,
suspended, powered_off, unreachable, busy; `unknown` marks a recording to recognise that
says nothing about the number, such as a colour ringback tone), `carrier` and `language`
free text for the reports (may be empty). Other columns are ignored. Problems with the
folder, the index or a recording raise `AnnouncementLibraryError`, naming the file.

How it hears (voice.fingerprints, voice.alignment): each 20 ms frame's fingerprint (the
spectrum's harmonic fine structure and its envelope) is compared with every frame of every
recording; alignments follow a recording frame by frame (a lost frame costs a penalty, a
recording that ends loops), gaining where the likeness beats `AlignSettings.bias`. A
finding needs all of:

- matched audio: an alignment that matched `min_covered` frames of the recording's speech
  (0.6 s; `vacant_min_covered`, 1.5 s, for vacant: the finding that stops a number being
  dialled), its mean likeness `min_margin` over the bias, still near its best (`max_fall`);
- distinctive evidence (`evidence`): what the alignment gained beyond the leading alignment
  of any recording of another meaning that has heard as much. Words a carrier's recordings
  share ("您拨打的号码") count nothing until the recordings part;
- an anchor: the alignment began within `anchor_slack_frames` (0.4 s) of where the call's
  sound began, or began again after a pause of `pause_frames` (0.8 s). Sound before the
  matched stretch that matched nothing means another recording sharing some words;
- no contradiction: no alignment of the recording built up `contradiction_peak` and then
  fell by `contradiction_drop` (the call went on differently: a shared start, other words);
- one meaning: no recording of another meaning is ready at the same frame.

Limits. A recording not in the library that opens with the same audio as one that is (a
carrier splicing its prompts from one recorded opening) for longer than `min_covered` of
what sets that one apart is taken for it: label every recording of a carrier you meet. A
new reading of the same words (another voice, speed or pitch) is not the recording.

Figures (scripts/bench_voice_announce.py: G.711, 10-20 dB SNR, +-10 dB, any start offset,
1 % lost frames, ringback before): 99 % of known cases found, none with a wrong meaning,
half within 1.9 s of the announcement's start, 95 % within 3.7 s (the slow ones: vacant's
1.5 s, 10 dB SNR, a start just after what sets the recording apart); no announcement
outside the library found. Matching runs once `batch_frames` (10: 200 ms) have arrived,
so a finding comes up to 180 ms after the frame that made it (`at_ms` names that frame).
"""

from __future__ import annotations

import csv
import functools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from rules.signals import Announcement
from voice.alignment import (
    COVERED,
    EVIDENCE,
    LENGTH,
    PEAK,
    SCORE,
    Aligner,
    AlignSettings,
    Best,
    References,
)
from voice.errors import AnnouncementLibraryError, AudioFileError
from voice.fingerprints import PrintMaker, ReferencePrints, Vectors, reference_prints
from voice.goertzel import FRAME_MS, SAMPLE_RATE, FloatArray, FrameSplitter
from voice.wavfile import read_wav_8k

LIBRARY_DIR: Final = Path(__file__).resolve().parent / "data" / "announcements"
INDEX_NAME: Final = "index.csv"
_MIN_SECONDS: Final = 0.5
_SOUND_FRAMES, _SOUND_WINDOW = 3, 4  # active frames, of the latest, that make sound


@dataclass(frozen=True, slots=True, kw_only=True)
class Recording:
    """One library recording: its name (the file's stem) and what it says."""

    name: str
    meaning: Announcement
    carrier: str = ""
    language: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnouncementHeard:
    """A library recording recognised in a call's audio. `started_ms` is where the matched
    audio began and `at_ms` the end of the frame that made the match conclusive (ms from
    the matcher's first sample); `offset_ms` is where in the recording that frame lies."""

    announcement: Announcement
    recording: str
    carrier: str
    confidence: float
    started_ms: int
    at_ms: int
    offset_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchSettings:
    """The matcher's constants (frames are 20 ms); see the module docstring."""

    align: AlignSettings = field(default_factory=AlignSettings)
    evidence: float = 4.0  # distinctive evidence (likeness over the bias, frames summed)
    min_covered: float = 30.0  # recording speech frames matched (weight summed): 0.6 s
    vacant_min_covered: float = 75.0  # the same for a vacant finding: 1.5 s
    min_margin: float = 0.08  # mean likeness over the bias along the whole alignment
    max_fall: float = 4.0  # how far under its best an alignment may be when it decides
    anchor_slack_frames: int = 20  # how long after the anchor an alignment may begin
    pause_frames: int = 40  # quiet frames after which sound sets a new anchor
    contradiction_peak: float = 5.0  # score from which a fall rules a recording out ...
    contradiction_drop: float = 4.0  # ... and the fall
    batch_frames: int = 10  # frames matched at a time


class AnnouncementLibrary:
    """Recordings and their fingerprints, computed once; share one library between calls.

    Build it with `load` (a folder with an index) or `from_samples` (in memory).
    """

    def __init__(self, recordings: Sequence[Recording], prints: Sequence[ReferencePrints]
                 ) -> None:
        if not recordings:
            raise AnnouncementLibraryError("an announcement library needs at least one "
                                           "recording")
        self.recordings: tuple[Recording, ...] = tuple(recordings)
        self.references = References(prints, [r.meaning.value for r in recordings])

    def __len__(self) -> int:
        return len(self.recordings)

    @classmethod
    def from_samples(cls, entries: Sequence[tuple[Recording, FloatArray]]
                     ) -> AnnouncementLibrary:
        """A library of recordings given as 8 kHz samples (int16 scale)."""
        prints = [reference_prints(np.asarray(samples, np.float64)) for _, samples in entries]
        return cls([recording for recording, _ in entries], prints)

    @classmethod
    def load(cls, folder: Path | str) -> AnnouncementLibrary:
        """The library in `folder`, as its `index.csv` describes it."""
        folder = Path(folder)
        entries = [(recording, read_recording(folder / file))
                   for recording, file in read_index(folder / INDEX_NAME)]
        return cls.from_samples(entries)

    def matcher(self, settings: MatchSettings | None = None) -> AnnouncementMatcher:
        return AnnouncementMatcher(self, settings)


@functools.cache
def default_library() -> AnnouncementLibrary:
    """The library shipped in voice/data/announcements (espeak-ng voices standing in for two
    carriers: see scripts/make_announcement_library.py), loaded once per process."""
    return AnnouncementLibrary.load(LIBRARY_DIR)


def read_index(path: Path) -> list[tuple[Recording, str]]:
    """The recordings an index names, with their files (relative paths)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise AnnouncementLibraryError(f"no announcement index {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnouncementLibraryError(f"cannot read the announcement index {path}: "
                                       f"{exc}") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    rows = csv.DictReader(lines)
    missing = {"file", "meaning"} - set(rows.fieldnames or ())
    if missing:
        raise AnnouncementLibraryError(f"{path}: the header lacks column(s) "
                                       f"{', '.join(sorted(missing))}")
    entries: list[tuple[Recording, str]] = []
    for number, row in enumerate(rows, start=2):
        entries.append(_entry(path, number, row))
    names = [recording.name for recording, _ in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise AnnouncementLibraryError(f"{path}: recording(s) listed twice: "
                                       f"{', '.join(duplicates)}")
    if not entries:
        raise AnnouncementLibraryError(f"{path} lists no recordings")
    return entries


def _entry(path: Path, number: int, row: dict[str, str | None]) -> tuple[Recording, str]:
    file = (row.get("file") or "").strip()
    meaning = (row.get("meaning") or "").strip().lower()
    if not file:
        raise AnnouncementLibraryError(f"{path}, entry {number}: no file")
    try:
        announcement = Announcement(meaning)
    except ValueError:
        known = ", ".join(a.value for a in Announcement)
        raise AnnouncementLibraryError(f"{path}, entry {number} ({file}): unknown meaning "
                                       f"{meaning!r}; expected one of {known}") from None
    recording = Recording(name=Path(file).stem, meaning=announcement,
                          carrier=(row.get("carrier") or "").strip(),
                          language=(row.get("language") or "").strip())
    return recording, file


def read_recording(path: Path) -> FloatArray:
    """A PCM WAV file as 8 kHz mono samples in the int16 scale."""
    try:
        samples = read_wav_8k(path)
    except AudioFileError as exc:
        raise AnnouncementLibraryError(f"announcement recording {exc}") from None
    if len(samples) < _MIN_SECONDS * SAMPLE_RATE:
        raise AnnouncementLibraryError(f"announcement recording {path} is shorter than "
                                       f"{_MIN_SECONDS:g} s")
    return samples


class AnnouncementMatcher:
    """Recognises library recordings in one call's audio; one matcher per call.

    - `feed` takes 16-bit little-endian mono PCM at 8 kHz, in 20 ms frames or any other
      chunking, from the start of early media or from anywhere in it, and returns the
      finding completed by it (a list of none or one).
    - At most one finding per matcher: the first conclusive one.
    - Pure computation: no clock, no I/O; time is the count of samples fed.
    """

    def __init__(self, library: AnnouncementLibrary, settings: MatchSettings | None = None
                 ) -> None:
        self._library = library
        self._settings = settings or MatchSettings()
        self._aligner = Aligner(library.references, self._settings.align)
        self._splitter = FrameSplitter()
        self._prints = PrintMaker()
        self._pending: list[FloatArray] = []
        self._anchor: int | None = None
        self._heard_since = 0.0  # frames heard since the anchor, weighed by `Prints.heard`
        self._recent: deque[bool] = deque(maxlen=_SOUND_WINDOW)
        self._quiet = 0
        self._ruled_out: set[int] = set()
        self.finding: AnnouncementHeard | None = None

    @property
    def ruled_out(self) -> frozenset[str]:
        """Names of the recordings the call's audio has contradicted."""
        return frozenset(self._library.recordings[i].name for i in self._ruled_out)

    def feed(self, data: bytes) -> list[AnnouncementHeard]:
        """The finding completed by `data` (the stream's next bytes), if any."""
        frames = self._splitter.split(data)
        if len(frames):
            self._pending.append(frames)
        if sum(len(f) for f in self._pending) < self._settings.batch_frames:
            return []
        batch = np.concatenate(self._pending)
        self._pending = []
        if self.finding is not None:
            return []
        return self._match(batch)

    def _match(self, batch: FloatArray) -> list[AnnouncementHeard]:
        """Fingerprint a batch, score the cells its frames can reach, and step through it."""
        prints = self._prints.feed(batch)
        aligner, refs = self._aligner, self._library.references
        fresh = [self._listen(bool(active), float(heard), aligner.frame + index)
                 for index, (active, heard) in enumerate(zip(prints.active, prints.heard,
                                                             strict=True))]
        scored = None if any(fresh) else aligner.reachable(len(batch))
        if scored is not None and not len(scored):
            for _ in range(len(batch)):
                aligner.idle()
            return []
        likeness = refs.likeness(prints.vectors, scored)
        column = np.arange(refs.cells) if scored is None else np.zeros(refs.cells, np.int64)
        if scored is not None:
            column[scored] = np.arange(len(scored))
        bias = self._settings.align.bias
        for index in range(len(batch)):
            cells = aligner.reachable(1)
            if fresh[index]:  # alignments may start where the frame beats the bias
                cells = np.union1d(cells, np.flatnonzero(likeness[index] > bias))
            if not len(cells):
                aligner.idle()
                continue
            live = aligner.step(likeness[index, column[cells]], cells, fresh[index])
            heard = self._decide(live)
            if heard is not None:
                self.finding = heard
                return [heard]
        return []

    def _listen(self, active: bool, heard: float, frame: int) -> bool:
        """Whether alignments may start at `frame`: within `anchor_slack_frames` of the
        anchor, where the call's sound began or began again after a pause. Sound is three
        active frames of four (a noise burst or a click is not). The slack counts frames
        by how well they were heard: while the noise estimate settles at the start of a
        call (every frame looks like noise) or after a false start, it waits."""
        self._recent.append(active)
        if sum(self._recent) >= _SOUND_FRAMES:
            if self._anchor is None or self._quiet >= self._settings.pause_frames:
                self._anchor, self._heard_since = frame - len(self._recent) + 1, 0.0
            self._quiet = 0
        else:
            self._quiet += 1
        if self._anchor is None:
            return False
        self._heard_since += heard
        return self._heard_since <= self._settings.anchor_slack_frames

    def _decide(self, live: Vectors) -> AnnouncementHeard | None:
        """A finding when the leading alignment of a recording not ruled out has the
        evidence, and none of a recording of another meaning has too. `live`: the live
        cells' state, as `Aligner.step` returns it."""
        aligner, settings = self._aligner, self._settings
        self._ruled_out |= aligner.contradicted(live, settings.contradiction_peak,
                                                settings.contradiction_drop)
        ready = ((live[EVIDENCE] >= settings.evidence) & (live[COVERED] >= settings.min_covered)
                 & (live[PEAK] - live[SCORE] <= settings.max_fall)
                 & (live[SCORE] >= settings.min_margin * live[LENGTH]))
        if not ready.any():
            return None
        ready &= aligner.leading(live)  # a recording speaks through its best alignment
        candidates = [best for best in aligner.alignments(aligner.live[ready])
                      if best.recording not in self._ruled_out]
        if not candidates:
            return None
        best = max(candidates, key=lambda b: b.evidence)
        recording = self._library.recordings[best.recording]
        if recording.meaning is Announcement.VACANT and best.covered < settings.vacant_min_covered:
            return None
        if any(self._library.recordings[c.recording].meaning != recording.meaning
               for c in candidates):
            return None  # two meanings at once: wait for one to fall away
        return self._heard(recording, best)

    def _heard(self, recording: Recording, best: Best) -> AnnouncementHeard:
        """The finding; its confidence is the alignment's mean likeness, from 0.5 at the
        bias to 1 at 0.9 (uncalibrated)."""
        bias = self._settings.align.bias
        likeness = bias + best.score / max(best.length, 1.0)
        confidence = min(1.0, max(0.5, 0.5 + 0.5 * (likeness - bias) / (0.9 - bias)))
        frame = self._aligner.frame
        return AnnouncementHeard(announcement=recording.meaning, recording=recording.name,
                                 carrier=recording.carrier, confidence=round(confidence, 3),
                                 started_ms=best.start * FRAME_MS, at_ms=frame * FRAME_MS,
                                 offset_ms=(best.cell + 1) * FRAME_MS)


__all__ = ["INDEX_NAME", "LIBRARY_DIR", "AnnouncementHeard", "AnnouncementLibrary",
           "AnnouncementMatcher", "MatchSettings", "Recording", "default_library",
           "read_index", "read_recording"]
