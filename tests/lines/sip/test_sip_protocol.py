"""The pieces of the SIP backend that need no network: the protocol, Reason headers,
answer-plan timelines, prompts and settings."""

from __future__ import annotations

import wave
from datetime import timedelta
from pathlib import Path

import pytest

from lines.sip import protocol as p
from lines.sip.answer import (
    Alert,
    Answer,
    HangUpCall,
    IncomingCall,
    PlanTable,
    Reject,
    SendDigits,
    timeline,
)
from lines.sip.calls import MediaWatch, q850_cause, user_of
from lines.sip.errors import ProtocolError, SipError
from lines.sip.media import PromptAndVad, split_frames
from lines.sip.pcm import FRAME_BYTES, read_pcm
from lines.sip.settings import SipSettings, SipTrunk
from rules.signals import Announcement

PLAN = p.AnswerPlan(ring_s=1.5, play="hello", dtmf="12", hang_up_after_s=4)
MESSAGES: list[p.Message] = [
    p.Place(call_id="c1", uri="sip:+15551234567@127.0.0.1:5070",
            from_uri="sip:+15557654321@example.net", pai="<sip:+15557654321@example.net>",
            ring_timeout=25.0, setup_timeout=5, auth=p.Auth(username="u", password="s3cret"),
            reserve_slot=True, no_media_timeout=3),
    p.Place(call_id="c1/agent", uri="sip:agent@127.0.0.1", from_uri="sip:x@y",
            into_reservation_of="c1"),
    p.HangUp(call_id="c1"),
    p.SendDtmf(call_id="c1", digits="1#"),
    p.LoadPrompt(name="hello", pcm=bytes(range(256)) * 3),
    p.LoadPrompt(name="bye", path="/tmp/bye.wav"),
    p.Play(call_id="c1", prompt="hello", hang_up_after=True),
    p.Bridge(call_id="c1", other_call_id="c1/agent"),
    p.SetPlans(plans={"+100": PLAN, "+200": p.AnswerPlan(status=486)},
               default=p.AnswerPlan(status=404, reason="Not Found")),
    p.SetPlans(),
    p.Ping(seq=7),
    p.Stop(),
    p.Ready(t=1.5, pid=42, cap=4, host="127.0.0.1", port=5070),
    p.Failed(t=1.0, reason="SIP port 5060 on 127.0.0.1 is in use"),
    p.Trying(t=1.0, call_id="c1"),
    p.Incoming(t=1.0, call_id="in-1", from_uri="<sip:a@b>", to_uri="<sip:c@d>"),
    p.Ringing(t=1.0, call_id="c1", status=183),
    p.EarlyMedia(t=1.0, call_id="c1"),
    p.Answered(t=1.0, call_id="c1"),
    p.MediaFlowing(t=1.0, call_id="c1"),
    p.Bridged(t=1.0, call_id="c1", other_call_id="c1/agent"),
    p.Dtmf(t=1.0, call_id="c1", digit="#"),
    p.Heard(t=1.0, call_id="c1", finding=p.Finding(
        kind=p.FindingKind.EARLY_MEDIA, announcement=Announcement.VACANT, confidence=0.93,
        detail="sit_intercept")),
    p.Heard(t=1.0, call_id="c1", finding=p.Finding(
        kind=p.FindingKind.AFTER_ANSWER, announcement=Announcement.UNREACHABLE, network=True,
        confidence=1)),
    p.Ended(t=2.0, call_id="c1", status=404, reason="Not Found", q850=1, by="network",
            media=p.MediaStats(frames_received=10, speech_frames=4, frames_sent=3)),
    p.Ended(t=2.0, call_id="c2", status=None, reason="media worker full"),
    p.Ended(t=4.0, call_id="c3", status=200, reason="no media within 3 s: OK", no_media=True),
    p.Released(t=2.0, call_id="c1"),
    p.Pong(t=2.0, seq=7),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_survives_a_round_trip(message: p.Message) -> None:
    line = p.encode(message)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert p.decode(line) == message


def test_commands_and_events_are_told_apart() -> None:
    assert p.decode_command(p.encode(p.Stop())) == p.Stop()
    with pytest.raises(ProtocolError, match="is a command"):
        p.decode_event(p.encode(p.Stop()))
    with pytest.raises(ProtocolError, match="is an event"):
        p.decode_command(p.encode(p.Pong(t=0.0, seq=1)))


@pytest.mark.parametrize(("line", "error"), [
    (b"{not json", "not a JSON line"),
    (b"[1, 2]", "a JSON object"),
    (b'{"v": 2, "type": "stop"}', "protocol version 2"),
    (b'{"type": "stop"}', "protocol version None"),
    (b'{"v": 1, "type": "dial"}', "unknown message type 'dial'"),
    (b'{"v": 1, "type": "hang_up"}', "bad HangUp"),
    (b'{"v": 1, "type": "ping", "seq": "7"}', "Ping.seq: expected int"),
    (b'{"v": 1, "type": "ping", "seq": true}', "Ping.seq: expected a number"),
    (b'{"v": 1, "type": "load_prompt", "name": "x", "pcm": "***"}', "bad base64"),
    (b'{"v": 1, "type": "load_prompt", "name": "x"}', "from a path or from bytes"),
    (b'{"v": 1, "type": "set_plans", "plans": {"1": {"status": 250}}}', "not 250"),
    (b'{"v": 1, "type": "heard", "t": 1, "call_id": "c", "finding": {"kind": "later", '
     b'"announcement": "vacant", "confidence": 1}}', "'later' is not a valid FindingKind"),
    (b'{"v": 1, "type": "heard", "t": 1, "call_id": "c", "finding": {"kind": "early_media", '
     b'"announcement": ["vacant"], "confidence": 1}}', r"\['vacant'\] is not a valid Announcement"),
    (b'{"v": 1, "type": "heard", "t": 1, "call_id": "c", "finding": {"kind": "early_media", '
     b'"announcement": "vacant", "confidence": 1.5}}', "confidence is in"),
])
def test_malformed_lines_are_protocol_errors(line: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        p.decode(line)


def test_passwords_stay_out_of_reprs() -> None:
    place = MESSAGES[0]
    assert "s3cret" not in repr(place)
    trunk = SipTrunk(name="t", uri="sip:{number}@h", username="u", password="s3cret")
    assert "s3cret" not in repr(trunk)


@pytest.mark.parametrize(("message", "cause"), [
    ('SIP/2.0 404 Not Found\r\nReason: Q.850;cause=1;text="Unallocated number"\r\n\r\n', 1),
    ("SIP/2.0 486 Busy\r\nreason :  q.850 ; cause = 17\r\n\r\n", 17),
    ('BYE sip:a@b SIP/2.0\r\nReason: SIP;cause=200;text="a, b", Q.850;cause=16\r\n\r\n', 16),
    ('SIP/2.0 480 X\r\nReason: SIP;cause=480;text="Q.850;cause=3"\r\n\r\n', None),
    ("SIP/2.0 603 Decline\r\nContent-Length: 0\r\n\r\nReason: Q.850;cause=21", None),
    ("", None),
    (None, None),
])
def test_q850_causes_come_from_reason_headers(message: str | None, cause: int | None) -> None:
    assert q850_cause(message) == cause


def test_user_parts() -> None:
    assert user_of("<sip:+15551234567@127.0.0.1:5070>") == "+15551234567"
    assert user_of('"Ann" <sips:ann@example.net;transport=tls>') == "ann"
    assert user_of("sip:127.0.0.1") == ""


def test_a_media_watch_waits_for_a_packet_after_the_answer() -> None:
    watch = MediaWatch(timeout=3.0)
    watch.start(heard=5, now=100.0)  # 5 packets of early media before the 200
    assert watch.check(heard=5, now=102.9) is None
    assert watch.check(heard=6, now=102.9) is True
    assert not watch.timed_out
    silent = MediaWatch(timeout=3.0)
    silent.start(heard=0, now=100.0)
    assert silent.check(heard=0, now=103.0) is False
    assert silent.timed_out


def test_timelines_follow_the_plan() -> None:
    assert timeline(PLAN) == [
        (0.0, Alert(early_media=None)),
        (1.5, Answer(play="hello")),
        (2.0, SendDigits(digits="12")),
        (5.5, HangUpCall()),
    ]
    rejecting = p.AnswerPlan(ring_s=2, early_media="vacant", status=404,
                             reason_header="Q.850;cause=1")
    assert timeline(rejecting) == [
        (0.0, Alert(early_media="vacant")),
        (2, Reject(status=404, reason=None, reason_header="Q.850;cause=1")),
    ]
    assert timeline(p.AnswerPlan()) == [(0.0, Answer(play=None))]


def test_plan_tables_choose_by_dialed_number() -> None:
    table = PlanTable({"+100": PLAN})
    call = IncomingCall(call_id="in-1", from_uri="", to_uri="<sip:+100@h>", to_user="+100")
    assert table(call) is PLAN
    assert table(IncomingCall(call_id="in-2", from_uri="", to_uri="", to_user="+9")).status == 404


def test_prompts_are_8khz_16bit_mono(tmp_path: Path) -> None:
    good, stereo, raw = tmp_path / "good.wav", tmp_path / "stereo.wav", tmp_path / "p.raw"
    for path, channels, rate in ((good, 1, 8000), (stereo, 2, 16000)):
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(channels)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(b"\x01\x00" * channels * 800)
    assert read_pcm(good) == b"\x01\x00" * 800
    with pytest.raises(SipError, match="16000 Hz, 16-bit, 2 channel"):
        read_pcm(stereo)
    raw.write_bytes(b"\x00" * 7)
    with pytest.raises(SipError, match="even number of bytes"):
        read_pcm(raw)
    with pytest.raises(SipError, match="cannot read prompt"):
        read_pcm(tmp_path / "missing.raw")


def test_the_default_handler_plays_whole_frames_and_counts() -> None:
    handler = PromptAndVad()
    handler.play(b"\x01" * (FRAME_BYTES + 10))
    frames = [handler.next_frame(), handler.next_frame(), handler.next_frame()]
    assert frames[0] == b"\x01" * FRAME_BYTES
    assert frames[1] == b"\x01" * 10 + b"\x00" * (FRAME_BYTES - 10)
    assert frames[2] is None
    handler.on_frame(b"\x00" * FRAME_BYTES, 0.0)
    assert handler.stats() == p.MediaStats(frames_received=1, speech_frames=0, frames_sent=2)
    assert split_frames(b"") == []


@pytest.mark.parametrize(("trunk", "error"), [
    ({"uri": "http://{number}@h"}, "uri must look like"),
    ({"uri": "sip:carrier.example"}, "uri must look like"),
    ({"uri": "sip:{number}@h", "username": "u"}, "both username and password"),
    ({"uri": "sip:{number}@h", "cps": 0}, "must be positive"),
])
def test_bad_trunks_are_refused(trunk: dict[str, object], error: str) -> None:
    with pytest.raises(SipError, match=error):
        SipTrunk(name="t", **trunk)  # type: ignore[arg-type]


def test_settings_check_trunks_agents_and_workers() -> None:
    trunk = SipTrunk(name="t", uri="sip:{number}@127.0.0.1:5070", from_domain="example.net")
    assert trunk.target("+15551234567") == "sip:+15551234567@127.0.0.1:5070"
    assert trunk.identity("+15557654321") == "sip:+15557654321@example.net"
    with pytest.raises(SipError, match="at least one trunk"):
        SipSettings(trunks=())
    with pytest.raises(SipError, match="repeat"):
        SipSettings(trunks=(trunk, trunk))
    with pytest.raises(SipError, match="not a SIP URI"):
        SipSettings(trunks=(trunk,), agents={"a1": "tel:+1555"})
    with pytest.raises(SipError, match="no_media_timeout must be positive"):
        SipSettings(trunks=(trunk,), no_media_timeout=timedelta(0))
    with pytest.raises(SipError, match="min_confidence is in"):
        SipSettings(trunks=(trunk,), min_confidence=1.5)
    settings = SipSettings(trunks=(trunk,), workers=3, agent_ring_timeout=timedelta(seconds=5))
    assert settings.no_media_timeout == timedelta(seconds=3)
    assert [o.port for o in settings.worker_options()] == [0, 0, 0]
