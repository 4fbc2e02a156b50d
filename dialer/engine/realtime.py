"""Running a campaign in real time: real calls through a telephony backend, the system clock.

The same engine as in simulation. The backend calls the event sink from its own threads;
the sink only enqueues, and this loop (the engine's owner, one thread) takes events one by
one, ticks the engine every second and at each abandon deadline, and carries out the
commands. Agents over SIP are softphones (`SoftphoneDesk`): logged in and ready from the
start, offered the next call once the wrap-up time after their last one has passed.

The run dials until `RealtimeOptions.duration` has passed, the `stop` event is set (Ctrl-C)
or, without either, until no lead is due and nothing is in flight; then it lets the calls
up end by themselves for `settle`,
hangs up what is left, and closes as `failed` any call the backend never ended (it broke
its contract: every placed call gets exactly one `CallEnded`).
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from dialer.clock import Clock, SystemClock
from dialer.config.campaign import Campaign
from dialer.engine.agents import AgentEvent, AgentLoggedIn, AgentLoggedOut, AgentReady
from dialer.engine.commands import Tick
from dialer.engine.core import Engine
from dialer.engine.executor import Executor
from dialer.engine.ledger import Ledger
from dialer.engine.report import RunReport, build_report
from dialer.engine.runs import start_run
from dialer.store import Store
from lines.telephony import CallEnded, CallEvent, EventSink, Party, TelephonyBackend

logger = logging.getLogger(__name__)

TICK = timedelta(seconds=1)


class ClosableBackend(TelephonyBackend, Protocol):
    """A backend that holds resources (processes, sockets) until closed."""

    def close(self) -> None: ...


BackendFactory = Callable[[EventSink], ClosableBackend]
Progress = Callable[[Engine, datetime], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class RealtimeOptions:
    duration: timedelta | None = None  # dial this long at most; None: until no lead is due
    settle: timedelta = timedelta(minutes=2)  # then calls still up are hung up
    hang_up_grace: timedelta = timedelta(seconds=10)  # then calls not ended are failed


class SoftphoneDesk:
    """Agents on softphones: every agent logs in and is ready at the start; after a call,
    ready again `wrap_up` later (the after-call time a floor would give)."""

    def __init__(self, agents: Mapping[str, str], wrap_up: timedelta) -> None:
        self.agents = dict(agents)  # agent id: SIP URI
        self.wrap_up = wrap_up
        self._due: list[tuple[datetime, str]] = []  # (ready at, agent id), a heap

    def start(self, at: datetime) -> list[AgentEvent]:
        events: list[AgentEvent] = []
        for agent_id in self.agents:
            events += [AgentLoggedIn(agent_id=agent_id, at=at), AgentReady(agent_id=agent_id,
                                                                          at=at)]
        return events

    def wrapping(self, agent_id: str, at: datetime) -> None:
        """The agent's call ended at `at`: ready again after the wrap-up."""
        heapq.heappush(self._due, (at + self.wrap_up, agent_id))

    def next_due(self) -> datetime | None:
        return self._due[0][0] if self._due else None

    def due(self, now: datetime) -> list[AgentEvent]:
        events: list[AgentEvent] = []
        while self._due and self._due[0][0] <= now:
            at, agent_id = heapq.heappop(self._due)
            events.append(AgentReady(agent_id=agent_id, at=max(at, now)))
        return events

    def finish(self, at: datetime) -> list[AgentEvent]:
        self._due.clear()
        return [AgentLoggedOut(agent_id=agent_id, at=at) for agent_id in self.agents]


def run_realtime(
    store: Store,
    campaign: Campaign,
    backend_factory: BackendFactory,
    options: RealtimeOptions,
    *,
    clock: Clock | None = None,
    on_progress: Progress | None = None,
    stop: threading.Event | None = None,
    hurry: threading.Event | None = None,
) -> RunReport:
    """Run `campaign` now, on the backend `backend_factory` builds, until it is done (or
    `stop` is set: no new calls, the rest as at the end of the run; `hurry` set: hang up
    the calls still up without waiting for `settle`)."""
    clock = clock or SystemClock()
    started = clock.now()
    run = start_run(store, campaign, started)
    desk = None
    if campaign.agents.softphones:
        desk = SoftphoneDesk(campaign.agents.softphones,
                             campaign.agents.wrap_up or timedelta(0))
    loop = _Loop(run.engine, run.ledger, backend_factory, clock, desk, options, on_progress,
                 stop, hurry)
    ended = loop.run(started)
    return build_report(store, campaign, run.engine, recovery=run.recovery, started=started,
                        ended=ended, seed=0, window=ended - started,
                        skipped=run.ledger.deferred)


