#!/usr/bin/env python3
"""SIP benchmark: the pjsua2 backend's media workers against `sipp -rtp_echo` on 127.0.0.1.

Method: one `SipBackend` (the product path: `--workers` media worker processes, 4 calls
each, the default `PromptAndVad` media handler) places every call on one trunk to one
sipp running its built-in `uas` scenario with `-rtp_echo` (180, then 200 with SDP, then
wait for our BYE; every RTP packet is sent back). On answer the bench has the backend play
the script prompt (espeak-ng speech, 8 kHz) into the call, queued for longer than the call
is held; sipp echoes it, so the worker's VAD runs on every frame heard, and finds speech.

1. Concurrency (`--calls`, `--hold`): place the calls at `--rate` per second; once all are
   up, hold them together for `--hold` seconds, then hang up. From `--settle` seconds after
   all are up until the hang-up: system-wide CPU (/proc/stat: every process on the
   machine) and the CPU of each worker, sipp and the bench process (/proc/PID/stat: "ours");
   and probe calls at `--probe-rate` per second (answered, then hung up at once), whose
   setup latency is the one "with the calls up". Media, per held call, from its
   `Ended.media`: `late_frames` (media clock ticks more than 40 ms apart), and frames sent
   against the 20 ms frames due from the moment the bench sent the prompt to the worker's
   end of the call. Before the calls, the same CPU figures for `--idle` seconds without a
   call: the workers' fixed cost.
2. Sustained rate (`--rate`, `--minutes`): place calls at `--rate` per second for
   `--minutes`; each is answered, plays the prompt, and is hung up `--short-hold` seconds
   later. Counted: answered calls, endings by status and reason, worker restarts (a
   `Ready` after start, a changed worker pid, a call ended because its worker crashed),
   peak open calls, CPU from 10 s in to the last placement.

Setup latency is the worker's `Answered.t - Trying.t`: INVITE sent to 200 OK handled (and
ACK sent), on one clock. Beside it: `place()` to the INVITE (the Place command's trip
through the worker's pipe, read between 20 ms polls), the Answered event's trip back to
the backend's I/O thread and to the bench's main thread, and `place()` to `CallAnswered`
(which waits for the echo's first RTP packet after the 200: the worker's `MediaFlowing`).

    .venv/bin/python scripts/bench_sip.py                        # quick: hold 30 s, 1 min
    .venv/bin/python scripts/bench_sip.py --hold 60 --minutes 5  # the issue's figures
    (--phase media|rate runs one part; --json prints only the figures, as JSON)
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.harness.ports import free_udp_ports, udp_port_free  # noqa: E402
from lines.sip import (  # noqa: E402
    SipBackend,
    SipSettings,
    SipTrunk,
    Timing,
    WorkerOptions,
)
from lines.sip import protocol as p  # noqa: E402
from lines.sip.pcm import PORT_FRAMES  # noqa: E402
from lines.telephony import CallAnswered, CallEnded, CallEvent, CallRequest  # noqa: E402

PROMPT_TEXT = ("Hello, this is a reminder from your pharmacy. Your prescription is ready "
               "for pickup. Press one to speak to an agent, or stay on the line.")
FRAME_S = 0.020
TICKS = os.sysconf("SC_CLK_TCK")


# the far end and the prompt


def start_sipp(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp is not installed (Debian package sip-tester)")
    port, media = free_udp_ports(4), free_udp_ports(4)  # each with its successors
    process = subprocess.Popen(
        [sipp, "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-p", str(port),
         "-mp", str(media), "-nostdin"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while udp_port_free(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("sipp did not start")
        time.sleep(0.02)
    return process, port


def make_prompt(folder: Path) -> tuple[Path, float]:
    """The prompt as an 8 kHz 16-bit mono WAV (espeak-ng, resampled), and its length."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is not installed (Debian package espeak-ng)")
    raw = folder / "prompt-22k.wav"
    subprocess.run([espeak, "-w", str(raw), PROMPT_TEXT], check=True, capture_output=True,
                   timeout=30)
    with wave.open(str(raw), "rb") as source:
        rate = source.getframerate()
        samples = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    count = len(samples) * 8000 // rate
    resampled = np.interp(np.arange(count) * rate / 8000, np.arange(len(samples)), samples)
    path = folder / "prompt.wav"
    with wave.open(str(path), "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(2)
        target.setframerate(8000)
        target.writeframes(np.clip(resampled, -32768, 32767).astype("<i2").tobytes())
    return path, count / 8000


# CPU


@dataclass(frozen=True, slots=True)
class CpuSample:
    at: float
    busy: int  # jiffies, all CPUs
    total: int
    processes: dict[int, int]  # pid -> utime + stime, in clock ticks


@dataclass(frozen=True, slots=True)
class CpuFigures:
    seconds: float
    machine_busy_pct: float  # of all cores, whoever used them
    ours_pct_of_machine: float  # workers, sipp and the bench, of all cores
    workers_pct: float  # of one core, all workers together
    sipp_pct: float
    bench_pct: float  # the bench process: backend, supervisor I/O thread, driver


class Meter:
    """Samples system-wide CPU and the CPU of the workers, sipp and this process."""

    def __init__(self, workers: Callable[[], set[int]], sipp: int) -> None:
        self.workers, self.sipp = workers, sipp

    def sample(self) -> CpuSample:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        idle = values[3] + values[4]  # idle, iowait
        total = sum(values[:8])  # guest time is in user time already
        times = {}
        for pid in self.workers() | {self.sipp, os.getpid()}:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            times[pid] = int(fields[11]) + int(fields[12])  # utime, stime
        return CpuSample(at=time.monotonic(), busy=total - idle, total=total, processes=times)

    def between(self, start: CpuSample, end: CpuSample) -> CpuFigures:
        seconds = end.at - start.at

        def pct(pids: Iterable[int]) -> float:
            ticks = sum(end.processes[pid] - start.processes[pid] for pid in pids
                        if pid in start.processes and pid in end.processes)
            return 100 * ticks / TICKS / seconds

        workers, sipp, bench = pct(self.workers()), pct([self.sipp]), pct([os.getpid()])
        return CpuFigures(
            seconds=seconds, machine_busy_pct=100 * (end.busy - start.busy) / max(
                1, end.total - start.total),
            ours_pct_of_machine=(workers + sipp + bench) / (os.cpu_count() or 1),
            workers_pct=workers, sipp_pct=sipp, bench_pct=bench)


# the driver


@dataclass(slots=True)
class CallLog:
    """One call's times, all on the wall clock (the workers stamp events with it)."""

    kind: str  # "held", "probe" or "short"
    placed_t: float  # the bench called place()
    plays: int = 0  # prompts to queue on answer
    hold_s: float | None = None  # hang up this long after the answer (None: the bench will)
    heard_t: float | None = None  # the bench heard CallAnswered
    played_t: float | None = None  # the bench sent the prompt
    trying_t: float | None = None  # the worker sent the INVITE
    answered_t: float | None = None  # the worker handled the 200 (and sent the ACK)
    relayed_t: float | None = None  # the backend's I/O thread read the worker's Answered
    ended: CallEnded | None = None
    raw_end: p.Ended | None = None

    @property
    def settled(self) -> bool:
        """Answered or ended."""
        return self.heard_t is not None or self.ended is not None

    def span_ms(self, start: str, end: str) -> float | None:
        first, last = getattr(self, start), getattr(self, end)
        return None if first is None or last is None else 1000 * (last - first)


@dataclass(slots=True)
class Driver:
    """Feeds the backend and hears it, on the main thread: backend callbacks only enqueue."""

    prompt_s: float
    backend: SipBackend | None = None
    calls: dict[str, CallLog] = field(default_factory=dict)
    restarts: int = 0  # workers that came back after start
    _inbox: queue.Queue[CallEvent | tuple[float, p.Event]] = field(default_factory=queue.Queue)
    _due: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _seq: int = 0

    def sink(self, event: CallEvent) -> None:
        self._inbox.put(event)

    def observe(self, worker: int, event: p.Event) -> None:
        self._inbox.put((time.time(), event))

    @property
    def sip(self) -> SipBackend:
        assert self.backend is not None
        return self.backend

    def at(self, when: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._due, (when, self._seq, action))

    def place(self, call_id: str, kind: str, plays: int = 0, hold_s: float | None = None
              ) -> None:
        self.calls[call_id] = CallLog(kind=kind, placed_t=time.time(), plays=plays,
                                      hold_s=hold_s)
        self.sip.place(CallRequest(call_id=call_id, e164="+15550100000",
                                   caller_id="+15550199999", trunk="sipp",
                                   ring_timeout=timedelta(seconds=10)))

    def up(self, kind: str) -> list[str]:
        return [call_id for call_id, log in self.calls.items()
                if log.kind == kind and log.heard_t is not None and log.ended is None]

    def of_kind(self, kind: str) -> list[CallLog]:
        return [log for log in self.calls.values() if log.kind == kind]

    def open_calls(self) -> int:
        return sum(log.ended is None for log in self.calls.values())

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            now = time.monotonic()
            if now > deadline:
                return False
            while self._due and self._due[0][0] <= now:
                heapq.heappop(self._due)[2]()
            wait = min(0.02, max(0.0, self._due[0][0] - now)) if self._due else 0.02
            try:
                item = self._inbox.get(timeout=wait)
            except queue.Empty:
                continue
            self._handle(item)
            while not self._inbox.empty():
                self._handle(self._inbox.get_nowait())
        return True

    def _handle(self, item: CallEvent | tuple[float, p.Event]) -> None:
        if isinstance(item, tuple):
            self._on_raw(*item)
            return
        log = self.calls.get(item.call_id)
        if log is None:
            return
        if isinstance(item, CallAnswered):
            log.heard_t = time.time()
            self._on_answered(item.call_id, log)
        elif isinstance(item, CallEnded):
            log.ended = item

    def _on_answered(self, call_id: str, log: CallLog) -> None:
        if log.kind == "probe":
            self.sip.hang_up(call_id)
            return
        log.played_t = time.time()
        for _ in range(log.plays):
            self.sip.start_script(call_id, "bench")
        if log.hold_s is not None:
            self.at(time.monotonic() + log.hold_s, partial(self.sip.hang_up, call_id))

    def _on_raw(self, relayed_t: float, event: p.Event) -> None:
        if isinstance(event, p.Ready):
            self.restarts += 1
            return
        log = self.calls.get(getattr(event, "call_id", ""))
        if log is None:
            return
        if isinstance(event, p.Trying):
            log.trying_t = event.t
        elif isinstance(event, p.Answered):
            log.answered_t, log.relayed_t = event.t, relayed_t
        elif isinstance(event, p.Ended):
            log.raw_end = event


# figures


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass(frozen=True, slots=True)
class Latency:
    """Setup (INVITE sent to 200 handled, in the worker), and the trips around it: the
    Place command from `place()` to the INVITE, the answer from the worker to the sink."""

    n: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    place_to_invite_p50_ms: float | None
    place_to_invite_p95_ms: float | None
    answer_to_backend_p50_ms: float | None  # the worker's pipe and the I/O thread
    answer_to_backend_p95_ms: float | None
    answer_to_sink_p50_ms: float | None  # ... and on to the bench's main thread
    answer_to_sink_p95_ms: float | None
    end_to_end_p50_ms: float | None  # place() to CallAnswered heard
    end_to_end_p95_ms: float | None

    @classmethod
    def of(cls, logs: list[CallLog]) -> Latency:
        def spans(start: str, end: str) -> list[float]:
            return [ms for log in logs if (ms := log.span_ms(start, end)) is not None]

        setup, out = spans("trying_t", "answered_t"), spans("placed_t", "trying_t")
        back, e2e = spans("answered_t", "heard_t"), spans("placed_t", "heard_t")
        relay = spans("answered_t", "relayed_t")
        return cls(n=len(setup), p50_ms=percentile(setup, 50), p95_ms=percentile(setup, 95),
                   p99_ms=percentile(setup, 99), max_ms=max(setup, default=None),
                   place_to_invite_p50_ms=percentile(out, 50),
                   place_to_invite_p95_ms=percentile(out, 95),
                   answer_to_backend_p50_ms=percentile(relay, 50),
                   answer_to_backend_p95_ms=percentile(relay, 95),
                   answer_to_sink_p50_ms=percentile(back, 50),
                   answer_to_sink_p95_ms=percentile(back, 95),
                   end_to_end_p50_ms=percentile(e2e, 50), end_to_end_p95_ms=percentile(e2e, 95))


@dataclass(frozen=True, slots=True)
class Media:
    """Underruns: late clock ticks, and frames sent against the 20 ms frames due from the
    moment the prompt was sent to the call's end (it was queued for longer than the call)."""

    calls: int
    late_frames: int
    calls_with_late_frames: int
    frames_sent: int
    frames_expected: int
    shortfall_median_frames: float
    shortfall_max_frames: int
    frames_received: int
    speech_share_heard: float  # of the frames heard (the echo), the share VAD called speech

    @classmethod
    def of(cls, logs: list[CallLog]) -> Media:
        late, short, sent, due, heard, speech = [], [], 0, 0, 0, 0
        for log in logs:
            end = log.raw_end
            if end is None or end.media is None or log.played_t is None:
                continue
            expected = round((end.t - log.played_t) / FRAME_S)
            late.append(end.media.late_frames)
            short.append(expected - end.media.frames_sent)
            sent, due = sent + end.media.frames_sent, due + expected
            heard, speech = heard + end.media.frames_received, speech + end.media.speech_frames
        return cls(calls=len(late), late_frames=sum(late),
                   calls_with_late_frames=sum(1 for n in late if n), frames_sent=sent,
                   frames_expected=due,
                   shortfall_median_frames=statistics.median(short) if short else 0.0,
                   shortfall_max_frames=max(short, default=0), frames_received=heard,
                   speech_share_heard=speech / max(1, heard))

    @property
    def no_underruns(self) -> bool:
        """No late tick, and no call short of frames beyond the prompt command's trip and
        the hang-up (5 frames, 100 ms) and the call port's granularity at either end."""
        allowed = 5 + 2 * (PORT_FRAMES - 1)
        return (self.calls > 0 and self.late_frames == 0
                and self.shortfall_max_frames <= allowed)


def endings(logs: list[CallLog]) -> dict[str, int]:
    return dict(Counter(f"{log.ended.sip_status} {log.ended.reason}" if log.ended else
                        "not ended" for log in logs))


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


@dataclass(frozen=True, slots=True)
class Concurrency:
    calls: int
    up_together: int
    hold_s: float
    cpu: CpuFigures
    idle: CpuFigures  # the same workers with no call, before the phase
    workers_pct_of_a_core_per_call: float
    workers_pct_of_a_core_per_call_over_idle: float
    machine_pct_per_call: float
    media: Media
    setup_with_calls_up: Latency  # the probe calls
    setup_during_ramp: Latency  # the held calls
    endings: dict[str, int]
    probe_endings: dict[str, int]

    def verdicts(self) -> list[str]:
        m, p95 = self.media, self.setup_with_calls_up.p95_ms
        return [
            f"{self.up_together} of {self.calls} calls up together with media: "
            f"{met(self.up_together == self.calls)}",
            f"no frame underruns (late ticks {m.late_frames}; frames sent {m.frames_sent} of "
            f"{m.frames_expected} due, worst call {m.shortfall_max_frames} short): "
            f"{met(m.no_underruns)}",
            f"machine under 70% busy: {self.cpu.machine_busy_pct:.1f}% (ours "
            f"{self.cpu.ours_pct_of_machine:.1f}%): {met(self.cpu.machine_busy_pct < 70)}",
            f"setup p95 under 20 ms with the calls up: {p95 or 0:.2f} ms over "
            f"{self.setup_with_calls_up.n} probes: {met(p95 is not None and p95 < 20)}",
        ]


@dataclass(frozen=True, slots=True)
class Sustained:
    rate: float
    minutes: float
    placed: int
    placed_per_s: float
    answered: int
    worker_restarts: int
    calls_lost_to_crashes: int
    worker_pids_changed: int
    peak_open_calls: int
    cpu: CpuFigures
    setup: Latency
    media: Media
    endings: dict[str, int]

    def verdicts(self) -> list[str]:
        crashes = self.worker_restarts + self.calls_lost_to_crashes + self.worker_pids_changed
        return [f"{self.rate:g} setups/s for {self.minutes:g} min with no worker crash "
                f"({self.placed_per_s:.2f}/s placed, {self.answered} of {self.placed} "
                f"answered, {self.worker_restarts} restarts): "
                f"{met(crashes == 0 and self.answered == self.placed)}"]


# the phases


def concurrency_phase(driver: Driver, args: argparse.Namespace, meter: Meter) -> Concurrency:
    driver.run_until(lambda: False, 1.0)
    quiet = meter.sample()
    driver.run_until(lambda: False, args.idle)
    idle = meter.between(quiet, meter.sample())
    plays = math.ceil((args.hold + args.calls / args.rate + 10) / driver.prompt_s)
    held = [f"held-{i}" for i in range(args.calls)]
    start = time.monotonic()
    for i, call_id in enumerate(held):
        driver.at(start + i / args.rate, partial(driver.place, call_id, "held", plays))
    driver.run_until(lambda: all(c in driver.calls and driver.calls[c].settled for c in held),
                     args.calls / args.rate + 20)
    up = len(driver.up("held"))
    all_up = time.monotonic()
    samples: list[CpuSample] = []
    driver.at(all_up + args.settle, lambda: samples.append(meter.sample()))
    for i in range(int((args.hold - args.settle - 1) * args.probe_rate)):
        driver.at(all_up + args.settle + (i + 0.5) / args.probe_rate,
                  partial(driver.place, f"probe-{i}", "probe"))
    driver.run_until(lambda: False, args.hold)
    samples.append(meter.sample())
    for call_id in driver.up("held"):
        driver.sip.hang_up(call_id)
    driver.run_until(lambda: driver.open_calls() == 0, 20)
    held_logs = [driver.calls[c] for c in held]
    probe_logs = driver.of_kind("probe")
    cpu = meter.between(*samples)
    return Concurrency(
        calls=args.calls, up_together=up, hold_s=args.hold, cpu=cpu, idle=idle,
        workers_pct_of_a_core_per_call=cpu.workers_pct / max(1, up),
        workers_pct_of_a_core_per_call_over_idle=(cpu.workers_pct - idle.workers_pct) / max(
            1, up),
        machine_pct_per_call=cpu.machine_busy_pct / max(1, up), media=Media.of(held_logs),
        setup_with_calls_up=Latency.of(probe_logs), setup_during_ramp=Latency.of(held_logs),
        endings=endings(held_logs), probe_endings=endings(probe_logs))


def sustained_phase(driver: Driver, args: argparse.Namespace, meter: Meter) -> Sustained:
    restarts, pids_before = driver.restarts, meter.workers()
    total = int(args.rate * args.minutes * 60)
    plays = math.ceil(args.short_hold / driver.prompt_s)
    start, peak = time.monotonic(), [0]

    def place(i: int) -> None:
        driver.place(f"short-{i}", "short", plays, hold_s=args.short_hold)
        peak[0] = max(peak[0], driver.open_calls())

    for i in range(total):
        driver.at(start + i / args.rate, partial(place, i))
    samples: list[CpuSample] = []
    for when in (start + min(10.0, args.minutes * 30), start + total / args.rate):
        driver.at(when, lambda: samples.append(meter.sample()))
    driver.run_until(lambda: len(samples) == 2, total / args.rate + 30)
    placing_s = time.monotonic() - start
    driver.run_until(lambda: driver.open_calls() == 0, 30)
    logs = driver.of_kind("short")
    answered = sum(log.heard_t is not None for log in logs)
    return Sustained(
        rate=args.rate, minutes=args.minutes, placed=len(logs),
        placed_per_s=len(logs) / placing_s, answered=answered,
        worker_restarts=driver.restarts - restarts,
        calls_lost_to_crashes=sum(1 for log in logs
                                  if log.ended and "worker crashed" in log.ended.reason),
        worker_pids_changed=len(pids_before - meter.workers()), peak_open_calls=peak[0],
        cpu=meter.between(*samples), setup=Latency.of(logs), media=Media.of(logs),
        endings=endings(logs))


# the run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SIP benchmark against sipp -rtp_echo.")
    parser.add_argument("--calls", type=int, default=100, help="calls held together")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds they are all up")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds after all are up before measuring")
    parser.add_argument("--idle", type=float, default=5.0,
                        help="seconds the workers' CPU is measured with no call first")
    parser.add_argument("--probe-rate", type=float, default=4.0,
                        help="probe calls per second while the calls are held")
    parser.add_argument("--rate", type=float, default=20.0, help="call setups per second")
    parser.add_argument("--minutes", type=float, default=1.0, help="minutes at --rate")
    parser.add_argument("--short-hold", type=float, default=2.0,
                        help="seconds each call of the sustained phase is held")
    parser.add_argument("--workers", type=int, default=26, help="media worker processes")
    parser.add_argument("--handler", help="module:callable making each call's media handler "
                        "(default: the workers' PromptAndVad), to measure what a handler costs")
    parser.add_argument("--phase", choices=("all", "media", "rate"), default="all")
    parser.add_argument("--json", action="store_true", help="print only the figures, as JSON")
    args = parser.parse_args(argv)
    if args.workers * 4 < args.calls + 4:
        parser.error("give enough workers for the held calls and the probes (4 calls each)")
    if not 0 < args.settle < args.hold - 1 or min(args.rate, args.probe_rate) <= 0:
        parser.error("--settle must leave a second of --hold; rates must be positive")
    with tempfile.TemporaryDirectory(prefix="bench-sip-") as folder:
        results = run(args, Path(folder))
    figures = {name: asdict(value) if not isinstance(value, dict) else value
               for name, value in results.items()}
    if not args.json:
        print(__doc__)
    print(json.dumps(figures, indent=2))
    if not args.json:
        for value in results.values():
            if isinstance(value, Concurrency | Sustained):
                print("\n".join(value.verdicts()))
    return 0


