"""Leads from JSON rows and from events, into a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from dialer.config import Campaign, parse_campaign
from dialer.errors import UsageError
from dialer.intake.api import LeadIn, LeadsAdded, add_leads, trigger_lead
from dialer.store import AttemptOutcome, ClaimedLead, Lead, NewAttempt, Store, SuppressionScope
from rules.number_status import NumberStatus, NumberStatusRecord
from rules.prefilter import Verdict

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SHANGHAI = timezone(timedelta(hours=8))

SHOP = parse_campaign({
    "name": "shop", "region": "CN", "compliance": "cn-marketing",
    "allowed_number_types": ["mobile", "fixed_line_or_mobile"],
    "dial": {"max_attempts": 2},
    "segments": [{"name": "big-carts", "when": {"cart_value": {"at_least": 300}},
                  "then": {"priority": 10}}],
    "triggers": {"cart_abandoned": {"delay": "2h"}, "payment_failed": {"delay": "10m"}},
})
US = parse_campaign({"name": "us-service", "region": "US", "compliance": "us-tcpa",
                     "purpose": "service"})


def add(store: Store, leads: list[LeadIn], *, campaign: Campaign = SHOP, now: datetime = NOW,
        source: str = "shop", event: str | None = None) -> LeadsAdded:
    with store.write() as uow:
        return add_leads(uow, campaign, leads, source=source, now=now, actor="api:test",
                         event=event)


def trigger(store: Store, phone: str, *, occurred_at: datetime, now: datetime = NOW,
            event: str = "cart_abandoned", **attributes: str) -> LeadsAdded:
    with store.write() as uow:
        return trigger_lead(uow, SHOP, event, LeadIn(phone=phone, attributes=attributes),
                            occurred_at=occurred_at, now=now, actor="api:test", source="shop")


def claim(store: Store, now: datetime, campaign: Campaign = SHOP) -> list[ClaimedLead]:
    with store.write() as uow:
        campaign_id = uow.campaign_id(campaign.name)
        assert campaign_id is not None
        return uow.claim_leads(campaign_id=campaign_id, campaign=campaign.name, limit=100,
                               now=now, max_attempts=campaign.dial.max_attempts)


def stored(store: Store, campaign: str = "shop") -> dict[str, Lead]:
    with store.read() as uow:
        campaign_id = uow.campaign_id(campaign)
        if campaign_id is None:
            return {}
        return {lead.e164: lead for lead in uow.leads_sample(campaign_id, 1000)}


def finish(store: Store, lead: ClaimedLead, state: str) -> None:
    """Dial a claimed lead once and close the attempt leaving the lead in `state`."""
    with store.write() as uow:
        campaign_id = uow.campaign_id("shop")
        assert campaign_id is not None
        uow.record_attempts([NewAttempt(attempt_id=f"a{lead.id}", campaign_id=campaign_id,
                                        lead_id=lead.id, e164=lead.e164, trunk="t",
                                        caller_id="+862100000000", placed_at=NOW)])
        uow.close_attempt(AttemptOutcome(attempt_id=f"a{lead.id}", disposition="completed",
                                         ended_at=NOW + timedelta(minutes=1), lead_state=state))


# --- add_leads: the pre-filter ------------------------------------------------------------


def test_every_lead_gets_the_import_pre_filters_verdict_in_request_order(store: Store) -> None:
    with store.write() as uow:
        uow.add_suppression("+8613712345678", scope=SuppressionScope.CAMPAIGN, campaign="shop",
                            reason="opt-out", actor="t", now=NOW)
        uow.put_number_status(NumberStatusRecord(e164="+8613612345678",
                                                 status=NumberStatus.VACANT, observed_at=NOW,
                                                 source="t"), actor="t")
    phones = ["13800138000", "+86 138 0013 8000", "10512345678", "无", "", "4001234567",
              "13712345678", "13612345678", "+1 650 253 0000", "１３９１２３４５６７８"]
    added = add(store, [LeadIn(phone=p) for p in phones])

    assert [item.index for item in added.items] == list(range(len(phones)))
    assert [item.verdict for item in added.items] == [
        Verdict.ACCEPTED, Verdict.DUPLICATE, Verdict.INVALID, Verdict.UNPARSEABLE,
        Verdict.EMPTY, Verdict.TYPE_NOT_ALLOWED, Verdict.SUPPRESSED, Verdict.KNOWN_DEAD,
        Verdict.ACCEPTED, Verdict.ACCEPTED]
    assert added.accepted == 3
    assert added.rejected == {"empty": 1, "unparseable": 1, "invalid": 1,
                              "type_not_allowed": 1, "duplicate": 1, "suppressed": 1,
                              "known_dead": 1}
    leads = stored(store)
    assert set(leads) == {"+8613800138000", "+16502530000", "+8613912345678"}
    first, repeat = added.items[0], added.items[1]
    assert first.lead_id == repeat.lead_id == leads["+8613800138000"].id  # the request's own
    assert added.items[8].lead_id == leads["+16502530000"].id
    assert [item.lead_id for item in added.items[2:8]] == [None] * 6
    assert first.e164_masked == "+86*********00"
    assert added.items[3].e164_masked is None  # not a number: nothing to mask
    assert leads["+8613800138000"].raw == "13800138000"  # as given
    assert leads["+16502530000"].timezones == ("America/Los_Angeles",)


def test_a_number_already_in_the_campaign_is_a_duplicate_with_its_lead(store: Store) -> None:
    first = add(store, [LeadIn(phone="13800138000")])
    again = add(store, [LeadIn(phone="+8613800138000"), LeadIn(phone="13912345678")])
    assert [item.verdict for item in again.items] == [Verdict.DUPLICATE, Verdict.ACCEPTED]
    assert again.items[0].lead_id == first.items[0].lead_id is not None
    assert len(stored(store)) == 2


def test_us_campaign_reads_national_numbers_in_its_region(store: Store) -> None:
    added = add(store, [LeadIn(phone="(650) 253-0000"), LeadIn(phone="+1 212 555 0100"),
                        LeadIn(phone="+8613800138000"), LeadIn(phone="650 253 000")],
                campaign=US, source="crm")
    assert [item.verdict for item in added.items] == [
        Verdict.ACCEPTED, Verdict.ACCEPTED, Verdict.ACCEPTED, Verdict.INVALID]
    assert set(stored(store, "us-service")) == {"+16502530000", "+12125550100", "+8613800138000"}
    with store.read() as uow:
        assert uow.campaign_region("us-service") == "US"


# --- add_leads: what is stored ------------------------------------------------------------


def test_attributes_reach_the_claimed_lead(store: Store) -> None:
    attributes = {"姓名": "王伟", "order_id": "A-1001", "cart_value": "88.50"}
    add(store, [LeadIn(phone="13800138000", attributes=attributes)])
    (lead,) = claim(store, NOW)
    assert lead.attributes == attributes
    assert lead.e164 == "+8613800138000"


def test_a_lead_is_not_claimed_before_it_is_due(store: Store) -> None:
    in_shanghai = (NOW + 2 * HOUR).astimezone(SHANGHAI)
    added = add(store, [LeadIn(phone="13800138000", due_at=in_shanghai),
                        LeadIn(phone="13912345678", due_at=NOW - HOUR),  # past: due now
                        LeadIn(phone="13512345678")])
    assert [item.due_at for item in added.items] == [NOW + 2 * HOUR, NOW, NOW]
    assert {lead.e164 for lead in claim(store, NOW)} == {"+8613912345678", "+8613512345678"}
    assert claim(store, NOW + 2 * HOUR - timedelta(seconds=1)) == []
    assert [lead.e164 for lead in claim(store, NOW + 2 * HOUR)] == ["+8613800138000"]


def test_leads_are_placed_in_the_campaigns_segments(store: Store) -> None:
    add(store, [LeadIn(phone="13800138000", attributes={"cart_value": "450"}),
                LeadIn(phone="13912345678", attributes={"cart_value": "20"})])
    leads = stored(store)
    assert (leads["+8613800138000"].segment, leads["+8613800138000"].priority) == ("big-carts", 10)
    assert (leads["+8613912345678"].segment, leads["+8613912345678"].priority) == ("", 0)
    assert claim(store, NOW)[0].e164 == "+8613800138000"  # priority first


def test_one_list_per_source_and_day_adding_up_its_requests(store: Store) -> None:
    one = add(store, [LeadIn(phone="13800138000"), LeadIn(phone="无")])
    two = add(store, [LeadIn(phone="13912345678")], now=NOW + HOUR)
    other_source = add(store, [LeadIn(phone="13512345678")], source="crm")
    next_day = add(store, [LeadIn(phone="13612345678")], now=NOW + timedelta(days=1))
    assert one.list_id == two.list_id
    assert len({one.list_id, other_source.list_id, next_day.list_id}) == 3
    with store.read() as uow:
        campaign_id = uow.campaign_id("shop")
        assert campaign_id is not None
        lists = {lead_list.id: lead_list for lead_list in uow.lists(campaign_id)}
    day = lists[one.list_id]
    assert (day.source, day.file_name) == ("shop", "api:shop:2026-11-24")
    assert day.summary["rows_read"] == 3
    assert day.summary["accepted"] == 2
    assert day.summary["rejected"] == {"unparseable": 1}
    leads = stored(store)
    assert [leads["+8613800138000"].row_number, leads["+8613912345678"].row_number] == [1, 3]


def test_one_audit_entry_with_counts_and_no_numbers(store: Store) -> None:
    add(store, [LeadIn(phone="13800138000", attributes={"姓名": "王伟"}),
                LeadIn(phone="10512345678")])
    with store.read() as uow:
        (entry,) = uow.audit_entries(subject="campaign:shop")
    assert (entry.action, entry.actor) == ("leads.api_add", "api:test")
    assert entry.detail["accepted"] == 1
    assert entry.detail["rejected"] == {"invalid": 1}
    assert entry.detail["source"] == "shop"
    text = json.dumps(entry.detail, ensure_ascii=False)
    for secret in ("138", "105", "王伟"):
        assert secret not in text


def add_then_fail(store: Store) -> None:
    with store.write() as uow:
        add_leads(uow, SHOP, [LeadIn(phone="13800138000")], source="shop", now=NOW,
                  actor="t")
        raise RuntimeError("the request failed after the leads were added")


def test_nothing_is_stored_when_the_transaction_rolls_back(store: Store) -> None:
    with pytest.raises(RuntimeError, match="failed after"):
        add_then_fail(store)
    with store.read() as uow:
        assert uow.campaign_id("shop") is None
        assert uow.audit_entries() == []
    assert add(store, [LeadIn(phone="13800138000")]).accepted == 1  # nothing left behind


def test_a_source_must_fit_the_list_table(store: Store) -> None:
    with pytest.raises(UsageError, match="source"), store.write() as uow:
        add_leads(uow, SHOP, [], source="", now=NOW, actor="t")


# --- events ------------------------------------------------------------------------


def test_an_event_lead_is_due_the_triggers_delay_after_the_event(store: Store) -> None:
    added = trigger(store, "13800138000", occurred_at=NOW - timedelta(minutes=30),
                    cart_value="99")
    assert added.items[0].verdict is Verdict.ACCEPTED
    assert added.items[0].due_at == NOW + timedelta(minutes=90)
    assert claim(store, NOW + HOUR) == []
    (lead,) = claim(store, NOW + timedelta(minutes=90))
    assert lead.attributes == {"cart_value": "99"}
    with store.read() as uow:
        (entry,) = uow.audit_entries(subject="campaign:shop")
    assert entry.action == "leads.trigger"
    assert entry.detail["event"] == "cart_abandoned"


def test_an_old_event_is_due_now(store: Store) -> None:
    added = trigger(store, "13800138000", occurred_at=NOW - timedelta(days=1))
    assert added.items[0].due_at == NOW


def test_add_leads_with_an_event_uses_its_delay_from_now(store: Store) -> None:
    added = add(store, [LeadIn(phone="13800138000"),
                        LeadIn(phone="13912345678", due_at=NOW + 3 * HOUR)],
                event="payment_failed")
    assert [item.due_at for item in added.items] == [NOW + timedelta(minutes=10), NOW + 3 * HOUR]


def test_an_unknown_event_is_refused_naming_the_known_ones(store: Store) -> None:
    with pytest.raises(UsageError) as caught:
        trigger(store, "13800138000", occurred_at=NOW, event="cart_abandonned")
    message = str(caught.value)
    assert "'cart_abandonned'" in message
    assert "cart_abandoned, payment_failed" in message
    assert "138" not in message
    assert stored(store) == {}
    with pytest.raises(UsageError, match="no trigger"), store.write() as uow:
        trigger_lead(uow, US, "cart_abandoned", LeadIn(phone="6502530000"), occurred_at=NOW,
                     now=NOW, actor="t", source="shop")


def test_a_second_event_moves_a_waiting_lead_to_the_earlier_time(store: Store) -> None:
    first = trigger(store, "13800138000", occurred_at=NOW, order_id="A-1", cart_value="99")
    assert first.items[0].due_at == NOW + 2 * HOUR
    earlier = trigger(store, "+8613800138000", occurred_at=NOW - HOUR, cart_value="350")
    later = trigger(store, "13800138000", occurred_at=NOW + HOUR, coupon="SAVE10")

    for added in (earlier, later):
        (item,) = added.items
        assert (item.verdict, item.updated, item.lead_id) == (
            Verdict.ACCEPTED, True, first.items[0].lead_id)
        assert item.due_at == NOW + HOUR  # the earlier of the two, each time
    lead = stored(store)["+8613800138000"]
    assert lead.next_attempt_at == NOW + HOUR
    assert lead.attributes == {"order_id": "A-1", "cart_value": "350", "coupon": "SAVE10"}
    assert lead.segment == ""  # kept as placed on insert
    assert len(stored(store)) == 1
    (claimed,) = claim(store, NOW + HOUR)
    assert claimed.attributes["cart_value"] == "350"


@pytest.mark.parametrize("state", ["done", "dead", "exhausted", "dialing"])
def test_an_event_does_not_bring_back_a_lead_that_is_not_waiting(store: Store,
                                                                  state: str) -> None:
    trigger(store, "13800138000", occurred_at=NOW - 2 * HOUR, order_id="A-1")
    (lead,) = claim(store, NOW)
    if state != "dialing":
        finish(store, lead, state)
    before = stored(store)["+8613800138000"]
    again = trigger(store, "13800138000", occurred_at=NOW, order_id="A-2")
    (item,) = again.items
    assert (item.verdict, item.lead_id, item.updated) == (Verdict.DUPLICATE, lead.id, False)
    assert stored(store)["+8613800138000"] == before


def test_an_event_for_a_lead_out_of_attempts_is_a_duplicate(store: Store) -> None:
    (item,) = trigger(store, "13800138000", occurred_at=NOW - 2 * HOUR).items
    for attempt in range(SHOP.dial.max_attempts):
        (lead,) = claim(store, NOW + attempt * HOUR)
        with store.write() as uow:
            campaign_id = uow.campaign_id("shop")
            assert campaign_id is not None
            uow.record_attempts([NewAttempt(attempt_id=f"a{attempt}", campaign_id=campaign_id,
                                            lead_id=lead.id, e164=lead.e164, trunk="t",
                                            caller_id="+862100000000", placed_at=NOW)])
            uow.close_attempt(AttemptOutcome(attempt_id=f"a{attempt}", disposition="busy",
                                             ended_at=NOW, lead_state="ready",
                                             next_attempt_at=NOW + (attempt + 1) * HOUR))
    again = trigger(store, "13800138000", occurred_at=NOW).items[0]
    assert (again.verdict, again.lead_id) == (Verdict.DUPLICATE, item.lead_id)
    assert stored(store)["+8613800138000"].attempts_made == SHOP.dial.max_attempts


def test_an_event_for_a_suppressed_number_is_refused_lead_or_not(store: Store) -> None:
    trigger(store, "13800138000", occurred_at=NOW)
    with store.write() as uow:
        uow.add_suppression("+8613800138000", scope=SuppressionScope.GLOBAL, campaign=None,
                            reason="opt-out", actor="t", now=NOW)
    again = trigger(store, "13800138000", occurred_at=NOW - HOUR)
    assert again.items[0].verdict is Verdict.SUPPRESSED
    assert stored(store)["+8613800138000"].next_attempt_at == NOW + 2 * HOUR  # unchanged


# --- LeadIn ------------------------------------------------------------------------


def test_lead_in_validates_like_a_config_dataclass() -> None:
    adapter = TypeAdapter(LeadIn)
    lead = adapter.validate_json(json.dumps({
        "phone": "+8613800138000", "attributes": {"姓名": "王伟"},
        "due_at": "2026-11-24T19:00:00+08:00"}).encode())
    assert lead.due_at == NOW + 2 * HOUR
    assert dict(lead.attributes) == {"姓名": "王伟"}
    with pytest.raises(TypeError):
        lead.attributes["x"] = "y"  # type: ignore[index]
    bad: list[tuple[dict[str, object], str]] = [
        ({"due_at": "2026-11-24T19:00:00"}, "timezone"),
        ({"attributes": {"cart_value": 99}}, "valid string"),
        ({"attributes": {"": "x"}}, "attribute names must be non-empty"),
        ({"attributes": {f"k{i}": "v" for i in range(51)}}, "at most 50 attributes, got 51"),
        ({"attributes": {"note": "长" * 1001}}, "attributes.note: at most 1000 characters"),
        ({"priority": 5}, "Unexpected keyword"),
        ({"phone": None}, "valid string"),
    ]
    for data, message in bad:
        with pytest.raises(ValidationError, match=message):
            adapter.validate_python({"phone": "13800138000", **data})
    assert len(adapter.validate_python(
        {"phone": "1", "attributes": {f"k{i}": "v" * 1000 for i in range(50)}}).attributes) == 50


def test_lead_in_checks_its_limits_when_made_directly_too() -> None:
    with pytest.raises(ValueError, match="at most 1000 characters"):
        LeadIn(phone="13800138000", attributes={"note": "x" * 1001})
    with pytest.raises(ValueError, match="time zone"):
        LeadIn(phone="13800138000", due_at=datetime(2026, 11, 24, 9, 0))

