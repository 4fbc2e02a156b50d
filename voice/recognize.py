"""Keyword recognition: which of a call script's phrases the callee said in one utterance.

A call script listens for intents, each a list of phrases in the script's language
({"opt_out": ["stop", "don't call me"], "agent": ["operator"]}). `IntentMatcher` holds that
mapping; a `Recognizer` is built once per script for the matcher's phrases and a language,
and the runner hands it each speech segment the VAD cut (a whole utterance, at most ~8 s of
8 kHz PCM). It answers with a `Recognition`: the phrase heard (or none), how sure it is,
where in the segment the phrase was, and the transcript it decoded; the matcher turns the
phrase into the intent.

Backends (`recognizer_for` picks one):

- `voice.recognize_sphinx.SphinxRecognizer`: pocketsphinx with its bundled US English
  model, for English out of the box. It decodes each utterance against the phrases and a
  garbage vocabulary of common English words, so a phrase must beat every ordinary reading
  of the sound to be heard.
- `voice.recognize_vosk.VoskRecognizer`: any vosk (Kaldi) model folder, any language,
  decoding against a grammar of the phrases.

The transcript is personal data: it may hold names and numbers. Log the phrase or the
intent, never `Recognition.text`.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from voice.errors import ModelNotFound

PCM_RATE: Final = 8000
_DROPPED: Final = re.compile(r"[^\w\s']|_")  # punctuation, except the apostrophe of "don't"


def normalize_phrase(text: str) -> str:
    """A phrase or transcript as recognizers compare them: NFKC, case-folded, punctuation
    dropped (apostrophes kept: "don't" is a word of its own), single spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    return " ".join(_DROPPED.sub(" ", folded).split())


@dataclass(frozen=True, slots=True, kw_only=True)
class Recognition:
    """What a recognizer heard in one utterance.

    `phrase` is one of the recognizer's phrases (normalized), the earliest heard, or None.
    `confidence` is the recognizer's probability that `phrase` was said (0.0 when `phrase`
    is None). `start_ms` and `end_ms` place the phrase in the segment (None without one).
    `text` is the decoded transcript: personal data, never to be logged; with a grammar
    or garbage vocabulary it is only the nearest reading in that vocabulary.
    """

    phrase: str | None
    confidence: float
    text: str
    start_ms: int | None
    end_ms: int | None
    audio_ms: int


class Recognizer(Protocol):
    """Hears a fixed set of phrases in whole utterances of 8 kHz 16-bit mono PCM.

    - Built for a language and a non-empty tuple of distinct normalized phrases, which
      never change; construction fails (`UnknownPhrase`) if a phrase could never be heard.
    - `recognize(pcm)` takes one whole utterance (a VAD segment, lead-in and hangover
      included; odd trailing bytes are dropped) and returns a `Recognition` whose `phrase`
      is in `phrases` or None. Silence and empty input give None.
    - Calls are independent: nothing carries from one utterance or call to the next, so
      one instance serves every call of a script.
    - Safe to call from several threads; an implementation that holds one decoder
      serializes the calls, and `clone()` gives an independent instance (sharing loaded
      models where it can) for decoding in parallel.
    - The transcript never reaches a log or an exception message.
    """

    @property
    def language(self) -> str: ...

    @property
    def phrases(self) -> tuple[str, ...]: ...

    def recognize(self, pcm: bytes) -> Recognition: ...

    def clone(self) -> Recognizer: ...


class IntentMatcher:
    """A script's intents (intent -> phrases): the phrases to listen for, and the intent a
    heard phrase stands for. Phrases are normalized; one phrase belongs to one intent."""

    def __init__(self, intents: Mapping[str, Sequence[str]]) -> None:
        owner: dict[str, str] = {}
        for intent, phrases in intents.items():
            if isinstance(phrases, str):
                raise TypeError(f"intent {intent!r}: give a list of phrases, not one string")
            for phrase in phrases:
                key = normalize_phrase(phrase)
                if not key:
                    raise ValueError(f"intent {intent!r} has a blank phrase")
                if owner.setdefault(key, intent) != intent:
                    raise ValueError(
                        f"phrase {key!r} is in intents {owner[key]!r} and {intent!r}")
        if not owner:
            raise ValueError("no phrases to listen for")
        self._owner: Final = owner

    @property
    def phrases(self) -> tuple[str, ...]:
        return tuple(self._owner)

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self._owner.values()))

    def intent_of(self, phrase: str | None) -> str | None:
        """The intent of a phrase (None for None; KeyError for a phrase not in the map)."""
        return None if phrase is None else self._owner[normalize_phrase(phrase)]

    def match(self, recognition: Recognition) -> str | None:
        """The intent a recognition stands for, or None."""
        return self.intent_of(recognition.phrase)


def to_pcm16(samples: npt.NDArray[np.floating[Any]]) -> bytes:
    """Float samples in [-1, 1] as 16-bit little-endian PCM, clipped to full scale."""
    scaled = np.clip(np.rint(np.asarray(samples, np.float64) * 32767.0), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def check_phrases(phrases: Iterable[str]) -> tuple[str, ...]:
    """Phrases normalized, in order, without repeats; ValueError if there are none."""
    unique = tuple(dict.fromkeys(normalize_phrase(phrase) for phrase in phrases))
    if not unique or not all(unique):
        raise ValueError("give at least one phrase, and no blank ones")
    return unique


def language_family(language: str) -> str:
    """"en" for "en-US", "en_GB", "EN"; "zh" for "zh-CN"."""
    return language.replace("_", "-").split("-")[0].lower()


def recognizer_for(
    phrases: Iterable[str] | IntentMatcher,
    language: str,
    *,
    model_dir: str | os.PathLike[str] | None = None,
) -> Recognizer:
    """A recognizer for a script's phrases in `language` (e.g. "en-US", "zh-CN", "ko").

    With `model_dir`, a vosk recognizer on that model folder (any language the model
    speaks); without, the bundled pocketsphinx English model for English, and
    `ModelNotFound` for any other language.
    """
    wanted = phrases.phrases if isinstance(phrases, IntentMatcher) else tuple(phrases)
    if model_dir is not None:
        from voice.recognize_vosk import VoskRecognizer  # loads vosk only when asked for

        return VoskRecognizer(wanted, language, model_dir)
    if language_family(language) == "en":
        from voice.recognize_sphinx import SphinxRecognizer

        return SphinxRecognizer(wanted, language)
    raise ModelNotFound(
        f"no bundled speech recognition model for language {language!r}; "
        "point model_dir at a vosk model folder for it"
    )
