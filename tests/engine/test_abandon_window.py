"""Abandoned calls are counted over the regulator's window, across runs (issue 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dialer.config import parse_campaign
from dialer.engine.simulate import SimOptions, run_simulated
from dialer.intake.service import IntakeOptions, import_file
from dialer.sim.scenario import flat_scenario
from dialer.store import open_store

START = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)


def test_a_rerun_counts_the_abandons_of_the_earlier_run_in_the_window(tmp_path: Path) -> None:
    campaign = parse_campaign({
        "name": "w", "region": "CN", "agents": {"count": 3},
        "dial": {"mode": "predictive", "pacer": "ratio:3", "max_attempts": 1},
        "compliance": "uk-ofcom",  # 3% over 24 hours
    }, "w.yaml")
    world = flat_scenario(answer=0.4, fast_failure=0.1, talk_mean=60, wrap_up=5, agents=3)
    leads = tmp_path / "leads.csv"
    leads.write_text("phone\n" + "".join(f"1350{i:07d}\n" for i in range(2000)),
                     encoding="utf-8")
    with open_store(f"sqlite:///{tmp_path}/w.db") as store:
        with store.write() as uow:
            import_file(uow, leads, campaign="w", source="v", options=IntakeOptions(workers=1),
                        now=START, actor="t")
        first = run_simulated(store, campaign, world,
                              SimOptions(start=START, duration=timedelta(minutes=30), seed=1))
        second = run_simulated(store, campaign, world,
                               SimOptions(start=START + timedelta(hours=2),
                                          duration=timedelta(minutes=30), seed=2))
        next_day = run_simulated(store, campaign, world,
                                 SimOptions(start=START + timedelta(days=2),
                                            duration=timedelta(minutes=30), seed=3))
    assert first.abandon_window["window_hours"] == 24
    assert first.abandon_window["abandoned"] > 0  # three lines per agent overdial
    assert first.abandon_window["rate"] == round(first.abandon_rate, 5)
    both = first.abandon_window["live_answers"] + second.contacts
    assert second.abandon_window["live_answers"] == both  # the first run is in the window
    assert next_day.abandon_window["live_answers"] == next_day.contacts  # it is not
