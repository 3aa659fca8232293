"""Errors pagelab raises: user errors, signals a simulated process receives, kernel bugs."""

from __future__ import annotations

import errno
import os


class PagelabError(Exception):
    """Base of pagelab's own errors; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class SettingError(PagelabError):
    """A bad value for a tunable (the sysfs store() would have returned EINVAL)."""


class ScenarioError(PagelabError):
    """A scenario or trace that cannot be run as written."""


class NotModelled(PagelabError):
    """The call is valid Linux but this version of the simulator does not model it yet."""


class ProcessDead(PagelabError):
    """The simulated process has exited or was killed; it accepts no more calls."""


class ChildStopped(PagelabError):
    """The real backend's child process is stopped (SIGSTOP, or a terminal stop such as SIGTSTP).

    A call that waits on it gives up after a short grace period instead of hanging; SIGCONT resumes the
    child, and the next call works (it discards the reply of the call that gave up).
    """


class WaitWouldBlock(PagelabError):
    """wait() without os.WNOHANG for a child that is still running: a process runs only when its Process
    is called (simulated or real), so the wait could never end. Exit the child first, or pass os.WNOHANG."""


class KernelBug(PagelabError):
    """An invariant of the simulated kernel broke (the analogue of VM_BUG_ON)."""

    exit_code = 70


class FatalSignal(PagelabError):
    """A signal the process has no handler for: ``addr`` is si_addr, ``si_code`` its si_code name.

    As in Linux, the process is dead afterwards.
    """

    signame = ""

    def __init__(self, addr: int, si_code: str, pid: int | None = None) -> None:
        self.addr = addr
        self.si_code = si_code
        self.pid = pid
        super().__init__(f"{self.signame} ({si_code}) at {addr:#x}" + (f" in pid {pid}" if pid else ""))


class SegmentationFault(FatalSignal):
    """SIGSEGV: ``si_code`` is "SEGV_MAPERR" (no mapping), "SEGV_ACCERR" (not allowed) or "SI_KERNEL"."""

    signame = "SIGSEGV"
    exit_code = 139


class BusError(FatalSignal):
    """SIGBUS: ``si_code`` is e.g. "BUS_ADRERR" (past the end of a file mapping)."""

    signame = "SIGBUS"
    exit_code = 135


class OutOfMemoryKill(PagelabError):
    """The OOM killer killed the process (VM_FAULT_OOM with no memory to reclaim)."""

    exit_code = 137

    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(f"Out of memory: Killed process {pid}")


def kernel_bug(cond: bool, what: str) -> None:
    """VM_BUG_ON() analogue: raise KernelBug naming ``what`` when ``cond`` holds (never stripped by -O)."""
    if cond:
        raise KernelBug(what)


def syscall_error(code: int, what: str) -> OSError:
    """The OSError a failed system call raises: Linux's errno, its name and strerror() in the message."""
    return OSError(code, f"{what}: {errno.errorcode.get(code, code)} ({os.strerror(code)})")
