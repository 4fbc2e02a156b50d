"""A call's audio inside a media worker: the handler seam, the default handler, the ports.

Each call gets a `CallPort` (a pjsua2 `AudioMediaPort`) from a pool made at start. The
pjmedia clock thread calls the port every 60 ms (`PORT_FRAMES` frames of 20 ms): the port
passes each 20 ms frame heard to `on_frame` and asks `next_frame` for each one to send, of
the call's `MediaHandler`, which knows nothing of SIP: the voice pipeline plugs in here.
A handler that also recognises things in the audio (carrier tones, say) offers the
optional methods of `ReportingHandler`; the port looks for them once per call.

Frames cross the SWIG boundary through the vector's data pointer (ctypes): `bytes(buf)`
copies element by element and costs 150-300 µs a frame; this costs a few µs. It relies on
the libstdc++ layout of `std::vector` (begin, end, capacity pointers), which
`check_frame_access` verifies once at start.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import time
from collections.abc import Callable
from typing import Any, Protocol

import pjsua2 as pj
import webrtcvad

from lines.sip.errors import SipError
from lines.sip.payloads import Finding, HandlerNote, MediaStats
from lines.sip.pcm import FRAME_BYTES, FRAME_MS, PORT_FRAMES, SAMPLE_RATE, split_frames

_POINTER = ctypes.sizeof(ctypes.c_void_p)
PORT_MS = PORT_FRAMES * FRAME_MS
_LATE_S = 2 * PORT_MS / 1000
_SILENCE = bytes(FRAME_BYTES)


class MediaHandler(Protocol):
    """One call's audio, frame by frame (20 ms of 8 kHz 16-bit mono PCM).

    - `on_frame` and `next_frame` run on the pjmedia clock thread, three of each in a row
      every 60 ms (`PORT_FRAMES`);
      they must return within tens of microseconds and never block.
    - `on_frame` gets only non-empty frames; `at` is `time.monotonic()`.
    - `next_frame` returns the next frame to send (`FRAME_BYTES` long), or None for silence.
    - `play`, `stop_playing` and `stats` run on the worker's main thread.
    - An exception detaches the handler; the worker then hangs up the call.
    """

    def on_frame(self, pcm: bytes, at: float) -> None: ...

    def next_frame(self) -> bytes | None: ...

    def play(self, pcm: bytes) -> None: ...

    def stop_playing(self) -> None: ...

    def stats(self) -> MediaStats: ...


class ReportingHandler(MediaHandler, Protocol):
    """A handler that reports what it recognises, and may hold a conversation: its extra
    methods are optional (a handler may have any of them) and run on the worker's main
    thread.

    - `answered` runs once, when the call is answered (200 OK, sent or received), before
      the worker reports the answer; findings made from then on are `after_answer` ones.
    - `findings` returns the findings made since it last ran, each once. The worker asks
      on every turn of its loop (every `poll_ms` or sooner), at the answer and before it
      reports the call's end, so it must be cheap when there are none.
    - `converse` starts the conversation named `script` on the answered call (a `Converse`
      command); `dtmf` passes each digit the far end sends (RFC 2833 or INFO); `bridged`
      says the call was joined to another (an agent): the conversation is over.
    - `notes` returns what the conversation decided since it last ran (`HandlerNote`s:
      an intent heard, an answering-machine verdict, a wish to end the call), each once;
      asked as often as `findings`.
    - Any of them raising detaches the handler, as from a frame.
    """

    def answered(self) -> None: ...

    def findings(self) -> list[Finding]: ...

    def converse(self, script: str, variables: dict[str, str]) -> None: ...

    def dtmf(self, digit: str) -> None: ...

    def bridged(self) -> None: ...

    def notes(self) -> list[HandlerNote]: ...


_OPTIONAL_HOOKS = ("answered", "findings", "converse", "dtmf", "bridged", "notes")
HandlerFactory = Callable[[str], MediaHandler]  # call id -> that call's handler


class PromptAndVad:
    """The default handler: plays queued prompts, runs webrtcvad on every frame heard."""

    def __init__(self, vad_mode: int = 2) -> None:
        self._vad = webrtcvad.Vad(vad_mode)
        self._queue: collections.deque[bytes] = collections.deque()
        self._received = 0
        self._speech = 0
        self._sent = 0

    def on_frame(self, pcm: bytes, at: float) -> None:
        self._received += 1
        if len(pcm) == FRAME_BYTES and self._vad.is_speech(pcm, SAMPLE_RATE):
            self._speech += 1

    def next_frame(self) -> bytes | None:
        try:
            frame = self._queue.popleft()  # deque ends are thread-safe
        except IndexError:
            return None
        self._sent += 1
        return frame

    def play(self, pcm: bytes) -> None:
        self._queue.extend(split_frames(pcm))

    def stop_playing(self) -> None:
        self._queue.clear()

    def stats(self) -> MediaStats:
        return MediaStats(frames_received=self._received, speech_frames=self._speech,
                          frames_sent=self._sent)


def default_handler(call_id: str) -> MediaHandler:
    """A `PromptAndVad` for every call."""
    return PromptAndVad()


def _span(vector: Any) -> tuple[int, int]:
    """(data pointer, size) of a SWIG `ByteVector`, read from the std::vector itself."""
    address = int(vector.this)
    begin = ctypes.c_void_p.from_address(address).value or 0
    end = ctypes.c_void_p.from_address(address + _POINTER).value or 0
    return begin, end - begin


def read_frame(frame: Any) -> bytes:
    begin, size = _span(frame.buf)
    return ctypes.string_at(begin, size) if size else b""


def write_frame(frame: Any, data: bytes) -> None:
    vector = frame.buf
    vector.resize(len(data))
    begin, _ = _span(vector)
    ctypes.memmove(begin, data, len(data))
    frame.size = len(data)
    frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO


def check_frame_access() -> None:
    """Refuse to start when the std::vector layout is not the one `_span` reads."""
    probe = bytes(range(7, 7 + 32))
    frame = pj.MediaFrame()
    write_frame(frame, probe)
    if bytes(frame.buf) != probe or read_frame(frame) != probe:
        raise SipError("this pjsua2 build lays out std::vector differently; frame access "
                       "through ctypes would corrupt audio")


class CallPort(pj.AudioMediaPort):  # type: ignore[misc]  # pjsua2 has no type hints
    """A conference-bridge port that carries one call's frames to and from its handler,
    `PORT_FRAMES` handler frames at a time."""

    def __init__(self, name: str) -> None:
        super().__init__()
        audio = pj.MediaFormatAudio()
        audio.init(pj.PJMEDIA_FORMAT_PCM, SAMPLE_RATE, 1, PORT_MS * 1000, 16)
        self.createPort(name, audio)
        self.handler: MediaHandler | None = None
        self.error: str | None = None
        self._last_tick = 0.0
        self._late = 0
        self._hooks: dict[str, Callable[..., Any]] = {}

    def attach(self, handler: MediaHandler) -> None:
        self.error, self._last_tick, self._late = None, 0.0, 0
        self._hooks = {name: hook for name in _OPTIONAL_HOOKS
                       if (hook := getattr(handler, name, None)) is not None}
        self.handler = handler

    def answered(self) -> None:
        """Tell the handler its call was answered (if it wants to know)."""
        self._tell("answered")

    def converse(self, script: str, variables: dict[str, str]) -> bool:
        """Hand the call to the handler's conversation; False if it holds none."""
        return "converse" in self._hooks and self._tell("converse", script, variables)

    def dtmf(self, digit: str) -> None:
        self._tell("dtmf", digit)

    def bridged(self) -> None:
        self._tell("bridged")

    def findings(self) -> list[Finding]:
        """What the handler recognised since it was last asked (nothing, if it never says)."""
        found: list[Finding] = self._ask("findings")
        return found

    def notes(self) -> list[HandlerNote]:
        """What the handler's conversation decided since it was last asked."""
        noted: list[HandlerNote] = self._ask("notes")
        return noted

    def _tell(self, name: str, *args: Any) -> bool:
        hook = self._hooks.get(name)
        if hook is None or self.handler is None:
            return False
        try:
            hook(*args)
        except Exception as exc:  # as from a frame: the worker hangs the call up
            self._fail(exc)
            return False
        return True

    def _ask(self, name: str) -> list[Any]:
        hook = self._hooks.get(name)
        if hook is None or self.handler is None:
            return []
        try:
            return list(hook())
        except Exception as exc:  # as from a frame: the worker hangs the call up
            self._fail(exc)
            return []

    def detach(self) -> MediaStats | None:
        handler, self.handler = self.handler, None
        self._hooks = {}
        if handler is None:
            return None
        return dataclasses.replace(handler.stats(), late_frames=self._late)

    def onFrameReceived(self, frame: Any) -> None:  # pjsua2's name
        handler = self.handler
        if handler is None or not frame.size:
            return  # idle, or the empty frames at call start
        try:
            pcm, now = read_frame(frame), time.monotonic()
            last = len(pcm) - FRAME_BYTES
            for start in range(0, len(pcm), FRAME_BYTES):  # the last one heard at `now`
                handler.on_frame(pcm[start:start + FRAME_BYTES],
                                 now - (last - start) / FRAME_BYTES * FRAME_MS / 1000)
        except Exception as exc:  # a raise would unwind into pjmedia's clock thread
            self._fail(exc)

    def onFrameRequested(self, frame: Any) -> None:  # pjsua2's name
        handler = self.handler
        if handler is None:
            return
        now = time.monotonic()
        if self._last_tick and now - self._last_tick > _LATE_S:
            self._late += 1
        self._last_tick = now
        try:
            frames = [handler.next_frame() for _ in range(PORT_FRAMES)]
            if any(frames):
                write_frame(frame, b"".join(f or _SILENCE for f in frames))
        except Exception as exc:  # a raise would unwind into pjmedia's clock thread
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.handler = None
        self.error = f"{type(exc).__name__}: {exc}"


class PortPool:
    """The ports of one worker, made once and reused from call to call."""

    def __init__(self, size: int) -> None:
        self._free = [CallPort(f"call{i}") for i in range(size)]
        self._all = list(self._free)

    def acquire(self, handler: MediaHandler) -> CallPort:
        if not self._free:
            raise SipError("no free media port: more calls than the worker's cap")
        port = self._free.pop()
        port.attach(handler)
        return port

    def release(self, port: CallPort) -> MediaStats | None:
        stats = port.detach()
        self._free.append(port)
        return stats

    def failed(self) -> list[CallPort]:
        return [port for port in self._all if port.error is not None and port not in self._free]

    def close(self) -> None:
        """Drop every port (before the endpoint is destroyed)."""
        for port in self._all:
            port.handler = None
        self._free.clear()
        self._all.clear()
