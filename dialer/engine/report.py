"""The run report: what a campaign run did, for people (tables) and machines (JSON)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dialer.config.campaign import Campaign
from dialer.engine.build import abandon_cap
from dialer.engine.core import Engine
from dialer.intake.service import dirty_rows, rows_read
from dialer.store import Recovery, Store
from rules.dispositions import Disposition
from rules.phone import mask

_DEAD = {Disposition.VACANT.value, Disposition.SUSPENDED.value}


@dataclass(slots=True, kw_only=True)
class RunReport:
    campaign: str
    mode: str
    seed: int
    started_at: datetime
    ended_at: datetime
    attempts: int
    contacts: int  # answered by a person
    dispositions: dict[str, int]
    abandon_rate: float
    agent_occupancy: float | None
    calls_per_hour: float
    recovered: dict[str, int]
    sources: dict[str, dict[str, float]] = field(default_factory=dict)
    #: The abandon rate as the regulator counts it: over its window ending at the run's
    #: end (earlier runs included), with estimated machine-detection false positives.
    abandon_window: dict[str, float] = field(default_factory=dict)
    #: Leads the contact rules held back when they were due, by the first rule that did.
    skipped_by_rule: dict[str, int] = field(default_factory=dict)
    #: Trunks' changes of state during the run (failovers and returns), oldest first.
    line_events: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "campaign": self.campaign, "mode": self.mode, "seed": self.seed,
            "started_at": self.started_at.isoformat(), "ended_at": self.ended_at.isoformat(),
            "attempts": self.attempts, "contacts": self.contacts,
            "dispositions": self.dispositions, "abandon_rate": round(self.abandon_rate, 5),
            "agent_occupancy": (None if self.agent_occupancy is None
                                else round(self.agent_occupancy, 4)),
            "calls_per_hour": round(self.calls_per_hour, 1), "recovered": self.recovered,
            "invalid_share_by_source": self.sources,
            "abandon_window": self.abandon_window,
            "skipped_by_rule": self.skipped_by_rule,
            "line_events": self.line_events,
        }


def build_report(
    store: Store, campaign: Campaign, engine: Engine, *, recovery: Recovery,
    started: datetime, ended: datetime, seed: int, window: timedelta,
    skipped: Mapping[str, int] | None = None,
) -> RunReport:
    outcomes = engine.outcomes
    attempts = sum(outcomes.dispositions.values())
    dialing = min(ended, started + window) - started  # calls per hour of the dialing window
    hours = max(dialing / timedelta(hours=1), 1e-9)
    return RunReport(
        campaign=campaign.name, mode=campaign.dial.mode.value, seed=seed,
        started_at=started, ended_at=ended, attempts=attempts,
        contacts=outcomes.live_answers,
        dispositions={d.value: n for d, n in outcomes.dispositions.most_common()},
        abandon_rate=outcomes.abandon_rate,
        agent_occupancy=engine.staff.occupancy if engine.staff.agents else None,
        calls_per_hour=attempts / hours,
        recovered={"attempts_closed": recovery.attempts_closed,
                   "leads_released": recovery.leads_released},
        sources=invalid_share_by_source(store, campaign.name),
        abandon_window=window_figures(campaign, engine, ended),
        skipped_by_rule=dict(sorted((skipped or {}).items())),
        line_events=line_events(store, campaign.name, started, ended),
    )


def line_events(store: Store, campaign: str, started: datetime, ended: datetime
                ) -> list[dict[str, str]]:
    """The trunks' changes of state between `started` and `ended`."""
    with store.read() as uow:
        rows = uow.line_events(campaign, since=started, until=ended)
    return [{"at": row["at"].isoformat(), "kind": row["kind"], "trunk": row["subject"]
             if row["kind"] == "trunk" else mask(row["subject"]), "from": row["before"],
             "to": row["after"], "reason": row["reason"]}
            for row in rows]


def window_figures(campaign: Campaign, engine: Engine, at: datetime) -> dict[str, float]:
    figures = engine.abandonment.figures(at)
    return {"window_hours": engine.abandonment.window / timedelta(hours=1),
            "cap": abandon_cap(campaign), "live_answers": round(figures.live_answers, 2),
            "abandoned": round(figures.abandoned, 2), "rate": round(figures.rate, 5)}


def invalid_share_by_source(store: Store, campaign: str) -> dict[str, dict[str, float]]:
    """Per list source: rows, rows rejected at intake as invalid, numbers found dead by
    calls (vacant or suspended), and the share of the two in all rows."""
    rows: Counter[str] = Counter()
    invalid: Counter[str] = Counter()
    dead: defaultdict[str, set[int]] = defaultdict(set)
    with store.read() as uow:
        campaign_id = uow.campaign_id(campaign)
        for lead_list in uow.lists(campaign_id) if campaign_id is not None else []:
            rows[lead_list.source] += rows_read(lead_list.summary)
            invalid[lead_list.source] += dirty_rows(lead_list.summary)
        for row in uow.attempt_rows(campaign):
            if row.disposition in _DEAD:
                dead[row.list_source].add(row.lead_id)
    return {
        source: {"rows": rows[source], "invalid_at_intake": invalid[source],
                 "dead_numbers": len(dead[source]),
                 "share": round((invalid[source] + len(dead[source])) / rows[source], 4)
                 if rows[source] else 0.0}
        for source in sorted(set(rows) | set(dead))
    }
