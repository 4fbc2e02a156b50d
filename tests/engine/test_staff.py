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


def test_a_reserved_agent_gets_nobody_else_s_call() -> None:
    staff = Staff()
    for agent_id in ("a", "b"):
        staff.log_in(agent_id, T0)
        staff.ready_up(agent_id, T0)
    assert staff.reserve("a", T0)
    assert not staff.reserve("a", T0)  # asked twice: ignored
    assert staff.take(T0, "c1") == "b"
    assert staff.take(T0, "c2") is None  # "a" is held for a call of their own
    staff.ready_up("a", T0)  # ready while reserved: ignored
    assert staff.agents["a"].state is AgentState.RESERVED
    staff.take_reserved("a", T0)
    assert staff.agents["a"].state is AgentState.ON_CALL


@pytest.mark.parametrize(("leave", "after"), [("pause", AgentState.PAUSED),
                                              ("log_out", AgentState.LOGGED_OUT)])
def test_pause_or_logout_while_reserved_waits_for_the_release(
    leave: str, after: AgentState
) -> None:
    staff = Staff()
    staff.log_in("a", T0)
    staff.ready_up("a", T0)
    staff.reserve("a", T0)
    getattr(staff, leave)("a", T0 + timedelta(seconds=5))
    assert staff.agents["a"].state is AgentState.RESERVED
    staff.release("a", T0 + timedelta(seconds=9))
    assert staff.agents["a"].state is after
    assert not staff.pending_pause
    assert not staff.pending_logout


def test_pause_while_reserved_waits_for_the_call_the_agent_dialed() -> None:
    staff = Staff()
    staff.log_in("a", T0)
    staff.ready_up("a", T0)
    staff.reserve("a", T0)
    staff.pause("a", T0 + timedelta(seconds=5))
    staff.take_reserved("a", T0 + timedelta(seconds=9))
    staff.wrap_up("a", T0 + timedelta(seconds=60))
    assert staff.agents["a"].state is AgentState.PAUSED


def test_reserved_time_is_logged_in_but_not_occupied() -> None:
    staff = Staff()
    staff.log_in("a", T0)
    staff.ready_up("a", T0)
    staff.reserve("a", T0)  # reads the lead, its call rings: 0-30
    staff.take_reserved("a", T0 + timedelta(seconds=30))  # talk 30-90
    staff.wrap_up("a", T0 + timedelta(seconds=90))
    staff.close_books(T0 + timedelta(seconds=100))  # wrap 90-100
    assert staff.time_in[AgentState.RESERVED] == 30
    assert staff.occupancy == pytest.approx(70 / 100)


def test_reserved_is_entered_by_reserve_and_left_by_a_call_or_a_release() -> None:
    reserved, reserve, release = AgentState.RESERVED, AgentMove.RESERVE, AgentMove.RELEASE
    touching = {(state, move): new for (state, move), new in AGENT_TRANSITIONS.items()
                if reserved in (state, new) or move in (reserve, release)}
    assert touching == {
        (AgentState.READY, reserve): reserved,
        (reserved, AgentMove.TAKE_CALL): AgentState.ON_CALL,
        (reserved, release): AgentState.READY,
    }
