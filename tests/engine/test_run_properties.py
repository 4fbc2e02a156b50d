"""Whole-run properties: the engine, the real store and the simulated network together."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.config import parse_campaign
from dialer.config.campaign import Campaign
from dialer.engine.simulate import SimOptions, run_simulated
from dialer.intake.service import IntakeOptions, import_file
from dialer.sim.scenario import default_scenario
from dialer.store import SuppressionScope, open_store

START = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def campaign(mode: str) -> Campaign:
    data: dict[str, object] = {
        "name": "prop", "region": "CN",
        "dial": {"mode": mode, "max_attempts": 3, "max_concurrent": 6},
        "agents": {"count": 3}, "compliance": "cn-collections",
        "retry": {"no_answer": {"after": "2m"}, "busy": {"after": "2m"}},
    }
    if mode == "robocall":
        data["script"] = {"name": "s", "language": "zh", "steps": [{"say": "您好"}, "hangup"]}
    return parse_campaign(data, "prop.yaml")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    numbers=st.sets(st.integers(0, 9_999), min_size=5, max_size=40),
    suppress_before=st.sets(st.integers(0, 9_999), max_size=10),
    mode=st.sampled_from(["progressive", "robocall"]),
    seed=st.integers(0, 1000),
)
def test_suppressed_numbers_are_never_dialed_and_caps_hold(
    numbers: set[int], suppress_before: set[int], mode: str, seed: int
) -> None:
    config = campaign(mode)
    e164 = {n: f"+86135{n:08d}" for n in numbers | suppress_before}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        path.write_text("phone\n" + "".join(f"135{n:08d}\n" for n in sorted(numbers)),
                        encoding="utf-8")
        with open_store(f"sqlite:///{tmp}/p.db") as store:
            with store.write() as uow:
                import_file(uow, path, campaign="prop", source="v",
                            options=IntakeOptions(workers=1), now=START, actor="t")
                for n in suppress_before:
                    uow.add_suppression(e164[n], scope=SuppressionScope.CAMPAIGN,
                                        campaign="prop", reason="opt-out", actor="t", now=START)
            report = run_simulated(store, config, default_scenario(),
                                   SimOptions(start=START, duration=timedelta(minutes=20),
                                              seed=seed))
            with store.read() as uow:
                rows = list(uow.attempt_rows("prop"))
                suppressed = {s.e164 for s in uow.list_suppressions()}
    dialed_after_suppression = [r for r in rows if r.e164 in {e164[n] for n in suppress_before}]
    assert not dialed_after_suppression
    per_number: dict[str, int] = {}
    for row in rows:
        per_number[row.e164] = per_number.get(row.e164, 0) + 1
        assert row.disposition is not None
    assert all(count <= 3 for count in per_number.values())
    assert report.attempts == len(rows)
    # opt-outs during the run were suppressed at once and never called again
    for row in rows:
        if row.disposition == "opted_out":
            assert row.e164 in suppressed
            later = [r for r in rows if r.e164 == row.e164 and r.placed_at > row.placed_at]
            assert not later
