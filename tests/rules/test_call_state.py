"""The call lifecycle table, checked over every (state, trigger) pair."""

from __future__ import annotations

import itertools

import pytest

from rules.call_state import (
    ALLOWED_TRIGGERS,
    TRANSITIONS,
    CallState,
    IllegalTransition,
    Trigger,
    next_state,
)

S, T = CallState, Trigger

EXPECTED = {
    (S.CLAIMED, T.DIAL): S.DIALING,
    (S.DIALING, T.RING): S.RINGING,
    (S.DIALING, T.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.DIALING, T.ANSWER): S.ANSWERED,
    (S.RINGING, T.RING): S.RINGING,
    (S.RINGING, T.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.RINGING, T.ANSWER): S.ANSWERED,
    (S.EARLY_MEDIA, T.RING): S.RINGING,
    (S.EARLY_MEDIA, T.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.EARLY_MEDIA, T.ANSWER): S.ANSWERED,
    (S.ANSWERED, T.QUEUE): S.WAITING_FOR_AGENT,
    (S.ANSWERED, T.CONNECT_AGENT): S.CONNECTED,
    (S.ANSWERED, T.START_SCRIPT): S.SCRIPTED,
    (S.ANSWERED, T.ABANDON): S.ABANDONING,
    (S.WAITING_FOR_AGENT, T.CONNECT_AGENT): S.CONNECTED,
    (S.WAITING_FOR_AGENT, T.START_SCRIPT): S.SCRIPTED,
    (S.WAITING_FOR_AGENT, T.ABANDON): S.ABANDONING,
    (S.SCRIPTED, T.CONNECT_AGENT): S.CONNECTED,
    (S.SCRIPTED, T.QUEUE): S.WAITING_FOR_AGENT,
} | {(state, T.END): S.ENDED for state in CallState if state is not S.ENDED}


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(CallState, Trigger)))
def test_every_pair(state: CallState, trigger: Trigger) -> None:
    if (state, trigger) in EXPECTED:
        assert next_state(state, trigger) is EXPECTED[state, trigger]
    else:
        with pytest.raises(IllegalTransition) as caught:
            next_state(state, trigger)
        assert caught.value.state is state
        assert caught.value.trigger is trigger


def test_the_table_is_exactly_the_expected_one() -> None:
    assert TRANSITIONS == EXPECTED


def test_nothing_leaves_ended() -> None:
    assert ALLOWED_TRIGGERS[S.ENDED] == frozenset()
    for trigger in Trigger:
        with pytest.raises(IllegalTransition):
            next_state(S.ENDED, trigger)


def test_illegal_transition_is_a_value_error_naming_both() -> None:
    with pytest.raises(ValueError, match="claimed on answer"):
        next_state(S.CLAIMED, T.ANSWER)


def test_allowed_triggers_match_the_table() -> None:
    for state in CallState:
        assert ALLOWED_TRIGGERS[state] == {t for (s, t) in TRANSITIONS if s is state}


def test_every_state_is_reachable_from_claimed_and_can_end() -> None:
    reached = {S.CLAIMED}
    frontier = [S.CLAIMED]
    while frontier:
        state = frontier.pop()
        for trigger in ALLOWED_TRIGGERS[state]:
            target = next_state(state, trigger)
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(CallState)


def test_a_typical_robocall() -> None:
    state = S.CLAIMED
    for trigger in (T.DIAL, T.EARLY_MEDIA, T.RING, T.EARLY_MEDIA, T.ANSWER, T.START_SCRIPT,
                    T.QUEUE, T.CONNECT_AGENT, T.END):
        state = next_state(state, trigger)
    assert state is S.ENDED
