"""Kernel entry and exit: what runs in the kernel is never cut in half by a signal.

In Linux a signal sent to a task that is inside a system call or a page fault is only marked
pending; the kernel finishes (or cleanly backs out of) what it is doing and delivers the signal on
the way back to user mode. So no user-visible state is ever half-updated: a syscall or a fault
either happened or did not.

The simulated kernel is Python code in the user's own process, where a host signal (Ctrl-C's
SIGINT, a timer's SIGALRM) runs its Python handler between any two bytecodes of the main thread, and
an exception from the handler (KeyboardInterrupt) could leave a frame allocated but not mapped, or
counted twice, or a numba compilation half done. ``KernelEntry`` closes that hole the way the kernel
does. On entry it puts a recorder in place of every Python-level signal handler; a signal that
arrives is only noted as pending. On exit, and at explicit delivery points between two faults of one
batch of accesses, it puts the handlers back and sends each pending signal to this thread again
(``raise_signal``), so the handlers run there, where the simulated machine is consistent.

Blocking signals with ``pthread_sigmask`` is not enough: it masks one thread, and a host signal that
another thread (a BLAS or LLVM worker) receives still makes Python run the handler in the main
thread at its next bytecode.

Mirrors kernel/entry/common.c: syscall_enter_from_user_mode() / irqentry_enter_from_user_mode() and
exit_to_user_mode_loop() -> arch_do_signal_or_restart() (signals handled on return to user mode).
Simplified: signals whose disposition is the default or SIG_IGN are left alone (the host applies
them at once: terminate, stop, ignore); only Python-level handlers wait.
"""

from __future__ import annotations

import _signal
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

Handler = Callable[[int, FrameType | None], Any]


class KernelEntry:
    """A re-entrant context manager: host signal handlers wait while the simulated kernel runs.

    ``with entry:`` holds back every Python-level signal handler of the host process until the
    outermost ``with`` ends; nested entries cost nothing. ``deliver_pending()`` is a delivery point
    inside a long operation made of many atomic steps (a batch of memory accesses): pending signals
    are delivered there, between two steps, and a handler's exception leaves from there. Only the
    main thread runs Python signal handlers, so elsewhere there is nothing to hold back. Each
    Machine owns one; nothing is shared between machines.
    """

    def __init__(self) -> None:
        self.depth = 0
        self._signals = tuple(sorted(int(s) for s in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}))
        self._main = threading.main_thread().ident
        self._recorder: Handler = self._record
        self._seen: tuple[object, ...] = ()  # every signal's handler at the last entry
        self._python_handlers: list[tuple[int, Handler]] = []  # those of them that are Python callables
        self._held: list[tuple[int, Handler]] = []  # (signal, the handler it had) while held
        self._pending: list[int] = []

    def __enter__(self) -> KernelEntry:
        if self.depth:
            self.depth += 1
            return self
        try:
            self.depth = 1
            if threading.get_ident() == self._main:
                self._hold()
        except BaseException:
            # A handler ran before every handler was held: nothing in the kernel has started.
            self._release()
            self.depth = 0
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.depth > 1:
            self.depth -= 1
            return
        try:
            self._release()
        finally:
            self.depth = 0
        self._deliver()  # signal handlers run here, on the way back to "user mode"

    def signal_pending(self) -> bool:
        """Mirrors signal_pending(): has a host signal arrived since the kernel was entered?"""
        return bool(self._pending)

    def deliver_pending(self) -> None:
        """A delivery point between two atomic steps: pending signals' handlers run now.

        Only at the outermost level (a nested entry is inside a step). If a handler raises, the
        exception leaves from here with the host's handlers in place and the machine consistent.
        """
        if self.depth != 1 or not self._pending:
            return
        self._release()
        self._deliver()
        self._hold()

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self._pending.append(signum)

    def _hold(self) -> None:
        handlers = tuple(map(_signal.getsignal, self._signals))
        if handlers != self._seen:  # a handler was installed or removed since the last entry
            # _seen last: an interrupt before it leaves _seen stale, so the next entry looks again (set
            # first, an interrupt in the comprehension would leave a stale list that is never looked at again)
            self._python_handlers = [(sig, h) for sig, h in zip(self._signals, handlers, strict=True)
                                     if callable(h) and h != self._recorder]
            self._seen = handlers
        for sig, handler in self._python_handlers:
            self._held.append((sig, handler))  # first, so that _release() restores it whatever happens
            _signal.signal(sig, self._recorder)

    def _release(self) -> None:
        try:
            while self._held:
                sig, handler = self._held[-1]
                _signal.signal(sig, handler)
                self._held.pop()
        finally:
            if self._held:  # a handler restored first raised: finish restoring the others
                self._release()

    def _deliver(self) -> None:
        pending, self._pending = self._pending, []
        for sig in dict.fromkeys(pending):  # each once, in arrival order (standard signals merge)
            _signal.raise_signal(sig)
