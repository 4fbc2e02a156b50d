"""Simulated agents: shifts, wrap-up, breaks."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from dialer.engine.agents import (
    AgentDialedLead,
    AgentEvent,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentReady,
)
from dialer.engine.commands import AgentReleased, NoLeadForAgent, PreviewLead
from dialer.sim import (
    AgentState,
    AgentTeam,
    Break,
    Dist,
    Scenario,
    SimulatedAgents,
    SimWorld,
    default_scenario,
)
from dialer.store import ClaimedLead

HOUR = timedelta(hours=1)


def team(**settings: Any) -> Scenario:
    scenario = default_scenario()
    return dataclasses.replace(scenario, agents=dataclasses.replace(scenario.agents, **settings))


class Floor:
    def __init__(self, scenario: Scenario, seed: int = 1, *, preview: bool = False) -> None:
        self.world = SimWorld(scenario.start)
        self.start = scenario.start
        self.events: list[AgentEvent] = []
        self.agents = SimulatedAgents(self.world, scenario, self.events.append, seed=seed,
                                      preview=preview)

    def at(self, delta: timedelta) -> None:
        self.world.run_until(self.start + delta)

    def of(self, agent_id: str) -> list[tuple[str, timedelta]]:
        return [
            (type(e).__name__, e.at - self.start) for e in self.events if e.agent_id == agent_id
        ]


def test_agents_log_in_at_shift_start_and_out_at_shift_end() -> None:
    floor = Floor(team(count=3, shift_start=timedelta(minutes=5), shift_end=8 * HOUR))
    assert floor.agents.agent_ids == ("agent-01", "agent-02", "agent-03")
    floor.world.run_all()
    start, end = timedelta(minutes=5), 8 * HOUR
    assert floor.of("agent-02") == [
        ("AgentLoggedIn", start),
        ("AgentReady", start),
        ("AgentLoggedOut", end),
    ]
    assert [type(e) for e in floor.events[:2]] == [AgentLoggedIn, AgentReady]
    assert floor.agents.state("agent-03") is AgentState.LOGGED_OUT


def test_wrap_up_ends_with_ready_after_the_drawn_time() -> None:
    floor = Floor(team(count=1, wrap_up=Dist.fixed(12)))
    floor.at(timedelta(minutes=1))
    floor.agents.call_started("agent-01")
    assert floor.agents.state("agent-01") is AgentState.ON_CALL
    floor.at(timedelta(minutes=3))
    floor.agents.call_finished("agent-01")
    assert floor.agents.state("agent-01") is AgentState.WRAP_UP
    floor.at(timedelta(minutes=4))
    assert floor.of("agent-01")[-1] == ("AgentReady", timedelta(minutes=3, seconds=12))
    assert floor.agents.state("agent-01") is AgentState.READY


def test_wrap_up_drawn_from_a_distribution() -> None:
    floor = Floor(team(count=1, wrap_up=Dist.uniform(5, 20)))
    floor.at(timedelta(0))
    waits = []
    for _ in range(200):
        floor.agents.call_started("agent-01")
        floor.agents.call_finished("agent-01")
        began = floor.world.now
        floor.world.run_for(timedelta(seconds=30))
        ready = floor.events[-1]
        assert isinstance(ready, AgentReady)
        waits.append((ready.at - began).total_seconds())
    assert min(waits) >= 5
    assert max(waits) <= 20
    assert len(set(waits)) > 100


def test_call_finished_without_call_started_is_accepted() -> None:
    floor = Floor(team(count=1, wrap_up=Dist.fixed(5)))
    floor.at(timedelta(0))
    floor.agents.call_finished("agent-01")
    floor.at(timedelta(seconds=5))
    assert floor.of("agent-01")[-1] == ("AgentReady", timedelta(seconds=5))


def test_a_break_pauses_a_ready_agent_and_ends_with_ready() -> None:
    lunch = Break(at=3 * HOUR, length=HOUR, reason="lunch")
    floor = Floor(team(count=1, breaks=(lunch,)))
    floor.at(5 * HOUR)
    assert floor.of("agent-01")[2:] == [("AgentPaused", 3 * HOUR), ("AgentReady", 4 * HOUR)]
    paused = floor.events[2]
    assert isinstance(paused, AgentPaused)
    assert paused.reason == "lunch"


def test_a_break_waits_for_the_call_and_wrap_up() -> None:
    coffee = Break(at=HOUR, length=timedelta(minutes=15))
    floor = Floor(team(count=1, breaks=(coffee,), wrap_up=Dist.fixed(10)))
    floor.at(HOUR - timedelta(minutes=1))
    floor.agents.call_started("agent-01")
    floor.at(HOUR + timedelta(minutes=2))
    # On a call, the agent asks for the break at once (the engine defers it to the call's
    # end, and dials no more for the agent); the break itself starts after the wrap-up.
    assert floor.of("agent-01")[-1] == ("AgentPaused", HOUR)
    floor.agents.call_finished("agent-01")
    floor.at(2 * HOUR)
    wrapped = HOUR + timedelta(minutes=2, seconds=10)
    assert floor.of("agent-01")[2:] == [
        ("AgentPaused", HOUR),
        ("AgentPaused", wrapped),
        ("AgentReady", wrapped + timedelta(minutes=15)),
    ]


def test_breaks_spread_over_their_window() -> None:
    coffee = Break(at=HOUR, length=timedelta(minutes=10), spread=timedelta(minutes=30))
    floor = Floor(team(count=20, breaks=(coffee,)))
    floor.at(3 * HOUR)
    starts = {e.at for e in floor.events if isinstance(e, AgentPaused)}
    assert len(starts) == 20
    assert all(HOUR <= at - floor.start <= HOUR + timedelta(minutes=30) for at in starts)


def test_the_shift_end_waits_for_the_call_and_wrap_up() -> None:
    floor = Floor(team(count=2, shift_end=HOUR, wrap_up=Dist.fixed(30)))
    floor.at(HOUR - timedelta(seconds=1))
    floor.agents.call_started("agent-01")
    floor.at(HOUR + timedelta(minutes=5))
    assert floor.of("agent-02")[-1] == ("AgentLoggedOut", HOUR)
    assert floor.agents.state("agent-01") is AgentState.ON_CALL
    floor.agents.call_finished("agent-01")
    floor.world.run_all()
    assert floor.of("agent-01")[-1] == ("AgentLoggedOut", HOUR + timedelta(minutes=5, seconds=30))


def test_a_paused_agent_logs_out_at_shift_end_and_does_not_come_back() -> None:
    lunch = Break(at=HOUR, length=2 * HOUR, reason="lunch")
    floor = Floor(team(count=1, shift_end=2 * HOUR, breaks=(lunch,)))
    floor.world.run_all()
    assert [name for name, _ in floor.of("agent-01")] == [
        "AgentLoggedIn",
        "AgentReady",
        "AgentPaused",
        "AgentLoggedOut",
    ]


def test_misuse_is_refused() -> None:
    floor = Floor(team(count=1))
    with pytest.raises(ValueError, match="not ready"):
        floor.agents.call_started("agent-01")  # not logged in yet
    floor.at(timedelta(0))
    floor.agents.call_started("agent-01")
    with pytest.raises(ValueError, match="not ready"):
        floor.agents.call_started("agent-01")
    floor.agents.call_finished("agent-01")
    with pytest.raises(ValueError, match="not on a call"):
        floor.agents.call_finished("agent-01")
    with pytest.raises(KeyError):
        floor.agents.state("agent-99")


def test_same_seed_same_floor() -> None:
    scenario = team(
        count=5,
        wrap_up=Dist.uniform(5, 20),
        breaks=(Break(at=HOUR, length=timedelta(minutes=15), spread=timedelta(minutes=20)),),
    )

    def run(seed: int) -> list[AgentEvent]:
        floor = Floor(scenario, seed=seed)
        for minute in range(0, 120, 3):
            floor.at(timedelta(minutes=minute))
            for agent_id in floor.agents.agent_ids:
                if floor.agents.state(agent_id) is AgentState.READY:
                    floor.agents.call_started(agent_id)
                    floor.agents.call_finished(agent_id)
        floor.world.run_all()
        return floor.events

    assert run(4) == run(4)
    assert run(4) != run(5)
    assert AgentLoggedOut in {type(e) for e in run(4)}


def test_agent_team_validation() -> None:
    with pytest.raises(ValueError, match="after shift_start"):
        AgentTeam(shift_start=HOUR, shift_end=HOUR)


# --- preview mode ---------------------------------------------------------------------


def a_lead(lead_id: int) -> ClaimedLead:
    return ClaimedLead(id=lead_id, e164="+8613500000001", attempts_made=0, timezones=(),
                       attributes={})


def test_a_preview_agent_asks_for_a_lead_reads_it_and_dials_it() -> None:
    floor = Floor(team(count=1, preview_time=Dist.fixed(7), wrap_up=Dist.fixed(10)),
                  preview=True)
    floor.at(timedelta(0))
    assert [name for name, _ in floor.of("agent-01")] == [
        "AgentLoggedIn", "AgentReady", "AgentRequestedLead"]
    assert floor.agents.state("agent-01") is AgentState.PREVIEWING
    floor.agents.desk(PreviewLead(agent_id="agent-01", lead=a_lead(42)))
    floor.at(timedelta(seconds=10))
    dialed = floor.events[-1]
    assert dialed == AgentDialedLead(agent_id="agent-01", lead_id=42,
                                     at=floor.start + timedelta(seconds=7))
    floor.agents.call_started("agent-01")  # the call the agent dialed
    floor.at(timedelta(seconds=60))
    floor.agents.call_finished("agent-01")
    floor.at(timedelta(seconds=70))
    assert floor.of("agent-01")[-2:] == [("AgentReady", timedelta(seconds=70)),
                                         ("AgentRequestedLead", timedelta(seconds=70))]


def test_no_lead_the_agent_asks_again_later_and_a_released_agent_at_once() -> None:
    floor = Floor(team(count=1), preview=True)
    floor.at(timedelta(0))
    floor.agents.desk(NoLeadForAgent(agent_id="agent-01"))
    assert floor.agents.state("agent-01") is AgentState.READY
    floor.at(timedelta(seconds=29))
    assert len(floor.events) == 3
    floor.at(timedelta(seconds=30))
    assert floor.of("agent-01")[-1] == ("AgentRequestedLead", timedelta(seconds=30))
    floor.agents.desk(AgentReleased(agent_id="agent-01"))  # the call went unanswered
    assert floor.of("agent-01")[-1] == ("AgentRequestedLead", timedelta(seconds=30))
    assert len(floor.events) == 5


def test_a_break_waits_for_the_agent_s_lead() -> None:
    coffee = Break(at=HOUR, length=timedelta(minutes=15))
    floor = Floor(team(count=1, breaks=(coffee,)), preview=True)
    floor.at(HOUR - timedelta(minutes=1))
    floor.agents.desk(PreviewLead(agent_id="agent-01", lead=a_lead(1)))
    floor.at(HOUR + timedelta(minutes=1))  # dialed; the call rings on
    assert isinstance(floor.events[-1], AgentDialedLead)
    floor.agents.desk(AgentReleased(agent_id="agent-01"))
    floor.at(2 * HOUR)
    assert floor.of("agent-01")[-3:] == [
        ("AgentPaused", HOUR + timedelta(minutes=1)),
        ("AgentReady", HOUR + timedelta(minutes=16)),
        ("AgentRequestedLead", HOUR + timedelta(minutes=16)),
    ]


def test_a_break_cancels_the_wait_for_the_next_lead() -> None:
    coffee = Break(at=HOUR, length=timedelta(minutes=15))
    floor = Floor(team(count=1, breaks=(coffee,)), preview=True)
    floor.at(HOUR - timedelta(seconds=10))
    floor.agents.desk(NoLeadForAgent(agent_id="agent-01"))
    floor.at(2 * HOUR)
    assert floor.of("agent-01")[-3:] == [
        ("AgentPaused", HOUR),
        ("AgentReady", HOUR + timedelta(minutes=15)),
        ("AgentRequestedLead", HOUR + timedelta(minutes=15)),
    ]


def test_desk_news_for_an_agent_not_previewing_is_refused() -> None:
    floor = Floor(team(count=1))
    floor.at(timedelta(0))
    with pytest.raises(ValueError, match="not previewing"):
        floor.agents.desk(NoLeadForAgent(agent_id="agent-01"))
