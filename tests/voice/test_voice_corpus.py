"""The synthetic signals the detector tests and benchmarks share."""

from __future__ import annotations

import numpy as np
import pytest

from voice import corpus
from voice.goertzel import FRAME_BYTES, dbfs_power
from voice.tones import SIT_CODES, Tone


def test_tone_cases_cover_every_tone_and_the_non_findings() -> None:
    cases = corpus.tone_cases()
    assert {case.expected for case in cases} == set(Tone) | {None}
    assert {case.name for case in cases if case.expected is None} == {
        "ringback", "dial tone", "silence"}


def test_signals_have_the_asked_lengths_and_levels() -> None:
    assert len(corpus.sit(SIT_CODES[0])) == 8 * (274 + 274 + 380)
    assert len(corpus.dtmf("12", 60, 40)) == 8 * 200
    assert corpus.active_power(corpus.tone(1000.0, 500, -20.0)) == pytest.approx(
        dbfs_power(-20.0), rel=0.02)
    busy = corpus.cadence([(350, 350)], 3500)
    assert corpus.active_power(busy) == pytest.approx(dbfs_power(-20.0), rel=0.05)


def test_noise_is_added_at_the_asked_snr_of_the_sounding_part() -> None:
    busy = corpus.cadence([(350, 350)], 7000, level_dbfs=-25.0)
    noisy = corpus.with_noise(busy, 8.0, np.random.default_rng(0))
    noise = noisy - busy
    assert 10 * np.log10(corpus.active_power(busy) / np.mean(noise**2)) == pytest.approx(
        8.0, abs=0.1)


def test_pcm_and_frames() -> None:
    data = corpus.pcm(np.array([1e6, -1e6, 0.4, 1000.0]))
    assert np.frombuffer(data, "<i2").tolist() == [32767, -32768, 0, 1000]
    assert corpus.pcm(np.array([1000.0]), "ulaw") != corpus.pcm(np.array([1000.0]))
    cut = corpus.frames(b"\x01" * (FRAME_BYTES + 3))
    assert [len(frame) for frame in cut] == [FRAME_BYTES, FRAME_BYTES]
    assert cut[1].rstrip(b"\x00") == b"\x01" * 3
