"""The contact rules inside the claim: a lead the rules hold back is not claimed, its due
time moves to when they allow it, and the rule is counted."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dialer.store import (
    AttemptOutcome,
    NewAttempt,
    NewLead,
    Store,
    SuppressionScope,
    open_store,
)
from rules.contact import Caps, ContactPolicy
from rules.windows import CallingWindows

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # Tuesday 11:00 in Shanghai
CN = CallingWindows(name="cn-marketing", weekly=(((time(9), time(12)), (time(14), time(18))),)
                    * 5 + ((), ()), holiday_country="CN")


def seed(store: Store, rows: list[tuple[str, tuple[str, ...], dict[str, str]]],
         campaign: str = "c", at: datetime = NOW) -> int:
    with store.write() as uow:
        campaign_id = uow.ensure_campaign(campaign, default_region="CN", now=NOW)
        list_id = uow.create_list(campaign_id, source="v", file_name="f.csv",
                                  sha256=uuid.uuid4().hex, now=NOW)
        uow.insert_leads([
            NewLead(campaign_id=campaign_id, list_id=list_id, row_number=i, e164=e164, raw="",
                    attributes=attributes, region="", number_type="mobile", timezones=zones,
                    carrier="", created_at=at - timedelta(minutes=len(rows) - i))
            for i, (e164, zones, attributes) in enumerate(rows)
        ])
    return campaign_id


def claim(store: Store, campaign_id: int, policy: ContactPolicy, now: datetime = NOW,
          limit: int = 10, campaign: str = "c") -> tuple[list[str], Counter[str]]:
    deferred: Counter[str] = Counter()
    with store.write() as uow:
        leads = uow.claim_leads(campaign_id=campaign_id, campaign=campaign, limit=limit,
                                now=now, max_attempts=5, policy=policy, deferred=deferred)
    return [lead.e164 for lead in leads], deferred


def next_due(store: Store, campaign_id: int, e164: str) -> datetime | None:
    with store.read() as uow:
        lead = uow.find_lead(campaign_id, e164)
    assert lead is not None
    return lead.next_attempt_at


def test_the_claim_holds_back_leads_outside_their_window_until_it_opens(store: Store) -> None:
    campaign_id = seed(store, [
        ("+8613500000001", ("Asia/Shanghai",), {}),  # 11:00 there: open
        ("+12125550101", ("America/New_York",), {}),  # 22:00 there: closed
    ])
    policy = ContactPolicy(name="t", purpose="marketing", windows=(CN,))
    claimed, deferred = claim(store, campaign_id, policy)
    assert claimed == ["+8613500000001"]
    assert deferred == Counter({"window": 1})
    assert next_due(store, campaign_id, "+12125550101") == datetime(2026, 11, 24, 14, 0,
                                                                      tzinfo=UTC)
    assert claim(store, campaign_id, policy)[0] == []  # not due again before it opens
    later = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert claim(store, campaign_id, policy, now=later)[0] == ["+12125550101"]


def test_caps_count_calls_in_other_campaigns_of_the_same_purpose(store: Store) -> None:
    number = "+8613500000002"
    first = seed(store, [(number, ("Asia/Shanghai",), {})], campaign="first")
    second = seed(store, [(number, ("Asia/Shanghai",), {})], campaign="second")
    with store.write() as uow:
        lead = uow.find_lead(first, number)
        assert lead is not None
        uow.record_attempts([NewAttempt(
            attempt_id=uuid.uuid4().hex, campaign_id=first, lead_id=lead.id, e164=number,
            trunk="t", caller_id="+862100000000", placed_at=NOW - timedelta(hours=1),
            purpose="marketing")])
    policy = ContactPolicy(name="t", purpose="marketing", caps=Caps(min_interval=timedelta(
        hours=6)))
    claimed, deferred = claim(store, second, policy, campaign="second")
    assert claimed == []
    assert deferred == Counter({"min_interval": 1})
    assert next_due(store, second, number) == NOW + timedelta(hours=5)
    service = ContactPolicy(name="t", purpose="service", caps=Caps(min_interval=timedelta(
        hours=6)))
    third = seed(store, [(number, ("Asia/Shanghai",), {})], campaign="third")
    assert claim(store, third, service, campaign="third")[0] == [number]


def test_consent_is_read_from_the_lead_and_missing_consent_is_rechecked_daily(
    store: Store,
) -> None:
    campaign_id = seed(store, [
        ("+8613500000003", ("Asia/Shanghai",), {"consent_source": "app",
                                                  "consent_at": "2026-11-01T08:00:00+08:00"}),
        ("+8613500000004", ("Asia/Shanghai",), {}),
        ("+8613500000005", ("Asia/Shanghai",), {"consent_source": "web",
                                                  "consent_at": "yesterday"}),
    ])
    policy = ContactPolicy(name="t", purpose="marketing", consent_required=True)
    claimed, deferred = claim(store, campaign_id, policy)
    assert claimed == ["+8613500000003"]
    assert deferred == Counter({"consent": 2})
    assert next_due(store, campaign_id, "+8613500000004") == NOW + timedelta(days=1)


def test_a_claim_looks_past_held_back_leads_to_fill_its_limit(store: Store) -> None:
    rows = [(f"+1212555{i:04d}", ("America/New_York",), {}) for i in range(30)]
    rows += [(f"+86135000{i:05d}", ("Asia/Shanghai",), {}) for i in range(5)]
    campaign_id = seed(store, rows)
    policy = ContactPolicy(name="t", purpose="marketing", windows=(CN,))
    claimed, deferred = claim(store, campaign_id, policy, limit=5)
    assert len(claimed) == 5
    assert all(e164.startswith("+86") for e164 in claimed)
    assert deferred["window"] == 30


def test_the_ready_queue_gives_higher_priority_first_and_skips_stopped_sources(
    store: Store,
) -> None:
    with store.write() as uow:
        campaign_id = uow.ensure_campaign("c", default_region="CN", now=NOW)
        lists = {source: uow.create_list(campaign_id, source=source, file_name=f"{source}.csv",
                                         sha256=uuid.uuid4().hex, now=NOW)
                 for source in ("shop", "vendor")}
        uow.insert_leads([
            NewLead(campaign_id=campaign_id, list_id=lists[source], row_number=i,
                    e164=f"+861350000{i:04d}", raw="", attributes={}, region="CN",
                    number_type="mobile", timezones=("Asia/Shanghai",), carrier="",
                    created_at=NOW - timedelta(minutes=10 - i), priority=priority,
                    segment="big" if priority else "")
            for i, (source, priority) in enumerate([("shop", 0), ("shop", 10), ("vendor", 10),
                                                    ("shop", 5)])
        ])
    policy = ContactPolicy(name="t", purpose="marketing")
    with store.write() as uow:
        claimed = uow.claim_leads(campaign_id=campaign_id, campaign="c", limit=10, now=NOW,
                                  max_attempts=3, policy=policy, stopped_sources=["vendor"])
    assert [lead.e164 for lead in claimed] == ["+8613500000001", "+8613500000003",
                                               "+8613500000000"]
    assert claimed[0].segment == "big"


# Property: whatever the leads, zones, histories and clock, the claim hands out no lead
# that an independent reading of the rules forbids.

_ZONE_SETS = [("Asia/Shanghai",), ("Asia/Shanghai",), ("America/New_York", "America/Chicago"),
              ("America/Los_Angeles",), ("Europe/London", "Europe/Jersey"), ("Asia/Urumqi",)]
_HOURS = {d: [(time(9), time(12)), (time(14), time(18))] for d in range(5)} | {5: [], 6: []}
_CAPS = Caps(per_day=2, per_24_hours=2, per_30_days=3, min_interval=timedelta(hours=6),
             unanswered_per_day=2)
_POLICY = ContactPolicy(name="cn-like", purpose="marketing", windows=(CN,), caps=_CAPS,
                        cooldowns=MappingProxyType({"rejected": timedelta(days=7),
                                                    "abandoned": timedelta(hours=72)}),
                        consent_required=True)
_CN_DAYS_OFF = holidays.country_holidays("CN", years=range(2025, 2028))
_MAKE_UP = holidays.China(years=range(2025, 2028)).weekend_workdays


def _open(at: datetime, zone: str) -> bool:
    local = at.astimezone(ZoneInfo(zone))
    day = local.date()
    if day in _CN_DAYS_OFF:
        return False
    weekday = 0 if day in _MAKE_UP else local.weekday()
    moment = time(local.hour, local.minute, local.second, local.microsecond)
    return any(start <= moment < end for start, end in _HOURS[weekday])


_MOSTLY = st.sampled_from([True, True, True, False])
_LEAD = st.tuples(st.sampled_from(_ZONE_SETS), _MOSTLY, _MOSTLY.map(lambda b: not b),
                  st.lists(st.tuples(st.floats(0, 24 * 40),
                                     st.sampled_from(["no_answer", "busy", "rejected",
                                                      "abandoned", "answered_human"]),
                                     st.sampled_from(["marketing", "service"])), max_size=5))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(leads=st.lists(_LEAD, min_size=1, max_size=12),
       days=st.integers(0, 365 * 2), hours=st.floats(0, 24) | st.floats(9, 18))
def test_no_claimed_lead_breaks_a_rule(tmp_path: Path, leads: list[tuple[
        tuple[str, ...], bool, bool, list[tuple[float, str, str]]]], days: int,
        hours: float) -> None:
    # Often inside Shanghai's calling hours, where most leads live, so claims do happen.
    now = datetime(2025, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai")) + timedelta(days=days,
                                                                            hours=hours)
    store = open_store(f"sqlite:///{tmp_path / uuid.uuid4().hex}.db")
    try:
        rows = [(f"+86135{i:08d}", zones, {"consent_source": "app",
                                           "consent_at": "2024-12-01T00:00:00Z"}
                 if consented else {}) for i, (zones, consented, _, _) in enumerate(leads)]
        campaign_id = seed(store, rows, at=now - timedelta(days=1))
        history = _write_history(store, campaign_id, leads, rows, now)
        claimed, _ = claim(store, campaign_id, _POLICY, now=now, limit=len(leads))
    finally:
        store.close()
    facts = {row[0]: lead for row, lead in zip(rows, leads, strict=True)}
    event(f"claimed {'some' if claimed else 'none'}")
    for e164 in claimed:
        zones, consented, suppressed, _ = facts[e164]
        assert consented
        assert not suppressed
        assert all(_open(now, zone) for zone in zones)
        _assert_caps(history[e164], now, zones[0])


def _write_history(store: Store, campaign_id: int, leads: list[Any], rows: list[Any],
                   now: datetime) -> dict[str, list[tuple[datetime, str, str]]]:
    history: dict[str, list[tuple[datetime, str, str]]] = {}
    with store.write() as uow:
        for (e164, _, _), (_, _, suppressed, calls) in zip(rows, leads, strict=True):
            lead = uow.find_lead(campaign_id, e164)
            assert lead is not None
            history[e164] = [(now - timedelta(hours=h), d, p) for h, d, p in calls]
            for at, disposition, purpose in history[e164]:
                attempt_id = uuid.uuid4().hex
                uow.record_attempts([NewAttempt(
                    attempt_id=attempt_id, campaign_id=campaign_id, lead_id=lead.id,
                    e164=e164, trunk="t", caller_id="+862100000000", placed_at=at,
                    purpose=purpose)])
                uow.close_attempt(AttemptOutcome(attempt_id=attempt_id, disposition=disposition,
                                                 ended_at=at, lead_state="ready",
                                                 next_attempt_at=now - timedelta(hours=1)))
            if suppressed:
                uow.add_suppression(e164, scope=SuppressionScope.GLOBAL, campaign=None,
                                    reason="opt-out", actor="t", now=now)
    return history


def _assert_caps(calls: list[tuple[datetime, str, str]], now: datetime, zone: str) -> None:
    mine = sorted((at, d) for at, d, p in calls if p == "marketing")
    day = now.astimezone(ZoneInfo(zone)).date()
    today = [(at, d) for at, d in mine if at.astimezone(ZoneInfo(zone)).date() == day]
    assert len(today) < 2
    assert sum(d != "answered_human" for _, d in today) < 2
    assert sum(now - at < timedelta(hours=24) for at, _ in mine) < 2
    assert sum(now - at < timedelta(days=30) for at, _ in mine) < 3
    assert all(now - at >= timedelta(hours=6) for at, _ in mine)
    for at, disposition in mine:
        rest = {"rejected": timedelta(days=7), "abandoned": timedelta(hours=72)}.get(disposition)
        assert rest is None or at + rest <= now
