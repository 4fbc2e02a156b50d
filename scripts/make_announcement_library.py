#!/usr/bin/env python3
"""Build the shipped announcement library (voice/data/announcements) with espeak-ng.

Two made-up carriers stand in for real ones until a deployment records its own:

- carrier-a: the China Mobile style ("您拨打的号码是空号，请查证后再拨" ...), Mandarin at 270
  words a minute, then 0.6 s of silence and the same in US English at 180;
- carrier-b: the China Telecom style ("对不起，您拨叫的号码不存在" ...), Mandarin only, at
  230 words a minute and a lower pitch (35 against 50).

Five meanings each (vacant, suspended, powered_off, unreachable, busy): ten recordings,
about 55 s and 0.9 MB. Each is synthesised at 22050 Hz, resampled to 8 kHz
(voice.resample), trimmed to 50 ms of silence either side, set to -20 dBFS while it
sounds, and written as 16-bit mono PCM WAV, with `index.csv` naming file, meaning, carrier,
language and text. espeak-ng is deterministic: a rerun writes the same files.

    .venv/bin/python scripts/make_announcement_library.py [--out voice/data/announcements]

`speak` is also what the tests and the benchmark synthesise their announcements with.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voice.announcements import INDEX_NAME, LIBRARY_DIR  # noqa: E402
from voice.resample import resample  # noqa: E402

Samples = npt.NDArray[np.float64]
RATE = 8000
LEVEL_DBFS = -20.0
EDGE_S = 0.05
PAUSE_S = 0.6  # between the Mandarin and the English of a bilingual recording


@dataclass(frozen=True, slots=True)
class Voice:
    """An espeak-ng voice and its settings."""

    name: str  # espeak-ng -v, e.g. "cmn", "cmn+f3", "en-us"
    speed: int  # -s, words a minute
    pitch: int = 50  # -p, 0-99


@dataclass(frozen=True, slots=True)
class Carrier:
    """A carrier's announcements: Mandarin texts by meaning, and English ones if it has
    bilingual recordings."""

    name: str
    mandarin: Voice
    texts: dict[str, str]
    english: Voice | None = None
    english_texts: dict[str, str] | None = None


CARRIER_A = Carrier(
    "carrier-a", Voice("cmn", 270),
    {"vacant": "您拨打的号码是空号，请查证后再拨。",
     "suspended": "您拨打的号码已停机。",
     "powered_off": "您拨打的电话已关机。",
     "unreachable": "您拨打的电话暂时无法接通，请稍后再拨。",
     "busy": "您拨打的电话正在通话中，请稍后再拨。"},
    Voice("en-us", 180),
    {"vacant": "Sorry, the number you dialed does not exist, please check it and dial again.",
     "suspended": "Sorry, the number you dialed has been suspended.",
     "powered_off": "Sorry, the subscriber you dialed is powered off.",
     "unreachable": "Sorry, the subscriber you dialed cannot be connected at the moment, "
                    "please redial later.",
     "busy": "Sorry, the subscriber you dialed is busy now, please redial later."})
CARRIER_B = Carrier(
    "carrier-b", Voice("cmn", 230, 35),
    {"vacant": "对不起，您拨叫的号码不存在。",
     "suspended": "您拨叫的用户因欠费已暂停服务。",
     "powered_off": "您拨叫的用户已关机，请稍后再拨。",
     "unreachable": "您拨叫的用户不在服务区。",
     "busy": "您拨叫的用户正忙，请稍后再拨。"})
CARRIERS = (CARRIER_A, CARRIER_B)


def speak(text: str, voice: Voice) -> Samples:
    """`text` spoken by espeak-ng at 8 kHz (int16 scale), trimmed, at LEVEL_DBFS."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is not installed (Debian package espeak-ng)")
    result = subprocess.run([espeak, "-v", voice.name, "-s", str(voice.speed), "-p",
                             str(voice.pitch), "--stdout", "--", text],
                            check=True, capture_output=True, timeout=60)
    with wave.open(io.BytesIO(result.stdout)) as source:
        rate = source.getframerate()
        raw = np.frombuffer(source.readframes(source.getnframes()), "<i2")
    return at_level(trim(resample(raw.astype(np.float32), rate, RATE).astype(np.float64)))


def trim(samples: Samples, threshold: float = 300.0) -> Samples:
    """`samples` without their silent ends, but for EDGE_S either side."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if not len(loud):
        return samples
    edge = round(EDGE_S * RATE)
    trimmed: Samples = samples[max(0, loud[0] - edge): loud[-1] + edge]
    return trimmed


def at_level(samples: Samples, dbfs: float = LEVEL_DBFS) -> Samples:
    """`samples` scaled so that their 20 ms frames within 30 dB of the loudest average
    `dbfs` (the level while the voice sounds, pauses aside)."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    power = np.mean(frames**2, axis=1)
    active = float(np.mean(power[power >= power.max() / 1000])) if len(power) else 1.0
    scaled: Samples = samples * (32768 * 10 ** (dbfs / 20) / np.sqrt(max(active, 1e-9)))
    return scaled


def recording(carrier: Carrier, meaning: str) -> Samples:
    """A carrier's recording of one meaning: Mandarin, then English if it has any."""
    parts = [speak(carrier.texts[meaning], carrier.mandarin)]
    if carrier.english is not None and carrier.english_texts is not None:
        parts += [np.zeros(round(PAUSE_S * RATE)),
                  speak(carrier.english_texts[meaning], carrier.english)]
    joined: Samples = np.concatenate(parts)
    return joined


def write_wav(path: Path, samples: Samples) -> None:
    data = np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(2)
        target.setframerate(RATE)
        target.writeframes(data)


def build(folder: Path) -> list[Path]:
    """Write every carrier's recordings and the index into `folder`; the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, written = [], []
    for carrier in CARRIERS:
        for meaning, text in carrier.texts.items():
            name = f"{carrier.name.removeprefix('carrier-')}-{meaning}.wav"
            write_wav(folder / name, recording(carrier, meaning))
            english = (carrier.english_texts or {}).get(meaning)
            rows.append({"file": name, "meaning": meaning, "carrier": carrier.name,
                         "language": "cmn+en" if english else "cmn",
                         "text": f"{text} {english}" if english else text})
            written.append(folder / name)
    with open(folder / INDEX_NAME, "w", encoding="utf-8", newline="") as index:
        index.write("# The shipped announcement library: espeak-ng stand-ins for two carriers,\n"
                    "# made by scripts/make_announcement_library.py. Columns: see\n"
                    "# voice/announcements.py; 'text' is for people and is ignored.\n")
        writer = csv.DictWriter(index, ["file", "meaning", "carrier", "language", "text"],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return [*written, folder / INDEX_NAME]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=LIBRARY_DIR)
    folder = parser.parse_args().out
    files = build(folder)
    size = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files)} files, {size / 1e6:.2f} MB, to {folder}")


if __name__ == "__main__":
    main()
