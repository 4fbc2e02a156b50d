"""The service's scheduler: explicit job ids that a restart keeps (and does not duplicate),
the misfire policy, the window jobs, and the maintenance jobs run for real against a
store: retention, the caller-ID review, tuning and the recheck count.

Job functions are called directly (as APScheduler would, by their references): waiting
for an hourly or daily trigger has no place in a test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.util import ref_to_obj
from sqlalchemy import select, update

from dialer.clock import ManualClock, ScaledClock
from dialer.serve import scheduling
from dialer.serve.scheduling import MAINTENANCE, MISFIRE_GRACE
from dialer.serve.service import IDEMPOTENCY_KEEP, WEBHOOK_KEEP, Service
from dialer.serve.status import RunState
from dialer.serve.webhooks import Outbox, WebhookEndpoint, WebhookSettings
from dialer.sim.scenario import default_scenario
from dialer.store import Store
from dialer.store.idempotency import find, remember
from dialer.store.schema import webhook_deliveries, webhook_events
from rules.number_status import NumberStatus, NumberStatusRecord

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cart-recovery" / "campaign.yaml"
SPEED = 600.0
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
#: A Monday, 10:00 in Shanghai: outside the window below.
WALL = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SCHEDULED = """\
name: nightly
region: CN
compliance: cn-marketing
dial: {mode: progressive, max_attempts: 1}
agents: {count: 2}
triggers:
  cart_abandoned: {delay: 2h}
schedule:
  timezone: Asia/Shanghai
  windows:
    weekdays: ["20:00-21:00"]
"""


@pytest.fixture
def make_service(store: Store) -> Iterator[Callable[..., Service]]:
    """Services on the test's store, started; each shut down at the end (or before)."""
    made: list[Service] = []

    def make(**options: object) -> Service:
        world = default_scenario()
        settings: dict[str, object] = {"clock": ScaledClock(world.start, SPEED),
                                       "speed": SPEED, "scenario": world,
                                       "wall_clock": lambda: WALL}
        settings.update(options)
        service = Service(store, **settings)  # type: ignore[arg-type]
        service.start()
        made.append(service)
        return service

    yield make
    for service in made:
        service.shutdown()


