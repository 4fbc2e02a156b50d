"""What a running campaign looks like from outside: one immutable snapshot per moment.

The runner thread owns the engine; nothing else reads it. It publishes a
`CampaignStatus` a few times a second, and the API, the dashboard and the metrics read
only that. Phone numbers never appear here (caller IDs are ours, not the callees').
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from dialer.engine.core import Engine
from dialer.engine.staff import AgentState

#: Minutes of dispositions kept for the dashboard's "over time" chart.
TIMELINE_MINUTES = 120


class RunState(enum.StrEnum):
    """A campaign's life in the service. STARTING -> RUNNING <-> PAUSED -> STOPPING ->
    FINISHED; FAILED when the run broke (its error is in `reason`)."""

    IDLE = "idle"  # known, not running (stopped, or never started)
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"  # no new calls; calls up finish
    STOPPING = "stopping"  # no new calls; the run ends when the calls up have
    FINISHED = "finished"  # every lead done, or stopped
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrunkFigures:
    trunk: str
    tier: str
    state: str
    failure_rate: float
    calls_in_window: int
    channels_in_use: int
    channels: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdFigures:
    number: str  # ours: a caller ID is not personal data
    state: str
    city: str
    calls_today: int
    cap_today: int
    answer_rate: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignStatus:
    campaign: str
    state: RunState
    reason: str = ""
    mode: str = ""
    at: datetime | None = None  # the run's clock (simulated runs: simulated time)
    started_at: datetime | None = None
    calls: Mapping[str, int] = field(default_factory=dict)  # dialing, waiting, live
    dial_level: float = 0.0  # calls up per working agent
    agents: Mapping[str, int] = field(default_factory=dict)  # by state
    dials: int = 0
    answers: int = 0  # answered calls that needed an agent
    abandoned: int = 0
    abandon_rate: float = 0.0  # this run
    window_abandon_rate: float = 0.0  # over the regulator's window
    abandon_target: float = 0.0
    dispositions: Mapping[str, int] = field(default_factory=dict)
    timeline: tuple[tuple[str, Mapping[str, int]], ...] = ()  # (minute, dispositions)
    trunks: tuple[TrunkFigures, ...] = ()
    caller_ids: tuple[CallerIdFigures, ...] = ()

    def to_dict(self) -> dict[str, object]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "campaign": self.campaign, "state": self.state.value, "reason": self.reason,
            "mode": self.mode, "at": iso(self.at), "started_at": iso(self.started_at),
            "calls": dict(self.calls), "dial_level": round(self.dial_level, 3),
            "agents": dict(self.agents), "dials": self.dials, "answers": self.answers,
            "abandoned": self.abandoned, "abandon_rate": round(self.abandon_rate, 5),
            "window_abandon_rate": round(self.window_abandon_rate, 5),
            "abandon_target": self.abandon_target,
            "dispositions": dict(self.dispositions),
            "timeline": [{"minute": minute, "dispositions": dict(counts)}
                         for minute, counts in self.timeline],
            "trunks": [vars_of(t) for t in self.trunks],
            "caller_ids": [vars_of(c) for c in self.caller_ids],
        }


def vars_of(item: TrunkFigures | CallerIdFigures) -> dict[str, object]:
    return {name: getattr(item, name) for name in item.__slots__}


class Timeline:
    """Dispositions per minute of the run's clock, the latest `TIMELINE_MINUTES`."""

    def __init__(self) -> None:
        self._minutes: deque[tuple[str, dict[str, int]]] = deque(maxlen=TIMELINE_MINUTES)
        self._seen: dict[str, int] = {}

    def update(self, at: datetime, totals: Mapping[str, int]) -> None:
        """Put what `totals` grew by since the last update into `at`'s minute."""
        minute = at.strftime("%Y-%m-%dT%H:%MZ")
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append((minute, {}))
        bucket = self._minutes[-1][1]
        for name, total in totals.items():
            grown = total - self._seen.get(name, 0)
            if grown:
                bucket[name] = bucket.get(name, 0) + grown
        self._seen = dict(totals)

    def rows(self) -> tuple[tuple[str, Mapping[str, int]], ...]:
        return tuple((minute, dict(counts)) for minute, counts in self._minutes)


def snapshot(engine: Engine, *, campaign: str, state: RunState, reason: str, mode: str,
             at: datetime, started_at: datetime, target: float,
             timeline: Timeline) -> CampaignStatus:
    """The engine's figures at `at` (called on the runner thread only)."""
    pace = engine.snapshot(at)
    counts = engine.staff.counts
    working = pace.agents_ready + pace.agents_busy
    up = pace.calls_dialing + pace.calls_waiting + pace.calls_live
    dispositions = {d.value: n for d, n in engine.outcomes.dispositions.items() if n}
    timeline.update(at, dispositions)
    return CampaignStatus(
        campaign=campaign, state=state, reason=reason, mode=mode, at=at,
        started_at=started_at,
        calls={"dialing": pace.calls_dialing, "waiting": pace.calls_waiting,
               "live": pace.calls_live},
        dial_level=up / working if working else 0.0,
        agents={s.value: counts[s] for s in AgentState if s is not AgentState.LOGGED_OUT},
        dials=engine.dials, answers=engine.answers, abandoned=engine.abandoned,
        abandon_rate=engine.abandoned / engine.answers if engine.answers else 0.0,
        window_abandon_rate=pace.window_rate, abandon_target=target,
        dispositions=dispositions, timeline=timeline.rows(),
        trunks=tuple(TrunkFigures(trunk=t.trunk, tier=t.tier, state=t.state.value,
                                  failure_rate=round(t.failure_rate, 4),
                                  calls_in_window=t.calls_in_window,
                                  channels_in_use=t.channels_in_use, channels=t.channels)
                     for t in engine.lines.status(at)),
        caller_ids=_caller_ids(engine, at),
    )


def _caller_ids(engine: Engine, at: datetime) -> tuple[CallerIdFigures, ...]:
    pool = engine.lines.callers
    if pool is None:
        return ()
    return tuple(CallerIdFigures(number=row.number, state=row.state.value, city=row.city,
                                 calls_today=row.calls_today, cap_today=row.cap_today,
                                 answer_rate=row.recent_answer_rate)
                 for row in pool.status(at.date()))
