"""`SipBackend` end to end: its media workers call a worker in answer mode over 127.0.0.1,
and the sink hears `lines.telephony` events."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sipkit import Recorder, WorkerFactory, events_until, of, over

from lines.sip import SipBackend, SipError, SipSettings, SipTrunk, Timing, WorkerOptions
from lines.sip import protocol as p
from lines.sip.process import WorkerProcess
from lines.telephony import (
    CallAnswered,
    CalleeActed,
    CallEnded,
    CallRequest,
    CallRinging,
    EarlyMediaHeard,
    Party,
)
from rules.signals import Announcement

pytestmark = pytest.mark.sip

TALKER, BUSY, VACANT, KEYS, NOBODY, SILENT = (f"+1555000000{i}" for i in range(1, 7))
PLANS = {
    TALKER: p.AnswerPlan(ring_s=0.2, play="speech", hang_up_after_s=1.5),
    BUSY: p.AnswerPlan(status=486, reason="Busy Here", reason_header="Q.850;cause=17"),
    VACANT: p.AnswerPlan(ring_s=1.0, early_media="speech", status=404, reason="Not Found"),
    KEYS: p.AnswerPlan(dtmf="5", dtmf_delay_s=0.2),
    NOBODY: p.AnswerPlan(ring_s=30),
    SILENT: p.AnswerPlan(),
    "agent": p.AnswerPlan(ring_s=0.1),
}


@pytest.fixture
def far_end(workers: WorkerFactory, audio: Path) -> WorkerProcess:
    callee = workers()
    callee.send(p.LoadPrompt(name="speech", path=str(audio / "speech.wav")))
    callee.send(p.SetPlans(plans=PLANS))
    return callee


BackendFactory = Callable[..., tuple[SipBackend, Recorder]]


@pytest.fixture
def backend(far_end: WorkerProcess) -> Iterator[BackendFactory]:
    made: list[SipBackend] = []
    assert far_end.ready is not None
    port = far_end.ready.port

    def make(channels: int = 10, cps: float = 50.0, **settings: object) -> tuple[SipBackend,
                                                                                 Recorder]:
        recorder = Recorder()
        trunk = SipTrunk(name="local", uri=f"sip:{{number}}@127.0.0.1:{port}",
                         channels=channels, cps=cps)
        agents = {"a1": f"sip:agent@127.0.0.1:{port}"}
        sip = SipBackend(recorder, SipSettings(trunks=(trunk,), agents=agents,
                                               **settings),  # type: ignore[arg-type]
                         clock=lambda: datetime.now(UTC), observer=recorder.observe)
        made.append(sip)
        return sip, recorder

    yield make
    for sip in made:
        sip.close()


def call(call_id: str, number: str, ring_s: float = 20, trunk: str = "local") -> CallRequest:
    return CallRequest(call_id=call_id, e164=number, caller_id="+15559990000", trunk=trunk,
                       ring_timeout=timedelta(seconds=ring_s))


def test_an_answered_call_rings_answers_and_ends(backend: BackendFactory) -> None:
    sip, recorder = backend()
    sip.place(call("c1", TALKER))
    end = recorder.ended("c1")

    assert [type(e) for e in recorder.of("c1")] == [CallRinging, CallAnswered, CallEnded]
    assert (end.sip_status, end.ended_by, end.q850_cause) == (200, Party.CALLEE, None)
    (raw,) = [e for _, e in recorder.raw if isinstance(e, p.Ended)]
    assert raw.media is not None
    assert raw.media.speech_frames >= 20  # the callee spoke for 1.5 s


def test_a_busy_callee_with_a_q850_cause(backend: BackendFactory) -> None:
    sip, recorder = backend()
    sip.place(call("c1", BUSY))
    end = recorder.ended("c1")
    assert recorder.of("c1") == [end]
    assert (end.sip_status, end.reason, end.q850_cause, end.ended_by) == (
        486, "Busy Here", 17, Party.NETWORK)


def test_early_media_is_heard_before_the_failure(backend: BackendFactory) -> None:
    sip, recorder = backend()
    sip.place(call("c1", VACANT))
    end = recorder.ended("c1")
    ringing, early, _ = recorder.of("c1")
    assert isinstance(ringing, CallRinging)
    assert isinstance(early, EarlyMediaHeard)
    assert early.announcement is Announcement.UNKNOWN  # the default handler recognises nothing
    assert end.sip_status == 404


def test_keys_pressed_by_the_callee_are_callee_acts(backend: BackendFactory) -> None:
    sip, recorder = backend()
    sip.place(call("c1", KEYS))
    recorder.wait(lambda: any(isinstance(e, CalleeActed) for e in recorder.events))
    sip.hang_up("c1")
    end = recorder.ended("c1")
    assert [e.intent for e in recorder.of("c1") if isinstance(e, CalleeActed)] == ["5"]
    assert (end.sip_status, end.ended_by) == (200, Party.US)


def test_the_ring_timeout_is_ours(backend: BackendFactory) -> None:
    sip, recorder = backend()
    started = time.monotonic()
    sip.place(call("c1", NOBODY, ring_s=1.0))
    end = recorder.ended("c1")
    assert 0.9 <= time.monotonic() - started < 3
    assert (end.sip_status, end.ended_by) == (487, Party.US)


def test_calls_that_cannot_be_placed_end_once(backend: BackendFactory) -> None:
    sip, recorder = backend(channels=1, cps=0.01)
    sip.place(call("c1", NOBODY))
    sip.place(call("c2", NOBODY))  # the trunk's only channel is taken
    sip.place(call("c3", NOBODY, trunk="elsewhere"))
    assert "channels busy" in recorder.ended("c2").reason
    assert recorder.ended("c3").reason == "no SIP trunk named 'elsewhere'"
    with pytest.raises(SipError, match="placed already"):
        sip.place(call("c1", NOBODY))  # while it is up
    sip.hang_up("c1")
    assert recorder.ended("c1").sip_status == 487
    sip.place(call("c4", NOBODY))  # a channel is free, but the next call is due in 100 s
    assert "calls per second" in recorder.ended("c4").reason
    assert all(e.sip_status is None for c in ("c2", "c3", "c4") for e in [recorder.ended(c)])
    assert len([e for e in recorder.events if isinstance(e, CallEnded)]) == 4


def test_a_slot_is_free_again_when_its_call_has_ended(backend: BackendFactory) -> None:
    sip, recorder = backend(workers=1)  # 4 slots
    for call_id in ("c1", "c2", "c3", "c4"):
        sip.place(call(call_id, NOBODY))
    recorder.wait(lambda: sum(isinstance(e, CallRinging) for e in recorder.events) == 4)
    sip.place(call("c5", NOBODY))
    assert recorder.ended("c5").reason == "no media worker has a free slot"
    sip.hang_up("c1")
    recorder.ended("c1")
    sip.place(call("c6", NOBODY))  # at once: the worker's slot came free with the CallEnded
    recorder.wait(lambda: any(isinstance(e, CallRinging) for e in recorder.of("c6")))
    for call_id in ("c2", "c3", "c4", "c6"):
        sip.hang_up(call_id)
        assert recorder.ended(call_id).sip_status == 487


def test_a_killed_worker_fails_its_calls_and_comes_back(backend: BackendFactory) -> None:
    sip, recorder = backend(workers=2)
    sip.place(call("c1", SILENT))
    sip.place(call("c2", SILENT))
    recorder.wait(lambda: sum(isinstance(e, CallAnswered) for e in recorder.events) == 2)
    victim = recorder.worker_of("c1")
    assert recorder.worker_of("c2") != victim  # calls are spread over the workers
    old_pid = sip.worker_pids()[victim]
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)

    end = recorder.ended("c1")
    assert end.sip_status is None
    assert end.reason == "media worker crashed (exit code -9)"
    assert end.ended_by is Party.NETWORK
    recorder.wait(lambda: sum(isinstance(e, p.Ready) for i, e in recorder.raw
                              if i == victim) == 1)
    assert sip.worker_pids()[victim] not in (None, old_pid)
    assert not any(isinstance(e, CallEnded) for e in recorder.of("c2"))  # untouched
    for call_id in ("c3", "c4"):  # the restarted worker takes calls again
        sip.place(call(call_id, SILENT))  # (the far end still holds c1: 4 calls, its cap)
    recorder.wait(lambda: sum(isinstance(e, CallAnswered) for e in recorder.events) == 4)
    assert victim in {recorder.worker_of(c) for c in ("c3", "c4")}
    for call_id in ("c2", "c3", "c4"):
        sip.hang_up(call_id)
        assert recorder.ended(call_id).sip_status == 200


def test_a_hung_worker_is_killed_and_replaced(backend: BackendFactory) -> None:
    sip, recorder = backend(workers=1, timing=Timing(ping_interval_s=0.2, ping_timeout_s=1.0))
    sip.place(call("c1", SILENT))
    recorder.wait(lambda: any(isinstance(e, CallAnswered) for e in recorder.events))
    (pid,) = sip.worker_pids()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # alive, but deaf
    end = recorder.ended("c1")
    assert end.reason == "media worker crashed (no answer to a ping in 1 s)"
    recorder.wait(lambda: sum(isinstance(e, p.Ready) for _, e in recorder.raw) == 1)
    sip.place(call("c2", BUSY))
    assert recorder.ended("c2").sip_status == 486


def test_an_agent_is_bridged_to_the_answered_call(backend: BackendFactory,
                                                  far_end: WorkerProcess) -> None:
    sip, recorder = backend(reserve_agent_slots=True, workers=1)
    sip.place(call("c1", TALKER))
    recorder.wait(lambda: any(isinstance(e, CallAnswered) for e in recorder.events))
    sip.connect_agent("c1", "a1")
    recorder.wait(lambda: any(isinstance(e, p.Bridged) for _, e in recorder.raw))
    end = recorder.ended("c1")  # the talker hangs up after 1.5 s
    assert end.ended_by is Party.CALLEE
    assert {e.call_id for e in recorder.events} == {"c1"}  # the agent leg stays inside

    heard: list[p.Event] = []
    while sum(map(over, heard)) < 2:
        heard += events_until(far_end, over)
    agent = next(e.call_id for e in of(heard, p.Incoming) if "agent@" in e.to_uri)
    (agent_end,) = of(heard, p.Ended, agent)
    assert agent_end.by == "remote"  # we hung the leg up when the customer left
    assert agent_end.media is not None
    assert agent_end.media.speech_frames >= 10  # the agent heard the talker
    with pytest.raises(SipError, match="no softphone SIP URI for agent a9"):
        sip.connect_agent("c1", "a9")


def test_prompts_play_for_scripts_and_abandons(backend: BackendFactory, audio: Path,
                                               far_end: WorkerProcess) -> None:
    sip, recorder = backend(script_prompt=audio / "speech.wav",
                            abandon_prompt=audio / "speech.wav")
    sip.place(call("c1", SILENT))
    sip.place(call("c2", SILENT))
    recorder.wait(lambda: sum(isinstance(e, CallAnswered) for e in recorder.events) == 2)
    started = time.monotonic()
    sip.start_script("c1", "welcome")
    sip.play_abandon_message("c2")
    end = recorder.ended("c2")
    assert time.monotonic() - started >= 3  # the prompt played out first
    assert (end.sip_status, end.ended_by) == (200, Party.US)
    sip.hang_up("c1")
    recorder.ended("c1")
    heard: list[p.Event] = []
    while sum(map(over, heard)) < 2:
        heard += events_until(far_end, over)
    for ended in of(heard, p.Ended):
        assert ended.media is not None
        assert ended.media.speech_frames >= 60  # both callees heard the prompt


def test_close_ends_what_is_in_flight(backend: BackendFactory) -> None:
    sip, recorder = backend()
    sip.place(call("c1", NOBODY))
    recorder.wait(lambda: any(isinstance(e, CallRinging) for e in recorder.events))
    sip.close()
    end = recorder.ended("c1")
    assert (end.sip_status, end.ended_by) == (487, Party.US)
    assert sip.worker_pids() == [None, None]
    with pytest.raises(SipError, match="closed"):
        sip.place(call("c2", NOBODY))
    sip.close()  # twice is fine


def test_a_worker_that_cannot_start_is_an_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        settings = SipSettings(trunks=(SipTrunk(name="t", uri="sip:{number}@127.0.0.1"),),
                               worker=WorkerOptions(port=port), workers=1)
        with pytest.raises(SipError, match=rf"could not start: SIP port {port} on 127.0.0.1 "
                                           r"is in use"):
            SipBackend(lambda event: None, settings, clock=lambda: datetime.now(UTC))
