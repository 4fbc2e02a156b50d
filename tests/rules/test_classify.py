"""The classification tables, their precedence, and trunk-failure accounting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.classify import (
    TRUNK_FAILURES,
    classify_answered,
    classify_unanswered,
    is_trunk_failure,
)
from rules.dispositions import Disposition
from rules.signals import Announcement, AnswerKind

D = Disposition
KNOWN_ANNOUNCEMENTS = [a for a in Announcement if a is not Announcement.UNKNOWN]


def unanswered(
    sip_status: int | None = None,
    q850_cause: int | None = None,
    announcement: Announcement | None = None,
    *,
    rang: bool = False,
    network: bool = False,
) -> Disposition:
    return classify_unanswered(
        sip_status=sip_status, q850_cause=q850_cause, announcement=announcement, rang=rang,
        network=network,
    )


@given(
    sip_status=st.none() | st.integers(min_value=-1000, max_value=10_000),
    q850_cause=st.none() | st.integers(min_value=-10, max_value=300),
    announcement=st.none() | st.sampled_from(Announcement),
    rang=st.booleans(),
)
def test_a_network_finding_is_a_network_error_never_a_number_status(
    sip_status: int | None, q850_cause: int | None, announcement: Announcement | None, rang: bool
) -> None:
    # a SIT no-circuit or reorder, or congestion, then whatever final code and cause
    assert unanswered(sip_status, q850_cause, announcement, rang=rang,
                      network=True) is D.NETWORK_ERROR


@pytest.mark.parametrize(("status", "cause"), [(480, None), (404, 1), (486, 17), (487, 16),
                                               (503, None), (None, None)])
def test_network_beats_the_announcement_cause_and_status(status: int | None,
                                                         cause: int | None) -> None:
    assert unanswered(status, cause, Announcement.UNREACHABLE, network=True) == D.NETWORK_ERROR
    assert unanswered(status, cause, Announcement.UNREACHABLE) == D.UNREACHABLE


@pytest.mark.parametrize(
    ("announcement", "expected"),
    [
        (Announcement.VACANT, D.VACANT),
        (Announcement.SUSPENDED, D.SUSPENDED),
        (Announcement.POWERED_OFF, D.POWERED_OFF),
        (Announcement.UNREACHABLE, D.UNREACHABLE),
        (Announcement.BUSY, D.BUSY),
    ],
)
def test_announcement_beats_the_final_code(
    announcement: Announcement, expected: Disposition
) -> None:
    # a carrier plays 空号 then sends 487 or 503 with normal clearing
    assert unanswered(487, 16, announcement, rang=True) == expected
    assert unanswered(503, 34, announcement) == expected
    assert unanswered(None, None, announcement) == expected


def test_unknown_announcement_is_ignored() -> None:
    assert unanswered(486, None, Announcement.UNKNOWN) == D.BUSY
    assert unanswered(503, 17, Announcement.UNKNOWN) == D.BUSY
    assert unanswered(None, None, Announcement.UNKNOWN) == D.FAILED


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (1, D.VACANT),
        (22, D.VACANT),
        (17, D.BUSY),
        (18, D.UNREACHABLE),
        (19, D.NO_ANSWER),
        (20, D.POWERED_OFF),
        (21, D.REJECTED),
        (27, D.NETWORK_ERROR),
        (34, D.NETWORK_ERROR),
        (38, D.NETWORK_ERROR),
        (41, D.NETWORK_ERROR),
        (42, D.NETWORK_ERROR),
        (47, D.NETWORK_ERROR),
    ],
)
def test_q850_cause_beats_the_sip_status(cause: int, expected: Disposition) -> None:
    assert unanswered(480, cause) == expected
    assert unanswered(603, cause, rang=True) == expected


@pytest.mark.parametrize("cause", [16, 31, 0, 3, 28, 102, 127, 999])
def test_normal_clearing_and_unlisted_causes_fall_through(cause: int) -> None:
    assert unanswered(486, cause) == D.BUSY
    assert unanswered(480, cause, rang=True) == D.NO_ANSWER
    assert unanswered(None, cause) == D.FAILED


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, D.VACANT),
        (410, D.VACANT),
        (484, D.VACANT),
        (604, D.VACANT),
        (486, D.BUSY),
        (600, D.BUSY),
        (487, D.NO_ANSWER),
        (603, D.REJECTED),
        (607, D.REJECTED),
        (608, D.REJECTED),
        (408, D.NETWORK_ERROR),
        (500, D.NETWORK_ERROR),
        (502, D.NETWORK_ERROR),
        (503, D.NETWORK_ERROR),
        (504, D.NETWORK_ERROR),
        (580, D.NETWORK_ERROR),
        (401, D.NETWORK_ERROR),
        (403, D.NETWORK_ERROR),
        (407, D.NETWORK_ERROR),
        (415, D.NETWORK_ERROR),
        (488, D.NETWORK_ERROR),
        (606, D.NETWORK_ERROR),
        (400, D.NETWORK_ERROR),
        (482, D.NETWORK_ERROR),
        (302, D.NETWORK_ERROR),
        (None, D.FAILED),
        (180, D.FAILED),
        (200, D.FAILED),
        (0, D.FAILED),
        (700, D.FAILED),
    ],
)
def test_sip_status_table(status: int | None, expected: Disposition) -> None:
    assert unanswered(status) == expected
    assert unanswered(status, rang=True) == expected


def test_480_depends_on_whether_it_rang() -> None:
    assert unanswered(480, rang=True) == D.NO_ANSWER
    assert unanswered(480, rang=False) == D.UNREACHABLE


@given(
    sip_status=st.none() | st.integers(min_value=-1000, max_value=10_000),
    q850_cause=st.none() | st.integers(min_value=-10, max_value=300),
    announcement=st.none() | st.sampled_from(Announcement),
    rang=st.booleans(),
    network=st.booleans(),
)
def test_classify_unanswered_is_total_and_never_answered(
    sip_status: int | None, q850_cause: int | None, announcement: Announcement | None,
    rang: bool, network: bool,
) -> None:
    result = unanswered(sip_status, q850_cause, announcement, rang=rang, network=network)
    assert result in {
        D.VACANT, D.SUSPENDED, D.POWERED_OFF, D.UNREACHABLE, D.BUSY, D.NO_ANSWER,
        D.REJECTED, D.NETWORK_ERROR, D.FAILED,
    }


@given(
    sip_status=st.none() | st.integers(min_value=100, max_value=699),
    q850_cause=st.none() | st.integers(min_value=0, max_value=127),
    announcement=st.sampled_from(KNOWN_ANNOUNCEMENTS),
    rang=st.booleans(),
)
def test_a_known_announcement_always_wins(
    sip_status: int | None, q850_cause: int | None, announcement: Announcement, rang: bool
) -> None:
    assert unanswered(sip_status, q850_cause, announcement, rang=rang).value == announcement.value


def answered(answer: AnswerKind | None = AnswerKind.HUMAN, **flags: bool) -> Disposition:
    values = {"abandoned": False, "opted_out": False, "transferred": False, "completed": False,
              "lost": False}
    values.update(flags)
    return classify_answered(answer=answer, **values)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"opted_out": True, "abandoned": True, "transferred": True, "completed": True},
         D.OPTED_OUT),
        ({"abandoned": True, "transferred": True, "completed": True}, D.ABANDONED),
        ({"abandoned": True, "lost": True}, D.ABANDONED),
        ({"opted_out": True, "lost": True}, D.OPTED_OUT),
        ({"lost": True, "transferred": True, "completed": True}, D.FAILED),
        ({"transferred": True, "completed": True}, D.TRANSFERRED),
        ({"completed": True}, D.COMPLETED),
        ({}, D.ANSWERED_HUMAN),
    ],
)
def test_answered_priority(flags: dict[str, bool], expected: Disposition) -> None:
    assert answered(AnswerKind.HUMAN, **flags) == expected
    if flags:
        assert answered(AnswerKind.MACHINE, **flags) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (AnswerKind.MACHINE, D.ANSWERED_MACHINE),
        (AnswerKind.HUMAN, D.ANSWERED_HUMAN),
        (AnswerKind.UNSURE, D.ANSWERED_HUMAN),
        (None, D.ANSWERED_HUMAN),
    ],
)
def test_answered_by_amd_verdict(answer: AnswerKind | None, expected: Disposition) -> None:
    assert answered(answer) == expected


def test_only_network_errors_are_trunk_failures() -> None:
    assert frozenset({D.NETWORK_ERROR}) == TRUNK_FAILURES
    for disposition in Disposition:
        assert is_trunk_failure(disposition, 503) is (disposition is D.NETWORK_ERROR)


@pytest.mark.parametrize("status", [None, 403, 408, 488, 500, 503])
def test_trunk_failure_statuses(status: int | None) -> None:
    assert is_trunk_failure(D.NETWORK_ERROR, status)


def test_606_is_the_callee_not_the_trunk() -> None:
    assert unanswered(606) == D.NETWORK_ERROR
    assert not is_trunk_failure(D.NETWORK_ERROR, 606)


@pytest.mark.parametrize("status", [486, 480, 487, 603, 404])
def test_callee_behaviour_never_fails_the_trunk(status: int) -> None:
    assert not is_trunk_failure(unanswered(status, rang=True), status)
