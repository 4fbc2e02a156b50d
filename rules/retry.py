"""What happens to a lead, and what we learnt about its number, after one attempt.

A `RetryPolicy` maps every disposition to a `RetryRule`; `decide` applies it to one
attempt and returns a `LeadDecision`. Pure: `now` is passed in, and the point inside a
retry range is spread by a stable hash of the lead key, so the same inputs always give
the same decision (on every worker and after a restart).

Default rules:

| Disposition                                        | Rule                   | Counts |
|----------------------------------------------------|------------------------|--------|
| busy                                               | retry after 10 min     | yes    |
| no_answer                                          | retry after 2 h        | yes    |
| rejected                                           | retry after 1 day      | yes    |
| answered_machine                                   | retry after 4 h        | yes    |
| powered_off, unreachable                           | retry after 2-4 h      | yes    |
| abandoned                                          | retry after 72 h (UK)  | yes    |
| network_error, failed                              | retry after 5 min      | no     |
| vacant, suspended                                  | dead (the number)      | yes    |
| completed, transferred, answered_human, opted_out  | done (the lead)        | yes    |

"Counts" is whether the attempt burns one of the lead's `max_attempts`: a call the trunk
refused or our own worker lost should not use up a lead. The number's status after the
attempt is in `NUMBER_STATUS_AFTER`; recording it, and rechecking dead numbers, is
`rules.number_status`'s business.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from rules.dispositions import Disposition
from rules.number_status import NumberStatus

D = Disposition


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryRule:
    """What to do after an attempt with one disposition. Exactly one kind is set.

    - `after`: retry once this delay has passed;
    - `after_min` and `after_max`: retry somewhere in that range, the point chosen by a
      stable hash of the lead key (`after_min <= delay <= after_max`);
    - `dead`: the number is dead (vacant, suspended); the lead stops;
    - `done`: the lead is finished (reached, or asked not to be called).

    Delays must be positive, so a retry always lies strictly after `now`.
    `counts_attempt` says whether the attempt uses up one of the lead's attempts.
    Raises ValueError on any other combination.
    """

    after: timedelta | None = None
    after_min: timedelta | None = None
    after_max: timedelta | None = None
    dead: bool = False
    done: bool = False
    counts_attempt: bool = True

    def __post_init__(self) -> None:
        has_range = self.after_min is not None or self.after_max is not None
        kinds = [self.after is not None, has_range, self.dead, self.done]
        if sum(kinds) != 1:
            raise ValueError("a retry rule needs exactly one of after, a range, dead, done")
        if self.after is not None and self.after <= timedelta(0):
            raise ValueError("a retry delay must be positive")
        if has_range:
            if self.after_min is None or self.after_max is None:
                raise ValueError("a retry range needs both after_min and after_max")
            if not timedelta(0) < self.after_min <= self.after_max:
                raise ValueError("a retry range needs 0 < after_min <= after_max")

    def delay(self, lead_key: str) -> timedelta | None:
        """The wait before the next attempt, or None for a dead or done rule."""
        if self.after is not None:
            return self.after
        if self.after_min is None or self.after_max is None:
            return None
        return self.after_min + (self.after_max - self.after_min) * _spread(lead_key)


def _default_rules() -> Mapping[Disposition, RetryRule]:
    range_2_4h = RetryRule(after_min=timedelta(hours=2), after_max=timedelta(hours=4))
    soon_uncounted = RetryRule(after=timedelta(minutes=5), counts_attempt=False)
    done = RetryRule(done=True)
    dead = RetryRule(dead=True)
    return MappingProxyType(
        {
            D.BUSY: RetryRule(after=timedelta(minutes=10)),
            D.NO_ANSWER: RetryRule(after=timedelta(hours=2)),
            D.REJECTED: RetryRule(after=timedelta(days=1)),
            D.ANSWERED_MACHINE: RetryRule(after=timedelta(hours=4)),
            D.POWERED_OFF: range_2_4h,
            D.UNREACHABLE: range_2_4h,
            D.ABANDONED: RetryRule(after=timedelta(hours=72)),
            D.NETWORK_ERROR: soon_uncounted,
            D.FAILED: soon_uncounted,
            D.VACANT: dead,
            D.SUSPENDED: dead,
            D.COMPLETED: done,
            D.TRANSFERRED: done,
            D.ANSWERED_HUMAN: done,
            D.OPTED_OUT: done,
        }
    )


#: The rule for each disposition when a campaign says nothing else.
DEFAULT_RULES: Mapping[Disposition, RetryRule] = _default_rules()


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """A rule for every disposition, and the cap on counted attempts per lead.

    Raises ValueError if a disposition has no rule or `max_attempts` is below 1.
    """

    rules: Mapping[Disposition, RetryRule] = field(default_factory=lambda: DEFAULT_RULES)
    max_attempts: int = 3

    def __post_init__(self) -> None:
        missing = set(Disposition) - set(self.rules)
        if missing:
            raise ValueError(f"no retry rule for: {', '.join(sorted(missing))}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @classmethod
    def with_overrides(
        cls, overrides: Mapping[Disposition | str, RetryRule], *, max_attempts: int = 3
    ) -> RetryPolicy:
        """The default rules with a campaign's rules laid over them.

        Keys may be dispositions or their string values (as read from a campaign file);
        an unknown key raises ValueError.
        """
        rules = dict(DEFAULT_RULES)
        for key, rule in overrides.items():
            rules[Disposition(key)] = rule
        return cls(rules=MappingProxyType(rules), max_attempts=max_attempts)


class LeadState(enum.StrEnum):
    """Where a lead stands after an attempt."""

    READY = "ready"  # to be dialed again at `next_attempt_at`
    DONE = "done"  # finished: reached, transferred, or opted out
    DEAD = "dead"  # the number is dead (vacant, suspended)
    EXHAUSTED = "exhausted"  # out of attempts


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadDecision:
    """The outcome of `decide`.

    - `next_attempt_at` is set (and later than `now`) exactly when `state` is READY;
    - `attempts_made` includes this attempt when its rule counts it;
    - `number_status` is the observation to record for the number, or None when the
      attempt says nothing about it.
    """

    state: LeadState
    next_attempt_at: datetime | None
    attempts_made: int
    number_status: NumberStatus | None


_NORMAL = NumberStatus.NORMAL

#: What an attempt with each disposition tells us about the number (None: nothing).
NUMBER_STATUS_AFTER: Mapping[Disposition, NumberStatus | None] = MappingProxyType(
    {
        D.VACANT: NumberStatus.VACANT,
        D.SUSPENDED: NumberStatus.SUSPENDED,
        D.POWERED_OFF: NumberStatus.POWERED_OFF,
        D.UNREACHABLE: NumberStatus.UNREACHABLE,
        D.BUSY: NumberStatus.BUSY,
        D.ANSWERED_HUMAN: _NORMAL,
        D.ANSWERED_MACHINE: _NORMAL,
        D.COMPLETED: _NORMAL,
        D.TRANSFERRED: _NORMAL,
        D.OPTED_OUT: _NORMAL,
        D.ABANDONED: _NORMAL,
        D.REJECTED: _NORMAL,
        D.NO_ANSWER: None,
        D.NETWORK_ERROR: None,
        D.FAILED: None,
    }
)


def decide(
    policy: RetryPolicy,
    *,
    disposition: Disposition,
    attempts_made: int,
    now: datetime,
    lead_key: str,
) -> LeadDecision:
    """What becomes of a lead after an attempt ended with `disposition`.

    `attempts_made` is the lead's counted attempts before this one. A done rule gives
    DONE, a dead rule DEAD; otherwise the lead is READY at `now` plus the rule's delay,
    unless its counted attempts have reached `policy.max_attempts`, which gives
    EXHAUSTED. So a lead is never offered more counted attempts than the cap. Pure and
    deterministic: `lead_key` (a stable id of the lead) picks the point in a range.
    """
    rule = policy.rules[disposition]
    counted = attempts_made + 1 if rule.counts_attempt else attempts_made
    status = NUMBER_STATUS_AFTER[disposition]
    delay = rule.delay(lead_key)
    if rule.done:
        state = LeadState.DONE
    elif rule.dead:
        state = LeadState.DEAD
    elif delay is None or counted >= policy.max_attempts:
        state = LeadState.EXHAUSTED
    else:
        return LeadDecision(
            state=LeadState.READY,
            next_attempt_at=now + delay,
            attempts_made=counted,
            number_status=status,
        )
    return LeadDecision(
        state=state, next_attempt_at=None, attempts_made=counted, number_status=status
    )


def _spread(key: str) -> float:
    """A stable fraction in [0, 1) derived from `key` (not Python's salted hash)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / 2**53  # 53 bits: exact in a float
