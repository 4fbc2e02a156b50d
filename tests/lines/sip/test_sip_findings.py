"""Carrier tones reach the disposition: the dialer's media handler (`dialer.media`) hears
them in a media worker, the worker reports them (`Heard`), the backend passes confident
early-media findings on as `EarlyMediaHeard`, and the engine's classification weighs
them over an uninformative final status.

Without SIP: the handler fed 20 ms frames, as the clock thread feeds it. Over SIP on
127.0.0.1 (marked `sip`): harness sit phones with the vacant and busy meanings and a
worker playing the congestion tone, each ending with a bare 480 (which alone says
no_answer after a 183), called at once by a `SipBackend` whose worker runs the dialer's
handler; and the backend's filter, with findings handed to it as a worker would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sipkit import Recorder, engine_disposition, free_udp_ports, serving

from dialer.engine.sip import MEDIA_HANDLER
from dialer.harness import audio
from dialer.harness.config import parse_harness
from dialer.harness.runtime import Harness
from dialer.media import DialerHandler
from lines.sip import SipBackend, SipSettings, SipTrunk, WorkerOptions, WorkerProcess
from lines.sip import protocol as p
from lines.sip.pcm import FRAME_BYTES
from lines.telephony import (
    CallEnded,
    CallEvent,
    CallRequest,
    CallRinging,
    EarlyMediaHeard,
)
from rules.dispositions import Disposition as D
from rules.signals import Announcement
from voice.g711 import through_ulaw

EARLY, AFTER = p.FindingKind.EARLY_MEDIA, p.FindingKind.AFTER_ANSWER


def congestion(cycles: int = 3) -> audio.Samples:
    """The Chinese congestion tone: 450 Hz, 700 ms on, 700 ms off."""
    return audio.join(*[audio.join(audio.tone(450, seconds=0.7), audio.silence(0.7))
                        for _ in range(cycles)])


def vacant_tone() -> audio.Samples:
    """The Chinese vacant-number tone: 3 x (100 ms on, 100 off), then 400 on, 400 off."""
    beeps = [audio.join(audio.tone(450, seconds=0.1), audio.silence(0.1)) for _ in range(3)]
    return audio.join(*beeps, audio.tone(450, seconds=0.4), audio.silence(0.4))


def feed(handler: DialerHandler, samples: audio.Samples) -> None:
    """`samples` as a PCMU call delivers them, 20 ms at a time."""
    data = audio.to_pcm(through_ulaw(samples))
    for start in range(0, len(data) - FRAME_BYTES + 1, FRAME_BYTES):
        handler.on_frame(data[start:start + FRAME_BYTES], 0.0)


# the handler, without SIP


@pytest.mark.parametrize(("tone", "announcement", "network", "detail"), [
    (audio.sit_tones("intercept"), Announcement.VACANT, False, "sit_intercept"),
    (audio.sit_tones("no_circuit"), Announcement.UNREACHABLE, True, "sit_no_circuit"),
    (audio.busy_tone(), Announcement.BUSY, False, "busy"),
    (congestion(), Announcement.UNREACHABLE, True, "congestion"),
    (vacant_tone(), Announcement.VACANT, False, "vacant_tone"),
], ids=["sit-ic", "sit-nc", "busy", "congestion", "vacant-tone"])
def test_a_tone_in_early_media_is_an_early_media_finding(
        tone: audio.Samples, announcement: Announcement, network: bool, detail: str) -> None:
    handler = DialerHandler()
    assert handler.findings() == []
    feed(handler, audio.join(audio.ringback(1.5), tone, audio.silence(0.5)))
    (found,) = handler.findings()
    assert (found.kind, found.announcement, found.network, found.detail) == (
        EARLY, announcement, network, detail)
    assert found.confidence >= 0.9
    assert handler.findings() == []  # each finding once


def test_it_still_plays_prompts_and_counts_speech_like_the_default_handler() -> None:
    handler = DialerHandler()
    handler.play(b"\x01\x00" * 400)
    assert [len(handler.next_frame() or b"") for _ in range(4)] == [FRAME_BYTES] * 3 + [0]
    feed(handler, audio.silence(1.0))
    stats = handler.stats()
    assert (stats.frames_received, stats.speech_frames, stats.frames_sent) == (50, 0, 3)
    assert handler.findings() == []


def test_tones_after_the_answer_are_after_answer_findings_for_a_while() -> None:
    handler = DialerHandler(after_answer_s=5.0)
    feed(handler, audio.ringback(1.5))
    handler.answered()
    feed(handler, congestion())  # 4.2 s: heard within the window
    (found,) = handler.findings()
    assert (found.kind, found.announcement, found.network) == (
        AFTER, Announcement.UNREACHABLE, True)
    feed(handler, audio.join(audio.silence(1.0), audio.sit_tones("intercept"),
                             audio.silence(0.5)))
    assert handler.findings() == []  # past the window: no longer listened to


def test_speech_ringback_and_silence_are_no_finding() -> None:
    handler = DialerHandler()
    rng = np.random.default_rng(3)
    noise = np.clip(rng.normal(0, 600, 8000 * 3), -32768, 32767).astype(np.int16)
    feed(handler, audio.join(audio.ringback(6.0), audio.silence(1.0), noise))
    assert handler.findings() == []


# over SIP

RING_S = 1.2  # 1 s of ringback, 0.2 s of its pause, then the tone
VACANT_SIT, BUSY_SIT, CONGESTED, RINGS = "+8613800000001", "+8613800000002", "+8613800000003", \
    "+8613800000009"
PHONES = {
    "sit-vacant": {"kind": "sit", "announcement": "vacant", "status": 480, "q850": 0,
                   "ring": RING_S},
    "sit-busy": {"kind": "sit", "announcement": "busy", "status": 480, "q850": 0,
                 "ring": RING_S},
}


@dataclass(frozen=True, slots=True)
class Case:
    number: str
    trunk: str
    announcement: Announcement
    network: bool
    disposition: D


CASES = {
    "sit-vacant": Case(VACANT_SIT, "harness", Announcement.VACANT, False, D.VACANT),
    "sit-busy": Case(BUSY_SIT, "harness", Announcement.BUSY, False, D.BUSY),
    "congestion": Case(CONGESTED, "congested", Announcement.UNREACHABLE, True, D.NETWORK_ERROR),
}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    folder = tmp_path_factory.mktemp("findings")
    port = free_udp_ports(1)
    config = parse_harness({"listen": f"127.0.0.1:{port}", "workers": 1, "phones": PHONES,
                            "numbers": {VACANT_SIT: "sit-vacant", BUSY_SIT: "sit-busy",
                                        RINGS: "ring_forever"}})
    with serving(config, folder) as running:
        yield running


@pytest.fixture(scope="module")
def congested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A worker in answer mode: 183 with ringback and the congestion tone, then 480. (Its
    events are never read: they are few enough for the pipe; the prompt goes as a file,
    as nothing here would flush a long command down the pipe.)"""
    early = audio.join(audio.ringback(RING_S), congestion())
    prompt = tmp_path_factory.mktemp("congestion") / "congestion.wav"
    audio.write_wav(prompt, early)
    worker = WorkerProcess(WorkerOptions())
    try:
        ready = worker.wait_ready(15)
        worker.send(p.LoadPrompt(name="congestion", path=str(prompt)))
        worker.send(p.SetPlans(default=p.AnswerPlan(
            ring_s=audio.seconds_of(early) + 0.3, early_media="congestion", status=480)))
        yield ready.port
    finally:
        worker.stop(timeout=5)
        worker.close()


