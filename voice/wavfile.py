"""Reading recordings: a PCM WAV file of any rate, width (8-32 bit) and channel count.

One reader for every recording the dialer takes in (announcement libraries, the prompts a
script plays, the harness phones' sounds); each caller turns `AudioFileError` into its own
kind of error (a library error, a config error, a usage error).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voice.errors import AudioFileError
from voice.resample import resample

FloatArray = npt.NDArray[np.float64]
LINE_RATE = 8000


def read_wav(path: str | Path) -> tuple[FloatArray, int]:
    """The file's samples mixed to mono, in the int16 range, and its sample rate."""
    try:
        with wave.open(str(path), "rb") as source:
            rate, width = source.getframerate(), source.getsampwidth()
            channels = source.getnchannels()
            data = source.readframes(source.getnframes())
    except FileNotFoundError:
        raise AudioFileError(f"{path} is missing: no such file") from None
    except OSError as exc:
        raise AudioFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (wave.Error, EOFError) as exc:
        raise AudioFileError(f"{path} is not a readable PCM WAV file ({exc})") from None
    samples = _scaled(data, width, path)
    mono = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    return mono, rate


def read_wav_8k(path: str | Path) -> FloatArray:
    """The file's samples mixed to mono and resampled to 8 kHz, in the int16 range."""
    mono, rate = read_wav(path)
    return resample(mono.astype(np.float32), rate, LINE_RATE).astype(np.float64)


def _scaled(data: bytes, width: int, path: str | Path) -> FloatArray:
    """Integer PCM samples scaled to the int16 range."""
    if width == 1:  # unsigned 8-bit
        return (np.frombuffer(data, np.uint8).astype(np.float64) - 128) * 256
    if width == 2:
        return np.frombuffer(data, "<i2").astype(np.float64)
    if width == 3:
        triples = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        values = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        return (np.where(values >= 1 << 23, values - (1 << 24), values) / 256).astype(np.float64)
    if width == 4:
        return np.frombuffer(data, "<i4").astype(np.float64) / 65536
    raise AudioFileError(f"{path}: unsupported WAV sample width ({8 * width} bits)")
