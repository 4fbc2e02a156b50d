"""Which trunk and caller ID a call leaves on (the simple plan; pools come with issue 6)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class LinePlan:
    """Trunks in order with their channel caps, and caller IDs used in turn.

    - `take` never hands out more channels than a trunk has;
    - `release` gives a channel back when its call ends.
    """

    channels: dict[str, int]
    caller_ids: tuple[str, ...]
    in_use: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, str] = field(default_factory=dict)  # trunk -> tier
    pools: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sub-pool -> caller IDs
    _next_caller: int = 0

    @property
    def free(self) -> int:
        return sum(cap - self.in_use.get(name, 0) for name, cap in self.channels.items())

    def take(self, *, tier: str | None = None, pool: str | None = None
             ) -> tuple[str, str] | None:
        """A free channel (on a trunk of `tier` first, when asked) and a caller ID (from
        sub-pool `pool` when it has numbers)."""
        trunks = list(self.channels)
        if tier is not None:
            trunks.sort(key=lambda name: self.tiers.get(name) != tier)  # stable: order kept
        for name in trunks:
            if self.in_use.get(name, 0) < self.channels[name]:
                self.in_use[name] = self.in_use.get(name, 0) + 1
                numbers = self.pools.get(pool, ()) if pool is not None else ()
                numbers = numbers or self.caller_ids
                caller = numbers[self._next_caller % len(numbers)]
                self._next_caller += 1
                return name, caller
        return None

    def release(self, trunk: str) -> None:
        if self.in_use.get(trunk, 0) > 0:
            self.in_use[trunk] -= 1
