"""What-if runs: a campaign's pacing on a simulated world, over many seeds.

`dialer simulate` and the pacing benchmark run here. Leads come from an in-memory ledger
(`MemoryLedger`): the question is pacing, and one seed is one shift of the real engine
on the simulated network. Figures per shift:

- occupancy: (talk + wrap-up) / logged-in time, over all agents;
- abandon rate: abandoned / answered calls that needed an agent, over the shift;
- talk minutes and dials per logged-in agent-hour.

Summaries give the mean and a 95 % confidence interval over seeds (Student's t), and the
share of shifts whose abandon rate went over the cap.
"""

from __future__ import annotations

import math
import multiprocessing
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta

from dialer.config import parse_campaign
from dialer.config.campaign import Campaign, DialMode
from dialer.engine.build import build_engine
from dialer.engine.ledger import MemoryLedger
from dialer.engine.lines import LinePlan
from dialer.engine.simulate import SimOptions, run_engine
from dialer.engine.staff import AgentState, occupancy
from dialer.sim.scenario import Scenario

#: The pacers `--compare` runs, side by side on the same seeds.
COMPARED = ("predictive", "progressive", "vicidial-adapt", "ratio:1.1", "ratio:1.3",
            "ratio:1.6")
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # two-sided, by degrees of freedom


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftFigures:
    """One seeded shift."""

    pacer: str
    agents: int
    seed: int
    occupancy: float
    abandon_rate: float
    talk_minutes_per_agent_hour: float
    dials_per_agent_hour: float
    dials: int
    answers: int  # answered calls that needed an agent
    abandoned: int
    agent_hours: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    mean: float
    ci95: float  # half-width
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Estimate:
        mean = statistics.fmean(values)
        n = len(values)
        ci = _T95[min(n - 2, len(_T95) - 1)] * statistics.stdev(values) / math.sqrt(n) \
            if n > 1 else 0.0
        return cls(mean=mean, ci95=ci, low=min(values), high=max(values))

    def to_dict(self, digits: int = 4) -> dict[str, float]:
        return {"mean": round(self.mean, digits), "ci95": round(self.ci95, digits),
                "min": round(self.low, digits), "max": round(self.high, digits)}


@dataclass(frozen=True, slots=True, kw_only=True)
class PacerSummary:
    pacer: str
    agents: int
    seeds: int
    cap: float
    occupancy: Estimate
    abandon_rate: Estimate
    over_cap_share: float  # of shifts
    talk_minutes_per_agent_hour: Estimate
    dials_per_agent_hour: Estimate

    def to_dict(self) -> dict[str, object]:
        return {
            "pacer": self.pacer, "agents": self.agents, "seeds": self.seeds, "cap": self.cap,
            "occupancy": self.occupancy.to_dict(),
            "abandon_rate": self.abandon_rate.to_dict(5),
            "over_cap_share": round(self.over_cap_share, 4),
            "talk_minutes_per_agent_hour": self.talk_minutes_per_agent_hour.to_dict(2),
            "dials_per_agent_hour": self.dials_per_agent_hour.to_dict(2),
        }


def summarise(shifts: Sequence[ShiftFigures], cap: float) -> PacerSummary:
    first = shifts[0]
    return PacerSummary(
        pacer=first.pacer, agents=first.agents, seeds=len(shifts), cap=cap,
        occupancy=Estimate.of([s.occupancy for s in shifts]),
        abandon_rate=Estimate.of([s.abandon_rate for s in shifts]),
        over_cap_share=sum(s.abandon_rate > cap + 1e-12 for s in shifts) / len(shifts),
        talk_minutes_per_agent_hour=Estimate.of([s.talk_minutes_per_agent_hour
                                                 for s in shifts]),
        dials_per_agent_hour=Estimate.of([s.dials_per_agent_hour for s in shifts]),
    )


