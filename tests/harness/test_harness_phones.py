"""Virtual phones without SIP: each kind's answer plan, its sounds, the barge-in timer, the
run folder the workers read, and the `dialer harness` commands that need no phones."""

from __future__ import annotations

import json
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dialer.cli import app
from dialer.errors import DialerError, UsageError
from dialer.harness import audio
from dialer.harness.config import HarnessConfig, parse_harness
from dialer.harness.phones import (
    UNASSIGNED,
    PhoneHandler,
    config_data,
    phone_sounds,
    plan_call,
    read_run,
    write_run,
)
from dialer.harness.qa import PhoneCall
from rules.classify import classify_unanswered
from rules.dispositions import Disposition
from rules.signals import Announcement
from voice.g711 import through_ulaw
from voice.tones import Tone, ToneDetector

PHONES = {
    "bob": {"kind": "person", "ring": "1s", "talk": "4s-8s", "keys": "1#", "keys_after": 2},
    "desk": {"kind": "agent", "talk": 3},
    "vm": {"kind": "voicemail"},
    "declines": {"kind": "reject"},
    "空号": {"kind": "announcement", "text": "您拨打的号码是空号", "announcement": "vacant"},
    "停机": {"kind": "announcement", "text": "您拨打的号码已停机", "announcement": "suspended"},
    "关机": {"kind": "announcement", "text": "您拨打的电话已关机", "announcement": "powered_off"},
    "无法接通": {"kind": "announcement", "text": "暂时无法接通", "announcement": "unreachable"},
    "占线": {"kind": "announcement", "text": "正在通话中", "announcement": "busy"},
    "own": {"kind": "announcement", "text": "gone", "announcement": "vacant", "status": 410,
            "q850": 0},
    "sit": {"kind": "sit", "announcement": "unreachable", "ring": 0},
}
SECONDS = {"空号/early": 4.0, "停机/early": 4.0, "关机/early": 4.0, "无法接通/early": 4.0,
           "占线/early": 4.0, "own/early": 1.0, "sit/early": 2.0, "vm/greeting": 5.0}


def config(**extra: object) -> HarnessConfig:
    return parse_harness({"phones": PHONES, "numbers": {
        f"+86100{index:02d}": name for index, name in
        enumerate([*PHONES, "busy", "vacant", "ring_forever"])}, **extra})


def plan_of(name: str) -> tuple[object, ...]:
    harness = config()
    dialed = next(number for number, phone in harness.numbers.items() if phone == name)
    choice = plan_call(harness, SECONDS, dialed)
    plan = choice.plan
    return (plan.status, plan.reason_header, plan.ring_s, plan.early_media, plan.play)


@pytest.mark.parametrize(("name", "expected"), [
    ("busy", (486, "Q.850;cause=17", 0.0, None, None)),
    ("declines", (603, "Q.850;cause=21", 2.0, None, None)),
    ("vacant", (404, "Q.850;cause=1", 0.0, None, None)),
    ("ring_forever", (480, "Q.850;cause=19", 3600.0, None, None)),
    ("空号", (404, "Q.850;cause=1", 4.5, "空号/early", None)),
    ("停机", (480, None, 4.5, "停机/early", None)),
    ("关机", (480, "Q.850;cause=20", 4.5, "关机/early", None)),
    ("无法接通", (480, "Q.850;cause=18", 4.5, "无法接通/early", None)),
    ("占线", (486, "Q.850;cause=17", 4.5, "占线/early", None)),
    ("own", (410, None, 1.5, "own/early", None)),  # explicit status and no Reason header
    ("sit", (480, "Q.850;cause=18", 2.5, "sit/early", None)),
    ("vm", (200, None, 2.0, None, "vm/greeting")),
    ("desk", (200, None, 0.0, None, "desk/say")),
])
def test_each_kind_signals_what_it_means(name: str, expected: tuple[object, ...]) -> None:
    assert plan_of(name) == expected


@pytest.mark.parametrize("name", ["busy", "declines", "vacant", "ring_forever", "空号", "关机",
                                  "无法接通", "占线", "sit"])
def test_signalling_alone_leads_a_dialer_to_the_expected_disposition(name: str) -> None:
    harness = config()
    dialed = next(n for n, p in harness.numbers.items() if p == name)
    choice = plan_call(harness, SECONDS, dialed)
    header = choice.plan.reason_header
    cause = int(header.rsplit("=", 1)[1]) if header else None
    concluded = classify_unanswered(sip_status=choice.plan.status, q850_cause=cause,
                                    announcement=None, rang=True)
    assert concluded in choice.expected


