"""Speech detection and barge-in on a call's received audio: real interruptions (espeak-ng,
English and Mandarin) silence the prompt (pause or stop it) within 130 ms (p95) of their
onset, where they stand clear of the line noise, and then stop it; coughs and backchannels
rarely stop it; silence, line noise and call-progress tones start nothing.

Every scene goes through G.711 with white line noise 15-25 dB under the callee's speaking
level (-30 to -16 dBFS), after 0.6-1.5 s of noise alone, on an echo-free line; "after a
greeting" scenes let the callee say a phrase first, so that their speaking level is known.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pytest

from dialer.harness.audio import read_wav
from voice import corpus
from voice.bargein import (
    BargeIn,
    PausePrompt,
    PromptCommand,
    ResumePrompt,
    StopPrompt,
    fade_in,
    fade_out,
)
from voice.goertzel import FRAME_BYTES, SAMPLE_RATE
from voice.tones import SIT_CODES
from voice.vad import SpeechDetector, SpeechEnded, SpeechStarted, VadEvent, sound_of

Signal = npt.NDArray[np.float64]
INTERRUPTIONS = {"en": ["Hello?", "Stop.", "Wait a minute.", "No, thank you."],
                 "cmn": ["你好", "不需要", "喂？", "等一下"]}
VOICES = [("en", 20), ("en", 70), ("en+f3", 50), ("cmn", 30), ("cmn", 80), ("cmn+f3", 50)]
SAMPLES = 100  # coughs or backchannels per rate measured


@pytest.fixture(scope="module")
def interruptions(tmp_path_factory: pytest.TempPathFactory) -> list[Signal]:
    """Each interruption in each voice, at 8 kHz (float samples in the int16 scale)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng is not installed (Debian package espeak-ng)", pytrace=False)
    folder = tmp_path_factory.mktemp("interruptions")
    clips = []
    for voice, pitch in VOICES:
        for number, text in enumerate(INTERRUPTIONS[voice.split("+")[0]]):
            path = folder / f"{voice}-{pitch}-{number}.wav"
            subprocess.run([espeak, "-v", voice, "-p", str(pitch), "-w", str(path), "--", text],
                           check=True, capture_output=True, timeout=60)
            clips.append(read_wav(Path(path)).astype(np.float64))
    return clips


def frames(signal: Signal, law: Literal["ulaw", "alaw"] = "ulaw") -> list[bytes]:
    return corpus.frames(corpus.pcm(signal, law))


