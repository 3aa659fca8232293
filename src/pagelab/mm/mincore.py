"""mincore(): which pages of a range are resident, one byte per page.

Mirrors mm/mincore.c: the mincore syscall (argument checks, then do_mincore() VMA by VMA) and
mincore_pte_range() / mincore_page(): a present PTE (the zero page and PROT_NONE pages included)
counts as resident; where no PTE maps a page of a shmem mapping, the page cache is asked instead.

The arguments are C values (pagelab.abi): ``start`` and ``length`` unsigned 64-bit. The kernel checks
the start's alignment (EINVAL), then that [start, start + length) is a user range (access_ok():
ENOMEM, not EFAULT); a hole anywhere in the range is ENOMEM. A length of 0 returns an empty vector
without looking at the VMAs.

The walk (mm/pagewalk.py, mincore_walk_ops) reads each PTE table with one numpy slice and steps over
empty upper levels, so the cost follows the page tables (and the vector the caller asked for), not the
length of the range. A PMD leaf (a THP) is resident whole. Simplified: no swap entries (nothing is swapped out), no file
mappings other than shmem.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import _PAGE_PRESENT, _PAGE_PROTNONE, pmd_trans_huge
from ..constants import PAGE_MASK, PAGE_SHIFT, TASK_SIZE
from ..errors import syscall_error
from .filemap import cached_range
from .pagewalk import ACTION_AGAIN, MmWalk, MmWalkOps, walk_page_range
from .pgtable import get_ptes, pmdp_get, pte_offset_map
from .vma import linear_page_index, vma_lookup

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
    if npages:
        walk_page_range(mm, start, end, MINCORE_WALK_OPS, (vec, start))
    return vec


def _vec(walk: MmWalk, addr: int, end: int) -> np.ndarray:
    """The bytes of the caller's vector for [addr, end) (Linux advances walk->private instead)."""
    vec, start = walk.private
    k = (addr - start) >> PAGE_SHIFT
    return vec[k:k + ((end - addr) >> PAGE_SHIFT)]  # type: ignore[no-any-return]


def mincore_unmapped_range(addr: int, end: int, depth: int, walk: MmWalk) -> int:
    """Mirrors mincore_unmapped_range(): no PTE maps [addr, end): 0, unless a file's page cache holds
    the page (mincore_page(); shmem here). Anonymous memory needs nothing: the vector starts zeroed."""
    vma = walk.vma
    if vma is not None and vma.vm_file is not None:
        vec = _vec(walk, addr, end)
        first = linear_page_index(vma, addr)
        for pgoff, _pfn in cached_range(vma.vm_file.mapping, first, first + vec.shape[0]):
            vec[pgoff - first] = 1
    return 0


def mincore_pte_range(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors mincore_pte_range(): a PMD leaf is resident whole; else a present PTE (the zero page and
    PROT_NONE pages included) is resident, and an empty one asks the page cache (pte_none_mostly())."""
    m = walk.machine
    vec = _vec(walk, addr, end)
    if pmd_trans_huge(pmdp_get(m, pmd, addr)):  # pmd_trans_huge_lock()
        vec[:] = 1
        return 0
    row = pte_offset_map(m, pmd, addr)
    if not row:
        walk.action = ACTION_AGAIN
        return 0
    ptes = get_ptes(m, row, addr, vec.shape[0])
    vec[:] = (ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0
    if walk.vma is not None and walk.vma.vm_file is not None and not ptes.all():
        first = linear_page_index(walk.vma, addr)
        for pgoff, _pfn in cached_range(walk.vma.vm_file.mapping, first, first + vec.shape[0]):
            if ptes[pgoff - first] == 0:
                vec[pgoff - first] = 1
    return 0


MINCORE_WALK_OPS = MmWalkOps(pmd_entry=mincore_pte_range, pte_hole=mincore_unmapped_range)
