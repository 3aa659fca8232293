"""Interrupts at chosen points: a host signal whose handler raises KeyboardInterrupt, as Ctrl-C does.

``interrupt_at_call(n)`` raises SIGALRM at the n-th Python or C function call from now (a profile
hook counts them), so a run is interrupted at the same point every time: deterministic, unlike a
timer, and it reaches every line of the simulator as n varies. ``alarm_raises`` installs the handler.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def alarm_raises() -> Iterator[None]:
    """SIGALRM raises KeyboardInterrupt inside the block; timers and handler restored afterwards."""
    old = signal.signal(signal.SIGALRM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.setprofile(None)
        signal.signal(signal.SIGALRM, old)


def interrupt_at_call(n: int) -> None:
    """Send this process SIGALRM at the n-th function call from now (then stop counting)."""
    counter = CallCounter()

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        counter(frame, event, arg)
        if counter.count == n:
            sys.setprofile(None)
            signal.raise_signal(signal.SIGALRM)

    sys.setprofile(hook)


class CallCounter:
    """A profile hook (``sys.setprofile(counter)``) that counts Python and C function calls."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event in ("call", "c_call"):
            self.count += 1


def blocked_signals() -> set[signal.Signals]:
    """This thread's signal mask (to check nothing was left blocked)."""
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))
