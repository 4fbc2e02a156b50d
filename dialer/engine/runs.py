"""Starting a campaign run, in either world: the store's side and the state carried over.

A run recovers what a crashed run left (interrupted attempts closed, their leads due
again a little later), builds the engine, and replays into it what earlier runs did that
its rules count over time: the abandon rate in the regulator's window and each caller
ID's calls and marks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from dialer.config.campaign import Campaign
from dialer.engine.build import build_engine, contact_policy, segments_of
from dialer.engine.core import Engine
from dialer.engine.ledger import (
    ATTEMPT_ENDED,
    OutboxWriter,
    StoreLedger,
    interrupted_payload,
)
from dialer.engine.lines import LinePlan
from dialer.intake.service import IntakeOptions, IntakeSummary, import_file
from dialer.store import Recovery, Store, SuppressionScope
from rules.abandonment import AbandonWindow
from rules.dispositions import PERSON_ANSWERED, Disposition

#: After a crash, interrupted leads are retried this much later.
RETRY_AFTER_CRASH = timedelta(minutes=5)


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """A run ready to go: its engine, its ledger and what recovery closed."""

    engine: Engine
    ledger: StoreLedger
    recovery: Recovery


def start_run(store: Store, campaign: Campaign, now: datetime, *,
              outbox: OutboxWriter | None = None) -> Run:
    """Register the campaign, recover a crashed run's leftovers and build the engine with
    the campaign's history up to `now`; with an `outbox`, outcomes become webhook events."""
    with store.write() as uow:
        campaign_id = uow.ensure_campaign(campaign.name, default_region=campaign.region,
                                          now=now)
        recovery = uow.recover(campaign_id=campaign_id, now=now,
                               retry_at=now + RETRY_AFTER_CRASH,
                               max_attempts=campaign.dial.max_attempts)
        if outbox is not None:
            for attempt_id, lead_id, placed_at in recovery.closed:
                outbox.add(uow, ATTEMPT_ENDED, campaign=campaign.name, now=now, payload=
                           interrupted_payload(campaign.name, attempt_id, lead_id, placed_at,
                                               now))
    engine = build_engine(campaign, campaign_id)  # call ids: UUIDs, unique in every store
    load_abandon_history(store, campaign.name, engine.abandonment, now)
    load_caller_id_history(store, engine.lines, now)
    ledger = StoreLedger(store, campaign=campaign.name, policy=contact_policy(campaign),
                         opt_out_scope=SuppressionScope(campaign.compliance.opt_out_scope.value),
                         stopped_sources=campaign.stopped_sources, outbox=outbox)
    return Run(engine=engine, ledger=ledger, recovery=recovery)


def import_campaign_leads(store: Store, campaign: Campaign, *, now: datetime,
                          actor: str) -> IntakeSummary | None:
    """Import the lead file a campaign names (`leads.file`), if any, in one transaction;
    the same file again adds nothing (`already_imported`)."""
    if campaign.leads is None or campaign.leads.file is None:
        return None
    path = Path(campaign.leads.file)  # the loader resolved it against the campaign's folder
    options = IntakeOptions(region=campaign.region, column=campaign.leads.column,
                            allowed_types=campaign.allowed_number_types,
                            segments=segments_of(campaign))
    with store.write() as uow:
        return import_file(uow, path, campaign=campaign.name,
                           source=campaign.leads.source or path.stem, options=options,
                           now=now, actor=actor)


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