def test_a_person_answers_says_hello_presses_keys_and_hangs_up_after_its_talk() -> None:
    harness = config()
    choice = plan_call(harness, SECONDS, "+8610000")
    plan = choice.plan
    assert (choice.phone, choice.kind.value, choice.interrupt) == ("bob", "person", "bob/say")
    assert (plan.status, plan.ring_s, plan.play, plan.dtmf, plan.dtmf_delay_s) == (
        200, 1.0, "bob/say", "1#", 2.0)
    assert plan.hang_up_after_s is not None
    assert 4.0 <= plan.hang_up_after_s <= 8.0
    assert plan_call(harness, SECONDS, "+8610000") == choice  # stable per number
    none = plan_call(harness, SECONDS, "+8699999")
    assert (none.phone, none.plan.status, none.plan.reason_header) == (
        UNASSIGNED, 404, "Q.850;cause=1")


def test_the_config_round_trips_through_the_run_folder(tmp_path: Path) -> None:
    harness = config(listen="127.0.0.1:6000", workers=3, seed=7, weights={"bob": 2, "busy": 1})
    assert parse_harness(config_data(harness)) == harness
    tone = audio.tone(440, seconds=0.5)
    run = write_run(tmp_path, harness, {"bob/say": tone})
    back = read_run(tmp_path)
    assert back.config == harness
    assert back.seconds == run.seconds == {"bob/say": 0.5}
    assert np.array_equal(audio.read_wav(back.prompts["bob/say"]), tone)


def test_sounds_compose_ringback_sit_tones_and_recordings(tmp_path: Path) -> None:
    spoken: list[str] = []

    def speak(text: str) -> audio.Samples:
        spoken.append(text)
        return audio.silence(1.0)

    harness = parse_harness({"phones": {"sit": {"kind": "sit", "ring": 2, "text": "gone",
                                                "announcement": "vacant"},
                                        "vm": {"kind": "voicemail", "file": str(tmp_path)}},
                             "weights": {"sit": 1}})
    sit = phone_sounds("sit", harness.phone("sit"), speak, audio.read_wav)["sit/early"]
    assert spoken == ["gone"]
    assert audio.seconds_of(sit) == pytest.approx(2 + 0.932 + 0.3 + 1.0, abs=0.01)
    first_tone = sit[16000:16000 + 2208]  # the intercept class: 913.8 Hz for 276 ms
    spectrum = np.abs(np.fft.rfft(first_tone))
    assert np.argmax(spectrum) * 8000 / len(first_tone) == pytest.approx(913.8, abs=5)
    ringing = np.abs(np.fft.rfft(sit[:8000]))
    assert np.argmax(ringing) * 8000 / 8000 == pytest.approx(450, abs=2)
    with pytest.raises(UsageError, match=r"cannot read .*: Is a directory"):
        phone_sounds("vm", harness.phone("vm"), speak, audio.read_wav)
    person = phone_sounds("p", parse_harness({"weights": {"person": 1}}).phone("person"), speak,
                          audio.read_wav)
    assert list(person) == ["p/say"]
    assert spoken[-1] == "Hello?"


@pytest.mark.parametrize("meaning", [a for a in Announcement if a is not Announcement.UNKNOWN])
def test_a_sit_phones_tone_never_contradicts_its_meaning(meaning: Announcement) -> None:
    """What a dialer's tone detector makes of a sit phone's early media, after a bare 480:
    vacant (SIT intercept) and busy (the 450 Hz busy cadence) are heard as such; no SIT
    says suspended, powered off or unreachable, so those play the SIT that says only that
    the call failed (IO: unknown), never NC or RO, which would blame the network."""
    harness = parse_harness({"phones": {"sit": {"kind": "sit", "announcement": meaning.value,
                                                "status": 480, "q850": 0}},
                             "weights": {"sit": 1}})
    phone = harness.phone("sit")
    early = phone_sounds("sit", phone, lambda text: audio.silence(0), audio.read_wav)
    heard = ToneDetector().feed(audio.to_pcm(through_ulaw(early["sit/early"])))
    assert len(heard) == 1
    (tone,) = heard
    assert not tone.network
    assert tone.confidence >= 0.9
    concluded = classify_unanswered(sip_status=480, q850_cause=None, rang=True,
                                    announcement=tone.announcement, network=tone.network)
    if meaning in (Announcement.VACANT, Announcement.BUSY):
        assert tone.announcement is meaning
        assert concluded in phone.expected()
    else:
        assert tone.tone is Tone.SIT_IO
        assert concluded is Disposition.NO_ANSWER  # as from signalling alone


