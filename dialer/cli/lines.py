"""`dialer lines status` and `dialer lines import-marks`: trunks and caller IDs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from dialer.cli.common import (
    DbOption,
    JsonOption,
    actor,
    at_option,
    region_zone,
    resolve_campaign,
    stdout,
    store_at,
)
from dialer.clock import SystemClock
from dialer.engine.build import line_plan
from dialer.engine.runs import load_caller_id_history
from dialer.errors import UsageError
from lines.callerid_health import MarksFileError, parse_marks_csv
from lines.trunks import TrunkStatus
from rules.phone import mask

app = typer.Typer(help="Trunks and caller IDs: their state, and spam marks.",
                  no_args_is_help=True)


@app.command("status")
def status(
    campaign: Annotated[str, typer.Option("--campaign", help="A campaign by name or file.")],
    db: DbOption = None,
    at: Annotated[str | None, typer.Option("--at", help="When, ISO 8601 (default: now).")
                  ] = None,
    json_out: JsonOption = False,
) -> None:
    """Each trunk's state (from its latest change) and each caller ID's state, calls today
    against its cap, recent answer rate and spam marks."""
    with store_at(db) as store:
        config = resolve_campaign(store, campaign)
        zone = region_zone(config.region)
        now = at_option(at, zone)
        plan = line_plan(config)
        load_caller_id_history(store, plan, now)
        with store.read() as uow:
            events = uow.line_events(config.name, until=now, kind="trunk")
    plan.advance(now)
    trunks = _trunks(plan.status(now), events)
    callers = plan.callers.status(now.date()) if plan.callers is not None else []
    rows: list[dict[str, Any]] = [
        {"number": mask(r.number), "state": r.state.value, "sub_pool": r.sub_pool.value,
         "kind": r.kind.value, "city": r.city, "calls_today": r.calls_today,
         "cap_today": r.cap_today, "recent_answer_rate": r.recent_answer_rate,
         "marks": r.marks} for r in callers]
    if json_out:
        print(json.dumps({"campaign": config.name, "at": now.isoformat(), "trunks": trunks,
                          "caller_ids": rows}, ensure_ascii=False))
        return
    _print(trunks, rows)


def _trunks(rows: tuple[TrunkStatus, ...], events: list[dict[str, Any]]
            ) -> list[dict[str, Any]]:
    latest = {str(e["subject"]): e for e in events}  # oldest first: the last one stays
    out = []
    for row in rows:
        event = latest.get(row.trunk)
        out.append({"trunk": row.trunk, "tier": row.tier, "channels": row.channels,
                    "state": str(event["after"]) if event else "in_service",
                    "since": event["at"].isoformat() if event else None,
                    "why": str(event["reason"]) if event else ""})
    return out


def _print(trunks: list[dict[str, Any]], callers: list[dict[str, Any]]) -> None:
    table = Table(title="Trunks")
    for name in ("trunk", "tier", "channels", "state", "since", "why"):
        table.add_column(name)
    for row in trunks:
        table.add_row(*(str(row[k] or "-") for k in ("trunk", "tier", "channels", "state",
                                                     "since", "why")))
    stdout.print(table)
    table = Table(title="Caller IDs")
    for name in ("number", "state", "pool", "city", "today", "answer rate", "marks"):
        table.add_column(name)
    for row in callers:
        rate = row["recent_answer_rate"]
        table.add_row(str(row["number"]), str(row["state"]), str(row["sub_pool"]),
                      str(row["city"]), f"{row['calls_today']}/{row['cap_today']}",
                      "-" if rate is None else f"{rate:.0%}", str(row["marks"]))
    stdout.print(table if callers else "(the campaign lists no caller IDs of its own)")


@app.command("import-marks")
def import_marks(
    file: Annotated[Path, typer.Argument(help="CSV from a marking service: number, count.")],
    db: DbOption = None,
    region: Annotated[str, typer.Option("--region", help="Region of national numbers.")
                      ] = "CN",
    by: Annotated[str | None, typer.Option("--by", help="Who, for the audit log.")] = None,
) -> None:
    """Load spam marks (as tallies: a later report replaces an earlier one)."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {file}: {exc}") from None
    try:
        marks = parse_marks_csv(text, default_region=region)
    except MarksFileError as exc:
        raise UsageError(f"{file.name}: {exc}") from None
    with store_at(db) as store, store.write() as uow:
        uow.add_caller_id_marks(marks, source=file.name, actor=actor(by),
                                now=SystemClock().now())
    stdout.print(f"{len(marks)} numbers, {sum(marks.values())} marks loaded from {file.name}")
