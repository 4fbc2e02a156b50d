"""Tuning from outcomes: what the attempt log says about hours, scripts and list sources,
and the campaign changes it supports.

Pure: facts in (`Outcome`, `SuppressionFact`, `SourceFigures`), a frozen `Tuning` out. The
caller reads the store and the clock; nothing here does.

Definitions:

- **Answer rate**: attempts a person answered (answered_human, completed, transferred,
  opted_out, abandoned) over attempts that reached a verdict. network_error and failed
  (our side or the network failed, the callee never had a chance) and attempts still open
  are left out of both. Hours and weekdays are the callee's local ones, in the first of
  the callee's zones (UTC when none is known). Every rate carries its Wilson score
  interval at 95 %.
- **Opt-out and complaint rates** of a script are over the calls a person answered
  while it ran (only they heard it). A complaint is a suppression of the number whose
  reason mentions "complaint" or "投诉"; it counts once per number, for the script of the
  number's latest attempt before the (earliest) complaint, and not at all when the
  number had no attempt before it. A script is flagged when either rate is above
  `max_optout_rate`.
- **Invalid share** of a list source is what `SourceFigures.share` says (rows rejected at
  intake plus numbers found dead, over rows); flagged above `max_invalid_share`.

Proposals need evidence: at least `min_attempts` attempts in an hour, answered calls of a
script, or rows of a source; `rules.tuning_hours.propose_hours` has the calling-hours
rule. The campaign's own script is never proposed for retirement (retired scripts fall
back to it, so retiring it changes nothing): it is flagged with a note instead. Likewise
the last list source still dialed is never proposed for stopping (the campaign would dial
nobody): when every source left is flagged, the one with the lowest share is kept, with
a note.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rules.dispositions import PERSON_ANSWERED, Disposition
from rules.tuning_hours import Change, Hours, Rate, propose_hours

D = Disposition
ANSWERED = PERSON_ANSWERED
NO_VERDICT = frozenset({D.NETWORK_ERROR, D.FAILED})
COMPLAINT_WORDS = ("complaint", "投诉")
@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One attempt as tuning sees it; `disposition` is None while the attempt is open."""

    e164: str
    placed_at: datetime  # aware
    zone: str  # the callee's (first) IANA zone; "" or unknown is UTC
    disposition: str | None
    script: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SuppressionFact:
    """A suppression of a number that was called."""

    e164: str
    reason: str
    created_at: datetime  # aware


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceFigures:
    """What intake and calls found of one list source (see `invalid_share_by_source`)."""

    source: str
    rows: int
    invalid_at_intake: int
    dead_numbers: int
    share: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TuningSettings:
    min_attempts: int = 30  # the least evidence to act on (see the module docstring)
    max_optout_rate: float = 0.005
    max_invalid_share: float = 0.10


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignState:
    """What the campaign does now, so proposals only say what would change."""

    #: Seven days of the hours it may call now (campaign's within the profile's), Monday
    #: first; None: any hour.
    hours: tuple[Hours, ...] | None
    default_script: str | None = None
    retired_scripts: frozenset[str] = frozenset()
    stopped_sources: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptFigures:
    script: str
    attempts: int
    answered: int
    opt_outs: int
    complaints: int
    flagged: bool

    @property
    def opt_out_rate(self) -> float:
        return self.opt_outs / self.answered if self.answered else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.answered if self.answered else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceVerdict:
    figures: SourceFigures
    flagged: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Tuning:
    attempts: int
    overall: Rate
    first_at: datetime | None
    last_at: datetime | None
    by_hour: tuple[Rate, ...]  # 24, local hour 0 first
    by_weekday: tuple[Rate, ...]  # 7, Monday first
    scripts: tuple[ScriptFigures, ...]
    sources: tuple[SourceVerdict, ...]
    changes: tuple[Change, ...]
    notes: tuple[str, ...]


def is_complaint(reason: str) -> bool:
    folded = reason.casefold()
    return any(word in folded for word in COMPLAINT_WORDS)


def local_slot(placed_at: datetime, zone: str) -> tuple[int, int]:
    """(weekday, hour) of `placed_at` on the callee's wall clock; UTC for unknown zones."""
    try:
        tz = ZoneInfo(zone) if zone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    local = placed_at.astimezone(tz)
    return local.weekday(), local.hour


@dataclass(slots=True)
class _Tally:
    """The one pass over the log."""

    complaints_of: Mapping[str, datetime]  # number -> its earliest complaint
    attempts: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    #: [answered, verdicts] per local hour, and per local weekday
    hour: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in range(24)])
    day: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in range(7)])
    script: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))
    #: number -> (when, script) of its latest attempt before its complaint
    before_complaint: dict[str, tuple[datetime, str]] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.attempts += 1
        at = outcome.placed_at
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)
        counts = self.script[outcome.script]
        counts["attempts"] += 1
        self._note_for_complaint(outcome)
        if outcome.disposition is None or outcome.disposition in NO_VERDICT:
            return
        answered = outcome.disposition in ANSWERED
        weekday, hour = local_slot(at, outcome.zone)
        for cell in (self.hour[hour], self.day[weekday]):
            cell[0] += answered
            cell[1] += 1
        counts["answered"] += answered
        counts["opt_outs"] += outcome.disposition == D.OPTED_OUT

    def _note_for_complaint(self, outcome: Outcome) -> None:
        complained = self.complaints_of.get(outcome.e164)
        if complained is None or outcome.placed_at >= complained:
            return
        latest = self.before_complaint.get(outcome.e164)
        if latest is None or outcome.placed_at >= latest[0]:
            self.before_complaint[outcome.e164] = (outcome.placed_at, outcome.script)


