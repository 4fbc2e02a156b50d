#!/usr/bin/env python3
"""Caller-ID benchmark (issue 6): a managed pool against round-robin, over 10 days.

Method: the real engine runs a robocall campaign that wants about 1,000 calls a day (its
trunk allows that many; an in-memory supply of Chinese mobile numbers; callees answer
alike at every hour, 70% of them when they trust the number) for 10 simulated days on
the simulated network, showing 20 marketing caller IDs from 10 cities. Callees mark a
caller ID as spam (`CallerIdEffects`): each call a number places beyond 30 in one day is
marked with 10% chance, and each mark makes 2% more of the callees who would have
answered let it ring (never fewer than 30% of them answer); callees answer numbers from
another city 85% as often; a marking service reports the marks every morning. Each seed
runs twice:

- managed: the campaign's caller-ID pool (`lines.callerid`: local presence, 20 calls a day
  per number, a quarter in reserve, the daily review resting marked or weak numbers);
- round-robin: the same 20 numbers in turn, no caps.

Answer rate per day = calls a person answered / calls placed that day.

    .venv/bin/python scripts/bench_callerids.py [--seeds 3] [--days 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.config import parse_campaign  # noqa: E402
from dialer.engine.build import build_engine  # noqa: E402
from dialer.engine.commands import CloseAttempt  # noqa: E402
from dialer.engine.ledger import Claim, MemoryLedger, Write  # noqa: E402
from dialer.engine.simulate import SimOptions, run_engine  # noqa: E402
from dialer.sim.scenario import CallerIdEffects, default_scenario  # noqa: E402
from dialer.store import ClaimedLead  # noqa: E402
from rules.dispositions import PERSON_ANSWERED  # noqa: E402

CITIES = ["+861012345678", "+862161234567", "+862087654321", "+8675512345678",
          "+8657112345678", "+862812345678", "+862712345678", "+862512345678",
          "+862912345678", "+862312345678"]  # Beijing ... Chongqing fixed lines
NUMBERS = CITIES + [n[:-1] + str((int(n[-1]) + 1) % 10) for n in CITIES]  # two per city
CPS = 1000 / 86400  # the campaign wants about 1,000 calls a day
ANSWER_SHARE = 0.7  # of all callees (the rest: vacant, busy, switched off, ...)
EFFECTS = CallerIdEffects(tolerated_per_day=30, mark_chance=0.10, loss_per_mark=0.02,
                          floor=0.3, nonlocal_factor=0.85)


class DailyLedger(MemoryLedger):
    """The in-memory ledger, counting calls and answers per day."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[date] = Counter()
        self.answered: Counter[date] = Counter()

    def commit(self, writes: Sequence[Write], claim: Claim | None = None
               ) -> list[ClaimedLead]:
        for write in writes:
            if isinstance(write, CloseAttempt) and write.outcome.disposition != "failed":
                day = write.outcome.ended_at.date()
                self.calls[day] += 1
                self.answered[day] += write.outcome.disposition in PERSON_ANSWERED
        return super().commit(writes, claim)


def run(managed: bool, seed: int, days: int) -> DailyLedger:
    campaign = parse_campaign({
        "name": "callerids", "purpose": "marketing", "region": "CN",
        "dial": {"mode": "robocall", "max_concurrent": 8, "max_attempts": 1},
        "script": "script.yaml",
        "agents": {"count": 2},
        "compliance": "us-tcpa",
        "lines": {"trunks": [{"name": "sim-trunk", "sip": "sip:t.example", "channels": 10,
                              "cps": CPS}],
                  "pools": {"all": ["sim-trunk"]},
                  "caller_ids": [{"number": n, "pool": "marketing", "kind": "fixed_line"}
                                 for n in NUMBERS]},
    }, "<bench>", base_dir=ROOT / "examples" / "cart-recovery")
    engine = build_engine(campaign, 1)
    if not managed:
        engine.lines.numbers = ()
        engine.lines.caller_ids = tuple(NUMBERS)
    base = default_scenario()
    # Callees who answer a number they trust (the world of "80% answered"), alike at every
    # hour: what changes is only the number they see.
    flat = replace(base.population.answer, by_local_hour=None, share=ANSWER_SHARE)
    scenario = replace(base, caller_ids=EFFECTS,
                       population=replace(base.population, answer=flat))
    ledger = DailyLedger()
    run_engine(engine, ledger, campaign, scenario,
               SimOptions(start=scenario.start, duration=timedelta(days=days), seed=seed))
    return ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--days", type=int, default=10)
    args = parser.parse_args()
    print(__doc__.split("\n\n")[1])
    began = time.perf_counter()
    names = ("managed", "round-robin")
    calls = {name: [0] * args.days for name in names}
    answered = {name: [0] * args.days for name in names}
    for seed in range(1, args.seeds + 1):
        for name in names:
            ledger = run(name == "managed", seed, args.days)
            for i, day in enumerate(sorted(ledger.calls)[:args.days]):
                calls[name][i] += ledger.calls[day]
                answered[name][i] += ledger.answered[day]
    print(f"\nseeds 1..{args.seeds}, answer rate per day (all seeds' calls together)\n")
    print(f"{'day':>4} " + " ".join(f"{name:>24}" for name in names))
    for i in range(args.days):
        cells = [f"{answered[n][i] / max(calls[n][i], 1):6.1%} of {calls[n][i]:6d} calls"
                 for n in names]
        print(f"{i + 1:>4} " + " ".join(f"{cell:>24}" for cell in cells))
    for name in names:
        first = answered[name][0] / max(calls[name][0], 1)
        last = answered[name][-1] / max(calls[name][-1], 1)
        print(f"{name}: day 1 {first:.1%}, day {args.days} {last:.1%}, change "
              f"{(last - first) * 100:+.1f} points")
    print(f"\ntotal wall time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
