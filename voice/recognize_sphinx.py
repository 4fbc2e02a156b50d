"""English keyword recognition with pocketsphinx's bundled US English model, no downloads.

The model is a 16 kHz one; a call is 8 kHz, noisy and G.711-coded. What measured best on
`voice.keyword_corpus` (see scripts/bench_voice_keywords.py), and why:

- Noise is taken off first: a Wiener filter with a decision-directed SNR estimate, the
  noise spectrum measured on the segment's quietest tenth (a VAD segment has lead-in and
  hangover, so there is always some). At 10-15 dB SNR the model hears almost nothing
  without it.
- The audio goes up to 16 kHz by zero-stuffing, keeping the spectral image of 0-4 kHz in
  4-8 kHz: the model never heard an empty upper band, and the image is nearer to speech
  than silence there (a few points of recall over a clean resampler).
- Decoding uses neither the model's 130k-word language model nor keyword spotting: the
  former buries a bare "stop" under likelier words, the latter's scores do not separate
  keywords from ordinary speech here. Instead a unigram model holds each phrase as one
  word plus a garbage vocabulary: the `garbage_words` commonest English words by the
  bundled model's unigram probabilities. A phrase is heard only where it explains the sound
  better than any string of ordinary words, by the margin its prior sets:
  `phrase_log10_prob` is that single calibrated knob (higher: more recall, more false
  alarms).
- `confidence` is the phrase's posterior in the decoder's lattice.

Each recognizer owns one decoder and serializes calls on a lock; `clone()` makes another
for parallel decoding (about 0.1 s). The first one in a process takes about 0.7 s and
80 MB: the bundled dictionary is read and its words ranked once per process. Decoding
costs about 0.12 s per second of audio on one core (RTF 0.12), denoising included.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pocketsphinx

from voice.errors import ModelLoadError, ModelNotFound, UnknownPhrase
from voice.recognize import (
    PCM_RATE,
    Recognition,
    check_phrases,
    language_family,
    to_pcm16,
)

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
DECODER_RATE: Final = 16000
_FRAME_MS: Final = 10  # pocketsphinx's frame rate is 100 per second
_MAX_VARIANTS: Final = 8  # pronunciations of one phrase (a product over its words' variants)
_LOG10_BASE: Final = math.log10(1.0001)  # pocketsphinx's integer log base


@dataclass(frozen=True, slots=True, kw_only=True)
class SphinxSettings:
    """How the English recognizer decides; the defaults are the benchmark's."""

    garbage_words: int = 2000
    phrase_log10_prob: float = 0.0
    extra_word_log10_prob: float = -1.0
    min_confidence: float = 0.0
    denoise: bool = True


@dataclass(frozen=True, slots=True)
class _Lexicon:
    """The bundled dictionary (word -> pronunciations) and its words with their log10
    unigram probabilities in the bundled language model, commonest first."""

    pronunciations: dict[str, list[str]]
    by_frequency: list[tuple[str, float]]


def _model_path(name: str) -> str:
    path = Path(pocketsphinx.get_model_path()) / "en-us" / name
    if not path.exists():
        raise ModelLoadError(f"pocketsphinx's bundled model file {path} is missing")
    return str(path)


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    pronunciations: dict[str, list[str]] = {}
    with open(_model_path("cmudict-en-us.dict"), encoding="utf-8") as dictionary:
        for line in dictionary:
            word, _, phones = line.partition(" ")
            pronunciations.setdefault(word.split("(")[0], []).append(phones.strip())
    model = pocketsphinx.NGramModel.readfile(_model_path("en-us.lm.bin"))
    ranked = sorted(((word, model.prob([word]) * _LOG10_BASE) for word in pronunciations),
                    key=lambda pair: -pair[1])
    return _Lexicon(pronunciations, ranked)


