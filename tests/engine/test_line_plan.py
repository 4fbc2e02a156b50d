"""The line plan: channel caps, a segment's tier first, its caller-ID sub-pool."""

from __future__ import annotations

import pytest

from dialer.config import parse_campaign
from dialer.engine.lines import LinePlan
from dialer.errors import ConfigError


def plan() -> LinePlan:
    return LinePlan(channels={"std": 2, "prem": 1}, caller_ids=("+861", "+862"),
                    tiers={"std": "standard", "prem": "premium"},
                    pools={"marketing": ("+861", "+862"), "vip": ("+869",)})


def test_a_tier_is_served_first_then_any_line() -> None:
    lines = plan()
    assert lines.take(tier="premium") == ("prem", "+861")
    assert lines.take(tier="premium")[0] == "std"  # type: ignore[index]  # premium full
    assert lines.take()[0] == "std"  # type: ignore[index]
    assert lines.take() is None
    lines.release("prem")
    assert lines.take()[0] == "prem"  # type: ignore[index]


def test_a_sub_pool_gives_its_caller_ids_and_an_empty_or_unknown_one_the_default() -> None:
    lines = plan()
    assert lines.take(pool="vip") == ("std", "+869")
    assert lines.take(pool="nope")[1] in ("+861", "+862")  # type: ignore[index]


def test_a_marketing_segment_cannot_ask_for_service_caller_ids() -> None:
    with pytest.raises(ConfigError, match="never used for marketing"):
        parse_campaign({"name": "c", "compliance": "us-tcpa", "purpose": "marketing",
                        "segments": [{"name": "s", "then": {"caller_ids": "service"}}]})
