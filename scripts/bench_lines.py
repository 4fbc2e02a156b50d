#!/usr/bin/env python3
"""Line benchmark (issue 6): trunk failover on the simulated network.

Method: the real engine (progressive, 40 agents, an in-memory lead supply) dials for two
hours over two trunk pools in failover order, `first` = trunk a and `second` = trunk b
(40 channels and 10 calls/s each). From minute 30 to minute 60 trunk a fails 40% of its
calls with 503 (the simulated network's failure window); b stays healthy. Each seed runs
twice on the same world: with failover (the campaign's default health settings:
10% of at least 20 calls in the last 100 / 5 min, cool-off 60 s, 3 probes) and without
(a threshold no trunk reaches). Per run:

- detection: time from the start of the failures to trunk a going out of service, and
  how many calls a carried in between;
- lost after detection: calls on a placed after it went out and before the failures
  stopped that failed with 503 (failed probes, and calls after a false return), as a
  share of all calls of the run;
- back: time from the end of the failures to a being in service again;
- failed on a: all calls that trunk a failed, with and without failover.

    .venv/bin/python scripts/bench_lines.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.config import parse_campaign  # noqa: E402
from dialer.config.campaign import Campaign  # noqa: E402
from dialer.engine.build import build_engine  # noqa: E402
from dialer.engine.commands import CloseAttempt, RecordAttempts  # noqa: E402
from dialer.engine.ledger import Claim, MemoryLedger, Write  # noqa: E402
from dialer.engine.simulate import SimOptions, run_engine  # noqa: E402
from dialer.sim.scenario import FailureWindow, SimTrunk, default_scenario  # noqa: E402
from dialer.store import ClaimedLead  # noqa: E402
from lines.health import TrunkState  # noqa: E402

STORM = (timedelta(minutes=30), timedelta(minutes=60))


class WatchingLedger(MemoryLedger):
    """The in-memory ledger, keeping each attempt's trunk, start and final status."""

    def __init__(self) -> None:
        super().__init__()
        self.placed: dict[str, tuple[str, datetime]] = {}
        self.failed: dict[str, datetime] = {}

    def commit(self, writes: list[Write], claim: Claim | None = None  # type: ignore[override]
               ) -> list[ClaimedLead]:
        for write in writes:
            if isinstance(write, RecordAttempts):
                for attempt in write.attempts:
                    self.placed[attempt.attempt_id] = (attempt.trunk, attempt.placed_at)
            elif isinstance(write, CloseAttempt) and write.outcome.sip_status == 503:
                self.failed[write.outcome.attempt_id] = write.outcome.ended_at
        return super().commit(writes, claim)


@dataclass(frozen=True, slots=True)
class Figures:
    detect_seconds: float | None
    detect_calls: int | None
    lost_share: float
    back_seconds: float | None
    failed_on_a: int
    calls: int


def campaign(failover: bool) -> Campaign:
    threshold = 0.10 if failover else 1.0
    return parse_campaign({
        "name": "failover", "purpose": "service", "region": "CN",
        "dial": {"mode": "progressive", "max_attempts": 1},
        "agents": {"count": 40}, "compliance": "cn-collections",
        "lines": {
            "trunks": [{"name": "a", "sip": "sip:a.example", "channels": 40, "cps": 10},
                       {"name": "b", "sip": "sip:b.example", "channels": 40, "cps": 10}],
            "pools": {"first": ["a"], "second": ["b"]},
            "failover": {"chain": ["first", "second"], "failure_threshold": threshold},
        },
    }, "<bench>")


def run(seed: int, failover: bool) -> Figures:
    window = FailureWindow(start=STORM[0], end=STORM[1], rate=0.4)
    base = default_scenario()
    scenario = replace(base, trunks=(SimTrunk(name="a", failure_windows=(window,)),
                                     SimTrunk(name="b")),
                       agents=replace(base.agents, count=40))
    config = campaign(failover)
    engine = build_engine(config, 1)
    ledger = WatchingLedger()
    start = scenario.start
    run_engine(engine, ledger, config, scenario,
               SimOptions(start=start, duration=timedelta(hours=2), seed=seed))
    storm_start, storm_end = start + STORM[0], start + STORM[1]
    changes = [c for c in ledger.line_changes if c.trunk == "a"]
    out = next((c.at for c in changes if c.after is TrunkState.OUT and c.at >= storm_start),
               None)
    back = next((c.at for c in changes if c.after is TrunkState.IN_SERVICE
                 and c.at >= storm_end), None)
    on_a = [(placed, attempt) for attempt, (trunk, placed) in ledger.placed.items()
            if trunk == "a"]
    detect_calls = None if out is None else sum(storm_start <= p < out for p, _ in on_a)
    # The storm's 503s after detection (the population's own 503s, on every trunk and at
    # every hour, are not the bad trunk's doing).
    lost = 0 if out is None else sum(1 for p, attempt in on_a
                                     if attempt in ledger.failed and out <= p < storm_end)
    return Figures(
        detect_seconds=None if out is None else (out - storm_start).total_seconds(),
        detect_calls=detect_calls, lost_share=lost / max(len(ledger.placed), 1),
        back_seconds=None if back is None else (back - storm_end).total_seconds(),
        failed_on_a=sum(1 for _, attempt in on_a if attempt in ledger.failed),
        calls=len(ledger.placed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    print(__doc__.split("\n\n")[1])
    began = time.perf_counter()
    managed = [run(seed, True) for seed in range(1, args.seeds + 1)]
    plain = [run(seed, False) for seed in range(1, args.seeds + 1)]
    detect = [f.detect_seconds for f in managed if f.detect_seconds is not None]
    calls = [f.detect_calls for f in managed if f.detect_calls is not None]
    back = [f.back_seconds for f in managed if f.back_seconds is not None]
    quick = sum(1 for f in managed if f.detect_seconds is not None
                and (f.detect_seconds <= 30 or (f.detect_calls or 0) <= 25))
    print(f"\n{args.seeds} seeds, 2 h runs, {statistics.fmean(f.calls for f in managed):.0f}"
          " calls a run\n")
    print(f"detected in          median {statistics.median(detect):.0f} s, worst "
          f"{max(detect):.0f} s; median {statistics.median(calls):.0f} calls, worst "
          f"{max(calls)} (missed: {args.seeds - len(detect)})")
    print(f"moved within 30 s or 25 calls: {quick} of {args.seeds} runs")
    lost = [f.lost_share for f in managed]
    print(f"lost after detection mean {statistics.fmean(lost):.3%}, worst {max(lost):.3%}"
          " of the run's calls (goal: under 1%)")
    print(f"back in service      median {statistics.median(back):.0f} s, worst "
          f"{max(back):.0f} s after healing; within 2 min: "
          f"{sum(b <= 120 for b in back)} of {args.seeds} (never back: {args.seeds - len(back)})")
    with_failover = statistics.fmean(f.failed_on_a for f in managed)
    without = statistics.fmean(f.failed_on_a for f in plain)
    print(f"failed on trunk a    with failover {with_failover:.0f} calls a run, "
          f"without {without:.0f}")
    print(f"\ntotal wall time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
