"""Fixtures for the voice tests: real synthesised speech, for the never-fire-on-speech tests.

espeak-ng speaks a few English and Mandarin texts at several pitches (so that voice
harmonics land on many frequencies), once per session; the WAVs are resampled to 8 kHz by
the harness's reader.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from dialer.harness.audio import read_wav

TEXTS = {
    "en": "Hello? Yes, speaking. Who is calling please? I am sorry, the number you have "
          "dialled is not in service. Please check the number and dial again. Four, five, "
          "six, nine, one, oh, zero.",
    "cmn": "您好，您拨打的号码是空号，请查证后再拨。您拨打的电话正在通话中，请稍后再拨。"
           "喂？你好，请问找哪位？",
}
VOICES = [("en", 20), ("en", 70), ("en+f3", 50), ("cmn", 30), ("cmn", 80)]


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, npt.NDArray[np.float64]]:
    """Spoken clips at 8 kHz (float samples in the int16 scale), by voice and pitch."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng is not installed (Debian package espeak-ng); the voice tests "
                    "need real speech", pytrace=False)
    folder = tmp_path_factory.mktemp("speech")
    clips = {}
    for voice, pitch in VOICES:
        path = folder / f"{voice}-{pitch}.wav"
        text = TEXTS[voice.split("+")[0]]
        subprocess.run([espeak, "-v", voice, "-p", str(pitch), "-w", str(path), "--", text],
                       check=True, capture_output=True, timeout=60)
        clips[path.stem] = read_wav(Path(path)).astype(np.float64)
    return clips
