"""Campaigns, lead lists and leads, on every supported database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dialer.errors import StoreError
from dialer.store import NewLead, Store
from dialer.store.queries import IN_CHUNK

NOW = datetime(2024, 5, 1, 8, 30, 15, 123456, tzinfo=UTC)
SHA = "ab" * 32


def make_leads(campaign_id: int, list_id: int, count: int, *, first: int = 0) -> list[NewLead]:
    return [
        NewLead(
            campaign_id=campaign_id,
            list_id=list_id,
            row_number=index + 2,
            e164=f"+86138{index:08d}",
            raw=f"138 {index:08d}",
            attributes={"姓名": "张三", "city": "上海"},
            region="CN",
            number_type="mobile",
            timezones=("Asia/Shanghai",),
            carrier="中国移动",
            created_at=NOW,
        )
        for index in range(first, first + count)
    ]


def setup_campaign(store: Store, name: str = "spring") -> tuple[int, int]:
    with store.write() as uow:
        campaign_id = uow.ensure_campaign(name, default_region="CN", now=NOW)
        list_id = uow.create_list(
            campaign_id, source="vendor-a", file_name="leads.csv", sha256=SHA, now=NOW
        )
    return campaign_id, list_id


def test_ensure_campaign_creates_once(store: Store) -> None:
    with store.write() as uow:
        first = uow.ensure_campaign("spring", default_region="CN", now=NOW)
        again = uow.ensure_campaign("spring", default_region="US", now=NOW)
        other = uow.ensure_campaign("autumn", default_region="CN", now=NOW)
    assert first == again != other
    with store.read() as uow:
        assert uow.campaign_names() == ["autumn", "spring"]
        assert uow.campaign_id("spring") == first
        assert uow.campaign_id("winter") is None


def test_lists_are_found_by_content_and_carry_a_summary(store: Store) -> None:
    campaign_id, list_id = setup_campaign(store)
    with store.write() as uow:
        uow.set_list_summary(list_id, {"rows": 3, "rejected": {"format": 1}, "note": "好"})
    with store.read() as uow:
        found = uow.find_list(campaign_id, SHA)
        assert uow.find_list(campaign_id, "cd" * 32) is None
        assert uow.lists(campaign_id) == [found]
    assert found is not None
    assert (found.id, found.source, found.file_name, found.imported_at) == (
        list_id,
        "vendor-a",
        "leads.csv",
        NOW,
    )
    assert found.summary == {"rows": 3, "rejected": {"format": 1}, "note": "好"}


def test_the_same_file_cannot_be_listed_twice_for_a_campaign(store: Store) -> None:
    campaign_id, _ = setup_campaign(store)
    with pytest.raises(StoreError) as raised, store.write() as uow:
        uow.create_list(campaign_id, source="x", file_name="again.csv", sha256=SHA, now=NOW)
    assert not raised.value.retryable
    with store.read() as uow:
        assert len(uow.lists(campaign_id)) == 1


def test_leads_round_trip(store: Store) -> None:
    campaign_id, list_id = setup_campaign(store)
    new = make_leads(campaign_id, list_id, 3)
    with store.write() as uow:
        assert uow.insert_leads(new) == 3
    with store.read() as uow:
        assert uow.count_leads(campaign_id) == 3
        sample = uow.leads_sample(campaign_id, 2)
    assert [lead.e164 for lead in sample] == [lead.e164 for lead in new[:2]]
    lead = sample[0]
    assert lead.attributes == {"姓名": "张三", "city": "上海"}
    assert lead.timezones == ("Asia/Shanghai",)
    assert (lead.region, lead.number_type, lead.carrier, lead.raw) == (
        "CN",
        "mobile",
        "中国移动",
        "138 00000000",
    )
    # a new lead is due at once: its due time is its creation time
    assert (lead.state, lead.attempts_made, lead.next_attempt_at) == ("ready", 0, NOW)
    assert lead.created_at == NOW
    assert lead.created_at.tzinfo is UTC


def test_existing_e164s_handles_more_numbers_than_one_in_list(store: Store) -> None:
    campaign_id, list_id = setup_campaign(store)
    total = IN_CHUNK * 2 + 10
    with store.write() as uow:
        uow.insert_leads(make_leads(campaign_id, list_id, total))
    asked = [f"+86138{index:08d}" for index in range(total - 5, total + 5)]
    asked += [f"+86138{index:08d}" for index in range(total)]
    with store.read() as uow:
        found = uow.existing_e164s(campaign_id, asked)
        assert uow.existing_e164s(campaign_id + 1, asked) == set()
    assert len(found) == total


def test_a_duplicate_lead_raises_and_nothing_of_the_batch_is_kept(store: Store) -> None:
    campaign_id, list_id = setup_campaign(store)
    with store.write() as uow:
        uow.insert_leads(make_leads(campaign_id, list_id, 2))
    batch = make_leads(campaign_id, list_id, 5, first=1)  # its first lead exists
    with pytest.raises(StoreError) as raised, store.write() as uow:
        uow.insert_leads(batch)
    assert not raised.value.retryable
    assert "+86138" not in str(raised.value)
    with store.read() as uow:
        assert uow.count_leads(campaign_id) == 2


def test_the_same_number_may_be_a_lead_of_two_campaigns(store: Store) -> None:
    first = setup_campaign(store, "spring")
    second = setup_campaign(store, "autumn")
    with store.write() as uow:
        uow.insert_leads(make_leads(*first, 1) + make_leads(*second, 1))
    with store.read() as uow:
        assert uow.count_leads(first[0]) == uow.count_leads(second[0]) == 1


class Boom(Exception):
    pass


def import_then_fail(store: Store) -> None:
    with store.write() as uow:
        campaign_id = uow.ensure_campaign("spring", default_region="CN", now=NOW)
        list_id = uow.create_list(campaign_id, source="x", file_name="f", sha256=SHA, now=NOW)
        uow.insert_leads(make_leads(campaign_id, list_id, 10))
        uow.audit("import", actor="test", subject="spring", detail={}, now=NOW)
        raise Boom


def test_a_write_that_raises_leaves_nothing_behind(store: Store) -> None:
    with pytest.raises(Boom):
        import_then_fail(store)
    with store.read() as uow:
        assert uow.campaign_names() == []
        assert uow.audit_entries() == []


def test_datetimes_in_other_zones_are_stored_as_utc(store: Store) -> None:
    beijing = NOW.astimezone(timezone(timedelta(hours=8)))
    with store.write() as uow:
        campaign_id = uow.ensure_campaign("spring", default_region="CN", now=beijing)
        list_id = uow.create_list(campaign_id, source="x", file_name="f", sha256=SHA, now=beijing)
    with store.read() as uow:
        found = uow.find_list(campaign_id, SHA)
    assert found is not None
    assert found.id == list_id
    assert found.imported_at == NOW
    assert found.imported_at.tzinfo is UTC


def test_naive_datetimes_are_rejected(store: Store) -> None:
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"), store.write() as uow:
        uow.ensure_campaign("spring", default_region="CN", now=naive)
    campaign_id, list_id = setup_campaign(store)
    lead = make_leads(campaign_id, list_id, 1)[0]
    naive_lead = replace(lead, created_at=naive)
    with pytest.raises(ValueError, match="timezone-aware"), store.write() as uow:
        uow.insert_leads([naive_lead])
    with store.read() as uow:
        assert uow.count_leads(campaign_id) == 0
