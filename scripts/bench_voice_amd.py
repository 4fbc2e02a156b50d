#!/usr/bin/env python3
"""Answering-machine detection benchmark: our `AnswerDetector` against Asterisk's app_amd.

Method: `voice.amd_corpus.amd_cases` makes the corpus (its docstring lists the recipes and
their shares: people who wait, try again, answer late or with a long greeting; voicemail
with long greetings and a beep, short greetings and a beep, no beep, and the prank
"Hello?" greeting; English from piper and espeak-ng, Mandarin from espeak-ng; levels,
line noise at 10-40 dB SNR, telephone band and G.711). Both detectors hear every case
frame by frame from the answer to its end, then `close()`. Accuracy is correct / all, a
NOT_SURE counting as wrong; decision time is the audio time from the answer to the end
of the deciding frame. For our detector, beeps: a truth beep is found when a `BeepEnded`
ends within 100 ms of it; timing error is |reported end - true end|; a false beep is one
reported where none was (or more than 100 ms off). Feed cost: wall time per `feed` call.
`human_wait_ms`: for people decided HUMAN, the decision's time after their greeting ended
(the silence they hear before the caller speaks, less the prompt's own start). `floor_ms`:
the p95 an oracle would have that decides each person the moment their greeting ends.
Goal: ours >= 95 % correct, decision p95 <= 2.5 s, and more correct than Asterisk.

    .venv/bin/python scripts/bench_voice_amd.py [--quick] [--cases 200] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rules.signals import AnswerKind  # noqa: E402
from voice.amd import AnswerClassifier, AnswerDecided, AnswerDetector, AsteriskAmd  # noqa: E402
from voice.amd_corpus import AmdCase, amd_cases  # noqa: E402
from voice.corpus import frames  # noqa: E402

SEED = 7
GOAL_ACCURACY, GOAL_P95_MS = 0.95, 2500
BEEP_TOLERANCE_MS = 100


@dataclass(frozen=True, slots=True)
class Outcome:
    case: AmdCase
    decision: AnswerDecided
    beep_end_ms: int | None
    feed_us: list[float]


def hear(case: AmdCase, detector: AnswerClassifier) -> Outcome:
    """Feed a case's frames to the detector; the decision, the last beep, feed costs."""
    costs: list[float] = []
    for frame in frames(case.pcm):
        began = time.perf_counter()
        detector.feed(frame)
        costs.append((time.perf_counter() - began) * 1e6)
    detector.close()
    assert detector.decision is not None
    beep = getattr(detector, "beep", None)
    return Outcome(case, detector.decision, None if beep is None else beep.at_ms, costs)


def summarise(outcomes: list[Outcome]) -> dict[str, object]:
    correct = [o.decision.kind == o.case.truth for o in outcomes]
    times = np.array([o.decision.at_ms for o in outcomes])
    humans = np.array([o.case.truth is AnswerKind.HUMAN for o in outcomes])
    confusion = Counter(f"{o.case.truth.value}->{o.decision.kind.value}" for o in outcomes)
    recipes: dict[str, list[bool]] = {}
    for outcome, right in zip(outcomes, correct, strict=True):
        recipes.setdefault(outcome.case.recipe, []).append(right)
    costs = np.concatenate([o.feed_us for o in outcomes])
    waits = np.array([o.decision.at_ms - o.case.greeting_end_ms for o in outcomes
                      if o.case.truth is o.decision.kind is AnswerKind.HUMAN])
    room = [right for o, right in zip(outcomes, correct, strict=True) if o.case.room_db]
    return {
        "cases": len(outcomes),
        "accuracy": float(np.mean(correct)),
        "confusion": dict(sorted(confusion.items())),
        "causes": dict(Counter(o.decision.cause.value for o in outcomes).most_common()),
        "by_recipe": {name: f"{sum(r)}/{len(r)}" for name, r in sorted(recipes.items())},
        "decision_ms": _percentiles(times),
        "human_decision_ms": _percentiles(times[humans]),
        "machine_decision_ms": _percentiles(times[~humans]),
        "human_wait_ms": _percentiles(waits),
        "room_talk": f"{sum(room)}/{len(room)}",
        "feed_us": {"mean": round(float(costs.mean()), 1),
                    "p99": round(float(np.percentile(costs, 99)), 1),
                    "max": round(float(costs.max()), 1)},
        "wrong": [f"{o.case.name} -> {o.decision.kind.value} ({o.decision.cause.value} at "
                  f"{o.decision.at_ms} ms)" for o, right in zip(outcomes, correct, strict=True)
                  if not right],
    }


