"""`dialer leads check` and `dialer leads import`."""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dialer.cli.common import (
    DbOption,
    JsonOption,
    actor,
    byte_progress,
    stderr,
    stdout,
    store_at,
)
from dialer.clock import SystemClock
from dialer.config import load_campaign
from dialer.engine.build import segments_of
from dialer.errors import DialerError
from dialer.intake.service import (
    IntakeOptions,
    IntakeSummary,
    StoreFactsSource,
    checked_lines,
    dirty_rows,
    import_file,
    rows_read,
)
from dialer.store import ReadUnitOfWork
from rules.phone import DEFAULT_ALLOWED_TYPES, NumberType
from rules.prefilter import REJECTIONS, Verdict
from rules.segments import Segment

app = typer.Typer(help="Check and import lead lists.", no_args_is_help=True)

FileArg = Annotated[
    Path, typer.Argument(help="CSV (UTF-8, UTF-16, GBK/GB18030) or XLSX lead file.")
]
ColumnOption = Annotated[
    str | None, typer.Option("--column", help="Phone column: header name or 1-based index.")
]
SheetOption = Annotated[str | None, typer.Option("--sheet", help="XLSX sheet name.")]
TypesOption = Annotated[
    list[NumberType] | None,
    typer.Option("--allow-type", help="Number type to accept (repeat). Default: mobile, "
                 "fixed_line, fixed_line_or_mobile."),
]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", help="Screening processes (default: one per core).")
]


@app.command("check")
def check(
    file: FileArg,
    region: Annotated[str, typer.Option("--region", help="Default region.")] = "CN",
    json_out: JsonOption = False,
    db: Annotated[
        str | None, typer.Option("--db", help="Also apply suppressions and number status "
                                 "from this store.")
    ] = None,
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="With --db: also its scoped "
                                 "suppressions and existing leads.")
    ] = None,
    column: ColumnOption = None,
    sheet: SheetOption = None,
    allow_type: TypesOption = None,
    workers: WorkersOption = None,
) -> None:
    """Give every row's verdict without storing anything (one JSON object per row with --json)."""
    options = IntakeOptions(region=region.upper(), column=column, sheet=sheet,
                            allowed_types=frozenset(allow_type or DEFAULT_ALLOWED_TYPES),
                            workers=workers)
    with ExitStack() as stack:
        facts = None
        if db is not None:
            store = stack.enter_context(store_at(db))
            uow = stack.enter_context(store.read())
            campaign_id = uow.campaign_id(campaign) if campaign else None
            facts = StoreFactsSource(uow, now=SystemClock().now(), campaign=campaign,
                                     campaign_id=campaign_id)
        progress = stack.enter_context(byte_progress("checking", not json_out))
        info, chunks = stack.enter_context(checked_lines(file, options, facts, progress))
        counts: Counter[Verdict] = Counter()
        for lines, verdicts in chunks:
            if json_out:
                sys.stdout.write("\n".join(lines) + "\n")
            else:
                counts.update(verdicts)
        if json_out:
            return
    summary = IntakeSummary(file=file.name, kind=info.kind, encoding=info.encoding,
                            source=file.stem, verdicts=counts, rows_read=sum(counts.values()))
    _print_summary(summary, title=f"{file.name}: check")


@app.command("import")
def import_(
    file: FileArg,
    campaign: Annotated[str, typer.Option("--campaign", help="Campaign name.")],
    source: Annotated[
        str | None, typer.Option("--source", help="List vendor (default: the file name).")
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Default region (default: the "
                                 "campaign's, else CN).")
    ] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
    column: ColumnOption = None,
    sheet: SheetOption = None,
    allow_type: TypesOption = None,
    workers: WorkersOption = None,
    by: Annotated[str | None, typer.Option("--by", help="Who, for the audit log.")] = None,
) -> None:
    """Import a lead file into a campaign: all of it, or (if it is broken) none of it."""
    now = SystemClock().now()
    with store_at(db) as store, store.write() as uow:
        options = IntakeOptions(
            region=(region or uow.campaign_region(campaign) or "CN").upper(),
            column=column, sheet=sheet,
            allowed_types=frozenset(allow_type or DEFAULT_ALLOWED_TYPES), workers=workers,
            segments=_segments(uow, campaign),
        )
        with byte_progress("importing", not json_out) as progress:
            summary = import_file(uow, file, campaign=campaign, source=source or file.stem,
                                  options=options, now=now, actor=actor(by), progress=progress)
        sources = _per_source(uow, campaign)
    if json_out:
        print(json.dumps({**summary.to_dict(), "sources": sources}, ensure_ascii=False))
        return
    title = f"{file.name} → campaign {campaign} (list {summary.list_id})"
    if summary.already_imported:
        title += ": this file was imported before; only new numbers were added"
    _print_summary(summary, title=title)
    _print_sources(sources)


def _segments(uow: ReadUnitOfWork, campaign: str) -> tuple[Segment, ...]:
    """The segments of the campaign file the store knows for `campaign` (none if none)."""
    settings = uow.campaign_settings(campaign) or {}
    file = settings.get("file")
    if not file:
        return ()
    try:
        return segments_of(load_campaign(file))
    except DialerError as exc:
        stderr.print(f"warning: leads not placed in segments: campaign file {file}: {exc}")
        return ()


def _per_source(uow: ReadUnitOfWork, campaign: str) -> dict[str, dict[str, float]]:
    """Totals per list source for the campaign: how many rows, how many dirty."""
    campaign_id = uow.campaign_id(campaign)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"lists": 0, "rows": 0,
                                                               "accepted": 0, "dirty": 0})
    for lead_list in uow.lists(campaign_id) if campaign_id is not None else []:
        summary = lead_list.summary
        accepted = summary.get("accepted", 0)
        entry = totals[lead_list.source]
        entry["lists"] += 1
        entry["rows"] += rows_read(summary)
        entry["accepted"] += accepted if isinstance(accepted, int) else 0
        entry["dirty"] += dirty_rows(summary)
    for entry in totals.values():
        entry["dirty_share"] = round(entry["dirty"] / entry["rows"], 4) if entry["rows"] else 0.0
    return dict(totals)


def _print_summary(summary: IntakeSummary, *, title: str) -> None:
    table = Table(title=title, show_header=True)
    table.add_column("verdict")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    total = summary.rows_read or 1
    table.add_row("read", str(summary.rows_read), "")
    table.add_row("[green]accepted[/]", str(summary.accepted),
                  f"{summary.accepted / total:.1%}")
    for verdict in REJECTIONS:
        count = summary.verdicts[verdict]
        if count:
            table.add_row(f"[red]{verdict.value}[/]", str(count), f"{count / total:.1%}")
    stdout.print(table)
    encoding = f", encoding {summary.encoding}" if summary.encoding else ""
    stdout.print(f"file kind {summary.kind}{encoding}, source {summary.source}")


def _print_sources(sources: dict[str, dict[str, float]]) -> None:
    table = Table(title="Per list source (whole campaign)")
    for name in ("source", "lists", "rows", "accepted", "dirty share"):
        table.add_column(name, justify="left" if name == "source" else "right")
    for name, entry in sorted(sources.items()):
        table.add_row(name, str(int(entry["lists"])), str(int(entry["rows"])),
                      str(int(entry["accepted"])), f"{entry['dirty_share']:.1%}")
    stdout.print(table)
