"""espeak-ng as a fallback TTS voice, for languages no packaged piper voice speaks.

No piper voice for Chinese comes in a package this project can depend on, and Chinese
scripts must still work out of the box: Debian's espeak-ng speaks Mandarin (`cmn`),
Cantonese (`yue`), Korean and a hundred others, robotically but intelligibly. A voice
named `espeak:<espeak voice>` (e.g. `espeak:cmn`, `espeak:en-us`) is such a voice; `Tts`
picks `espeak:<family>` for a script whose language no piper voice speaks (see
`voice.tts.Tts.pick_voice`). It offers what `voice.tts.Voice` offers: `info`,
`check_text`, `synthesize`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Final

import numpy as np

from voice.errors import VoiceLoadError, VoiceNotFound
from voice.resample import Samples
from voice.voices import VoiceInfo, check_writing

PREFIX: Final = "espeak:"
WORDS_PER_MINUTE: Final = 175  # espeak-ng's own default, our speed 1.0
#: The espeak-ng voice for a language family, where its name differs from the family code.
FAMILY_VOICES: Final = {"zh": "cmn", "en": "en-us"}
_TIMEOUT_S: Final = 60


class EspeakVoice:
    """One espeak-ng voice. Stateless: safe to share between threads."""

    def __init__(self, voice: str, binary: Path, version: str) -> None:
        family = voice.split("-")[0].split("+")[0].lower()
        family = next((fam for fam, name in FAMILY_VOICES.items() if name == family), family)
        self._voice, self._binary = voice, binary
        self.info = VoiceInfo(name=f"{PREFIX}{voice}", model_path=binary, language=voice,
                              family=family, sample_rate=22050,
                              fingerprint=hashlib.sha256(f"{voice}|{version}".encode())
                              .hexdigest())

    def check_text(self, text: str) -> None:
        check_writing(self.info, text)

    def synthesize(self, text: str, *, speed: float = 1.0) -> Samples:
        """Float samples in [-1, 1] at 22,050 Hz, peaking at 1.0."""
        self.check_text(text)
        command = [str(self._binary), "-v", self._voice, "-s", str(round(WORDS_PER_MINUTE * speed)),
                   "--stdout", "--", text]
        try:
            done = subprocess.run(command, capture_output=True, check=True, timeout=_TIMEOUT_S)
            with wave.open(io.BytesIO(done.stdout), "rb") as wav:
                rate, raw = wav.getframerate(), wav.readframes(wav.getnframes())
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, wave.Error,
                EOFError) as exc:
            raise VoiceLoadError(f"espeak-ng voice {self._voice} failed: {exc}") from exc
        if rate != self.info.sample_rate:
            raise VoiceLoadError(f"espeak-ng spoke at {rate} Hz, expected 22050")
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        return (samples / peak if peak > 0 else samples).astype(np.float32)


@functools.cache
def load_espeak(voice: str) -> EspeakVoice:
    """The espeak-ng voice `voice` ("cmn", "en-us", ...), checked once per process."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise VoiceNotFound("espeak-ng is not installed (Debian package espeak-ng); it speaks "
                            f"the languages no piper voice here speaks ({PREFIX}{voice})")
    listed = subprocess.run([binary, "--voices"], capture_output=True, text=True, check=False,
                            timeout=_TIMEOUT_S).stdout
    names = {column for line in listed.splitlines()[1:] for column in line.split()[1:5]}
    if voice.split("+")[0] not in names:
        raise VoiceNotFound(f"espeak-ng has no voice {voice!r} (see `espeak-ng --voices`)")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             check=False, timeout=_TIMEOUT_S).stdout.strip()
    return EspeakVoice(voice, Path(binary), version)
