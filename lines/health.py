"""Trunk health: a circuit breaker per trunk over a sliding window of carrier failures.

```
IN_SERVICE ─FAILURE_RATE_OVER─► OUT ─COOLED_OFF─► PROBING ─PROBES_PASSED─► IN_SERVICE
                                 ▲                   │
                                 └───PROBE_FAILED────┘
```

- IN_SERVICE (closed): every call is admitted and enters the window when it starts; a
  reported failure counts against the calls that started before it (see `_Window`).
- OUT (open): nothing is admitted until the cool-off has passed.
- PROBING (half-open): only probe calls, at most `max_probes_in_flight` at a time; after
  `probe_calls` probe successes in a row the trunk is back, after one probe failure it is
  out again for a longer cool-off (times `backoff`, up to `max_cool_off`).

`next_state` is the only way to move: anything not in `TRANSITIONS` raises
`IllegalTransition`. Every move is a `HealthChanged` event with a human reason.

Time is a value: every method takes `at` (an aware datetime). A time earlier than one the
trunk has already seen counts as that latest time, so a clock that steps back never
reopens a window or shortens a cool-off.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta


class TrunkState(enum.StrEnum):
    """Whether a trunk carries calls."""

    IN_SERVICE = "in_service"  # closed: carries every call
    OUT = "out"  # open: carries nothing until its cool-off passes
    PROBING = "probing"  # half-open: carries a trickle of probe calls


class HealthTrigger(enum.StrEnum):
    """What moves a trunk from one health state to the next."""

    FAILURE_RATE_OVER = "failure_rate_over"  # the window's failure rate passed the threshold
    COOLED_OFF = "cooled_off"  # the cool-off after going out has passed
    PROBES_PASSED = "probes_passed"  # enough probe calls in a row succeeded
    PROBE_FAILED = "probe_failed"  # a probe call failed


class IllegalTransition(ValueError):
    """A trigger arrived in a health state that has no transition for it."""

    def __init__(self, state: TrunkState, trigger: HealthTrigger) -> None:
        super().__init__(f"no trunk health transition from {state.value} on {trigger.value}")
        self.state = state
        self.trigger = trigger


S, T = TrunkState, HealthTrigger

#: Every legal move: (state, trigger) -> the next state.
TRANSITIONS: dict[tuple[TrunkState, HealthTrigger], TrunkState] = {
    (S.IN_SERVICE, T.FAILURE_RATE_OVER): S.OUT,
    (S.OUT, T.COOLED_OFF): S.PROBING,
    (S.PROBING, T.PROBES_PASSED): S.IN_SERVICE,
    (S.PROBING, T.PROBE_FAILED): S.OUT,
}


def next_state(state: TrunkState, trigger: HealthTrigger) -> TrunkState:
    """The state a trunk in `state` moves to on `trigger`.

    Raises IllegalTransition (a ValueError) when `TRANSITIONS` has no such move.
    """
    try:
        return TRANSITIONS[state, trigger]
    except KeyError:
        raise IllegalTransition(state, trigger) from None


def classify_failure(
    sip_status: int | None, *, timed_out: bool, no_media: bool, network_error: bool
) -> bool:
    """Whether a call's outcome is the carrier's failure (True) or the callee's doing.

    | outcome                                                  | trunk failure |
    |----------------------------------------------------------|---------------|
    | network error (no route, connection refused or reset)    | yes           |
    | timed out (no final response to the INVITE)              | yes           |
    | answered with no media (200 OK, then no RTP)             | yes           |
    | 408 Request Timeout                                      | yes           |
    | 5xx, 503 Service Unavailable included                    | yes           |
    | 1xx, 2xx (with media), 3xx                               | no            |
    | other 4xx: 404, 480, 484, 486 Busy, 487 Cancelled, ...   | no (callee)   |
    | 6xx: 600 Busy Everywhere, 603 Decline, 604, 606          | no (callee)   |
    | no status and no flag                                    | no            |

    The flags win over the status: a timeout or a silent answer is the carrier's failure
    whatever status the call ended with. Busy, unanswered, rejected and vacant callees
    say nothing about the trunk, so they never count against it.
    """
    if timed_out or no_media or network_error:
        return True
    if sip_status is None:
        return False
    return sip_status == 408 or 500 <= sip_status <= 599


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthSettings:
    """When a trunk is taken out and how it comes back.

    The first five mirror the line-pools config (`Failover`). A call counts in the window
    when it is among the last `window_calls` calls started and started less than `window`
    ago; the failures are those reported since the oldest of them started. The trunk goes
    out when the window holds at least `min_calls` calls and more than `threshold` of them
    failed, or (a burst) when more than `burst_factor` × `threshold` of its last
    `min_calls` calls failed.

    Why these defaults meet the goal with the config's defaults (out within 30 s or 25
    calls of turning 40% bad, back within 2 minutes of healing, under 1% of calls lost):

    - `burst_factor` 2.5: a trunk that turns bad after a long good run has a window full
      of successes, so the plain rule waits for 11 failures (27-28 calls at 40%). More
      than 25% of its last 20 calls (6 failures) takes about 15 calls at 40%, and happens
      by chance to a healthy trunk failing 2% once in 500,000 windows.
    - `max_cool_off` 75 s: a trunk that heals just after a failed probe waits at most
      75 s, then one round of probes (one ring time, under 30 s): back within 2 minutes
      with room for a slow probe. `backoff` 2 matters for short cool-offs (10 s, 20 s,
      40 s, 75 s); with 60 s it goes 60 s, 75 s, 75 s, ...
    - `probe_calls` 3 at once (`max_probes_in_flight` 3): a round takes one call's time,
      not three; a 40%-failing trunk passes a round 22% of the time and then trips again
      after `min_calls` calls. Each round costs a sick trunk about 3 failed calls.
    """

    threshold: float = 0.10
    min_calls: int = 20
    window_calls: int = 100
    window: timedelta = timedelta(minutes=5)
    cool_off: timedelta = timedelta(seconds=60)
    burst_factor: float | None = 2.5  # None: only the whole window counts
    probe_calls: int = 3  # probe successes in a row that bring the trunk back
    max_probes_in_flight: int = 3
    backoff: float = 2.0  # the cool-off grows by this after each failed probe ...
    max_cool_off: timedelta = timedelta(seconds=75)  # ... up to this (never below cool_off)

    def __post_init__(self) -> None:
        problems = [
            message
            for bad, message in (
                (not 0 <= self.threshold <= 1, "threshold must be in [0, 1]"),
                (self.min_calls < 1, "min_calls must be at least 1"),
                (self.window_calls < self.min_calls, "window_calls must be at least min_calls"),
                (self.window <= timedelta(0), "window must be positive"),
                (self.cool_off <= timedelta(0), "cool_off must be positive"),
                (self.burst_factor is not None and self.burst_factor < 1, "burst_factor >= 1"),
                (self.probe_calls < 1, "probe_calls must be at least 1"),
                (self.max_probes_in_flight < 1, "max_probes_in_flight must be at least 1"),
                (self.backoff < 1, "backoff must be at least 1"),
            )
            if bad
        ]
        if problems:
            raise ValueError("trunk health settings: " + "; ".join(problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthChanged:
    """A trunk moved from one health state to another."""

    trunk: str
    at: datetime
    before: TrunkState
    after: TrunkState
    trigger: HealthTrigger
    reason: str  # for people: "12 of 25 calls failed (48%) in the last 5 min; threshold 10%"


class _Window:
    """The last `size` calls started within `span`; the failures reported since the first.

    Calls count when they start, not when their outcome arrives: a 503 is known within a
    second, a good call only after its ring time, so a window of outcomes overstates the
    failure rate whenever it fills (at the start, after a return). Calls in flight count
    as not failed (yet). `at` must not go back (TrunkHealth sees to it).
    """

    def __init__(self, size: int, span: timedelta) -> None:
        self._span = span
        self._starts: deque[datetime] = deque(maxlen=size)
        self._failures: deque[datetime] = deque(maxlen=size)

    def start(self, at: datetime) -> None:
        self._starts.append(at)

    def fail(self, at: datetime) -> None:
        self._failures.append(at)

    def counts(self, at: datetime) -> tuple[int, int]:
        """(calls, failures) in the window at `at`; failures never exceed calls."""
        while self._starts and at - self._starts[0] >= self._span:
            self._starts.popleft()
        oldest = self._starts[0] if self._starts else at
        while self._failures and self._failures[0] < oldest:
            self._failures.popleft()
        return len(self._starts), min(len(self._failures), len(self._starts))

    def recent_failures(self, last: int) -> int:
        """Failures since the latest `last` calls began (call `counts` first)."""
        if not self._starts:
            return 0
        since = self._starts[-min(last, len(self._starts))]
        recent = sum(1 for _ in itertools.takewhile(lambda f: f >= since, reversed(self._failures)))
        return min(recent, last)

    def clear(self) -> None:
        self._starts.clear()
        self._failures.clear()


class TrunkHealth:
    """The health state of one trunk.

    Invariants:
    - the state only changes through `TRANSITIONS`, and each change is one `HealthChanged`;
    - never more than `max_probes_in_flight` probes unreported at once;
    - only non-probe calls enter the window, and the window starts empty each time the
      trunk comes back into service (the failures that took it out are history);
    - the cool-off resets to `cool_off` when the trunk comes back.

    The caller reports every call it started (`start_call`) exactly once (`record`), with
    the probe flag `start_call` returned (a report with none of its kind in flight is a
    ValueError). Changes that happen while answering `admits` (a cool-off ending) are
    kept and handed out by the next `record` or `advance`.
    """

    def __init__(self, trunk: str, settings: HealthSettings | None = None) -> None:
        self.trunk = trunk
        self.settings = settings or HealthSettings()
        self._state = TrunkState.IN_SERVICE
        self._window = _Window(self.settings.window_calls, self.settings.window)
        self._latest: datetime | None = None
        self._cool_off = self.settings.cool_off
        self._back_at: datetime | None = None
        self._calls_in_flight = 0  # not probes
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._unreported: list[HealthChanged] = []

    @property
    def state(self) -> TrunkState:
        return self._state

    @property
    def back_at(self) -> datetime | None:
        """While OUT: when the cool-off ends and probing may start; else None."""
        return self._back_at if self._state is TrunkState.OUT else None

    @property
    def probe_slots(self) -> int:
        """Probe calls that may start now while PROBING (0 in the other states)."""
        if self._state is not TrunkState.PROBING:
            return 0
        return max(0, self.settings.max_probes_in_flight - self._probes_in_flight)

    def admits(self, at: datetime) -> bool:
        """Whether a call may start on this trunk at `at` (may end a cool-off)."""
        self._cool(self._see(at))
        if self._state is TrunkState.PROBING:
            return self.probe_slots > 0
        return self._state is TrunkState.IN_SERVICE

    def start_call(self, at: datetime) -> bool:
        """Note a call starting at `at`; True when it is a probe (the trunk is PROBING).

        Raises ValueError when the trunk does not admit a call now.
        """
        at = self._see(at)
        if not self.admits(at):
            raise ValueError(f"trunk {self.trunk} admits no call now ({self._state.value})")
        if self._state is TrunkState.PROBING:
            self._probes_in_flight += 1
            return True
        self._calls_in_flight += 1
        self._window.start(at)
        return False

    def record(self, at: datetime, failed: bool, *, probe: bool = False) -> list[HealthChanged]:
        """Take in one call's outcome; returns the changes it (or time passing) caused.

        Raises ValueError when no call of its kind (probe or not) is in flight.
        """
        at = self._see(at)
        self._cool(at)
        if probe:
            self._record_probe(at, failed)
            return self._drain()
        if self._calls_in_flight == 0:
            raise ValueError(f"trunk {self.trunk}: an outcome with no call in flight")
        self._calls_in_flight -= 1
        if failed:
            self._window.fail(at)
        self._check_trip(at)
        return self._drain()

    def advance(self, at: datetime) -> list[HealthChanged]:
        """Let time pass to `at`; returns the changes due (cool-offs ending, trips)."""
        at = self._see(at)
        self._cool(at)
        self._check_trip(at)
        return self._drain()

    def window_counts(self, at: datetime) -> tuple[int, int]:
        """(calls, failures) in the window at `at`."""
        return self._window.counts(self._see(at))

    def failure_rate(self, at: datetime) -> float:
        """The share of calls in the window that failed (0.0 when it is empty)."""
        calls, failures = self.window_counts(at)
        return failures / calls if calls else 0.0

    def _see(self, at: datetime) -> datetime:
        if at.tzinfo is None:
            raise ValueError("trunk health needs aware datetimes")
        if self._latest is None or at > self._latest:
            self._latest = at
        return self._latest

    def _move(self, trigger: HealthTrigger, at: datetime, reason: str) -> None:
        after = next_state(self._state, trigger)
        change = HealthChanged(
            trunk=self.trunk, at=at, before=self._state, after=after, trigger=trigger, reason=reason
        )
        self._unreported.append(change)
        self._state = after

    def _drain(self) -> list[HealthChanged]:
        changes, self._unreported = self._unreported, []
        return changes

    def _cool(self, at: datetime) -> None:
        if self._state is TrunkState.OUT and self._back_at is not None and at >= self._back_at:
            probes = self.settings.max_probes_in_flight
            self._probe_successes = 0
            self._move(
                T.COOLED_OFF,
                self._back_at,
                f"cool-off of {_span(self._cool_off)} passed; probing with up to "
                f"{_plural(probes, 'call')} at a time",
            )

    def _check_trip(self, at: datetime) -> None:
        if self._state is not TrunkState.IN_SERVICE:
            return
        reason = self._trip_reason(at)
        if reason is not None:
            self._back_at = at + self._cool_off
            self._move(T.FAILURE_RATE_OVER, at, f"{reason}; out for {_span(self._cool_off)}")

    def _trip_reason(self, at: datetime) -> str | None:
        """Why the window says the trunk must go out, or None."""
        s = self.settings
        calls, failures = self._window.counts(at)
        if calls < s.min_calls:
            return None
        if failures / calls > s.threshold:
            return (
                f"{failures} of {calls} calls failed ({failures / calls:.0%}) in the last "
                f"{_span(s.window)}; threshold {s.threshold:.0%}"
            )
        if s.burst_factor is None:
            return None
        recent = self._window.recent_failures(s.min_calls)
        limit = s.burst_factor * s.threshold
        if recent / s.min_calls > limit:
            return (
                f"{recent} of the last {s.min_calls} calls failed ({recent / s.min_calls:.0%}); "
                f"burst limit {limit:.0%} ({s.burst_factor:g} × threshold {s.threshold:.0%})"
            )
        return None

    def _record_probe(self, at: datetime, failed: bool) -> None:
        if self._probes_in_flight == 0:
            raise ValueError(f"trunk {self.trunk}: a probe outcome with no probe in flight")
        self._probes_in_flight -= 1
        if self._state is not TrunkState.PROBING:
            return  # a straggler from a round already decided
        s = self.settings
        if failed:
            cap = max(s.cool_off, s.max_cool_off)
            self._cool_off = min(cap, self._cool_off * s.backoff)
            self._back_at = at + self._cool_off
            self._move(T.PROBE_FAILED, at, f"a probe call failed; out for {_span(self._cool_off)}")
            return
        self._probe_successes += 1
        if self._probe_successes >= s.probe_calls:
            self._window.clear()
            self._cool_off = s.cool_off
            self._back_at = None
            passed = _plural(self._probe_successes, "probe call")
            self._move(T.PROBES_PASSED, at, f"{passed} in a row succeeded")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _span(duration: timedelta) -> str:
    """A duration for people: '5 min', '90 s', '1.5 s'."""
    seconds = duration.total_seconds()
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g} s"
