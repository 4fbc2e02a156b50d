"""The harness's sounds, as the media workers play them: 8 kHz, 16-bit signed, mono PCM.

- `speak`: text spoken by espeak-ng (voice `cmn` when the text has Chinese characters,
  else `en`), resampled to 8 kHz with numpy, trimmed of its leading and trailing silence,
  and cached per text and voice as a WAV file, so a rerun does not synthesise again.
- `read_wav`: a recording in any PCM WAV shape (rate, width, channels), as 8 kHz mono.
- `tone`, `silence`, `sit_tones`, `ringback`, `busy_tone`, `beep`: signalling sounds made
  with numpy.

Samples travel as numpy int16 arrays (`Samples`) while a sound is composed, and as bytes
(`to_pcm`) once it is finished. Failures are `UsageError`s that name the file or the tool.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from dialer.errors import UsageError
from voice import wavfile
from voice.errors import AudioFileError

Samples = npt.NDArray[np.int16]

SAMPLE_RATE: Final = 8000
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CACHE_VERSION = "1"  # bump when the synthesis or its post-processing changes
_QUIET = 400  # |sample| below this counts as silence when trimming speech (about -38 dBFS)
_EDGE_S = 0.03  # silence kept before and after trimmed speech
_LEVEL = 0.25  # tones at about -12 dBFS

#: SIT tone segments (ANSI T1.209 / ITU-T E.180): (Hz, seconds) per class. The first two
#: tones are short (276 ms) or long (380 ms); the third is always long.
_SHORT, _LONG = 0.276, 0.380
SIT_CLASSES: Final[dict[str, tuple[tuple[float, float], ...]]] = {
    "intercept": ((913.8, _SHORT), (1370.6, _SHORT), (1776.7, _LONG)),
    "vacant_code": ((985.2, _LONG), (1370.6, _SHORT), (1776.7, _LONG)),
    "no_circuit": ((985.2, _LONG), (1428.5, _LONG), (1776.7, _LONG)),
    "reorder": ((913.8, _SHORT), (1428.5, _LONG), (1776.7, _LONG)),
    "ineffective_other": ((913.8, _LONG), (1428.5, _SHORT), (1776.7, _LONG)),
}


def default_cache_dir() -> Path:
    """Where synthesised speech is kept between runs ($XDG_CACHE_HOME/dialer/harness-tts)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dialer" / "harness-tts"


def voice_for(text: str) -> str:
    """espeak-ng's voice for the text: Mandarin when it has Chinese characters."""
    return "cmn" if _HAN.search(text) else "en"


