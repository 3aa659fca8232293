"""The simulated clock: CPU cycles, and a deterministic heap of timed kernel events.

Time is counted in CPU cycles (``Clock.cycles[0]``). An ``Event`` is a callback armed for a time: the heap
orders events by (time, priority, sequence), so two events due at the same cycle run lower priority first
and, on equal priority, in the order they were scheduled. Nothing else decides: no wall clock, no ``id()``,
no threads (SimPy's rule), so a run depends only on its inputs.

Events run only at well-defined points: when the MMU loop stops at the deadline (``next_deadline()``, the
time of the earliest live event), when a task sleeps (I/O wait advances the clock through them), and in
``Machine.run()``. A cancelled event never runs and does not count for ``next_deadline()``. Kernel threads
(kswapd, khugepaged, ksmd, writeback) and I/O completions are events: a daemon re-arms itself after each
run, which ``Clock.every()`` does for it, as a kthread does its work and then sleeps
(``schedule_timeout()``).

Mirrors the role of kernel/time/timer.c and hrtimer.c (timers armed for an expiry, run in expiry order,
cancellable: del_timer()), without softirqs, CPUs or slack.
"""

from __future__ import annotations

import heapq
import numbers
from collections.abc import Callable

import numpy as np

NO_DEADLINE = int(np.iinfo(np.int64).max)

_PENDING, _DONE, _CANCELLED = "pending", "done", "cancelled"


class Event:
    """A callback armed on the clock: ``name``, ``time`` (cycles), ``priority``, ``callback``; ``cancel()``.

    ``state`` is "pending" until it runs ("done") or is cancelled ("cancelled"). Created by
    ``Clock.schedule()``, never directly.
    """

    __slots__ = ("name", "time", "priority", "callback", "seq", "state", "_clock")

    def __init__(self, clock: Clock, name: str, time: int, priority: int, callback: Callable[[], object],
                 seq: int) -> None:
        self._clock = clock
        self.name = name
        self.time = time
        self.priority = priority
        self.callback = callback
        self.seq = seq
        self.state = _PENDING

    @property
    def pending(self) -> bool:
        """Armed, and neither run nor cancelled."""
        return self.state == _PENDING

    @property
    def done(self) -> bool:
        """It has run."""
        return self.state == _DONE

    @property
    def cancelled(self) -> bool:
        return self.state == _CANCELLED

    def cancel(self) -> bool:
        """Disarm the event (del_timer()): it will never run. Returns whether it was still pending."""
        if self.state != _PENDING:
            return False
        self.state = _CANCELLED
        self._clock._cancelled_one()
        return True

    def __repr__(self) -> str:
        return f"<Event {self.name!r} at {self.time} prio {self.priority} {self.state}>"


class Periodic:
    """A daemon's timer: runs ``callback`` every ``period`` cycles until cancelled (see ``Clock.every``).

    The next run is armed when a run ends, ``period`` cycles later (or the number of cycles the callback
    returns, when it returns one), as a kthread sleeps after its work. ``event`` is the armed Event,
    ``runs`` how many times the callback ran.
    """

    __slots__ = ("clock", "name", "period", "priority", "callback", "event", "runs", "_stopped")

    def __init__(self, clock: Clock, period: int, callback: Callable[[], int | None], name: str, priority: int,
                 first: int) -> None:
        self.clock = clock
        self.name = name
        self.period = period
        self.priority = priority
        self.callback = callback
        self.runs = 0
        self._stopped = False
        self.event = clock.schedule(first, self._fire, priority, name=name)

    @property
    def active(self) -> bool:
        return not self._stopped

    def cancel(self) -> None:
        """Stop the daemon: the armed run is cancelled and none is armed again (also from inside the callback)."""
        self._stopped = True
        self.event.cancel()

    def _fire(self) -> None:
        self.runs += 1
        delay = self.callback()
        if self._stopped:
            return
        if delay is None:
            delay = self.period
        elif isinstance(delay, bool) or not isinstance(delay, numbers.Integral) or delay <= 0:
            self._stopped = True  # a busy loop would never let time pass: the daemon stops, loudly
            raise ValueError(f"{self.name}: its callback must return None or a positive number of cycles "
                             f"to sleep, got {delay!r}")
        try:
            self.event = self.clock.schedule(self.clock.now + delay, self._fire, self.priority, name=self.name)
        except ValueError:  # a sleep past the end of the clock: the daemon stops, loudly
            self._stopped = True
            raise

    def __repr__(self) -> str:
        state = "active" if self.active else "stopped"
        return f"<Periodic {self.name!r} every {self.period} cycles, {self.runs} runs, {state}>"


