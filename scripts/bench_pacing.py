#!/usr/bin/env python3
"""Pacing benchmark (issue 4): every pacer on the benchmark model, the same seeds.

Method: the real engine runs on the simulated network (`dialer.engine.planning`, leads
from the in-memory ledger) in the model of examples/scenarios/pacing-benchmark.yaml: a
dial is a live answer with p = 0.25 after U[5, 20] s, else a fast failure with f = 0.20
after 5 s, else no answer until the 25 s ring timeout; talk exponential with mean 120 s,
wrap-up 10 s; an answered call waits at most 2 s for an agent. N agents, an 8-hour shift,
seeds 1..K for every pacer (common random numbers: the n-th call to a number goes the
same way whichever pacer dialed it). Occupancy = (talk + wrap) / logged-in time; abandon
rate = abandoned / answered, over the shift; the cap is 3 %.

`ratio:<L>` is "hand-tuned": every level of a grid runs on the same seeds and the row
shows the level with the best mean occupancy whose shifts stayed at or under the cap on
at least 95 % of seeds (for teams up to --ratio-max-agents). The predictive pacer runs in
its one default configuration for every row.

    .venv/bin/python scripts/bench_pacing.py [--seeds 30] [--sizes 5,20,50,100] [--workers 2]
                                             [--ratios 1.05,1.1,...] [--ratio-max-agents 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.engine.planning import (  # noqa: E402
    Job,
    PacerSummary,
    planning_campaign,
    run_jobs,
    summarise,
)
from dialer.sim.scenario import load_scenario  # noqa: E402

SCENARIO = ROOT / "examples" / "scenarios" / "pacing-benchmark.yaml"
GOALS = {5: 0.77, 20: 0.88, 50: 0.92, 100: 0.95}
RATIO_GRID = (1.05, 1.1, 1.2, 1.25, 1.3, 1.4)
CAP = 0.03


def closed_form(p: float = 0.25, f: float = 0.20, talk: float = 120, wrap: float = 10) -> float:
    dial_time = p * 12.5 + f * 5 + (1 - p - f) * 25
    return (talk + wrap) / (talk + wrap + dial_time / p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--sizes", default="5,20,50,100")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--ratio-max-agents", type=int, default=20)
    parser.add_argument("--ratios", default=",".join(f"{r:g}" for r in RATIO_GRID),
                        help="the ratio:<L> levels tried for the hand-tuned row")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    print(__doc__.split("\n\n")[1])
    print(f"\nseeds 1..{args.seeds}, {args.hours:g} h shifts, {args.workers} worker processes;"
          f" progressive closed form {closed_form():.1%}\n")
    began = time.perf_counter()
    rows = bench(sizes, args)
    for agents in sizes:
        report(agents, rows[agents])
    print(f"total wall time {time.perf_counter() - began:.0f} s")


def bench(sizes: list[int], args: argparse.Namespace) -> dict[int, dict[str, PacerSummary]]:
    """Every size's shifts in one pool, the biggest teams first (the pool stays full)."""
    scenario = load_scenario(SCENARIO)
    jobs = []
    for agents in sorted(sizes, reverse=True):
        pacers = ["predictive", "progressive", "vicidial-adapt"]
        if agents <= args.ratio_max_agents:
            pacers += [f"ratio:{level}" for level in args.ratios.split(",")]
        jobs += [Job(pacer=name, seed=seed, hours=args.hours, agents=agents)
                 for name in pacers for seed in range(1, args.seeds + 1)]
    shifts = run_jobs(planning_campaign(max(sizes), cap=CAP), scenario, jobs,
                      workers=args.workers)
    rows: dict[int, dict[str, PacerSummary]] = {agents: {} for agents in sizes}
    for agents in sizes:
        for name in dict.fromkeys(s.pacer for s in shifts if s.agents == agents):
            rows[agents][name] = summarise(
                [s for s in shifts if s.agents == agents and s.pacer == name], CAP)
    return rows


def report(agents: int, rows: dict[str, PacerSummary]) -> None:
    ratios = [s for name, s in rows.items() if name.startswith("ratio:")]
    legal = [s for s in ratios if s.over_cap_share <= 0.05]
    best = max(legal, key=lambda s: s.occupancy.mean, default=None)
    goal_text = f"{GOALS[agents]:.0%}" if agents in GOALS else "none"
    print(f"{agents} agents: goal for predictive {goal_text}")
    print(f"  {'pacer':<22} {'occupancy':>16} {'abandon':>9} {'worst':>7} {'<= cap':>7}"
          f" {'talk min/agent-h':>17} {'dials/agent-h':>14}")
    shown = [rows["predictive"], rows["progressive"], rows["vicidial-adapt"]]
    if best is not None:
        shown.append(replace(best, pacer=f"{best.pacer} (best tuned)"))
    for s in shown:
        print(f"  {s.pacer:<22} {s.occupancy.mean:>9.1%} ± {s.occupancy.ci95:4.1%}"
              f" {s.abandon_rate.mean:>9.2%} {s.abandon_rate.high:>7.2%}"
              f" {1 - s.over_cap_share:>7.0%} {s.talk_minutes_per_agent_hour.mean:>17.1f}"
              f" {s.dials_per_agent_hour.mean:>14.1f}")
    if ratios:
        grid = ", ".join(f"{s.pacer.removeprefix('ratio:')}: {s.occupancy.mean:.1%}/"
                         f"{s.abandon_rate.mean:.1%}/{1 - s.over_cap_share:.0%}" for s in ratios)
        print(f"  ratio grid (occupancy/abandon/shifts <= cap): {grid}")
    ours = rows["predictive"]
    goal = GOALS.get(agents)
    met = "no goal for this team size" if goal is None else \
        f"occupancy {'meets' if ours.occupancy.mean >= goal else 'MISSES'} the goal"
    verdict = [met, f"{1 - ours.over_cap_share:.0%} of shifts at or under the cap"
               f" ({'ok' if ours.over_cap_share <= 0.05 else 'NOT ok'})"]
    if best is not None:
        gain = ours.occupancy.mean - best.occupancy.mean
        verdict.append(f"{gain * 100:+.1f} points over the best tuned ratio"
                       f" ({'ok' if gain >= 0.05 else 'under 5'})")
    print("  predictive: " + "; ".join(verdict) + "\n", flush=True)


if __name__ == "__main__":
    main()
