"""The dialer's media handler inside a pjsua2 media worker: prompts, VAD and carrier tones.

`DialerHandler` does what the worker's default handler does (plays the prompts the worker
queues, runs webrtcvad on every frame heard) and also listens for carrier tones with
`voice.tones.ToneDetector`: through the early media, and for `after_answer_s` after the
answer, because some Chinese networks answer and then play the tone. Each tone heard
becomes a `Finding` (`early_media` or `after_answer`) that the worker sends the backend
as `Heard`; the backend passes confident early-media findings to the engine as
`EarlyMediaHeard` (see `lines.sip.backend`).

This is where `lines` and `voice` meet: `lines` may not import `voice`, so the worker loads
this handler by name (`--handler dialer.media:handler`; `dialer.engine.sip` sets it for
SIP campaigns).

Threads: `on_frame` runs on the media clock thread; `answered` and `findings` on the
worker's main thread. Frames go to the detector three at a time (one port tick), which
costs about 18 µs a frame instead of 50. A finding's kind is fixed when the detector
makes it, under a lock that `answered` also takes, so once `answered` has returned no
early-media finding is made any more, and the worker's next `findings` has them all.
"""

from __future__ import annotations

import threading
from typing import Final

from lines.sip.media import PromptAndVad
from lines.sip.payloads import Finding, FindingKind
from lines.sip.pcm import FRAME_MS, PORT_FRAMES
from voice.tones import ToneDetector, ToneHeard

AFTER_ANSWER_S: Final = 6.0  # how long tones are listened for after the answer
MIN_LEVEL_DBFS: Final = -50.0  # quieter frames are no tone


class DialerHandler(PromptAndVad):
    """Prompts and VAD (`PromptAndVad`), and carrier tones in early media and just after
    the answer, reported as findings (a `lines.sip.media.ReportingHandler`)."""

    def __init__(self, *, after_answer_s: float = AFTER_ANSWER_S,
                 min_level_dbfs: float = MIN_LEVEL_DBFS, vad_mode: int = 2) -> None:
        super().__init__(vad_mode)
        self._tones: ToneDetector | None = ToneDetector(min_level_dbfs=min_level_dbfs)
        self._unheard: list[bytes] = []  # frames not yet given to the detector
        self._frames_after_answer = round(after_answer_s * 1000 / FRAME_MS)
        self._left: int | None = None  # frames still to listen to; None: not answered
        self._lock = threading.Lock()
        self._pending: list[Finding] = []

    def on_frame(self, pcm: bytes, at: float) -> None:
        super().on_frame(pcm, at)
        tones = self._tones
        if tones is None:
            return
        self._unheard.append(pcm)
        if len(self._unheard) < PORT_FRAMES:
            return
        data, self._unheard = b"".join(self._unheard), []
        heard = tones.feed(data)
        if heard:
            self._report(heard)
        if self._left is not None:
            self._left -= PORT_FRAMES
            if self._left <= 0:
                self._tones = None  # the window after the answer is over

    def _report(self, heard: list[ToneHeard]) -> None:
        with self._lock:
            kind = FindingKind.EARLY_MEDIA if self._left is None else FindingKind.AFTER_ANSWER
            self._pending += [Finding(kind=kind, announcement=tone.announcement,
                                      network=tone.network, confidence=tone.confidence,
                                      detail=tone.tone.value) for tone in heard]

    def answered(self) -> None:
        with self._lock:
            if self._left is None:
                self._left = self._frames_after_answer

    def findings(self) -> list[Finding]:
        if not self._pending:  # the common case, without the lock
            return []
        with self._lock:
            found, self._pending = self._pending, []
        return found


def handler(call_id: str) -> DialerHandler:
    """The worker's media handler factory (`--handler dialer.media:handler`)."""
    return DialerHandler()
