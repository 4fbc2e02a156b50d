"""Retry rules and lead decisions: the defaults, the caps, and their invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.dispositions import Disposition
from rules.number_status import NumberStatus
from rules.retry import (
    DEFAULT_RULES,
    NUMBER_STATUS_AFTER,
    LeadDecision,
    LeadState,
    RetryPolicy,
    RetryRule,
    decide,
)

D = Disposition
NOW = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def after(disposition: Disposition, attempts_made: int = 0, key: str = "lead-1") -> LeadDecision:
    return decide(POLICY, disposition=disposition, attempts_made=attempts_made, now=NOW,
                  lead_key=key)


@pytest.mark.parametrize(
    ("disposition", "delay"),
    [
        (D.BUSY, timedelta(minutes=10)),
        (D.NO_ANSWER, timedelta(hours=2)),
        (D.REJECTED, timedelta(days=1)),
        (D.ANSWERED_MACHINE, timedelta(hours=4)),
        (D.ABANDONED, timedelta(hours=72)),
    ],
)
def test_fixed_delays_count_the_attempt(disposition: Disposition, delay: timedelta) -> None:
    decision = after(disposition, attempts_made=1)
    assert decision.state is LeadState.READY
    assert decision.next_attempt_at == NOW + delay
    assert decision.attempts_made == 2


@pytest.mark.parametrize("disposition", [D.NETWORK_ERROR, D.FAILED])
def test_our_own_failures_retry_soon_without_burning_an_attempt(disposition: Disposition) -> None:
    decision = after(disposition, attempts_made=2)
    assert decision.state is LeadState.READY
    assert decision.next_attempt_at == NOW + timedelta(minutes=5)
    assert decision.attempts_made == 2


@pytest.mark.parametrize("disposition", [D.POWERED_OFF, D.UNREACHABLE])
def test_powered_off_and_unreachable_spread_over_two_to_four_hours(
    disposition: Disposition,
) -> None:
    times = {after(disposition, key=f"lead-{i}").next_attempt_at for i in range(50)}
    assert all(t is not None and NOW + timedelta(hours=2) <= t <= NOW + timedelta(hours=4)
               for t in times)
    assert len(times) > 40  # spread, not one burst


@pytest.mark.parametrize("disposition", [D.VACANT, D.SUSPENDED])
def test_vacant_and_suspended_numbers_are_dead(disposition: Disposition) -> None:
    decision = after(disposition)
    assert decision.state is LeadState.DEAD
    assert decision.next_attempt_at is None
    assert decision.number_status == NumberStatus(disposition.value)


@pytest.mark.parametrize("disposition", [D.COMPLETED, D.TRANSFERRED, D.ANSWERED_HUMAN,
                                         D.OPTED_OUT])
def test_reached_leads_are_done(disposition: Disposition) -> None:
    decision = after(disposition, attempts_made=2)  # done wins over exhausted
    assert decision == LeadDecision(state=LeadState.DONE, next_attempt_at=None,
                                    attempts_made=3, number_status=NumberStatus.NORMAL)


def test_the_last_counted_attempt_exhausts_the_lead() -> None:
    assert after(D.NO_ANSWER, attempts_made=1).state is LeadState.READY
    decision = after(D.NO_ANSWER, attempts_made=2)
    assert decision.state is LeadState.EXHAUSTED
    assert decision.next_attempt_at is None
    assert decision.attempts_made == 3


def test_an_uncounted_attempt_after_the_cap_is_exhausted() -> None:
    assert after(D.FAILED, attempts_made=3).state is LeadState.EXHAUSTED


@pytest.mark.parametrize(
    ("disposition", "status"),
    [
        (D.VACANT, NumberStatus.VACANT),
        (D.SUSPENDED, NumberStatus.SUSPENDED),
        (D.POWERED_OFF, NumberStatus.POWERED_OFF),
        (D.UNREACHABLE, NumberStatus.UNREACHABLE),
        (D.BUSY, NumberStatus.BUSY),
        (D.ANSWERED_HUMAN, NumberStatus.NORMAL),
        (D.ANSWERED_MACHINE, NumberStatus.NORMAL),
        (D.COMPLETED, NumberStatus.NORMAL),
        (D.TRANSFERRED, NumberStatus.NORMAL),
        (D.OPTED_OUT, NumberStatus.NORMAL),
        (D.ABANDONED, NumberStatus.NORMAL),
        (D.REJECTED, NumberStatus.NORMAL),
        (D.NO_ANSWER, None),
        (D.NETWORK_ERROR, None),
        (D.FAILED, None),
    ],
)
def test_number_status_after_each_disposition(
    disposition: Disposition, status: NumberStatus | None
) -> None:
    assert NUMBER_STATUS_AFTER[disposition] == status
    assert after(disposition).number_status == status
    assert after(disposition, attempts_made=5).number_status == status


def test_every_disposition_has_a_default_rule_and_a_number_status() -> None:
    assert set(DEFAULT_RULES) == set(Disposition)
    assert set(NUMBER_STATUS_AFTER) == set(Disposition)


def test_overrides_replace_only_what_they_name() -> None:
    policy = RetryPolicy.with_overrides(
        {"busy": RetryRule(after=timedelta(minutes=30)), D.REJECTED: RetryRule(dead=True)},
        max_attempts=5,
    )
    assert policy.max_attempts == 5
    assert policy.rules[D.BUSY] == RetryRule(after=timedelta(minutes=30))
    assert policy.rules[D.REJECTED].dead
    assert policy.rules[D.NO_ANSWER] == DEFAULT_RULES[D.NO_ANSWER]
    assert POLICY.rules[D.BUSY] == RetryRule(after=timedelta(minutes=10))  # defaults untouched


def test_an_unknown_override_key_is_refused() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        RetryPolicy.with_overrides({"nonsense": RetryRule(done=True)})


def test_a_policy_needs_a_rule_for_every_disposition_and_a_positive_cap() -> None:
    with pytest.raises(ValueError, match="no retry rule"):
        RetryPolicy(rules={D.BUSY: RetryRule(done=True)})
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"after": timedelta(minutes=1), "dead": True},
        {"done": True, "dead": True},
        {"after": timedelta(minutes=1), "after_min": timedelta(minutes=1),
         "after_max": timedelta(minutes=2)},
        {"after_min": timedelta(minutes=1)},
        {"after_max": timedelta(minutes=1)},
        {"after": timedelta(0)},
        {"after": timedelta(minutes=-1)},
        {"after_min": timedelta(0), "after_max": timedelta(minutes=1)},
        {"after_min": timedelta(minutes=2), "after_max": timedelta(minutes=1)},
    ],
)
def test_malformed_rules_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="retry"):
        RetryRule(**kwargs)  # type: ignore[arg-type]


# --- invariants -------------------------------------------------------------------------

positive = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=30))


@st.composite
def rules(draw: st.DrawFn) -> RetryRule:
    kind = draw(st.sampled_from(["after", "range", "dead", "done"]))
    counts = draw(st.booleans())
    if kind == "after":
        return RetryRule(after=draw(positive), counts_attempt=counts)
    if kind == "range":
        low, high = sorted((draw(positive), draw(positive)))
        return RetryRule(after_min=low, after_max=high, counts_attempt=counts)
    return RetryRule(dead=kind == "dead", done=kind == "done", counts_attempt=counts)


policies = st.builds(
    RetryPolicy.with_overrides,
    st.dictionaries(st.sampled_from(Disposition), rules()),
    max_attempts=st.integers(min_value=1, max_value=6),
)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.just(UTC))
keys = st.text(max_size=20)


@given(policy=policies, outcomes=st.lists(st.sampled_from(Disposition), max_size=30),
       now=times, key=keys)
def test_a_lead_never_exceeds_its_counted_attempts(
    policy: RetryPolicy, outcomes: list[Disposition], now: datetime, key: str
) -> None:
    attempts = 0
    for disposition in outcomes:
        decision = decide(policy, disposition=disposition, attempts_made=attempts, now=now,
                          lead_key=key)
        assert decision.attempts_made <= policy.max_attempts
        if decision.state is not LeadState.READY:
            break
        assert decision.attempts_made < policy.max_attempts  # room for the next one
        assert decision.next_attempt_at is not None
        attempts, now = decision.attempts_made, decision.next_attempt_at


@given(policy=policies, disposition=st.sampled_from(Disposition),
       attempts=st.integers(min_value=0, max_value=8), now=times, key=keys)
def test_ready_means_strictly_later_and_only_ready_has_a_time(
    policy: RetryPolicy, disposition: Disposition, attempts: int, now: datetime, key: str
) -> None:
    decision = decide(policy, disposition=disposition, attempts_made=attempts, now=now,
                      lead_key=key)
    if decision.state is LeadState.READY:
        assert decision.next_attempt_at is not None
        assert decision.next_attempt_at > now
    else:
        assert decision.next_attempt_at is None


@given(low=positive, high=positive, key=keys)
def test_ranges_stay_within_their_bounds(low: timedelta, high: timedelta, key: str) -> None:
    low, high = sorted((low, high))
    delay = RetryRule(after_min=low, after_max=high).delay(key)
    assert delay is not None
    assert low <= delay <= high


@given(policy=policies, disposition=st.sampled_from(Disposition),
       attempts=st.integers(min_value=0, max_value=8), now=times, key=keys)
def test_decisions_are_deterministic(
    policy: RetryPolicy, disposition: Disposition, attempts: int, now: datetime, key: str
) -> None:
    twin = RetryPolicy(rules=dict(policy.rules), max_attempts=policy.max_attempts)
    first = decide(policy, disposition=disposition, attempts_made=attempts, now=now,
                   lead_key=key)
    second = decide(twin, disposition=disposition, attempts_made=attempts, now=now,
                    lead_key=key)
    assert first == second


def test_the_spread_does_not_depend_on_the_process() -> None:
    # a stable hash, not Python's salted one: this value holds on every run and worker
    rule = RetryRule(after_min=timedelta(hours=2), after_max=timedelta(hours=4))
    assert rule.delay("lead-42") == timedelta(seconds=9844, microseconds=527653)
    assert rule.delay("lead-43") != rule.delay("lead-42")
