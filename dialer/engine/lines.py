"""Which trunk and caller ID a call leaves on: the campaign's failover chain of trunk
pools (`lines.trunks`, with each trunk's health) and its caller IDs.

- `take` never hands out a channel a trunk does not have, nor more calls per second than
  it allows, nor a call to a trunk that is out of service (probing trunks get probe calls);
- every call taken is released once (`release`) and its outcome reported once (`report`),
  which is what moves trunks out of service and back;
- `advance` (every tick) and `report` return the trunks' changes of state, for the log.

Caller IDs are used in turn, from the sub-pool a segment asks for when it has numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from lines.health import HealthChanged, HealthSettings
from lines.trunks import FailoverChain, TrunkLine, TrunkPool, TrunkSettings, TrunkStatus

#: Calls per second on a trunk the configuration gives no limit (the simulated default).
UNLIMITED_CPS = 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Taken:
    """A channel taken for one call."""

    trunk: str
    caller_id: str
    probe: bool = False  # a probe of a trunk coming back into service


@dataclass(slots=True)
class LinePlan:
    line: TrunkLine | TrunkPool | FailoverChain
    caller_ids: tuple[str, ...]
    pools: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sub-pool -> numbers
    _next_caller: int = 0

    @classmethod
    def single(cls, trunk: str, channels: int, caller_ids: tuple[str, ...]) -> LinePlan:
        """One trunk with `channels` and no calls-per-second limit to speak of."""
        settings = TrunkSettings(name=trunk, channels=channels, cps=UNLIMITED_CPS)
        return cls(line=TrunkLine(settings), caller_ids=caller_ids)

    @classmethod
    def chain(cls, trunks: Iterable[TrunkSettings], pools: dict[str, tuple[str, ...]],
              order: Iterable[str], health: HealthSettings, caller_ids: tuple[str, ...],
              caller_pools: dict[str, tuple[str, ...]]) -> LinePlan:
        """Trunk pools in failover `order`; a trunk in several pools is one trunk."""
        lines = {t.name: TrunkLine(t, health) for t in trunks}
        chain = FailoverChain([TrunkPool(name, [lines[m] for m in pools[name]])
                               for name in order])
        return cls(line=chain, caller_ids=caller_ids, pools=caller_pools)

    def free(self, at: datetime) -> int:
        """Calls that could leave now (channels, calls per second, trunk health)."""
        return self.line.free(at)

    def take(self, at: datetime, *, tier: str | None = None, pool: str | None = None
             ) -> Taken | None:
        """A channel (on a trunk of `tier` first, when asked) and a caller ID (from
        sub-pool `pool` when it has numbers); None when no trunk can carry a call now."""
        seized = self.line.take(at, tier=tier)
        if seized is None:
            return None
        numbers = (self.pools.get(pool, ()) if pool is not None else ()) or self.caller_ids
        caller = numbers[self._next_caller % len(numbers)]
        self._next_caller += 1
        return Taken(trunk=seized.trunk, caller_id=caller, probe=seized.probe)

    def release(self, trunk: str) -> None:
        self.line.release(trunk)

    def report(self, at: datetime, trunk: str, *, failed: bool, probe: bool
               ) -> list[HealthChanged]:
        return self.line.report(at, trunk, failed, probe=probe)

    def advance(self, at: datetime) -> list[HealthChanged]:
        return self.line.advance(at)

    def status(self, at: datetime) -> tuple[TrunkStatus, ...]:
        return self.line.status(at)
