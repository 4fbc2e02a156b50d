"""The one audio format of the media workers: 8 kHz, 16-bit signed little-endian, mono.

Calls are bridged at 8 kHz (PCMU/PCMA on the wire), so a frame is 20 ms of 160 samples,
320 bytes. Prompts come as a WAV file in that format or as raw samples (any other file
name); anything else is refused with a `SipError`, never resampled behind the caller's back.
"""

from __future__ import annotations

import wave
from pathlib import Path

from lines.sip.errors import SipError

SAMPLE_RATE = 8000
SAMPLE_BYTES = 2
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * SAMPLE_BYTES  # 320
#: Frames per call-port frame: the bridge runs at 20 ms, but each call's port takes and
#: gives 60 ms at a time (the bridge buffers the difference), a third of the calls from
#: pjmedia's clock thread into Python, which are most of a call's CPU. Handlers still see
#: 20 ms frames; audio heard reaches them up to 40 ms later (`lines.sip.media`).
PORT_FRAMES = 3


def split_frames(pcm: bytes) -> list[bytes]:
    """Whole frames, the last one padded with silence."""
    frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
    if frames and len(frames[-1]) < FRAME_BYTES:
        frames[-1] = frames[-1].ljust(FRAME_BYTES, b"\x00")
    return frames


def read_pcm(path: str | Path) -> bytes:
    """The samples of a prompt file: a WAV in 8 kHz 16-bit mono, or raw samples."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".wav":
            return _read_wav(path)
        data = path.read_bytes()
    except OSError as exc:
        raise SipError(f"cannot read prompt {path}: {exc.strerror or exc}") from exc
    if len(data) % SAMPLE_BYTES:
        raise SipError(f"prompt {path}: raw 16-bit PCM has an even number of bytes")
    return data


def _read_wav(path: Path) -> bytes:
    try:
        with wave.open(str(path), "rb") as wav:
            shape = (wav.getframerate(), wav.getsampwidth(), wav.getnchannels())
            if shape != (SAMPLE_RATE, SAMPLE_BYTES, 1):
                raise SipError(
                    f"prompt {path} is {shape[0]} Hz, {8 * shape[1]}-bit, {shape[2]} channel(s);"
                    f" the media workers play 8000 Hz 16-bit mono"
                )
            return wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise SipError(f"prompt {path} is not a readable WAV file: {exc}") from exc


def duration_s(pcm: bytes) -> float:
    return len(pcm) / (SAMPLE_RATE * SAMPLE_BYTES)
