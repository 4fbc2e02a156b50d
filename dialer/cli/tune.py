"""`dialer tune --campaign NAME`: learn from the attempt log, propose campaign changes.

Answer rate by the callee's local hour and weekday (Wilson 95 % intervals), opt-out and
complaint rates per script, invalid-number share per list source, and the changes they
support (see `rules.tuning`), written to `--out` (default `./tune-<campaign>/`):

- `report.json`: campaign, file, generated_at (the wall clock when tune ran), data_from
  and data_until (first and last attempt), settings, attempts (all in the log),
  attempts_without_verdict, answer_rate (answered, attempts, rate, low, high),
  answer_rate_by_hour (24 of hour, answered, attempts, rate, low, high),
  answer_rate_by_weekday (7 of weekday mon..sun and the same), scripts (script, attempts,
  answered, opt_outs, complaints, opt_out_rate, complaint_rate, flagged), sources
  (source, rows, invalid_at_intake, dead_numbers, share, flagged), changes, notes, files.
  `attempts` of a rate counts the attempts that reached a verdict: network_error,
  failed and open attempts are in neither side of an answer rate.
- `patch.yaml`: campaign, file, generated_at, data_until and `changes`, a list of
  {field, op (set | add), value, why}.
- `answer-rate-by-hour.png`, `answer-rate-by-day.png`.

`--apply` writes the changes into the campaign file (comments kept, `<file>.bak` beside
it) and records one `campaign.tune` audit entry.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dialer.cli.common import (
    DbOption,
    JsonOption,
    actor,
    resolve_campaign,
    stderr,
    stdout,
    store_at,
)
from dialer.cli.tune_files import TuneRun, change_data, write_all
from dialer.config.patch import apply_changes
from dialer.errors import UsageError
from dialer.store import Store
from dialer.tuning import tuning_of
from rules.tuning import Tuning, TuningSettings
from rules.tuning_hours import DAY_KEYS, Rate


def tune(
    campaign_ref: Annotated[str, typer.Option(
        "--campaign", help="The campaign: its name in the store, or its YAML file.")],
    db: DbOption = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for report.json, patch.yaml and the plots "
        "(default: ./tune-<campaign>).")] = None,
    apply: Annotated[bool, typer.Option(
        "--apply", help="Write the proposed changes into the campaign file "
        "(a .bak copy is kept) and record an audit entry.")] = False,
    json_out: JsonOption = False,
    min_attempts: Annotated[int, typer.Option(
        "--min-attempts", min=1, help="Least evidence to act on: attempts in an hour, "
        "answered calls of a script, rows of a source.")] = 30,
    max_invalid_share: Annotated[float, typer.Option(
        "--max-invalid-share", min=0.0, max=1.0,
        help="Flag a list source whose invalid share is above this.")] = 0.10,
    max_optout_rate: Annotated[float, typer.Option(
        "--max-optout-rate", min=0.0, max=1.0,
        help="Flag a script whose opt-out or complaint rate is above this.")] = 0.005,
) -> None:
    """Learn best hours, bad scripts and bad list sources from outcomes; propose changes."""
    settings = TuningSettings(min_attempts=min_attempts, max_optout_rate=max_optout_rate,
                              max_invalid_share=max_invalid_share)
    generated_at = datetime.now(UTC)  # the CLI's clock: when this report was made
    with store_at(db) as store:
        campaign = resolve_campaign(store, campaign_ref)
        run = TuneRun(campaign=campaign.name, file=campaign_file(store, campaign_ref),
                      generated_at=generated_at, settings=settings)
        tuning = tuning_of(store, campaign, settings)
        folder = out or Path(f"tune-{campaign.name}")
        report = write_all(folder, run, tuning)
        if json_out:
            print(json.dumps(report, ensure_ascii=False))
        else:
            _print_tables(tuning, folder)
        if apply:
            _apply(store, run, tuning, console=stderr if json_out else stdout)


def campaign_file(store: Store, reference: str) -> Path:
    """The YAML file of the campaign `reference` names (`resolve_campaign` checked it)."""
    if Path(reference).is_file():
        return Path(reference).resolve()
    with store.read() as uow:
        settings = uow.campaign_settings(reference) or {}
    return Path(str(settings["file"]))


def _apply(store: Store, run: TuneRun, tuning: Tuning, *, console: Console) -> None:
    if not tuning.changes:
        console.print("nothing to apply: the outcomes support no change")
        return
    if not run.file.is_file():
        raise UsageError(f"the campaign file {run.file} is not there: nothing applied")
    with store.write() as uow:  # the audit entry is rolled back if the file cannot be written
        uow.audit("campaign.tune", actor=actor(), subject=run.campaign, now=run.generated_at,
                  detail={"file": str(run.file), "data_until": tuning.last_at,
                          "changes": [change_data(c) for c in tuning.changes]})
        backup = apply_changes(run.file, tuning.changes)
    fields = ", ".join(change.field for change in tuning.changes)
    console.print(f"applied {fields} to {run.file} (the original is {backup.name})")


def _print_tables(tuning: Tuning, folder: Path) -> None:
    hours = _rate_table("Answer rate by callee local hour", "hour",
                        [(f"{h:02d}:00", r) for h, r in enumerate(tuning.by_hour) if r.trials])
    days = _rate_table("Answer rate by callee local weekday", "day",
                       [(DAY_KEYS[d], r) for d, r in enumerate(tuning.by_weekday) if r.trials])
    scripts = Table(title="Scripts")
    for column in ("script", "attempts", "answered", "opt-outs", "complaints", "opt-out rate",
                   "complaint rate", "flagged"):
        scripts.add_column(column)
    for s in tuning.scripts:
        scripts.add_row(s.script or "-", str(s.attempts), str(s.answered), str(s.opt_outs),
                        str(s.complaints), f"{s.opt_out_rate:.2%}", f"{s.complaint_rate:.2%}",
                        "yes" if s.flagged else "")
    sources = Table(title="List sources")
    for column in ("source", "rows", "invalid at intake", "dead", "share", "flagged"):
        sources.add_column(column)
    for v in tuning.sources:
        f = v.figures
        sources.add_row(f.source, str(f.rows), str(f.invalid_at_intake), str(f.dead_numbers),
                        f"{f.share:.1%}", "yes" if v.flagged else "")
    for table in (hours, days, scripts, sources):
        stdout.print(table)
    for change in tuning.changes:
        stdout.print(f"proposed: {change.op} {change.field} = {change_data(change)['value']}"
                     f"\n  because {change.why}")
    for note in tuning.notes:
        stdout.print(f"note: {note}")
    stdout.print(f"written to {folder}/")


def _rate_table(title: str, label: str, rows: list[tuple[str, Rate]]) -> Table:
    table = Table(title=title)
    for column in (label, "attempts", "answered", "rate", "95% interval"):
        table.add_column(column)
    for name, rate in rows:
        table.add_row(name, str(rate.trials), str(rate.successes), f"{rate.rate:.1%}",
                      f"{rate.low:.1%}-{rate.high:.1%}")
    return table
