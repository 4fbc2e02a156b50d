"""The errors `voice` raises, one tree.

    VoiceError                  anything voice/ raises on purpose
    ├── VoiceNotFound           no such voice: an unknown name, a missing model or config file
    ├── VoiceLoadError          the voice files are there but unusable (corrupt model or config)
    ├── UnsupportedText         the voice cannot speak this text (e.g. Chinese to an English voice)
    ├── PromptCacheError        the prompt cache folder cannot be made, read or written
    ├── AudioFileError          a recording is missing or not a readable PCM WAV file
    ├── AnnouncementLibraryError  the announcement library's index or a recording it names
    │                           is missing, malformed or unreadable
    ├── ModelNotFound           no speech recognition model there, or none for the language
    ├── ModelLoadError          the recognition model's files are there but unusable
    └── UnknownPhrase           a phrase to listen for has words the model does not know

Each carries `retryable`: whether the same call may succeed later without anyone changing a
file or a setting. Messages name files and voices, never the text spoken (it may hold a
callee's name).
"""

from __future__ import annotations


class VoiceError(Exception):
    """Base of every error voice/ raises on purpose."""

    retryable: bool = False


class VoiceNotFound(VoiceError):
    """A voice name nobody registered, or a voice model or config file that is not there."""


class VoiceLoadError(VoiceError):
    """The voice files exist but piper cannot load them (corrupt model, bad JSON config)."""


class UnsupportedText(VoiceError):
    """The text is in a writing system the voice's language does not read.

    piper's espeak phonemizer does not refuse such text: an English voice reads every
    Chinese character as the words "Chinese letter". We refuse before synthesis instead.
    """


class PromptCacheError(VoiceError):
    """The prompt cache folder cannot be created, read or written."""

    retryable = True  # a full disk or a remount may clear


class AudioFileError(VoiceError):
    """A recording (a WAV file) is missing, unreadable or not PCM of a width we read."""


class AnnouncementLibraryError(VoiceError):
    """The announcement library folder, its index or a recording the index names is missing,
    malformed (a missing column, an unknown meaning) or not a readable PCM WAV file."""


class ModelNotFound(VoiceError):
    """No speech recognition model at the path given, or none bundled for the language."""


class ModelLoadError(VoiceError):
    """The recognition model's folder exists but its files are missing, corrupt or not a
    model of the kind expected."""


class UnknownPhrase(VoiceError):
    """A phrase to listen for has words the recognition model's vocabulary lacks: it could
    never be heard, so the script is refused before its first call."""
