"""System-call entry points: thin wrappers from the Process API into mm/.

Mirrors the SYSCALL_DEFINEs of mm/mmap.c, mm/mprotect.c, mm/madvise.c and kernel/sys.c
(getrusage). Each checks the process is alive and hands over to the mm function named like Linux's.
"""

from __future__ import annotations

import errno
import resource
from collections.abc import Iterator

import numpy as np

from ..arch.x86.pgtable import _PAGE_PRESENT, _PAGE_PROTNONE
from ..constants import PAGE_SHIFT, PAGE_SIZE, TASK_SIZE
from ..hw.mmu import leaf_entries
from ..mm.madvise import do_madvise
from ..mm.mmap import do_mmap, do_munmap, syscall_error
from ..mm.mprotect import do_mprotect
from ..mm.types import MmStruct, Vma
from ..mm.vma import find_vma, linear_page_index
from .task import Task


def sys_mmap(task: Task, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    return do_mmap(task, addr, length, prot, flags, fd, offset)


def sys_munmap(task: Task, addr: int, length: int) -> None:
    do_munmap(task, addr, length)


def sys_mprotect(task: Task, addr: int, length: int, prot: int) -> None:
    do_mprotect(task, addr, length, prot)


def sys_madvise(task: Task, addr: int, length: int, advice: int) -> None:
    do_madvise(task, addr, length, advice)


def sys_mincore(task: Task, addr: int, length: int) -> np.ndarray:
    """Mirrors mincore(2) (mm/mincore.c) for anonymous memory: EINVAL if unaligned, ENOMEM on a hole."""
    if addr & (PAGE_SIZE - 1):
        raise syscall_error(errno.EINVAL, "mincore: address not page aligned")
    if length > TASK_SIZE - addr:
        raise syscall_error(errno.ENOMEM, "mincore: range outside user space")
    npages = (length + PAGE_SIZE - 1) >> PAGE_SHIFT
    mm = task.mm
    vpns = np.arange(addr >> PAGE_SHIFT, (addr >> PAGE_SHIFT) + npages, dtype=np.int64)
    if npages and any(v is None or v.vm_start > a for a, v in _cover(mm, addr, addr + npages * PAGE_SIZE)):
        raise syscall_error(errno.ENOMEM, "mincore: range not fully mapped")
    ptes = leaf_entries(task.machine.ptpool.tables, mm.pgd, vpns)
    vec: np.ndarray = ((ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0).astype(np.uint8)
    # mincore_pte_range(): where no PTE maps a file (here: shmem) page, ask the page cache instead
    for k in np.flatnonzero(ptes == 0):
        addr_k = int(vpns[k]) << PAGE_SHIFT
        vma = find_vma(mm, addr_k)
        if vma is not None and vma.vm_file is not None and linear_page_index(vma, addr_k) in vma.vm_file.pages:
            vec[k] = 1
    return vec


def _cover(mm: MmStruct, start: int, end: int) -> Iterator[tuple[int, Vma | None]]:
    """(address, VMA at or after it) for each piece of [start, end), to find holes."""
    addr = start
    while addr < end:
        vma = find_vma(mm, addr)
        yield addr, vma
        if vma is None or vma.vm_start > addr:
            return
        addr = vma.vm_end


def sys_getrusage(task: Task) -> resource.struct_rusage:
    """Mirrors getrusage(RUSAGE_SELF) (kernel/sys.c): times, peak RSS in KiB, fault counts."""
    freq_hz = task.machine.cpu.freq_mhz * 1_000_000
    maxrss = max(task.mm.hiwater_rss, task.mm.get_rss())
    return resource.struct_rusage((
        task.utime_cycles / freq_hz, task.stime_cycles / freq_hz, maxrss * 4,
        0, 0, 0, task.min_flt, task.maj_flt, 0, 0, 0, 0, 0, 0, 0, 0,
    ))
