"""Suppressions, number statuses and the audit log, on every supported database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.store import Store, Suppression, SuppressionScope
from rules.number_status import NumberStatus, NumberStatusRecord, RecheckPolicy

NOW = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
A, B, C = "+8613800000001", "+8613800000002", "+8613800000003"
GLOBAL, CAMPAIGN = SuppressionScope.GLOBAL, SuppressionScope.CAMPAIGN
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def suppress(store: Store, e164: str, scope: SuppressionScope, campaign: str | None) -> bool:
    with store.write() as uow:
        return uow.add_suppression(
            e164, scope=scope, campaign=campaign, reason="opt-out", actor="agent-7", now=NOW
        )


def test_suppressions_apply_globally_or_to_their_campaign(store: Store) -> None:
    assert suppress(store, A, GLOBAL, None)
    assert suppress(store, B, CAMPAIGN, "spring")
    assert suppress(store, B, CAMPAIGN, "autumn")
    with store.read() as uow:
        assert uow.suppressed_e164s([A, B, C], campaign="spring") == {A, B}
        assert uow.suppressed_e164s([A, B, C], campaign="winter") == {A}
        assert uow.suppressed_e164s([A, B, C], campaign=None) == {A}


def test_adding_a_suppression_twice_reports_false_and_audits_once(store: Store) -> None:
    assert suppress(store, A, GLOBAL, None)
    assert not suppress(store, A, GLOBAL, None)
    assert suppress(store, A, CAMPAIGN, "spring")  # another scope is another suppression
    with store.read() as uow:
        entries = uow.audit_entries(subject=A)
    assert [entry.action for entry in entries] == ["suppression.added"] * 2
    assert entries[0].detail == {"scope": "campaign", "campaign": "spring", "reason": "opt-out"}
    assert (entries[1].actor, entries[1].at) == ("agent-7", NOW)


def test_list_suppressions_filters_by_scope_and_campaign(store: Store) -> None:
    suppress(store, B, GLOBAL, None)
    suppress(store, A, CAMPAIGN, "spring")
    suppress(store, C, CAMPAIGN, "autumn")
    with store.read() as uow:
        everything = uow.list_suppressions()
        spring = uow.list_suppressions(campaign="spring")
        global_only = uow.list_suppressions(scope=GLOBAL)
    assert [(s.e164, s.scope, s.campaign) for s in everything] == [
        (A, CAMPAIGN, "spring"),
        (B, GLOBAL, None),
        (C, CAMPAIGN, "autumn"),
    ]
    assert spring == [everything[0]]
    assert global_only == [
        Suppression(
            e164=B,
            scope=GLOBAL,
            campaign=None,
            reason="opt-out",
            created_at=NOW,
            created_by="agent-7",
        )
    ]


def test_removing_a_suppression_is_audited(store: Store) -> None:
    suppress(store, A, CAMPAIGN, "spring")
    with store.write() as uow:
        assert not uow.remove_suppression(A, scope=GLOBAL, campaign=None, actor="ops", now=NOW)
        assert uow.remove_suppression(A, scope=CAMPAIGN, campaign="spring", actor="ops", now=NOW)
        assert not uow.remove_suppression(
            A, scope=CAMPAIGN, campaign="spring", actor="ops", now=NOW
        )
    with store.read() as uow:
        assert uow.list_suppressions() == []
        latest = uow.audit_entries(subject=A, limit=1)
    assert [(e.action, e.actor, e.detail["reason"]) for e in latest] == [
        ("suppression.removed", "ops", "opt-out")
    ]


@pytest.mark.parametrize(("scope", "campaign"), [(GLOBAL, "spring"), (CAMPAIGN, None)])
def test_scope_and_campaign_must_agree(
    store: Store, scope: SuppressionScope, campaign: str | None
) -> None:
    with pytest.raises(ValueError, match="campaign"):
        suppress(store, A, scope, campaign)


def test_lookups_accept_a_great_many_numbers(store: Store) -> None:
    many = [f"+86139{index:08d}" for index in range(12_000)]
    suppress(store, many[-1], GLOBAL, None)
    with store.read() as uow:
        assert uow.suppressed_e164s(many, campaign="spring") == {many[-1]}
        assert uow.number_statuses(many) == {}
        assert uow.dead_e164s(many, now=NOW) == set()


def status(
    e164: str, value: NumberStatus, recheck_at: datetime | None = None
) -> NumberStatusRecord:
    return NumberStatusRecord(
        e164=e164, status=value, observed_at=NOW, source="sip", recheck_at=recheck_at, detail="404"
    )


def test_number_status_is_one_row_per_number_and_audited(store: Store) -> None:
    later = NOW + timedelta(hours=1)
    with store.write() as uow:
        uow.put_number_status(status(A, NumberStatus.POWERED_OFF, later), actor="engine")
    newer = NumberStatusRecord(e164=A, status=NumberStatus.VACANT, observed_at=later, source="hlr")
    with store.write() as uow:
        uow.put_number_status(newer, actor="lookup")
    with store.read() as uow:
        assert uow.number_statuses([A, B]) == {A: newer}
        assert uow.get_number_status(A) == newer
        assert uow.get_number_status(B) is None
        entries = uow.audit_entries(subject=A)
    assert [e.detail["old_status"] for e in entries] == ["powered_off", None]
    assert [e.detail["new_status"] for e in entries] == ["vacant", "powered_off"]
    assert [(e.actor, e.at) for e in entries] == [("lookup", later), ("engine", NOW)]


def test_naive_datetimes_in_a_status_are_rejected(store: Store) -> None:
    naive = status(A, NumberStatus.VACANT, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="recheck_at"), store.write() as uow:
        uow.put_number_status(naive, actor="engine")
    with pytest.raises(ValueError, match="now"), store.read() as uow:
        uow.dead_e164s([A], now=NOW.replace(tzinfo=None))


zones = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones
)


@PROPERTY
@given(observed=instants, recheck=st.none() | instants)
def test_datetimes_round_trip_as_aware_utc(
    store: Store, observed: datetime, recheck: datetime | None
) -> None:
    # A number of its own per instant: the store keeps only the newest observation.
    digest = hashlib.sha256(observed.astimezone(UTC).isoformat().encode()).digest()
    e164 = f"+8613{int.from_bytes(digest[:8], 'big') % 10**9:09d}"
    record = NumberStatusRecord(
        e164=e164, status=NumberStatus.SUSPENDED, observed_at=observed, source="x",
        recheck_at=recheck,
    )
    with store.write() as uow:
        uow.put_number_status(record, actor="test")
    with store.read() as uow:
        stored = uow.get_number_status(e164)
    assert stored == record  # equal instants
    assert stored is not None
    assert stored.observed_at.tzinfo is UTC
    assert stored.observed_at.utcoffset() == timedelta(0)
    assert stored.recheck_at is None or stored.recheck_at.tzinfo is UTC


# Recheck times and "now" within a few microseconds of each other, in any offset,
# so that the strict `now < recheck_at` boundary is exercised.
near = st.tuples(st.integers(-3, 3), zones).map(
    lambda pair: (NOW + timedelta(microseconds=pair[0])).astimezone(pair[1])
)


@PROPERTY
@given(
    statuses=st.lists(st.tuples(st.sampled_from(NumberStatus), st.none() | near), max_size=8),
    now=near,
)
def test_dead_e164s_agrees_with_blocks_dialing(
    store: Store, statuses: list[tuple[NumberStatus, datetime | None]], now: datetime
) -> None:
    records = [
        NumberStatusRecord(
            e164=f"+8613700000{index:03d}",
            status=value,
            observed_at=NOW,
            source="x",
            recheck_at=recheck,
        )
        for index, (value, recheck) in enumerate(statuses)
    ]
    numbers = [f"+8613700000{index:03d}" for index in range(8)]
    with store.write() as uow:
        for record in records:
            uow.put_number_status(record, actor="test")
        # Numbers left over from an earlier example must not block either.
        for number in numbers[len(records) :]:
            uow.put_number_status(status(number, NumberStatus.NORMAL), actor="test")
    with store.read() as uow:
        dead = uow.dead_e164s(numbers, now=now)
    assert dead == {record.e164 for record in records if record.blocks_dialing(now)}


def test_an_older_observation_never_overwrites_a_newer_one(store: Store) -> None:
    policy = RecheckPolicy()
    newer = policy.record("+8613512345678", NumberStatus.NORMAL, NOW, "call")
    older = policy.record("+8613512345678", NumberStatus.VACANT, NOW - timedelta(days=2), "csv")
    with store.write() as uow:
        assert uow.put_number_status(newer, actor="engine")
        assert not uow.put_number_status(older, actor="import")
    with store.read() as uow:
        record = uow.get_number_status("+8613512345678")
    assert record is not None
    assert record.status is NumberStatus.NORMAL
