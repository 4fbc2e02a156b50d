"""What a worker must do later for its calls: ring and setup timeouts, answer-plan steps.

The worker's loop asks for what is due after each `libHandleEvents`, so a timer fires at
most one poll late. Timers name their call by id: holding the call itself would keep a
disconnected pjsua2 call alive.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class CallTimers(Generic[T]):
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, Callable[[T], None]]] = []
        self._order = itertools.count()  # ties fire in the order they were set

    def at(self, when: float, call_id: str, action: Callable[[T], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._order), call_id, action))

    def due(self, now: float) -> list[tuple[str, Callable[[T], None]]]:
        """The actions due by `now`, in time order, taken off the timer list."""
        fired = []
        while self._heap and self._heap[0][0] <= now:
            _, _, call_id, action = heapq.heappop(self._heap)
            fired.append((call_id, action))
        return fired
