"""Faults of the trunk, not the callee: a silent call ends as a network error."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from dialer.cli import app
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


def test_a_503_storm_moves_traffic_to_the_next_pool_and_the_report_shows_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "leads.csv").write_text(
        "phone\n" + "\n".join(f"138{i:08d}" for i in range(3000)) + "\n", encoding="utf-8")
    (tmp_path / "campaign.yaml").write_text("""\
name: storm
purpose: service
region: CN
allowed_number_types: [mobile]
leads: {file: leads.csv}
dial: {mode: progressive, max_attempts: 1}
agents: {count: 20}
compliance: cn-collections
lines:
  trunks:
    - {name: a, sip: "sip:a.example", channels: 40, cps: 10}
    - {name: b, sip: "sip:b.example", channels: 40, cps: 10}
  pools: {first: [a], second: [b]}
  failover: {chain: [first, second]}
""", encoding="utf-8")
    (tmp_path / "scenario.yaml").write_text("""\
trunks:
  - name: a
    failure_windows: [{start: 30m, end: 60m, rate: 0.4}]
  - name: b
""", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(tmp_path / "campaign.yaml"), "--db",
                                 f"sqlite:///{tmp_path / 'd.db'}", "--json", "--hours", "2",
                                 "--scenario", str(tmp_path / "scenario.yaml")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.splitlines()[-1])
    events = report["line_events"]
    assert events[0]["trunk"] == "a"
    assert events[0]["to"] == "out"
    out_at = datetime.fromisoformat(events[0]["at"])
    start = datetime.fromisoformat(report["started_at"])
    assert timedelta(minutes=30) < out_at - start < timedelta(minutes=31)  # within 30 s+
    assert events[-1]["trunk"] == "a"
    assert events[-1]["to"] == "in_service"  # back after the storm
    back_at = datetime.fromisoformat(events[-1]["at"])
    assert back_at - start < timedelta(minutes=63)  # within 2 min of healing (+ ring time)
