"""piper TTS for real: 8 kHz PCM, the prompt cache, templates, voices and their errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voice.errors import PromptCacheError, UnsupportedText, VoiceLoadError, VoiceNotFound
from voice.resample import resample
from voice.tts import (
    DEFAULT_VOICE,
    PCM_RATE,
    PEAK,
    PromptCache,
    Tts,
    default_model_path,
    load_voice,
)

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Thank you for calling."


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, "<i2").astype(np.float64)


def seconds(pcm: bytes) -> float:
    return len(pcm) / 2 / PCM_RATE


@pytest.fixture(scope="module")
def other_voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model under another name with a changed config: another voice file."""
    folder = tmp_path_factory.mktemp("voices")
    model = folder / "slow-joe.onnx"
    model.symlink_to(default_model_path())
    config = json.loads(Path(f"{default_model_path()}.json").read_text(encoding="utf-8"))
    config["inference"]["length_scale"] = 1.5
    Path(f"{model}.json").write_text(json.dumps(config), encoding="utf-8")
    return model


def test_render_gives_8khz_16bit_speech(tmp_path: Path) -> None:
    pcm = Tts(cache=PromptCache(tmp_path)).render("Hello, this is a test.")
    audio = samples(pcm)
    assert len(pcm) % 2 == 0
    assert 0.8 < seconds(pcm) < 3.5  # at 22,050 Hz mislabelled it would be ~2.75x longer
    assert np.sqrt(np.mean(audio**2)) > 500
    assert np.max(np.abs(audio)) <= 32767 * PEAK * 1.2


def test_a_voice_is_loaded_once_per_process() -> None:
    assert load_voice() is load_voice(default_model_path())
    assert Tts().voice() is Tts().voice(DEFAULT_VOICE)


def test_second_render_comes_from_the_cache(tmp_path: Path) -> None:
    tts = Tts(cache=PromptCache(tmp_path))
    first = tts.render(TEXT)
    assert tts.render(f"  {TEXT} ") == first
    assert tts.syntheses == 1
    another_process = Tts(cache=PromptCache(tmp_path))
    assert another_process.render(TEXT) == first
    assert another_process.syntheses == 0


def test_cache_key_changes_with_speed_and_voice(tmp_path: Path, other_voice: Path) -> None:
    tts = Tts(cache=PromptCache(tmp_path), voices={"slow": other_voice})
    joe, slow = tts.voice().info, tts.voice("slow").info
    assert PromptCache.key(TEXT, joe, 1.0) != PromptCache.key(TEXT, joe, 1.25)
    assert PromptCache.key(TEXT, joe, 1.0) != PromptCache.key(TEXT, slow, 1.0)
    tts.render(TEXT)
    tts.render(TEXT, speed=1.25)
    tts.render(TEXT, voice="slow")
    tts.render(TEXT, voice=str(other_voice))  # a path names the same voice as its name
    assert tts.syntheses == 3
    assert len(list(tmp_path.glob("*.pcm"))) == 3


def test_speed_changes_duration() -> None:
    tts = Tts()
    slow = seconds(tts.render(TEXT, speed=0.6, cached=False))
    fast = seconds(tts.render(TEXT, speed=1.6, cached=False))
    assert slow > 1.6 * fast
    with pytest.raises(ValueError, match="speed"):
        tts.render(TEXT, speed=0)


