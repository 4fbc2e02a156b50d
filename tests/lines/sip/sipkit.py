"""Helpers for the SIP tests: speech audio, free ports, sipp, key presses as RTP captures,
and waiting for events."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from dialer.engine.calls import Call, Outcomes
from dialer.harness import audio
from dialer.harness.config import HarnessConfig
from dialer.harness.ports import free_udp_ports, udp_port_free
from dialer.harness.runtime import Harness
from dialer.store import ClaimedLead
from lines.sip import protocol as p
from lines.sip.media import MediaHandler, PromptAndVad
from lines.sip.process import WorkerProcess
from lines.telephony import CallAnswered, CallEnded, CallEvent, CallRinging, EarlyMediaHeard
from rules.dispositions import Disposition
from rules.retry import RetryPolicy

E = TypeVar("E")
SCENARIOS = Path(__file__).parent / "scenarios"
SPEECH = "Hello, this is a test call. Please hold the line for an agent."
ANNOUNCEMENT = "The number you have dialed does not exist."


class Exploding(PromptAndVad):
    """A media handler that fails on the first frame it hears."""

    def on_frame(self, pcm: bytes, at: float) -> None:
        raise RuntimeError("boom")


def exploding_handler(call_id: str) -> MediaHandler:
    """For `--handler tests.lines.sip.sipkit:exploding_handler`."""
    return Exploding()


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (Debian package {package}); the SIP tests need it"
                    f" (deselect them with -m 'not sip')", pytrace=False)
    return path


def speak(text: str, folder: Path) -> np.ndarray:
    """`text` spoken by espeak-ng, as 8 kHz int16 samples (the harness's synthesis, cached
    in `folder`)."""
    need("espeak-ng", "espeak-ng")
    return audio.speak(text, folder)


def write_wav(path: Path, samples: np.ndarray) -> None:
    audio.write_wav(path, samples)


def mu_law(samples: np.ndarray) -> bytes:
    """G.711 µ-law bytes of int16 samples."""
    values = samples.astype(np.int32)
    sign = (values < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(values), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return bytes((~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes())


def key_press_pcap(path: Path, digit: int, payload_type: int) -> Path:
    """One key press as RFC 4733 telephone-event packets (20 ms apart, the end packet sent
    three times), in a capture for sipp's `play_pcap_audio`: sip-tester's own
    dtmf_2833_*.pcap carry payload type 101, and pjmedia drops events whose type is not the
    one it offered."""
    records = []
    for i in range(10):
        end = i >= 7
        duration = 320 * min(i, 7)
        rtp = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | payload_type,
                          1000 + min(i, 7), 8000, 0x5EED)
        event = struct.pack("!BBH", digit, (0x80 if end else 0) | 10, duration)
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp) + len(event), 0) + rtp + event
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
        frame = bytes(12) + b"\x08\x00" + ip + udp  # Ethernet: addresses, then IPv4
        at_us = 20_000 * min(i, 7) + 100 * max(0, i - 7)
        records.append(struct.pack("<IIII", at_us // 1_000_000, at_us % 1_000_000,
                                   len(frame), len(frame)) + frame)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # pcap, Ethernet
    path.write_bytes(header + b"".join(records))
    return path


def raw_sockets() -> bool:
    """Whether this process may open raw sockets (sipp plays captures through one)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP).close()
    except PermissionError:
        return False
    return True


class Sipp:
    """One sipp process acting as the far end on 127.0.0.1."""

    def __init__(self, args: list[str], cwd: Path, messages: Path) -> None:
        self.port = free_udp_ports(2)
        media = free_udp_ports(4)
        self.messages = messages
        command = [need("sipp", "sip-tester"), "-i", "127.0.0.1", "-p", str(self.port),
                   "-mp", str(media), "-nostdin", "-timeout", "90s",
                   "-trace_msg", "-message_file", str(messages), *args]
        self._process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while udp_port_free(self.port):
            assert self._process.poll() is None, f"sipp exited: {' '.join(command)}"
            assert time.monotonic() < deadline, "sipp did not bind its port in 5 s"
            time.sleep(0.02)

    def uri(self, user: str = "callee") -> str:
        return f"sip:{user}@127.0.0.1:{self.port}"

    def received(self) -> str:
        return self.messages.read_text(errors="replace") if self.messages.exists() else ""

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=5)


