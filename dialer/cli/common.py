"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated
from zoneinfo import ZoneInfo

import phonenumbers
import typer
from phonenumbers import timezone as pn_timezone
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from dialer.store import Store, default_url, open_store

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Store URL (sqlite:///file.db or postgresql://...). "
                 "Default: $DIALER_DB or sqlite:///dialer.db."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
RegionOption = Annotated[
    str, typer.Option("--region", help="Default region (ISO 3166) for numbers without +country.")
]

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def actor(explicit: str | None = None) -> str:
    """Who is doing this, for the audit log."""
    if explicit:
        return explicit
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def store_at(url: str | None) -> Iterator[Store]:
    store = open_store(url or default_url())
    try:
        yield store
    finally:
        store.close()


@contextmanager
def byte_progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; a no-op otherwise."""
    if not (enabled and stderr.is_terminal and not os.environ.get("CI")):
        yield None
        return
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def region_zone(region: str) -> ZoneInfo:
    """The main time zone of a region (UTC when phonenumbers knows none)."""
    example = phonenumbers.example_number(region)
    zones = pn_timezone.time_zones_for_number(example) if example else ()
    return ZoneInfo(zones[0] if zones and zones[0] != "Etc/Unknown" else "UTC")
