"""Spoken keyword utterances for testing and benchmarking recognizers, made on this machine.

Nothing is downloaded and nothing is recorded: piper (the English voice, at several speeds)
and espeak-ng (several en-us and Korean voice variants, pitches and rates) speak fixed
lines, the clean speech is kept in a `PromptCache`, and each utterance is then put on a
phone line deterministically (its own seeded random generator):

- its speech level drawn from -30 to -14 dBFS (active power, see `voice.corpus.at_level`);
- line noise (pinkish, with mains hum on a third of the lines) 10-25 dB under it, from
  150-400 ms before the speech to 250-450 ms after it, as a VAD segment with its pre-roll
  and hangover would carry;
- a G.711 round trip, mu-law or A-law.

`ENGLISH_LINES` holds keyword lines (bare and in carrier sentences) and negatives: ordinary
replies to a robo-call, a few of them near misses that share a word or a sound with a
phrase ("I'll be back at six", "I am interested"). `KOREAN_LINES` does the same for the
Korean intents. Synthetic voices are cleaner and more regular than people: figures measured
on this corpus are an upper bound for real callers, good for comparing methods.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import wave
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np

from voice.corpus import at_level, line_noise, pcm
from voice.errors import VoiceNotFound
from voice.resample import resample
from voice.tts import PCM_RATE, PromptCache, Tts, to_pcm

ENGLISH_INTENTS: Final[Mapping[str, tuple[str, ...]]] = {
    "opt_out": ("stop", "don't call me", "unsubscribe"),
    "no": ("not interested",),
    "callback": ("call me back",),
    "agent": ("agent", "operator"),
}
KOREAN_INTENTS: Final[Mapping[str, tuple[str, ...]]] = {
    "opt_out": ("그만",),  # stop
    "agent": ("상담원",),  # an agent
    "no": ("관심 없어요",),  # not interested
}


@dataclass(frozen=True, slots=True)
class Line:
    """A text to speak and the intent a recognizer should hear in it (None: no intent)."""

    text: str
    intent: str | None


ENGLISH_LINES: Final = (
    Line("stop", "opt_out"),
    Line("please stop", "opt_out"),
    Line("stop calling me", "opt_out"),
    Line("just stop it", "opt_out"),
    Line("don't call me again", "opt_out"),
    Line("unsubscribe", "opt_out"),
    Line("unsubscribe me please", "opt_out"),
    Line("not interested", "no"),
    Line("I'm not interested, thanks", "no"),
    Line("no, I am not interested", "no"),
    Line("can you call me back later", "callback"),
    Line("call me back tomorrow", "callback"),
    Line("agent", "agent"),
    Line("let me talk to an agent", "agent"),
    Line("operator please", "agent"),
    Line("I want to speak to an operator", "agent"),
    Line("hello, who is this", None),
    Line("yes, I got the message", None),
    Line("what is this about", None),
    Line("maybe later", None),
    Line("okay, thank you", None),
    Line("sorry, I can't hear you", None),
    Line("who gave you my number", None),
    Line("I'm busy right now", None),
    Line("yes, speaking", None),
    Line("can you repeat that", None),
    Line("how much does it cost", None),
    Line("I already paid that bill", None),
    Line("hold on a second", None),
    Line("what company are you from", None),
    Line("sounds good to me", None),
    Line("my husband is not home", None),
    Line("I'll be back at six", None),  # near miss: "be back" / "me back"
    Line("I am interested, tell me more", None),  # near miss: "interested"
    Line("I'll think about it", None),
    Line("what time is it there", None),
)
# Other lines and speakers, for choosing a recognizer's settings without touching the
# lines it is measured on.
CALIBRATION_LINES: Final = (
    Line("stop it", "opt_out"),
    Line("please don't call me", "opt_out"),
    Line("I said unsubscribe", "opt_out"),
    Line("sorry, not interested", "no"),
    Line("call me back in an hour", "callback"),
    Line("get me an agent", "agent"),
    Line("operator", "agent"),
    Line("who are you", None),
    Line("I don't know", None),
    Line("it's a bad time", None),
    Line("yes, that's me", None),
    Line("good morning", None),
    Line("what did you say", None),
    Line("I need to go", None),
    Line("is this about my account", None),
    Line("can you hold on", None),
    Line("I'm at work right now", None),
    Line("sure, go ahead", None),
    Line("we already have one", None),
    Line("she's not back yet", None),
    Line("I'm interested in the price", None),
)
KOREAN_LINES: Final = (
    Line("그만", "opt_out"),
    Line("전화 그만 하세요", "opt_out"),
    Line("이제 그만 해요", "opt_out"),
    Line("상담원", "agent"),
    Line("상담원 연결해 주세요", "agent"),
    Line("상담원 바꿔 주세요", "agent"),
    Line("관심 없어요", "no"),
    Line("저는 관심 없어요", "no"),
    Line("여보세요", None),
    Line("누구세요", None),
    Line("네 알겠습니다", None),
    Line("무슨 일이세요", None),
    Line("감사합니다", None),
    Line("지금 운전 중이에요", None),
    Line("나중에 다시 전화 주세요", None),
    Line("네 맞아요", None),
    Line("얼마예요", None),
    Line("잠깐만 기다려 주세요", None),
)


@dataclass(frozen=True, slots=True)
class Speaker:
    """A synthetic voice: piper's default voice at `speed`, or an espeak-ng voice variant
    at `pitch` (0-99) and `rate` (words per minute)."""

    engine: Literal["piper", "espeak"]
    voice: str = ""
    speed: float = 1.0
    pitch: int = 50
    rate: int = 160

    @property
    def name(self) -> str:
        if self.engine == "piper":
            return f"piper@{self.speed:g}"
        return f"espeak:{self.voice}:p{self.pitch}:r{self.rate}"


ENGLISH_SPEAKERS: Final = (
    *(Speaker("piper", speed=speed) for speed in (0.8, 0.9, 1.0, 1.1, 1.25)),
    Speaker("espeak", "en-us", pitch=40, rate=160),
    Speaker("espeak", "en-us+f3", pitch=60, rate=175),
    Speaker("espeak", "en-us+m3", pitch=30, rate=140),
    Speaker("espeak", "en-us-nyc+f4", pitch=55, rate=190),
)
CALIBRATION_SPEAKERS: Final = (
    Speaker("piper", speed=0.85),
    Speaker("piper", speed=0.95),
    Speaker("piper", speed=1.15),
    Speaker("espeak", "en-us+m1", pitch=45, rate=170),
    Speaker("espeak", "en-us+f2", pitch=65, rate=150),
)
KOREAN_SPEAKERS: Final = (
    Speaker("espeak", "ko", pitch=40, rate=150),
    Speaker("espeak", "ko+f3", pitch=60, rate=170),
    Speaker("espeak", "ko+m3", pitch=30, rate=130),
    Speaker("espeak", "ko+f2", pitch=70, rate=185),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeywordUtterance:
    """One line spoken by one speaker, on a phone line: 8 kHz 16-bit mono PCM."""

    text: str
    intent: str | None
    speaker: str
    snr_db: float
    law: Literal["ulaw", "alaw"]
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / PCM_RATE


class SpeechSource:
    """Clean 8 kHz speech for a line and a speaker, from the cache or synthesized once."""

    def __init__(self, cache: PromptCache, tts: Tts | None = None) -> None:
        self.cache = cache
        self._tts = tts or Tts(cache=cache)
        self._espeak = shutil.which("espeak-ng")

    def speak(self, text: str, speaker: Speaker) -> bytes:
        if speaker.engine == "piper":
            return self._tts.render(text, speed=speaker.speed)
        if self._espeak is None:
            raise VoiceNotFound("espeak-ng is not installed (Debian package espeak-ng)")
        key = hashlib.sha256(json.dumps(
            ["espeak-keyword-v1", self._espeak, speaker.voice, speaker.pitch, speaker.rate,
             text], ensure_ascii=False).encode()).hexdigest()
        clean = self.cache.get(key)
        if clean is None:
            clean = _espeak(self._espeak, text, speaker)
            self.cache.put(key, clean)
        return clean


def _espeak(program: str, text: str, speaker: Speaker) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        subprocess.run(
            [program, "-v", speaker.voice, "-p", str(speaker.pitch), "-s", str(speaker.rate),
             "-w", str(path), "--", text],
            check=True, capture_output=True, timeout=60,
        )
        with wave.open(str(path), "rb") as reader:
            rate = reader.getframerate()
            raw = reader.readframes(reader.getnframes())
    samples = np.frombuffer(raw, "<i2").astype(np.float32)
    samples *= np.float32(1 / 32768)
    return to_pcm(resample(samples, rate, PCM_RATE))


def on_a_line(clean: bytes, seed: int) -> tuple[bytes, float, Literal["ulaw", "alaw"]]:
    """Clean speech as a call delivers it (see the module docstring): PCM, SNR, law."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(-30.0, -14.0)
    snr = float(rng.uniform(10.0, 25.0))
    law: Literal["ulaw", "alaw"] = "ulaw" if rng.random() < 0.5 else "alaw"
    hum = rng.choice([0.0, 0.0, 50.0, 60.0])
    speech = at_level(np.frombuffer(clean, "<i2").astype(np.float64), level)
    lead, tail = round(rng.uniform(0.15, 0.4) * PCM_RATE), round(rng.uniform(0.25, 0.45) * PCM_RATE)
    padded = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
    noise = line_noise(len(padded) * 1000 / PCM_RATE, rng, level - snr, hum_hz=hum or None)
    return pcm(padded + noise[: len(padded)], law), snr, law


