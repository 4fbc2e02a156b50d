"""How many calls to place now: the pacing seam.

A pacer looks at a snapshot of the campaign and returns a number of new calls. It is pure
(no clock, no I/O) and cheap; the engine asks it on every tick and after every event, and
tells it what it observed (`observe`) so that pacers that learn can learn. The pacers:
`ProgressivePacer`, `RobocallPacer` and `PreviewPacer` here, the comparison baselines in
`dialer.engine.baselines`, the model-based predictive pacer in `dialer.engine.predictive`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class Floor(Protocol):
    """The calls and agents behind a snapshot, for pacers that look closer (built lazily)."""

    def dialing_ages(self, at: datetime) -> list[float]:
        """Seconds since each unanswered call in flight was placed."""
        ...

    def talking_ages(self, at: datetime) -> list[float]:
        """Seconds since each agent on a call was connected."""
        ...

    def wrapping_ages(self, at: datetime) -> list[float]:
        """Seconds since each agent in wrap-up started it."""
        ...


@dataclass(slots=True, kw_only=True)
class PaceSnapshot:
    """The campaign at one instant, as a pacer sees it (a value: pacers do not change it;
    not frozen only because the engine builds one per event and frozen init is slow)."""

    at: datetime
    agents_ready: int
    agents_busy: int  # on a call or wrapping up (not those leaving after their call)
    calls_dialing: int  # placed, not answered yet (including claims in flight)
    calls_waiting: int  # answered, waiting for an agent
    calls_live: int  # answered and talking (to an agent or a script)
    free_lines: int
    agents_talking: int = 0  # of `agents_busy`, on a call
    agents_logged_in: int = 0  # ready, busy or paused
    dials: int = 0  # calls placed since the engine started
    answers: int = 0  # answered calls that needed an agent, since the engine started
    abandoned: int = 0  # of those, abandoned
    window_rate: float = 0.0  # abandon rate over the regulator's window, as it counts it
    window_answers: float = 0.0  # live answers in that window (its denominator)
    window_false_positives: float = 0.0  # of those, estimated machine-detection errors
    floor: Floor | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Placed:
    """`count` calls were placed."""

    at: datetime
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """A dial's fate became known `after` seconds: answered (needs someone), or not."""

    at: datetime
    after: float
    answered: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """An answered call that needed an agent got one, or was abandoned."""

    at: datetime
    abandoned: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TalkEnded:
    """An agent's call ended after `seconds`; `wraps`: the agent went into wrap-up (not
    straight to a pause or a logout asked for during the call)."""

    at: datetime
    seconds: float
    wraps: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapEnded:
    at: datetime
    seconds: float


Observation = Placed | Resolved | Served | TalkEnded | WrapEnded


class Pacer(Protocol):
    """Decides how many calls to place.

    - `calls_to_place` returns a count >= 0, never more than `snapshot.free_lines`;
    - no clock, no I/O: time comes in `snapshot.at`; a pacer's only state is its own
      estimates (`observe` feeds them, and `calls_to_place` may keep its plans).
    """

    name: str

    def calls_to_place(self, snapshot: PaceSnapshot) -> int: ...

    def observe(self, observation: Observation) -> None: ...


class ProgressivePacer:
    """One call per ready agent: no agent ever gets two answered calls at once."""

    name = "progressive"

    def calls_to_place(self, snapshot: PaceSnapshot) -> int:
        want = snapshot.agents_ready - snapshot.calls_dialing - snapshot.calls_waiting
        return max(0, min(want, snapshot.free_lines))

    def observe(self, observation: Observation) -> None:
        pass


class RobocallPacer:
    """Agentless: keep up to `max_concurrent` calls in flight, each answered by a script.

    A dialing call holds its script slot from the dial, so an answered call never waits
    for a free slot.
    """

    name = "robocall"

    def __init__(self, max_concurrent: int) -> None:
        self.max_concurrent = max_concurrent

    def calls_to_place(self, snapshot: PaceSnapshot) -> int:
        in_flight = snapshot.calls_dialing + snapshot.calls_waiting + snapshot.calls_live
        return max(0, min(self.max_concurrent - in_flight, snapshot.free_lines))

    def observe(self, observation: Observation) -> None:
        pass


class PreviewPacer:
    """Preview mode: the engine never dials on its own; every call is an agent's choice
    (`AgentRequestedLead`, then `AgentDialedLead`)."""

    name = "preview"

    def calls_to_place(self, snapshot: PaceSnapshot) -> int:
        return 0

    def observe(self, observation: Observation) -> None:
        pass
