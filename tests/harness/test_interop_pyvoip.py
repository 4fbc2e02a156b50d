"""Interoperability: the dialer's `SipBackend` (pjsua2) calls pyVoIP phones (a second,
independent SIP stack) registered with a local Kamailio, through that Kamailio.

Every wait is bounded; the backend's workers, the pyVoIP child process and Kamailio are
stopped (or killed) in teardown. Skipped only when kamailio is not installed.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from dialer.errors import TelephonyError, UsageError
from dialer.harness import registrar as registrar_module
from dialer.harness.pyvoip_phones import PyVoipPhone, PyVoipPhones, to_unsigned_8bit
from dialer.harness.registrar import Registrar, kamailio_binary
from lines.sip import SipBackend, SipSettings, SipTrunk
from lines.sip import protocol as p
from lines.telephony import CallAnswered, CallEnded, CallEvent, CallRequest, CallRinging, Party

TALKER, SILENT, BUSY, SLOW = "+15550000001", "+15550000002", "+15550000003", "+15550000004"
NOBODY = "+15550000009"
TALK_S = 1.5
PYVOIP_ANSWER_DELAY_S = 1.0  # pyVoIP calls its call callback one second after the INVITE
needs_kamailio = pytest.mark.skipif(kamailio_binary() is None,
                                    reason="kamailio is not installed (Debian package kamailio)")


def tone(seconds: float, hertz: float = 440.0) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * hertz * t) * 8000).astype("<i2").tobytes()


class Recorder:
    """The backend's sink and observer: keeps every event; the test waits on them."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self.raw: list[p.Event] = []
        self._changed = threading.Condition()

    def __call__(self, event: CallEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def observe(self, worker: int, event: p.Event) -> None:
        with self._changed:
            self.raw.append(event)

    def of(self, call_id: str) -> list[CallEvent]:
        return [event for event in self.events if event.call_id == call_id]

    def wait_for(self, call_id: str, kind: type[CallEvent], timeout: float = 10) -> CallEvent:
        with self._changed:
            assert self._changed.wait_for(
                lambda: any(isinstance(e, kind) for e in self.of(call_id)), timeout), self.events
        return next(e for e in self.of(call_id) if isinstance(e, kind))

    def ended(self, call_id: str, timeout: float = 10) -> CallEnded:
        end = self.wait_for(call_id, CallEnded, timeout)
        assert isinstance(end, CallEnded)
        return end

    def media(self, call_id: str) -> p.MediaStats:
        (end,) = [e for e in self.raw if isinstance(e, p.Ended) and e.call_id == call_id]
        assert end.media is not None
        return end.media


@pytest.fixture
def registrar() -> Iterator[Registrar]:
    if kamailio_binary() is None:
        pytest.skip("kamailio is not installed (Debian package kamailio): no registrar for "
                    "the pyVoIP phones")
    with Registrar() as running:
        yield running
    assert not running.running


@pytest.fixture
def phones(registrar: Registrar) -> Iterator[PyVoipPhones]:
    specs = [PyVoipPhone(user=TALKER, talk_s=TALK_S, play=tone(TALK_S)),
             PyVoipPhone(user=SILENT, talk_s=None),
             PyVoipPhone(user=BUSY, answer=False),
             PyVoipPhone(user=SLOW, ring_s=5)]
    with PyVoipPhones(specs, server=registrar.address) as station:
        yield station


@dataclass(frozen=True)
class Dialer:
    sip: SipBackend
    events: Recorder


@pytest.fixture
def dialer(registrar: Registrar, phones: PyVoipPhones, tmp_path: Path) -> Iterator[Dialer]:
    """The dialer's backend, its one trunk pointing at the registrar; it plays a tone as
    its script, so the phone has something to hear."""
    prompt = tmp_path / "script.wav"
    with wave.open(str(prompt), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(tone(1.0, 660.0))
    recorder = Recorder()
    trunk = SipTrunk(name="k", uri=registrar.trunk_uri(), channels=4, cps=10)
    sip = SipBackend(recorder, SipSettings(trunks=(trunk,), script_prompt=prompt),
                     clock=lambda: datetime.now(UTC), observer=recorder.observe)
    try:
        yield Dialer(sip, recorder)
    finally:
        sip.close()


def call(call_id: str, number: str) -> CallRequest:
    return CallRequest(call_id=call_id, e164=number, caller_id="+15559990000", trunk="k",
                       ring_timeout=timedelta(seconds=10))


@pytest.mark.sip
def test_a_pyvoip_phone_answers_talks_and_hangs_up(dialer: Dialer,
                                                   phones: PyVoipPhones) -> None:
    recorder = dialer.events
    dialer.sip.place(call("c1", TALKER))
    answered = recorder.wait_for("c1", CallAnswered)
    dialer.sip.start_script("c1", "greeting")
    end = recorder.ended("c1")

    ringing, _, _ = recorder.of("c1")
    assert [type(e) for e in recorder.of("c1")] == [CallRinging, CallAnswered, CallEnded]
    assert (end.sip_status, end.ended_by, end.q850_cause) == (200, Party.CALLEE, None)
    assert (answered.at - ringing.at).total_seconds() == pytest.approx(
        PYVOIP_ANSWER_DELAY_S, abs=0.5)
    assert (end.at - answered.at).total_seconds() == pytest.approx(TALK_S, abs=0.5)
    assert recorder.media("c1").frames_received >= 40  # the phone played 1.5 s of tone

    (record,) = phones.wait_for(lambda calls: len(calls) == 1, timeout=5)
    assert (record.user, record.caller, record.did, record.ended_by) == (
        TALKER, "+15559990000", "answered", "phone")
    assert record.answered_at is not None
    assert record.ended_at is not None
    assert record.ended_at - record.answered_at == pytest.approx(TALK_S, abs=0.5)
    assert record.bytes_played == int(8000 * TALK_S)
    assert record.bytes_heard >= 2000  # a quarter second of the dialer's tone at least


@pytest.mark.sip
def test_an_unregistered_number_gets_404_from_the_registrar(dialer: Dialer,
                                                            phones: PyVoipPhones) -> None:
    recorder = dialer.events
    dialer.sip.place(call("c1", NOBODY))
    end = recorder.ended("c1")
    assert recorder.of("c1") == [end]
    assert (end.sip_status, end.reason, end.ended_by) == (404, "Not Found", Party.NETWORK)
    assert phones.calls == []


@pytest.mark.sip
def test_a_refusing_pyvoip_phone_is_busy(dialer: Dialer, phones: PyVoipPhones) -> None:
    recorder = dialer.events
    dialer.sip.place(call("c1", BUSY))
    end = recorder.ended("c1")
    assert [type(e) for e in recorder.of("c1")] == [CallRinging, CallEnded]
    assert (end.sip_status, end.ended_by) == (486, Party.NETWORK)
    (record,) = phones.wait_for(lambda calls: len(calls) == 1, timeout=5)
    assert (record.did, record.answered_at, record.ended_by) == ("486 Busy Here", None, "phone")


@pytest.mark.sip
def test_the_dialer_hangs_up_first(dialer: Dialer, phones: PyVoipPhones) -> None:
    recorder = dialer.events
    dialer.sip.place(call("c1", SILENT))
    recorder.wait_for("c1", CallAnswered)
    time.sleep(0.3)
    dialer.sip.hang_up("c1")
    end = recorder.ended("c1")
    assert (end.sip_status, end.ended_by) == (200, Party.US)
    (record,) = phones.wait_for(lambda calls: len(calls) == 1, timeout=5)
    assert (record.did, record.ended_by) == ("answered", "caller")


@pytest.mark.sip
def test_a_call_given_up_while_ringing_is_cancelled_at_the_phone(dialer: Dialer,
                                                                 phones: PyVoipPhones) -> None:
    recorder = dialer.events
    dialer.sip.place(call("c1", SLOW))
    recorder.wait_for("c1", CallRinging)
    time.sleep(0.3)
    dialer.sip.hang_up("c1")
    end = recorder.ended("c1")
    assert (end.sip_status, end.ended_by) == (487, Party.US)
    (record,) = phones.wait_for(lambda calls: len(calls) == 1, timeout=5)
    assert (record.did, record.answered_at, record.ended_by) == ("cancelled", None, "caller")


# the registrar and the phones on their own


@needs_kamailio
def test_a_taken_port_is_a_clear_retryable_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        with pytest.raises(TelephonyError, match="in use") as caught:
            Registrar(port).start()
    assert caught.value.retryable


def test_a_missing_kamailio_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registrar_module, "kamailio_binary", lambda: None)
    with pytest.raises(UsageError, match="Debian package kamailio"):
        Registrar().start()


@needs_kamailio
def test_the_registrar_stops_its_whole_process_group() -> None:
    with Registrar() as running:
        pid = running.pid
        assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


@needs_kamailio
def test_phones_that_cannot_register_fail_clearly() -> None:
    with Registrar() as running:
        dead_port = running.port
    phones = PyVoipPhones([PyVoipPhone(user="alice")], server=("127.0.0.1", dead_port),
                          start_timeout=3)
    started = time.monotonic()
    with pytest.raises(TelephonyError, match="did not register"):
        phones.start()
    assert time.monotonic() - started < 5
    assert phones.pid is None


def test_audio_becomes_pyvoip_8_bit_unsigned() -> None:
    pcm = np.array([0, 32767, -32768, 256, -256], dtype="<i2").tobytes()
    assert to_unsigned_8bit(pcm) == bytes([128, 255, 0, 129, 127])


def test_a_phone_needs_a_plain_user_and_sane_times() -> None:
    for bad in ({"user": "a@b"}, {"user": ""}, {"user": "a", "talk_s": 0},
                {"user": "a", "ring_s": -1}, {"user": "a", "play": b"\x00"}):
        with pytest.raises(UsageError):
            PyVoipPhone(**bad)  # type: ignore[arg-type]
