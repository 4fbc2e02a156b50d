"""Running a campaign on the simulated telephone network, in simulated time.

The owner loop steps the simulated world one event time at a time, so every event reaches
the engine at the instant it happened, and ticks the engine every simulated second. A
working day runs in seconds. The store is the real one: attempts, outcomes, number
statuses and opt-outs are written exactly as in the real world.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dialer.config.campaign import Campaign, DialMode
from dialer.engine.agents import AgentEvent
from dialer.engine.commands import Tick
from dialer.engine.core import Engine
from dialer.engine.executor import Executor
from dialer.engine.ledger import Ledger
from dialer.engine.report import RunReport, build_report
from dialer.engine.runs import start_run
from dialer.errors import DialerError, UsageError
from dialer.sim.agents import SimulatedAgents
from dialer.sim.network import SimulatedNetwork
from dialer.sim.scenario import Scenario
from dialer.sim.world import SimWorld
from dialer.store import Store
from lines.telephony import CallEvent

TICK = timedelta(seconds=1)
#: Calls still up this long after the dialing window mean the world lost a call: stop.
SETTLE_LIMIT = timedelta(hours=2)


class SimulationError(DialerError):
    """The simulated world broke its own contract (a bug, not bad input)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    start: datetime  # simulated start (aware)
    duration: timedelta  # how long the campaign dials; calls in flight then finish
    seed: int = 1


Progress = Callable[[Engine, datetime], None]


def run_simulated(
    store: Store,
    campaign: Campaign,
    scenario: Scenario,
    options: SimOptions,
    *,
    on_progress: Progress | None = None,
) -> RunReport:
    """Run `campaign` from `options.start` for `options.duration` of simulated time."""
    run = start_run(store, campaign, options.start)
    ended = run_engine(run.engine, run.ledger, campaign, scenario, options,
                       on_progress=on_progress)
    return build_report(store, campaign, run.engine, recovery=run.recovery,
                        started=options.start, ended=ended, seed=options.seed,
                        window=options.duration, skipped=run.ledger.deferred)


def run_engine(
    engine: Engine,
    ledger: Ledger,
    campaign: Campaign,
    scenario: Scenario,
    options: SimOptions,
    *,
    on_progress: Progress | None = None,
) -> datetime:
    """Run `engine` on the simulated network until its window closes and its calls end;
    returns when the last call ended (in the start's time zone)."""
    world = SimWorld(options.start)
    inbox: deque[CallEvent | AgentEvent] = deque()
    network = SimulatedNetwork(world, scenario, inbox.append, options.seed)
    agents = None
    if campaign.dial.mode is not DialMode.ROBOCALL or campaign.agents.team_size:
        team = scenario.agents
        if campaign.agents.team_size:
            team = replace(team, count=campaign.agents.team_size)
        if team.count == 0:
            raise UsageError(f"campaign {campaign.name!r} dials in {campaign.dial.mode.value} "
                             "mode but has no agents: set agents.count in the campaign or "
                             "agents.count in the scenario")
        agents = SimulatedAgents(world, replace(scenario, agents=team), inbox.append,
                                 options.seed, preview=campaign.dial.mode is DialMode.PREVIEW)
    executor = Executor(ledger, network, engine, clock=lambda: world.now,
                        on_wrap_up=agents.call_finished if agents else None,
                        on_connect=agents.call_started if agents else None,
                        on_desk=agents.desk if agents else None)
    def report_marks(at: datetime) -> None:  # the marking service's daily report
        if scenario.caller_ids.reported and network.marks:
            engine.lines.record_marks(network.marks, at)

    _loop(world, inbox, engine, executor, options, on_progress, report_marks)
    engine.staff.close_books(world.now)
    return world.now.astimezone(options.start.tzinfo)


def _loop(
    world: SimWorld,
    inbox: deque[CallEvent | AgentEvent],
    engine: Engine,
    executor: Executor,
    options: SimOptions,
    on_progress: Progress | None,
    on_new_day: Callable[[datetime], None],
) -> None:
    end = options.start + options.duration
    now = options.start
    next_report = now
    day = now.date()
    while now < end or engine.busy:
        if now > end + SETTLE_LIMIT:
            raise SimulationError(
                f"{len(engine.calls)} call(s) still up {SETTLE_LIMIT} after the window closed; "
                "the simulated network never ended them"
            )
        now = _next_instant(world, engine, now, end)
        if now >= end and not engine.closing:
            engine.staff.close_window(end)
        engine.closing = now >= end
        _advance(world, inbox, engine, executor, now)
        if now.date() != day:
            day = now.date()
            on_new_day(now)
        executor.execute(engine.handle(Tick(at=now)))
        if on_progress is not None and now >= next_report:
            on_progress(engine, now)
            next_report = now + timedelta(minutes=1)
    executor.flush()


def _next_instant(world: SimWorld, engine: Engine, now: datetime, end: datetime) -> datetime:
    """The next tick; skips quiet stretches (no call up, nothing due) in one step."""
    step = now + TICK
    deadline = engine.next_deadline()
    if deadline is not None and now < deadline < step:
        step = deadline  # abandon exactly `abandon_after` after the answer
    if engine.calls or engine.queue.empty_until is None:
        return step
    wake = [engine.queue.empty_until]
    if (pending := world.next_time()) is not None:
        wake.append(pending)
    if now < end:
        wake.append(end)
    return max(step, min(wake))


def _advance(
    world: SimWorld,
    inbox: deque[CallEvent | AgentEvent],
    engine: Engine,
    executor: Executor,
    until: datetime,
) -> None:
    """Run the world up to `until`, handing each event to the engine at its own time."""
    while (when := world.next_time()) is not None and when <= until:
        world.run_until(when)
        while inbox:
            executor.execute(engine.handle(inbox.popleft()))
    world.run_until(until)
    while inbox:
        executor.execute(engine.handle(inbox.popleft()))