@pytest.fixture(scope="module")
def dialer(harness: Harness, congested: int) -> Iterator[tuple[SipBackend, Recorder]]:
    """A backend whose one worker runs the dialer's media handler, as SIP campaigns do."""
    trunks = (SipTrunk(name="harness", uri=f"sip:{{number}}@127.0.0.1:{harness.ports[0]}"),
              SipTrunk(name="congested", uri=f"sip:{{number}}@127.0.0.1:{congested}"))
    recorder = Recorder()
    backend = SipBackend(recorder, SipSettings(trunks=trunks, workers=1,
                                               worker=WorkerOptions(handler=MEDIA_HANDLER)),
                         clock=lambda: datetime.now(UTC), observer=recorder.observe)
    try:
        yield backend, recorder
    finally:
        backend.close()


def request(call_id: str, number: str, trunk: str) -> CallRequest:
    return CallRequest(call_id=call_id, e164=number, caller_id="+15559990000", trunk=trunk,
                       ring_timeout=timedelta(seconds=20))


@pytest.fixture(scope="module")
def calls(dialer: tuple[SipBackend, Recorder]) -> dict[str, list[CallEvent]]:
    """Every case called at once; each one's events, up to its end."""
    backend, recorder = dialer
    for name, case in CASES.items():
        backend.place(request(name, case.number, case.trunk))
    recorder.wait(lambda: all(any(isinstance(e, CallEnded) for e in recorder.of(name))
                              for name in CASES), timeout=20)
    return {name: recorder.of(name) for name in CASES}