class SphinxRecognizer:
    """English phrases heard with pocketsphinx (see the module docstring)."""

    def __init__(
        self, phrases: Iterable[str], language: str = "en-US",
        settings: SphinxSettings | None = None,
    ) -> None:
        if language_family(language) != "en":
            raise ModelNotFound(f"the bundled pocketsphinx model speaks English, not {language}")
        self._phrases = check_phrases(phrases)
        self._language = language
        self.settings: Final = settings or SphinxSettings()
        self._lock = threading.Lock()
        self._decoder = self._build()

    @property
    def language(self) -> str:
        return self._language

    @property
    def phrases(self) -> tuple[str, ...]:
        return self._phrases

    def clone(self) -> SphinxRecognizer:
        return SphinxRecognizer(self._phrases, self._language, self.settings)

    def _build(self) -> pocketsphinx.Decoder:
        lexicon = _lexicon()
        entries = [(f"kw{index}", variants) for index, variants in
                   enumerate(_phrase_pronunciations(phrase, lexicon) for phrase in self._phrases)]
        singles = {phrase for phrase in self._phrases if " " not in phrase}
        garbage = [pair for pair in lexicon.by_frequency
                   if pair[0] not in singles and self._phrase_of(pair[0]) is None]
        garbage = garbage[: self.settings.garbage_words]
        with tempfile.TemporaryDirectory(prefix="sphinx-") as folder:
            dictionary, model = Path(folder, "words.dict"), Path(folder, "words.arpa")
            lines = [f"{word} {phones}" if n == 0 else f"{word}({n + 1}) {phones}"
                     for word, variants in entries + [(w, lexicon.pronunciations[w])
                                                      for w, _ in garbage]
                     for n, phones in enumerate(variants)]
            dictionary.write_text("\n".join(lines) + "\n", encoding="utf-8")
            model.write_text(self._arpa(garbage), encoding="utf-8")
            try:
                decoder = pocketsphinx.Decoder(
                    hmm=_model_path("en-us"), dict=str(dictionary), lm=str(model),
                    samprate=DECODER_RATE, loglevel="FATAL", logfn=os.devnull)
                # The model's feat.params switch on pocketsphinx's own noise removal, whose
                # estimate carries from one utterance to the next (and over-rides a
                # constructor argument); `denoise` does that job per utterance instead.
                decoder.config["remove_noise"] = False
                decoder.reinit_feat()
            except (RuntimeError, ValueError) as exc:
                raise ModelLoadError(f"pocketsphinx cannot load its bundled model: {exc}") from exc
        logger.debug("pocketsphinx decoder built: %d phrases, %d garbage words",
                     len(entries), len(garbage))
        return decoder

    def _arpa(self, garbage: list[tuple[str, float]]) -> str:
        """A unigram model: garbage words by their bundled probabilities, renormalized;
        each phrase as one word at `phrase_log10_prob`, less `extra_word_log10_prob` for
        each word past its first (else a long phrase would be a bargain against the string
        of garbage words it replaces)."""
        total = math.log10(sum(10**value for _, value in garbage))
        grams = ["-99 <s>", "0 </s>"]
        grams += [f"{value - total:.4f} {word}" for word, value in garbage]
        base, extra = self.settings.phrase_log10_prob, self.settings.extra_word_log10_prob
        grams += [f"{base + extra * (len(phrase.split()) - 1):.4f} kw{index}"
                  for index, phrase in enumerate(self._phrases)]
        return "\n".join(["\\data\\", f"ngram 1={len(grams)}", "", "\\1-grams:", *grams,
                          "", "\\end\\", ""])

    def recognize(self, pcm: bytes) -> Recognition:
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.float64)
        audio_ms = len(samples) * 1000 // PCM_RATE
        if not samples.any():
            return Recognition(phrase=None, confidence=0.0, text="", start_ms=None,
                               end_ms=None, audio_ms=audio_ms)
        if self.settings.denoise:
            samples = denoise(samples)
        wide = to_pcm16(upsample_with_image(samples) / 32767)
        with self._lock:
            self._decoder.start_utt()
            self._decoder.process_raw(wide, full_utt=True)
            self._decoder.end_utt()
            hypothesis = self._decoder.hyp()
            segments = [(seg.word, seg.prob, seg.start_frame, seg.end_frame)
                        for seg in self._decoder.seg()]
        words = hypothesis.hypstr.split() if hypothesis is not None else []
        text = " ".join(self._phrase_of(word) or word for word in words)
        for word, posterior, start, end in segments:
            phrase = self._phrase_of(word.split("(")[0])
            if phrase is not None and posterior >= self.settings.min_confidence:
                return Recognition(phrase=phrase, confidence=float(posterior), text=text,
                                   start_ms=start * _FRAME_MS, end_ms=(end + 1) * _FRAME_MS,
                                   audio_ms=audio_ms)
        return Recognition(phrase=None, confidence=0.0, text=text, start_ms=None, end_ms=None,
                           audio_ms=audio_ms)

    def _phrase_of(self, word: str) -> str | None:
        if word.startswith("kw") and word[2:].isdigit():
            return self._phrases[int(word[2:])]
        return None


def _phrase_pronunciations(phrase: str, lexicon: _Lexicon) -> list[str]:
    missing = [word for word in phrase.split() if word not in lexicon.pronunciations]
    if missing:
        raise UnknownPhrase(
            f"the English dictionary has no {', '.join(map(repr, missing))} (in phrase "
            f"{phrase!r}); spell numbers and abbreviations out as words")
    variants = itertools.product(*(lexicon.pronunciations[word] for word in phrase.split()))
    return [" ".join(parts) for parts in itertools.islice(variants, _MAX_VARIANTS)]


def denoise(samples: FloatArray, *, floor: float = 0.1, smoothing: float = 0.98) -> FloatArray:
    """`samples` (8 kHz) through a Wiener filter: the noise spectrum is the mean of the
    quietest tenth of 32 ms frames, the a priori SNR is decision-directed (Ephraim and
    Malah), the gain never under `floor` (deeper cuts leave musical noise the model hears as
    phones)."""
    size, hop = 256, 64
    window = np.hanning(size + 1)[:-1]
    padded = np.concatenate([np.zeros(size), samples, np.zeros(size)])
    count = (len(padded) - size) // hop + 1
    index = np.arange(size)[None, :] + hop * np.arange(count)[:, None]
    spectra = np.fft.rfft(padded[index] * window, axis=1)
    power = spectra.real**2 + spectra.imag**2
    energy = power.sum(axis=1)
    noise = power[energy <= np.quantile(energy, 0.1)].mean(axis=0) + 1e-9
    gains = np.empty_like(power)
    previous = np.zeros(power.shape[1])
    for frame in range(count):
        posterior = power[frame] / noise
        prior = smoothing * previous + (1 - smoothing) * np.maximum(posterior - 1, 0)
        gains[frame] = np.maximum(prior / (1 + prior), floor)
        previous = gains[frame] ** 2 * posterior
    frames = np.fft.irfft(spectra * gains, size, axis=1) * window
    out, weight = np.zeros(len(padded)), np.zeros(len(padded))
    np.add.at(out, index, frames)
    np.add.at(weight, index, np.broadcast_to(window**2, frames.shape))
    cleaned: FloatArray = (out / np.maximum(weight, 1e-9))[size : size + len(samples)]
    return cleaned


def upsample_with_image(samples: FloatArray) -> FloatArray:
    """8 kHz samples at 16 kHz by zero-stuffing: 0-4 kHz unchanged, mirrored into 4-8 kHz."""
    wide = np.zeros(2 * len(samples))
    wide[::2] = 2 * samples
    return wide
