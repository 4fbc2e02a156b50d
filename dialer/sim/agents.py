"""Simulated agents: they log in, take calls, wrap up, take breaks and go home.

The engine tells the agents when one takes a call (`call_started`, optional) and when
that call ended (`call_finished`); after a wrap-up time drawn from the scenario the agent
is ready again. A break or the end of the shift that falls while an agent is busy waits
until the agent's wrap-up is over, as it does on a real floor.

In preview mode a ready agent asks for a lead (`AgentRequestedLead`); the engine's answer
comes through `desk`: a lead, which the agent reads for a drawn `preview_time` and then
dials (`AgentDialedLead`); no lead, and the agent asks again `NO_LEAD_RETRY` later; or the
call they dialed came to nothing (`AgentReleased`), and they ask for the next lead.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from dialer.engine.agents import (
    AgentDialedLead,
    AgentEvent,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentReady,
    AgentRecordedOptOut,
    AgentRequestedLead,
)
from dialer.engine.commands import DeskCommand, NoLeadForAgent, PreviewLead
from dialer.sim.population import stable_seed
from dialer.sim.scenario import Break, Scenario
from dialer.sim.world import SimWorld, Timer

AgentSink = Callable[[AgentEvent], None]
#: Preview mode: an agent told there is no lead asks again this much later.
NO_LEAD_RETRY = timedelta(seconds=30)


class AgentState(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    PREVIEWING = "previewing"  # asked for a lead: waits for it, reads it, or its call rings
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


_BUSY = (AgentState.PREVIEWING, AgentState.ON_CALL, AgentState.WRAP_UP)


@dataclass(slots=True, eq=False)
class _Agent:
    agent_id: str
    state: AgentState = AgentState.LOGGED_OUT
    break_due: Break | None = None  # a break that fell while the agent was busy
    logout_due: bool = False
    timer: Timer | None = None  # the end of the current wrap-up, pause, preview or wait


class SimulatedAgents:
    """The scenario's agents, driven by simulated time.

    - Each agent logs in at the shift start (`AgentLoggedIn` then `AgentReady`) and logs
      out at the shift end, or after the call and wrap-up it is busy with then.
    - `call_started` is only for a READY agent (PREVIEWING in preview mode: the call they
      dialed), `call_finished` for one on a call (or READY, when the engine does not report
      starts); `desk` only for a PREVIEWING agent; anything else raises `ValueError`.
    - After `call_finished` comes `AgentReady` a drawn wrap-up time later, or a pause or
      the logout that was due meanwhile.
    - With `preview`, every `AgentReady` is followed by `AgentRequestedLead`.
    """

    def __init__(self, world: SimWorld, scenario: Scenario, sink: AgentSink, seed: int = 0,
                 *, preview: bool = False) -> None:
        self._world = world
        self._team = team = scenario.agents
        self._sink = sink
        self._preview = preview
        self._rng = random.Random(stable_seed(seed, "agents"))
        self._shift_ended = False
        width = max(2, len(str(team.count)))
        self._agents = {
            agent_id: _Agent(agent_id)
            for agent_id in (f"{team.id_prefix}{n:0{width}d}" for n in range(1, team.count + 1))
        }
        self._plan_shift()

    @property
    def agent_ids(self) -> tuple[str, ...]:
        return tuple(self._agents)

    def state(self, agent_id: str) -> AgentState:
        return self._agent(agent_id).state

    def call_started(self, agent_id: str) -> None:
        agent = self._agent(agent_id)
        if agent.state not in (AgentState.READY, AgentState.PREVIEWING):
            raise ValueError(f"agent {agent_id} is {agent.state}, not ready for a call")
        agent.state = AgentState.ON_CALL

    def call_finished(self, agent_id: str) -> None:
        agent = self._agent(agent_id)
        if agent.state not in (AgentState.ON_CALL, AgentState.READY):
            raise ValueError(f"agent {agent_id} is {agent.state}, not on a call")
        agent.state = AgentState.WRAP_UP
        if self._team.opt_out_share and self._rng.random() < self._team.opt_out_share:
            self._sink(AgentRecordedOptOut(agent_id=agent_id, at=self._world.now))
        wrap_up = self._team.wrap_up.draw(self._rng)
        agent.timer = self._world.schedule_in(wrap_up, partial(self._wrapped_up, agent))

    def desk(self, command: DeskCommand) -> None:
        """Preview mode: the engine's answer to an agent who asked for a lead."""
        agent = self._agent(command.agent_id)
        if agent.state is not AgentState.PREVIEWING:
            raise ValueError(f"agent {agent.agent_id} is {agent.state}, not previewing")
        if isinstance(command, PreviewLead):
            read = self._team.preview_time.draw(self._rng)
            agent.timer = self._world.schedule_in(
                read, partial(self._dial, agent, command.lead.id))
        elif isinstance(command, NoLeadForAgent):
            self._free(agent, retry=NO_LEAD_RETRY)
        else:  # AgentReleased
            self._free(agent, retry=None)

    # --- the shift --------------------------------------------------------------------

    def _plan_shift(self) -> None:
        team, start = self._team, self._world.start
        self._schedule(start + team.shift_start, self._log_in_all)
        for brk in team.breaks:
            agents = list(self._agents.values())
            for agent in agents[: math.ceil(brk.share * len(agents) - 1e-9)]:
                offset = timedelta(seconds=self._rng.uniform(0, brk.spread.total_seconds()))
                self._schedule(start + brk.at + offset, partial(self._break_time, agent, brk))
        if team.shift_end is not None:
            self._schedule(start + team.shift_end, self._shift_over)

    def _schedule(self, at: datetime, fn: Callable[[], None]) -> None:
        self._world.schedule(max(at, self._world.now), fn)

    def _log_in_all(self) -> None:
        for agent in self._agents.values():
            now = self._world.now
            self._sink(AgentLoggedIn(agent_id=agent.agent_id, at=now))
            self._ready(agent)

    def _shift_over(self) -> None:
        self._shift_ended = True
        for agent in self._agents.values():
            if agent.state in _BUSY:
                agent.logout_due = True
                if agent.state is AgentState.ON_CALL:  # "log me out after this call"
                    self._sink(AgentLoggedOut(agent_id=agent.agent_id, at=self._world.now))
            elif agent.state is not AgentState.LOGGED_OUT:
                self._log_out(agent)

    def _break_time(self, agent: _Agent, brk: Break) -> None:
        if agent.state is AgentState.READY:
            self._pause(agent, brk)
        elif agent.state in _BUSY:
            agent.break_due = brk
            if agent.state is AgentState.ON_CALL:  # asks now for a break after this call
                now, agent_id = self._world.now, agent.agent_id
                self._sink(AgentLoggedOut(agent_id=agent_id, at=now) if brk.log_out
                           else AgentPaused(agent_id=agent_id, at=now, reason=brk.reason))

    # --- one agent --------------------------------------------------------------------

    def _wrapped_up(self, agent: _Agent) -> None:
        agent.timer = None
        if agent.logout_due:
            self._log_out(agent)
        elif agent.break_due is not None:
            self._pause(agent, agent.break_due)
        else:
            self._ready(agent)

    def _pause(self, agent: _Agent, brk: Break) -> None:
        if agent.timer is not None:  # preview mode: the wait for the next lead
            agent.timer.cancel()
            agent.timer = None
        if brk.log_out:
            self._log_out(agent)
            agent.timer = self._world.schedule_in(brk.length, partial(self._back, agent))
            return
        agent.state, agent.break_due = AgentState.PAUSED, None
        agent.timer = self._world.schedule_in(brk.length, partial(self._resume, agent))
        self._sink(AgentPaused(agent_id=agent.agent_id, at=self._world.now, reason=brk.reason))

    def _resume(self, agent: _Agent) -> None:
        agent.timer = None
        if agent.state is AgentState.PAUSED:
            self._ready(agent)

    def _back(self, agent: _Agent) -> None:
        """Back from a break taken logged out (unless the shift ended meanwhile)."""
        agent.timer = None
        if agent.state is AgentState.LOGGED_OUT and not self._shift_ended:
            self._sink(AgentLoggedIn(agent_id=agent.agent_id, at=self._world.now))
            self._ready(agent)

    def _ready(self, agent: _Agent) -> None:
        agent.state = AgentState.READY
        self._sink(AgentReady(agent_id=agent.agent_id, at=self._world.now))
        if self._preview:
            self._ask(agent)

    # --- preview mode -----------------------------------------------------------------

    def _ask(self, agent: _Agent) -> None:
        agent.timer = None
        agent.state = AgentState.PREVIEWING
        self._sink(AgentRequestedLead(agent_id=agent.agent_id, at=self._world.now))

    def _dial(self, agent: _Agent, lead_id: int) -> None:
        agent.timer = None
        self._sink(AgentDialedLead(agent_id=agent.agent_id, lead_id=lead_id,
                                   at=self._world.now))

    def _free(self, agent: _Agent, retry: timedelta | None) -> None:
        """No call came of the agent's lead: the engine holds them ready; a break or the
        logout due meanwhile happens now, else they ask again (after `retry`)."""
        agent.timer = None
        if agent.logout_due:
            self._log_out(agent)
        elif agent.break_due is not None:
            self._pause(agent, agent.break_due)
        elif retry is None:
            self._ask(agent)
        else:
            agent.state = AgentState.READY
            agent.timer = self._world.schedule_in(retry, partial(self._ask, agent))

    def _log_out(self, agent: _Agent) -> None:
        if agent.timer is not None:
            agent.timer.cancel()
            agent.timer = None
        agent.state, agent.logout_due, agent.break_due = AgentState.LOGGED_OUT, False, None
        self._sink(AgentLoggedOut(agent_id=agent.agent_id, at=self._world.now))

    def _agent(self, agent_id: str) -> _Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise KeyError(f"no simulated agent {agent_id!r}")
        return agent
