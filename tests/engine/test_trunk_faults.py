"""Faults of the trunk, not the callee: a silent call ends as a network error."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from dialer.config.campaign import DialMode
from dialer.engine.build import build_engine
from dialer.engine.ledger import MemoryLedger
from dialer.engine.planning import planning_campaign
from dialer.engine.simulate import SimOptions, run_engine
from dialer.sim.scenario import SimTrunk, default_scenario
from rules.dispositions import Disposition


def test_calls_answered_with_no_media_are_network_errors() -> None:
    scenario = dataclasses.replace(default_scenario(), trunks=(
        SimTrunk(name="sim-trunk", silent_rate=1.0),))
    what_if = planning_campaign(3)
    campaign = dataclasses.replace(what_if, dial=dataclasses.replace(
        what_if.dial, mode=DialMode.PROGRESSIVE))
    engine = build_engine(campaign, 1)
    run_engine(engine, MemoryLedger(), campaign, scenario,
               SimOptions(start=scenario.start, duration=timedelta(minutes=10), seed=1))
    dispositions = engine.outcomes.dispositions
    assert dispositions[Disposition.NETWORK_ERROR] > 10
    assert set(dispositions) == {Disposition.NETWORK_ERROR}
    assert engine.answers == 0  # never handed to an agent
