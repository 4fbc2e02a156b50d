"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import getpass
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated
from zoneinfo import ZoneInfo

import phonenumbers
import typer
from phonenumbers import timezone as pn_timezone
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from dialer.config import load_campaign
from dialer.config.campaign import Campaign
from dialer.config.compliance import is_profile_path
from dialer.errors import UsageError
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


def resolve_campaign(store: Store, reference: str) -> Campaign:
    """A campaign by the name the store knows it by (the file it was last run from), or
    by its YAML file."""
    if is_profile_path(reference) or Path(reference).is_file():
        return load_campaign(reference)
    with store.read() as uow:
        settings = uow.campaign_settings(reference)
        names = uow.campaign_names()
    if settings is None:
        known = ", ".join(names) or "none yet"
        raise UsageError(f"no campaign called {reference!r} in the store (known: {known}); "
                         "or give the campaign's YAML file")
    file = settings.get("file")
    if not file or not Path(file).is_file():
        raise UsageError(f"campaign {reference!r} was run from {file or 'an unknown file'}, "
                         "which is not there now: give the campaign's YAML file instead")
    return load_campaign(file)


def at_option(text: str | None, zone: ZoneInfo) -> datetime:
    """An `--at` time in `zone` (now when not given; a time without a zone is in `zone`)."""
    if text is None:
        return datetime.now(UTC).astimezone(zone)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at: {text!r} is not an ISO 8601 time "
                         "(such as 2026-11-24T10:30 or 2026-11-24T10:30+08:00)") from None
    return parsed.astimezone(zone) if parsed.tzinfo else parsed.replace(tzinfo=zone)


@contextmanager
def stop_on_signals(stop: threading.Event, on_stop: Callable[[], None] | None = None,
                    hurry: threading.Event | None = None) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM sets `stop` (and calls `on_stop`) instead of
    interrupting; with `hurry`, the second sets it; the one after interrupts as usual.
    Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def restore() -> None:
        for sig, old in previous.items():
            if old is not None:
                signal.signal(sig, old)

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and hurry is not None:
            hurry.set()
            restore()
            return
        stop.set()
        if hurry is None:
            restore()
        if on_stop is not None:
            on_stop()

    for sig in signals:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        restore()
