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
from dialer.engine.build import build_engine, contact_policy
from dialer.engine.commands import Tick
from dialer.engine.core import Engine
from dialer.engine.executor import Executor
from dialer.engine.ledger import Ledger, StoreLedger
from dialer.engine.lines import LinePlan
from dialer.engine.report import RunReport, build_report
from dialer.errors import DialerError, UsageError
from dialer.sim.agents import SimulatedAgents
from dialer.sim.network import SimulatedNetwork
from dialer.sim.scenario import Scenario
from dialer.sim.world import SimWorld
from dialer.store import Store, SuppressionScope
from lines.telephony import CallEvent
from rules.abandonment import AbandonWindow
from rules.dispositions import PERSON_ANSWERED, Disposition

TICK = timedelta(seconds=1)
#: Calls still up this long after the dialing window mean the world lost a call: stop.
SETTLE_LIMIT = timedelta(hours=2)
#: After a crash, interrupted leads are retried this much later.
RETRY_AFTER_CRASH = timedelta(minutes=5)


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
    with store.write() as uow:
        campaign_id = uow.ensure_campaign(campaign.name, default_region=campaign.region,
                                          now=options.start)
        recovery = uow.recover(campaign_id=campaign_id, now=options.start,
                               retry_at=options.start + RETRY_AFTER_CRASH,
                               max_attempts=campaign.dial.max_attempts)
    engine = build_engine(campaign, campaign_id)  # call ids: UUIDs, unique in every store
    load_abandon_history(store, campaign.name, engine.abandonment, options.start)
    load_caller_id_history(store, engine.lines, options.start)
    ledger = StoreLedger(store, campaign=campaign.name, policy=contact_policy(campaign),
                         opt_out_scope=SuppressionScope(campaign.compliance.opt_out_scope.value),
                         stopped_sources=campaign.stopped_sources)
    ended = run_engine(engine, ledger, campaign, scenario, options, on_progress=on_progress)
    return build_report(store, campaign, engine, recovery=recovery, started=options.start,
                        ended=ended, seed=options.seed, window=options.duration,
                        skipped=ledger.deferred)


#: How far back the caller-ID pool's history is replayed (a number's life and more).
CALLER_ID_HISTORY = timedelta(days=120)


def load_caller_id_history(store: Store, lines: LinePlan, now: datetime) -> None:
    """Rebuild the campaign's caller-ID pool from the calls that showed its numbers (in
    any campaign) and the marks reported for them up to `now` (days in `now`'s zone), so
    each number's caps, health and lifecycle carry over between runs."""
    numbers = [spec.number for spec in lines.numbers]
    if not numbers:
        return
    with store.read() as uow:
        rows = uow.caller_id_history(numbers, since=now - CALLER_ID_HISTORY)
        marks = uow.caller_id_marks(numbers)
    zone = now.tzinfo
    lines.replay(((number, at.astimezone(zone), disposition in PERSON_ANSWERED)
                  for number, at, disposition in rows if at <= now), now.date(),
                 [(number, count, at.astimezone(zone)) for number, count, at in marks
                  if at <= now])


def load_abandon_history(store: Store, campaign: str, window: AbandonWindow,
                         now: datetime) -> None:
    """Count the campaign's earlier answered calls that fall in the regulator's window
    ending `now` (a rerun the same day goes on from the rate it left)."""
    since = now - window.window
    with store.read() as uow:
        for row in uow.attempt_rows(campaign):
            if row.answered_at is None:
                continue
            # as the engine counted it live: served at the connect, abandoned at the end
            if row.agent_id is not None and row.disposition != Disposition.TRANSFERRED.value:
                at, kind = row.answered_at, "served"
            elif row.abandoned:
                at, kind = row.ended_at or row.answered_at, "abandoned"
            elif row.disposition == Disposition.ANSWERED_MACHINE.value:
                at, kind = row.answered_at, "machine"
            else:
                continue  # a script took it: no agent was due
            if not since < at <= now:
                continue
            if kind == "machine":
                window.machine_answer(at)
            else:
                window.live_answer(at, abandoned=kind == "abandoned")


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
    if campaign.dial.mode is not DialMode.ROBOCALL or campaign.agents.count:
        team = scenario.agents
        if campaign.agents.count:
            team = replace(team, count=campaign.agents.count)
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