def _until(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# --- the jobs ---------------------------------------------------------------------------


def test_jobs_have_explicit_ids_and_a_restart_neither_duplicates_nor_postpones_them(
        make_service: Callable[..., Service]) -> None:
    first = make_service()
    first.register(SCHEDULED, actor="test")
    ids = first.scheduling.job_ids()
    assert ids == sorted([*MAINTENANCE, "campaign:nightly:close:0", "campaign:nightly:open:0"])
    due = {job.id: job.next_run_time for job in first.scheduling.scheduler.get_jobs()}
    first.shutdown()

    second = make_service()
    assert second.campaigns() == ["nightly"]  # known again from the store
    assert second.scheduling.job_ids() == ids  # one row per id in the job table
    kept = {job.id: job.next_run_time for job in second.scheduling.scheduler.get_jobs()}
    assert {job_id: kept[job_id] for job_id in MAINTENANCE} == \
        {job_id: due[job_id] for job_id in MAINTENANCE}


def test_every_job_runs_an_hour_late_at_most_once(make_service: Callable[..., Service]) -> None:
    service = make_service()
    service.register(SCHEDULED, actor="test")
    jobs = service.scheduling.scheduler.get_jobs()
    assert len(jobs) == len(MAINTENANCE) + 2
    for job in jobs:
        assert job.misfire_grace_time == MISFIRE_GRACE.total_seconds() == 3600
        assert job.coalesce is True
        assert job.max_instances == 1
    intervals = {job.id: job.trigger.interval for job in jobs if job.id in MAINTENANCE}
    assert intervals == {job_id: every for job_id, (_, every) in MAINTENANCE.items()}


def test_every_maintenance_reference_reaches_the_service(
        make_service: Callable[..., Service], store: Store) -> None:
    service = make_service()
    for function, _ in MAINTENANCE.values():
        ref_to_obj(function)()  # as the job store would call it
    with store.read() as uow:
        actions = {entry.action for entry in uow.audit_entries(limit=50)}
    assert "campaign.tuning" not in actions  # no campaign: nothing to tune or review
    service.shutdown()
    for function, _ in MAINTENANCE.values():
        ref_to_obj(function)()  # no service running: nothing happens, nothing fails


def test_the_window_jobs_start_pause_and_resume_a_campaign(
        make_service: Callable[..., Service], store: Store) -> None:
    service = make_service()
    service.register(SCHEDULED, actor="test")
    assert service.status("nightly").state is RunState.IDLE  # outside its window
    scheduling.window_opens("nightly")
    _until(lambda: service.status("nightly").state is RunState.RUNNING)
    scheduling.window_closes("nightly")
    _until(lambda: service.status("nightly").state is RunState.PAUSED)
    assert service.status("nightly").reason == "outside its schedule"
    scheduling.window_opens("nightly")
    _until(lambda: service.status("nightly").state is RunState.RUNNING)
    with store.read() as uow:
        actions = [e.action for e in uow.audit_entries(subject="campaign:nightly")
                   if e.actor == "scheduler"]
    assert actions == ["campaign.resume", "campaign.pause", "campaign.start"]


# --- maintenance ------------------------------------------------------------------------


def test_retention_forgets_only_old_keys_and_old_fully_delivered_events(
        make_service: Callable[..., Service], store: Store) -> None:
    clock = ManualClock(T0)
    service = make_service(clock=clock)
    old, recent = T0 - WEBHOOK_KEEP - timedelta(days=1), T0 - timedelta(days=1)
    with store.write() as uow:
        remember(uow, "key:a", "stale", "0" * 64, 201, "{}", T0 - IDEMPOTENCY_KEEP * 2)
        remember(uow, "key:a", "fresh", "0" * 64, 201, "{}", T0 - IDEMPOTENCY_KEEP / 2)
    events = {
        "gone": _event(store, created=old, states=("delivered", "delivered"), delivered=old),
        "one_pending": _event(store, created=old, states=("delivered", "pending"),
                              delivered=old),
        "failed": _event(store, created=old, states=("failed", "failed"), delivered=None),
        "recent": _event(store, created=recent, states=("delivered", "delivered"),
                         delivered=recent),
        "delivered_late": _event(store, created=old, states=("delivered", "delivered"),
                                 delivered=recent),
    }
    purged = service.purge_expired()
    assert (purged.idempotency_keys, purged.webhook_events) == (1, 1)
    with store.read() as uow:
        conn = uow._conn
        left = set(conn.execute(select(webhook_events.c.event_id)).scalars())
        deliveries = set(conn.execute(select(webhook_deliveries.c.event_id)).scalars())
        assert find(uow, "key:a", "stale") is None
        assert find(uow, "key:a", "fresh") is not None
    assert left == deliveries == {events[name] for name in events if name != "gone"}
    assert service.purge_expired().webhook_events == 0


def _event(store: Store, *, created: datetime, states: tuple[str, str],
           delivered: datetime | None) -> str:
    endpoints = tuple(WebhookEndpoint(name=f"e{n}", url="http://127.0.0.1:9/", secret_env="X")
                      for n in range(len(states)))
    with store.write() as uow:
        event_id = Outbox(WebhookSettings(endpoints=endpoints)).campaign_finished(
            uow, campaign="c", summary={}, now=created)
        assert event_id is not None
        d = webhook_deliveries.c
        for endpoint, state in zip(endpoints, states, strict=True):
            uow._conn.execute(update(webhook_deliveries).where(
                d.event_id == event_id, d.endpoint == endpoint.name).values(
                state=state, delivered_at=delivered if state == "delivered" else None))
    return event_id


def test_rechecks_count_the_dead_numbers_whose_recheck_is_due(
        make_service: Callable[..., Service], store: Store) -> None:
    service = make_service(clock=ManualClock(T0))
    hour = timedelta(hours=1)
    records = [("+8613800000001", NumberStatus.VACANT, T0 - hour),  # due
               ("+8613800000002", NumberStatus.SUSPENDED, T0),  # due (callable at T0)
               ("+8613800000003", NumberStatus.SUSPENDED, T0 + hour),  # not yet
               ("+8613800000004", NumberStatus.VACANT, None),  # never rechecked
               ("+8613800000005", NumberStatus.POWERED_OFF, T0 - hour)]  # never held
    with store.write() as uow:
        for e164, status, recheck_at in records:
            uow.put_number_status(NumberStatusRecord(
                e164=e164, status=status, observed_at=T0 - 2 * hour, source="test",
                recheck_at=recheck_at), actor="test")
    assert service.count_due_rechecks() == 2


def test_the_caller_id_review_audits_each_running_pool(
        make_service: Callable[..., Service], store: Store) -> None:
    service = make_service()
    # as a service campaign, the example calls from its managed pool of service numbers
    yaml = EXAMPLE.read_text(encoding="utf-8").replace("purpose: marketing", "purpose: service")
    service.register(yaml, actor="test", base_dir=EXAMPLE.parent)
    service.register(SCHEDULED, actor="test")  # not running: not reviewed
    _until(lambda: len(service.status("cart-recovery").caller_ids) == 2)
    scheduling.review_caller_ids()
    with store.read() as uow:
        entries = [e for e in uow.audit_entries(limit=100) if e.action == "caller_ids.review"]
    assert [e.subject for e in entries] == ["campaign:cart-recovery"]
    detail = entries[0].detail
    assert sum(detail["states"].values()) == 2
    assert set(detail) == {"states", "calls_today", "cap_today"}
    assert "+86" not in str(detail)


def test_the_tuning_job_keeps_a_report_for_each_campaign_that_has_called(
        make_service: Callable[..., Service], store: Store) -> None:
    service = make_service()
    service.register(EXAMPLE.read_text(encoding="utf-8"), actor="test",
                     base_dir=EXAMPLE.parent)
    service.register(SCHEDULED, actor="test")  # never ran: no attempts, no report
    _until(lambda: sum(service.status("cart-recovery").dispositions.values()) >= 30)
    service.stop("cart-recovery", actor="test")
    _until(lambda: service.status("cart-recovery").state is RunState.FINISHED)
    assert service.tune_campaigns() == ["cart-recovery"]
    scheduling.tune_campaigns()  # again, through the job: the newer report replaces it
    with store.read() as uow:
        report = (uow.campaign_settings("cart-recovery") or {})["tuning"]
        assert "tuning" not in (uow.campaign_settings("nightly") or {})
        entries = uow.audit_entries(subject="campaign:cart-recovery")
    assert report["attempts"] >= 30
    assert report["data_until"] is not None
    assert report["answer_rate"]["attempts"] > 0
    assert isinstance(report["changes"], list)
    assert [e.actor for e in entries if e.action == "campaign.tuning"] == ["scheduler"] * 2
    assert "+86" not in str(report)
