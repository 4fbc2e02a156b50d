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
    _next_caller: int = 0

    @property
    def free(self) -> int:
        return sum(cap - self.in_use.get(name, 0) for name, cap in self.channels.items())

    def take(self) -> tuple[str, str] | None:
        for name, cap in self.channels.items():
            if self.in_use.get(name, 0) < cap:
                self.in_use[name] = self.in_use.get(name, 0) + 1
                caller = self.caller_ids[self._next_caller % len(self.caller_ids)]
                self._next_caller += 1
                return name, caller
        return None

    def release(self, trunk: str) -> None:
        if self.in_use.get(trunk, 0) > 0:
            self.in_use[trunk] -= 1
