"""A media worker placing real calls over 127.0.0.1 against sipp, one scenario per test."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
from sipkit import SippFactory, WorkerFactory, drain, events_until, of, over, released

from lines.sip import protocol as p
from lines.sip.errors import SipError
from lines.sip.process import WorkerOptions, WorkerProcess

pytestmark = pytest.mark.sip

CALLER = "+15550001111"


def place(worker: WorkerProcess, uri: str, call_id: str = "c1", **options: object) -> None:
    worker.send(p.Place(call_id=call_id, uri=uri, from_uri=f"sip:{CALLER}@127.0.0.1",
                        pai=f"<sip:{CALLER}@127.0.0.1>", **options))  # type: ignore[arg-type]


def ended(events: list[p.Event], call_id: str = "c1") -> p.Ended:
    (end,) = of(events, p.Ended, call_id)
    return end


def test_an_answered_call_carries_our_prompt_out_and_its_echo_back(
        sipp: SippFactory, workers: WorkerFactory, audio: Path) -> None:
    far = sipp(builtin="uas", args=("-rtp_echo",))
    worker = workers()
    worker.send(p.LoadPrompt(name="speech", path=f"{audio}/speech.wav"))
    place(worker, far.uri(), no_media_timeout=2.0)
    events = events_until(worker, lambda e: isinstance(e, p.Answered))
    worker.send(p.Play(call_id="c1", prompt="speech", hang_up_after=True))
    events += events_until(worker, released("c1"))

    assert [type(e) for e in events] == [p.Trying, p.Ringing, p.Answered, p.MediaFlowing,
                                         p.Ended]
    end = ended(events)
    assert (end.status, end.by, end.reason, end.no_media) == (200, "us", "prompt played: OK",
                                                             False)
    assert end.media is not None
    assert end.media.frames_sent >= 90  # the whole prompt, 20 ms a frame
    assert end.media.frames_received >= 0.8 * end.media.frames_sent  # the echo came back
    assert end.media.speech_frames >= 0.3 * end.media.frames_received  # and it is speech
    assert end.media.late_frames == 0
    invite = far.received()
    assert re.search(rf"^From: <?sip:\{CALLER}@127\.0\.0\.1>?;tag=", invite, re.MULTILINE)
    assert re.search(rf"^P-Asserted-Identity: <sip:\{CALLER}@127\.0\.0\.1>", invite,
                     re.MULTILINE)


def test_an_answer_without_media_is_hung_up(sipp: SippFactory,
                                            workers: WorkerFactory) -> None:
    far = sipp(builtin="uas")  # answers, and sends no RTP
    worker = workers()
    place(worker, far.uri(), "watched", no_media_timeout=0.5)
    place(worker, far.uri(), "unwatched")
    place(worker, far.uri(), "hung-up", no_media_timeout=5.0)
    events = events_until(worker, lambda e: isinstance(e, p.Answered) and e.call_id == "hung-up")
    worker.send(p.HangUp(call_id="hung-up"))
    while not {"watched", "hung-up"} <= {getattr(e, "call_id", "") for e in events if over(e)}:
        events += events_until(worker, over)
    assert not of(events, p.MediaFlowing)
    assert not of(events, p.Ended, "unwatched")  # up, silent or not: no watch
    worker.send(p.HangUp(call_id="unwatched"))
    events += events_until(worker, released("unwatched"))

    watched = ended(events, "watched")
    assert (watched.status, watched.by, watched.no_media) == (200, "network", True)
    assert watched.reason == "no media within 0.5 s: OK"
    answered_at = of(events, p.Answered, "watched")[0].t
    assert 0.5 <= watched.t - answered_at < 1.5
    hung_up = ended(events, "hung-up")  # ended by us before any RTP: no media either
    assert (hung_up.status, hung_up.by, hung_up.no_media) == (200, "us", True)
    assert not ended(events, "unwatched").no_media


def test_a_failing_media_handler_hangs_its_call_up(sipp: SippFactory,
                                                   workers: WorkerFactory) -> None:
    far = sipp(builtin="uas", args=("-rtp_echo",))
    worker = workers(WorkerOptions(handler="tests.lines.sip.sipkit:exploding_handler"))
    place(worker, far.uri())
    events = events_until(worker, released("c1"))
    end = ended(events)
    assert (end.status, end.by) == (200, "us")
    assert end.reason == "media handler failed: RuntimeError: boom: OK"


def test_the_far_end_speaking_is_heard_as_speech(sipp: SippFactory,
                                                 workers: WorkerFactory) -> None:
    far = sipp("answer_speech.xml")
    worker = workers()
    place(worker, far.uri())
    events = events_until(worker, lambda e: isinstance(e, p.Answered))
    events += drain(worker, 2.5)
    worker.send(p.HangUp(call_id="c1"))
    events += events_until(worker, released("c1"))

    end = ended(events)
    assert (end.status, end.by) == (200, "us")
    assert end.media is not None
    assert end.media.frames_received >= 80
    assert end.media.speech_frames >= 30
    assert end.media.frames_sent == 0  # nothing was played


@pytest.mark.parametrize(("code", "phrase"), [
    (404, "Not Found"), (410, "Gone"), (480, "Temporarily Unavailable"),
    (484, "Address Incomplete"), (486, "Busy Here"), (503, "Service Unavailable"),
    (603, "Decline"),
])
def test_final_failure_codes_arrive_with_their_reasons(
        sipp: SippFactory, workers: WorkerFactory, code: int, phrase: str) -> None:
    far = sipp("reject.xml", CODE=str(code), REASON=phrase)
    worker = workers()
    place(worker, far.uri())
    events = events_until(worker, released("c1"))

    assert not of(events, p.Answered)
    end = ended(events)
    assert (end.status, end.reason, end.q850, end.by) == (code, phrase, None, "network")


def test_a_q850_reason_header_is_read(sipp: SippFactory, workers: WorkerFactory) -> None:
    far = sipp("reject.xml", CODE="404", REASON="Not Found",
               EXTRA_HEADERS='Reason: Q.850;cause=1;text="Unallocated number"')
    worker = workers()
    place(worker, far.uri())
    end = ended(events_until(worker, released("c1")))
    assert (end.status, end.q850) == (404, 1)


def test_an_announcement_as_early_media_then_404(sipp: SippFactory,
                                                  workers: WorkerFactory) -> None:
    far = sipp("early_media.xml", CODE="404", REASON="Not Found", CAUSE="1",
               CAUSE_TEXT="Unallocated number", args=("-d", "2500"))
    worker = workers()
    place(worker, far.uri())
    events = events_until(worker, released("c1"))

    assert [type(e) for e in events] == [p.Trying, p.Ringing, p.EarlyMedia, p.Ended]
    assert of(events, p.Ringing)[0].status == 183
    end = ended(events)
    assert (end.status, end.reason, end.q850, end.by) == (404, "Not Found", 1, "network")
    assert end.media is not None
    assert end.media.speech_frames >= 20  # the announcement was heard


def test_the_ring_timeout_cancels_the_call(sipp: SippFactory, workers: WorkerFactory) -> None:
    far = sipp("ring_forever.xml")
    worker = workers()
    started = time.monotonic()
    place(worker, far.uri(), ring_timeout=1.0)
    events = events_until(worker, released("c1"))

    assert 0.9 <= time.monotonic() - started <= 3.0
    assert of(events, p.Ringing)[0].status == 180
    end = ended(events)
    assert (end.status, end.by) == (487, "us")
    assert end.reason.startswith("ring timeout")


def test_a_target_that_never_answers_times_out_in_setup(workers: WorkerFactory) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes, never answers
        silent.bind(("127.0.0.1", 0))
        worker = workers()
        started = time.monotonic()
        place(worker, f"sip:callee@127.0.0.1:{silent.getsockname()[1]}", setup_timeout=1.0)
        events = events_until(worker, released("c1"))
    assert 0.9 <= time.monotonic() - started <= 3.0
    assert [type(e) for e in events] == [p.Trying, p.Ended, p.Released]  # ours, then pjsua2's
    end = ended(events)
    assert (end.status, end.by, end.released) == (408, "network", False)
    assert end.reason == "no response to INVITE within 1 s"


@pytest.mark.parametrize(("password", "answered", "status"), [
    ("secret", True, 200), ("wrong", False, 403)])
def test_digest_credentials_are_sent(sipp: SippFactory, workers: WorkerFactory,
                                     password: str, answered: bool, status: int) -> None:
    far = sipp("digest_auth.xml", USER="alice", PASSWORD="secret")
    worker = workers()
    place(worker, far.uri(), auth=p.Auth(username="alice", password=password))
    events = events_until(worker, lambda e: isinstance(e, p.Answered) or over(e))
    if answered:
        worker.send(p.HangUp(call_id="c1"))
        events += events_until(worker, released("c1"))
    assert bool(of(events, p.Answered)) is answered
    assert ended(events).status == status


def test_a_bad_uri_ends_the_call_and_the_worker_goes_on(workers: WorkerFactory) -> None:
    worker = workers()
    place(worker, "not a sip uri")
    events = events_until(worker, released("c1"))
    end = ended(events)
    assert (end.status, end.reason) == (None, "invalid SIP URI")
    worker.send(p.Ping(seq=1))
    pong = events_until(worker, lambda e: isinstance(e, p.Pong))[-1]
    assert isinstance(pong, p.Pong)
    assert pong.seq == 1


def test_slots_and_reservations_cap_the_calls(sipp: SippFactory,
                                              workers: WorkerFactory) -> None:
    far = sipp("ring_forever.xml")
    worker = workers()
    assert worker.ready is not None
    assert worker.ready.cap == 4
    place(worker, far.uri(), "c1", reserve_slot=True)
    place(worker, far.uri(), "c2", reserve_slot=True)
    place(worker, far.uri(), "c3")  # 2 calls + 2 reservations: full
    place(worker, far.uri(), "c1/agent", into_reservation_of="c1")  # takes c1's slot
    events = events_until(worker, released("c3"))
    events += drain(worker, 0.3)
    assert ended(events, "c3").reason == "media worker full"
    assert {e.call_id for e in of(events, p.Ringing)} == {"c1", "c2", "c1/agent"}
    for call_id in ("c1", "c2", "c1/agent"):
        worker.send(p.HangUp(call_id=call_id))
    seen: list[p.Event] = []
    while sum(map(over, seen)) < 3:
        seen += events_until(worker, over)
    assert {end.status for end in of(seen, p.Ended)} == {487}


def test_stop_hangs_up_and_exits(sipp: SippFactory) -> None:
    far = sipp("ring_forever.xml")
    worker = WorkerProcess(WorkerOptions())
    try:
        worker.wait_ready(15)
        place(worker, far.uri())
        events_until(worker, lambda e: isinstance(e, p.Ringing))
        assert worker.stop(timeout=5) == 0
    finally:
        worker.close()


def test_a_sip_port_in_use_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        worker = WorkerProcess(WorkerOptions(port=taken.getsockname()[1]))
        try:
            with pytest.raises(SipError, match=r"SIP port \d+ on 127.0.0.1 is in use") as error:
                worker.wait_ready(15)
            assert error.value.retryable
        finally:
            worker.close()
