"""The in-memory ledger honours the `Ledger` contract the store honours."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.engine.commands import CloseAttempt, RecordAttempts, ReleaseLeads, SuppressNumber
from dialer.engine.ledger import Claim, Ledger, MemoryLedger
from dialer.errors import StoreError
from dialer.store import AttemptOutcome, ClaimedLead, NewAttempt
from rules.number_status import NumberStatus, RecheckPolicy
from rules.retry import LeadState

T0 = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
_ids = (f"attempt-{n}" for n in itertools.count())


def claim(ledger: Ledger, limit: int, now: datetime = T0, max_attempts: int = 3,
          writes: tuple[RecordAttempts | ReleaseLeads | CloseAttempt | SuppressNumber, ...] = ()
          ) -> list[ClaimedLead]:
    return ledger.commit(writes, Claim(campaign_id=1, campaign="c", limit=limit, now=now,
                                       max_attempts=max_attempts))


def record(*leads: ClaimedLead, at: datetime = T0) -> RecordAttempts:
    return RecordAttempts(attempts=tuple(
        NewAttempt(attempt_id=next(_ids), campaign_id=1, lead_id=lead.id, e164=lead.e164,
                   trunk="t1", caller_id="+862100000001", placed_at=at)
        for lead in leads))


def close(attempt: NewAttempt, state: LeadState = LeadState.READY,
          after: timedelta | None = MINUTE, *, status: NumberStatus | None = None,
          suppress: str | None = None) -> CloseAttempt:
    ended = attempt.placed_at + timedelta(seconds=30)
    next_at = ended + after if state is LeadState.READY and after is not None else None
    outcome = AttemptOutcome(attempt_id=attempt.attempt_id, disposition="no_answer",
                             ended_at=ended, lead_state=state.value, next_attempt_at=next_at)
    observed = None if status is None else RecheckPolicy().record(attempt.e164, status, ended,
                                                                  "call")
    return CloseAttempt(outcome=outcome, number_status=observed, suppress_reason=suppress,
                        e164=attempt.e164)


def dial(ledger: Ledger, lead: ClaimedLead, state: LeadState = LeadState.READY,
         after: timedelta | None = MINUTE, *, status: NumberStatus | None = None,
         suppress: str | None = None) -> None:
    """Record an attempt on `lead` and close it with `state` (two commits, like a call)."""
    written = record(lead)
    ledger.commit([written])
    ledger.commit([close(written.attempts[0], state, after, status=status, suppress=suppress)])


def test_claims_at_most_the_limit_of_distinct_fresh_leads() -> None:
    ledger = MemoryLedger()
    first = claim(ledger, 5)
    assert [lead.id for lead in first] == [1, 2, 3, 4, 5]
    assert all(lead.attempts_made == 0 and lead.e164 == ledger.e164(lead.id) for lead in first)
    assert ledger.e164(7) == "+8613500000007"
    assert claim(ledger, 0) == []
    assert [lead.id for lead in claim(ledger, 2)] == [6, 7]  # never one handed out already


def test_a_commit_without_a_claim_claims_nothing() -> None:
    ledger = MemoryLedger()
    assert ledger.commit([]) == []
    assert [lead.id for lead in claim(ledger, 1)] == [1]


def test_size_bounds_the_supply() -> None:
    ledger = MemoryLedger(size=3)
    assert len(claim(ledger, 5)) == 3
    assert claim(ledger, 5) == []


def test_released_leads_come_back_first_and_unchanged() -> None:
    ledger = MemoryLedger(size=3)
    claimed = claim(ledger, 3)
    again = claim(ledger, 3, writes=(ReleaseLeads(lead_ids=(claimed[1].id,)),))
    assert again == [claimed[1]]  # attempts_made still 0: a release is not an attempt


def test_attempts_are_counted_and_recorded_then_closed() -> None:
    ledger = MemoryLedger(size=1)
    (lead,) = claim(ledger, 1)
    dial(ledger, lead, after=timedelta(0))
    (lead,) = claim(ledger, 1, T0 + MINUTE)
    assert lead.attempts_made == 1
    assert (ledger.recorded, ledger.closed) == (1, 1)


@pytest.mark.parametrize("max_attempts", [1, 2, 3])
def test_a_lead_dialed_max_attempts_times_is_never_claimed_again(max_attempts: int) -> None:
    ledger = MemoryLedger(size=1)
    for made in range(max_attempts):
        (lead,) = claim(ledger, 1, T0 + made * MINUTE, max_attempts)
        assert lead.attempts_made == made
        dial(ledger, lead, LeadState.READY, after=timedelta(0))  # the outcome asks for more
    assert claim(ledger, 1, T0 + timedelta(days=1), max_attempts) == []


def test_a_retry_is_claimed_only_when_due() -> None:
    ledger = MemoryLedger(size=1)
    (lead,) = claim(ledger, 1)
    written = record(lead)
    ledger.commit([written])
    closing = close(written.attempts[0], LeadState.READY, after=10 * MINUTE)
    due = closing.outcome.next_attempt_at
    assert due is not None
    ledger.commit([closing])
    assert claim(ledger, 1, due - timedelta(seconds=1)) == []
    assert [lead.id for lead in claim(ledger, 1, due)] == [1]  # due at its time, not after
    assert claim(ledger, 1, due + MINUTE) == []  # claimed once


def test_due_retries_come_before_fresh_leads() -> None:
    ledger = MemoryLedger()
    first, second = claim(ledger, 2)
    dial(ledger, second, after=MINUTE)
    dial(ledger, first, after=2 * MINUTE)
    assert [lead.id for lead in claim(ledger, 3, T0 + 3 * MINUTE)] == [2, 1, 3]  # by due time


@pytest.mark.parametrize("state", [LeadState.DONE, LeadState.DEAD, LeadState.EXHAUSTED])
def test_a_finished_lead_never_comes_back(state: LeadState) -> None:
    ledger = MemoryLedger(size=1)
    (lead,) = claim(ledger, 1)
    dial(ledger, lead, state)
    assert claim(ledger, 1, T0 + timedelta(days=30)) == []


def test_a_suppressed_number_is_never_claimed() -> None:
    ledger = MemoryLedger()
    first, _ = claim(ledger, 2)
    dial(ledger, first, after=timedelta(0))
    stop = SuppressNumber(e164=first.e164, reason="opt_out", at=T0)
    unborn = SuppressNumber(e164=ledger.e164(4), reason="opt_out", at=T0)  # not handed out yet
    later = T0 + timedelta(days=1)
    assert [lead.id for lead in claim(ledger, 3, later, writes=(stop, unborn))] == [3, 5, 6]
    assert stop.e164 not in {lead.e164 for lead in claim(ledger, 10, later)}


def test_suppressing_twice_is_harmless() -> None:
    ledger = MemoryLedger(size=2)
    stop = SuppressNumber(e164=ledger.e164(1), reason="opt_out", at=T0)
    assert [lead.id for lead in claim(ledger, 2, writes=(stop, stop))] == [2]


def test_an_opt_out_closed_with_the_attempt_suppresses_the_number() -> None:
    ledger = MemoryLedger(size=1)
    (lead,) = claim(ledger, 1)
    dial(ledger, lead, LeadState.READY, after=timedelta(0), suppress="opt_out")
    assert claim(ledger, 1, T0 + timedelta(days=1)) == []


@pytest.mark.parametrize("status", [NumberStatus.VACANT, NumberStatus.SUSPENDED])
def test_a_number_whose_status_blocks_dialing_is_never_claimed(status: NumberStatus) -> None:
    ledger = MemoryLedger(size=1)
    (lead,) = claim(ledger, 1)
    dial(ledger, lead, LeadState.READY, after=timedelta(0), status=status)
    assert claim(ledger, 1, T0 + timedelta(hours=1)) == []


@pytest.mark.parametrize("status", [NumberStatus.POWERED_OFF, NumberStatus.BUSY,
                                    NumberStatus.NORMAL])
def test_a_status_that_does_not_block_leaves_the_retry_due(status: NumberStatus) -> None:
    ledger = MemoryLedger(size=1)
    (lead,) = claim(ledger, 1)
    dial(ledger, lead, LeadState.READY, after=timedelta(0), status=status)
    assert [lead.id for lead in claim(ledger, 1, T0 + MINUTE)] == [1]


def test_closing_an_attempt_twice_is_a_store_error() -> None:
    ledger = MemoryLedger()
    (lead,) = claim(ledger, 1)
    written = record(lead)
    closing = close(written.attempts[0], LeadState.DONE)
    ledger.commit([written, closing])
    with pytest.raises(StoreError, match="closed twice") as raised:
        ledger.commit([closing])
    assert not raised.value.retryable
    assert (ledger.recorded, ledger.closed) == (1, 1)


def test_closing_an_attempt_never_recorded_is_a_store_error() -> None:
    ledger = MemoryLedger()
    (lead,) = claim(ledger, 1)
    never = record(lead).attempts[0]
    with pytest.raises(StoreError):
        ledger.commit([close(never)])


def test_a_failed_commit_changes_nothing() -> None:
    ledger = MemoryLedger(size=2)
    (lead,) = claim(ledger, 1)
    written = record(lead)
    closing = close(written.attempts[0], LeadState.DONE)
    ledger.commit([written, closing])
    stop = SuppressNumber(e164=ledger.e164(2), reason="opt_out", at=T0)
    with pytest.raises(StoreError):
        ledger.commit([stop, closing])  # "in order, atomically": all or nothing
    assert [lead.id for lead in claim(ledger, 1)] == [2]


# The contract under random use: a lead out for dialing is never claimed again until it
# comes back; nothing suppressed or dialed `max_attempts` times is ever claimed.

steps = st.lists(st.tuples(
    st.sampled_from(["claim", "release", "retry", "finish", "suppress"]),
    st.integers(0, 6),
), max_size=60)


@settings(max_examples=100, deadline=None)
@given(steps=steps, size=st.none() | st.integers(0, 12), max_attempts=st.integers(1, 3))
def test_the_contract_holds_under_random_use(steps: list[tuple[str, int]], size: int | None,
                                             max_attempts: int) -> None:
    ledger = MemoryLedger(size=size)
    now = T0
    out: dict[int, ClaimedLead] = {}  # claimed, not yet back
    attempts: dict[int, int] = {}
    suppressed: set[str] = set()
    for action, n in steps:
        now += MINUTE
        if action == "claim":
            leads = claim(ledger, n, now, max_attempts)
            assert len(leads) <= n
            assert len({lead.id for lead in leads}) == len(leads)
            for lead in leads:
                assert lead.id not in out
                assert lead.e164 not in suppressed
                assert lead.attempts_made == attempts.get(lead.id, 0) < max_attempts
                assert size is None or lead.id <= size
                out[lead.id] = lead
        elif action == "suppress":
            e164 = ledger.e164(n + 1)
            suppressed.add(e164)
            ledger.commit([SuppressNumber(e164=e164, reason="opt_out", at=now)])
        elif out:
            lead = out.pop(sorted(out)[n % len(out)])
            if action == "release":
                ledger.commit([ReleaseLeads(lead_ids=(lead.id,))])
            else:
                attempts[lead.id] = attempts.get(lead.id, 0) + 1
                state = LeadState.READY if action == "retry" else LeadState.DONE
                dial(ledger, lead, state, after=timedelta(0))
    assert ledger.recorded == ledger.closed == sum(attempts.values())
