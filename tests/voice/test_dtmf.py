"""In-band DTMF: every key through G.711 and noise, fast sequences, held keys, and no
presses on speech or silence."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import pytest

from voice import corpus
from voice.dtmf import COLUMNS_HZ, KEYS, ROWS_HZ, DtmfDetector, KeyPressed
from voice.goertzel import FRAME_BYTES

Signal = npt.NDArray[np.float64]


def presses(signal: Signal, law: Literal["ulaw", "alaw"] | None = "ulaw",
            chunk: int = FRAME_BYTES) -> list[KeyPressed]:
    detector = DtmfDetector()
    data = corpus.pcm(signal, law)
    pressed: list[KeyPressed] = []
    for start in range(0, len(data), chunk):
        pressed += detector.feed(data[start:start + chunk])
    return pressed


def keys(signal: Signal, law: Literal["ulaw", "alaw"] | None = "ulaw") -> str:
    return "".join(press.key for press in presses(signal, law))


def noisy(signal: Signal, snr_db: float, seed: int) -> Signal:
    return corpus.with_noise(signal, snr_db, np.random.default_rng(seed))


@pytest.mark.parametrize("key", KEYS)
def test_every_key_at_telephone_levels_twists_and_noise(key: str) -> None:
    levels_and_twists = [(level, twist) for level in (-28.0, -18.0, -9.0)
                         for twist in (-6.0, 0.0, 3.0)]
    for seed, (level_dbfs, twist_db) in enumerate(levels_and_twists):
        signal = corpus.join(corpus.silence(100), corpus.dtmf(key, 80, 100, level_dbfs,
                                                              twist_db))
        assert keys(noisy(signal, 20.0, seed)) == key, (level_dbfs, twist_db)
    assert keys(noisy(corpus.dtmf(key, 50, 50), 15.0, seed=1), "alaw") == key


@pytest.mark.parametrize(("on_ms", "off_ms", "snr_db"), [(60, 60, 15.0), (60, 60, 20.0),
                                                         (40, 40, 20.0), (40, 40, None)])
def test_fast_sequences_are_decoded_exactly(on_ms: int, off_ms: int,
                                            snr_db: float | None) -> None:
    sequence = "0123456789*#ABCD"
    for seed in range(4):
        rng = np.random.default_rng(seed)
        signal = corpus.join(corpus.silence(rng.uniform(0, 20)),
                             corpus.dtmf(sequence, on_ms, off_ms, -15.0, rng.uniform(-4, 2)))
        if snr_db is not None:
            signal = corpus.with_noise(signal, snr_db, rng)
        assert keys(signal) == sequence, f"seed {seed}"


def test_press_times_are_where_the_tones_begin() -> None:
    signal = corpus.join(corpus.silence(107), corpus.dtmf("159", 60, 140))
    assert [(p.key, p.at_ms) for p in presses(noisy(signal, 20.0, 0))] == [
        ("1", pytest.approx(107, abs=12)), ("5", pytest.approx(307, abs=12)),
        ("9", pytest.approx(507, abs=12))]


def test_a_held_key_is_reported_once_and_a_repeated_key_each_time() -> None:
    for seed in range(3):
        assert keys(noisy(corpus.dtmf("5", 3000, 100, -20.0), 15.0, seed)) == "5"
        assert keys(noisy(corpus.dtmf("1111", 60, 60), 15.0, seed)) == "1111"
        assert keys(noisy(corpus.dtmf("0000", 40, 40), 20.0, seed)) == "0000"
        broken = corpus.join(corpus.dtmf("6", 150, 10), corpus.dtmf("6", 150, 100))
        assert keys(noisy(broken, 20.0, seed)) == "6"  # a 10 ms break is not a release


def test_too_short_or_off_frequency_tones_are_not_keys() -> None:
    assert keys(corpus.join(corpus.dtmf("4", 20, 200))) == ""
    row, column = ROWS_HZ[1], COLUMNS_HZ[1]
    for offset in (0.985, 1.015):  # within Q.24's +-1.5 % : accepted
        tone = corpus.tone(row * offset, 80, -15) + corpus.tone(column * offset, 80, -15)
        assert keys(corpus.join(tone, corpus.silence(100))) == "5"
    for offset in (0.94, 1.06):  # well outside: rejected
        tone = corpus.tone(row * offset, 80, -15) + corpus.tone(column * offset, 80, -15)
        assert keys(corpus.join(tone, corpus.silence(100))) == ""
    single = corpus.tone(ROWS_HZ[2], 200, -15)
    assert keys(single) == ""


def test_speech_silence_noise_and_carrier_tones_press_nothing(
        speech: dict[str, Signal]) -> None:
    rng = np.random.default_rng(11)
    for name, clip in speech.items():
        assert keys(clip) == "", name
        assert keys(corpus.with_noise(clip, 15.0, rng), "alaw") == "", name
    assert keys(corpus.vowels(30_000, rng)) == ""
    assert keys(corpus.silence(2000)) == ""
    assert keys(corpus.with_noise(corpus.silence(2000), 0.0, rng,
                                  reference_power=1e6)) == ""
    for case in corpus.tone_cases():
        assert keys(case.signal) == "", case.name


def test_chunking_does_not_matter() -> None:
    signal = noisy(corpus.dtmf("72*#", 50, 70), 20.0, 3)
    whole = presses(signal, chunk=10**9)
    assert [p.key for p in whole] == list("72*#")
    assert presses(signal, chunk=77) == whole == presses(signal)
