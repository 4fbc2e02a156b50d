"""The service: the store, the registered campaigns, their runners and the scheduler.

One `Service` per process. Campaigns are registered from YAML (a file at startup, or a
body posted to the API); the YAML is kept in the store (`campaigns.settings`), so a
restarted service knows them again. Starting a campaign imports the lead file it names
(once: the same bytes again add nothing) and starts a `CampaignRunner`; pause, resume and
stop go to the runner. Every change is in the audit log with who and when. The
scheduler's maintenance jobs (`scheduling.MAINTENANCE`) call the methods at the end.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, exists, func, or_, select

from dialer.clock import Clock, SystemClock
from dialer.config.campaign import Campaign, Telephony
from dialer.config.loader import load_yaml_text
from dialer.engine.agents import AgentEvent
from dialer.engine.runs import import_campaign_leads
from dialer.errors import UsageError
from dialer.serve.runner import CampaignRunner
from dialer.serve.scheduling import Scheduling, inside_window
from dialer.serve.settings import ServeSettings
from dialer.serve.status import CampaignStatus, RunState
from dialer.serve.webhooks import Deliverer, DeliveryState, Outbox
from dialer.sim.scenario import Scenario, default_scenario
from dialer.store import Store, UnitOfWork
from dialer.store.idempotency import purge
from dialer.store.schema import number_status, webhook_deliveries, webhook_events
from dialer.tuning import summary_of, tuning_of
from lines.callerid_health import CallerIdState
from rules.number_status import DEAD_STATUSES
from rules.tuning import TuningSettings

logger = logging.getLogger(__name__)

#: How long `shutdown` waits for each runner to finish its calls.
SHUTDOWN_WAIT = timedelta(seconds=10)
#: Idempotency keys are answered again for this long.
IDEMPOTENCY_KEEP = timedelta(hours=24)
#: Delivered webhook events are kept this long after their last delivery.
WEBHOOK_KEEP = timedelta(days=30)
#: Webhook events purged per transaction: a backlog never holds the write lock for long.
PURGE_BATCH = 500
#: The run states in which a campaign has a runner, and so a caller-ID pool in use.
LIVE = frozenset({RunState.STARTING, RunState.RUNNING, RunState.PAUSED, RunState.STOPPING})


class NotFound(UsageError):
    """No such campaign (or agent, or key): the API answers 404."""


class Conflict(UsageError):
    """The request does not fit the campaign's state (start a running one, ...): 409."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered:
    campaign: Campaign
    yaml: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Purged:
    """What one retention run forgot."""

    idempotency_keys: int
    webhook_events: int


