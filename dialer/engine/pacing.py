"""How many calls to place now: the pacing seam.

A pacer looks at a snapshot of the campaign and returns a number of new calls. It is pure
and cheap; the engine calls it on every tick and after every event that frees capacity.
The predictive pacer (its own issue) plugs in here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class PaceSnapshot:
    """The campaign at one instant, as a pacer sees it."""

    at: datetime
    agents_ready: int
    agents_busy: int  # on a call or wrapping up
    calls_dialing: int  # placed, not answered yet (including claims in flight)
    calls_waiting: int  # answered, waiting for an agent
    calls_live: int  # answered and talking (to an agent or a script)
    free_lines: int


class Pacer(Protocol):
    """Decides how many calls to place.

    - returns a count >= 0, never more than `snapshot.free_lines`;
    - is a pure function of the snapshot and its own estimates (no clock, no I/O).
    """

    def calls_to_place(self, snapshot: PaceSnapshot) -> int: ...


class ProgressivePacer:
    """One call per ready agent: no agent ever gets two answered calls at once."""

    def calls_to_place(self, snapshot: PaceSnapshot) -> int:
        want = snapshot.agents_ready - snapshot.calls_dialing - snapshot.calls_waiting
        return max(0, min(want, snapshot.free_lines))


class RobocallPacer:
    """Agentless: keep up to `max_concurrent` calls in flight, each answered by a script."""

    def __init__(self, max_concurrent: int) -> None:
        self.max_concurrent = max_concurrent

    def calls_to_place(self, snapshot: PaceSnapshot) -> int:
        in_flight = snapshot.calls_dialing + snapshot.calls_waiting + snapshot.calls_live
        return max(0, min(self.max_concurrent - in_flight, snapshot.free_lines))
