"""The simulated clock: CPU cycles, and a deterministic heap of timed kernel events.

Events are (time in cycles, priority, sequence, callback); ties are broken by priority and then by
the order they were scheduled, so a run never depends on anything but its inputs (SimPy's rule).
Daemons (kswapd, khugepaged, ksmd, writeback) re-arm themselves as events when they are modelled.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

NO_DEADLINE = np.iinfo(np.int64).max


class Clock:
    """A cycle counter shared with the MMU loop, and the event heap."""

    def __init__(self, freq_mhz: int) -> None:
        self.freq_mhz = freq_mhz
        self.cycles = np.zeros(1, dtype=np.int64)  # the MMU loop adds to cycles[0] in place
        self._heap: list[tuple[int, int, int, Callable[[], None]]] = []
        self._seq = 0

    @property
    def now_ns(self) -> int:
        return int(self.cycles[0]) * 1000 // self.freq_mhz

    def ns_to_cycles(self, ns: int) -> int:
        return ns * self.freq_mhz // 1000

    def schedule(self, at_cycles: int, callback: Callable[[], None], priority: int = 0) -> None:
        heapq.heappush(self._heap, (at_cycles, priority, self._seq, callback))
        self._seq += 1

    def next_deadline(self) -> int:
        return self._heap[0][0] if self._heap else int(NO_DEADLINE)

    def run_due(self) -> None:
        """Run every event whose time has come."""
        while self._heap and self._heap[0][0] <= self.cycles[0]:
            _, _, _, callback = heapq.heappop(self._heap)
            callback()

    def advance_to(self, at_cycles: int) -> None:
        """Let time pass up to ``at_cycles``, running the events due on the way, in order."""
        while self._heap and self._heap[0][0] <= at_cycles:
            when, _, _, callback = heapq.heappop(self._heap)
            self.cycles[0] = max(int(self.cycles[0]), when)
            callback()
        self.cycles[0] = max(int(self.cycles[0]), at_cycles)
