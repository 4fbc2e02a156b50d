"""`dialer export attempts`: the outcome log, for spreadsheets and data pipelines."""

from __future__ import annotations

import csv
import enum
import json
import sys
from typing import Annotated

import typer

from dialer.cli.common import DbOption, store_at
from dialer.store.records import ATTEMPT_FIELDS

app = typer.Typer(help="Export the outcome log.", no_args_is_help=True)

FIELDS = ATTEMPT_FIELDS


class Format(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


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
                sys.stdout.write(json.dumps(row.to_record(), ensure_ascii=False) + "\n")
            return
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            record = row.to_record()
            record["callee_timezones"] = " ".join(row.callee_timezones)
            writer.writerow(record)
