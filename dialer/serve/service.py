"""The service: the store, the registered campaigns, their runners and the scheduler.

One `Service` per process. Campaigns are registered from YAML (a file at startup, or a
body posted to the API); the YAML is kept in the store (`campaigns.settings`), so a
restarted service knows them again. Starting a campaign imports the lead file it names
(once: the same bytes again add nothing) and starts a `CampaignRunner`; pause, resume and
stop go to the runner. Every change is in the audit log with who and when.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

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
from dialer.serve.webhooks import Deliverer, Outbox
from dialer.sim.scenario import Scenario, default_scenario
from dialer.store import Store
from dialer.store.idempotency import purge

logger = logging.getLogger(__name__)

#: How long `shutdown` waits for each runner to finish its calls.
SHUTDOWN_WAIT = timedelta(seconds=10)
#: Idempotency keys are answered again for this long.
IDEMPOTENCY_KEEP = timedelta(hours=24)


class NotFound(UsageError):
    """No such campaign (or agent, or key): the API answers 404."""


class Conflict(UsageError):
    """The request does not fit the campaign's state (start a running one, ...): 409."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered:
    campaign: Campaign
    yaml: str


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

    def purge_expired(self) -> None:
        """Maintenance: forget idempotency keys past their time."""
        now = self.clock.now()
        with self.store.write() as uow:
            purged = purge(uow, older_than=now - IDEMPOTENCY_KEEP)
        logger.info("maintenance: %d idempotency key(s) purged", purged)

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

