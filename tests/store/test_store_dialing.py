"""Claiming leads, writing attempts before dialing, closing them once, recovering."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dialer.errors import StoreError
from dialer.store import AttemptOutcome, NewAttempt, NewLead, Store, SuppressionScope
from rules.number_status import NumberStatus, RecheckPolicy

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def seed(store: Store, count: int = 5, campaign: str = "c") -> int:
    with store.write() as uow:
        campaign_id = uow.ensure_campaign(campaign, default_region="CN", now=NOW)
        list_id = uow.create_list(campaign_id, source="v", file_name="f.csv",
                                  sha256=uuid.uuid4().hex, now=NOW)
        uow.insert_leads([
            NewLead(campaign_id=campaign_id, list_id=list_id, row_number=i,
                    e164=f"+86135000000{i:02d}", raw="", attributes={"n": str(i)}, region="CN",
                    number_type="mobile", timezones=("Asia/Shanghai",), carrier="",
                    created_at=NOW - timedelta(seconds=count - i))
            for i in range(count)
        ])
    return campaign_id


def claim(store: Store, campaign_id: int, limit: int = 10, now: datetime = NOW,
          max_attempts: int = 3) -> list[str]:
    with store.write() as uow:
        claimed = uow.claim_leads(campaign_id=campaign_id, campaign="c", limit=limit, now=now,
                                  max_attempts=max_attempts)
    return [lead.e164 for lead in claimed]


def dial(store: Store, campaign_id: int, e164s: list[str]) -> list[str]:
    with store.read() as uow:
        ids = {lead.e164: lead.id for lead in uow.leads_sample(campaign_id, 1000)}
    attempt_ids = [uuid.uuid4().hex for _ in e164s]
    with store.write() as uow:
        uow.record_attempts([
            NewAttempt(attempt_id=a, campaign_id=campaign_id, lead_id=ids[e], e164=e,
                       trunk="t1", caller_id="+862100000000", placed_at=NOW)
            for a, e in zip(attempt_ids, e164s, strict=True)
        ])
    return attempt_ids


def outcome(attempt_id: str, state: str = "ready", retry: timedelta | None = None
            ) -> AttemptOutcome:
    return AttemptOutcome(attempt_id=attempt_id, disposition="busy", ended_at=NOW,
                          sip_status=486, lead_state=state,
                          next_attempt_at=NOW + retry if retry else None)


def test_claim_takes_due_leads_in_order_once(store: Store) -> None:
    campaign_id = seed(store)
    first = claim(store, campaign_id, limit=3)
    assert first == ["+8613500000000", "+8613500000001", "+8613500000002"]
    assert claim(store, campaign_id) == ["+8613500000003", "+8613500000004"]
    assert claim(store, campaign_id) == []


def test_claim_rechecks_suppression_and_number_status(store: Store) -> None:
    campaign_id = seed(store, 4)
    with store.write() as uow:
        uow.add_suppression("+8613500000000", scope=SuppressionScope.GLOBAL, campaign=None,
                            reason="opt-out", actor="t", now=NOW)
        uow.add_suppression("+8613500000001", scope=SuppressionScope.CAMPAIGN, campaign="c",
                            reason="complaint", actor="t", now=NOW)
        uow.add_suppression("+8613500000002", scope=SuppressionScope.CAMPAIGN, campaign="other",
                            reason="complaint", actor="t", now=NOW)
        uow.put_number_status(RecheckPolicy().record("+8613500000003", NumberStatus.VACANT,
                                                     NOW, "carrier"), actor="t")
    assert claim(store, campaign_id) == ["+8613500000002"]
    # a vacant number comes back when its recheck is due
    assert claim(store, campaign_id, now=NOW + timedelta(days=31)) == ["+8613500000003"]


def test_attempts_count_against_the_cap_before_dialing(store: Store) -> None:
    campaign_id = seed(store, 1)
    for round_ in range(2):
        (number,) = claim(store, campaign_id, max_attempts=2)
        (attempt_id,) = dial(store, campaign_id, [number])
        with store.write() as uow:
            uow.close_attempt(outcome(attempt_id))
        assert round_ < 2
    assert claim(store, campaign_id, max_attempts=2) == []  # two attempts made: capped
    with store.read() as uow:
        (lead,) = uow.leads_sample(campaign_id, 10)
    assert lead.attempts_made == 2


def test_an_attempt_is_closed_exactly_once(store: Store) -> None:
    campaign_id = seed(store, 1)
    (attempt_id,) = dial(store, campaign_id, claim(store, campaign_id))
    with store.write() as uow:
        uow.close_attempt(outcome(attempt_id, retry=timedelta(minutes=10)))
    with pytest.raises(StoreError, match="already has a disposition"), store.write() as uow:
        uow.close_attempt(outcome(attempt_id))
    assert claim(store, campaign_id) == []  # retry not due yet
    assert claim(store, campaign_id, now=NOW + timedelta(minutes=10)) == ["+8613500000000"]


def test_recovery_closes_open_attempts_and_requeues_leads(store: Store) -> None:
    campaign_id = seed(store, 3)
    numbers = claim(store, campaign_id)
    dial(store, campaign_id, numbers[:2])  # the third was claimed but never dialed
    with store.write() as uow:
        report = uow.recover(campaign_id=campaign_id, now=NOW, retry_at=NOW, max_attempts=3)
    assert (report.attempts_closed, report.leads_released) == (2, 3)
    with store.read() as uow:
        assert uow.open_attempts(campaign_id) == 0
        rows = list(uow.attempt_rows("c"))
    assert {row.disposition for row in rows} == {"failed"}
    assert all(row.reason.startswith("interrupted") for row in rows)
    assert sorted(claim(store, campaign_id)) == numbers


def test_export_rows_carry_source_and_timezones(store: Store) -> None:
    campaign_id = seed(store, 1)
    (attempt_id,) = dial(store, campaign_id, claim(store, campaign_id))
    with store.write() as uow:
        uow.close_attempt(outcome(attempt_id))
    with store.read() as uow:
        (row,) = list(uow.attempt_rows())
    assert (row.campaign, row.list_source, row.callee_timezones) == ("c", "v", ("Asia/Shanghai",))
    assert (row.disposition, row.sip_status, row.trunk) == ("busy", 486, "t1")


def test_concurrent_claims_never_overlap(store: Store) -> None:
    campaign_id = seed(store, 60)
    taken: list[list[str]] = []

    def worker() -> None:
        mine: list[str] = []
        for _ in range(10):
            mine += claim(store, campaign_id, limit=4)
        taken.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [number for mine in taken for number in mine]
    assert len(everything) == len(set(everything)) == 60


def test_export_command_writes_the_documented_columns(store: Store, store_url: str) -> None:
    import csv
    import io
    import json

    from typer.testing import CliRunner

    from dialer.cli import app

    campaign_id = seed(store, 2)
    for attempt_id in dial(store, campaign_id, claim(store, campaign_id)):
        with store.write() as uow:
            uow.close_attempt(outcome(attempt_id))
    url = store_url
    runner = CliRunner()
    out = runner.invoke(app, ["export", "attempts", "--db", url, "--format", "csv"]).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["attempt_id", "campaign", "lead_id", "e164", "list_source",
                             "trunk", "caller_id", "placed_at", "answered_at", "ended_at",
                             "sip_status", "disposition", "agent_id", "abandoned",
                             "callee_timezones", "purpose", "script", "reason"]
    assert rows[0]["placed_at"] == "2026-11-24T10:00:00Z"
    lines = runner.invoke(app, ["export", "attempts", "--db", url, "--format", "jsonl"]).stdout
    assert json.loads(lines.splitlines()[0])["callee_timezones"] == ["Asia/Shanghai"]