SippFactory = Callable[..., Sipp]


class Recorder:
    """A `SipBackend`'s sink and observer: keeps every event, and lets the test wait."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self.raw: list[tuple[int, p.Event]] = []
        self._changed = threading.Condition()

    def __call__(self, event: CallEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def observe(self, worker: int, event: p.Event) -> None:
        with self._changed:
            self.raw.append((worker, event))
            self._changed.notify_all()

    def wait(self, done: Callable[[], bool], timeout: float = 10) -> None:
        with self._changed:
            assert self._changed.wait_for(done, timeout), f"events: {self.events}"

    def of(self, call_id: str) -> list[CallEvent]:
        return [event for event in self.events if event.call_id == call_id]

    def ended(self, call_id: str) -> CallEnded:
        self.wait(lambda: any(isinstance(e, CallEnded) for e in self.of(call_id)))
        (end,) = [e for e in self.of(call_id) if isinstance(e, CallEnded)]
        return end

    def worker_of(self, call_id: str) -> int:
        self.wait(lambda: any(getattr(e, "call_id", None) == call_id for _, e in self.raw))
        return next(i for i, e in self.raw if getattr(e, "call_id", None) == call_id)


WorkerFactory = Callable[..., WorkerProcess]


def events_until(worker: WorkerProcess, done: Callable[[p.Event], bool],
                 timeout: float = 10) -> list[p.Event]:
    """Events up to and including the first for which `done` holds; fails after `timeout`."""
    seen: list[p.Event] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = worker.next_event(deadline - time.monotonic())
        if event is None:
            break
        seen.append(event)
        if done(event):
            return seen
    raise AssertionError(f"gave up after {timeout} s; events: {seen}")


def drain(worker: WorkerProcess, seconds: float) -> list[p.Event]:
    """Whatever the worker says in the next `seconds`."""
    seen: list[p.Event] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        event = worker.next_event(left)
        if event is not None:
            seen.append(event)
    return seen


def over(event: p.Event) -> bool:
    """Whether the event frees its call's slots: the call is over for the worker."""
    return isinstance(event, p.Released) or (isinstance(event, p.Ended) and event.released)


def released(call_id: str) -> Callable[[p.Event], bool]:
    return lambda event: over(event) and getattr(event, "call_id", None) == call_id


def of(events: list[p.Event], kind: type[E], call_id: str | None = None) -> list[E]:
    """The events of one kind (and of one call)."""
    return [e for e in events if isinstance(e, kind)
            and (call_id is None or getattr(e, "call_id", None) == call_id)]


def engine_disposition(events: list[CallEvent], e164: str) -> Disposition:
    """The disposition the engine gives a call with these events: its `Call` bookkeeping
    (as in `Engine._on_call_event`), then `Outcomes.disposition_of`."""
    *progress, ended = events
    assert isinstance(ended, CallEnded)
    lead = ClaimedLead(id=1, e164=e164, attempts_made=0, timezones=(), attributes={})
    call = Call(call_id=ended.call_id, lead=lead, trunk="", placed_at=ended.at)
    for event in progress:
        if isinstance(event, CallRinging):
            call.rang = True
        elif isinstance(event, EarlyMediaHeard):
            call.heard(event)
        elif isinstance(event, CallAnswered):
            call.answered_at = event.at
    return Outcomes(retry=RetryPolicy()).disposition_of(call, ended)


@contextmanager
def serving(config: HarnessConfig, folder: Path) -> Iterator[Harness]:
    """A harness serving its phones from a thread (log and speech cache in `folder`),
    stopped and closed afterwards."""
    running = Harness(config, log_path=folder / "calls.jsonl", cache_dir=folder / "tts")
    running.start()
    stop = threading.Event()
    serve = threading.Thread(target=running.serve, kwargs={"stop": stop}, daemon=True)
    serve.start()
    try:
        yield running
    finally:
        stop.set()
        serve.join(10)
        running.close()
