"""SIT codes and 450 Hz cadences through G.711 and noise; nothing on speech, ringback or
silence."""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
import numpy.typing as npt
import pytest

from dialer.harness import audio
from rules.signals import Announcement
from voice import corpus
from voice.goertzel import FRAME_BYTES, dbfs_power
from voice.tones import (
    CADENCES,
    MEANINGS,
    SIT_CODES,
    Cadence,
    SitCode,
    Tone,
    ToneDetector,
    ToneHeard,
)

Signal = npt.NDArray[np.float64]
LEAD_MS = 300
SEEDS = range(6)


def hear(signal: Signal, law: Literal["ulaw", "alaw"] | None = "ulaw",
         chunk: int = FRAME_BYTES) -> list[ToneHeard]:
    detector = ToneDetector()
    data = corpus.pcm(signal, law)
    heard: list[ToneHeard] = []
    for start in range(0, len(data), chunk):
        heard += detector.feed(data[start:start + chunk])
    return heard


def sit_call(code: SitCode, snr_db: float, seed: int, **options: float) -> Signal:
    """Noise, the SIT, then the rest of the early media (noise), all at `snr_db`."""
    rng = np.random.default_rng(seed)
    tones = corpus.sit(code, **options)
    lead = corpus.silence(LEAD_MS + rng.uniform(0, 20))  # not on a frame boundary
    return corpus.with_noise(corpus.join(lead, tones, corpus.silence(800)), snr_db, rng,
                             reference_power=corpus.active_power(tones))


@pytest.mark.parametrize("code", SIT_CODES, ids=lambda code: code.name)
def test_every_sit_code_is_heard_at_8_db_snr_after_g711(code: SitCode) -> None:
    for seed in SEEDS:
        heard = hear(sit_call(code, 8.0, seed))
        assert [h.tone for h in heard] == [code.tone], f"seed {seed}"
        finding = heard[0]
        assert (finding.announcement, finding.network) == MEANINGS[code.tone]
        assert finding.confidence >= 0.9
        assert abs(finding.started_ms - LEAD_MS) <= 25
        # decided within the third segment: first two segments + 8 frames of the third
        assert finding.at_ms <= LEAD_MS + 20 + code.first_ms + code.second_ms + 200


@pytest.mark.parametrize("code", SIT_CODES, ids=lambda code: code.name)
def test_sit_codes_survive_a_law_276_ms_segments_and_0_db_snr(code: SitCode) -> None:
    assert [h.tone for h in hear(sit_call(code, 8.0, 1, short_ms=276), "alaw")] == [code.tone]
    for seed in range(3):
        heard = hear(sit_call(code, 0.0, seed, level_dbfs=-24.0))
        assert [h.tone for h in heard] == [code.tone], f"seed {seed}"
        assert 0.4 <= heard[0].confidence < 0.9  # noisier evidence, lower confidence


def test_the_harness_sit_phones_are_heard_as_the_class_they_play() -> None:
    played = {"intercept": Tone.SIT_IC, "vacant_code": Tone.SIT_VC, "no_circuit": Tone.SIT_NC,
              "reorder": Tone.SIT_RO, "ineffective_other": Tone.SIT_IO}
    assert set(played) == set(audio.SIT_CLASSES)
    for name, tone in played.items():
        early_media = audio.join(audio.ringback(2.0), audio.sit_tones(name), audio.silence(0.5))
        assert [h.tone for h in hear(early_media.astype(np.float64))] == [tone], name


def test_meanings_never_call_a_number_dead_for_network_trouble() -> None:
    assert set(MEANINGS) == set(Tone)
    assert MEANINGS[Tone.SIT_IC] == MEANINGS[Tone.SIT_VC] == (Announcement.VACANT, False)
    for tone in (Tone.SIT_NC, Tone.SIT_RO, Tone.CONGESTION):
        assert MEANINGS[tone] == (Announcement.UNREACHABLE, True)
    assert MEANINGS[Tone.BUSY] == (Announcement.BUSY, False)
    assert MEANINGS[Tone.VACANT_TONE] == (Announcement.VACANT, False)
    for tone in (Tone.SIT_IO, Tone.SIT_UNDEFINED):
        assert MEANINGS[tone] == (Announcement.UNKNOWN, False)


