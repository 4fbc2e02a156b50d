"""A script's ears: the recogniser for every phrase it may hear (`voice.recognize`).

One recogniser per script and worker process, built for all the script's phrases at once
(its keywords and its opt-out phrases: `script_phrases`), so that "stop" is heard in
the middle of any question. Each utterance the VAD cut goes to it; the phrase it heard
comes back as the script wrote it, for the runner to read as the intent of the moment.

English scripts hear out of the box (pocketsphinx's bundled model); other languages need
a vosk model folder (`dialer run --asr-model DIR`). Without one a script still takes keys,
and says so once in the log: its words go unheard.
"""

from __future__ import annotations

import logging
import os

from dialer.config.script import Script
from dialer.talk.runner import script_phrases
from dialer.talk.session import Hearing
from voice.errors import ModelNotFound
from voice.recognize import Recognizer, language_family, normalize_phrase, recognizer_for

logger = logging.getLogger(__name__)


def hearing_for(script: Script, *,
                model_dir: str | os.PathLike[str] | None = None) -> Hearing | None:
    """The script's ears, or None when it has no phrases to hear or no model hears its
    language (a vosk folder that is missing or broken raises `ModelNotFound`)."""
    said = {phrase for phrases in script_phrases(script).values() for phrase in phrases}
    if not said:
        return None
    try:
        recognizer = recognizer_for(sorted(said), script.language, model_dir=model_dir)
    except ModelNotFound:
        if model_dir is not None or language_family(script.language) == "en":
            raise
        logger.warning("script %s: no speech recognition model for %s, so its keywords and "
                       "opt-out phrases go unheard (keys still work); give a vosk model",
                       script.name, script.language)
        return None
    return _Ears(recognizer, said)


class _Ears:
    """A recogniser whose phrases come back as the script wrote them."""

    def __init__(self, recognizer: Recognizer, said: set[str]) -> None:
        self._recognizer = recognizer
        self._written = {normalize_phrase(phrase): phrase for phrase in said}

    def __call__(self, pcm: bytes) -> str | None:
        heard = self._recognizer.recognize(pcm).phrase
        return None if heard is None else self._written.get(heard)