def _check_cycles(value: object, what: str, positive: bool = False) -> int:
    """A cycle count given by a caller: an integer (not a bool), >= 0 (> 0 if ``positive``), < NO_DEADLINE."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an integer number of cycles, got {type(value).__name__} {value!r}")
    v = int(value)
    if v < 0 or (positive and v == 0):
        raise ValueError(f"{what} must be {'positive' if positive else 'non-negative'}, got {v}")
    if v >= NO_DEADLINE:
        raise ValueError(f"{what} is beyond the end of the clock ({NO_DEADLINE - 1} cycles), got {v}")
    return v


class Clock:
    """A cycle counter shared with the MMU loop, and the event heap.

    ``schedule(at, callback, priority, name=)`` arms an Event; ``every(period, callback, name=)`` a daemon;
    ``next_deadline()`` is the earliest pending event's time; ``run_due()`` runs the events whose time has
    come; ``advance_to(at)`` lets time pass to ``at``, running each event due on the way at its time.
    """

    def __init__(self, freq_mhz: int) -> None:
        self.freq_mhz = freq_mhz
        self.cycles = np.zeros(1, dtype=np.int64)  # the machine's clock; the entry code books CPU time into it
        self._heap: list[tuple[int, int, int, Event]] = []
        self._seq = 0
        self._nr_cancelled = 0  # cancelled events still in the heap

    @property
    def now(self) -> int:
        """The time in cycles."""
        return int(self.cycles[0])

    @property
    def now_ns(self) -> int:
        return int(self.cycles[0]) * 1000 // self.freq_mhz

    def ns_to_cycles(self, ns: int) -> int:
        return ns * self.freq_mhz // 1000

    def cycles_to_ns(self, cycles: int) -> int:
        return cycles * 1000 // self.freq_mhz

    def schedule(self, at: int, callback: Callable[[], object], priority: int = 0, *, name: str = "") -> Event:
        """Arm ``callback`` to run when the clock reaches ``at`` cycles; returns its Event.

        ``at`` may not lie in the past. Equal times run lower ``priority`` first, then in scheduling order.
        """
        at = _check_cycles(at, "an event's time")
        if at < self.now:
            raise ValueError(f"an event's time must not lie in the past: {at} < now ({self.now} cycles)")
        if isinstance(priority, bool) or not isinstance(priority, numbers.Integral):
            raise TypeError(f"an event's priority must be an int, got {type(priority).__name__} {priority!r}")
        if not callable(callback):
            raise TypeError(f"an event's callback must be callable, got {type(callback).__name__}")
        event = Event(self, str(name) or getattr(callback, "__name__", "event"), at, int(priority), callback,
                      self._seq)
        heapq.heappush(self._heap, (at, event.priority, self._seq, event))
        self._seq += 1
        return event

    def every(self, period: int, callback: Callable[[], int | None], *, name: str, priority: int = 0,
              first: int | None = None) -> Periodic:
        """Run ``callback`` every ``period`` cycles (first at ``first``, default now + period) until cancelled.

        A callback returning a number of cycles sleeps that long instead of ``period`` before its next run.
        """
        period = _check_cycles(period, f"{name}: the period", positive=True)
        start = self.now + period if first is None else first
        return Periodic(self, period, callback, name, priority, start)

    def next_deadline(self) -> int:
        """The time of the earliest pending event, or NO_DEADLINE."""
        heap = self._heap
        while heap and heap[0][3].state != _PENDING:
            heapq.heappop(heap)
            self._nr_cancelled -= 1
        return heap[0][0] if heap else NO_DEADLINE

    def pending(self) -> list[Event]:
        """The pending events, in the order they would run."""
        return [e for _, _, _, e in sorted(self._heap) if e.state == _PENDING]

    def run_due(self) -> None:
        """Run every pending event whose time has come (those armed meanwhile for now, too)."""
        while self.next_deadline() <= self.cycles[0]:
            self._pop_and_run()

    def advance_to(self, at: int) -> None:
        """Let time pass up to ``at`` cycles, running the events due on the way in order, each at its time
        (or now, if the clock is already past it). The clock never goes back."""
        while self.next_deadline() <= at:
            when = self._heap[0][0]
            if when > self.cycles[0]:
                self.cycles[0] = when
            self._pop_and_run()
        if at > self.cycles[0]:
            self.cycles[0] = at

    def _pop_and_run(self) -> None:
        event = heapq.heappop(self._heap)[3]
        event.state = _DONE  # before the callback: an exception from it does not leave it armed
        event.callback()

    def _cancelled_one(self) -> None:
        self._nr_cancelled += 1
        if self._nr_cancelled > 64 and self._nr_cancelled * 2 > len(self._heap):  # drop them all at once
            self._heap = [entry for entry in self._heap if entry[3].state == _PENDING]
            heapq.heapify(self._heap)
            self._nr_cancelled = 0