@pytest.mark.sip
@pytest.mark.parametrize("name", CASES)
def test_a_tone_in_early_media_decides_over_a_bare_480(
        name: str, calls: dict[str, list[CallEvent]], dialer: tuple[SipBackend, Recorder],
        harness: Harness) -> None:
    case, events = CASES[name], calls[name]
    end = events[-1]
    assert isinstance(end, CallEnded)
    assert (end.sip_status, end.q850_cause) == (480, None)
    heard = [(e.announcement, e.network) for e in events if isinstance(e, EarlyMediaHeard)]
    assert heard == [(Announcement.UNKNOWN, False), (case.announcement, case.network)]
    assert engine_disposition(events, VACANT_SIT) is case.disposition
    # without the finding, the signalling says only that it rang and was not answered
    unheard = [e for e in events if not isinstance(e, EarlyMediaHeard)
               or e.announcement is Announcement.UNKNOWN]
    assert engine_disposition(unheard, VACANT_SIT) is D.NO_ANSWER
    _, recorder = dialer
    (raw,) = [e for _, e in recorder.raw if isinstance(e, p.Heard) and e.call_id == name]
    assert raw.finding.kind is EARLY
    assert raw.finding.confidence >= 0.9
    if case.trunk == "harness":  # what the harness phone means, the dialer concluded
        assert case.disposition in harness.config.phone(name).expected()


@pytest.mark.sip
def test_the_backend_passes_on_only_confident_early_media_findings(
        dialer: tuple[SipBackend, Recorder], calls: dict[str, list[CallEvent]]) -> None:
    backend, recorder = dialer
    backend.place(request("filtered", RINGS, "harness"))
    recorder.wait(lambda: any(isinstance(e, CallRinging) for e in recorder.of("filtered")))

    def finding(kind: p.FindingKind, announcement: Announcement, confidence: float,
                network: bool = False) -> None:  # as the call's worker would report it
        backend.worker_event(0, p.Heard(t=0.0, call_id="filtered", finding=p.Finding(
            kind=kind, announcement=announcement, network=network, confidence=confidence)))

    finding(EARLY, Announcement.VACANT, 0.3)  # unsure
    finding(EARLY, Announcement.UNKNOWN, 1.0)  # says no more than the 183
    finding(AFTER, Announcement.UNREACHABLE, 1.0, network=True)  # after an answer: no event
    finding(EARLY, Announcement.BUSY, 0.6)
    backend.hang_up("filtered")
    end = recorder.ended("filtered")
    events = recorder.of("filtered")
    assert [(e.announcement, e.network) for e in events if isinstance(e, EarlyMediaHeard)] == [
        (Announcement.BUSY, False)]
    assert end.sip_status == 487
    assert engine_disposition(events, VACANT_SIT) is D.BUSY
