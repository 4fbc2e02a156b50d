"""Tuning from outcomes: rates with intervals, flags, and the changes proposed."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.dispositions import Disposition as D
from rules.tuning import (
    CampaignState,
    Outcome,
    SourceFigures,
    SuppressionFact,
    TuningSettings,
    is_complaint,
    local_slot,
    tune,
)
from rules.tuning_hours import Hours, Rate, group_days, intersect_hours, propose_hours, wilson

MONDAY_9_SHANGHAI = datetime(2024, 6, 3, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
OFFICE: tuple[Hours, ...] = (
    *[((time(9), time(12)), (time(14), time(18)))] * 5, (), (),
)
ANY_DAY = CampaignState(hours=None)


def outcome(disposition: str | None, *, at: datetime = MONDAY_9_SHANGHAI,
            zone: str = "Asia/Shanghai", script: str = "s1", source: str = "src",
            e164: str = "+8613500000000") -> Outcome:
    return Outcome(e164=e164, placed_at=at, zone=zone, disposition=disposition,
                   script=script, source=source)


def source(name: str, share: float, rows: int = 1000) -> SourceFigures:
    return SourceFigures(source=name, rows=rows, invalid_at_intake=round(share * rows),
                         dead_numbers=0, share=share)


def rates(**by_hour: tuple[int, int]) -> list[Rate]:
    """24 rates, those named `h9=(answered, attempts)` filled in, the rest empty."""
    return [Rate(*by_hour.get(f"h{h}", (0, 0))) for h in range(24)]


# Wilson intervals


@pytest.mark.parametrize(("successes", "trials", "low", "high"), [
    (5, 10, 0.2366, 0.7634),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (50, 100, 0.4038, 0.5962),
    (1, 20, 0.0089, 0.2361),
])
def test_wilson_matches_known_values(successes: int, trials: int, low: float,
                                     high: float) -> None:
    assert wilson(successes, trials) == (pytest.approx(low, abs=1e-4),
                                         pytest.approx(high, abs=1e-4))


def test_a_rate_without_trials_is_zero_with_the_widest_interval() -> None:
    empty = Rate(0, 0)
    assert (empty.rate, empty.low, empty.high) == (0.0, 0.0, 1.0)


@given(st.integers(0, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_the_interval_holds_the_rate(case: tuple[int, int]) -> None:
    rate = Rate(*case)
    assert 0.0 <= rate.low <= rate.rate <= rate.high <= 1.0


# binning in the callee's local time


@pytest.mark.parametrize(("zone", "slot"), [
    ("Asia/Shanghai", (0, 9)),  # Monday 09:30
    ("America/New_York", (6, 21)),  # Sunday 21:30 (EDT)
    ("", (0, 1)),  # unknown: UTC
    ("Etc/Unknown", (0, 1)),
    ("Not/A_Zone", (0, 1)),
])
def test_local_slot_is_the_callees_weekday_and_hour(zone: str, slot: tuple[int, int]) -> None:
    assert local_slot(MONDAY_9_SHANGHAI, zone) == slot


def test_answer_rates_bin_by_local_hour_and_leave_out_attempts_without_a_verdict() -> None:
    log = [outcome(D.COMPLETED), outcome(D.NO_ANSWER), outcome(D.OPTED_OUT),
           outcome(D.NETWORK_ERROR), outcome(D.FAILED), outcome(None),
           outcome(D.ABANDONED, zone="America/New_York"),
           outcome(D.BUSY, zone="America/New_York")]
    result = tune(log, [], [], state=ANY_DAY)
    assert result.attempts == 8
    assert result.overall == Rate(3, 5)
    assert result.by_hour[9] == Rate(2, 3)
    assert result.by_hour[21] == Rate(1, 2)
    assert result.by_weekday[0] == Rate(2, 3)
    assert result.by_weekday[6] == Rate(1, 2)
    assert sum(r.trials for r in result.by_hour) == 5
    assert (result.first_at, result.last_at) == (MONDAY_9_SHANGHAI, MONDAY_9_SHANGHAI)


# scripts


def script_log(script: str, answered: int, opt_outs: int, unanswered: int = 0) -> list[Outcome]:
    return ([outcome(D.OPTED_OUT, script=script)] * opt_outs
            + [outcome(D.COMPLETED, script=script)] * (answered - opt_outs)
            + [outcome(D.NO_ANSWER, script=script)] * unanswered)


def test_a_script_is_flagged_above_the_opt_out_limit_not_at_it() -> None:
    log = script_log("at-limit", 200, 1, unanswered=300) + script_log("above", 200, 2)
    state = CampaignState(hours=None, default_script="main")
    result = tune(log, [], [], state=state)
    figures = {s.script: s for s in result.scripts}
    assert figures["at-limit"].opt_out_rate == 0.005  # over answered calls, not attempts
    assert figures["at-limit"].attempts == 500
    assert not figures["at-limit"].flagged
    assert figures["above"].flagged
    (change,) = result.changes
    assert (change.field, change.op, change.value) == ("retired_scripts", "add", ("above",))
    assert "2 opt-outs (1.00%)" in change.why


def test_the_limit_is_a_setting() -> None:
    result = tune(script_log("s", 200, 1), [], [], state=ANY_DAY,
                  settings=TuningSettings(max_optout_rate=0.001))
    assert result.scripts[0].flagged


def test_the_campaigns_own_script_is_flagged_but_never_retired() -> None:
    state = CampaignState(hours=None, default_script="main")
    result = tune(script_log("main", 100, 10), [], [], state=state)
    assert result.scripts[0].flagged
    assert result.changes == ()
    assert any("'main'" in note and "campaign's own script" in note for note in result.notes)


def test_a_script_flagged_on_thin_data_or_already_retired_is_not_proposed() -> None:
    state = CampaignState(hours=None, default_script="main", retired_scripts=frozenset({"old"}))
    log = script_log("thin", 10, 1) + script_log("old", 100, 10)
    result = tune(log, [], [], state=state)
    assert [s.flagged for s in result.scripts] == [True, True]
    assert result.changes == ()
    assert any("'thin'" in note and "10 answered calls" in note for note in result.notes)


def test_complaints_count_once_for_the_script_of_the_latest_earlier_attempt() -> None:
    first, second = MONDAY_9_SHANGHAI, MONDAY_9_SHANGHAI + timedelta(days=1)
    log = [outcome(D.COMPLETED, at=first, script="a", e164="+1"),
           outcome(D.COMPLETED, at=second, script="b", e164="+1"),
           outcome(D.COMPLETED, at=second + timedelta(days=2), script="a", e164="+1"),
           outcome(D.COMPLETED, at=second, script="a", e164="+2"),
           outcome(D.COMPLETED, at=second, script="a", e164="+3"),
           outcome(D.COMPLETED, at=second, script="a", e164="+4")]
    later = second + timedelta(hours=1)
    suppressions = [
        SuppressionFact(e164="+1", reason="Customer COMPLAINT", created_at=later),
        SuppressionFact(e164="+1", reason="complaint (campaign)", created_at=later),
        SuppressionFact(e164="+2", reason="用户投诉", created_at=later),
        SuppressionFact(e164="+3", reason="complaint", created_at=first),  # before any call
        SuppressionFact(e164="+4", reason="opted out during a call", created_at=later),
    ]
    result = tune(log, suppressions, [], state=ANY_DAY)
    complaints = {s.script: s.complaints for s in result.scripts}
    assert complaints == {"a": 1, "b": 1}
    assert {s.script: s.flagged for s in result.scripts} == {"a": True, "b": True}


@pytest.mark.parametrize(("reason", "expected"), [
    ("complaint", True), ("Regulator complaint #12", True), ("客户投诉", True),
    ("opted out during a call", False), ("regulator", False),
])
def test_is_complaint(reason: str, expected: bool) -> None:
    assert is_complaint(reason) is expected


# sources


def test_a_source_is_flagged_above_the_limit_and_stopped() -> None:
    sources = [source("ok", 0.10), source("bad", 0.1001), source("good", 0.01)]
    result = tune([outcome(D.COMPLETED)], [], sources, state=ANY_DAY)
    assert [(v.figures.source, v.flagged) for v in result.sources] == [
        ("bad", True), ("good", False), ("ok", False)]
    (change,) = result.changes
    assert (change.field, change.op, change.value) == ("stopped_sources", "add", ("bad",))
    assert "bad: 10.0% of 1000 rows" in change.why


def test_the_source_limit_is_a_setting_and_stopped_sources_are_not_proposed_again() -> None:
    sources = [source("a", 0.06), source("b", 0.06), source("c", 0.01)]
    state = CampaignState(hours=None, stopped_sources=frozenset({"b"}))
    result = tune([], [], sources, state=state,
                  settings=TuningSettings(max_invalid_share=0.05))
    assert [v.flagged for v in result.sources] == [True, True, False]
    assert [c.value for c in result.changes] == [("a",)]


def test_the_last_source_still_dialed_is_kept() -> None:
    result = tune([], [], [source("worse", 0.5), source("bad", 0.3)], state=ANY_DAY)
    assert [c.value for c in result.changes] == [("worse",)]
    assert any("'bad'" in note and "last one still dialed" in note for note in result.notes)
    alone = tune([], [], [source("only", 0.5)], state=ANY_DAY)
    assert alone.sources[0].flagged
    assert alone.changes == ()


def test_a_source_flagged_on_few_rows_waits() -> None:
    result = tune([], [], [source("good", 0.01), source("tiny", 0.9, rows=5)], state=ANY_DAY)
    assert result.sources[1].flagged
    assert result.changes == ()
    assert any("'tiny'" in note and "5 rows" in note for note in result.notes)


# calling hours


def test_hours_clearly_worse_than_the_best_are_dropped_and_thin_hours_kept() -> None:
    by_hour = rates(h9=(120, 400), h10=(130, 400), h11=(110, 400), h14=(115, 400),
                    h15=(40, 400), h16=(30, 400), h17=(2, 20))
    change, notes = propose_hours(by_hour, OFFICE, min_attempts=30)
    assert change is not None
    assert (change.field, change.op) == ("calling_hours", "set")
    assert dict(change.value) == {"weekdays": ("09:00-12:00", "14:00-15:00", "17:00-18:00")}
    assert change.why.startswith("answer rate by local hour, best first: 10h 32.5%")
    assert "dropping 15:00-16:00, 16:00-17:00" in change.why
    assert notes == ["hours 17:00-18:00 have fewer than 30 attempts: left as they are"]


def test_hours_we_know_nothing_about_are_left_as_they_are() -> None:
    by_hour = rates(h10=(200, 400), h11=(190, 400), h12=(40, 400), h20=(45, 400))
    change, _ = propose_hours(by_hour, None, min_attempts=30)
    assert change is not None
    assert dict(change.value) == {"weekdays": ("00:00-12:00", "13:00-20:00", "21:00-23:59"),
                                  "weekend": ("00:00-12:00", "13:00-20:00", "21:00-23:59")}


def test_an_hour_is_only_dropped_when_the_intervals_do_not_overlap() -> None:
    close = rates(h9=(100, 400), h10=(80, 400))  # [21%-30%] and [16%-24%] overlap
    assert propose_hours(close, OFFICE, 30)[0] is None
    apart = rates(h9=(100, 400), h10=(50, 400))
    change = propose_hours(apart, OFFICE, 30)[0]
    assert change is not None
    assert dict(change.value) == {"weekdays": ("09:00-10:00", "11:00-12:00", "14:00-18:00")}


def test_no_hours_proposal_on_thin_data_or_outside_todays_hours() -> None:
    thin = rates(h9=(100, 400), h10=(5, 29))
    change, notes = propose_hours(thin, OFFICE, 30)
    assert change is None
    assert "fewer than two calling hours have 30 attempts" in notes[0]
    outside = rates(h9=(100, 400), h20=(5, 400))  # 20h cannot be called now: not judged
    assert propose_hours(outside, OFFICE, 30)[0] is None


def test_the_hours_proposal_keeps_each_days_own_hours() -> None:
    days: tuple[Hours, ...] = (*OFFICE[:4], ((time(9), time(12)),),
                               ((time(10), time(11, 30)),), ())
    change = propose_hours(rates(h9=(100, 400), h10=(40, 400), h11=(110, 400)), days, 30)[0]
    assert change is not None
    assert dict(change.value) == {
        "mon": ("09:00-10:00", "11:00-12:00", "14:00-18:00"),
        "tue": ("09:00-10:00", "11:00-12:00", "14:00-18:00"),
        "wed": ("09:00-10:00", "11:00-12:00", "14:00-18:00"),
        "thu": ("09:00-10:00", "11:00-12:00", "14:00-18:00"),
        "fri": ("09:00-10:00", "11:00-12:00"),
        "sat": ("11:00-11:30",),
    }


def test_group_days_uses_weekdays_and_weekend_when_the_days_agree() -> None:
    office = [[(540, 720)]] * 5
    assert dict(group_days([*office, [(600, 660)], [(600, 660)]])) == {
        "weekdays": ("09:00-12:00",), "weekend": ("10:00-11:00",)}
    assert dict(group_days([*office, [], [(0, 1440)]])) == {
        "weekdays": ("09:00-12:00",), "sun": ("00:00-23:59",)}


def test_intersect_hours_is_what_both_allow() -> None:
    narrow: tuple[Hours, ...] = (((time(8), time(10)), (time(17), time(20))),) * 7
    both = intersect_hours(OFFICE, narrow)
    assert both is not None
    assert both[0] == ((time(9), time(10)), (time(17), time(18)))
    assert both[5] == ()
    assert intersect_hours(None, OFFICE) == OFFICE
    assert intersect_hours(OFFICE, None) == OFFICE
    assert intersect_hours(None, None) is None


TODAY = set(range(9 * 60, 12 * 60)) | set(range(14 * 60, 18 * 60))  # OFFICE's weekdays


def _open_minutes(ranges: tuple[str, ...]) -> set[int]:
    found: set[int] = set()
    for text in ranges:
        start, end = (int(clock[:2]) * 60 + int(clock[3:]) for clock in text.split("-"))
        found |= set(range(start, end))
    return found


def _hour(hour: int) -> set[int]:
    return set(range(hour * 60, hour * 60 + 60)) & TODAY


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), min_size=24,
                max_size=24))
def test_a_proposal_only_narrows_and_keeps_thin_hours_and_the_best(
        cells: list[tuple[int, int]]) -> None:
    by_hour = [Rate(min(answered, n), n) for answered, n in cells]
    change, _ = propose_hours(by_hour, OFFICE, min_attempts=30)
    if change is None:
        return
    assert not isinstance(change.value, tuple)
    assert set(change.value) == {"weekdays"}  # no hours at weekends today, none proposed
    proposed = _open_minutes(change.value["weekdays"])
    assert proposed < TODAY
    judged = [h for h in range(24) if by_hour[h].trials >= 30 and _hour(h)]
    best = max(judged, key=lambda h: (by_hour[h].low, by_hour[h].rate))
    assert _hour(best) <= proposed
    assert all(_hour(h) <= proposed for h in range(24) if by_hour[h].trials < 30)