class _Loop:
    def __init__(self, engine: Engine, ledger: Ledger, backend_factory: BackendFactory,
                 clock: Clock, desk: SoftphoneDesk | None, options: RealtimeOptions,
                 on_progress: Progress | None, stop: threading.Event | None,
                 hurry: threading.Event | None) -> None:
        self.engine, self.clock, self.desk, self.options = engine, clock, desk, options
        self.on_progress, self.stop, self.hurry = on_progress, stop, hurry
        self.inbox: queue.SimpleQueue[CallEvent | AgentEvent] = queue.SimpleQueue()
        self.backend = backend_factory(self.inbox.put)
        on_wrap_up = None
        if desk is not None:
            def on_wrap_up(agent_id: str) -> None:
                desk.wrapping(agent_id, clock.now())
        self.executor = Executor(ledger, self.backend, engine, clock=clock.now,
                                 on_wrap_up=on_wrap_up)

    def run(self, started: datetime) -> datetime:
        try:
            return self._run(started)
        finally:
            self.backend.close()

    def _run(self, started: datetime) -> datetime:
        engine, options = self.engine, self.options
        end = started + options.duration if options.duration is not None else None
        if self.desk is not None:
            self._handle_all(self.desk.start(started))
        next_tick = started
        closed_at: datetime | None = None
        hung_up_at: datetime | None = None
        while True:
            now = self.clock.now()
            if closed_at is None and self._done_dialing(now, end):
                closed_at = now
                engine.staff.close_window(now)
                engine.closing = True
            if closed_at is not None and not engine.busy:
                break
            hurried = self.hurry is not None and self.hurry.is_set()
            if (closed_at is not None and hung_up_at is None
                    and (now - closed_at >= options.settle or hurried)):
                hung_up_at = now
                for call_id in list(engine.calls):
                    self.backend.hang_up(call_id)
            if hung_up_at is not None and now - hung_up_at >= options.hang_up_grace:
                self._close_lost_calls(now)
                break
            self._wait(min(self._wakes(next_tick)) - now)
            now = self.clock.now()
            if self.desk is not None:
                self._handle_all(self.desk.due(now))
            deadline = engine.next_deadline()
            if now >= next_tick or (deadline is not None and now >= deadline):
                self.executor.execute(engine.handle(Tick(at=now)))
                if now >= next_tick:
                    next_tick = max(next_tick + TICK, now)
                if self.on_progress is not None:
                    self.on_progress(engine, now)
        self.executor.flush()
        ended = self.clock.now()
        if self.desk is not None:
            self._handle_all(self.desk.finish(ended))
        engine.staff.close_books(ended)
        return ended

    def _done_dialing(self, now: datetime, end: datetime | None) -> bool:
        if self.stop is not None and self.stop.is_set():
            return True
        if end is not None:
            return now >= end
        queue_ = self.engine.queue  # ran out: the last claim came back short, nothing up
        return queue_.empty_until is not None and not self.engine.busy

    def _wakes(self, next_tick: datetime) -> list[datetime]:
        wakes = [next_tick]
        if (deadline := self.engine.next_deadline()) is not None:
            wakes.append(deadline)
        if self.desk is not None and (due := self.desk.next_due()) is not None:
            wakes.append(due)
        return wakes

    def _wait(self, timeout: timedelta) -> None:
        """Take events until `timeout` has passed (at least one look at the inbox)."""
        seconds = max(timeout.total_seconds(), 0.0)
        try:
            event = self.inbox.get(timeout=seconds) if seconds else self.inbox.get_nowait()
        except queue.Empty:
            return
        self.executor.execute(self.engine.handle(event))
        while True:  # whatever else has arrived, without waiting
            try:
                event = self.inbox.get_nowait()
            except queue.Empty:
                return
            self.executor.execute(self.engine.handle(event))

    def _handle_all(self, events: list[AgentEvent]) -> None:
        for event in events:
            self.executor.execute(self.engine.handle(event))

    def _close_lost_calls(self, now: datetime) -> None:
        """Calls the backend never ended, even when hung up: closed as failed."""
        self._wait(timedelta(0))
        for call_id in list(self.engine.calls):
            logger.error("call %s: the telephony backend never ended it; closed as failed",
                         call_id)
            self.executor.execute(self.engine.handle(CallEnded(
                call_id=call_id, at=now, sip_status=None, ended_by=Party.US,
                reason="the telephony backend never ended the call")))