class Service:
    """Owns what runs; the API and the scheduler call in from their own threads."""

    def __init__(self, store: Store, *, clock: Clock | None = None, speed: float = 1.0,
                 scenario: Scenario | None = None, seed: int = 1,
                 settings: ServeSettings | None = None,
                 wall_clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.speed = speed
        self.scenario = scenario or default_scenario()
        self.seed = seed
        #: Campaign windows are wall-clock time (the scheduler's), whatever `clock` says.
        self.wall_clock = wall_clock or SystemClock().now
        self.scheduling = Scheduling(store.engine)
        self.settings = settings or ServeSettings()
        webhooks = self.settings.webhooks
        self.outbox = Outbox(webhooks) if webhooks.endpoints else None
        self._deliverer = Deliverer(store, webhooks, self.clock) if webhooks.endpoints else None
        self._delivering = threading.Event()  # set: stop delivering
        self._delivery_thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._campaigns: dict[str, Registered] = {}
        self._runners: dict[str, CampaignRunner] = {}
        self._last: dict[str, CampaignStatus] = {}

    # --- life -----------------------------------------------------------------------------

    def start(self) -> None:
        """Load the campaigns the store knows, start the scheduler, and start the
        campaigns whose window is open now."""
        with self.store.read() as uow:
            known = {name: uow.campaign_settings(name) or {} for name in uow.campaign_names()}
        for name, settings in known.items():
            text, folder = settings.get("yaml"), settings.get("base_dir")
            if isinstance(text, str):
                base_dir = Path(folder) if isinstance(folder, str) else None
                campaign = load_yaml_text(text, Campaign, f"<campaign {name}>",
                                          base_dir=base_dir)
                self._campaigns[name] = Registered(campaign=campaign, yaml=text)
        self.scheduling.start(self)
        if self._deliverer is not None:
            self._delivery_thread = threading.Thread(
                target=self._deliverer.run, args=(self._delivering,), name="webhooks",
                daemon=True)
            self._delivery_thread.start()
        for registered in list(self._campaigns.values()):
            self._schedule(registered.campaign)

    def shutdown(self) -> None:
        self.scheduling.shutdown()
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.stop()
        for runner in runners:
            runner.join(SHUTDOWN_WAIT.total_seconds())
        self._delivering.set()
        if self._delivery_thread is not None:
            self._delivery_thread.join(SHUTDOWN_WAIT.total_seconds())
        if self._deliverer is not None:
            self._deliverer.close()

    # --- campaigns ---------------------------------------------------------------------------

    def register(self, yaml_text: str, *, actor: str, base_dir: Path | None = None) -> Campaign:
        """Validate a campaign's YAML and keep it (ConfigError, nothing kept, if invalid);
        its schedule's jobs replace any earlier ones."""
        campaign = load_yaml_text(yaml_text, Campaign, "<campaign>", base_dir=base_dir)
        if campaign.telephony is not Telephony.SIMULATED:
            raise UsageError(f"campaign {campaign.name!r}: the service runs campaigns on the "
                             "simulated network for now; run SIP campaigns with `dialer run`")
        now = self.clock.now()
        with self.store.write() as uow:
            campaign_id = uow.ensure_campaign(campaign.name, default_region=campaign.region,
                                              now=now)
            uow.remember_campaign(campaign_id, yaml=yaml_text,
                                  base_dir=str(base_dir) if base_dir is not None else None)
            uow.audit("campaign.register", actor=actor, subject=f"campaign:{campaign.name}",
                      detail={"mode": campaign.dial.mode.value,
                              "scheduled": campaign.schedule is not None}, now=now)
        with self._lock:
            self._campaigns[campaign.name] = Registered(campaign=campaign, yaml=yaml_text)
        self._schedule(campaign)
        return campaign

    def campaigns(self) -> list[str]:
        with self._lock:
            return sorted(self._campaigns)

    def campaign(self, name: str) -> Registered:
        with self._lock:
            registered = self._campaigns.get(name)
        if registered is None:
            raise NotFound(f"no campaign named {name!r}")
        return registered

    def start_campaign(self, name: str, *, actor: str) -> CampaignStatus:
        campaign = self.campaign(name).campaign
        with self._lock:
            runner = self._runners.get(name)
            if runner is not None and runner.is_alive():
                if runner.paused:
                    runner.resume()
                    self._audit("campaign.resume", name, actor)
                    return runner.status()
                raise Conflict(f"campaign {name!r} is already running")
            now = self.clock.now()
            import_campaign_leads(self.store, campaign, now=now, actor=actor)
            runner = CampaignRunner(self.store, campaign, clock=self.clock, speed=self.speed,
                                    scenario=self.scenario, seed=self.seed,
                                    outbox=self.outbox, on_finished=self._finished)
            self._runners[name] = runner
            runner.start()
        self._audit("campaign.start", name, actor)
        return runner.status()

    def pause(self, name: str, *, actor: str, reason: str = "paused") -> CampaignStatus:
        runner = self._running(name)
        runner.pause(reason)
        self._audit("campaign.pause", name, actor, reason=reason)
        return runner.status()

    def resume(self, name: str, *, actor: str) -> CampaignStatus:
        runner = self._running(name)
        runner.resume()
        self._audit("campaign.resume", name, actor)
        return runner.status()

    def stop(self, name: str, *, actor: str) -> CampaignStatus:
        runner = self._running(name)
        runner.stop()
        self._audit("campaign.stop", name, actor)
        return runner.status()

    def status(self, name: str) -> CampaignStatus:
        self.campaign(name)  # NotFound
        with self._lock:
            runner = self._runners.get(name)
            if runner is not None:
                return runner.status()
            return self._last.get(name) or CampaignStatus(campaign=name, state=RunState.IDLE)

    def statuses(self) -> list[CampaignStatus]:
        return [self.status(name) for name in self.campaigns()]

    def agent_event(self, name: str, event: AgentEvent) -> None:
        self._running(name).agent_event(event)

    # --- scheduler callbacks --------------------------------------------------------------

    def window_opened(self, name: str) -> None:
        try:
            self.start_campaign(name, actor="scheduler")
        except Conflict:
            pass  # running already (started by hand inside its window)
        except NotFound:
            logger.warning("a window opened for campaign %s, which is not registered", name)

    def window_closed(self, name: str) -> None:
        with self._lock:
            runner = self._runners.get(name)
        if runner is not None and runner.is_alive():
            runner.pause("outside its schedule")
            self._audit("campaign.pause", name, "scheduler", reason="outside its schedule")

    # --- maintenance (the scheduler's jobs) -----------------------------------------------

    def purge_expired(self) -> Purged:
        """Forget idempotency keys past `IDEMPOTENCY_KEEP`, and webhook events whose every
        delivery was delivered more than `WEBHOOK_KEEP` ago (their deliveries, then them).
        An event with a pending or failed delivery is kept, however old."""
        now = self.clock.now()
        with self.store.write() as uow:
            keys = purge(uow, older_than=now - IDEMPOTENCY_KEEP)
        events, batch = 0, PURGE_BATCH
        while batch == PURGE_BATCH:
            with self.store.write() as uow:
                batch = purge_delivered_events(uow, older_than=now - WEBHOOK_KEEP,
                                               limit=PURGE_BATCH)
            events += batch
        logger.info("maintenance: %d idempotency key(s) and %d delivered webhook event(s) "
                    "purged", keys, events)
        return Purged(idempotency_keys=keys, webhook_events=events)

    def review_caller_ids(self) -> dict[str, dict[str, int]]:
        """A daily snapshot of each running campaign's caller-ID pool in the audit log
        (`caller_ids.review`): numbers by state, calls placed today and today's caps.
        The runners rest, retire and warm up numbers themselves, each simulated day; this
        records where the pools stand. Returns the counts by campaign."""
        reviewed: dict[str, dict[str, int]] = {}
        details: dict[str, dict[str, object]] = {}
        for status in self.statuses():
            if status.state not in LIVE or not status.caller_ids:
                continue
            held = Counter(c.state for c in status.caller_ids)
            reviewed[status.campaign] = {state.value: held[state.value]
                                         for state in CallerIdState}
            details[status.campaign] = {
                "states": reviewed[status.campaign],
                "calls_today": sum(c.calls_today for c in status.caller_ids),
                "cap_today": sum(c.cap_today for c in status.caller_ids)}
        now = self.clock.now()
        with self.store.write() as uow:
            for name, detail in details.items():
                uow.audit("caller_ids.review", actor="scheduler", subject=f"campaign:{name}",
                          detail=detail, now=now)
        for name, counts in reviewed.items():
            logger.info("maintenance: campaign %s caller IDs by state: %s", name, counts)
        return reviewed

    def tune_campaigns(self, settings: TuningSettings | None = None) -> list[str]:
        """Each registered campaign's tuning (`dialer.tuning`, as `dialer tune` computes it)
        kept in its settings as `tuning`, with a `campaign.tuning` audit entry. Campaigns
        with no attempts yet are left out. Nothing is applied (`dialer tune --apply` does
        that). Returns the campaigns tuned."""
        settings = settings or TuningSettings()
        tuned = []
        for name in self.campaigns():
            with self.store.read() as uow:
                campaign_id = uow.campaign_id(name)
                if campaign_id is None or uow.last_attempt_at(campaign_id) is None:
                    continue
            tuning = tuning_of(self.store, self.campaign(name).campaign, settings)
            now = self.clock.now()
            report = summary_of(tuning, settings, generated_at=now)
            with self.store.write() as uow:
                uow.remember_campaign(campaign_id, tuning=report)
                uow.audit("campaign.tuning", actor="scheduler", subject=f"campaign:{name}",
                          now=now, detail={"data_until": report["data_until"],
                                           "attempts": tuning.attempts,
                                           "changes": [c.field for c in tuning.changes]})
            tuned.append(name)
        logger.info("maintenance: tuning kept for %d campaign(s)", len(tuned))
        return tuned

    def count_due_rechecks(self) -> int:
        """How many known-dead numbers (vacant, suspended) are past their recheck time,
        logged. There is nothing more to do: such a number is callable again by itself
        (the claim query skips a dead number only until its `recheck_at`), and powered-off
        or unreachable numbers are never held by their status: their 2-4 h recheck is the
        campaign's retry rule (`retry.powered_off`, the lead's next attempt time). Looking
        a number up again before calling it would need a number-status provider
        (`dialer.numbers`), which the service does not have."""
        due = count_due(self.store, self.clock.now())
        logger.info("maintenance: %d known-dead number(s) past their recheck time", due)
        return due

    # --- inside -----------------------------------------------------------------------------

    def _schedule(self, campaign: Campaign) -> None:
        self.scheduling.schedule_campaign(campaign)
        if campaign.schedule is not None and inside_window(campaign.schedule,
                                                            self.wall_clock()):
            self.window_opened(campaign.name)

    def _running(self, name: str) -> CampaignRunner:
        self.campaign(name)  # NotFound
        with self._lock:
            runner = self._runners.get(name)
        if runner is None or not runner.is_alive():
            raise Conflict(f"campaign {name!r} is not running")
        return runner

    def _finished(self, runner: CampaignRunner, status: CampaignStatus) -> None:
        name = runner.campaign.name
        with self._lock:
            if self._runners.get(name) is runner:
                del self._runners[name]
            self._last[name] = status
        logger.info("campaign %s: run ended (%s)", name, status.state.value)
        if self.outbox is not None and status.state is RunState.FINISHED:
            summary = {"reason": status.reason, "dials": status.dials,
                       "dispositions": dict(status.dispositions)}
            with self.store.write() as uow:
                self.outbox.campaign_finished(uow, campaign=name, summary=summary,
                                              now=self.clock.now())

    def _audit(self, action: str, name: str, actor: str, **detail: object) -> None:
        with self.store.write() as uow:
            uow.audit(action, actor=actor, subject=f"campaign:{name}",
                      detail=dict[str, object](detail), now=self.clock.now())


def purge_delivered_events(uow: UnitOfWork, *, older_than: datetime, limit: int) -> int:
    """Delete up to `limit` webhook events whose deliveries were all delivered before
    `older_than` (the deliveries first: they refer to the events); how many events."""
    d, e = webhook_deliveries.c, webhook_events.c
    unfinished = or_(d.state != DeliveryState.DELIVERED.value, d.delivered_at.is_(None),
                     d.delivered_at >= older_than)
    pick = (select(e.event_id)
            .where(e.created_at < older_than, exists().where(d.event_id == e.event_id),
                   ~exists().where(d.event_id == e.event_id, unfinished))
            .order_by(e.id).limit(limit))
    conn = uow._conn  # the outbox's tables have no unit-of-work methods (as in webhooks)
    event_ids = list(conn.execute(pick).scalars())
    if event_ids:
        conn.execute(delete(webhook_deliveries).where(d.event_id.in_(event_ids)))
        conn.execute(delete(webhook_events).where(e.event_id.in_(event_ids)))
    return len(event_ids)


def count_due(store: Store, now: datetime) -> int:
    """Known-dead numbers whose recheck time is `now` or past."""
    n = number_status.c
    stmt = (select(func.count()).select_from(number_status)
            .where(n.status.in_(sorted(s.value for s in DEAD_STATUSES)), n.recheck_at <= now))
    with store.read() as uow:  # a count the store's unit of work has no method for
        return int(uow._conn.execute(stmt).scalar_one())
