"""Trunk health: the transition table over every pair, classification, the window, the
breaker's round trip (trip, cool-off, probes, back) and its edges."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from lines.health import (
    TRANSITIONS,
    HealthChanged,
    HealthSettings,
    HealthTrigger,
    IllegalTransition,
    TrunkHealth,
    TrunkState,
    classify_failure,
    next_state,
)

S, T = TrunkState, HealthTrigger
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

EXPECTED = {
    (S.IN_SERVICE, T.FAILURE_RATE_OVER): S.OUT,
    (S.OUT, T.COOLED_OFF): S.PROBING,
    (S.PROBING, T.PROBES_PASSED): S.IN_SERVICE,
    (S.PROBING, T.PROBE_FAILED): S.OUT,
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def calls(health: TrunkHealth, when: datetime, outcomes: str) -> list[HealthChanged]:
    """Start one call per letter at `when` and report it there ('x' failed, '.' did not)."""
    changes = []
    for outcome in outcomes:
        assert health.start_call(when) is False
        changes += health.record(when, outcome == "x")
    return changes


def tripped(settings: HealthSettings | None = None) -> TrunkHealth:
    """A trunk that has just gone OUT at T0 (20 failures in a row)."""
    health = TrunkHealth("a", settings or HealthSettings())
    changes = calls(health, T0, "x" * health.settings.min_calls)
    assert [c.after for c in changes] == [S.OUT]
    return health


def probing(settings: HealthSettings | None = None) -> TrunkHealth:
    """A trunk that went OUT at T0 and has been PROBING since its cool-off ended."""
    health = tripped(settings)
    health.advance(T0 + health.settings.cool_off)
    assert health.state is S.PROBING
    return health


# --- the transition table -------------------------------------------------------------


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(TrunkState, HealthTrigger)))
def test_every_pair(state: TrunkState, trigger: HealthTrigger) -> None:
    if (state, trigger) in EXPECTED:
        assert next_state(state, trigger) is EXPECTED[state, trigger]
    else:
        with pytest.raises(IllegalTransition) as caught:
            next_state(state, trigger)
        assert (caught.value.state, caught.value.trigger) == (state, trigger)


def test_the_table_is_exactly_the_expected_one() -> None:
    assert TRANSITIONS == EXPECTED


def test_illegal_transition_is_a_value_error_naming_both() -> None:
    with pytest.raises(ValueError, match="from out on probes_passed"):
        next_state(S.OUT, T.PROBES_PASSED)


# --- classification -------------------------------------------------------------------

CARRIER = [500, 502, 503, 504, 599, 408]
CALLEE = [None, 180, 200, 302, 404, 480, 484, 486, 487, 600, 603, 604, 606]


@pytest.mark.parametrize("status", CARRIER)
def test_5xx_and_408_are_trunk_failures(status: int) -> None:
    assert classify_failure(status, timed_out=False, no_media=False, network_error=False)


@pytest.mark.parametrize("status", CALLEE)
def test_callee_behaviour_is_not_a_trunk_failure(status: int | None) -> None:
    assert not classify_failure(status, timed_out=False, no_media=False, network_error=False)


@pytest.mark.parametrize("status", [None, 200, 486, 603])
@pytest.mark.parametrize("flag", ["timed_out", "no_media", "network_error"])
def test_timeouts_silent_answers_and_network_errors_are_failures_whatever_the_status(
    status: int | None, flag: str
) -> None:
    flags = {"timed_out": False, "no_media": False, "network_error": False} | {flag: True}
    assert classify_failure(status, **flags)


# --- settings -------------------------------------------------------------------------


def test_defaults_mirror_the_config_and_the_goal() -> None:
    s = HealthSettings()
    assert (s.threshold, s.min_calls, s.window_calls) == (0.10, 20, 100)
    assert (s.window, s.cool_off) == (timedelta(minutes=5), timedelta(seconds=60))
    assert s.max_cool_off + timedelta(seconds=30) <= timedelta(minutes=2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"min_calls": 0}, "min_calls"),
        ({"window_calls": 10}, "window_calls"),
        ({"window": timedelta(0)}, "window must"),
        ({"cool_off": -timedelta(seconds=1)}, "cool_off"),
        ({"burst_factor": 0.5}, "burst_factor"),
        ({"probe_calls": 0}, "probe_calls"),
        ({"max_probes_in_flight": 0}, "max_probes_in_flight"),
        ({"backoff": 0.5}, "backoff"),
    ],
)
def test_bad_settings_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HealthSettings(**change)  # type: ignore[arg-type]


# --- the window -----------------------------------------------------------------------


def test_the_window_keeps_the_last_n_calls_and_the_failures_since_the_first() -> None:
    health = TrunkHealth("a", HealthSettings(window_calls=5, min_calls=5, threshold=1.0))
    calls(health, at(0), "xxx")
    assert health.window_counts(at(0)) == (3, 3)
    calls(health, at(1), ".....")
    assert health.window_counts(at(1)) == (5, 0)  # the failures came before the oldest call


def test_the_window_keeps_the_last_m_minutes() -> None:
    health = TrunkHealth("a", HealthSettings(window=timedelta(seconds=60), threshold=1.0))
    calls(health, at(0), "x.")
    calls(health, at(30), "..")
    assert health.window_counts(at(59.999)) == (4, 1)
    assert health.window_counts(at(60)) == (2, 0)  # exactly `window` old is out
    assert health.failure_rate(at(90)) == 0.0  # empty


def test_calls_in_flight_count_as_not_failed_yet() -> None:
    health = TrunkHealth("a")
    for _ in range(4):
        health.start_call(T0)
    health.record(at(1), True)
    assert health.window_counts(at(1)) == (4, 1)
    assert health.failure_rate(at(1)) == 0.25


# --- tripping -------------------------------------------------------------------------


def test_no_trip_below_the_minimum_sample() -> None:
    health = TrunkHealth("a")
    assert calls(health, T0, "x" * 19) == []
    assert health.state is S.IN_SERVICE
    [change] = calls(health, T0, "x")
    assert (change.trunk, change.at, change.before, change.after) == ("a", T0, S.IN_SERVICE, S.OUT)
    assert change.trigger is T.FAILURE_RATE_OVER


def test_trips_when_the_rate_passes_the_threshold_not_at_it() -> None:
    health = TrunkHealth("a", HealthSettings(burst_factor=None))
    assert calls(health, T0, "." * 27 + "xxx") == []  # 3 of 30: exactly 10%
    [change] = calls(health, at(1), "x")
    assert change.reason == (
        "4 of 31 calls failed (13%) in the last 5 min; threshold 10%; out for 1 min"
    )
    assert (health.state, health.back_at) == (S.OUT, at(61))


def test_a_burst_after_a_long_good_run_trips_on_the_last_min_calls() -> None:
    plain = TrunkHealth("a", HealthSettings(burst_factor=None))
    burst = TrunkHealth("b")
    for health in (plain, burst):
        calls(health, T0, "." * 100)
        assert calls(health, at(1), "xxxxx" + "." * 15) == []  # 5 of the last 20: 25%
    assert calls(plain, at(2), "x") == []  # 6 of 100
    [change] = calls(burst, at(2), "x")
    assert change.reason.startswith(
        "6 of the last 20 calls failed (30%); burst limit 25% (2.5 × threshold 10%)"
    )


# --- cool-off, probes, back -----------------------------------------------------------


def test_out_admits_nothing_until_the_cool_off_then_probes() -> None:
    health = tripped()
    assert not health.admits(at(59.9))
    with pytest.raises(ValueError, match="admits no call"):
        health.start_call(at(59.9))
    assert health.advance(at(59.9)) == []
    [change] = health.advance(at(75))
    assert (change.before, change.after, change.trigger) == (S.OUT, S.PROBING, T.COOLED_OFF)
    assert change.at == at(60)  # when the cool-off ended, not when someone looked
    assert change.reason == "cool-off of 1 min passed; probing with up to 3 calls at a time"


def test_a_cool_off_ended_by_admits_is_handed_out_by_the_next_advance() -> None:
    health = tripped()
    assert health.admits(at(60))
    assert health.state is S.PROBING
    assert [c.after for c in health.advance(at(61))] == [S.PROBING]


def test_probing_admits_at_most_max_probes_in_flight() -> None:
    health = probing(HealthSettings(max_probes_in_flight=2))
    assert [health.start_call(at(60)) for _ in range(2)] == [True, True]
    assert (health.admits(at(60)), health.probe_slots) == (False, 0)
    assert health.record(at(61), False, probe=True) == []
    assert (health.admits(at(61)), health.probe_slots) == (True, 1)


def test_probe_successes_in_a_row_bring_the_trunk_back_with_an_empty_window() -> None:
    health = probing()
    for _ in range(3):
        health.start_call(at(60))
    assert health.record(at(62), False, probe=True) == []
    assert health.record(at(63), False, probe=True) == []
    [change] = health.record(at(64), False, probe=True)
    assert (change.after, change.trigger, change.at) == (S.IN_SERVICE, T.PROBES_PASSED, at(64))
    assert change.reason == "3 probe calls in a row succeeded"
    assert health.window_counts(at(64)) == (0, 0)
    assert health.back_at is None


def test_a_failed_probe_puts_it_out_again_with_a_growing_capped_cool_off() -> None:
    settings = HealthSettings(cool_off=timedelta(seconds=10), max_cool_off=timedelta(seconds=75))
    health = tripped(settings)
    now, outs = at(0), []
    for _ in range(5):
        now = health.back_at or now
        assert [c.after for c in health.advance(now)] == [S.PROBING]
        assert health.start_call(now) is True
        [change] = health.record(now, True, probe=True)
        assert (change.before, change.after, change.trigger) == (S.PROBING, S.OUT, T.PROBE_FAILED)
        outs.append((health.back_at or now) - now)
    assert [o.total_seconds() for o in outs] == [20, 40, 75, 75, 75]
    assert change.reason == "a probe call failed; out for 75 s"
    now = health.back_at or now  # back, then out again: the cool-off starts over
    health.advance(now)
    for _ in range(3):
        health.start_call(now)
        health.record(now, False, probe=True)
    calls(health, now, "x" * 20)
    assert health.back_at == now + timedelta(seconds=10)


def test_stragglers_do_not_move_the_state() -> None:
    health = probing()
    for _ in range(2):
        health.start_call(at(60))
    health.record(at(61), True, probe=True)  # out again
    assert health.record(at(62), False, probe=True) == []  # the round is already decided
    assert health.state is S.OUT
    with pytest.raises(ValueError, match="no probe in flight"):
        health.record(at(63), False, probe=True)
    with pytest.raises(ValueError, match="no call in flight"):
        health.record(at(63), True)


def test_outcomes_of_calls_started_before_the_trip_count_but_move_nothing() -> None:
    health = TrunkHealth("a")
    health.start_call(T0)  # still ringing when the trunk trips
    calls(health, T0, "x" * 19)
    assert health.record(at(5), True) == []
    assert (health.state, health.window_counts(at(5))) == (S.OUT, (20, 20))


# --- time -----------------------------------------------------------------------------


def test_a_clock_stepping_back_never_shortens_a_cool_off_or_revives_the_window() -> None:
    health = tripped()
    health.advance(at(50))
    assert not health.admits(at(-1000))  # counts as 50 s: still cooling off
    assert health.window_counts(at(-1000)) == (20, 20)
    assert health.window_counts(at(300)) == (0, 0)
    assert health.window_counts(at(0)) == (0, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        TrunkHealth("a").admits(datetime(2025, 1, 6, 9))


def test_events_are_frozen() -> None:
    [change] = calls(TrunkHealth("a", HealthSettings(min_calls=1)), T0, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.reason = "changed"  # type: ignore[misc]
