"""`dialer suppress add|remove|list`: who must never be called."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from dialer.cli.common import DbOption, JsonOption, RegionOption, actor, stdout, store_at
from dialer.cli.targets import Rejected, numbers_in
from dialer.clock import SystemClock
from dialer.errors import UsageError
from dialer.store import SuppressionScope, UnitOfWork
from rules.phone import mask

app = typer.Typer(help="Manage do-not-call suppressions.", no_args_is_help=True)

TargetArg = Annotated[str, typer.Argument(help="A phone number, or a CSV/XLSX file of them.")]
ScopeOption = Annotated[
    SuppressionScope, typer.Option("--scope", help="global: never called by any campaign; "
                                   "campaign: not by --campaign.")
]
CampaignOption = Annotated[str | None, typer.Option("--campaign", help="For --scope campaign.")]
ColumnOption = Annotated[str | None, typer.Option("--column", help="Phone column of a file.")]
ByOption = Annotated[str | None, typer.Option("--by", help="Who, for the audit log.")]


def _check_scope(scope: SuppressionScope, campaign: str | None) -> None:
    if scope is SuppressionScope.CAMPAIGN and not campaign:
        raise UsageError("--scope campaign needs --campaign NAME")
    if scope is SuppressionScope.GLOBAL and campaign:
        raise UsageError("--campaign goes with --scope campaign; a global suppression "
                         "applies to every campaign")


@app.command("add")
def add(
    target: TargetArg,
    scope: ScopeOption = SuppressionScope.GLOBAL,
    campaign: CampaignOption = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (opt-out, complaint, "
                                        "regulator list, ...).")] = "manual",
    region: RegionOption = "CN",
    column: ColumnOption = None,
    db: DbOption = None,
    by: ByOption = None,
) -> None:
    """Suppress a number or every number in a file (in one transaction)."""
    _check_scope(scope, campaign)
    now, who = SystemClock().now(), actor(by)

    def add_one(uow: UnitOfWork, e164: str) -> bool:
        return uow.add_suppression(e164, scope=scope, campaign=campaign, reason=reason,
                                   actor=who, now=now)

    added, existing, rejected = _for_each_number(db, target, region, column, add_one)
    stdout.print(f"suppressed {added} number(s) ({scope.value}); {existing} already were")
    _report_rejected(rejected)


@app.command("remove")
def remove(
    target: TargetArg,
    scope: ScopeOption = SuppressionScope.GLOBAL,
    campaign: CampaignOption = None,
    region: RegionOption = "CN",
    column: ColumnOption = None,
    db: DbOption = None,
    by: ByOption = None,
) -> None:
    """Lift a suppression (audited)."""
    _check_scope(scope, campaign)
    now, who = SystemClock().now(), actor(by)

    def remove_one(uow: UnitOfWork, e164: str) -> bool:
        return uow.remove_suppression(e164, scope=scope, campaign=campaign, actor=who, now=now)

    removed, missing, rejected = _for_each_number(db, target, region, column, remove_one)
    stdout.print(f"removed {removed} suppression(s); {missing} number(s) were not suppressed "
                 f"in that scope")
    _report_rejected(rejected)


@app.command("list")
def list_(
    scope: Annotated[SuppressionScope | None, typer.Option("--scope")] = None,
    campaign: CampaignOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
    masked: Annotated[bool, typer.Option("--mask/--no-mask", help="Mask numbers.")] = False,
) -> None:
    """List suppressions."""
    with store_at(db) as store, store.read() as uow:
        rows = uow.list_suppressions(scope=scope, campaign=campaign)
    show = mask if masked else (lambda number: number)
    if json_out:
        for row in rows:
            print(json.dumps({"e164": show(row.e164), "scope": row.scope.value,
                              "campaign": row.campaign or None, "reason": row.reason,
                              "created_at": row.created_at.isoformat(),
                              "created_by": row.created_by}, ensure_ascii=False))
        return
    table = Table(title=f"{len(rows)} suppression(s)")
    for name in ("number", "scope", "campaign", "reason", "since", "by"):
        table.add_column(name)
    for row in rows:
        table.add_row(show(row.e164), row.scope.value, row.campaign or "", row.reason,
                      row.created_at.strftime("%Y-%m-%d %H:%M"), row.created_by)
    stdout.print(table)


def _for_each_number(
    db: str | None, target: str, region: str, column: str | None,
    change: Callable[[UnitOfWork, str], bool],
) -> tuple[int, int, list[Rejected]]:
    """Apply `change` to every number of `target` in one transaction: (changed, unchanged,
    rows that hold no valid number)."""
    changed = unchanged = 0
    rejected: list[Rejected] = []
    with store_at(db) as store, store.write() as uow:
        for item in numbers_in(target, region.upper(), column):
            if isinstance(item, Rejected):
                rejected.append(item)
            elif change(uow, item):
                changed += 1
            else:
                unchanged += 1
    return changed, unchanged, rejected


def _report_rejected(rejected: list[Rejected]) -> None:
    if not rejected:
        return
    shown = ", ".join(f"row {r.row} ({r.reason})" for r in rejected[:10])
    more = f" and {len(rejected) - 10} more" if len(rejected) > 10 else ""
    stdout.print(f"[yellow]skipped {len(rejected)} row(s) that hold no valid number: "
                 f"{shown}{more}[/]")
