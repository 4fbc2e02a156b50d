"""`dialer run CAMPAIGN.yaml`: run a campaign end to end.

On the simulated network (the default) in simulated time; with `telephony: sip` over the
campaign's trunks in real time, with the same live display and report.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from dialer.cli.common import (
    DbOption,
    JsonOption,
    actor,
    region_zone,
    stderr,
    stdout,
    stop_on_signals,
    store_at,
)
from dialer.clock import Clock, OffsetClock, SystemClock
from dialer.config import load_campaign
from dialer.config.campaign import Campaign, Telephony
from dialer.config.fields import parse_duration
from dialer.engine.core import Engine
from dialer.engine.realtime import RealtimeOptions, run_realtime
from dialer.engine.report import RunReport
from dialer.engine.runs import import_campaign_leads
from dialer.engine.simulate import SimOptions, run_simulated
from dialer.engine.sip import SipRunOptions, sip_backend_factory
from dialer.engine.staff import AgentState
from dialer.errors import UsageError
from dialer.sim.scenario import Scenario, default_scenario, load_scenario
from dialer.store import Store


def run(
    campaign_file: Annotated[Path, typer.Argument(help="The campaign YAML.")],
    db: DbOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated world.")] = 1,
    json_out: JsonOption = False,
    scenario: Annotated[Path | None, typer.Option("--scenario", help="Simulated-network "
                                                  "scenario YAML (default: built in).")] = None,
    hours: Annotated[float, typer.Option("--hours", help="How long the campaign dials, in "
                                         "hours (simulated network).")] = 8.0,
    for_: Annotated[str | None, typer.Option("--for", help="How long the campaign dials, "
                                             "e.g. 90s, 10m, 2h (overrides --hours; over "
                                             "SIP the default is until no lead is due).")
                    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="Start, ISO 8601 (default: "
                                              "the scenario's start; over SIP now). Over SIP "
                                              "the run's clock then reads as if from that "
                                              "moment: for QA runs, never for production.")
                     ] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="SIP media worker "
                                                "processes (default: enough for the calls "
                                                "the campaign can have up).")] = None,
    asr_model: Annotated[Path | None, typer.Option("--asr-model", help="A vosk model folder "
                                                   "for the scripts' keywords (SIP robocall; "
                                                   "English needs none).")] = None,
) -> None:
    """Run a campaign and print what happened: on the simulated network, or over real SIP
    when the campaign says `telephony: sip`."""
    campaign = load_campaign(campaign_file)
    duration = _duration(for_)
    with store_at(db) as store:
        if campaign.telephony is Telephony.SIP:
            if scenario is not None:
                raise UsageError("--scenario is for the simulated network; this campaign "
                                 "has telephony: sip")
            sip = SipRunOptions(workers=workers, campaign_file=campaign_file,
                                asr_model=asr_model)
            report = _run_sip(store, campaign, sip, duration, start, json_out)
        else:
            world = load_scenario(scenario) if scenario is not None else default_scenario()
            began = _start(start, campaign, world, store)
            _import_leads(store, campaign, began)
            _remember(store, campaign, campaign_file, began)
            options = SimOptions(start=began, duration=duration or timedelta(hours=hours),
                                 seed=seed)
            if json_out or not stderr.is_terminal:
                report = run_simulated(store, campaign, world, options)
            else:
                report = _run_live(lambda show: run_simulated(store, campaign, world, options,
                                                              on_progress=show))
    if json_out:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_report(report, simulated=campaign.telephony is Telephony.SIMULATED)


def _duration(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--for {text!r}: {exc}") from None
    if duration <= timedelta(0):
        raise UsageError(f"--for {text!r}: must be more than zero")
    return duration


def _remember(store: Store, campaign: Campaign, campaign_file: Path, now: datetime) -> None:
    with store.write() as uow:  # `dialer rules explain --campaign NAME` finds the file
        campaign_id = uow.ensure_campaign(campaign.name, default_region=campaign.region,
                                          now=now)
        uow.remember_campaign(campaign_id, file=str(campaign_file.resolve()))


def _run_sip(store: Store, campaign: Campaign, sip: SipRunOptions,
             duration: timedelta | None, start: str | None, json_out: bool) -> RunReport:
    clock: Clock = SystemClock()
    if start is not None:
        clock = OffsetClock(_parse_start(start, campaign))
    # The trunks are checked before anything is stored.
    factory = sip_backend_factory(campaign, clock.now, sip)
    began = clock.now()
    _import_leads(store, campaign, began)
    assert sip.campaign_file is not None
    _remember(store, campaign, sip.campaign_file, began)
    options = RealtimeOptions(duration=duration)
    stop, hurry = threading.Event(), threading.Event()

    def stopping() -> None:
        stderr.print("stopping: no new calls; the calls up end by themselves (Ctrl-C again "
                     "to hang up at once)")

    with stop_on_signals(stop, stopping, hurry):
        if json_out or not stderr.is_terminal:
            return run_realtime(store, campaign, factory, options, clock=clock, stop=stop,
                                hurry=hurry)
        return _run_live(lambda show: run_realtime(store, campaign, factory, options,
                                                   clock=clock, on_progress=show, stop=stop,
                                                   hurry=hurry), live=True)


def _parse_start(text: str, campaign: Campaign) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--start {text!r}: expected ISO 8601 such as 2026-11-25T10:00"
                         ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=region_zone(campaign.region))


def _start(text: str | None, campaign: Campaign, world: Scenario, store: Store) -> datetime:
    """`--start` (local to the campaign's region unless it says); else the scenario's start,
    moved on to the day after the campaign's last attempt, so a rerun continues it."""
    if text is None:
        with store.read() as uow:
            campaign_id = uow.campaign_id(campaign.name)
            last = uow.last_attempt_at(campaign_id) if campaign_id is not None else None
        if last is None or last < world.start:
            return world.start
        return world.start + timedelta(days=(last - world.start).days + 1)
    return _parse_start(text, campaign)


def _import_leads(store: Store, campaign: Campaign, now: datetime) -> None:
    summary = import_campaign_leads(store, campaign, now=now, actor=actor())
    if summary is not None and not summary.already_imported:
        stderr.print(f"imported {summary.accepted} of {summary.rows_read} rows from "
                     f"{summary.file}")


Progress = Callable[[Engine, datetime], None]


def _run_live(run: Callable[[Progress], RunReport], *, live: bool = False) -> RunReport:
    """Run with a live view on the terminal, refreshed at most ten times a second."""
    last = 0.0
    with Live(console=stderr, transient=True, refresh_per_second=8) as view:

        def show(engine: Engine, now: datetime) -> None:
            nonlocal last
            if time.monotonic() - last > 0.1:
                view.update(_live_view(engine, now, live=live))
                last = time.monotonic()

        return run(show)


def _live_view(engine: Engine, now: datetime, *, live: bool) -> Group:
    when = f"{now:%Y-%m-%d %H:%M:%S} (live)" if live else f"{now:%Y-%m-%d %H:%M} (simulated)"
    table = Table(title=f"{engine.settings.campaign}: {when}")
    for name in ("calls in flight", "agents", "abandon rate (run)", "in the window",
                 "dispositions"):
        table.add_column(name)
    agents = ", ".join(f"{s.value} {engine.staff.count(s)}" for s in AgentState
                       if engine.staff.count(s))
    top = ", ".join(f"{d.value} {n}" for d, n in engine.outcomes.dispositions.most_common(5))
    window = engine.abandonment
    table.add_row(str(len(engine.calls)), agents or "-",
                  f"{engine.outcomes.abandon_rate:.2%}",
                  f"{window.figures(now).rate:.2%} ({window.window / timedelta(hours=1):g} h)",
                  top or "-")
    trunks = Table(title="Trunks")
    for name in ("trunk", "state", "channels", "failed (window)"):
        trunks.add_column(name)
    for row in engine.lines.status(now):
        style = {"out": "red", "probing": "yellow"}.get(row.state.value, "green")
        trunks.add_row(row.trunk, f"[{style}]{row.state.value}[/]",
                       f"{row.channels_in_use}/{row.channels}",
                       f"{row.failures_in_window}/{row.calls_in_window}")
    return Group(table, trunks)


def _print_report(report: RunReport, *, simulated: bool = True) -> None:
    how = f"seed {report.seed}" if simulated else "SIP"
    summary = Table(title=f"Campaign {report.campaign} ({report.mode}, {how})",
                    show_header=False)
    occupancy = "-" if report.agent_occupancy is None else f"{report.agent_occupancy:.1%}"
    for key, value in (
        ("simulated" if simulated else "ran",
         f"{report.started_at:%Y-%m-%d %H:%M} → {report.ended_at:%H:%M}"),
        ("attempts", str(report.attempts)), ("contacts", str(report.contacts)),
        ("abandon rate", f"{report.abandon_rate:.2%}"),
        ("abandon rate over the regulator's window",
         f"{report.abandon_window['rate']:.2%} of {report.abandon_window['live_answers']:g}"
         f" live answers in {report.abandon_window['window_hours']:g} h"
         f" (cap {report.abandon_window['cap']:.0%})"),
        ("agent occupancy", occupancy),
        ("calls per hour", f"{report.calls_per_hour:.0f}"),
        ("recovered after a stop", f"{report.recovered['attempts_closed']} attempts"),
    ):
        summary.add_row(key, value)
    stdout.print(summary)
    dispositions = Table(title="Dispositions")
    dispositions.add_column("disposition")
    dispositions.add_column("attempts", justify="right")
    for name, count in report.dispositions.items():
        dispositions.add_row(name, str(count))
    stdout.print(dispositions)
    if report.line_events:
        events = Table(title="Trunks out of service and back")
        for name in ("at", "trunk", "from", "to", "why"):
            events.add_column(name)
        for event in report.line_events:
            events.add_row(event["at"][11:19], event["trunk"], event["from"], event["to"],
                           event["reason"])
        stdout.print(events)
    if report.skipped_by_rule:
        skipped = Table(title="Leads held back when due, by contact rule")
        skipped.add_column("rule")
        skipped.add_column("leads", justify="right")
        for name, count in report.skipped_by_rule.items():
            skipped.add_row(name, str(count))
        stdout.print(skipped)
    sources = Table(title="Invalid numbers per list source")
    for name in ("source", "rows", "invalid at intake", "dead numbers", "share"):
        sources.add_column(name, justify="left" if name == "source" else "right")
    for name, entry in report.sources.items():
        sources.add_row(name, str(int(entry["rows"])), str(int(entry["invalid_at_intake"])),
                        str(int(entry["dead_numbers"])), f"{entry['share']:.1%}")
    stdout.print(sources)