def test_wav_files_of_any_shape_are_read_as_8khz_mono(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    left = (8000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
    alias = (8000 * np.sin(2 * np.pi * 7000 * t)).astype("<i2")  # would fold to 1 kHz
    stereo = np.stack([left, alias], axis=1)
    with wave.open(str(tmp_path / "s.wav"), "wb") as target:
        target.setnchannels(2)
        target.setsampwidth(2)
        target.setframerate(44100)
        target.writeframes(stereo.tobytes())
    samples = audio.read_wav(tmp_path / "s.wav")
    assert len(samples) == 8000
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins
    rms = np.sqrt(np.mean(samples[100:-100].astype(float) ** 2))
    assert 2600 < rms < 3000  # the 1 kHz half survives (8000/2/sqrt2), the 7 kHz half not
    with pytest.raises(UsageError, match="no such file"):
        audio.read_wav(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(UsageError, match="not a readable PCM WAV"):
        audio.read_wav(tmp_path / "bad.wav")


def test_a_person_talks_over_the_caller_and_times_the_caller_going_quiet() -> None:
    speech = audio.to_pcm(audio.tone(200, 400, 600, 800, seconds=0.02, level=0.5))
    quiet = bytes(320)
    phone = PhoneHandler()
    phone.play(audio.to_pcm(audio.silence(0.04)))  # its greeting, 2 frames
    phone.arm(audio.to_pcm(audio.tone(300, seconds=0.4)))
    start = time.monotonic()
    for index in range(45):
        phone.on_frame(speech, start + index * 0.02)
        if index < 2:
            assert phone.next_frame() is not None  # the greeting goes out meanwhile
    assert phone.next_frame() is not None  # the interruption starts: its onset
    onset = time.monotonic()
    for index in range(10):  # the caller goes on for 200 ms, then stops
        phone.on_frame(speech, onset + (index + 1) * 0.02)
    for index in range(20):
        phone.on_frame(quiet, onset + 0.2 + (index + 1) * 0.02)
    stats = phone.stats()
    assert stats.barge_in_ms == pytest.approx(220, abs=5)
    assert stats.frames_received == 75
    assert stats.frames_sent == 3


def test_an_unarmed_phone_never_interrupts() -> None:
    phone = PhoneHandler()
    speech = audio.to_pcm(audio.tone(200, 400, 600, 800, seconds=0.02, level=0.5))
    for index in range(100):
        phone.on_frame(speech, index * 0.02)
    assert phone.next_frame() is None
    assert phone.stats().barge_in_ms is None


# the commands that need no phones


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    if isinstance(result.exception, DialerError):
        return 2, f"error: {result.exception}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def test_a_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text("phones:\n  x: {kind: robot}\nweights: {x: 1}\n",
                                     encoding="utf-8")
    code, out = invoke("harness", "--config", str(tmp_path / "h.yaml"), "--for", "1s")
    assert code == 2
    assert "h.yaml" in out
    assert "robot" in out or "kind" in out
    code, out = invoke("harness", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "missing.yaml" in out
    code, out = invoke("harness", "--config", str(tmp_path / "h.yaml"), "--for", "soon")
    assert (code, out) == (2, "error: --for: 'soon' is not a duration (such as 90s, 10m or 1h)")
    code, out = invoke("harness")
    assert code == 2
    assert "--config" in out


def test_the_report_compares_the_call_log_with_the_attempts(tmp_path: Path) -> None:
    calls = [PhoneCall(call_id=f"h{n}", dialed=number, caller="+15550001111", phone=phone,
                       kind=kind, expected=(expected,), did="x", received_at=1717466400 + n,
                       barge_in_ms=latency)
             for n, (number, phone, kind, expected, latency) in enumerate([
                 ("+8613800000001", "busy", "busy", "busy", None),
                 ("+8613800000002", "空号", "announcement", "vacant", None),
                 ("+8613800000003", "bob", "person", "answered_human", 180.0),
                 ("+8613800000004", "bob", "person", "answered_human", 240.0)])]
    (tmp_path / "calls.jsonl").write_text("".join(c.to_json() + "\n" for c in calls),
                                          encoding="utf-8")
    (tmp_path / "attempts.csv").write_text(
        "attempt_id,e164,placed_at,disposition\n"
        "a1,+8613800000001,2024-06-04T02:00:00Z,busy\n"
        "a2,+8613800000002,2024-06-04T02:00:01Z,no_answer\n"
        "a3,+8613800000003,2024-06-04T02:00:02Z,answered_human\n"
        "a5,+8613800000005,2024-06-04T02:00:03Z,busy\n", encoding="utf-8")
    log, attempts = str(tmp_path / "calls.jsonl"), str(tmp_path / "attempts.csv")
    code, out = invoke("harness", "report", "--log", log, "--compare", attempts, "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["matches"] == 2
    assert [(m["number"], m["dialer_concluded"]) for m in report["mismatches"]] == [
        ("+8613800000002", "no_answer")]
    assert [m["number"] for m in report["not_received"]] == ["+8613800000005"]
    assert [m["number"] for m in report["unexplained"]] == ["+8613800000004"]
    assert report["barge_in_ms"] == {"count": 2, "median": 240.0, "max": 240.0}
    code, out = invoke("harness", "report", "--log", log, "--compare", attempts)
    assert code == 0, out
    for text in ("Mismatches", "Not received", "Unexplained", "空号", "no_answer",
                 "median 240 ms"):
        assert text in out
    code, out = invoke("harness", "report", "--log", str(tmp_path / "none.jsonl"))
    assert code == 2
    assert "cannot read the harness call log" in out
