"""The engine's line plan: a segment's tier first, its caller-ID sub-pool, and trunks that
fail over (health from `lines.health`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from dialer.config import parse_campaign
from dialer.engine.build import build_engine, line_plan
from dialer.engine.commands import RecordAttempts
from dialer.engine.ledger import Claim, MemoryLedger, Write
from dialer.engine.lines import LinePlan
from dialer.engine.simulate import SimOptions, run_engine
from dialer.errors import ConfigError
from dialer.sim.scenario import default_scenario
from dialer.store import ClaimedLead
from lines.callerid import NumberKind, NumberSpec, SubPool
from lines.health import HealthSettings, TrunkState
from lines.trunks import TrunkSettings

T0 = datetime(2026, 11, 24, 9, tzinfo=UTC)


def plan() -> LinePlan:
    trunks = [TrunkSettings(name="std", channels=2, cps=100),
              TrunkSettings(name="prem", channels=1, cps=100, tier="premium")]
    numbers = [NumberSpec(number=n, sub_pool=SubPool(p), kind=NumberKind.FIXED_LINE,
                          added_on=date(2020, 1, 1))
               for n, p in (("+861012345678", "service"), ("+862161234567", "service"),
                            ("+862087654321", "marketing"), ("+8675512345678", "marketing"))]
    return LinePlan.chain(trunks, {"all": ("std", "prem")}, ["all"], HealthSettings(),
                          ("+861", "+862"), numbers=numbers, sub_pool="service")


def test_a_tier_is_served_first_then_any_line() -> None:
    lines = plan()
    first = lines.take(T0, tier="premium")
    assert first is not None
    assert first.trunk == "prem"
    second = lines.take(T0, tier="premium")
    assert second is not None
    assert second.trunk == "std"  # premium is full
    assert lines.take(T0) is not None
    assert lines.take(T0) is None
    lines.release("prem")
    again = lines.take(T0)
    assert again is not None
    assert again.trunk == "prem"


def test_a_sub_pool_gives_its_caller_ids_and_a_plan_without_numbers_the_default() -> None:
    lines = plan()
    marketing = lines.take(T0, pool="marketing")
    assert marketing is not None
    assert marketing.caller_id in ("+862087654321", "+8675512345678")
    service = lines.take(T0)  # the campaign's own sub-pool
    assert service is not None
    assert service.caller_id in ("+861012345678", "+862161234567")
    bare = LinePlan.single("t", 2, ("+861", "+862"))
    other = bare.take(T0, pool="marketing")
    assert other is not None
    assert other.caller_id in ("+861", "+862")


def test_a_failing_pool_hands_its_traffic_to_the_next_and_comes_back() -> None:
    campaign = parse_campaign({
        "name": "c", "compliance": "us-tcpa",
        "lines": {"trunks": [{"name": "a", "sip": "sip:a.example", "channels": 50, "cps": 50},
                             {"name": "b", "sip": "sip:b.example", "channels": 50, "cps": 50}],
                  "pools": {"first": ["a"], "second": ["b"]},
                  "failover": {"chain": ["first", "second"], "min_calls": 10}},
    })
    lines = line_plan(campaign)
    changes = []
    at = T0
    for _ in range(30):  # trunk a fails every call
        at += timedelta(seconds=1)
        taken = lines.take(at)
        assert taken is not None
        lines.release(taken.trunk)
        changes += lines.report(at, taken.trunk, failed=taken.trunk == "a", probe=taken.probe)
    assert [(c.trunk, c.after) for c in changes] == [("a", TrunkState.OUT)]
    later = lines.take(at + timedelta(seconds=1))
    assert later is not None
    assert later.trunk == "b"
    lines.release("b")
    lines.report(at, "b", failed=False, probe=False)
    at += timedelta(minutes=2)  # cooled off: probes go to a, and it has healed
    changes = lines.advance(at)
    for _ in range(5):
        taken = lines.take(at)
        assert taken is not None
        lines.release(taken.trunk)
        changes += lines.report(at, taken.trunk, failed=False, probe=taken.probe)
    assert [c.after for c in changes if c.trunk == "a"][-1] is TrunkState.IN_SERVICE


def test_a_marketing_segment_cannot_ask_for_service_caller_ids() -> None:
    with pytest.raises(ConfigError, match="never used for marketing"):
        parse_campaign({"name": "c", "compliance": "us-tcpa", "purpose": "marketing",
                        "segments": [{"name": "s", "then": {"caller_ids": "service"}}]})


def test_a_managed_caller_id_pool_never_goes_over_a_numbers_daily_cap() -> None:
    numbers = ["+861012345678", "+862161234567", "+862087654321", "+8675512345678"]
    campaign = parse_campaign({
        "name": "c", "compliance": "us-tcpa", "purpose": "marketing",
        "dial": {"mode": "progressive", "max_attempts": 1}, "agents": {"count": 5},
        "lines": {"trunks": [{"name": "sim-trunk", "sip": "sip:a.example", "channels": 20,
                              "cps": 5}],
                  "pools": {"all": ["sim-trunk"]},
                  "caller_ids": [{"number": n, "pool": "marketing", "kind": "fixed_line",
                                  "daily_cap": 6} for n in numbers]
                  + [{"number": "+862888888888", "pool": "service", "kind": "fixed_line"}]},
    })
    engine = build_engine(campaign, 1)
    ledger = CallerIds()
    scenario = default_scenario()
    run_engine(engine, ledger, campaign, scenario,
               SimOptions(start=scenario.start, duration=timedelta(hours=2), seed=3))
    used = Counter(ledger.shown)
    assert set(used) <= set(numbers)  # never the service number
    assert len(used) == 3  # one of four waits in the reserve
    assert max(used.values()) <= 6
    assert sum(used.values()) == 18  # then the campaign waits: caps are never exceeded


class CallerIds(MemoryLedger):
    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []

    def commit(self, writes: Sequence[Write], claim: Claim | None = None) -> list[ClaimedLead]:
        self.shown += [a.caller_id for w in writes if isinstance(w, RecordAttempts)
                       for a in w.attempts]
        return super().commit(writes, claim)