def speak(text: str, cache_dir: Path) -> Samples:
    """`text` spoken at 8 kHz, from the cache when it was spoken before."""
    voice = voice_for(text)
    key = hashlib.sha256(f"{_CACHE_VERSION}\0{voice}\0{text}".encode()).hexdigest()[:32]
    cached = cache_dir / f"{key}.wav"
    if cached.is_file():
        return read_wav(cached)
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise UsageError("espeak-ng is not installed (Debian package espeak-ng); the harness "
                         "speaks its phones' text with it (or give the phones a WAV 'file')")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        raw = Path(scratch) / "espeak.wav"
        try:
            subprocess.run([espeak, "-v", voice, "-w", str(raw), "--", text], check=True,
                           capture_output=True, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise UsageError(f"espeak-ng failed to speak a phone's text ({voice}): "
                             f"{_stderr_of(exc)}") from None
        samples = trim(read_wav(raw))
        finished = Path(scratch) / "done.wav"
        write_wav(finished, samples)
        os.replace(finished, cached)  # atomic: a concurrent run sees all of it or none
    return samples


def _stderr_of(exc: subprocess.CalledProcessError | subprocess.TimeoutExpired) -> str:
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"no result in {exc.timeout:g} s"
    text = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
    return text.splitlines()[-1] if text else f"exit code {exc.returncode}"


def read_wav(path: Path) -> Samples:
    """A PCM WAV file of any rate, width (8-32 bit) and channel count, as 8 kHz mono."""
    try:
        samples, rate = wavfile.read_wav(path)
    except AudioFileError as exc:
        raise UsageError(str(exc)) from None
    return resample(samples, rate)


def resample(samples: npt.NDArray[np.float64] | Samples, rate: int) -> Samples:
    """Samples at `rate` Hz as 8 kHz int16: low-passed below 3.6 kHz first when coming
    down (a windowed-sinc filter, so nothing above 4 kHz folds back), then interpolated."""
    values = np.asarray(samples, dtype=np.float64)
    if rate != SAMPLE_RATE and len(values):
        if rate > SAMPLE_RATE:
            values = np.convolve(values, _low_pass(3600 / rate), mode="same")
        count = len(values) * SAMPLE_RATE // rate
        values = np.interp(np.arange(count) * (rate / SAMPLE_RATE), np.arange(len(values)),
                           values)
    clipped: Samples = np.clip(np.round(values), -32768, 32767).astype(np.int16)
    return clipped


def _low_pass(cutoff: float, taps: int = 63) -> npt.NDArray[np.float64]:
    """A Hamming-windowed sinc low-pass; `cutoff` as a fraction of the sample rate."""
    n = np.arange(taps) - (taps - 1) / 2
    kernel = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
    normalised: npt.NDArray[np.float64] = kernel / kernel.sum()
    return normalised


def trim(samples: Samples) -> Samples:
    """Speech without its leading and trailing silence (a little margin kept)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) >= _QUIET)
    if not len(loud):
        return samples
    margin = int(_EDGE_S * SAMPLE_RATE)
    return samples[max(0, loud[0] - margin):loud[-1] + 1 + margin]


def tone(*hertz: float, seconds: float, level: float = _LEVEL) -> Samples:
    """A steady tone (several frequencies are summed), with 5 ms ramps against clicks."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave_ = sum((np.sin(2 * np.pi * f * t) for f in hertz), np.zeros_like(t)) / max(1, len(hertz))
    ramp = min(len(t) // 2, int(0.005 * SAMPLE_RATE))
    if ramp:
        envelope = np.ones_like(t)
        envelope[:ramp] = np.linspace(0, 1, ramp)
        envelope[-ramp:] = np.linspace(1, 0, ramp)
        wave_ = wave_ * envelope
    shaped: Samples = np.round(wave_ * level * 32767).astype(np.int16)
    return shaped


def silence(seconds: float) -> Samples:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.int16)


def sit_tones(sit_class: str) -> Samples:
    """The three SIT tone segments of a class (`SIT_CLASSES`), back to back."""
    return join(*(tone(hertz, seconds=seconds) for hertz, seconds in SIT_CLASSES[sit_class]))


def ringback(seconds: float) -> Samples:
    """In-band ringback as Chinese carriers send it: 450 Hz, 1 s on, 4 s off."""
    cycle = join(tone(450, seconds=1.0), silence(4.0))
    repeats = int(seconds // 5) + 1
    whole: Samples = np.tile(cycle, repeats)
    return whole[:int(seconds * SAMPLE_RATE)]


def busy_tone(cycles: int = 4) -> Samples:
    """The Chinese busy tone: 450 Hz, 350 ms on and 350 ms off, `cycles` times."""
    return join(*[join(tone(450, seconds=0.35), silence(0.35)) for _ in range(cycles)])


def beep() -> Samples:
    """The voicemail beep: 1 kHz for half a second."""
    return tone(1000, seconds=0.5)


def join(*parts: Samples) -> Samples:
    if not parts:
        return silence(0)
    joined: Samples = np.concatenate(parts).astype(np.int16)
    return joined


def to_pcm(samples: Samples) -> bytes:
    """Little-endian 16-bit bytes, as `LoadPrompt` and WAV files take them."""
    return samples.astype("<i2").tobytes()


def seconds_of(samples: Samples) -> float:
    return len(samples) / SAMPLE_RATE


def write_wav(path: Path, samples: Samples) -> None:
    """An 8 kHz 16-bit mono WAV file."""
    with wave.open(str(path), "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(2)
        target.setframerate(SAMPLE_RATE)
        target.writeframes(to_pcm(samples))