def beep_figures(outcomes: list[Outcome]) -> dict[str, object]:
    truths = [o for o in outcomes if o.case.beep_ms is not None]
    errors = [abs(o.beep_end_ms - o.case.beep_ms[1]) for o in truths
              if o.case.beep_ms is not None and o.beep_end_ms is not None
              and abs(o.beep_end_ms - o.case.beep_ms[1]) <= BEEP_TOLERANCE_MS]
    false = sum(o.beep_end_ms is not None and (
        o.case.beep_ms is None or abs(o.beep_end_ms - o.case.beep_ms[1]) > BEEP_TOLERANCE_MS)
        for o in outcomes)
    return {"beeps": len(truths), "found": len(errors), "false": false,
            "end_error_ms": _percentiles(np.array(errors)) if errors else {}}


def _percentiles(values: np.ndarray) -> dict[str, int]:
    if not len(values):
        return {}
    return {f"p{q}": int(np.percentile(values, q)) for q in (50, 95)} | {"max": int(values.max())}


def floor(corpus: list[AmdCase]) -> dict[str, int]:
    """The least decision time p95 any detector can have on this corpus: no one can tell a
    person before their greeting ends (an oracle decides them there, and every machine
    the moment its speech begins)."""
    people = np.array([c.greeting_end_ms for c in corpus if c.truth is AnswerKind.HUMAN])
    every = np.array([c.greeting_end_ms if c.truth is AnswerKind.HUMAN else c.speech_ms
                      for c in corpus])
    return {"human_p95": int(np.percentile(people, 95)), "all_p95": int(np.percentile(every, 95))}


def run(quick: bool = False, cases: int | None = None, seed: int = SEED) -> dict[str, object]:
    """Generate the corpus, run both detectors on it, print and return the figures."""
    began = time.perf_counter()
    corpus = amd_cases(cases or (60 if quick else 200), seed)
    made = time.perf_counter() - began
    detectors: dict[str, Callable[[], AnswerClassifier]] = {
        "ours": AnswerDetector, "asterisk": AsteriskAmd}
    results: dict[str, object] = {"seed": seed, "corpus_s": round(made, 1),
                                  "audio_s": round(sum(c.duration_ms for c in corpus) / 1000),
                                  "recipes": dict(Counter(c.recipe for c in corpus)),
                                  "floor_ms": floor(corpus)}
    for name, make in detectors.items():
        outcomes = [hear(case, make()) for case in corpus]
        results[name] = summarise(outcomes)
        if name == "ours":
            results["beeps"] = beep_figures(outcomes)
    ours, asterisk = results["ours"], results["asterisk"]
    assert isinstance(ours, dict)
    assert isinstance(asterisk, dict)
    results["goal_met"] = bool(ours["accuracy"] >= GOAL_ACCURACY
                               and ours["decision_ms"]["p95"] <= GOAL_P95_MS
                               and ours["accuracy"] > asterisk["accuracy"])
    results["wall_s"] = round(time.perf_counter() - began, 1)
    report(results)
    return results


def report(results: dict[str, object]) -> None:
    print(__doc__.split("\n\n")[1])
    print(f"\nseed {results['seed']}, {results['audio_s']} s of audio, corpus made in "
          f"{results['corpus_s']} s; recipes {results['recipes']}")
    print(f"decision time floor (an oracle that decides a person as their greeting ends): "
          f"{results['floor_ms']}")
    for name in ("ours", "asterisk"):
        figures = results[name]
        assert isinstance(figures, dict)
        print(f"\n{name}: {figures['accuracy']:.1%} correct of {figures['cases']}")
        for key in ("confusion", "by_recipe", "room_talk", "causes", "decision_ms",
                    "human_decision_ms", "machine_decision_ms", "human_wait_ms", "feed_us"):
            print(f"  {key}: {figures[key]}")
        for line in figures["wrong"]:
            print(f"  wrong: {line}")
    print(f"\nbeeps (ours): {results['beeps']}")
    print(f"goal met: {results['goal_met']}; wall time {results['wall_s']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 cases instead of 200")
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    run(args.quick, args.cases, args.seed)


if __name__ == "__main__":
    main()
