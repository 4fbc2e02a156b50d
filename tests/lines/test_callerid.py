"""Caller-ID pools: locality, the lifecycle table, choosing, caps, the daily review, marks."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lines.callerid import CallerIdChanged, CallerIdPool, NumberKind, NumberSpec, SubPool
from lines.callerid_health import (
    TRANSITIONS,
    CallerIdSettings,
    CallerIdState,
    CallerIdTrigger,
    IllegalTransition,
    MarksFileError,
    UnknownCallerId,
    next_state,
    parse_marks_csv,
)
from lines.callerid_locality import Closeness, Locality, closeness, locality

S, T = CallerIdState, CallerIdTrigger
D0 = date(2024, 6, 3)
OLD = D0 - timedelta(days=60)

SHENZHEN = "+8675512345678"  # fixed line, 广东省深圳市
GUANGZHOU = "+862012345678"  # fixed line, 广东省广州市
BEIJING = "+861012345678"  # fixed line, 北京市
BEIJING_2 = "+861087654321"
SHANGHAI = "+862161234567"  # fixed line, 上海市
SHENZHEN_CALLEE = "+8613510241234"  # mobile, 广东省深圳市
BEIJING_CALLEE = "+8613800138000"  # mobile, 北京市


def at(day: date, minute: int = 0) -> datetime:
    return datetime.combine(day, time(9)) + timedelta(minutes=minute)


def spec(
    number: str,
    sub_pool: SubPool = SubPool.MARKETING,
    *,
    added_on: date = OLD,
    cap: int = 20,
) -> NumberSpec:
    return NumberSpec(
        number=number,
        sub_pool=sub_pool,
        kind=NumberKind.FIXED_LINE,
        added_on=added_on,
        daily_cap=cap,
    )


def pool_of(*specs: NumberSpec, significance_z: float = 1.645) -> CallerIdPool:
    """A pool without a reserve: every number in service from the start."""
    rules = CallerIdSettings(reserve_share=0.0, significance_z=significance_z)
    return CallerIdPool(specs, start=D0, settings=rules)


def feed(pool: CallerIdPool, number: str, day: date, attempts: int, answered: int) -> None:
    for index in range(attempts):
        pool.record_outcome(number, day, answered=index < answered)


def moves(changes: list[CallerIdChanged]) -> list[tuple[str, CallerIdTrigger]]:
    return [(change.number, change.trigger) for change in changes]


# The lifecycle table -----------------------------------------------------------------------

EXPECTED = {
    (S.RESERVE, T.PROMOTED): S.WARMING,
    (S.WARMING, T.WARMED): S.ACTIVE,
    (S.WARMING, T.HEALTH_DROPPED): S.RESTING,
    (S.WARMING, T.MARKED): S.RESTING,
    (S.ACTIVE, T.HEALTH_DROPPED): S.RESTING,
    (S.ACTIVE, T.MARKED): S.RESTING,
    (S.RESTING, T.RESTED): S.RESERVE,
    (S.ACTIVE, T.AGED_OUT): S.RETIRED,
    (S.RESTING, T.AGED_OUT): S.RETIRED,
}


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(S, T)))
def test_every_state_and_trigger(state: CallerIdState, trigger: CallerIdTrigger) -> None:
    if (state, trigger) in EXPECTED:
        assert next_state(state, trigger) is EXPECTED[state, trigger]
    else:
        with pytest.raises(IllegalTransition, match=f"a {state} caller ID cannot be {trigger}"):
            next_state(state, trigger)


def test_the_table_is_the_expected_one_and_retired_is_final() -> None:
    assert dict(TRANSITIONS) == EXPECTED
    assert not [key for key in TRANSITIONS if key[0] is S.RETIRED]
    reachable, frontier = {S.RESERVE, S.WARMING, S.ACTIVE}, [S.RESERVE, S.WARMING, S.ACTIVE]
    while frontier:
        state = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is state and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(S)


# Locality ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+8613800138000", Locality("CN", "北京市", "北京市")),
        ("+8675512345678", Locality("CN", "广东省", "深圳市")),
        ("+862161234567", Locality("CN", "上海市", "上海市")),
        ("+8613912345678", Locality("CN", "江苏省", "常州市")),
        ("+12125550123", Locality("US", "NY", "212")),
        ("+16465550100", Locality("US", "NY", "646")),  # geocoded as just "New York"
        ("+13125550177", Locality("US", "IL", "312")),
        ("+14165550100", Locality("CA", "ON", "416")),
        ("+8617012345678", Locality("CN")),  # a virtual mobile: China, nowhere in particular
        ("+18005550100", Locality("US")),  # toll-free
        ("+442079460000", Locality("GB")),
        ("not a number", Locality(None)),
    ],
)
def test_locality_of_real_numbers(number: str, expected: Locality) -> None:
    assert locality(number) == expected


@pytest.mark.parametrize(
    ("callee", "number", "expected"),
    [
        (SHENZHEN_CALLEE, SHENZHEN, Closeness.SAME_CITY),
        (BEIJING_CALLEE, BEIJING, Closeness.SAME_CITY),
        (SHENZHEN_CALLEE, GUANGZHOU, Closeness.SAME_PROVINCE),
        (SHENZHEN_CALLEE, SHANGHAI, Closeness.SAME_COUNTRY),
        ("+12125550123", "+16465550100", Closeness.SAME_PROVINCE),  # one state, two codes
        ("+12125550123", "+12125550199", Closeness.SAME_CITY),
        ("+12125550123", "+13125550177", Closeness.SAME_COUNTRY),
        ("+12125550123", BEIJING, Closeness.ELSEWHERE),
        ("+8617012345678", "+8617012345679", Closeness.SAME_COUNTRY),  # unknown parts differ
        ("not a number", "not a number", Closeness.ELSEWHERE),
    ],
)
def test_closeness(callee: str, number: str, expected: Closeness) -> None:
    assert closeness(locality(callee), locality(number)) is expected


def test_labels_for_status_tables() -> None:
    assert [locality(n).label for n in (SHENZHEN, BEIJING, "+12125550123", "+447911123456")] == [
        "广东省深圳市",
        "北京市",
        "212, NY",
        "GG",
    ]


# Choosing ----------------------------------------------------------------------------------


def test_a_service_number_is_never_shown_on_a_marketing_call() -> None:
    pool = pool_of(spec(SHENZHEN, SubPool.SERVICE), spec(BEIJING))
    assert pool.choose(SHENZHEN_CALLEE, sub_pool="marketing", at=at(D0)) == BEIJING
    assert pool.choose(SHENZHEN_CALLEE, sub_pool="service", at=at(D0)) == SHENZHEN
    only_service = pool_of(spec(SHENZHEN, SubPool.SERVICE))
    assert only_service.choose(SHENZHEN_CALLEE, sub_pool="marketing", at=at(D0)) is None
    with pytest.raises(ValueError, match="promo"):
        pool.choose(SHENZHEN_CALLEE, sub_pool="promo", at=at(D0))


def test_local_presence_then_province_then_country_then_nothing() -> None:
    pool = pool_of(spec(BEIJING, cap=2), spec(GUANGZHOU, cap=2), spec(SHENZHEN, cap=2))
    chosen = []
    for minute in range(7):
        number = pool.choose(SHENZHEN_CALLEE, sub_pool="marketing", at=at(D0, minute))
        chosen.append(number)
        if number is not None:
            pool.record_call(number, at(D0, minute))
    assert chosen == [SHENZHEN, SHENZHEN, GUANGZHOU, GUANGZHOU, BEIJING, BEIJING, None]
    # a new day: caps start again
    assert pool.choose(SHENZHEN_CALLEE, sub_pool="marketing", at=at(D0 + timedelta(1))) == SHENZHEN


def test_least_used_share_of_cap_first_then_the_number() -> None:
    pool = pool_of(spec(BEIJING_2, cap=20), spec(BEIJING, cap=10))
    chosen = []
    for minute in range(6):
        number = pool.choose(BEIJING_CALLEE, sub_pool="marketing", at=at(D0, minute))
        assert number is not None
        pool.record_call(number, at(D0, minute))
        chosen.append(number)
    # BEIJING has the smaller cap, so each of its calls uses a bigger share of it
    assert Counter(chosen) == {BEIJING_2: 4, BEIJING: 2}
    assert chosen[0] == BEIJING  # a tie at zero use: the number decides


def test_the_better_recent_answer_rate_wins_a_tie() -> None:
    pool = pool_of(spec(BEIJING), spec(BEIJING_2), spec(SHANGHAI))
    for day in (D0, D0 + timedelta(1), D0 + timedelta(2)):
        feed(pool, BEIJING, day, 10, 5)
        feed(pool, BEIJING_2, day, 10, 6)
        feed(pool, SHANGHAI, day, 10, 5)
    assert pool.review(D0 + timedelta(3)) == []
    assert pool.choose(BEIJING_CALLEE, sub_pool="marketing", at=at(D0 + timedelta(3))) == BEIJING_2


def test_warm_up_caps_rise_from_five_to_ten_over_two_weeks_then_the_daily_cap() -> None:
    pool = pool_of(spec(BEIJING, added_on=D0), spec(SHANGHAI, added_on=D0, cap=7))
    assert pool.state(BEIJING) is S.WARMING
    caps = [pool.cap_today(BEIJING, D0 + timedelta(days)) for days in range(14)]
    assert caps == [5, 5, 5, 6, 6, 6, 7, 7, 8, 8, 8, 9, 9, 10]
    assert max(pool.cap_today(SHANGHAI, D0 + timedelta(days)) for days in range(14)) == 7
    assert pool.review(D0 + timedelta(13)) == []
    day_15 = D0 + timedelta(14)
    assert moves(pool.review(day_15)) == [(BEIJING, T.WARMED), (SHANGHAI, T.WARMED)]
    assert pool.cap_today(BEIJING, day_15) == 20


def test_a_warming_number_stops_at_its_warm_up_cap() -> None:
    pool = pool_of(spec(BEIJING, added_on=D0))
    for minute in range(5):
        assert pool.choose(BEIJING_CALLEE, sub_pool="marketing", at=at(D0, minute)) == BEIJING
        pool.record_call(BEIJING, at(D0, minute))
    assert pool.choose(BEIJING_CALLEE, sub_pool="marketing", at=at(D0, 9)) is None


def test_the_newest_quarter_waits_in_reserve_and_is_never_chosen() -> None:
    numbers = [BEIJING, BEIJING_2, SHANGHAI, GUANGZHOU]
    specs = [spec(n, added_on=OLD + timedelta(i)) for i, n in enumerate(numbers)]
    pool = CallerIdPool(specs, start=D0)
    assert [pool.state(n) for n in numbers] == [S.ACTIVE, S.ACTIVE, S.ACTIVE, S.RESERVE]
    for minute in range(60):
        chosen = pool.choose(SHENZHEN_CALLEE, sub_pool="marketing", at=at(D0, minute))
        assert chosen != GUANGZHOU
        if chosen is not None:
            pool.record_call(chosen, at(D0, minute))
    assert pool.choose(SHENZHEN_CALLEE, sub_pool="marketing", at=at(D0, 61)) is None


# The daily review --------------------------------------------------------------------------

DAYS = [D0 + timedelta(days) for days in range(3)]
DAY_4 = D0 + timedelta(3)


def three_numbers(significance_z: float = 1.645) -> CallerIdPool:
    return pool_of(spec(BEIJING), spec(BEIJING_2), spec(SHANGHAI), significance_z=significance_z)


def test_five_points_behind_the_pool_over_three_days_rests_a_number() -> None:
    pool = three_numbers()
    for day in DAYS:
        feed(pool, BEIJING, day, 200, 90)  # 45%
        feed(pool, BEIJING_2, day, 200, 100)
        feed(pool, SHANGHAI, day, 200, 100)  # the rest of the pool: 50%
    (change,) = pool.review(DAY_4)
    assert (change.number, change.before, change.after) == (BEIJING, S.ACTIVE, S.RESTING)
    assert change.trigger is T.HEALTH_DROPPED
    assert change.reason == (
        "answer rate 45.0% on 600 calls over its last 3 calling days, "
        "5.0 points below the rest of the pool (50.0%)"
    )
    assert "+86" not in change.reason
    assert pool.review(DAY_4) == []  # a second review the same day finds nothing new


@pytest.mark.parametrize(
    ("answered", "z", "rested"),
    [
        (91, 0.0, False),  # 4.5 points: not enough, however sure
        (9, 1.645, False),  # 5 points on 20 calls a day: chance
        (9, 0.0, True),  # ... unless the plain rule is asked for
    ],
)
def test_a_drop_must_be_five_points_and_significant(answered: int, z: float, rested: bool) -> None:
    pool = three_numbers(significance_z=z)
    size = 200 if answered > 50 else 20
    for day in DAYS:
        feed(pool, BEIJING, day, size, answered)
        feed(pool, BEIJING_2, day, size, size // 2)
        feed(pool, SHANGHAI, day, size, size // 2)
    assert moves(pool.review(DAY_4)) == ([(BEIJING, T.HEALTH_DROPPED)] if rested else [])


def test_three_calling_days_under_forty_percent_rest_a_number() -> None:
    pool = three_numbers()
    quiet_day = D0 + timedelta(1)
    for day in (D0, D0 + timedelta(2)):
        feed(pool, BEIJING, day, 20, 7)  # 35%
    feed(pool, BEIJING, quiet_day, 3, 0)  # too few calls to count either way
    for day in (D0, quiet_day, D0 + timedelta(2), DAY_4):
        feed(pool, BEIJING_2, day, 20, 8)  # exactly 40% is not under it
        feed(pool, SHANGHAI, day, 20, 8)
    assert pool.review(DAY_4) == []
    feed(pool, BEIJING, DAY_4, 20, 7)
    (change,) = pool.review(DAY_4 + timedelta(1))
    assert change.trigger is T.HEALTH_DROPPED
    assert change.reason == "answer rate under 40% on 3 calling days (35%, 35%, 35%)"


def test_more_than_five_marks_rest_a_number_and_the_reserve_fills_in() -> None:
    numbers = [BEIJING, BEIJING_2, SHANGHAI, SHENZHEN]
    specs = [spec(n, added_on=OLD + timedelta(i)) for i, n in enumerate(numbers)]
    pool = CallerIdPool(specs, start=D0)
    assert pool.state(SHENZHEN) is S.RESERVE
    pool.record_marks(BEIJING_2, 5, at(D0))
    assert pool.review(D0) == []
    pool.record_marks(BEIJING_2, 6, at(D0, 30))
    marked, promoted = pool.review(D0 + timedelta(1))
    assert (marked.number, marked.trigger, marked.after) == (BEIJING_2, T.MARKED, S.RESTING)
    assert marked.reason == "6 spam marks reported (more than 5)"
    assert (promoted.number, promoted.trigger, promoted.after) == (SHENZHEN, T.PROMOTED, S.WARMING)
    assert promoted.reason == "from the reserve: 2 of 3 marketing numbers were in service"
    assert pool.cap_today(SHENZHEN, D0 + timedelta(1)) == 5


def test_a_rested_number_returns_to_the_reserve_only_once_its_marks_are_cleared() -> None:
    pool = three_numbers()
    pool.record_marks(BEIJING, 8, at(D0))
    assert moves(pool.review(D0)) == [(BEIJING, T.MARKED)]
    assert pool.review(D0 + timedelta(7)) == []  # a week on, still marked: still resting
    pool.record_marks(BEIJING, 1, at(D0 + timedelta(7), 60))
    returned, promoted = pool.review(D0 + timedelta(8))
    assert (returned.trigger, returned.after, returned.reason) == (
        T.RESTED,
        S.RESERVE,
        "rested 8 days; back in the reserve",
    )
    # the pool had no reserve, so it is short a number: the rested one warms up again
    assert (promoted.number, promoted.trigger) == (BEIJING, T.PROMOTED)
    assert pool.state(BEIJING) is S.WARMING


def test_a_rested_number_stays_in_reserve_when_the_pool_is_full() -> None:
    numbers = [BEIJING, BEIJING_2, SHANGHAI, SHENZHEN]
    specs = [spec(n, added_on=OLD + timedelta(i)) for i, n in enumerate(numbers)]
    pool = CallerIdPool(specs, start=D0)
    for day in DAYS:
        feed(pool, BEIJING, day, 20, 5)  # 25%: under the floor
        feed(pool, BEIJING_2, day, 20, 10)
        feed(pool, SHANGHAI, day, 20, 10)
    assert moves(pool.review(DAY_4)) == [(BEIJING, T.HEALTH_DROPPED), (SHENZHEN, T.PROMOTED)]
    assert moves(pool.review(DAY_4 + timedelta(7))) == [(BEIJING, T.RESTED)]
    assert pool.state(BEIJING) is S.RESERVE


def test_an_old_number_rested_twice_is_retired() -> None:
    old = D0 - timedelta(days=100)
    pool = pool_of(spec(BEIJING, added_on=old), spec(SHANGHAI), spec(BEIJING_2))
    pool.record_marks(BEIJING, 6, at(D0))
    pool.review(D0)
    pool.record_marks(BEIJING, 0, at(D0 + timedelta(7)))
    assert moves(pool.review(D0 + timedelta(7))) == [(BEIJING, T.RESTED), (BEIJING, T.PROMOTED)]
    pool.record_marks(BEIJING, 7, at(D0 + timedelta(8)))
    assert moves(pool.review(D0 + timedelta(8))) == [(BEIJING, T.MARKED)]
    (retired,) = pool.review(D0 + timedelta(9))
    assert (retired.trigger, retired.after) == (T.AGED_OUT, S.RETIRED)
    assert retired.reason == "109 days old with a poor record: rested 2 times"


def test_an_old_number_that_stays_marked_through_its_rest_is_retired() -> None:
    pool = pool_of(spec(BEIJING, added_on=D0 - timedelta(days=89)), spec(SHANGHAI))
    pool.record_marks(BEIJING, 9, at(D0))
    assert moves(pool.review(D0)) == [(BEIJING, T.MARKED)]  # marked: rested before retired
    (retired,) = pool.review(D0 + timedelta(1))
    assert retired.reason == ("90 days old with a poor record: 9 spam marks reported (more than 5)")


@pytest.mark.parametrize(
    ("age", "beijing_answered", "expected"),
    [
        (100, 40, T.AGED_OUT),  # old, behind the pool over its life: retired at once
        (60, 40, T.HEALTH_DROPPED),  # young: rested instead
        (100, 50, None),  # old but as good as the rest: kept
    ],
)
def test_retirement_needs_age_and_a_poor_record(
    age: int, beijing_answered: int, expected: CallerIdTrigger | None
) -> None:
    pool = pool_of(spec(BEIJING, added_on=D0 - timedelta(age)), spec(SHANGHAI), spec(BEIJING_2))
    for day in DAYS:
        feed(pool, BEIJING, day, 100, beijing_answered)
        feed(pool, SHANGHAI, day, 100, 50)
        feed(pool, BEIJING_2, day, 100, 50)
    changes = pool.review(DAY_4)
    assert [change.trigger for change in changes] == ([expected] if expected else [])
    if expected is T.AGED_OUT:
        assert changes[0].reason == (
            "103 days old with a poor record: answer rate 40.0% on 300 calls over its life, "
            "10.0 points below the rest of the pool (50.0%)"
        )


def test_status_rows() -> None:
    pool = pool_of(spec(SHENZHEN, SubPool.SERVICE), spec(BEIJING, added_on=D0))
    pool.record_call(BEIJING, at(D0))
    feed(pool, BEIJING, D0, 5, 2)
    pool.record_marks(BEIJING, 2, at(D0, 5))
    marketing, service = pool.status(D0 + timedelta(1))
    assert (service.number, service.state, service.city, service.cap_today) == (
        SHENZHEN,
        S.ACTIVE,
        "广东省深圳市",
        20,
    )
    assert (marketing.state, marketing.calls_today, marketing.cap_today) == (S.WARMING, 0, 5)
    assert (marketing.recent_answer_rate, marketing.marks, marketing.marks_at) == (
        0.4,
        2,
        at(D0, 5),
    )
    assert pool.status(D0)[0].calls_today == 1


def test_errors_never_show_a_whole_number() -> None:
    pool = three_numbers()
    with pytest.raises(UnknownCallerId) as caught:
        pool.record_call("+8613912345678", at(D0))
    assert "+8613912345678" not in str(caught.value)
    assert isinstance(caught.value, KeyError)
    with pytest.raises(ValueError, match="listed twice"):
        pool_of(spec(BEIJING), spec(BEIJING))
    with pytest.raises(ValueError, match="negative"):
        pool.record_marks(BEIJING, -1, at(D0))
    with pytest.raises(ValueError, match=r"reserve_share.*warmup_last_cap"):
        CallerIdSettings(reserve_share=1.5, warmup_first_cap=8, warmup_last_cap=6)


# Marks files -------------------------------------------------------------------------------


def test_marks_csv_with_english_headers() -> None:
    text = "Number,Marks\n+8613800138000,3\n+8675512345678,12\n\n+8613800138000,2\n"
    assert parse_marks_csv(text) == {"+8613800138000": 5, "+8675512345678": 12}


def test_marks_csv_with_chinese_headers_bom_tabs_and_national_numbers() -> None:
    text = (
        "\ufeff序号\t号码\t标记类型\t标记次数\n"
        "1\t010-12345678\t骚扰电话\t7\n"
        "2\t138 0013 8000\t广告推销\t0\n"
    )
    assert parse_marks_csv(text) == {"+861012345678": 7, "+8613800138000": 0}


def test_marks_csv_names_every_bad_line_without_repeating_numbers() -> None:
    text = (
        "号码,标记次数\n13800138000,2\n12345,3\n13800138001,-1\n13800138002\n"
        "13800138003,+8613800138003\n"  # columns swapped: the number is not repeated
    )
    with pytest.raises(MarksFileError) as caught:
        parse_marks_csv(text)
    assert [line for line, _ in caught.value.problems] == [3, 4, 5, 6]
    message = str(caught.value)
    assert message.startswith("marks file: 4 problem(s): line 3: the number cell does not hold")
    assert "got '-1'" in message
    assert "1380013800" not in message
    assert "12345" not in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("phone,type\n13800138000,spam\n", "needs a count column"),
        ("name,count\nx,1\n", "needs a number column"),
    ],
)
def test_marks_csv_without_the_columns(text: str, message: str) -> None:
    with pytest.raises(MarksFileError, match=message):
        parse_marks_csv(text)


# Properties: caps and sub-pools hold whatever happens ------------------------------------

POOL_NUMBERS = [SHENZHEN, GUANGZHOU, BEIJING, BEIJING_2, SHANGHAI, "+12125550123"]
CALLEES = [SHENZHEN_CALLEE, BEIJING_CALLEE, "+13125550177", "+8617012345678"]


@st.composite
def pools(draw: st.DrawFn) -> tuple[list[NumberSpec], CallerIdSettings]:
    numbers = draw(st.lists(st.sampled_from(POOL_NUMBERS), min_size=1, max_size=6, unique=True))
    specs = [
        spec(
            number,
            draw(st.sampled_from(SubPool)),
            added_on=D0 - timedelta(draw(st.integers(0, 120))),
            cap=draw(st.integers(1, 6)),
        )
        for number in numbers
    ]
    first = draw(st.integers(1, 3))
    rules = CallerIdSettings(
        reserve_share=draw(st.sampled_from([0.0, 0.25, 0.5])),
        warmup_days=draw(st.integers(1, 4)),
        warmup_first_cap=first,
        warmup_last_cap=first + draw(st.integers(0, 3)),
        window_days=draw(st.integers(1, 3)),
        min_daily_sample=draw(st.integers(1, 3)),
        significance_z=draw(st.sampled_from([0.0, 1.645])),
        floor_days=draw(st.integers(1, 3)),
        max_marks=draw(st.integers(0, 3)),
        rest=timedelta(days=draw(st.integers(1, 3))),
        life=timedelta(days=draw(st.integers(30, 130))),
        retire_after_rests=draw(st.integers(1, 2)),
        min_record_sample=draw(st.integers(1, 20)),
    )
    return specs, rules


def warmup_cap(rules: CallerIdSettings, day_of_warmup: int, daily_cap: int) -> int:
    """The issue's ramp, written out again: first cap on day 1, last cap from the last day."""
    first, last, days = rules.warmup_first_cap, rules.warmup_last_cap, rules.warmup_days
    if day_of_warmup >= days:
        return min(last, daily_cap)
    return min(first + (last - first) * (day_of_warmup - 1) // (days - 1), daily_cap)


Step = tuple[str, int, int, bool]  # (what, callee or number index, sub-pool or marks, answered)
steps = st.one_of(
    st.tuples(st.just("call"), st.integers(0, 3), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("marks"), st.integers(0, 5), st.integers(0, 8), st.just(False)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pools(), st.lists(st.lists(steps, max_size=25), min_size=1, max_size=8))
def test_caps_and_sub_pools_hold(
    pool_and_rules: tuple[list[NumberSpec], CallerIdSettings], days: list[list[Step]]
) -> None:
    specs, rules = pool_and_rules
    pool = CallerIdPool(specs, start=D0, settings=rules)
    states = {row.number: row.state for row in pool.status(D0)}
    warming_since = {s.number: s.added_on for s in specs}
    calls: Counter[tuple[str, date]] = Counter()
    for offset, day_steps in enumerate(days):
        day = D0 + timedelta(offset)
        for change in pool.review(day):
            assert states[change.number] is change.before
            assert TRANSITIONS[change.before, change.trigger] is change.after
            states[change.number] = change.after
            if change.trigger is T.PROMOTED:
                warming_since[change.number] = day
        caps = {
            s.number: warmup_cap(rules, (day - warming_since[s.number]).days + 1, s.daily_cap)
            if states[s.number] is S.WARMING
            else s.daily_cap
            for s in specs
        }
        for minute, (what, index, value, answered) in enumerate(day_steps):
            if what == "marks":
                number = specs[index % len(specs)].number
                pool.record_marks(number, value, at(day, minute))
                continue
            sub_pool = list(SubPool)[value]
            chosen = pool.choose(CALLEES[index], sub_pool=sub_pool, at=at(day, minute))
            serving = [
                s.number
                for s in specs
                if s.sub_pool is sub_pool and states[s.number] in (S.WARMING, S.ACTIVE)
            ]
            if chosen is None:
                assert all(calls[n, day] >= caps[n] for n in serving)
                continue
            assert chosen in serving
            calls[chosen, day] += 1
            assert calls[chosen, day] <= caps[chosen] == pool.cap_today(chosen, day)
            pool.record_call(chosen, at(day, minute))
            pool.record_outcome(chosen, day, answered=answered)


# The goal's shape, in miniature -----------------------------------------------------------
# A deliberately simple marking model (the integrator's simulated network is the benchmark):
# a number answers BASE_RATE of its calls, less POINTS_PER_MARK for each spam mark it holds.
# Callees mark a number that makes more than TOLERATED calls in a day, one mark for every
# EXCESS_PER_MARK calls beyond that, reported to the pool at the end of the day (as a
# marking service's CSV would be). On SPOOFED_DAY outsiders spoof one number: it gains 8
# marks. Answers are deterministic: a number answers whenever its running sum of answer
# probabilities passes a whole call, so rates carry no sampling noise.

BASE_RATE, POINTS_PER_MARK, TOLERATED, EXCESS_PER_MARK = 0.50, 0.02, 25, 10
DEMAND, CAMPAIGN_DAYS, SPOOFED_DAY = 400, 10, 4
SIM_NUMBERS = [
    BEIJING, BEIJING_2, SHANGHAI, "+862161234568", SHENZHEN,
    "+8675587654321", GUANGZHOU, "+862087654321", "+8657112345678", "+8657187654321",
]  # fmt: skip
SIM_CALLEES = [SHENZHEN_CALLEE, BEIJING_CALLEE, "+8613912345678", "+8613500000000"]


@dataclass
class SimLine:
    marks: int = 0
    owed: float = 0.0
    calls_today: int = 0

    def answers(self) -> bool:
        self.calls_today += 1
        self.owed += max(0.05, BASE_RATE - POINTS_PER_MARK * self.marks)
        if self.owed >= 1 - 1e-9:
            self.owed -= 1
            return True
        return False

    def end_day(self) -> None:
        self.marks += max(0, self.calls_today - TOLERATED) // EXCESS_PER_MARK
        self.calls_today = 0


def simulate(managed: bool) -> tuple[list[float], list[CallerIdChanged], int]:
    """Answer rate by day, the pool's changes, and the most calls a number made in a day.

    Managed: the pool chooses and reviews. Not managed: plain round-robin, no caps.
    """
    specs = [spec(n, added_on=OLD + timedelta(i)) for i, n in enumerate(SIM_NUMBERS)]
    pool = CallerIdPool(specs, start=D0)
    lines = {number: SimLine() for number in SIM_NUMBERS}
    rates, changes, busiest = [], [], 0
    for offset in range(CAMPAIGN_DAYS):
        day = D0 + timedelta(offset)
        changes += pool.review(day) if managed else []
        if offset + 1 == SPOOFED_DAY:
            lines[BEIJING].marks += 8
        answered = made = 0
        for index in range(DEMAND):
            callee, when = SIM_CALLEES[index % len(SIM_CALLEES)], at(day, index)
            number = (
                pool.choose(callee, sub_pool="marketing", at=when)
                if managed
                else SIM_NUMBERS[index % len(SIM_NUMBERS)]
            )
            if number is None:
                break  # the engine waits for tomorrow rather than exceed a cap
            if managed:
                pool.record_call(number, when)
            made, answered = made + 1, answered + lines[number].answers()
        busiest = max([busiest, *(line.calls_today for line in lines.values())])
        for number, line in lines.items():
            line.end_day()
            if managed:
                pool.record_marks(number, line.marks, at(day, 600))
        rates.append(answered / made)
    return rates, changes, busiest


def test_a_managed_pool_keeps_its_answer_rate_while_round_robin_burns_out() -> None:
    managed, changes, busiest = simulate(managed=True)
    assert abs(managed[-1] - managed[0]) <= 0.03
    assert busiest <= 20
    assert (BEIJING, T.MARKED) in moves(changes)
    # from the reserve (the newest three), the one in a city no number in service covers
    assert (SIM_NUMBERS[-2], T.PROMOTED) in moves(changes)
    round_robin, _, busiest = simulate(managed=False)
    assert round_robin[0] == managed[0] == BASE_RATE
    assert round_robin[0] - round_robin[-1] >= 0.10
    assert busiest == DEMAND // len(SIM_NUMBERS)
