"""`dialer numbers status|set|import`: what we know about a number's reachability."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dialer.cli.common import DbOption, JsonOption, RegionOption, actor, stdout, store_at
from dialer.cli.targets import parse_one
from dialer.clock import SystemClock
from dialer.numbers import CsvStatusProvider
from rules.number_status import NumberStatus, RecheckPolicy

app = typer.Typer(help="Number status: vacant, suspended, powered off, ...", no_args_is_help=True)


@app.command("status")
def status(
    number: Annotated[str, typer.Argument(help="The phone number.")],
    region: RegionOption = "CN",
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show a number's status, suppressions and whether it may be dialed now."""
    info = parse_one(number, region.upper())
    now = SystemClock().now()
    with store_at(db) as store, store.read() as uow:
        record = uow.get_number_status(info.e164)
        suppressions = uow.list_suppressions(e164=info.e164)
    report = {
        "e164": info.e164,
        "type": info.number_type.value,
        "region": info.region,
        "carrier": info.carrier or None,
        "timezones": list(info.timezones),
        "status": record.status.value if record else NumberStatus.UNKNOWN.value,
        "observed_at": record.observed_at.isoformat() if record else None,
        "source": record.source if record else None,
        "recheck_at": record.recheck_at.isoformat() if record and record.recheck_at else None,
        "known_dead": bool(record and record.blocks_dialing(now)),
        "suppressed": [{"scope": s.scope.value, "campaign": s.campaign or None,
                        "reason": s.reason} for s in suppressions],
    }
    if json_out:
        print(json.dumps(report, ensure_ascii=False))
        return
    table = Table(show_header=False, title=info.e164)
    for key, value in report.items():
        table.add_row(key, json.dumps(value, ensure_ascii=False) if not isinstance(value, str)
                      else value)
    stdout.print(table)


@app.command("set")
def set_(
    number: Annotated[str, typer.Argument(help="The phone number.")],
    new_status: Annotated[NumberStatus, typer.Argument(metavar="STATUS")],
    source: Annotated[str, typer.Option("--source", help="Who observed it.")] = "manual",
    detail: Annotated[str, typer.Option("--detail")] = "",
    region: RegionOption = "CN",
    db: DbOption = None,
    by: Annotated[str | None, typer.Option("--by")] = None,
) -> None:
    """Record an observed status by hand (audited)."""
    info = parse_one(number, region.upper())
    record = RecheckPolicy().record(info.e164, new_status, SystemClock().now(), source, detail)
    with store_at(db) as store, store.write() as uow:
        uow.put_number_status(record, actor=actor(by))
    recheck = record.recheck_at.isoformat() if record.recheck_at else "never"
    stdout.print(f"{info.e164}: {new_status.value}, recheck {recheck}")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV/XLSX export of a number look-up service.")],
    source: Annotated[str, typer.Option("--source", help="The service's name.")] = "lookup-csv",
    region: RegionOption = "CN",
    db: DbOption = None,
    by: Annotated[str | None, typer.Option("--by")] = None,
) -> None:
    """Load number statuses from a look-up service's export (one transaction)."""
    provider = CsvStatusProvider(file, name=source, region=region.upper())
    now, who = SystemClock().now(), actor(by)
    counts: dict[str, int] = {}
    with store_at(db) as store, store.write() as uow:
        for record in provider.statuses(None, now=now, policy=RecheckPolicy()):
            uow.put_number_status(record, actor=who)
            counts[record.status.value] = counts.get(record.status.value, 0) + 1
    stdout.print(f"stored {sum(counts.values())} status(es): "
                 + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if provider.skipped:
        shown = ", ".join(f"row {s.row} ({s.reason})" for s in provider.skipped[:10])
        stdout.print(f"[yellow]skipped {len(provider.skipped)} row(s): {shown}[/]")
