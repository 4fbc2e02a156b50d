"""Progressive dialing on the benchmark model reproduces its closed form (issue 4's check).

Model: a dial is a live answer with probability p after a delay uniform on [5, 20] s, else
a fast failure with probability f released after 5 s, else no answer released at the 25 s
ring timeout; talk exponential with mean T, wrap-up W fixed. One call per ready agent gives
occupancy (T + W) / (T + W + d / p) with d = p*12.5 + f*5 + (1-p-f)*25: 64.5% for p=0.25,
f=0.20, T=120 s, W=10 s.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.config import parse_campaign
from dialer.engine.planning import planning_campaign, simulate_shift
from dialer.engine.simulate import SimOptions, run_simulated
from dialer.intake.service import IntakeOptions, import_file
from dialer.sim.scenario import flat_scenario, load_scenario
from dialer.store import open_store

START = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)


def closed_form(p: float, f: float, talk: float, wrap: float) -> float:
    dial_time = p * 12.5 + f * 5 + (1 - p - f) * 25
    return (talk + wrap) / (talk + wrap + dial_time / p)


@pytest.mark.slow
def test_progressive_occupancy_matches_the_closed_form() -> None:
    agents = 20
    campaign = parse_campaign({
        "name": "cf", "region": "CN", "agents": {"count": agents},
        "dial": {"mode": "progressive", "max_attempts": 1, "ring_timeout": "25s",
                 "abandon_after": "2s"},
        "compliance": "cn-collections",
    }, "cf.yaml")
    scenario = flat_scenario(answer=0.25, fast_failure=0.20, talk_mean=120, wrap_up=10,
                             agents=agents)
    with tempfile.TemporaryDirectory() as tmp:
        leads = Path(tmp) / "leads.csv"
        leads.write_text("phone\n" + "".join(f"1350{i:07d}\n" for i in range(agents * 700)),
                         encoding="utf-8")
        with open_store(f"sqlite:///{tmp}/cf.db") as store:
            with store.write() as uow:
                import_file(uow, leads, campaign="cf", source="v",
                            options=IntakeOptions(workers=1), now=START, actor="t")
            report = run_simulated(store, campaign, scenario,
                                   SimOptions(start=START, duration=timedelta(hours=8), seed=3))
    expected = closed_form(0.25, 0.20, 120, 10)
    assert expected == pytest.approx(0.645, abs=0.0005)
    assert report.agent_occupancy == pytest.approx(expected, abs=0.01)
    assert report.abandon_rate == 0.0  # progressive never leaves an answered call waiting


def test_the_planner_reproduces_the_closed_form_on_the_benchmark_scenario() -> None:
    """`dialer simulate`'s path (in-memory ledger, the YAML scenario) over 4 seeds."""
    world = load_scenario(Path(__file__).parents[2] / "examples" / "scenarios"
                          / "pacing-benchmark.yaml")
    shifts = [simulate_shift(planning_campaign(20), world, pacer="progressive", seed=seed,
                             hours=8) for seed in range(1, 5)]
    mean = sum(s.occupancy for s in shifts) / len(shifts)
    assert mean == pytest.approx(closed_form(0.25, 0.20, 120, 10), abs=0.01)
    assert all(s.abandoned == 0 for s in shifts)


def test_the_benchmark_yaml_is_the_flat_scenario() -> None:
    world = load_scenario(Path(__file__).parents[2] / "examples" / "scenarios"
                          / "pacing-benchmark.yaml")
    assert world == flat_scenario(answer=0.25, fast_failure=0.20, talk_mean=120, wrap_up=10,
                                  agents=20)
