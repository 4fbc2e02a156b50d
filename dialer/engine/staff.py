"""Agents as first-class state: logged out, ready, reserved, on a call, wrapping up, paused.

One Enum and one transition table; an illegal move raises. Time spent in each state is
accounted for occupancy: (talk + wrap-up) / logged-in time.

`reserved` is preview mode's hold: a ready agent looking at a lead, or waiting for the
call they dialed to be answered. Nobody else's call reaches a reserved agent, and a pause
or logout asked for while reserved waits, as during a call: it happens when the engine
releases the agent (no call came of the lead) or after the wrap-up of the call that did.
"""

from __future__ import annotations

import enum
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class AgentState(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RESERVED = "reserved"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class AgentMove(enum.StrEnum):
    LOG_IN = "log_in"
    READY = "ready"
    RESERVE = "reserve"
    RELEASE = "release"
    TAKE_CALL = "take_call"
    WRAP_UP = "wrap_up"
    PAUSE = "pause"
    LOG_OUT = "log_out"


logger = logging.getLogger(__name__)
_SECOND = timedelta(seconds=1)
#: States whose agent is held for a call: a pause or logout waits until they are let go.
_HELD = (AgentState.ON_CALL, AgentState.RESERVED)

A, M = AgentState, AgentMove
AGENT_TRANSITIONS: dict[tuple[AgentState, AgentMove], AgentState] = {
    (A.LOGGED_OUT, M.LOG_IN): A.PAUSED,
    (A.PAUSED, M.READY): A.READY,
    (A.WRAP_UP, M.READY): A.READY,
    (A.READY, M.READY): A.READY,
    (A.READY, M.TAKE_CALL): A.ON_CALL,
    (A.READY, M.RESERVE): A.RESERVED,
    (A.RESERVED, M.TAKE_CALL): A.ON_CALL,
    (A.RESERVED, M.RELEASE): A.READY,
    (A.ON_CALL, M.WRAP_UP): A.WRAP_UP,
    (A.READY, M.PAUSE): A.PAUSED,
    (A.WRAP_UP, M.PAUSE): A.PAUSED,
    (A.PAUSED, M.PAUSE): A.PAUSED,
    (A.READY, M.LOG_OUT): A.LOGGED_OUT,
    (A.PAUSED, M.LOG_OUT): A.LOGGED_OUT,
    (A.WRAP_UP, M.LOG_OUT): A.LOGGED_OUT,
}


class IllegalAgentMove(ValueError):
    def __init__(self, state: AgentState, move: AgentMove) -> None:
        super().__init__(f"no agent transition from {state.value} on {move.value}")


def occupancy(time_in: Mapping[AgentState, float]) -> float:
    """(talk + wrap-up) / logged-in time."""
    working = time_in.get(AgentState.ON_CALL, 0.0) + time_in.get(AgentState.WRAP_UP, 0.0)
    logged_in = sum(v for k, v in time_in.items() if k is not AgentState.LOGGED_OUT)
    return working / logged_in if logged_in else 0.0


@dataclass(slots=True)
class _Agent:
    state: AgentState
    since: datetime


@dataclass(slots=True)
class Staff:
    """The campaign's agents and the time each spent in each state."""

    agents: dict[str, _Agent] = field(default_factory=dict)
    time_in: defaultdict[AgentState, float] = field(
        default_factory=lambda: defaultdict(float)
    )  # seconds
    window_time_in: dict[AgentState, float] | None = None  # see `close_window`
    pending_logout: set[str] = field(default_factory=set)
    pending_pause: set[str] = field(default_factory=set)
    counts: dict[AgentState, int] = field(init=False)
    #: Ready agents, longest waiting first (insertion order: agents become ready in time).
    _ready: dict[str, None] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = dict.fromkeys(AgentState, 0)
        for agent in self.agents.values():
            self.counts[agent.state] += 1
        ready = sorted((a.since, agent_id) for agent_id, a in self.agents.items()
                       if a.state is AgentState.READY)
        self._ready = dict.fromkeys(agent_id for _, agent_id in ready)

    def _move(self, agent_id: str, move: AgentMove, at: datetime) -> float:
        """Move the agent; returns the seconds it spent in the state it left."""
        agent = self.agents.get(agent_id)
        if agent is None:
            agent = _Agent(AgentState.LOGGED_OUT, at)
            self.counts[AgentState.LOGGED_OUT] += 1
        new = AGENT_TRANSITIONS.get((agent.state, move))
        if new is None:
            raise IllegalAgentMove(agent.state, move)
        spent = (at - agent.since) / _SECOND
        self.time_in[agent.state] += spent
        self.counts[agent.state] -= 1
        self.counts[new] += 1
        if agent.state is AgentState.READY:
            del self._ready[agent_id]
        if new is AgentState.READY:
            self._ready[agent_id] = None
        self.agents[agent_id] = _Agent(new, at)
        return spent

    # Agent events come from softphones and CRMs: repeated, late or out-of-order ones are
    # absorbed here (and logged), never allowed to stop a campaign.

    def log_in(self, agent_id: str, at: datetime) -> None:
        if self._state(agent_id) is not AgentState.LOGGED_OUT:
            logger.info("agent %s logged in again; ignored", agent_id)
            return
        self._move(agent_id, AgentMove.LOG_IN, at)

    def ready_up(self, agent_id: str, at: datetime) -> float | None:
        """The agent is ready; returns the seconds of wrap-up it ended, if it was wrapping."""
        state = self._state(agent_id)
        if state in (AgentState.ON_CALL, AgentState.RESERVED, AgentState.LOGGED_OUT):
            logger.info("agent %s ready while %s; ignored", agent_id, state.value)
            return None
        self.pending_pause.discard(agent_id)
        if agent_id in self.pending_logout:
            self.pending_logout.discard(agent_id)
            spent = self._move(agent_id, AgentMove.LOG_OUT, at)
        else:
            spent = self._move(agent_id, AgentMove.READY, at)
        return spent if state is AgentState.WRAP_UP else None

    def pause(self, agent_id: str, at: datetime) -> None:
        state = self._state(agent_id)
        if state in _HELD:
            self.pending_pause.add(agent_id)  # pauses when the call ends or on release
        elif state is not AgentState.LOGGED_OUT:
            self._move(agent_id, AgentMove.PAUSE, at)

    def log_out(self, agent_id: str, at: datetime) -> None:
        state = self._state(agent_id)
        if state in _HELD:
            self.pending_logout.add(agent_id)  # logs out when the call ends or on release
            return
        self.pending_logout.discard(agent_id)
        self.pending_pause.discard(agent_id)
        if state is not AgentState.LOGGED_OUT:
            self._move(agent_id, AgentMove.LOG_OUT, at)

    def take(self, at: datetime, call_id: str) -> str | None:
        """The ready agent who has waited longest, now on the call; None if nobody is ready."""
        if not self._ready:
            return None
        agent_id = next(iter(self._ready))
        self._move(agent_id, AgentMove.TAKE_CALL, at)
        return agent_id

    def reserve(self, agent_id: str, at: datetime) -> bool:
        """Hold a ready agent for a lead of their own; False (logged) if not ready."""
        state = self._state(agent_id)
        if state is not AgentState.READY:
            logger.info("agent %s asked for a lead while %s; ignored", agent_id, state.value)
            return False
        self._move(agent_id, AgentMove.RESERVE, at)
        return True

    def take_reserved(self, agent_id: str, at: datetime) -> None:
        """The call a reserved agent dialed was answered: the agent is on it."""
        self._move(agent_id, AgentMove.TAKE_CALL, at)

    def release(self, agent_id: str, at: datetime) -> None:
        """A reserved agent's lead came to no call: ready again, or the pause or logout
        asked for meanwhile."""
        self._move(agent_id, AgentMove.RELEASE, at)
        if agent_id in self.pending_logout:
            self.log_out(agent_id, at)
        elif agent_id in self.pending_pause:
            self.pending_pause.discard(agent_id)
            self._move(agent_id, AgentMove.PAUSE, at)

    def wrap_up(self, agent_id: str, at: datetime) -> float:
        """The agent's call ended: wrap-up, or the logout or pause asked for during it.
        Returns the seconds the agent talked."""
        talked = self._move(agent_id, AgentMove.WRAP_UP, at)
        if agent_id in self.pending_logout:
            self.pending_logout.discard(agent_id)
            self._move(agent_id, AgentMove.LOG_OUT, at)
        elif agent_id in self.pending_pause:
            self.pending_pause.discard(agent_id)
            self._move(agent_id, AgentMove.PAUSE, at)
        return talked

    def state_of(self, agent_id: str) -> AgentState:
        """The agent's state (logged out for an agent never seen)."""
        return self._state(agent_id)

    def _state(self, agent_id: str) -> AgentState:
        agent = self.agents.get(agent_id)
        return AgentState.LOGGED_OUT if agent is None else agent.state

    def close_books(self, at: datetime) -> None:
        """Account the time up to `at` (end of run)."""
        for agent in self.agents.values():
            self.time_in[agent.state] += (at - agent.since) / _SECOND
            agent.since = at

    def close_window(self, at: datetime) -> None:
        """The dialing window closed at `at`: keep the time spent so far per state
        (`window_time_in`), for figures over the shift rather than its wind-down."""
        self.close_books(at)
        self.window_time_in = dict(self.time_in)

    @property
    def occupancy(self) -> float:
        return occupancy(self.time_in)

    def count(self, state: AgentState) -> int:
        return self.counts[state]

    @property
    def ready(self) -> int:
        return self.counts[AgentState.READY]

    @property
    def busy(self) -> int:
        return self.counts[AgentState.ON_CALL] + self.counts[AgentState.WRAP_UP]

    @property
    def logged_in(self) -> int:
        return len(self.agents) - self.counts[AgentState.LOGGED_OUT]

    def ages(self, state: AgentState, at: datetime) -> list[float]:
        """Seconds each agent in `state` has been in it (not counting agents who leave
        when their call ends: no call will be theirs after this one)."""
        leaving = self.pending_logout or self.pending_pause
        return [(at - a.since) / _SECOND for agent_id, a in self.agents.items()
                if a.state is state
                and not (leaving and (agent_id in self.pending_logout
                                      or agent_id in self.pending_pause))]

    @property
    def leaving(self) -> int:
        """Agents on a call who log out or pause when it ends."""
        if not (self.pending_logout or self.pending_pause):
            return 0
        return sum(1 for agent_id in self.pending_logout | self.pending_pause
                   if self._state(agent_id) is AgentState.ON_CALL)
