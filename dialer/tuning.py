"""A campaign's tuning from its attempt log: the store read, `rules.tuning` asked.

`tuning_of` gathers the facts (outcomes, complaints among the numbers called, list
sources' invalid shares) and the campaign's current state, and returns the pure core's
`Tuning`. `dialer tune` writes it out as files; the service's daily tuning job keeps
`summary_of` it beside the campaign. Neither applies a change by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from dialer.config.campaign import Campaign
from dialer.config.compliance import weekly_hours
from dialer.engine.report import invalid_share_by_source
from dialer.errors import UsageError
from dialer.store import AttemptRow, Store, SuppressionScope
from rules.tuning import (
    CampaignState,
    Outcome,
    SourceFigures,
    SuppressionFact,
    Tuning,
    TuningSettings,
)
from rules.tuning import tune as analyse
from rules.tuning_hours import DAY_KEYS, Change, Rate, intersect_hours


def tuning_of(store: Store, campaign: Campaign, settings: TuningSettings) -> Tuning:
    """The campaign's figures and proposals; UsageError when it has no attempts yet."""
    name = campaign.name
    sources = [SourceFigures(source=source, rows=int(f["rows"]),
                             invalid_at_intake=int(f["invalid_at_intake"]),
                             dead_numbers=int(f["dead_numbers"]), share=f["share"])
               for source, f in invalid_share_by_source(store, name).items()]
    with store.read() as uow:
        numbers = {row.e164 for row in uow.attempt_rows(name)}
        if not numbers:
            raise UsageError(f"campaign {name!r} has no attempts in this store yet: "
                             "run it first (dialer run CAMPAIGN.yaml)")
        suppressed = uow.suppressed_e164s(numbers, campaign=name)
        facts = [SuppressionFact(e164=s.e164, reason=s.reason, created_at=s.created_at)
                 for number in sorted(suppressed) for s in uow.list_suppressions(e164=number)
                 if s.scope is SuppressionScope.GLOBAL or s.campaign == name]
        return analyse(_outcomes(uow.attempt_rows(name)), facts, sources,
                       state=campaign_state(campaign), settings=settings)


def campaign_state(campaign: Campaign) -> CampaignState:
    """What the campaign does now: the hours it may call in (its own within its
    profile's), its own script, and what is already retired or stopped."""
    hours = intersect_hours(weekly_hours(campaign.compliance.windows),
                            weekly_hours(campaign.calling_hours))
    return CampaignState(
        hours=hours, default_script=campaign.script.name if campaign.script else None,
        retired_scripts=frozenset(campaign.retired_scripts),
        stopped_sources=frozenset(campaign.stopped_sources),
    )


def summary_of(tuning: Tuning, settings: TuningSettings, *,
               generated_at: datetime) -> dict[str, object]:
    """The tuning as plain JSON data, to keep beside the campaign: the period it covers,
    the answer rates (overall, by local hour and weekday, only slots with attempts), the
    flagged scripts and sources, the proposed changes and the notes. No phone numbers."""
    return {
        "generated_at": generated_at.isoformat(),
        "data_from": _iso(tuning.first_at), "data_until": _iso(tuning.last_at),
        "settings": {"min_attempts": settings.min_attempts,
                     "max_optout_rate": settings.max_optout_rate,
                     "max_invalid_share": settings.max_invalid_share},
        "attempts": tuning.attempts,
        "answer_rate": _rate(tuning.overall),
        "answer_rate_by_hour": [{"hour": h, **_rate(r)}
                                for h, r in enumerate(tuning.by_hour) if r.trials],
        "answer_rate_by_weekday": [{"weekday": DAY_KEYS[d], **_rate(r)}
                                   for d, r in enumerate(tuning.by_weekday) if r.trials],
        "flagged_scripts": [s.script for s in tuning.scripts if s.flagged],
        "flagged_sources": [v.figures.source for v in tuning.sources if v.flagged],
        "changes": [_change(c) for c in tuning.changes],
        "notes": list(tuning.notes),
    }


def _outcomes(rows: Iterator[AttemptRow]) -> Iterator[Outcome]:
    for row in rows:
        yield Outcome(e164=row.e164, placed_at=row.placed_at,
                      zone=row.callee_timezones[0] if row.callee_timezones else "",
                      disposition=row.disposition, script=row.script, source=row.list_source)


def _rate(rate: Rate) -> dict[str, object]:
    return {"answered": rate.successes, "attempts": rate.trials, "rate": round(rate.rate, 4),
            "low": round(rate.low, 4), "high": round(rate.high, 4)}


def _change(change: Change) -> dict[str, object]:
    value: object = (list(change.value) if isinstance(change.value, tuple)
                     else {key: list(ranges) for key, ranges in change.value.items()})
    return {"field": change.field, "op": change.op, "value": value, "why": change.why}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
