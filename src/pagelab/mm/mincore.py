"""mincore(): which pages of a range are resident, one byte per page.

Mirrors mm/mincore.c: the mincore syscall (argument checks, then do_mincore() VMA by VMA) and
mincore_pte_range() / mincore_page(): a present PTE (the zero page and PROT_NONE pages included)
counts as resident; where no PTE maps a page of a shmem mapping, the page cache is asked instead.

The arguments are C values (pagelab.abi): ``start`` and ``length`` unsigned 64-bit. The kernel checks
the start's alignment (EINVAL), then that [start, start + length) is a user range (access_ok():
ENOMEM, not EFAULT); a hole anywhere in the range is ENOMEM. A length of 0 returns an empty vector
without looking at the VMAs.

The walk visits only the page tables that exist, so the cost follows them (and the vector the caller
asked for), not the length of the range. Simplified: no swap entries (nothing is swapped out), no file
mappings other than shmem.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import _PAGE_PRESENT, _PAGE_PROTNONE
from ..constants import PAGE_MASK, PAGE_SHIFT, TASK_SIZE
from ..errors import syscall_error
from .filemap import cached_range
from .pgtable import pte_tables_at
from .vma import linear_page_index, vma_lookup, vmas_in_range

if TYPE_CHECKING:
    from ..kernel.task import Task

USER_PTR_MAX = TASK_SIZE  # arch/x86: valid_user_address() allows up to TASK_SIZE_MAX (4-level paging)


def do_mincore(task: Task, start: int, length: int) -> np.ndarray:
    """Mirrors SYSCALL_DEFINE3(mincore): check, then one uint8 per page of [start, start + length)."""
    if start & ~PAGE_MASK:
        raise syscall_error(errno.EINVAL, "mincore: address not page aligned")
    if start + length > USER_PTR_MAX:  # access_ok(start, len): the sum neither wraps nor leaves user space
        raise syscall_error(errno.ENOMEM, "mincore: range outside user space")
    npages = (length >> PAGE_SHIFT) + (1 if length & ~PAGE_MASK else 0)
    end = start + (npages << PAGE_SHIFT)
    mm = task.mm
    addr = start
    while addr < end:  # do_mincore(): vma_lookup() of each piece, so a hole is ENOMEM
        vma = vma_lookup(mm, addr)
        if vma is None:
            raise syscall_error(errno.ENOMEM, "mincore: range not fully mapped")
        addr = vma.vm_end
    vec = np.zeros(npages, dtype=np.uint8)
    tables = task.machine.ptpool.tables
    for addr, row, lo, hi in pte_tables_at(task.machine, mm, start, end):  # mincore_pte_range()
        k = (addr - start) >> PAGE_SHIFT
        vec[k:k + hi - lo] = (tables[row, lo:hi] & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0
    for vma in vmas_in_range(mm, start, end):  # mincore_unmapped_range(): ask the page cache (shmem)
        if vma.vm_file is None:
            continue
        lo, hi = max(vma.vm_start, start), min(vma.vm_end, end)
        first, last = linear_page_index(vma, lo), linear_page_index(vma, hi)
        for pgoff, _pfn in cached_range(vma.vm_file.mapping, first, last):
            vec[((lo - start) >> PAGE_SHIFT) + pgoff - first] = 1
    return vec
