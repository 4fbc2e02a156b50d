"""One campaign running inside the service: a thread that owns its engine.

The runner is the engine's owner, as `dialer run` is: it feeds the engine events in
order and carries out its commands against the store and a telephony backend. The world
is the simulated network here, run in real time on the service's clock (which may be
accelerated: `ScaledClock`): the simulated world steps from one instant to the next and
the runner waits until the service clock reaches each instant before stepping to it.

Control from other threads (the API, the scheduler) goes through `pause`, `resume`,
`stop` and `agent_event`: each only sets a flag or enqueues; the runner thread acts on
it at its next step. What the outside may see is the published `CampaignStatus`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from dialer.clock import Clock
from dialer.config.campaign import Campaign, DialMode
from dialer.engine.agents import AgentEvent
from dialer.engine.build import abandon_cap
from dialer.engine.commands import Tick
from dialer.engine.core import Engine
from dialer.engine.executor import Executor
from dialer.engine.ledger import OutboxWriter
from dialer.engine.runs import start_run
from dialer.engine.simulate import TICK
from dialer.serve.status import CampaignStatus, RunState, Timeline, snapshot
from dialer.sim.agents import SimulatedAgents
from dialer.sim.network import SimulatedNetwork
from dialer.sim.scenario import Scenario
from dialer.sim.world import SimWorld
from dialer.store import Store
from lines.telephony import CallEvent

logger = logging.getLogger(__name__)

#: How often (wall seconds) the runner publishes its status.
PUBLISH_EVERY = 0.25
#: The longest the runner sleeps at once (wall seconds): control stays responsive.
NAP = 0.1

Finished = Callable[["CampaignRunner", CampaignStatus], None]


class CampaignRunner(threading.Thread):
    """Runs `campaign` on the simulated network until stopped or out of leads."""

    def __init__(self, store: Store, campaign: Campaign, *, clock: Clock, speed: float,
                 scenario: Scenario, seed: int = 1, outbox: OutboxWriter | None = None,
                 on_finished: Finished | None = None) -> None:
        super().__init__(name=f"campaign-{campaign.name}", daemon=True)
        self.store, self.campaign, self.clock, self.speed = store, campaign, clock, speed
        self.scenario, self.seed, self.outbox = scenario, seed, outbox
        self.on_finished = on_finished
        self._lock = threading.Lock()
        self._paused_for = ""  # why, while paused
        self._stop_asked = False
        self._api_events: queue.SimpleQueue[AgentEvent] = queue.SimpleQueue()
        self._status = CampaignStatus(campaign=campaign.name, state=RunState.STARTING,
                                      mode=campaign.dial.mode.value)
        self._wake = threading.Event()

    # --- control (any thread) -----------------------------------------------------------

    def pause(self, reason: str) -> None:
        with self._lock:
            self._paused_for = reason or "paused"
        self._wake.set()

    def resume(self) -> None:
        with self._lock:
            self._paused_for = ""
        self._wake.set()

    def stop(self) -> None:
        with self._lock:
            self._stop_asked = True
        self._wake.set()

    def agent_event(self, event: AgentEvent) -> None:
        """An agent's change of state from the API, handled at the runner's next step."""
        self._api_events.put(event)
        self._wake.set()

    def status(self) -> CampaignStatus:
        return self._status

    @property
    def paused(self) -> bool:
        with self._lock:
            return bool(self._paused_for)

    # --- the thread -----------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # the service stays up; the campaign shows why it failed
            logger.exception("campaign %s: the run failed", self.campaign.name)
            self._status = replace(self._status, state=RunState.FAILED,
                                   reason=f"{type(exc).__name__}: {exc}")
        finally:
            if self.on_finished is not None:
                self.on_finished(self, self._status)

    def _run(self) -> None:
        started = self.clock.now()
        run = start_run(self.store, self.campaign, started, outbox=self.outbox)
        world = SimWorld(started)
        inbox: queue.SimpleQueue[CallEvent | AgentEvent] = queue.SimpleQueue()
        network = SimulatedNetwork(world, self.scenario, inbox.put, self.seed)
        agents = self._agents(world, inbox.put)
        executor = Executor(run.ledger, network, run.engine, clock=lambda: world.now,
                            on_wrap_up=_only_simulated(agents, "call_finished"),
                            on_connect=_only_simulated(agents, "call_started"),
                            on_desk=agents.desk if agents else None)
        step = _Stepper(self, run.engine, executor, world, inbox, started)
        step.loop()

    def _agents(self, world: SimWorld, sink: Callable[[AgentEvent], None]
                ) -> SimulatedAgents | None:
        campaign = self.campaign
        if campaign.dial.mode is DialMode.ROBOCALL and not campaign.agents.team_size:
            return None
        team = self.scenario.agents
        if campaign.agents.team_size:
            team = replace(team, count=campaign.agents.team_size)
        if team.count == 0:
            return None  # agents come through the API
        return SimulatedAgents(world, replace(self.scenario, agents=team), sink, self.seed,
                               preview=campaign.dial.mode is DialMode.PREVIEW)

    # --- for the stepper (the runner's own thread) ----------------------------------------

    def control(self) -> tuple[str, bool]:
        """(why paused, or ""; whether a stop was asked)."""
        with self._lock:
            return self._paused_for, self._stop_asked

    def nap(self, seconds: float) -> None:
        """Sleep up to `seconds`, less if a control call or an agent event comes in."""
        self._wake.wait(seconds)
        self._wake.clear()

    def agent_events(self) -> list[AgentEvent]:
        """The agent events the API sent since the last call."""
        events = []
        while True:
            try:
                events.append(self._api_events.get_nowait())
            except queue.Empty:
                return events

    def publish(self, status: CampaignStatus) -> None:
        self._status = status


def _only_simulated(agents: SimulatedAgents | None, method: str
                    ) -> Callable[[str], None] | None:
    """The simulated agents' hook, passed only their own agents (agents logged in through
    the API take calls too, and tell the service themselves when they are ready)."""
    if agents is None:
        return None
    ours = frozenset(agents.agent_ids)
    hook: Callable[[str], None] = getattr(agents, method)

    def only_ours(agent_id: str) -> None:
        if agent_id in ours:
            hook(agent_id)
    return only_ours


class _Stepper:
    """The runner's loop: step the world instant by instant, in time with the clock."""

    def __init__(self, runner: CampaignRunner, engine: Engine, executor: Executor,
                 world: SimWorld, inbox: queue.SimpleQueue[CallEvent | AgentEvent],
                 started: datetime) -> None:
        self.runner, self.engine, self.executor, self.world = runner, engine, executor, world
        self.inbox, self.started = inbox, started
        self.timeline = Timeline()
        self.target = abandon_cap(runner.campaign)
        self.published = 0.0
        self.state = RunState.RUNNING
        self.reason = ""
        self.idle_checked: datetime | None = None  # the idle back-off last checked

    def loop(self) -> None:
        engine, now = self.engine, self.started
        while True:
            paused_for, stop = self.runner.control()
            engine.closing = bool(paused_for) or stop
            self.state, self.reason = self._state(paused_for, stop)
            if stop and not engine.busy:
                break
            if self._out_of_leads():
                self.reason = "every lead is done"
                break
            now = self._next_instant(now)
            self._wait_until(now)
            self._step(now)
            self._publish(now)
        self.executor.flush()
        engine.staff.close_books(self.world.now)
        self.state = RunState.FINISHED
        self._publish(self.world.now, force=True)

    def _state(self, paused_for: str, stop: bool) -> tuple[RunState, str]:
        if stop:
            return RunState.STOPPING, "stopped"
        if paused_for:
            return RunState.PAUSED, paused_for
        return RunState.RUNNING, ""

    def _next_instant(self, now: datetime) -> datetime:
        step = now + TICK
        deadline = self.engine.next_deadline()
        if deadline is not None and now < deadline < step:
            step = deadline  # abandon exactly `abandon_after` after the answer
        return step

    def _wait_until(self, instant: datetime) -> None:
        """Sleep until the service clock reaches `instant` (a little at a time, so that
        agent events from the API are taken as they come)."""
        runner = self.runner
        while True:
            ahead = (instant - runner.clock.now()).total_seconds() / runner.speed
            if ahead <= 0:
                return
            runner.nap(min(ahead, NAP))
            self._take_api_events()

    def _take_api_events(self) -> None:
        for event in self.runner.agent_events():  # at the world's time, not the API's
            self.executor.execute(self.engine.handle(replace(event, at=self.world.now)))

    def _step(self, until: datetime) -> None:
        world, engine, execute = self.world, self.engine, self.executor.execute
        while (when := world.next_time()) is not None and when <= until:
            world.run_until(when)
            self._drain()
        world.run_until(until)
        self._drain()
        self._take_api_events()
        execute(engine.handle(Tick(at=until)))

    def _drain(self) -> None:
        while True:
            try:
                event = self.inbox.get_nowait()
            except queue.Empty:
                return
            self.executor.execute(self.engine.handle(event))

    def _out_of_leads(self) -> bool:
        """No lead left to call and nothing up: the campaign is done (a campaign that
        takes triggered leads never is: more may come)."""
        engine, campaign = self.engine, self.runner.campaign
        idle = engine.queue.empty_until
        if campaign.triggers or engine.busy or idle is None or idle == self.idle_checked:
            return False
        self.idle_checked = idle  # the store is asked once per short claim
        with self.runner.store.read() as uow:
            campaign_id = uow.campaign_id(campaign.name)
            return campaign_id is None or uow.pending_leads(campaign_id) == 0

    def _publish(self, at: datetime, *, force: bool = False) -> None:
        wall = time.monotonic()
        if not force and wall - self.published < PUBLISH_EVERY:
            return
        self.published = wall
        runner = self.runner
        self.runner.publish(snapshot(
            self.engine, campaign=runner.campaign.name, state=self.state, reason=self.reason,
            mode=runner.campaign.dial.mode.value, at=at, started_at=self.started,
            target=self.target, timeline=self.timeline))
