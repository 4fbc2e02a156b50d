"""The harness for real: phone workers on free 127.0.0.1 ports, called by media workers
acting as a dialer (`Place`), the call log they write, a crashed worker, a port in use and
`dialer harness --for`.

Every wait is bounded; every process is stopped or killed in teardown.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dialer.cli import app
from dialer.errors import DialerError, UsageError
from dialer.harness import audio
from dialer.harness.config import parse_harness
from dialer.harness.qa import PhoneCall, read_calls
from dialer.harness.runtime import Harness
from lines.sip import protocol as p
from lines.sip.process import WorkerOptions, WorkerProcess
from tests.lines.sip.sipkit import SPEECH, free_udp_ports

pytestmark = pytest.mark.sip

CALLER = "+15550001111"
PHONES = {
    "bob": {"kind": "person", "ring": 0.3, "talk": 5, "keys": "12", "keys_after": 0.5},
    "desk": {"kind": "agent", "talk": 1},
    "vm": {"kind": "voicemail", "text": "Leave a message.", "ring": 0.2},
    "declines": {"kind": "reject", "ring": 0.3},
    "空号": {"kind": "announcement", "text": "您拨打的号码是空号", "announcement": "vacant",
           "ring": 0.3},
    "停机": {"kind": "announcement", "text": "已停机", "announcement": "suspended", "ring": 0},
    "sit": {"kind": "sit", "announcement": "powered_off", "ring": 0},
}
NUMBERS = {"+8610001": "bob", "+8610002": "desk", "+8610003": "vm", "+8610004": "declines",
           "+8610005": "空号", "+8610006": "停机", "+8610007": "sit", "+8610008": "busy",
           "+8610009": "vacant", "+8610010": "ring_forever"}
UNASSIGNED = "+8619999"

@pytest.fixture(scope="module")
def tts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tts")


class Harnesses:
    """Harnesses serving in threads: `start(workers=2, phones=..., numbers=...)`; `stop`
    one (its workers hang up and its calls are logged); every one stops in teardown."""

    def __init__(self, folder: Path, tts: Path) -> None:
        self._folder, self._tts = folder, tts
        self._running: dict[int, tuple[threading.Event, threading.Thread]] = {}
        self._started: list[Harness] = []
        self.errors: list[BaseException] = []

    def start(self, workers: int = 2, **data: object) -> Harness:
        port = free_udp_ports(workers)
        config = parse_harness({"listen": f"127.0.0.1:{port}", "workers": workers, **data})
        harness = Harness(config, log_path=self._folder / "calls.jsonl", cache_dir=self._tts)
        self._started.append(harness)
        harness.start()
        stop = threading.Event()

        def serve() -> None:
            try:
                harness.serve(stop=stop)
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        self._running[id(harness)] = (stop, thread)
        return harness

    def stop(self, harness: Harness) -> None:
        stop, thread = self._running.pop(id(harness), (None, None))
        if stop is not None and thread is not None:
            stop.set()
            thread.join(10)
        harness.close()


@pytest.fixture
def harnesses(tmp_path: Path, tts: Path) -> Iterator[Harnesses]:
    running = Harnesses(tmp_path, tts)
    yield running
    for harness in running._started:
        running.stop(harness)
    assert not running.errors, running.errors


@pytest.fixture
def callers(tmp_path: Path, tts: Path) -> Iterator[list[WorkerProcess]]:
    """Two media workers placing calls (4 at once each), stopping their prompt when the far
    end talks over it; each has the prompt "speech" loaded."""
    speech = tmp_path / "speech.wav"
    audio.write_wav(speech, audio.speak(SPEECH, tts))
    started = [WorkerProcess(WorkerOptions(handler="tests.harness.callers:barge_in_handler"))
               for _ in range(2)]
    try:
        for worker in started:
            worker.wait_ready(15)
            worker.send(p.LoadPrompt(name="speech", path=str(speech)))
        yield started
    finally:
        for worker in started:
            worker.stop(timeout=5)
            worker.close()


def place(worker: WorkerProcess, call_id: str, number: str, port: int, **extra: object) -> None:
    worker.send(p.Place(call_id=call_id, uri=f"sip:{number}@127.0.0.1:{port}",
                        from_uri=f"sip:{CALLER}@127.0.0.1", **extra))  # type: ignore[arg-type]


Reaction = Callable[[WorkerProcess, p.Event, float], None]


def calls_until_ended(workers: list[WorkerProcess], call_ids: set[str], timeout: float = 20,
                      react: Reaction | None = None) -> dict[str, list[p.Event]]:
    """Each call's events until every call in `call_ids` has ended; `react` sees each event
    as it comes (and None-less ticks are not needed: it may act on any event)."""
    seen: dict[str, list[p.Event]] = {call_id: [] for call_id in call_ids}
    ended: set[str] = set()
    deadline = time.monotonic() + timeout
    while ended != call_ids:
        left = deadline - time.monotonic()
        assert left > 0, f"calls not over in {timeout} s: {call_ids - ended}; {seen}"
        select.select([w.stdout_fd for w in workers], [], [], min(left, 0.05))
        for worker in workers:
            for event in worker.read_events():
                call_id = getattr(event, "call_id", None)
                if call_id in seen:
                    seen[call_id].append(event)
                    ended |= {call_id} if isinstance(event, p.Ended) else set()
                if react is not None:
                    react(worker, event, time.monotonic())
            if react is not None:
                react(worker, p.Pong(t=0, seq=0), time.monotonic())  # a tick
    return seen


def calls_until_ringing(worker: WorkerProcess, call_id: str) -> None:
    deadline = time.monotonic() + 10
    while not any(isinstance(e, p.Ringing) and e.call_id == call_id
                  for e in worker.read_events()):
        assert time.monotonic() < deadline, f"{call_id} did not ring"
        time.sleep(0.02)


def logged(harness: Harness, count: int, timeout: float = 5) -> dict[str, PhoneCall]:
    """The call log once it has `count` calls, by dialed number."""
    deadline = time.monotonic() + timeout
    while True:
        calls = read_calls(harness.log_path) if harness.log_path.exists() else []
        if len(calls) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(calls) == count, calls
    return {call.dialed: call for call in calls}


def summary(events: list[p.Event]) -> tuple[object, ...]:
    """(the 18x seen, early media, answered, final status, Q.850 cause, who ended it)."""
    (end,) = [e for e in events if isinstance(e, p.Ended)]
    return (tuple(e.status for e in events if isinstance(e, p.Ringing)),
            any(isinstance(e, p.EarlyMedia) for e in events),
            any(isinstance(e, p.Answered) for e in events), end.status, end.q850, end.by)


def media(events: list[p.Event]) -> p.MediaStats:
    (end,) = [e for e in events if isinstance(e, p.Ended)]
    assert end.media is not None
    return end.media


def test_every_kind_answers_as_it_should_and_the_log_says_what_it_did(
        harnesses: Harnesses, callers: list[WorkerProcess]) -> None:
    harness = harnesses.start(workers=2, phones=PHONES, numbers=NUMBERS)
    first, second = harness.ports
    # the long calls: 3 on the first phone worker, 4 (its cap) on the second
    place(callers[0], "bob", "+8610001", first)
    place(callers[0], "空号", "+8610005", first)
    place(callers[0], "ring_forever", "+8610010", first, ring_timeout=1.5)
    place(callers[1], "desk", "+8610002", second)
    place(callers[1], "vm", "+8610003", second)
    place(callers[1], "停机", "+8610006", second)
    place(callers[1], "sit", "+8610007", second)
    answered: dict[str, float] = {}
    done: set[str] = set()

    def react(worker: WorkerProcess, event: p.Event, now: float) -> None:
        if isinstance(event, p.Answered):
            answered[event.call_id] = now
        if "bob" in answered and now > answered["bob"] + 1.0 and "bob" not in done:
            done.add("bob")  # its hello is over: talk to it, and press 9
            callers[0].send(p.Play(call_id="bob", prompt="speech"))
            callers[0].send(p.SendDtmf(call_id="bob", digits="9"))
        if "vm" in answered and now > answered["vm"] + 2.5 and "vm" not in done:
            done.add("vm")  # after the beep
            callers[1].send(p.HangUp(call_id="vm"))

    long_calls = {"bob", "空号", "ring_forever", "desk", "vm", "停机", "sit"}
    seen = calls_until_ended(callers, long_calls, timeout=25, react=react)
    place(callers[0], "busy", "+8610008", first)
    place(callers[0], "declines", "+8610004", first)
    place(callers[1], "vacant", "+8610009", second)
    place(callers[1], "none", UNASSIGNED, second)
    seen |= calls_until_ended(callers, {"busy", "declines", "vacant", "none"}, timeout=10)

    assert summary(seen["bob"]) == ((180,), False, True, 200, None, "remote")
    assert [e.digit for e in seen["bob"] if isinstance(e, p.Dtmf)] == ["1", "2"]
    assert summary(seen["desk"]) == ((), False, True, 200, None, "remote")
    assert summary(seen["vm"]) == ((180,), False, True, 200, None, "us")
    assert media(seen["vm"]).speech_frames >= 30  # the greeting, and the beep
    assert summary(seen["空号"]) == ((183,), True, False, 404, 1, "network")
    assert media(seen["空号"]).speech_frames >= 50
    assert summary(seen["停机"]) == ((183,), True, False, 480, None, "network")
    assert summary(seen["sit"]) == ((183,), True, False, 480, 20, "network")
    assert media(seen["sit"]).speech_frames >= 20  # the tones, as far as a VAD can tell
    assert summary(seen["ring_forever"]) == ((180,), False, False, 487, None, "us")
    assert summary(seen["busy"]) == ((), False, False, 486, 17, "network")
    assert summary(seen["declines"]) == ((180,), False, False, 603, 21, "network")
    assert summary(seen["vacant"]) == ((), False, False, 404, 1, "network")
    assert summary(seen["none"]) == ((), False, False, 404, 1, "network")

    calls = logged(harness, 11)
    did = {calls[number].phone: (calls[number].did, calls[number].ended_by)
           for number in calls}
    assert did == {
        "bob": ("answered", "phone"), "desk": ("answered", "phone"),
        "vm": ("answered", "caller"), "declines": ("603 Decline", "phone"),
        "空号": ("404 Not Found", "phone"), "停机": ("480 Temporarily Unavailable", "phone"),
        "sit": ("480 Temporarily Unavailable", "phone"), "busy": ("486 Busy Here", "phone"),
        "vacant": ("404 Not Found", "phone"), "(no rule)": ("404 Not Found", "phone"),
        "ring_forever": ("180 Ringing", "caller")}
    bob = calls["+8610001"]
    assert (bob.kind, bob.caller, bob.keys_sent, bob.keys_heard) == ("person", CALLER, "12", "9")
    assert "answered_human" in bob.expected
    assert bob.answered_at is not None
    assert bob.ended_at is not None
    assert 4.5 < bob.ended_at - bob.answered_at < 6  # talk: 5 s
    assert bob.speech_heard_ms >= 600  # the caller's prompt, until it stopped for bob
    # bob talked over the prompt; the caller stopped it after 60 ms of his speech
    assert bob.barge_in_ms is not None
    assert 40 < bob.barge_in_ms < 600, bob.barge_in_ms
    assert media(seen["bob"]).frames_sent < 150  # the 4 s prompt was cut short
    assert calls["+8610003"].speech_heard_ms == 0  # nobody left a message
    assert (calls["+8610005"].expected, calls["+8610006"].expected) == (("vacant",),
                                                                        ("suspended",))
    assert calls["+8610007"].expected == ("powered_off",)
    assert calls["+8610010"].expected == ("no_answer",)
    assert all(call.barge_in_ms is None for call in calls.values() if call.phone != "bob")


def test_a_crashed_phone_worker_is_logged_and_restarted(
        harnesses: Harnesses, callers: list[WorkerProcess]) -> None:
    harness = harnesses.start(workers=1, numbers={"+8610001": "ring_forever", "+8610002": "busy"})
    (port,) = harness.ports
    place(callers[0], "c1", "+8610001", port)
    calls_until_ringing(callers[0], "c1")
    (pid,) = harness.pids()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    crashed = logged(harness, 1)["+8610001"]
    assert (crashed.did, crashed.ended_by) == ("180 Ringing; the phone worker died", "network")
    callers[0].send(p.HangUp(call_id="c1"))
    deadline = time.monotonic() + 15
    while harness.pids()[0] in (None, pid):
        assert time.monotonic() < deadline, "the phone worker was not restarted"
        time.sleep(0.05)
    callers[0].read_events()
    place(callers[0], "c2", "+8610002", port)
    seen = calls_until_ended(callers[:1], {"c2"}, timeout=10)
    assert summary(seen["c2"])[3:5] == (486, 17)
    assert logged(harness, 2)["+8610002"].did == "486 Busy Here"
    place(callers[0], "c3", "+8610001", port)
    calls_until_ringing(callers[0], "c3")
    harnesses.stop(harness)  # hangs up the ringing call, and logs it
    last = read_calls(harness.log_path)[-1]
    assert (last.dialed, last.did, last.ended_by) == (
        "+8610001", "180 Ringing; the harness stopped", "phone")


def test_a_port_in_use_is_a_clear_error(tmp_path: Path, tts: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        config = parse_harness({"listen": f"127.0.0.1:{port}", "workers": 1,
                                "weights": {"busy": 1}})
        harness = Harness(config, log_path=tmp_path / "calls.jsonl", cache_dir=tts)
        with pytest.raises(UsageError, match=rf"port {port} on 127.0.0.1 is in use"):
            harness.start()
        assert harness.pids() == [None]


def test_the_command_runs_the_phones_for_a_while_and_reports(tmp_path: Path) -> None:
    port = free_udp_ports(1)
    (tmp_path / "h.yaml").write_text(f'listen: "127.0.0.1:{port}"\nworkers: 1\n'
                                     "weights: {busy: 1}\n", encoding="utf-8")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["harness", "--config", str(tmp_path / "h.yaml"),
                                      "--for", "1s", "--log", str(tmp_path / "c.jsonl"),
                                      "--json"])
    if isinstance(result.exception, DialerError):
        raise result.exception
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 15
    report = json.loads(result.stdout.splitlines()[-1])
    assert (report["calls"], report["by_phone"], report["barge_in_ms"]) == (0, {}, None)
    assert f'sip:127.0.0.1:{port}", channels: 4' in result.stderr
