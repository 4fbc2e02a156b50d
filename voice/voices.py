"""What every TTS voice is described by, and the writing systems it can read."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from voice.errors import UnsupportedText

# Writing systems that only some languages read (first word of the Unicode character name
# -> ISO 639 language families). Latin is read by every voice; scripts not listed are not
# checked, so an unlisted language is never refused by mistake.
_SCRIPT_LANGUAGES: Final = {
    "CJK": {"zh", "cmn", "yue", "ja", "ko"},
    "HIRAGANA": {"ja"}, "KATAKANA": {"ja"}, "HANGUL": {"ko"}, "THAI": {"th"},
    "CYRILLIC": {"ru", "uk", "be", "bg", "sr", "mk", "kk", "ky", "mn", "tt", "ba", "cv"},
    "ARABIC": {"ar", "fa", "ur", "ps", "sd", "ug", "ku"},
    "GREEK": {"el", "grc"}, "HEBREW": {"he", "yi"},
    "DEVANAGARI": {"hi", "mr", "ne", "sa"},
}



@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceInfo:
    """What identifies a loaded voice, and what it speaks."""

    name: str  # the model file name without `.onnx`
    model_path: Path
    language: str  # e.g. "en_US"
    family: str  # e.g. "en"
    sample_rate: int
    fingerprint: str  # changes when the model or its config file changes



def check_writing(info: VoiceInfo, text: str) -> None:
    """Raise `UnsupportedText` if `text` uses a writing system the voice can't read."""
    scripts = {_script(char) for char in unicodedata.normalize("NFKC", text)}
    foreign = sorted(
        script
        for script in scripts & _SCRIPT_LANGUAGES.keys()
        if info.family not in _SCRIPT_LANGUAGES[script]
    )
    if foreign:
        raise UnsupportedText(
            f"voice {info.name} ({info.language}) cannot speak text written in "
            f"{', '.join(foreign)}; give the script a voice for its language"
        )


def _script(char: str) -> str:
    if not unicodedata.category(char).startswith("L"):
        return "LATIN"  # digits, punctuation and spaces belong to every script
    return unicodedata.name(char, "LATIN").split(" ", 1)[0]