def voice(ms: float, level_dbfs: float, f0: float = 140.0, top_hz: float = 3600.0) -> Signal:
    """A steady voiced sound: equal harmonics of `f0` up to `top_hz` (to 500 Hz: a hum)."""
    t = np.arange(round(ms * SAMPLE_RATE / 1000)) / SAMPLE_RATE
    wave = sum((np.sin(2 * np.pi * k * f0 * t) for k in range(1, int(top_hz // f0) + 1)),
               np.zeros(len(t)))
    return corpus.at_level(wave, level_dbfs)


def noise(ms: float, seed: int = 0, level_dbfs: float = -50.0) -> Signal:
    return corpus.line_noise(ms, np.random.default_rng(seed), level_dbfs)


def detect(signal: Signal) -> tuple[list[VadEvent], list[int]]:
    """The detector's events, and the end (ms) of the frame that completed each."""
    detector = SpeechDetector()
    events: list[VadEvent] = []
    ends: list[int] = []
    for index, frame in enumerate(frames(signal)):
        found = detector.feed(frame)
        events += found
        ends += [20 * (index + 1)] * len(found)
    return events, ends


def commands(signal: Signal, prompt_ms: float = 0.0,
             law: Literal["ulaw", "alaw"] = "ulaw") -> list[PromptCommand]:
    """What `BargeIn` commands while a prompt plays from `prompt_ms` to the end."""
    barge = BargeIn()
    heard: list[PromptCommand] = []
    for index, frame in enumerate(frames(signal, law)):
        if index * 20 <= prompt_ms < index * 20 + 20:
            barge.start_prompt()
        heard += [e for e in barge.feed(frame)
                  if isinstance(e, StopPrompt | PausePrompt | ResumePrompt)]
    return heard


def scene(sound: Callable[[np.random.Generator, float], Signal], seed: int, *,
          greeting: Signal | None = None) -> tuple[corpus.Scene, float, Literal["ulaw", "alaw"]]:
    """`sound(rng, speaking level)` on a line at 15-25 dB SNR, optionally after the callee's
    greeting (at their speaking level); the prompt starts 300 ms after the greeting."""
    rng = np.random.default_rng(seed)
    level, snr = rng.uniform(-30, -16), rng.uniform(15, 25)
    before = None if greeting is None else corpus.join(corpus.at_level(greeting, level),
                                                       corpus.silence(300))
    made = corpus.on_the_line(sound(rng, level), rng, noise_dbfs=level - snr,
                              lead_ms=rng.uniform(600, 1500), tail_ms=600, before=before)
    prompt_ms = 0.0 if before is None else len(before) * 1000 / SAMPLE_RATE
    return made, prompt_ms, "ulaw" if seed % 2 else "alaw"


# -- real interruptions ------------------------------------------------------------------

@pytest.mark.parametrize("greeted", [False, True], ids=["first words", "after a greeting"])
def test_interruptions_silence_the_prompt_within_130_ms(interruptions: list[Signal],
                                                        greeted: bool) -> None:
    latency, from_audible = [], []
    for seed in range(72):
        clip = interruptions[seed % len(interruptions)]
        greeting = interruptions[(7 * seed + 3) % len(interruptions)] if greeted else None
        made, prompt_ms, law = scene(lambda rng, level, c=clip: corpus.at_level(c, level), seed,
                                     greeting=greeting)
        heard = commands(made.signal, prompt_ms, law)
        assert any(isinstance(c, StopPrompt) for c in heard), (seed, heard)
        first = heard[0]
        assert isinstance(first, StopPrompt | PausePrompt)
        assert first.onset_ms >= made.first_ms - 40, "a command before the callee spoke"
        latency.append(first.at_ms - made.onset_ms)
        from_audible.append(first.at_ms - made.audible_ms)
    assert np.percentile(latency, 95) <= 130, sorted(latency)[-8:]
    # Counted from where the sound first reaches the noise, the /s/ of "stop" adds ~100 ms:
    # at 15-25 dB SNR on 8 kHz it is too weak to call speech, and unvoiced like a cough.
    assert np.percentile(from_audible, 95) <= 230, sorted(from_audible)[-8:]


# -- coughs and backchannels -------------------------------------------------------------

def rates(sound: Callable[[np.random.Generator, float], Signal],
          greeting: Signal | None = None) -> tuple[float, float]:
    """Shares of `SAMPLES` seeded scenes of `sound` that stopped and that paused the prompt."""
    stopped = paused = 0
    for seed in range(SAMPLES):
        made, prompt_ms, law = scene(sound, 1000 + seed, greeting=greeting)
        heard = commands(made.signal, prompt_ms, law)
        stopped += any(isinstance(c, StopPrompt) for c in heard)
        paused += any(isinstance(c, PausePrompt) for c in heard)
    return stopped / SAMPLES, paused / SAMPLES


def cough(rng: np.random.Generator, level: float) -> Signal:
    return corpus.cough(rng, level + rng.uniform(-6, 6))


def mm(rng: np.random.Generator, level: float) -> Signal:
    return corpus.backchannel(rng, level - rng.uniform(6, 14))


def uh_huh(rng: np.random.Generator, level: float) -> Signal:
    return corpus.backchannel(rng, level - rng.uniform(4, 10), kind="uh-huh")


def test_coughs_neither_stop_nor_pause_the_prompt() -> None:
    stopped, paused = rates(cough)
    assert stopped < 0.05
    assert paused < 0.05


@pytest.mark.parametrize("greeted", [False, True], ids=["first sound", "after a greeting"])
def test_a_hummed_mm_rarely_stops_the_prompt(interruptions: list[Signal], greeted: bool) -> None:
    stopped, paused = rates(mm, interruptions[0] if greeted else None)
    assert stopped < 0.05
    if greeted:  # its level is known to be under the callee's speech: it plays on
        assert paused < 0.05


def test_uh_huh_pauses_but_rarely_stops_once_the_callee_was_heard(
        interruptions: list[Signal]) -> None:
    stopped, _ = rates(uh_huh, interruptions[0])
    assert stopped < 0.05


@pytest.mark.xfail(strict=True, reason="before the callee has spoken, only the noise tells "
                   "how loud they are: an oral 'uh-huh' is taken for a word (~60% stop)")
def test_uh_huh_as_the_callees_first_sound_rarely_stops_the_prompt() -> None:
    stopped, _ = rates(uh_huh)
    assert stopped < 0.05


# -- the barge-in decision table, with a greeting at -20 dBFS setting the speaking level --

GREETING = corpus.join(noise(500), voice(600, -20.0), noise(700, 1))  # prompt from 1800 ms


def after_greeting(*sound: Signal) -> list[PromptCommand]:
    return commands(corpus.join(GREETING, noise(400, 2), *sound, noise(800, 3)), 1800)


def test_a_voice_at_speaking_level_stops_the_prompt_after_100_ms() -> None:
    assert after_greeting(voice(600, -20.0)) == [StopPrompt(segment=2, onset_ms=2200,
                                                            at_ms=2300)]


def test_a_quiet_short_voice_pauses_the_prompt_then_resumes_it() -> None:
    assert after_greeting(voice(300, -27.0)) == [
        PausePrompt(segment=2, onset_ms=2200, at_ms=2300), ResumePrompt(segment=2, at_ms=2700)]


def test_a_quiet_voice_that_goes_on_stops_the_prompt() -> None:
    assert after_greeting(voice(800, -27.0)) == [
        PausePrompt(segment=2, onset_ms=2200, at_ms=2300),
        StopPrompt(segment=2, onset_ms=2200, at_ms=2660)]


def test_a_hum_plays_on_when_quiet_and_pauses_when_loud() -> None:
    assert after_greeting(voice(300, -30.0, top_hz=500)) == []
    assert [type(c) for c in after_greeting(voice(300, -18.0, top_hz=500))] == [
        PausePrompt, ResumePrompt]


def test_a_loud_noise_burst_does_nothing() -> None:
    burst = corpus.with_noise(corpus.silence(250), 0.0, np.random.default_rng(4),
                              reference_power=corpus.dbfs_power(-12.0))
    assert after_greeting(burst) == []


def test_commands_only_while_a_prompt_plays() -> None:
    barge = BargeIn()
    sound = corpus.join(noise(500), voice(600, -20.0), noise(500, 1), voice(600, -20.0),
                        noise(500, 2))
    heard = []
    for index, frame in enumerate(frames(sound)):
        if index == 60:  # 1200 ms: between the two voices
            barge.start_prompt()
        heard += [e for e in barge.feed(frame) if not isinstance(e, SpeechStarted | SpeechEnded)]
    assert heard == [StopPrompt(segment=2, onset_ms=1600, at_ms=1700)]
    barge.end_prompt()
    assert not barge.paused


# -- the detector ------------------------------------------------------------------------

def sit_calls() -> Signal:
    return corpus.join(*(corpus.join(corpus.sit(code, -20.0), corpus.silence(1000))
                         for code in SIT_CODES))


@pytest.mark.parametrize(("name", "make"), [
    ("digital silence", lambda: corpus.silence(5000)),
    ("white noise", lambda: corpus.with_noise(corpus.silence(8000), 0.0,
                                              np.random.default_rng(1), corpus.dbfs_power(-40))),
    ("pink noise and hum", lambda: corpus.line_noise(8000, np.random.default_rng(2), -38.0,
                                                     hum_hz=50.0)),
    ("ringback", lambda: corpus.ringback(11_000, -16.0)),
    ("US ringback", lambda: corpus.cadence([(2000, 4000)], 11_000, (440.0, 480.0), -16.0)),
    ("dial tone", lambda: corpus.dial_tone(3000, -14.0)),
    ("SIT", sit_calls),
    ("busy", lambda: corpus.cadence([(350, 350)], 5000, level_dbfs=-20.0)),
    ("DTMF", lambda: corpus.dtmf("0123456789*#", 100, 100, -12.0)),
])
def test_no_onset_on_silence_noise_or_tones(name: str, make: Callable[[], Signal]) -> None:
    signal = corpus.join(corpus.silence(300), make())
    if name != "digital silence":
        signal = corpus.with_noise(signal, 30.0, np.random.default_rng(3),
                                   reference_power=corpus.dbfs_power(-20.0))
    events, _ = detect(signal)
    assert events == []
    assert commands(signal) == []


def test_an_onset_is_confirmed_after_100_ms_with_one_gap_at_most() -> None:
    def onsets(*parts: Signal) -> list[VadEvent]:
        events, _ = detect(corpus.join(noise(1000), *parts, noise(1000, 1)))
        return [e for e in events if isinstance(e, SpeechStarted)]

    assert onsets(voice(80, -20.0)) == []
    assert onsets(voice(100, -20.0)) == [SpeechStarted(segment=1, at_ms=1000,
                                                       confirmed_at_ms=1100)]
    gap = noise(20, 2)
    assert onsets(voice(40, -20.0), gap, voice(60, -20.0)) == [  # the gap counts as time
        SpeechStarted(segment=1, at_ms=1000, confirmed_at_ms=1100)]
    assert onsets(voice(40, -20.0), gap, voice(20, -20.0), gap, voice(100, -20.0)) == [
        SpeechStarted(segment=1, at_ms=1100, confirmed_at_ms=1200)]


def test_hangover_joins_short_pauses_and_ends_segments_300_ms_later() -> None:
    events, ends = detect(corpus.join(noise(1000), voice(400, -20.0), noise(200, 1),
                                      voice(400, -20.0), noise(400, 2), voice(300, -20.0),
                                      noise(1000, 3)))
    assert events == [SpeechStarted(segment=1, at_ms=1000, confirmed_at_ms=1100),
                      SpeechEnded(segment=1, at_ms=2000, duration_ms=1000),
                      SpeechStarted(segment=2, at_ms=2400, confirmed_at_ms=2500),
                      SpeechEnded(segment=2, at_ms=2700, duration_ms=300)]
    assert ends == [1100, 2300, 2500, 3000]


def test_segments_hold_their_audio_with_a_pre_roll() -> None:
    signal = corpus.join(noise(1000), voice(400, -20.0), noise(1000, 1))
    data = frames(signal)
    detector = SpeechDetector()
    assert detector.segment() is None
    for frame in data[:60]:  # to 1200 ms: open
        detector.feed(frame)
    open_segment = detector.segment()
    assert open_segment is not None
    assert (open_segment.start_ms, open_segment.audio_start_ms, open_segment.end_ms,
            open_segment.ended) == (1000, 800, 1200, False)
    assert open_segment.pcm == b"".join(data[40:60])
    for frame in data[60:]:
        detector.feed(frame)
    segment = detector.segment()
    assert segment is not None
    assert (segment.segment, segment.start_ms, segment.end_ms, segment.ended) == (
        1, 1000, 1400, True)
    assert segment.pcm == b"".join(data[40:70])
    assert detector.speech_level_dbfs == pytest.approx(-20.0, abs=0.5)


def test_times_follow_the_given_timestamps_and_close_ends_a_segment() -> None:
    detector = SpeechDetector()
    events: list[VadEvent] = []
    for index, frame in enumerate(frames(corpus.join(noise(600), voice(300, -20.0)))):
        events += detector.feed(frame, at_ms=90_000 + 20 * index)
    events += detector.close()
    assert events == [SpeechStarted(segment=1, at_ms=90_600, confirmed_at_ms=90_700),
                      SpeechEnded(segment=1, at_ms=90_900, duration_ms=300)]
    assert detector.close() == []


def test_frames_must_be_20_ms() -> None:
    with pytest.raises(ValueError, match="expected 320"):
        SpeechDetector().feed(b"\x00" * 160)


def test_sounds_voicing_flatness_upper_share_and_tones() -> None:
    def sound(signal: Signal) -> tuple[bool, bool, bool, bool]:
        heard = sound_of(signal[:320])  # voiced, flat, oral, tonal
        return heard.voicing > 0.9, heard.flatness > 0.4, heard.upper > 0.5, heard.tonal

    assert sound(voice(40, -20.0)) == (True, False, True, False)
    assert sound(voice(40, -20.0, top_hz=500)) == (True, False, False, False)
    assert sound(np.random.default_rng(0).standard_normal(320) * 1000)[:2] == (False, True)
    for hertz in (450.0, (440.0, 480.0), (350.0, 440.0), 1776.7, (697.0, 1209.0)):
        assert sound(corpus.tone(hertz, 40))[3], hertz


# -- fades -------------------------------------------------------------------------------

def test_fade_out_ends_in_silence_on_whole_frames_without_a_jump() -> None:
    prompt = corpus.pcm(corpus.tone(300.0, 1000, -6.0, ramp_ms=0))[1000:]  # mid-wave
    faded = np.frombuffer(fade_out(prompt, 30), "<i2").astype(float)
    original = np.frombuffer(prompt, "<i2").astype(float)
    assert len(faded) * 2 == 2 * FRAME_BYTES  # 30 ms, padded to whole frames
    assert abs(faded[0] - original[0]) < 50
    assert np.max(np.abs(np.diff(faded))) <= np.max(np.abs(np.diff(original))) + 50
    assert abs(faded[239]) < 50
    assert not faded[240:].any()
    assert len(fade_out(prompt[:100], 30)) == FRAME_BYTES  # a shorter remainder: one frame


def test_fade_in_starts_from_silence() -> None:
    prompt = corpus.pcm(corpus.tone(300.0, 100, -6.0, ramp_ms=0))
    faded = np.frombuffer(fade_in(prompt, 20), "<i2")
    assert faded[0] == 0
    assert len(faded) * 2 == len(prompt)
    assert fade_in(prompt, 20)[320:] == prompt[320:]
    with pytest.raises(ValueError, match="2-byte"):
        fade_in(prompt[:-1])
