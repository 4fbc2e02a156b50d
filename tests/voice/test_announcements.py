"""Carrier announcements recognised against a library: the shipped recordings through
G.711, noise, level changes, start offsets, lost frames and ringback; announcements the
library does not hold (other texts in the library's voices, the library's texts in other
voices and at other speeds) and tones, which must give nothing; and the library's loading
errors.

Speech is real espeak-ng audio (scripts/make_announcement_library.py's `speak`), no mocks.
"""

from __future__ import annotations

import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from rules.signals import Announcement
from scripts.make_announcement_library import CARRIER_A, CARRIER_B, Voice, speak
from voice.announcements import (
    INDEX_NAME,
    LIBRARY_DIR,
    AnnouncementHeard,
    AnnouncementLibrary,
    AnnouncementMatcher,
    default_library,
    read_index,
    read_recording,
)
from voice.corpus import frames, pcm, ringback, tone, with_noise
from voice.errors import AnnouncementLibraryError, VoiceError
from voice.goertzel import FRAME_BYTES, SAMPLE_RATE
from voice.resample import resample

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed (Debian package espeak-ng)")

SHIPPED = read_index(LIBRARY_DIR / INDEX_NAME)


def looped(signal: np.ndarray, offset_s: float, seconds: float = 7.0, gap_s: float = 1.0
           ) -> np.ndarray:
    """`signal` played in a loop with `gap_s` of silence between, from `offset_s` on."""
    cycle = np.concatenate([signal, np.zeros(round(gap_s * SAMPLE_RATE))])
    start = round(offset_s * SAMPLE_RATE)
    whole = np.tile(cycle, int((start + seconds * SAMPLE_RATE) // len(cycle)) + 2)
    played: np.ndarray = whole[start:start + round(seconds * SAMPLE_RATE)]
    return played


def on_a_line(signal: np.ndarray, *, snr_db: float = 15.0, gain_db: float = 0.0,
              law: str = "ulaw", seed: int = 0, lead: np.ndarray | None = None,
              lose: float = 0.0) -> bytes:
    """What a call delivers of `signal`: level change, white noise `snr_db` under the
    speech, G.711, `lead` (e.g. ringback) before it, a share of frames lost."""
    rng = np.random.default_rng(seed)
    speech = signal * 10 ** (gain_db / 20)
    noisy = with_noise(speech, snr_db, rng)
    if lead is not None:
        noisy = np.concatenate([with_noise(lead, snr_db, rng, reference_power=float(
            np.mean(speech[np.abs(speech) > 100] ** 2))), noisy])
    data = pcm(noisy, "ulaw" if law == "ulaw" else "alaw")
    return b"".join(f for f in frames(data) if rng.random() >= lose)


def hear(data: bytes, library: AnnouncementLibrary | None = None, chunk: int = FRAME_BYTES
         ) -> AnnouncementHeard | None:
    matcher = AnnouncementMatcher(library or default_library())
    found = [h for i in range(0, len(data), chunk) for h in matcher.feed(data[i:i + chunk])]
    assert len(found) <= 1, "a matcher reports at most once"
    return found[0] if found else None


# The shipped library, found


def test_the_shipped_library_loads_quickly_with_all_five_meanings() -> None:
    default_library()  # imports and caches warmed
    began = time.perf_counter()
    library = AnnouncementLibrary.load(LIBRARY_DIR)
    assert time.perf_counter() - began < 1.0
    assert len(library) == 10
    assert {r.meaning for r in library.recordings} == set(Announcement) - {Announcement.UNKNOWN}
    assert {r.carrier for r in library.recordings} == {CARRIER_A.name, CARRIER_B.name}
    assert default_library() is default_library()


@pytest.mark.parametrize(("recording", "file"), SHIPPED, ids=[r.name for r, _ in SHIPPED])
def test_each_shipped_recording_is_found_within_3_s_of_its_start(recording: object,
                                                                  file: str) -> None:
    samples = read_recording(LIBRARY_DIR / file)
    heard = hear(on_a_line(looped(samples, 0.0), snr_db=20, law="alaw", seed=1))
    assert heard is not None
    assert (heard.recording, heard.announcement) == (recording.name, recording.meaning)  # type: ignore[attr-defined]
    assert heard.at_ms <= 3000
    assert 0.5 <= heard.confidence <= 1.0


@pytest.mark.parametrize(("recording", "file"), SHIPPED, ids=[r.name for r, _ in SHIPPED])
def test_each_shipped_recording_is_found_through_g711_noise_and_an_offset(
        recording: object, file: str) -> None:
    samples = read_recording(LIBRARY_DIR / file)
    offset = 0.55 * len(samples) / SAMPLE_RATE + 0.007  # mid-recording, mid-frame
    for seed, (snr, gain, law) in enumerate([(10, 6, "ulaw"), (15, -10, "alaw"),
                                             (20, 10, "ulaw")]):
        heard = hear(on_a_line(looped(samples, offset), snr_db=snr, gain_db=gain, law=law,
                               seed=seed))
        assert heard is not None, f"{snr} dB"
        assert heard.announcement == recording.meaning  # type: ignore[attr-defined]
        assert heard.at_ms <= 6000  # the bench measures time: p95 about 3 s


def test_lost_frames_and_ringback_before_the_announcement() -> None:
    recording, file = SHIPPED[3]  # a-unreachable
    samples = read_recording(LIBRARY_DIR / file)
    data = on_a_line(looped(samples, 1.3), lead=ringback(2600), lose=0.02, seed=4)
    heard = hear(data)
    assert heard is not None
    assert heard.announcement == recording.meaning
    assert heard.started_ms >= 2000  # not before the ringback ended (some frames were lost)


def test_any_chunking_gives_the_same_finding() -> None:
    _, file = SHIPPED[0]
    data = on_a_line(looped(read_recording(LIBRARY_DIR / file), 2.0), seed=7)
    framed = hear(data)
    assert framed is not None
    assert hear(data, chunk=777) == framed


# Unknown announcements and tones give nothing

A_VOICE, B_VOICE = CARRIER_A.mandarin, CARRIER_B.mandarin
UNKNOWN = {
    "other meaning, carrier-a voice": ("您拨打的电话无人接听，请稍后再拨。", A_VOICE),
    "other meaning, carrier-a voice (2)": ("您好，欢迎致电客户服务热线，请按一。", A_VOICE),
    "other meaning, carrier-b voice": ("您拨叫的用户呼叫受限。", B_VOICE),
    "other meaning, carrier-b voice (2)": ("对不起，该号码已改号。", B_VOICE),
    "vacant text, cmn+f3": (CARRIER_A.texts["vacant"], Voice("cmn+f3", A_VOICE.speed)),
    "vacant text, 15 % faster": (CARRIER_A.texts["vacant"], Voice("cmn", 310)),
    "vacant text, 15 % slower": (CARRIER_A.texts["vacant"], Voice("cmn", 230)),
    "vacant text, lower pitch": (CARRIER_A.texts["vacant"], Voice("cmn", A_VOICE.speed, 35)),
    "carrier-b vacant text, cmn+f2": (CARRIER_B.texts["vacant"], Voice("cmn+f2", 230, 35)),
    "carrier-b busy text, carrier-a voice": (CARRIER_B.texts["busy"], A_VOICE),
    "carrier-a suspended text, carrier-b voice": (CARRIER_A.texts["suspended"], B_VOICE),
}


@pytest.mark.parametrize("name", list(UNKNOWN))
def test_an_announcement_not_in_the_library_gives_nothing(name: str) -> None:
    text, voice = UNKNOWN[name]
    for seed, snr in enumerate((15, 30)):
        assert hear(on_a_line(looped(speak(text, voice), 0.1 * seed), snr_db=snr,
                              seed=seed)) is None


def test_ringback_and_music_give_nothing() -> None:
    chords = np.concatenate([tone([f, 2 * f, 3 * f], 400, -26) + tone(1.5 * f, 400, -28)
                             for f in (220, 247, 262, 294, 330, 349, 392, 440) * 3])
    for signal in (ringback(8000), chords):
        assert hear(on_a_line(signal, snr_db=30)) is None


# Loading a library


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE, channels: int = 1
              ) -> None:
    data = np.clip(np.round(samples), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as target:
        target.setnchannels(channels)
        target.setsampwidth(2)
        target.setframerate(rate)
        target.writeframes(np.repeat(data, channels).tobytes())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A library folder with one recording, carrier-b's busy, and its index."""
    shutil.copy(LIBRARY_DIR / "b-busy.wav", tmp_path / "b-busy.wav")
    (tmp_path / INDEX_NAME).write_text("file,meaning,carrier\nb-busy.wav,busy,carrier-b\n",
                                       encoding="utf-8")
    return tmp_path


def test_a_stereo_16_khz_recording_is_mixed_down_and_resampled(folder: Path) -> None:
    samples = read_recording(LIBRARY_DIR / "b-vacant.wav")
    write_wav(folder / "vacant 16k.wav", resample(samples.astype(np.float32), 8000, 16000),
              rate=16000, channels=2)
    with open(folder / INDEX_NAME, "a", encoding="utf-8") as index:
        index.write("# a comment\nvacant 16k.wav,Vacant,carrier-b\n")
    library = AnnouncementLibrary.load(folder)
    assert [r.name for r in library.recordings] == ["b-busy", "vacant 16k"]
    heard = hear(on_a_line(looped(samples, 0.4), seed=3), library)
    assert heard is not None
    assert (heard.recording, heard.announcement) == ("vacant 16k", Announcement.VACANT)


@pytest.mark.parametrize(("index", "message"), [
    (None, "no announcement index"),
    ("file,carrier\nb-busy.wav,carrier-b\n", r"lacks column\(s\) meaning"),
    ("file,meaning\nb-busy.wav,engaged\n", "unknown meaning 'engaged'"),
    ("file,meaning\n,busy\n", "no file"),
    ("file,meaning\nb-busy.wav,busy\nb-busy.wav,vacant\n", "listed twice: b-busy"),
    ("file,meaning\n", "lists no recordings"),
    ("file,meaning\nmissing.wav,busy\n", "missing.wav is missing"),
    ("file,meaning\nnoise.wav,busy\n", "noise.wav is not a readable PCM WAV file"),
    ("file,meaning\nshort.wav,busy\n", "short.wav is shorter than 0.5 s"),
])
def test_library_problems_raise_a_specific_error(folder: Path, index: str | None,
                                                 message: str) -> None:
    (folder / "noise.wav").write_bytes(b"RIFF not really a wave file")
    write_wav(folder / "short.wav", np.ones(1000))
    if index is None:
        (folder / INDEX_NAME).unlink()
    else:
        (folder / INDEX_NAME).write_text(index, encoding="utf-8")
    with pytest.raises(AnnouncementLibraryError, match=message) as raised:
        AnnouncementLibrary.load(folder)
    assert isinstance(raised.value, VoiceError)
    assert not raised.value.retryable
