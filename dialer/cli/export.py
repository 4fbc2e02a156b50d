"""`dialer export attempts`: the outcome log, for spreadsheets and data pipelines."""

from __future__ import annotations

import csv
import enum
import json
import sys
from datetime import datetime
from typing import Annotated

import typer

from dialer.cli.common import DbOption, store_at
from dialer.store import AttemptRow

app = typer.Typer(help="Export the outcome log.", no_args_is_help=True)

#: The columns, in order (a public contract: add at the end, never rename).
FIELDS = ("attempt_id", "campaign", "lead_id", "e164", "list_source", "trunk", "caller_id",
          "placed_at", "answered_at", "ended_at", "sip_status", "disposition", "agent_id",
          "abandoned", "callee_timezones", "purpose", "script", "reason")


class Format(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def _record(row: AttemptRow) -> dict[str, object]:
    def utc(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value is not None else None

    return {
        "attempt_id": row.attempt_id, "campaign": row.campaign, "lead_id": row.lead_id,
        "e164": row.e164, "list_source": row.list_source, "trunk": row.trunk,
        "caller_id": row.caller_id, "placed_at": utc(row.placed_at),
        "answered_at": utc(row.answered_at), "ended_at": utc(row.ended_at),
        "sip_status": row.sip_status, "disposition": row.disposition,
        "agent_id": row.agent_id, "abandoned": row.abandoned,
        "callee_timezones": list(row.callee_timezones),
        "purpose": row.purpose, "script": row.script, "reason": row.reason,
    }


@app.command("attempts")
def attempts(
    db: DbOption = None,
    fmt: Annotated[Format, typer.Option("--format", help="csv or jsonl.")] = Format.CSV,
    campaign: Annotated[str | None, typer.Option("--campaign")] = None,
) -> None:
    """Every attempt with its outcome, oldest first (times in UTC, ISO 8601)."""
    with store_at(db) as store, store.read() as uow:
        rows = uow.attempt_rows(campaign)
        if fmt is Format.JSONL:
            for row in rows:
                sys.stdout.write(json.dumps(_record(row), ensure_ascii=False) + "\n")
            return
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            record = _record(row)
            record["callee_timezones"] = " ".join(row.callee_timezones)
            writer.writerow(record)
