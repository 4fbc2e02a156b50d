"""The dialer's media handler inside a pjsua2 media worker: prompts, barge-in, VAD,
carrier tones and announcements, answering-machine detection, and the call's script.

`DialerHandler` does what the worker's default handler does (plays the prompts the worker
queues, runs webrtcvad on every frame heard) and also listens for carrier tones with
`voice.tones.ToneDetector`: through the early media, and for `after_answer_s` after the
answer, because some Chinese networks answer and then play the tone. Each tone heard
becomes a `Finding` (`early_media` or `after_answer`) that the worker sends the backend
as `Heard`; the backend passes confident early-media findings to the engine as
`EarlyMediaHeard` (see `lines.sip.backend`).

Carrier announcements (`voice.announcements`, the shipped library) are matched over the
same window; matching costs milliseconds at times, so the clock thread only queues the
audio and the worker's main thread matches it when it asks for `findings`.

From the answer on, `voice.amd.AnswerDetector` hears every frame (up to `AMD_FRAMES`, and
past its verdict only for a machine, whose beep may still come). Its verdict goes to the
call's conversation, if one runs (the script's machine treatment), else to the engine as
an `AnswerVerdict` note. A `Converse` command starts the conversation
(`dialer.talk.session.Conversation`, with the worker's `dialer.talk.voicebox`): the
handler feeds it the ends of its prompts, the callee's speech (`SpeechStarted`, and each
utterance's audio at `SpeechEnded`, both from the barge-in detector), the digits and the
bridge, and passes on its notes.

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
import functools
import logging
import threading
import time
from typing import Final

from dialer.talk.session import Conversation
from dialer.talk.voicebox import voicebox, warm_up
from lines.sip.media import PromptAndVad
from lines.sip.payloads import AnswerVerdict, Finding, FindingKind, HandlerNote
from lines.sip.pcm import FRAME_BYTES, FRAME_MS, PORT_FRAMES, split_frames
from rules.signals import AnswerKind
from voice.amd import AnswerDecided, AnswerDetector, BeepEnded, Cause
from voice.announcements import AnnouncementHeard, AnnouncementLibrary, default_library
from voice.bargein import BargeIn, PausePrompt, ResumePrompt, StopPrompt, fade_in, fade_out
from voice.dtmf import DtmfDetector
from voice.errors import AnnouncementLibraryError
from voice.tones import ToneDetector, ToneHeard
from voice.vad import SpeechEnded, SpeechStarted

logger = logging.getLogger(__name__)

SAME_KEY_S: Final = 0.5  # a key both sent (RFC 2833) and heard within this is pressed once
AMD_FRAMES: Final = 30_000 // FRAME_MS  # answering-machine detection's whole window
AFTER_ANSWER_S: Final = 6.0  # how long tones are listened for after the answer
MIN_LEVEL_DBFS: Final = -50.0  # quieter frames are no tone
FADE_MS: Final = 30  # of the prompt, faded to silence, when the callee talks over it
_FADE_FRAMES: Final = -(-FADE_MS // FRAME_MS)  # the prompt frames a fade is made from


class DialerHandler(PromptAndVad):
    """Prompts and VAD (`PromptAndVad`) with barge-in; carrier tones and announcements in
    early media and just after the answer, reported as findings; answering-machine
    detection and the call's conversation, reported as notes (a
    `lines.sip.media.ReportingHandler`; see the module docstring)."""

    def __init__(self, *, after_answer_s: float = AFTER_ANSWER_S,
                 min_level_dbfs: float = MIN_LEVEL_DBFS, vad_mode: int = 2,
                 library: AnnouncementLibrary | None = None) -> None:
        super().__init__(vad_mode)
        self._tones: ToneDetector | None = ToneDetector(min_level_dbfs=min_level_dbfs)
        self._announcements = library.matcher() if library is not None else None
        #: early media (and the first seconds after the answer) for the announcement matcher,
        #: 60 ms at a time, with whether it came after the answer
        self._for_matcher: collections.deque[tuple[bytes, bool]] = collections.deque()
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
        self._conversation: Conversation | None = None
        self._in_band: DtmfDetector | None = None  # from the conversation's start
        self._keys_heard: collections.deque[str] = collections.deque()  # by the clock thread
        self._last_key: tuple[str, float, bool] = ("", 0.0, False)  # key, when, in band
        self._prompt_id = 0  # of the latest prompt queued by the conversation
        self._stopped = False  # the playing prompt was stopped by barge-in
        self._amd: AnswerDetector | None = None  # from the answer, while it may matter
        self._amd_frames = 0  # frames it has heard
        self._heard_amd: collections.deque[AnswerDecided | BeepEnded] = collections.deque()

    def on_frame(self, pcm: bytes, at: float) -> None:
        super().on_frame(pcm, at)
        if (self._listening or self._playing) and len(pcm) == FRAME_BYTES:
            for event in self._barge_in.feed(pcm):
                if isinstance(event, StopPrompt | PausePrompt | ResumePrompt):
                    self._obey(event)
                elif self._conversation is not None:
                    self._tell_speech(self._conversation, event)
        if self._amd is not None and len(pcm) == FRAME_BYTES:
            self._feed_amd(self._amd, pcm)
        if self._in_band is not None:
            self._keys_heard.extend(pressed.key for pressed in self._in_band.feed(pcm))
        tones = self._tones
        if tones is None:
            return
        self._unheard.append(pcm)
        if len(self._unheard) < PORT_FRAMES:
            return
        data, self._unheard = b"".join(self._unheard), []
        if self._announcements is not None:  # matched on the main thread: ms, not µs
            self._for_matcher.append((data, self._left is not None))
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
                self._stopped = True

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
                if self._conversation is not None:
                    self._conversation.prompt_ended(self._prompt_id, interrupted=self._stopped)
            return None
        if not self._playing:
            self._barge_in.start_prompt()
            self._playing, self._stopped = True, False
        self._sent += 1
        return frame

    def play(self, pcm: bytes) -> None:
        with self._queue_lock:
            super().play(pcm)

    def play_prompt(self, pcm: bytes) -> int:
        """Queue a conversation's prompt; its id comes back with its end."""
        with self._queue_lock:
            self._prompt_id += 1
            super().play(pcm)
            return self._prompt_id

    def stop_playing(self) -> None:
        with self._queue_lock:
            super().stop_playing()
            self._fade.clear()

    def _report(self, heard: list[ToneHeard]) -> None:
        with self._lock:
            kind = FindingKind.EARLY_MEDIA if self._left is None else FindingKind.AFTER_ANSWER
            self._pending += [_finding(kind, found) for found in heard]

    def _feed_amd(self, amd: AnswerDetector, pcm: bytes) -> None:
        beep = amd.beep
        decided = amd.feed(pcm)
        if decided is not None:
            self._heard_amd.append(decided)
        if amd.beep is not beep and amd.beep is not None:
            self._heard_amd.append(amd.beep)
        self._amd_frames += 1
        decision = amd.decision
        if self._amd_frames >= AMD_FRAMES or (decision is not None
                                              and decision.kind is not AnswerKind.MACHINE):
            self._amd = None  # decided (a machine's beep may still come), or too late

    def answered(self) -> None:
        self._amd = AnswerDetector()
        self._listening = True
        with self._lock:
            if self._left is None:
                self._left = self._frames_after_answer

    def findings(self) -> list[Finding]:
        matcher = self._announcements
        while self._for_matcher and matcher is not None:
            data, answered = self._for_matcher.popleft()
            kind = FindingKind.AFTER_ANSWER if answered else FindingKind.EARLY_MEDIA
            found = [_finding(kind, heard) for heard in matcher.feed(data)]
            if found:
                with self._lock:
                    self._pending += found
            if matcher.finding is not None:  # one per call: no more to match
                self._announcements = matcher = None
                self._for_matcher.clear()
        if not self._pending:  # the common case, without the lock
            return []
        with self._lock:
            found, self._pending = self._pending, []
        return found

    # the conversation (see dialer.talk.session): main thread, but for `_tell_speech`

    def converse(self, script: str, variables: dict[str, str]) -> None:
        box = voicebox()
        found = box.scripts.get(script) if box is not None else None
        if box is None or found is None:
            raise LookupError(f"no script {script!r} in this worker's campaign")
        self._in_band = DtmfDetector()  # keys sent as sound, for far ends without RFC 2833
        self._conversation = Conversation(box, found, variables, self)
        self._conversation.start(time.monotonic())

    def dtmf(self, digit: str) -> None:
        self._key(digit, in_band=False)

    def _key(self, digit: str, *, in_band: bool) -> None:
        """A key, out of band or heard: once, though a gateway may send both."""
        now, (last, at, was_in_band) = time.monotonic(), self._last_key
        if digit == last and was_in_band != in_band and now - at < SAME_KEY_S:
            return
        self._last_key = (digit, now, in_band)
        if self._conversation is not None:
            self._conversation.digit(digit, now)

    def bridged(self) -> None:
        if self._conversation is not None:
            self._conversation.bridged(time.monotonic())

    def notes(self) -> list[HandlerNote]:
        while self._keys_heard:
            self._key(self._keys_heard.popleft(), in_band=True)
        conversation, now = self._conversation, time.monotonic()
        notes: list[HandlerNote] = []
        while self._heard_amd:
            heard = self._heard_amd.popleft()
            if isinstance(heard, BeepEnded):
                if conversation is not None:
                    conversation.beep_ended(now)
            elif conversation is not None:
                conversation.answer_decided(heard.kind, heard.cause is Cause.BEEP, now)
            else:
                notes.append(AnswerVerdict(kind=heard.kind))
        if conversation is not None:
            notes += conversation.step(now)
        return notes

    def _tell_speech(self, conversation: Conversation,
                     event: SpeechStarted | SpeechEnded) -> None:
        if isinstance(event, SpeechStarted):
            conversation.speech_started()
            return
        segment = self._barge_in.detector.segment()
        if segment is not None:
            conversation.utterance(segment.pcm)


def _finding(kind: FindingKind, heard: ToneHeard | AnnouncementHeard) -> Finding:
    if isinstance(heard, AnnouncementHeard):
        return Finding(kind=kind, announcement=heard.announcement, confidence=heard.confidence,
                       detail=f"announcement {heard.recording}")
    return Finding(kind=kind, announcement=heard.announcement, network=heard.network,
                   confidence=heard.confidence, detail=heard.tone.value)


@functools.cache
def _library() -> AnnouncementLibrary | None:
    try:
        return default_library()
    except AnnouncementLibraryError as exc:  # a broken install: tones are still heard
        logger.error("carrier announcements will not be recognised: %s", exc)
        return None


def handler(call_id: str) -> DialerHandler:
    """The worker's media handler factory (`--handler dialer.media:handler`): carrier
    announcements are matched against the shipped library (`voice.announcements`)."""
    return DialerHandler(library=_library())


warm_up()  # a worker imports this module at start: its voicebox is built meanwhile