def run(args: argparse.Namespace, folder: Path) -> dict[str, Concurrency | Sustained | dict[
        str, float]]:
    prompt, prompt_s = make_prompt(folder)
    sipp, port = start_sipp(folder)
    driver = Driver(prompt_s=prompt_s)
    results: dict[str, Concurrency | Sustained | dict[str, float]] = {}
    try:
        trunk = SipTrunk(name="sipp", uri=f"sip:{{number}}@127.0.0.1:{port}",
                         channels=10_000, cps=max(1.0, 2 * args.rate + args.probe_rate))
        settings = SipSettings(trunks=(trunk,), workers=args.workers, script_prompt=prompt,
                               worker=WorkerOptions(handler=args.handler),
                               timing=Timing(start_timeout_s=120))
        started = time.monotonic()
        driver.backend = SipBackend(driver.sink, settings, clock=lambda: datetime.now(UTC),
                                    observer=driver.observe)
        results["setup"] = {"workers": args.workers, "cores": os.cpu_count() or 0,
                            "workers_started_s": time.monotonic() - started,
                            "prompt_s": prompt_s}
        meter = Meter(lambda: {pid for pid in driver.sip.worker_pids() if pid}, sipp.pid)
        if args.phase in ("all", "media"):
            results["concurrency"] = concurrency_phase(driver, args, meter)
        if args.phase in ("all", "rate"):
            results["sustained"] = sustained_phase(driver, args, meter)
    finally:
        if driver.backend is not None:
            driver.backend.close()
        sipp.kill()
        sipp.wait(timeout=5)
    return results


if __name__ == "__main__":
    sys.exit(main())
