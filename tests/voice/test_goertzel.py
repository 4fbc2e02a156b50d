"""Goertzel bin powers as shares of block energy, and frames cut from any byte chunking."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voice import corpus
from voice.goertzel import FRAME_SAMPLES, FrameSplitter, Goertzel, mean_square


def test_relative_power_is_the_share_of_energy_at_each_frequency() -> None:
    bank = Goertzel([697.0, 1209.0, 1776.7])
    assert bank.relative_power(corpus.tone(1776.7, 20, -20.0, ramp_ms=0)) == pytest.approx(
        [0, 0, 1], abs=0.03)
    pair = corpus.tone([697.0, 1209.0], 20, -20.0, ramp_ms=0)
    assert bank.relative_power(pair) == pytest.approx([0.5, 0.5, 0], abs=0.03)
    assert bank.relative_power(np.zeros(FRAME_SAMPLES)).tolist() == [0, 0, 0]
    noise = np.random.default_rng(0).standard_normal((400, FRAME_SAMPLES)) * 1000
    assert bank.relative_power(noise).mean(axis=0) == pytest.approx(2 / FRAME_SAMPLES, rel=0.15)


def test_blocks_are_analysed_together_and_checked() -> None:
    bank = Goertzel([450.0, 1000.0])
    blocks = np.stack([corpus.tone(450.0, 20, ramp_ms=0), corpus.tone(1000.0, 20, ramp_ms=0)])
    assert bank.relative_power(blocks).round(1).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert mean_square(blocks).shape == (2,)
    with pytest.raises(ValueError, match="expected 160"):
        bank.power(np.zeros(80))
    with pytest.raises(ValueError, match="at least one frequency"):
        Goertzel([])


@given(st.lists(st.integers(min_value=0, max_value=700), max_size=12))
def test_frames_do_not_depend_on_how_the_bytes_arrive(cuts: list[int]) -> None:
    data = np.arange(1000, dtype="<i2").tobytes()
    splitter = FrameSplitter()
    pieces, start = [], 0
    for cut in sorted(cuts):
        pieces.append(splitter.split(data[start:cut]))
        start = max(start, cut)
    pieces.append(splitter.split(data[start:]))
    frames = np.concatenate(pieces)
    assert frames.shape == (6, FRAME_SAMPLES)
    assert frames.ravel().tolist() == list(range(6 * FRAME_SAMPLES))
