"""The service's scheduler: APScheduler 3, one per deployment, its jobs in the dialer's
database.

Jobs have explicit ids (`campaign:<name>:open:<n>`, `campaign:<name>:close:<n>`,
`maintenance:<what>`) and are added with `replace_existing`, so a restart never
duplicates them; a campaign's window jobs are replaced as a whole when it is registered
again. A maintenance job keeps its next run time across a restart (a service restarted
more often than daily still runs its daily jobs). Misfires: a job that could not run on
time (the service was down) still runs if it is at most `MISFIRE_GRACE` late, once
(coalesced) — APScheduler's default grace of one second would skip it. A service started
inside a campaign's window starts the campaign at once (`inside_window`): no job would
fire until the next window.

Per-lead timing (a cart-recovery call two hours after the event) is not a job: it is the
lead's due time in the store. Job functions are module-level and referenced by name (the
job store pickles references, not objects); they reach the running service through
`_SERVICE`, set while the scheduler runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from dialer.config.campaign import Campaign, Schedule
from dialer.config.compliance import DaySpec
from dialer.store.engine import create_store_engine

if TYPE_CHECKING:
    from dialer.serve.service import Service

logger = logging.getLogger(__name__)

MISFIRE_GRACE = timedelta(hours=1)
JOB_TABLE = "scheduler_jobs"
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Maintenance jobs: id -> (function, interval of wall-clock time). What each does is in
#: the Service method it calls.
MAINTENANCE = {
    "maintenance:retention": ("dialer.serve.scheduling:purge_expired", timedelta(hours=1)),
    "maintenance:caller_ids": ("dialer.serve.scheduling:review_caller_ids", timedelta(days=1)),
    "maintenance:tuning": ("dialer.serve.scheduling:tune_campaigns", timedelta(days=1)),
    "maintenance:rechecks": ("dialer.serve.scheduling:count_due_rechecks",
                             timedelta(minutes=10)),
}

_SERVICE: Service | None = None


class Scheduling:
    """The APScheduler instance and the service's jobs on it."""

    def __init__(self, engine: Engine) -> None:
        # The job store gets an engine of its own on the same database: it disposes of
        # its engine when the scheduler shuts down.
        self._engine = create_store_engine(engine.url)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self._engine,
                                                     tablename=JOB_TABLE)},
            job_defaults={"misfire_grace_time": int(MISFIRE_GRACE.total_seconds()),
                          "coalesce": True, "max_instances": 1},
            timezone="UTC",
        )

    def start(self, service: Service) -> None:
        global _SERVICE
        _SERVICE = service
        self.scheduler.start(paused=True)  # no job runs while they are being (re)placed
        for job_id, (function, every) in MAINTENANCE.items():
            stored = self.scheduler.get_job(job_id)
            keep = {} if stored is None else {"next_run_time": stored.next_run_time}
            self.scheduler.add_job(function, IntervalTrigger(seconds=every.total_seconds()),
                                   id=job_id, replace_existing=True, **keep)
        self.scheduler.resume()

    def shutdown(self) -> None:
        global _SERVICE
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        # The job store disposes of its engine before the scheduler's thread has stopped;
        # a query that thread was making then leaves a connection behind: close it too.
        self._engine.dispose()
        _SERVICE = None

    def schedule_campaign(self, campaign: Campaign) -> int:
        """(Re)place the campaign's window jobs; returns how many there are."""
        self.unschedule_campaign(campaign.name)
        if campaign.schedule is None:
            return 0
        count = 0
        for n, (opens, closes) in enumerate(window_triggers(campaign.schedule)):
            for edge, trigger in (("open", opens), ("close", closes)):
                self.scheduler.add_job(f"dialer.serve.scheduling:window_{edge}s", trigger,
                                       args=[campaign.name], replace_existing=True,
                                       id=f"campaign:{campaign.name}:{edge}:{n}")
            count += 2
        return count

    def unschedule_campaign(self, name: str) -> None:
        prefix = f"campaign:{name}:"
        for job in self.scheduler.get_jobs():
            if job.id.startswith(prefix):
                job.remove()

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self.scheduler.get_jobs())


def window_triggers(schedule: Schedule) -> Iterator[tuple[CronTrigger, CronTrigger]]:
    """One (open, close) pair of cron triggers per day group and time range."""
    zone = ZoneInfo(schedule.timezone)
    for days, ranges in schedule.windows.items():
        day_of_week = ",".join(_DAY_NAMES[d] for d in DaySpec(days).weekdays)
        for span in ranges:
            yield (CronTrigger(day_of_week=day_of_week, hour=span.start.hour,
                               minute=span.start.minute, timezone=zone),
                   CronTrigger(day_of_week=day_of_week, hour=span.end.hour,
                               minute=span.end.minute, timezone=zone))


def inside_window(schedule: Schedule, at: datetime) -> bool:
    """Whether `at` falls in one of the schedule's windows (in its time zone)."""
    local = at.astimezone(ZoneInfo(schedule.timezone))
    moment = local.time().replace(tzinfo=None)
    return any(local.weekday() in DaySpec(days).weekdays
               and any(span.start <= moment < span.end for span in ranges)
               for days, ranges in schedule.windows.items())


# --- job functions (referenced by name from the job store) ------------------------------


def window_opens(campaign: str) -> None:
    if _SERVICE is None:
        logger.warning("window of campaign %s opened with no service running", campaign)
        return
    _SERVICE.window_opened(campaign)


def window_closes(campaign: str) -> None:
    if _SERVICE is None:
        return
    _SERVICE.window_closed(campaign)


def purge_expired() -> None:
    if _SERVICE is not None:
        _SERVICE.purge_expired()


def review_caller_ids() -> None:
    if _SERVICE is not None:
        _SERVICE.review_caller_ids()


def tune_campaigns() -> None:
    if _SERVICE is not None:
        _SERVICE.tune_campaigns()


def count_due_rechecks() -> None:
    if _SERVICE is not None:
        _SERVICE.count_due_rechecks()
