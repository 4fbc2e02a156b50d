"""The engine's line plan: a segment's tier first, its caller-ID sub-pool, and trunks that
fail over (health from `lines.health`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.config import parse_campaign
from dialer.engine.build import line_plan
from dialer.engine.lines import LinePlan
from dialer.errors import ConfigError
from lines.health import HealthSettings, TrunkState
from lines.trunks import TrunkSettings

T0 = datetime(2026, 11, 24, 9, tzinfo=UTC)


def plan() -> LinePlan:
    trunks = [TrunkSettings(name="std", channels=2, cps=100),
              TrunkSettings(name="prem", channels=1, cps=100, tier="premium")]
    return LinePlan.chain(trunks, {"all": ("std", "prem")}, ["all"], HealthSettings(),
                          ("+861", "+862"), {"marketing": ("+861", "+862"), "vip": ("+869",)})


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


def test_a_sub_pool_gives_its_caller_ids_and_an_unknown_one_the_default() -> None:
    lines = plan()
    vip = lines.take(T0, pool="vip")
    assert vip is not None
    assert vip.caller_id == "+869"
    other = lines.take(T0, pool="nope")
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