def utterances(
    lines: Sequence[Line], speakers: Sequence[Speaker], source: SpeechSource, *, seed: int = 0
) -> list[KeywordUtterance]:
    """Every line spoken by every speaker, each put on its own line (same seed, same PCM)."""
    out = []
    for speaker in speakers:
        for line in lines:
            clean = source.speak(line.text, speaker)
            mixing = zlib.crc32(f"{seed}|{speaker.name}|{line.text}".encode())
            audio, snr, law = on_a_line(clean, mixing)
            out.append(KeywordUtterance(text=line.text, intent=line.intent,
                                        speaker=speaker.name, snr_db=snr, law=law, pcm=audio))
    return out


def english_corpus(cache: PromptCache, *, quick: bool = False) -> list[KeywordUtterance]:
    """`ENGLISH_LINES` by every English speaker (quick: piper at 1.0 and one espeak voice)."""
    speakers = (ENGLISH_SPEAKERS[2], ENGLISH_SPEAKERS[5]) if quick else ENGLISH_SPEAKERS
    return utterances(ENGLISH_LINES, speakers, SpeechSource(cache))


def calibration_corpus(cache: PromptCache) -> list[KeywordUtterance]:
    """`CALIBRATION_LINES` by `CALIBRATION_SPEAKERS`: none of it is in `english_corpus`."""
    return utterances(CALIBRATION_LINES, CALIBRATION_SPEAKERS, SpeechSource(cache), seed=1)


def korean_corpus(cache: PromptCache, *, quick: bool = False) -> list[KeywordUtterance]:
    """`KOREAN_LINES` by every Korean espeak voice (quick: two of them)."""
    speakers = KOREAN_SPEAKERS[:2] if quick else KOREAN_SPEAKERS
    return utterances(KOREAN_LINES, speakers, SpeechSource(cache))
