"""Segments: conditions from YAML, first match wins, time-triggered due times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.config import parse_campaign
from dialer.errors import ConfigError
from rules.segments import Op, Segment, condition_of, place

BIG = Segment(name="big", priority=10, when=(
    condition_of("cart_value", {"at_least": 300}), condition_of("intent", "high")))
RECENT = Segment(name="recent", priority=5, when=(
    condition_of("cart_at", {"older_than": "2h"}),))


def test_the_first_segment_whose_conditions_all_hold_takes_the_lead() -> None:
    assert place([BIG, RECENT], {"cart_value": "450", "intent": "high"}).name == "big"
    assert place([BIG, RECENT], {"cart_value": "450", "intent": "low"}).segment is None
    assert place([BIG], {"cart_value": "1,200.00", "intent": "high"}).priority == 10
    assert place([BIG], {"cart_value": "lots", "intent": "high"}).segment is None
    assert place([], {"x": "1"}).priority == 0


def test_older_than_makes_the_lead_due_after_the_time_plus_the_span() -> None:
    placed = place([RECENT], {"cart_at": "2024-06-03T10:15:00+08:00"})
    assert placed.name == "recent"
    assert placed.due_from == datetime(2024, 6, 3, 4, 15, tzinfo=UTC)
    naive = place([RECENT], {"cart_at": "2024-06-03T10:15:00"})
    assert naive.due_from == datetime(2024, 6, 3, 12, 15, tzinfo=UTC)  # UTC when unzoned
    assert place([RECENT], {"cart_at": "yesterday"}).segment is None


def test_history_fields_and_other_tests() -> None:
    retry = Segment(name="retry", priority=-1, when=(
        condition_of("attempts_made", {"at_least": 1}),
        condition_of("last_disposition", {"in": ["busy", "no_answer"]})))
    assert place([retry], {}, attempts_made=1, last_disposition="busy").name == "retry"
    assert place([retry], {}, attempts_made=1, last_disposition="rejected").segment is None
    assert place([retry], {}).segment is None
    vip = Segment(name="vip", when=(condition_of("vip", True),
                                    condition_of("email", {"present": False}),
                                    condition_of("city", {"not": "北京"})))
    assert place([vip], {"vip": "是", "city": "上海"}).name == "vip"
    assert place([vip], {"vip": "yes", "city": "北京"}).segment is None
    assert place([vip], {"vip": "yes", "email": "a@b.c"}).segment is None


@pytest.mark.parametrize(("spec", "message"), [
    ({"at_least": "300"}, "takes a number"),
    ({"older_than": "two hours"}, "span such as 2h"),
    ({"between": [1, 2]}, "unknown test 'between'"),
    ({"at_least": 1, "at_most": 2}, "one test per field"),
    ({"in": []}, "non-empty list"),
    ({"present": "yes"}, "true or false"),
])
def test_a_bad_condition_says_what_is_wrong(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        condition_of("f", spec)


def test_spans() -> None:
    assert condition_of("t", {"older_than": "1d2h"}).value == timedelta(days=1, hours=2)
    assert condition_of("t", {"older_than": "90min"}).value == timedelta(minutes=90)
    assert condition_of("t", {"older_than": "30m"}).op is Op.OLDER_THAN


def test_campaign_yaml_segments_are_validated_with_their_path() -> None:
    base = {"name": "c", "compliance": "us-tcpa"}
    campaign = parse_campaign({**base, "segments": [
        {"name": "big", "when": {"cart_value": {"at_least": 300}}, "then": {"priority": 10,
                                                                            "tier": "premium"}},
    ]})
    assert campaign.segments[0].conditions()[0].op is Op.AT_LEAST
    with pytest.raises(ConfigError, match=r"segments.*when.*cart_value.*takes a number"):
        parse_campaign({**base, "segments": [{"name": "x", "when": {"cart_value": {
            "at_least": "many"}}}]})
    with pytest.raises(ConfigError, match="named twice"):
        parse_campaign({**base, "segments": [{"name": "x"}, {"name": "x"}]})
    with pytest.raises(ConfigError, match="tier"):
        parse_campaign({**base, "segments": [{"name": "x", "then": {"tier": "gold"}}]})