def planning_campaign(agents: int, *, cap: float = 0.03) -> Campaign:
    """The campaign `dialer simulate` runs when given none: predictive, 25 s ring timeout,
    2 s to connect an answered call, the cap over 30 days."""
    return parse_campaign({
        "name": "what-if", "region": "CN", "agents": {"count": agents},
        "dial": {"mode": "predictive", "max_attempts": 1, "ring_timeout": "25s",
                 "abandon_after": "2s", "abandon_rate_target": cap},
        "compliance": "us-tcpa",
    }, "<what-if>")


def simulate_shift(campaign: Campaign, scenario: Scenario, *, pacer: str | None, seed: int,
                   hours: float) -> ShiftFigures:
    """One shift of `campaign` on `scenario`'s world: dialing predictively with `pacer`,
    or as the campaign says when `pacer` is None."""
    if pacer is not None:
        campaign = replace(campaign, dial=replace(campaign.dial, mode=DialMode.PREDICTIVE,
                                                  pacer=pacer))
    dial = campaign.dial
    pacer = dial.pacer if dial.mode is DialMode.PREDICTIVE else dial.mode.value
    engine = build_engine(campaign, 1, new_id=_counter())
    agents = campaign.agents.count or scenario.agents.count
    if campaign.lines is None:  # as many lines as the ceiling on lines per agent allows
        lines = max(1, math.ceil(agents * dial.max_lines_per_agent))
        engine.lines = LinePlan.single("sim-trunk", lines, engine.lines.caller_ids)
    ledger = MemoryLedger()
    run_engine(engine, ledger, campaign, scenario,
               SimOptions(start=scenario.start, duration=timedelta(hours=hours), seed=seed))
    time_in = engine.staff.window_time_in or engine.staff.time_in  # over the shift
    logged_in = sum(v for k, v in time_in.items() if k is not AgentState.LOGGED_OUT)
    agent_hours = max(logged_in / 3600, 1e-9)
    return ShiftFigures(
        pacer=pacer, agents=agents, seed=seed, occupancy=occupancy(time_in),
        abandon_rate=engine.abandoned / engine.answers if engine.answers else 0.0,
        talk_minutes_per_agent_hour=time_in.get(AgentState.ON_CALL, 0.0) / 60 / agent_hours,
        dials_per_agent_hour=engine.dials / agent_hours, dials=engine.dials,
        answers=engine.answers, abandoned=engine.abandoned, agent_hours=agent_hours,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One shift to run: the campaign and world are shared by all jobs of a run."""

    pacer: str | None  # None: as the campaign says
    seed: int
    hours: float
    agents: int | None = None  # a team of this size instead of the campaign's


#: The campaign and world of the jobs running now (worker processes inherit it by fork:
#: configuration objects hold read-only mappings that do not pickle).
_WORLD: tuple[Campaign, Scenario] | None = None


def _run(job: Job) -> ShiftFigures:
    assert _WORLD is not None
    campaign, scenario = _WORLD
    if job.agents is not None:
        campaign = replace(campaign, agents=replace(campaign.agents, count=job.agents))
        scenario = replace(scenario, agents=replace(scenario.agents, count=job.agents))
    return simulate_shift(campaign, scenario, pacer=job.pacer, seed=job.seed, hours=job.hours)


def run_jobs(campaign: Campaign, scenario: Scenario, jobs: Sequence[Job], *, workers: int = 1,
             done: Callable[[ShiftFigures], None] | None = None) -> list[ShiftFigures]:
    """Run shifts, in `workers` processes when more than one; results in job order (give
    the longest jobs first: the pool takes them in order)."""
    global _WORLD
    _WORLD = (campaign, scenario)
    try:
        if workers <= 1 or len(jobs) <= 1:
            results = map(_run, jobs)
            return [_report(figures, done) for figures in results]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            return [_report(figures, done) for figures in pool.map(_run, jobs)]
    finally:
        _WORLD = None


def _report(figures: ShiftFigures, done: Callable[[ShiftFigures], None] | None) -> ShiftFigures:
    if done is not None:
        done(figures)
    return figures


def _counter() -> Callable[[], str]:
    count = iter(range(1, 1 << 62))
    return lambda: f"sim-{next(count)}"
