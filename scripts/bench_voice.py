"""The voice benchmark (issue 8): every goal measured on corpora this script generates.

    .venv/bin/python scripts/bench_voice.py [--quick] [--only tones,amd,keywords,announce]

Parts (each also runs alone: scripts/bench_voice_<part>.py):

- tones: every SIT class and the Chinese 450 Hz cadences, 20 seeds each, at 8 dB SNR after
  G.711 (μ-law), through `voice.tones.ToneDetector`; ringback, dial tone and silence must
  give no finding;
- amd: `voice.amd.AnswerDetector` against Asterisk's app_amd on people and voicemails;
- keywords: English keywords (pocketsphinx) and the vosk backend with its Korean test model;
- announce: carrier announcements against the shipped library (`voice.announcements`).

Barge-in over real SIP is measured by the harness phone in
tests/lines/sip/test_sip_barge_in.py (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from voice import corpus
from voice.tones import SIT_CODES, ToneDetector

PARTS = ("tones", "amd", "keywords", "announce")


def bench_tones(quick: bool = False) -> dict[str, Any]:
    """SIT classes and cadences at 8 dB SNR after G.711; no finding for ordinary tones."""
    seeds = range(5 if quick else 20)
    right = wrong = 0
    for case in corpus.tone_cases():
        for seed in seeds:
            rng = np.random.default_rng(seed)
            signal = case.signal
            if case.expected is not None:
                signal = corpus.with_noise(signal, 8.0, rng,
                                           reference_power=corpus.active_power(signal))
            detector, heard = ToneDetector(), []
            for frame in corpus.frames(corpus.pcm(signal, "ulaw")):
                heard += detector.feed(frame)
            got = heard[0].tone if heard else None
            if got == case.expected:
                right += 1
            else:
                wrong += 1
    result = {"cases": right + wrong, "correct": right, "wrong": wrong,
              "sit_classes": len(SIT_CODES), "snr_db": 8.0}
    print(f"tones: {right}/{right + wrong} correct at 8 dB SNR after G.711 "
          f"({len(SIT_CODES)} SIT codes, 450 Hz cadences, ringback/dial tone/silence)")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller corpora")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    args = parser.parse_args()
    for part in args.only.split(","):
        if part not in PARTS:
            parser.error(f"unknown part {part!r}; choose from {', '.join(PARTS)}")
        print(f"\n=== {part} ===", flush=True)
        began = time.perf_counter()
        if part == "tones":
            bench_tones(args.quick)
        else:  # each part's own script prints its method and figures
            script = Path(__file__).with_name(f"bench_voice_{part}.py")
            subprocess.run([sys.executable, str(script), *(["--quick"] if args.quick else [])],
                           check=True)
        print(f"({part}: {time.perf_counter() - began:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
