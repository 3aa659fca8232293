"""System-call entry points: thin wrappers from the Process API into mm/.

Mirrors the SYSCALL_DEFINEs of mm/mmap.c, mm/mprotect.c, mm/madvise.c and kernel/sys.c
(getrusage). Each checks the process is alive and hands over to the mm function named like Linux's.
"""

from __future__ import annotations

import resource

from ..mm.madvise import do_madvise
from ..mm.mmap import do_mmap, do_munmap
from ..mm.mprotect import do_mprotect
from .task import Task


def sys_mmap(task: Task, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    return do_mmap(task, addr, length, prot, flags, fd, offset)


def sys_munmap(task: Task, addr: int, length: int) -> None:
    do_munmap(task, addr, length)


def sys_mprotect(task: Task, addr: int, length: int, prot: int) -> None:
    do_mprotect(task, addr, length, prot)


def sys_madvise(task: Task, addr: int, length: int, advice: int) -> None:
    do_madvise(task, addr, length, advice)


def sys_getrusage(task: Task) -> resource.struct_rusage:
    """Mirrors getrusage(RUSAGE_SELF) (kernel/sys.c): times, peak RSS in KiB, fault counts."""
    freq_hz = task.machine.cpu.freq_mhz * 1_000_000
    maxrss = task.maxrss_pages
    if task.mm is not None:
        maxrss = max(task.mm.hiwater_rss, task.mm.get_rss())
    return resource.struct_rusage((
        task.utime_cycles / freq_hz, task.stime_cycles / freq_hz, maxrss * 4,
        0, 0, 0, task.min_flt, task.maj_flt, 0, 0, 0, 0, 0, 0, 0, 0,
    ))
