"""G.711 companding in numpy: mu-law (PCMU) and A-law (PCMA), encode and decode.

Calls cross the network as 8-bit G.711 codes; what the voice pipeline hears has been
through one encode and decode. Tests and benchmarks put their synthetic signals through
`through_ulaw` / `through_alaw` so that detectors meet the same quantisation noise.
The algorithms are the reference ones (ITU-T G.711, as in the classic Sun `g711.c`):
mu-law on 14-bit magnitudes with a bias of 33, A-law on 13-bit magnitudes; inputs are
16-bit samples (any integer or float array, clipped to the int16 range).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]
Codes = npt.NDArray[np.uint8]

_ULAW_BIAS: Final = 0x84
_ULAW_CLIP: Final = 8159  # on 14-bit magnitudes


def _as_int32(samples: npt.ArrayLike) -> npt.NDArray[np.int32]:
    values = np.clip(np.round(np.asarray(samples, dtype=np.float64)), -32768, 32767)
    return values.astype(np.int32)


def _segment(magnitude: npt.NDArray[np.int32], lowest_bits: int) -> npt.NDArray[np.int32]:
    """The G.711 segment: how many doublings `magnitude` lies at or above 2**lowest_bits
    (0-7; 8 for a mu-law magnitude beyond the last segment)."""
    bits = np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32)
    return np.maximum(bits - lowest_bits + 1, 0)


def ulaw_encode(samples: npt.ArrayLike) -> Codes:
    """16-bit samples as mu-law codes."""
    values = _as_int32(samples) >> 2  # 14-bit
    negative = values < 0
    magnitude = np.minimum(np.where(negative, -values, values), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = _segment(magnitude, 6)
    inside = np.minimum(segment, 7)
    code = np.where(segment > 7, 0x7F, (inside << 4) | ((magnitude >> (inside + 1)) & 0x0F))
    mask = np.where(negative, 0x7F, 0xFF)
    encoded: Codes = ((code ^ mask) & 0xFF).astype(np.uint8)
    return encoded


def ulaw_decode(codes: npt.ArrayLike) -> Samples:
    """Mu-law codes as 16-bit samples."""
    inverted = ~np.asarray(codes, dtype=np.int32) & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    samples: Samples = np.where(inverted & 0x80, -magnitude, magnitude).astype(np.int16)
    return samples


def alaw_encode(samples: npt.ArrayLike) -> Codes:
    """16-bit samples as A-law codes."""
    values = _as_int32(samples) >> 3  # 13-bit
    positive = values >= 0
    magnitude = np.where(positive, values, -values - 1)
    segment = _segment(magnitude, 5)  # magnitudes stop at 0xFFF: segments 0-7
    shift = np.where(segment < 2, 1, segment)
    code = (segment << 4) | ((magnitude >> shift) & 0x0F)
    mask = np.where(positive, 0xD5, 0x55)
    encoded: Codes = ((code ^ mask) & 0xFF).astype(np.uint8)
    return encoded


def alaw_decode(codes: npt.ArrayLike) -> Samples:
    """A-law codes as 16-bit samples."""
    value = np.asarray(codes, dtype=np.int32) ^ 0x55
    segment = (value & 0x70) >> 4
    base = (value & 0x0F) << 4
    magnitude = np.where(segment == 0, base + 8, (base + 0x108) << np.maximum(segment - 1, 0))
    samples: Samples = np.where(value & 0x80, magnitude, -magnitude).astype(np.int16)
    return samples


def through_ulaw(samples: npt.ArrayLike) -> Samples:
    """What a mu-law (PCMU) call delivers of `samples`."""
    return ulaw_decode(ulaw_encode(samples))


def through_alaw(samples: npt.ArrayLike) -> Samples:
    """What an A-law (PCMA) call delivers of `samples`."""
    return alaw_decode(alaw_encode(samples))
