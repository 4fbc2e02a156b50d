"""The dialer's media handler inside a pjsua2 media worker: prompts, barge-in, VAD and
carrier tones.

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

Barge-in: from the answer on (and while a prompt plays), every frame heard also goes to a
`voice.bargein.BargeIn`, which a prompt's first frame sent starts and its queue running dry
ends. On `StopPrompt` the rest of the prompt becomes a 30 ms fade (`fade_out`) and is
dropped; on `PausePrompt` the same fade plays and the rest is held (silence is sent) until
`ResumePrompt` (the held part fades in) or `StopPrompt` (it is dropped). A prompt played
with `Play(hang_up_after=True)` is still hung up after its full length: a pause shortens
what the callee hears of it.

Threads: `on_frame` and `next_frame` run on the media clock thread, so the barge-in state
is the clock thread's alone; `play`, `stop_playing`, `answered` and `findings` run on the
worker's main thread. The prompt queue is shared: the clock thread rewrites it (stop,
pause, resume) under `_queue_lock`, which `play` and `stop_playing` take too. Frames go
to the tone detector three at a time (one port tick), which costs about 18 µs a frame
instead of 50; `BargeIn` costs about 20 µs a frame more. A finding's kind is fixed when
the detector makes it, under a lock that `answered` also takes, so once `answered` has
returned no early-media finding is made any more, and the worker's next `findings` has them all.
"""

from __future__ import annotations

import collections
import threading
from typing import Final

from lines.sip.media import PromptAndVad
from lines.sip.payloads import Finding, FindingKind
from lines.sip.pcm import FRAME_BYTES, FRAME_MS, PORT_FRAMES, split_frames
from voice.bargein import BargeIn, PausePrompt, ResumePrompt, StopPrompt, fade_in, fade_out
from voice.tones import ToneDetector, ToneHeard

AFTER_ANSWER_S: Final = 6.0  # how long tones are listened for after the answer
MIN_LEVEL_DBFS: Final = -50.0  # quieter frames are no tone
FADE_MS: Final = 30  # of the prompt, faded to silence, when the callee talks over it
_FADE_FRAMES: Final = -(-FADE_MS // FRAME_MS)  # the prompt frames a fade is made from


class DialerHandler(PromptAndVad):
    """Prompts and VAD (`PromptAndVad`) with barge-in, and carrier tones in early media and
    just after the answer, reported as findings (a `lines.sip.media.ReportingHandler`)."""

    def __init__(self, *, after_answer_s: float = AFTER_ANSWER_S,
                 min_level_dbfs: float = MIN_LEVEL_DBFS, vad_mode: int = 2) -> None:
        super().__init__(vad_mode)
        self._tones: ToneDetector | None = ToneDetector(min_level_dbfs=min_level_dbfs)
        self._unheard: list[bytes] = []  # frames not yet given to the detector
        self._frames_after_answer = round(after_answer_s * 1000 / FRAME_MS)
        self._left: int | None = None  # frames still to listen to; None: not answered
        self._lock = threading.Lock()
        self._pending: list[Finding] = []
        self._barge_in = BargeIn()
        self._queue_lock = threading.Lock()  # rewriting the queue vs `play`/`stop_playing`
        self._fade: collections.deque[bytes] = collections.deque()  # sent before the queue
        self._listening = False  # the call is answered: BargeIn hears every frame
        self._playing = False  # a prompt started and has not ended (BargeIn knows)
        self._paused = False  # its rest is held in the queue
        self.barge_ins = 0  # prompts stopped by the callee's speech

    def on_frame(self, pcm: bytes, at: float) -> None:
        super().on_frame(pcm, at)
        if (self._listening or self._playing) and len(pcm) == FRAME_BYTES:
            for event in self._barge_in.feed(pcm):
                if isinstance(event, StopPrompt | PausePrompt | ResumePrompt):
                    self._obey(event)
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

    def _obey(self, command: StopPrompt | PausePrompt | ResumePrompt) -> None:
        with self._queue_lock:
            queue = self._queue
            if isinstance(command, ResumePrompt):
                self._paused = False
                if queue:
                    queue[0] = fade_in(queue[0])
                return
            if not self._paused:  # fade out what was about to play
                head = b"".join(queue[i] for i in range(min(_FADE_FRAMES, len(queue))))
                self._fade.extend(split_frames(fade_out(head, FADE_MS)) if head else ())
            self._paused = True
            if isinstance(command, StopPrompt):
                queue.clear()
                self.barge_ins += 1

    def next_frame(self) -> bytes | None:
        if self._fade:
            self._sent += 1
            return self._fade.popleft()
        if self._paused and self._queue:
            return None  # held: silence until resumed or stopped
        try:
            frame = self._queue.popleft()  # deque ends are thread-safe
        except IndexError:
            if self._playing:  # played out, stopped, or cleared by `stop_playing`
                self._barge_in.end_prompt()
                self._playing = self._paused = False
            return None
        if not self._playing:
            self._barge_in.start_prompt()
            self._playing = True
        self._sent += 1
        return frame

    def play(self, pcm: bytes) -> None:
        with self._queue_lock:
            super().play(pcm)

    def stop_playing(self) -> None:
        with self._queue_lock:
            super().stop_playing()
            self._fade.clear()

    def _report(self, heard: list[ToneHeard]) -> None:
        with self._lock:
            kind = FindingKind.EARLY_MEDIA if self._left is None else FindingKind.AFTER_ANSWER
            self._pending += [Finding(kind=kind, announcement=tone.announcement,
                                      network=tone.network, confidence=tone.confidence,
                                      detail=tone.tone.value) for tone in heard]

    def answered(self) -> None:
        self._listening = True
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