def tune(
    outcomes: Iterable[Outcome],
    suppressions: Iterable[SuppressionFact],
    sources: Iterable[SourceFigures],
    *,
    state: CampaignState,
    settings: TuningSettings | None = None,
) -> Tuning:
    """The figures of a campaign's attempt log and the changes they support."""
    settings = settings or TuningSettings()
    complaints: dict[str, datetime] = {}
    for fact in suppressions:
        if is_complaint(fact.reason) and (
                fact.e164 not in complaints or fact.created_at < complaints[fact.e164]):
            complaints[fact.e164] = fact.created_at
    tally = _Tally(complaints)
    for outcome in outcomes:
        tally.add(outcome)
    complained = Counter(script for _, script in tally.before_complaint.values())
    scripts = tuple(
        _script_figures(name, counts, complained[name], settings)
        for name, counts in sorted(tally.script.items())
    )
    verdicts = tuple(SourceVerdict(figures=f, flagged=f.share > settings.max_invalid_share)
                     for f in sorted(sources, key=lambda f: f.source))
    by_hour = tuple(Rate(a, n) for a, n in tally.hour)
    hours_change, notes = propose_hours(by_hour, state.hours, settings.min_attempts)
    script_changes, script_notes = _retire_scripts(scripts, state, settings)
    source_change, source_notes = _stop_sources(verdicts, state, settings)
    changes = tuple(c for c in (hours_change, script_changes, source_change) if c is not None)
    return Tuning(
        attempts=tally.attempts,
        overall=Rate(sum(a for a, _ in tally.hour), sum(n for _, n in tally.hour)),
        first_at=tally.first_at, last_at=tally.last_at,
        by_hour=by_hour, by_weekday=tuple(Rate(a, n) for a, n in tally.day),
        scripts=scripts, sources=verdicts, changes=changes,
        notes=(*notes, *script_notes, *source_notes),
    )


def _script_figures(name: str, counts: Counter[str], complaints: int,
                    settings: TuningSettings) -> ScriptFigures:
    answered = counts["answered"]
    worst = max(counts["opt_outs"], complaints) / answered if answered else 0.0
    return ScriptFigures(script=name, attempts=counts["attempts"], answered=answered,
                         opt_outs=counts["opt_outs"], complaints=complaints,
                         flagged=worst > settings.max_optout_rate)


def _retire_scripts(scripts: Sequence[ScriptFigures], state: CampaignState,
                    settings: TuningSettings) -> tuple[Change | None, list[str]]:
    retire: list[ScriptFigures] = []
    notes: list[str] = []
    for figures in scripts:
        if not figures.flagged or figures.script in state.retired_scripts:
            continue
        name = figures.script or "(no script)"
        if not figures.script or figures.script == state.default_script:
            notes.append(f"script {name!r} is flagged but is the campaign's own script, "
                         "which retired scripts fall back to: revise it rather than retire it")
        elif figures.answered < settings.min_attempts:
            notes.append(f"script {name!r} is flagged on only {figures.answered} answered "
                         f"calls (fewer than {settings.min_attempts}): not retired yet")
        else:
            retire.append(figures)
    if not retire:
        return None, notes
    why = "; ".join(
        f"{f.script}: {f.opt_outs} opt-outs ({f.opt_out_rate:.2%}) and {f.complaints} "
        f"complaints ({f.complaint_rate:.2%}) in {f.answered} answered calls"
        for f in retire)
    why += f"; the limit is {settings.max_optout_rate:.2%}"
    return Change(field="retired_scripts", op="add",
                  value=tuple(f.script for f in retire), why=why), notes


def _stop_sources(sources: Sequence[SourceVerdict], state: CampaignState,
                  settings: TuningSettings) -> tuple[Change | None, list[str]]:
    stop: list[SourceFigures] = []
    notes: list[str] = []
    for verdict in sources:
        figures = verdict.figures
        if not verdict.flagged or figures.source in state.stopped_sources:
            continue
        if figures.rows < settings.min_attempts:
            notes.append(f"source {figures.source!r} is flagged on only {figures.rows} rows "
                         f"(fewer than {settings.min_attempts}): not stopped yet")
        else:
            stop.append(figures)
    still_dialed = {v.figures.source for v in sources} - state.stopped_sources
    if stop and still_dialed <= {f.source for f in stop}:
        keep = min(stop, key=lambda f: (f.share, f.source))
        stop.remove(keep)
        notes.append(f"source {keep.source!r} is flagged but is the last one still dialed: "
                     "kept, so the campaign goes on (stop it by hand if it must)")
    if not stop:
        return None, notes
    why = "; ".join(f"{f.source}: {f.share:.1%} of {f.rows} rows invalid at intake or dead"
                    for f in stop)
    why += f"; the limit is {settings.max_invalid_share:.1%}"
    return Change(field="stopped_sources", op="add",
                  value=tuple(f.source for f in stop), why=why), notes
