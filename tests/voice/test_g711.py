"""G.711 mu-law and A-law against the reference codec's values."""

from __future__ import annotations

import numpy as np

from voice import corpus
from voice.g711 import (
    alaw_decode,
    alaw_encode,
    through_alaw,
    through_ulaw,
    ulaw_decode,
    ulaw_encode,
)

SAMPLES = np.array([-32768, -8031, -1000, -100, -1, 0, 1, 100, 1000, 8031, 32767])
# What the reference codec (Sun's g711.c, as CPython's audioop had it) gives for SAMPLES.
ULAW = [0x00, 0x20, 0x4E, 0x72, 0x7E, 0xFF, 0xFF, 0xF2, 0xCE, 0xA0, 0x80]
ALAW = [0x2A, 0x0A, 0x7A, 0x53, 0x55, 0xD5, 0xD5, 0xD3, 0xFA, 0x8A, 0xAA]
ULAW_DECODED = [-32124, -7932, -988, -104, -8, 0, 0, 104, 988, 7932, 32124]
ALAW_DECODED = [-32256, -8064, -1008, -104, -8, 8, 8, 104, 1008, 8064, 32256]


def test_codes_match_the_reference_codec() -> None:
    assert ulaw_encode(SAMPLES).tolist() == ULAW
    assert alaw_encode(SAMPLES).tolist() == ALAW
    assert ulaw_decode(ULAW).tolist() == ULAW_DECODED
    assert alaw_decode(ALAW).tolist() == ALAW_DECODED


def test_decoded_values_are_fixed_points_and_codes_are_monotonic() -> None:
    codes = np.arange(256)
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        levels = decode(codes)
        assert (decode(encode(levels)) == levels).all()
        ramp = np.arange(-32768, 32768, 7)
        assert (np.diff(decode(encode(ramp)).astype(np.int32)) >= 0).all()


def test_out_of_range_and_float_input_is_clipped_and_rounded() -> None:
    assert ulaw_encode([1e9, -1e9, 999.6]).tolist() == ulaw_encode([32767, -32768, 1000]).tolist()
    assert alaw_encode([1e9, -1e9]).tolist() == alaw_encode([32767, -32768]).tolist()


def test_quantisation_noise_is_about_38_db_below_a_speech_level_tone() -> None:
    tone = corpus.tone(1004.0, 1000, level_dbfs=-20.0)
    for through in (through_ulaw, through_alaw):
        error = through(tone).astype(np.float64) - np.round(tone)
        snr = 10 * np.log10(np.mean(tone**2) / np.mean(error**2))
        assert snr > 35.0