def test_template_takes_fixed_parts_from_the_cache(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    tts = Tts(cache=cache)
    template = "Hello {name}, your order is ready."
    tts.prerender([template])
    assert tts.syntheses == 2
    fixed = tts.render("your order is ready.")
    alice = tts.render_template(template, {"name": "Alice"})
    bob = tts.render_template(template, {"name": "Bob"})
    assert tts.syntheses == 4  # one per name; the fixed parts came from the cache
    assert len(list(tmp_path.glob("*.pcm"))) == 2  # names never reach the disk
    count = len(fixed) // 2
    middle = fixed[2 * (count // 4) : 2 * (3 * count // 4)]  # what trimming the edges keeps
    assert middle in alice
    assert middle in bob
    assert seconds(alice) > seconds(fixed)


def test_template_needs_every_value() -> None:
    with pytest.raises(KeyError, match="order"):
        Tts().render_template("Your order {order} is ready.", {})


def test_blank_text_is_silence_without_piper() -> None:
    tts = Tts()
    assert tts.render("   ") == b""
    assert tts.render_template("{name}", {"name": ""}) == b""
    assert tts.syntheses == 0


def test_english_voice_refuses_chinese_text() -> None:
    tts = Tts()
    with pytest.raises(UnsupportedText, match="CJK") as caught:
        tts.render("您好，张三，您的购物车里还有商品。")
    assert "张三" not in str(caught.value)
    with pytest.raises(UnsupportedText):
        tts.render_template("Hello {name}.", {"name": "张三"})
    tts.voice().check_text("Hello José, your café order.")  # Latin letters are fine
    assert tts.syntheses == 0


def test_pick_voice_by_language() -> None:
    tts = Tts()
    assert tts.pick_voice("en-US") == DEFAULT_VOICE
    assert tts.pick_voice("zh-CN") == "espeak:cmn"  # no piper voice: espeak-ng's
    with pytest.raises(VoiceNotFound, match="xx-YY"):
        tts.pick_voice("xx-YY")
    with pytest.raises(VoiceNotFound, match="nobody"):
        tts.pick_voice("en", "nobody")


def test_missing_voice_files(tmp_path: Path) -> None:
    with pytest.raises(VoiceNotFound, match=r"nope\.onnx"):
        load_voice(tmp_path / "nope.onnx")
    model = tmp_path / "lonely.onnx"
    model.symlink_to(default_model_path())
    with pytest.raises(VoiceNotFound, match=r"lonely\.onnx\.json"):
        load_voice(model)


@pytest.mark.parametrize(
    ("model_bytes", "config_text"),
    [
        pytest.param(b"not a model" * 100, None, id="corrupt-model"),
        pytest.param(None, "{not json", id="corrupt-config"),
        pytest.param(None, "{}", id="not-a-piper-config"),
    ],
)
def test_corrupt_voice_files(
    tmp_path: Path, model_bytes: bytes | None, config_text: str | None
) -> None:
    model = tmp_path / "broken.onnx"
    if model_bytes is None:
        model.symlink_to(default_model_path())
    else:
        model.write_bytes(model_bytes)
    config = config_text or Path(f"{default_model_path()}.json").read_text(encoding="utf-8")
    Path(f"{model}.json").write_text(config, encoding="utf-8")
    with pytest.raises(VoiceLoadError, match=r"broken\.onnx"):
        load_voice(model)


def test_unusable_cache_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(PromptCacheError, match="not usable"):
        PromptCache(blocker / "cache")
    folder = tmp_path / "cache"
    cache = PromptCache(folder)
    folder.rmdir()
    folder.write_text("now a file")
    with pytest.raises(PromptCacheError, match="cannot write"):
        cache.put("0" * 64, b"\0\0")


WRITER = """
import sys
from voice.tts import PromptCache
cache = PromptCache(sys.argv[1])
payload = bytes([int(sys.argv[2])]) * 200_000
for _ in range(40):
    cache.put("k" * 64, payload)
"""


def test_concurrent_writers_never_leave_a_torn_entry(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(byte)], cwd=ROOT)
        for byte in (1, 2)
    ]
    while any(writer.poll() is None for writer in writers):
        entry = cache.get("k" * 64)
        if entry is not None:
            assert len(entry) == 200_000
            assert entry in (b"\1" * 200_000, b"\2" * 200_000)
    assert [writer.returncode for writer in writers] == [0, 0]
    assert cache.get("k" * 64) in (b"\1" * 200_000, b"\2" * 200_000)
    assert [path.name for path in tmp_path.iterdir()] == ["k" * 64 + ".pcm"]  # no temp files


def tone(frequency: float, rate: int, duration: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * duration)) / rate
    return (np.sin(2 * np.pi * frequency * t) * np.hanning(t.size)).astype(np.float32)


def test_resample_keeps_the_passband_and_stops_aliases() -> None:
    kept = resample(tone(1000, 22050), 22050, 8000)
    assert kept.size == 8000
    expected = tone(1000, 8000)
    assert np.max(np.abs(kept - expected)) < 0.01
    # 5 kHz would fold to 3 kHz at 8 kHz without the filter
    folded = resample(tone(5000, 22050), 22050, 8000)
    assert np.sqrt(np.mean(folded**2)) < 1e-3 * np.sqrt(np.mean(tone(5000, 22050) ** 2))


def test_resample_other_rates() -> None:
    assert resample(tone(1000, 16000), 16000, 8000).size == 8000
    assert resample(tone(1000, 8000), 8000, 8000).size == 8000
    assert resample(np.zeros(0, np.float32), 22050, 8000).size == 0


def test_a_language_without_a_piper_voice_speaks_through_espeak_ng() -> None:
    from voice.espeak import load_espeak

    tts = Tts()
    voice = tts.pick_voice("zh-CN")
    assert voice == "espeak:cmn"
    pcm = tts.render_template("您好，{name}，您的订单已发货。", {"name": "王先生"}, voice=voice)
    assert 2.0 < len(pcm) / 16000 < 8.0  # seconds of 8 kHz 16-bit audio
    assert tts.voice(voice).info.family == "zh"
    with pytest.raises(VoiceNotFound, match="no voice 'xx-nowhere'"):
        load_espeak("xx-nowhere")
