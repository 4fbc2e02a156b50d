"""Answering-machine detection on real synthesised speech: ours, the Asterisk baseline, the
beep detector, and the corpus they are measured on.

Speech comes from piper and espeak-ng (no mocks); it is cached in pytest's cache folder,
so only the first run synthesises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rules.signals import AnswerKind
from voice.amd import (
    AnswerClassifier,
    AnswerDecided,
    AnswerDetector,
    AsteriskAmd,
    AsteriskSettings,
    Cause,
)
from voice.amd_corpus import RECIPES, AmdCase, Speaker, SynthVoice, amd_cases
from voice.beep import BeepDetector, BeepEnded
from voice.corpus import frames, join, line_noise, pcm, silence, tone, with_noise
from voice.goertzel import FRAME_BYTES, FRAME_MS, SAMPLE_RATE
from voice.tts import PromptCache

JOE = SynthVoice("piper", "joe", 1.0, 0)
MANDARIN = SynthVoice("espeak", "cmn", 300, 50)
VOICEMAIL = "Hi, you've reached John. I can't come to the phone right now. Please leave a " \
            "message after the tone."


@pytest.fixture(scope="module")
def speaker(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Speaker:
    cache = getattr(pytestconfig, "cache", None)  # None under -p no:cacheprovider
    folder = cache.mkdir("amd-speech") if cache is not None else tmp_path_factory.mktemp("s")
    return Speaker(PromptCache(Path(folder)))


@pytest.fixture(scope="module")
def corpus(speaker: Speaker) -> list[AmdCase]:
    """Three cases of every recipe but the prank (which no fast detector gets right)."""
    recipes = [name for name, _ in RECIPES if name != "machine-hello"]
    return amd_cases(3 * len(recipes), seed=11, speaker=speaker, recipes=recipes)


def hear(detector: AnswerClassifier, data: bytes) -> AnswerDecided:
    decisions = [d for frame in frames(data) if (d := detector.feed(frame)) is not None]
    closed = detector.close()
    assert len(decisions) + (closed is not None) == 1, "a detector decides exactly once"
    return decisions[0] if decisions else closed  # type: ignore[return-value]


def on_a_line(*parts: np.ndarray, seed: int = 0, snr_db: float = 30.0) -> bytes:
    """Speech and silences at -20 dBFS with line noise, through mu-law."""
    signal = join(*parts)
    rng = np.random.default_rng(seed)
    noisy = signal + line_noise(len(signal) * 1000 / SAMPLE_RATE, rng, -20 - snr_db)
    return pcm(noisy, "ulaw")


def at_minus_20(speech: np.ndarray) -> np.ndarray:
    scaled: np.ndarray = speech * (32768 * 0.1 / np.sqrt(np.mean(speech**2)))
    return scaled


def beep(hertz: float = 1000.0, ms: float = 500.0) -> np.ndarray:
    return tone(hertz, ms, -18.0, ramp_ms=5)


# Ours


def test_a_person_who_says_hello_and_waits_is_human_within_a_second_of_it(
        speaker: Speaker) -> None:
    hello = at_minus_20(speaker.say("Hello?", JOE))
    decision = hear(AnswerDetector(), on_a_line(silence(500), hello, silence(3000)))
    greeting_end = 500 + len(hello) * 1000 // SAMPLE_RATE
    assert decision.kind is AnswerKind.HUMAN
    assert decision.cause is Cause.SILENCE_AFTER_GREETING
    assert greeting_end + 500 <= decision.at_ms <= greeting_end + 1100


def test_a_mandarin_wei_is_human(speaker: Speaker) -> None:
    wei = at_minus_20(speaker.say("喂？", MANDARIN))
    decision = hear(AnswerDetector(), on_a_line(silence(300), wei, silence(3000)))
    assert decision.kind is AnswerKind.HUMAN


def test_a_voicemail_greeting_is_a_machine_before_it_ends_and_its_beep_is_timed(
        speaker: Speaker) -> None:
    greeting = at_minus_20(speaker.say(VOICEMAIL, JOE))
    data = on_a_line(silence(400), greeting, silence(500), beep(850, 400), silence(1500))
    detector = AnswerDetector()
    decision = hear(detector, data)
    greeting_ms = len(greeting) * 1000 // SAMPLE_RATE
    beep_end = 400 + greeting_ms + 500 + 400
    assert decision.kind is AnswerKind.MACHINE
    assert decision.cause is Cause.LONG_GREETING
    assert decision.at_ms < 400 + greeting_ms
    assert detector.beep is not None  # heard after the decision
    assert abs(detector.beep.at_ms - beep_end) <= 10
    assert abs(detector.beep.hertz - 850) <= 10
    assert beep_end < detector.beep.reported_ms <= beep_end + 3 * FRAME_MS


def test_a_short_voicemail_greeting_is_told_by_its_beep(speaker: Speaker) -> None:
    greeting = at_minus_20(speaker.say("Leave a message.", JOE))
    data = on_a_line(silence(200), greeting, silence(800), beep(1400, 300), silence(1500))
    decision = hear(AnswerDetector(), data)
    assert decision.kind is AnswerKind.MACHINE
    assert decision.cause is Cause.BEEP


def test_dead_air_is_not_sure_after_three_seconds_and_close_decides_once() -> None:
    quiet = on_a_line(silence(5000))
    decision = hear(AnswerDetector(), quiet)
    assert (decision.kind, decision.cause, decision.at_ms) == (
        AnswerKind.UNSURE, Cause.INITIAL_SILENCE, 3000)
    early = AnswerDetector()
    for frame in frames(quiet)[:10]:
        assert early.feed(frame) is None
    closed = early.close()
    assert closed is not None
    assert (closed.kind, closed.cause) == (AnswerKind.UNSURE, Cause.CALL_ENDED)
    assert early.close() is None
    assert early.decision == closed


@pytest.mark.parametrize("make", [AnswerDetector, AsteriskAmd])
def test_a_frame_must_be_20_ms(make: Callable[[], AnswerClassifier]) -> None:
    with pytest.raises(ValueError, match="expected 320"):
        make().feed(b"\x00" * (FRAME_BYTES - 2))


def test_ours_is_right_on_the_corpus_where_asterisk_is_not(corpus: list[AmdCase]) -> None:
    ours = [hear(AnswerDetector(), case.pcm).kind == case.truth for case in corpus]
    asterisk = [hear(AsteriskAmd(), case.pcm).kind == case.truth for case in corpus]
    assert sum(ours) >= len(corpus) - 2, [c.name for c, r in zip(corpus, ours, strict=True)
                                         if not r]
    assert sum(ours) > sum(asterisk)


def test_ours_finds_every_beep_of_the_corpus_to_a_few_ms(corpus: list[AmdCase]) -> None:
    for case in corpus:
        detector = AnswerDetector()
        hear(detector, case.pcm)
        if case.beep_ms is None:
            assert detector.beep is None, case.name
        else:
            assert detector.beep is not None, case.name
            assert abs(detector.beep.at_ms - case.beep_ms[1]) <= 10, case.name


def test_feeding_a_frame_costs_well_under_a_millisecond(corpus: list[AmdCase]) -> None:
    data = b"".join(case.pcm for case in corpus[:6])
    detector, costs = AnswerDetector(), []
    for frame in frames(data):
        began = time.perf_counter()
        detector.feed(frame)
        costs.append(time.perf_counter() - began)
        if detector.decision is not None:
            detector = AnswerDetector()  # measure deciding, not only beep-listening
    assert np.mean(costs) < 0.3e-3
    assert np.percentile(costs, 99) < 1e-3


# The beep detector


@pytest.mark.parametrize(("hertz", "ms", "snr_db"), [(440.0, 150.0, 20.0), (1000.0, 500.0, 10.0),
                                                      (1950.0, 1000.0, 6.0)])
def test_a_beep_is_timed_and_tuned_through_noise_and_g711(hertz: float, ms: float,
                                                           snr_db: float) -> None:
    start = 313.0  # not on a frame edge
    signal = join(silence(start), beep(hertz, ms), silence(400))
    noisy = with_noise(signal, snr_db, np.random.default_rng(1),
                       reference_power=float(np.mean(beep(hertz, ms) ** 2)))
    detector = BeepDetector()
    heard = [b for f in frames(pcm(noisy, "alaw")) if (b := detector.feed(f)) is not None]
    assert len(heard) == 1
    assert abs(heard[0].started_ms - start) <= 10
    assert abs(heard[0].at_ms - (start + ms)) <= 10
    assert abs(heard[0].hertz - hertz) <= 8


def test_tones_that_are_no_beeps_are_not_reported() -> None:
    detector = BeepDetector()
    dial_tone = tone(450.0, 3000, -18.0)  # too long
    blip = tone(1000.0, 80, -18.0)  # too short
    two_tones = tone([350.0, 440.0], 500, -18.0)  # not one peak
    sweep = np.sin(2 * np.pi * np.cumsum(np.linspace(500, 1500, 4000)) / SAMPLE_RATE) * 4000
    data = pcm(join(dial_tone, silence(300), blip, silence(300), two_tones, silence(300),
                    sweep, silence(300)))
    assert [b for f in frames(data) if (b := detector.feed(f)) is not None] == []


def test_speech_never_makes_a_beep(speech: dict[str, np.ndarray]) -> None:
    for name, clip in speech.items():
        detector = BeepDetector()
        heard: list[BeepEnded] = [b for f in frames(pcm(clip, "ulaw"))
                                  if (b := detector.feed(f)) is not None]
        assert heard == [], name


# The Asterisk baseline, on signals whose answer app_amd's algorithm fixes


def voice(ms: float, amplitude: float = 2000.0) -> np.ndarray:
    """A loud square-ish buzz: app_amd sees any frame over its threshold as voice."""
    return np.sign(np.sin(2 * np.pi * 200 * np.arange(round(ms * 8)) / SAMPLE_RATE)) * amplitude


def test_asterisk_initial_silence_is_a_machine() -> None:
    decision = hear(AsteriskAmd(), pcm(silence(4000)))
    assert (decision.kind, decision.cause, decision.at_ms) == (
        AnswerKind.MACHINE, Cause.INITIAL_SILENCE, 2500)


def test_asterisk_a_word_and_800_ms_of_silence_is_human() -> None:
    decision = hear(AsteriskAmd(), pcm(join(silence(200), voice(300), silence(2000))))
    assert (decision.kind, decision.cause, decision.at_ms) == (
        AnswerKind.HUMAN, Cause.SILENCE_AFTER_GREETING, 200 + 300 + 800)
    assert decision.words == 1


def test_asterisk_three_words_are_a_machine_and_two_words_may_be_set() -> None:
    words = join(silence(200), *(part for _ in range(4) for part in (voice(200), silence(100))))
    decision = hear(AsteriskAmd(), pcm(words))
    assert (decision.kind, decision.cause, decision.words) == (
        AnswerKind.MACHINE, Cause.MAX_WORDS, 3)
    assert decision.at_ms == 200 + 2 * 300 + 100  # the third word's 100th ms
    two = hear(AsteriskAmd(AsteriskSettings(maximum_number_of_words=2)), pcm(words))
    assert (two.cause, two.at_ms) == (Cause.MAX_WORDS, 200 + 300 + 100)


def test_asterisk_1500_ms_of_voice_is_a_long_greeting() -> None:
    decision = hear(AsteriskAmd(), pcm(join(silence(200), voice(3000))))
    assert (decision.kind, decision.cause, decision.at_ms) == (
        AnswerKind.MACHINE, Cause.LONG_GREETING, 200 + 1500)


def test_asterisk_gives_up_at_5_s_and_uses_its_silence_threshold() -> None:
    clicks = join(*(part for _ in range(12) for part in (voice(20), silence(580))))
    decision = hear(AsteriskAmd(), pcm(clicks))
    assert (decision.kind, decision.cause, decision.at_ms) == (
        AnswerKind.UNSURE, Cause.TOO_LONG, 5000)
    under = hear(AsteriskAmd(), pcm(np.full(8 * 3000, 255.0)))  # mean |sample| 255: silent
    over = hear(AsteriskAmd(), pcm(join(silence(200), np.full(8 * 3000, 256.0))))
    assert under.cause is Cause.INITIAL_SILENCE
    assert over.cause is Cause.LONG_GREETING


# The corpus


def test_the_corpus_is_labelled_and_reproducible(corpus: list[AmdCase],
                                                 speaker: Speaker) -> None:
    for case in corpus:
        assert case.truth is (AnswerKind.HUMAN if case.recipe.startswith("human")
                              else AnswerKind.MACHINE)
        assert 0 <= case.speech_ms < case.greeting_end_ms < case.duration_ms
        if case.recipe in ("machine-beep", "machine-short"):
            assert case.beep_ms is not None
            start, end = case.beep_ms
            assert 150 <= start - case.greeting_end_ms <= 1000
            assert 150 <= end - start <= 1000
            assert end < case.duration_ms
        else:
            assert case.beep_ms is None
    recipes = [name for name, _ in RECIPES if name != "machine-hello"]
    again = amd_cases(2, seed=11, speaker=speaker, recipes=recipes)
    assert [c.pcm for c in again] == [c.pcm for c in corpus[:2]]


def test_the_corpus_beep_is_a_tone_where_the_label_says(corpus: list[AmdCase]) -> None:
    case = next(c for c in corpus if c.beep_ms is not None)
    assert case.beep_ms is not None
    samples = np.frombuffer(case.pcm, "<i2").astype(np.float64)
    start, end = (ms * SAMPLE_RATE // 1000 for ms in case.beep_ms)
    inside = samples[start + 80:end - 80]
    spectrum = np.abs(np.fft.rfft(inside * np.hanning(len(inside)))) ** 2
    peak = int(spectrum.argmax())
    assert spectrum[peak - 3:peak + 4].sum() > 0.5 * spectrum.sum()
    before = samples[start - 400:start - 80]
    assert np.mean(before**2) < np.mean(inside**2) / 10
