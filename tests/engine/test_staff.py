"""The agent lifecycle table, exhaustively, and the time accounting behind occupancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.engine.staff import (
    AGENT_TRANSITIONS,
    AgentMove,
    AgentState,
    IllegalAgentMove,
    Staff,
    _Agent,
)

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("state", list(AgentState))
@pytest.mark.parametrize("move", list(AgentMove))
def test_every_state_and_move(state: AgentState, move: AgentMove) -> None:
    staff = Staff(agents={"a": _Agent(state, T0)})
    expected = AGENT_TRANSITIONS.get((state, move))
    if expected is None:
        with pytest.raises(IllegalAgentMove):
            staff._move("a", move, T0)
    else:
        staff._move("a", move, T0)
        assert staff.agents["a"].state is expected


def test_logout_during_a_call_waits_for_the_call() -> None:
    staff = Staff()
    staff.log_in("a", T0)
    staff.ready_up("a", T0)
    assert staff.take(T0, "c1") == "a"
    staff.log_out("a", T0 + timedelta(seconds=30))
    assert staff.agents["a"].state is AgentState.ON_CALL
    staff.wrap_up("a", T0 + timedelta(seconds=60))  # no more events come from a logged-out phone
    assert staff.agents["a"].state is AgentState.LOGGED_OUT
    assert not staff.pending_logout


def test_odd_agent_events_never_stop_a_campaign() -> None:
    staff = Staff()
    staff.pause("ghost", T0)  # never logged in
    staff.log_out("ghost", T0)
    staff.log_in("a", T0)
    staff.log_in("a", T0)  # a softphone reconnects
    staff.ready_up("a", T0)
    staff.take(T0, "c1")
    staff.ready_up("a", T0)  # ready while on a call
    staff.pause("a", T0)  # pause during the call: after it
    staff.wrap_up("a", T0 + timedelta(seconds=9))
    assert staff.agents["a"].state is AgentState.PAUSED
    assert "ghost" not in staff.agents


def test_occupancy_is_talk_and_wrap_over_logged_in_time() -> None:
    staff = Staff()
    staff.log_in("a", T0)
    staff.ready_up("a", T0)  # ready 0-40
    staff.take(T0 + timedelta(seconds=40), "c1")  # talk 40-140
    staff.wrap_up("a", T0 + timedelta(seconds=140))  # wrap 140-150
    staff.ready_up("a", T0 + timedelta(seconds=150))  # ready 150-200
    staff.close_books(T0 + timedelta(seconds=200))
    assert staff.occupancy == pytest.approx(110 / 200)