def test_an_unassigned_sit_code_is_unknown_and_a_malformed_one_is_nothing() -> None:
    unassigned = SitCode("low short, high short", 913.8, 274, 1428.5, 274, Tone.SIT_UNDEFINED)
    heard = hear(sit_call(unassigned, 8.0, 0))
    assert [(h.tone, h.announcement) for h in heard] == [(Tone.SIT_UNDEFINED,
                                                          Announcement.UNKNOWN)]
    too_short = corpus.join(corpus.silence(LEAD_MS), corpus.sit(SIT_CODES[0], short_ms=150))
    assert hear(too_short) == []
    two_segments = corpus.join(corpus.tone(913.8, 274, -30), corpus.tone(1370.6, 274, -30),
                               corpus.silence(500))
    assert hear(two_segments) == []


def test_sit_then_the_spoken_announcement_gives_one_finding(
        speech: dict[str, Signal]) -> None:
    rng = np.random.default_rng(7)
    announcement = corpus.join(*speech.values())
    signal = corpus.join(corpus.silence(200), corpus.sit(SIT_CODES[0], level_dbfs=-26),
                         corpus.silence(150), 0.4 * announcement)
    heard = hear(corpus.with_noise(signal, 15.0, rng))
    assert [h.tone for h in heard] == [Tone.SIT_IC]


@pytest.mark.parametrize("cadence", CADENCES, ids=lambda cadence: cadence.tone.value)
def test_450_hz_cadences_are_heard_at_8_db_snr(cadence: Cadence) -> None:
    cycle_ms = sum(on + off for on, off in cadence.cycle)
    for seed, hertz in zip(SEEDS, itertools.cycle([450.0, 430.0, 470.0]), strict=False):
        rng = np.random.default_rng(seed)
        tone = corpus.cadence(cadence.cycle, 6 * cycle_ms, hertz, level_dbfs=-25)
        signal = corpus.join(corpus.silence(LEAD_MS + rng.uniform(0, 20)), tone)
        heard = hear(corpus.with_noise(signal, 8.0, rng,
                                       reference_power=corpus.active_power(tone)))
        assert [h.tone for h in heard] == [cadence.tone], f"seed {seed}"
        finding = heard[0]
        assert (finding.announcement, finding.network) == MEANINGS[cadence.tone]
        assert finding.confidence >= 0.8
        assert abs(finding.started_ms - LEAD_MS) <= 25
        # the periods, and the last off period long enough to be one
        assert finding.at_ms <= LEAD_MS + 20 + cadence.repeats * cycle_ms


def test_a_450_hz_sound_whose_level_wanders_like_a_voice_is_no_busy_tone() -> None:
    swelling = corpus.tone(450.0, 350, -20.0) * (0.1 + np.hanning(2800))
    assert hear(np.tile(corpus.join(swelling, corpus.silence(350)), 6)) == []
    steady = corpus.cadence([(350, 350)], 4200, level_dbfs=-20.0)
    assert [h.tone for h in hear(steady)] == [Tone.BUSY]


@pytest.mark.parametrize("snr_db", [None, 8.0])
def test_ringback_dial_tone_silence_and_noise_are_no_finding(snr_db: float | None) -> None:
    for seed in range(3):
        rng = np.random.default_rng(seed)
        for case in corpus.tone_cases(level_dbfs=-25):
            if case.expected is not None:
                continue
            signal = case.signal
            if snr_db is not None:
                signal = corpus.with_noise(signal, snr_db, rng,
                                           reference_power=dbfs_power(-25))
            assert hear(signal) == [], case.name


def test_speech_is_no_finding(speech: dict[str, Signal]) -> None:
    rng = np.random.default_rng(3)
    for name, clip in speech.items():
        assert hear(clip) == [], name
        assert hear(corpus.with_noise(clip, 10.0, rng), "alaw") == [], name
    assert hear(corpus.vowels(30_000, rng)) == []


def test_dtmf_is_no_finding() -> None:
    assert hear(corpus.dtmf("0123456789*#ABCD", 100, 100)) == []


def test_a_tone_is_reported_once_and_chunking_does_not_matter() -> None:
    rng = np.random.default_rng(5)
    busy = corpus.cadence([(350, 350)], 10_000, level_dbfs=-25)
    signal = corpus.with_noise(corpus.join(corpus.sit(SIT_CODES[2]), corpus.silence(500),
                                           corpus.sit(SIT_CODES[2]), corpus.silence(500), busy),
                               20.0, rng)
    heard = hear(signal)
    assert [h.tone for h in heard] == [Tone.SIT_NC, Tone.BUSY]
    assert hear(signal, chunk=len(corpus.pcm(signal))) == heard
    assert hear(signal, chunk=1001) == heard
