"""`dialer simulate SCENARIO.yaml`: pacing what-ifs on the simulated network, over seeds.

A planning tool ("how many agents for this list?") and the pacers' comparison bench.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dialer.cli.common import JsonOption, stdout
from dialer.config import load_campaign
from dialer.config.campaign import DialMode
from dialer.engine.build import PACER_NAMES, abandon_cap, pacer_named
from dialer.engine.planning import (
    COMPARED,
    Job,
    PacerSummary,
    planning_campaign,
    run_jobs,
    summarise,
)
from dialer.errors import UsageError
from dialer.sim.scenario import load_scenario


def simulate(
    scenario_file: Annotated[Path, typer.Argument(help="The scenario YAML.")],
    pacer: Annotated[str | None, typer.Option("--pacer", help="One of: "
                                              + ", ".join(PACER_NAMES) + " (default: the "
                                              "campaign's, else predictive).")] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeded shifts per pacer.")] = 10,
    compare: Annotated[bool, typer.Option("--compare", help="Run every pacer ("
                                          + ", ".join(COMPARED) + ") on the same seeds.")
                       ] = False,
    agents: Annotated[int | None, typer.Option("--agents", min=1, help="Agents logged in "
                                               "(default: the scenario's team).")] = None,
    hours: Annotated[float, typer.Option("--hours", min=0.01, help="Hours of dialing.")] = 8.0,
    campaign_file: Annotated[Path | None, typer.Option("--campaign", help="Campaign YAML for "
                                                       "the dial settings (default: predictive,"
                                                       " 25 s ring, 2 s to connect, 3% cap).")
                             ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes.")
                       ] = min(2, os.cpu_count() or 1),
    json_out: JsonOption = False,
) -> None:
    """Simulate shifts on a scenario and print occupancy, abandon rate, talk minutes and
    dials per agent-hour, with 95% confidence intervals over the seeds."""
    world = load_scenario(scenario_file)
    campaign = load_campaign(campaign_file) if campaign_file is not None else None
    team = agents or (campaign.agents.count if campaign is not None else 0) \
        or world.agents.count
    world = replace(world, agents=replace(world.agents, count=team))
    if campaign is None:
        campaign = planning_campaign(team)
    else:
        campaign = replace(campaign, agents=replace(campaign.agents, count=team))
    if team == 0 and campaign.dial.mode is not DialMode.ROBOCALL:
        raise UsageError("no agents: the scenario's team and the campaign have none; "
                         "give --agents N")
    pacers: tuple[str | None, ...] = COMPARED if compare else (pacer,)
    if pacers != (None,) and campaign.dial.mode in (DialMode.ROBOCALL, DialMode.PREVIEW):
        raise UsageError(f"the campaign dials in {campaign.dial.mode.value} mode; --pacer and "
                         "--compare are for campaigns with agents dialing predictively")
    for name in pacers:
        if name is not None:
            pacer_named(name, campaign)  # an unknown name fails before any shift runs
    jobs = [Job(pacer=name, seed=seed, hours=hours)
            for name in pacers for seed in range(1, seeds + 1)]
    shifts = run_jobs(campaign, world, jobs, workers=workers)
    cap = abandon_cap(campaign)
    summaries = [summarise(shifts[i * seeds:(i + 1) * seeds], cap) for i in range(len(pacers))]
    if json_out:
        print(json.dumps({"scenario": str(scenario_file), "agents": team, "hours": hours,
                          "seeds": seeds, "results": [s.to_dict() for s in summaries]}))
    else:
        stdout.print(summary_table(summaries, title=f"{scenario_file.name}: {team} agents, "
                                   f"{hours:g} h, {seeds} seeds (mean ± 95% CI)"))


def summary_table(summaries: list[PacerSummary], *, title: str) -> Table:
    table = Table(title=title)
    width = max(len(s.pacer) for s in summaries)
    table.add_column("pacer", no_wrap=True, min_width=width)
    for column in ("occupancy", "abandon rate", "worst shift", "shifts over cap",
                   "talk min / agent-h", "dials / agent-h"):
        table.add_column(column, justify="right")
    for s in summaries:
        table.add_row(
            s.pacer, f"{s.occupancy.mean:.1%} ± {s.occupancy.ci95:.1%}",
            f"{s.abandon_rate.mean:.2%} ± {s.abandon_rate.ci95:.2%}",
            f"{s.abandon_rate.high:.2%}", f"{s.over_cap_share:.0%}",
            f"{s.talk_minutes_per_agent_hour.mean:.1f} ± {s.talk_minutes_per_agent_hour.ci95:.1f}",
            f"{s.dials_per_agent_hour.mean:.1f} ± {s.dials_per_agent_hour.ci95:.1f}",
        )
    return table
