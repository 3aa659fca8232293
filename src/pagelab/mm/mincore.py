"""mincore(): which pages of a range are resident, one byte per page.

Mirrors mm/mincore.c: the mincore syscall (argument checks, then do_mincore() VMA by VMA) and
mincore_pte_range() / mincore_page(): a present PTE (the zero page and PROT_NONE pages included)
counts as resident; where no PTE maps a page of a shmem mapping, the page cache is asked instead.

The arguments are C values (pagelab.abi): ``start`` and ``length`` unsigned 64-bit. The kernel checks
the start's alignment (EINVAL), then that [start, start + length) is a user range (access_ok():
ENOMEM, not EFAULT); a hole anywhere in the range is ENOMEM. A length of 0 returns an empty vector
without looking at the VMAs.

Simplified: no swap entries (nothing is swapped out), no file mappings other than shmem.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import _PAGE_PRESENT, _PAGE_PROTNONE
from ..constants import PAGE_MASK, PAGE_SHIFT, TASK_SIZE
from ..hw.mmu import leaf_entries
from .mmap import syscall_error
from .vma import find_vma, linear_page_index, vma_lookup

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
    vpns = np.arange(start >> PAGE_SHIFT, (start >> PAGE_SHIFT) + npages, dtype=np.int64)
    ptes = leaf_entries(task.machine.ptpool.tables, mm.pgd, vpns)
    vec: np.ndarray = ((ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0).astype(np.uint8)
    for k in np.flatnonzero(ptes == 0):  # mincore_unmapped_range(): ask the page cache
        addr_k = int(vpns[k]) << PAGE_SHIFT
        vma = find_vma(mm, addr_k)
        if vma is not None and vma.vm_file is not None and linear_page_index(vma, addr_k) in vma.vm_file.pages:
            vec[k] = 1
    return vec

