"""The shipped examples and compliance profiles load into frozen, immutable objects."""

from __future__ import annotations

import dataclasses
from datetime import time, timedelta
from pathlib import Path

import pytest

from dialer.config import (
    Campaign,
    DaySpec,
    DialMode,
    ListenStep,
    MenuStep,
    TimeRange,
    load_campaign,
    load_profile,
    shipped_profiles,
)
from dialer.errors import ConfigError
from rules.dispositions import Disposition
from rules.phone import NumberType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def cart_recovery() -> Campaign:
    return load_campaign(EXAMPLES / "cart-recovery" / "campaign.yaml")


@pytest.fixture(scope="module")
def agents_progressive() -> Campaign:
    return load_campaign(EXAMPLES / "agents-progressive" / "campaign.yaml")


def test_cart_recovery_loads_with_its_referenced_files(cart_recovery: Campaign) -> None:
    assert cart_recovery.dial.mode is DialMode.ROBOCALL
    assert cart_recovery.allowed_number_types == frozenset({NumberType.MOBILE})
    assert cart_recovery.compliance.name == "cn-marketing"
    assert cart_recovery.lines is not None
    assert cart_recovery.lines.failover_chain == ("primary", "backup")
    assert [t.name for t in cart_recovery.lines.pool_trunks("backup")] == ["carrier-b"]
    assert cart_recovery.script is not None
    assert cart_recovery.script.index_of("opt-out") == 6
    menu = cart_recovery.script.steps[1]
    assert isinstance(menu, MenuStep)
    assert dict(menu.menu.digits) == {"1": "yes", "2": "no"}
    busy = cart_recovery.retry[Disposition.BUSY]
    assert (busy.after_min, busy.after_max) == (timedelta(minutes=10), timedelta(minutes=30))
    assert cart_recovery.retry[Disposition.VACANT].dead


def test_agents_progressive_resolves_leads_and_its_own_profile(
    agents_progressive: Campaign,
) -> None:
    folder = EXAMPLES / "agents-progressive"
    assert agents_progressive.leads is not None
    assert agents_progressive.leads.file == folder / "leads.xlsx"
    assert agents_progressive.compliance.name == "house-collections"
    assert agents_progressive.compliance.windows_on(5) == (TimeRange(start=time(10), end=time(16)),)
    assert agents_progressive.compliance.windows_on(6) == ()
    assert agents_progressive.agents.talk_time == timedelta(minutes=3)
    assert agents_progressive.lines is not None
    assert agents_progressive.lines.trunks[0].password_env == "PBX_PASSWORD"
    assert agents_progressive.script is None


def test_loaded_objects_are_frozen(cart_recovery: Campaign) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        cart_recovery.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cart_recovery.dial.max_attempts = 9  # type: ignore[misc]
    assert cart_recovery.lines is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        cart_recovery.lines.trunks[0].channels = 1  # type: ignore[misc]
    assert isinstance(cart_recovery.lines.trunks, tuple)
    with pytest.raises(TypeError):
        cart_recovery.retry[Disposition.BUSY] = cart_recovery.retry[Disposition.VACANT]  # type: ignore[index]
    assert cart_recovery.script is not None
    step = cart_recovery.script.steps[1]
    assert isinstance(step, ListenStep | MenuStep)


def test_every_shipped_profile_loads() -> None:
    assert set(shipped_profiles()) >= {
        "us-tcpa",
        "us-fl-ok",
        "uk-ofcom",
        "cn-marketing",
        "cn-collections",
    }
    for name in shipped_profiles():
        profile = load_profile(name)
        assert profile.name == name
        assert profile.source


def test_us_tcpa_values() -> None:
    profile = load_profile("us-tcpa")
    for day in range(7):
        assert profile.windows_on(day) == (TimeRange(start=time(8), end=time(21)),)
    assert profile.abandon is not None
    assert profile.abandon.cap == 0.03
    assert profile.abandon.window == timedelta(days=30)
    assert profile.abandon.message_within == timedelta(seconds=2)
    assert profile.min_ring == timedelta(seconds=15)


def test_us_fl_ok_values() -> None:
    profile = load_profile("us-fl-ok")
    assert profile.windows_on(2) == (TimeRange(start=time(8), end=time(20)),)
    assert profile.caps.per_24_hours == 3


def test_uk_ofcom_values() -> None:
    profile = load_profile("uk-ofcom")
    assert profile.abandon is not None
    assert (profile.abandon.cap, profile.abandon.window) == (0.03, timedelta(hours=24))
    assert profile.cooldown_after(Disposition.ABANDONED) == timedelta(hours=72)
    assert profile.min_ring == timedelta(seconds=15)


def test_cn_marketing_values() -> None:
    profile = load_profile("cn-marketing")
    assert profile.consent_required
    assert profile.windows is not None
    assert profile.windows[DaySpec.WEEKDAYS] == (
        TimeRange(start=time(9), end=time(12)),
        TimeRange(start=time(14), end=time(18)),
    )
    assert profile.windows_on(5) == ()
    assert (profile.caps.per_day, profile.caps.per_30_days) == (2, 3)
    assert profile.caps.min_interval == timedelta(hours=6)
    assert profile.cooldown_after(Disposition.REJECTED) == timedelta(days=7)
    assert profile.cooldown_after(Disposition.OPTED_OUT) is None  # forever
    assert profile.cooldown_after(Disposition.BUSY) == timedelta(0)


def test_cn_collections_values() -> None:
    profile = load_profile("cn-collections")
    for day in range(7):
        assert profile.windows_on(day) == (TimeRange(start=time(8), end=time(22)),)
    assert profile.caps.unanswered_per_day == 6


def test_load_profile_by_path_and_unknown_name(tmp_path: Path) -> None:
    profile = load_profile(EXAMPLES / "agents-progressive" / "compliance.yaml")
    assert profile.name == "house-collections"
    with pytest.raises(
        ConfigError, match=r"unknown compliance profile 'us-tcp'; did you mean 'us-tcpa'"
    ):
        load_profile("us-tcp")
