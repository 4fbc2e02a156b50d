"""`SipBackend` against far ends that are not pjsua2 (sipp): an answer is handed on once
the far end's media flows, and keys pressed come over SIP INFO and RFC 2833.

An answer with no media at all (sipp's `uas` without RTP) is a disposition case, in
`test_sip_dispositions`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sipkit import Recorder, Sipp, SippFactory, key_press_pcap, raw_sockets

from lines.sip import SipBackend, SipSettings, SipTrunk
from lines.sip import protocol as p
from lines.telephony import (
    CallAnswered,
    CalleeActed,
    CallEnded,
    CallRequest,
    CallRinging,
    Party,
)

pytestmark = pytest.mark.sip

#: The telephone-event payload type the PyPI pjsua2 build offers (checked in the test).
EVENT_PT = 120
BackendFactory = Callable[..., tuple[SipBackend, Recorder]]


@pytest.fixture
def backend() -> Iterator[BackendFactory]:
    """`backend(far, **settings)`: a one-worker backend with a trunk to the sipp `far`."""
    made: list[SipBackend] = []

    def make(far: Sipp, **settings: object) -> tuple[SipBackend, Recorder]:
        recorder = Recorder()
        trunk = SipTrunk(name="sipp", uri=f"sip:{{number}}@127.0.0.1:{far.port}")
        sip = SipBackend(recorder, SipSettings(trunks=(trunk,), workers=1,
                                               **settings),  # type: ignore[arg-type]
                         clock=lambda: datetime.now(UTC), observer=recorder.observe)
        made.append(sip)
        return sip, recorder

    yield make
    for sip in made:
        sip.close()


def place(sip: SipBackend, call_id: str = "c1") -> None:
    sip.place(CallRequest(call_id=call_id, e164="+15550004321", caller_id="+15559990000",
                          trunk="sipp", ring_timeout=timedelta(seconds=10)))


def raw_types(recorder: Recorder, call_id: str = "c1") -> list[type]:
    return [type(e) for _, e in recorder.raw if getattr(e, "call_id", None) == call_id]


def hang_up_after(sip: SipBackend, recorder: Recorder, kind: type) -> CallEnded:
    recorder.wait(lambda: any(isinstance(e, kind) for e in recorder.of("c1")))
    sip.hang_up("c1")
    return recorder.ended("c1")


def test_the_answer_is_handed_on_once_media_flows(sipp: SippFactory,
                                                  backend: BackendFactory) -> None:
    far = sipp(builtin="uas", args=("-rtp_echo",))  # our RTP comes back: media flows
    sip, recorder = backend(far)
    place(sip)
    end = hang_up_after(sip, recorder, CallAnswered)

    assert [type(e) for e in recorder.of("c1")] == [CallRinging, CallAnswered, CallEnded]
    assert (end.sip_status, end.ended_by, end.no_media) == (200, Party.US, False)
    assert raw_types(recorder)[:4] == [p.Trying, p.Ringing, p.Answered, p.MediaFlowing]


def test_without_the_watch_a_silent_answer_is_an_answer(sipp: SippFactory,
                                                        backend: BackendFactory) -> None:
    far = sipp(builtin="uas")  # no RTP at all
    sip, recorder = backend(far, no_media_timeout=None)
    place(sip)
    end = hang_up_after(sip, recorder, CallAnswered)

    assert [type(e) for e in recorder.of("c1")] == [CallRinging, CallAnswered, CallEnded]
    assert (end.sip_status, end.ended_by, end.no_media) == (200, Party.US, False)
    assert p.MediaFlowing not in raw_types(recorder)


def test_a_key_pressed_over_sip_info(sipp: SippFactory, backend: BackendFactory) -> None:
    far = sipp("info_dtmf.xml", DIGIT="5")
    sip, recorder = backend(far)
    place(sip)
    end = hang_up_after(sip, recorder, CalleeActed)

    assert [type(e) for e in recorder.of("c1")] == [CallAnswered, CalleeActed, CallEnded]
    assert [e.intent for e in recorder.of("c1") if isinstance(e, CalleeActed)] == ["5"]
    assert (end.sip_status, end.ended_by, end.no_media) == (200, Party.US, False)
    messages = far.received().split("\n-----")
    assert any("message received" in m and "SIP/2.0 200 OK" in m and "CSeq: 1 INFO" in m
               for m in messages)  # pjsua2 answered the INFO


def test_a_key_pressed_over_rfc2833(sipp: SippFactory, backend: BackendFactory,
                                    tmp_path: Path) -> None:
    if not raw_sockets():
        pytest.skip("sipp plays RTP captures through a raw socket: root or CAP_NET_RAW")
    pcap = key_press_pcap(tmp_path / "key-5.pcap", digit=5, payload_type=EVENT_PT)
    far = sipp("rfc2833_dtmf.xml", PCAP=str(pcap), EVENT_PT=str(EVENT_PT))
    sip, recorder = backend(far)
    place(sip)
    end = hang_up_after(sip, recorder, CalleeActed)

    assert f"a=rtpmap:{EVENT_PT} telephone-event/8000" in far.received()  # what we offered
    # The event packets are the only RTP: the digit may beat the watch to the worker's
    # events, and the backend still hands the answer on first.
    assert [type(e) for e in recorder.of("c1")] == [CallAnswered, CalleeActed, CallEnded]
    assert [e.intent for e in recorder.of("c1") if isinstance(e, CalleeActed)] == ["5"]
    assert (end.sip_status, end.no_media) == (200, False)
