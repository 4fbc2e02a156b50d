"""Sample-rate conversion for audio that arrives at another rate than the 8 kHz line."""

from __future__ import annotations

from math import ceil, gcd

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]


def resample(samples: Samples, rate_in: int, rate_out: int = 8000) -> Samples:
    """Band-limited resampling by FFT, with a zero-phase anti-aliasing low-pass.

    The filter is flat to 90 % of the lower Nyquist frequency and falls to zero at it along
    a raised cosine (3.6-4 kHz for 8 kHz output), so nothing above the new Nyquist
    frequency folds back. The signal is zero-padded (at least 50 ms) to a length whose FFT
    is fast and whose ratio to the output length is exact; the padding also keeps the
    filter's ringing from wrapping around onto the start.
    """
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.float32)
    common = gcd(rate_in, rate_out)
    up, down = rate_out // common, rate_in // common
    blocks = _fast_length(ceil((samples.size + rate_in // 20) / down))
    n_in, n_out = blocks * down, blocks * up
    spectrum = np.fft.rfft(samples, n=n_in)
    kept = min(spectrum.size, n_out // 2 + 1)
    nyquist = min(rate_in, rate_out) / 2
    freqs = np.arange(kept) * (rate_in / n_in)
    ramp = np.clip((freqs - 0.9 * nyquist) / (0.1 * nyquist), 0.0, 1.0)
    out_spectrum = np.zeros(n_out // 2 + 1, np.complex128)
    out_spectrum[:kept] = spectrum[:kept] * (0.5 + 0.5 * np.cos(np.pi * ramp))
    out = np.fft.irfft(out_spectrum, n=n_out) * (n_out / n_in)
    return out[: ceil(samples.size * up / down)].astype(np.float32)


def _fast_length(minimum: int) -> int:
    """The smallest 2^a * 3^b * 5^c not below `minimum` (lengths numpy's FFT does fast)."""
    best = 1 << (minimum - 1).bit_length()
    power3 = 1
    while power3 < best:
        odd = power3
        while odd < best:
            best = min(best, odd << (-(-minimum // odd) - 1).bit_length())
            odd *= 5
        power3 *= 3
    return best
