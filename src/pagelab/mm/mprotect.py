"""mprotect(): change the access rights of a range, splitting and merging VMAs as needed.

Mirrors mm/mprotect.c: do_mprotect_pkey(), mprotect_fixup(), change_protection() ->
change_pte_range() and can_change_pte_writable(). Write access to exclusive anonymous pages is
restored in place (no later fault); the zero page and shared clean pages stay read-only. Splits
are refused at vm.max_map_count (split_vma() in mm/vma.c) unless the change merges instead.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from ..arch.x86.pgtable import (
    pte_dirty,
    pte_mkwrite,
    pte_modify,
    pte_pfn,
    pte_present,
    pte_special,
    pte_write,
)
from ..arch.x86.tlb import flush_tlb_mm_range
from ..constants import (
    PAGE_MASK,
    PAGE_SHIFT,
    PROT_EXEC,
    PROT_GROWSDOWN,
    PROT_GROWSUP,
    PROT_READ,
    PROT_SEM,
    PROT_WRITE,
    page_align,
)
from ..errors import syscall_error
from ..hw.physmem import PG
from .mmap import ULONG_MASK, calc_vm_prot_bits, vm_stat_account
from .pgtable import pte_ranges, set_entry
from .types import VM_ACCESS_FLAGS, Vma, VmFlag
from .vma import find_vma, find_vma_intersection, vma_modify_flags

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine


def do_mprotect(task: Task, start: int, length: int, prot: int) -> None:
    """Mirrors do_mprotect_pkey(): validate in the kernel's order, then mprotect_fixup() each VMA in turn.

    ``start`` and ``length`` are unsigned 64-bit, ``prot`` an int (pagelab.abi). PROT_GROWSDOWN asks
    for the range to be extended down to the start of a VM_GROWSDOWN VMA: EINVAL on any other VMA
    (and PROT_GROWSUP always is on x86, which has no VM_GROWSUP). A hole stops the walk with ENOMEM
    after the VMAs before it were changed, as in the kernel.
    """
    mm = task.mm
    grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
    prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
    if grows == (PROT_GROWSDOWN | PROT_GROWSUP):
        raise syscall_error(errno.EINVAL, "mprotect: PROT_GROWSDOWN and PROT_GROWSUP together")
    if start & ~PAGE_MASK:
        raise syscall_error(errno.EINVAL, "mprotect: address not page aligned")
    if length == 0:
        return
    end = start + (page_align(length) & ULONG_MASK)
    if end <= start or end > ULONG_MASK:
        raise syscall_error(errno.ENOMEM, "mprotect: range wraps around")
    if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM):  # arch_validate_prot()
        raise syscall_error(errno.EINVAL, "mprotect: unknown PROT_ bits")
    vma = find_vma_intersection(mm, start, end)  # vma_find(&vmi, end)
    if vma is None:
        raise syscall_error(errno.ENOMEM, "mprotect: range not mapped")
    if grows & PROT_GROWSDOWN:
        start = vma.vm_start
        if not vma.vm_flags & VmFlag.GROWSDOWN:
            raise syscall_error(errno.EINVAL, "mprotect: PROT_GROWSDOWN on a mapping that does not grow down")
    else:
        if vma.vm_start > start:
            raise syscall_error(errno.ENOMEM, "mprotect: range not fully mapped")
        if grows & PROT_GROWSUP:  # x86 has no VM_GROWSUP
            raise syscall_error(errno.EINVAL, "mprotect: PROT_GROWSUP on a mapping that does not grow up")
    tmp = vma.vm_start
    nstart = start
    while vma is not None and vma.vm_start < end:
        if vma.vm_start != tmp:
            raise syscall_error(errno.ENOMEM, "mprotect: range has a hole")
        newflags = calc_vm_prot_bits(prot) | (vma.vm_flags & ~VM_ACCESS_FLAGS)
        if (newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS:  # VM_MAY* forbids it
            raise syscall_error(errno.EACCES, "mprotect: the mapping does not allow that access")
        tmp = min(vma.vm_end, end)
        vma = mprotect_fixup(task, vma, nstart, tmp, newflags)
        tmp = vma.vm_end  # vma_iter_end(): where the walk resumes (past a merge, or past ``end``)
        nstart = tmp
        vma = find_vma(mm, tmp) if tmp < end else None
    if tmp < end:
        raise syscall_error(errno.ENOMEM, "mprotect: range not fully mapped")


def mprotect_fixup(task: Task, vma: Vma, start: int, end: int, newflags: int) -> Vma:
    """Mirrors mprotect_fixup(): commit accounting, split or merge (vma_modify_flags()), then the PTEs.

    Making a private mapping writable charges its pages (ENOMEM if overcommit refuses); making it
    read-only gives the charge back only while no page was ever faulted in (no anon_vma). Returns the
    VMA now holding [start, end).
    """
    m, mm = task.machine, task.mm
    oldflags = vma.vm_flags
    if newflags == oldflags:
        return vma
    npages = (end - start) >> PAGE_SHIFT
    charged = 0
    if newflags & VmFlag.WRITE:
        if not oldflags & (VmFlag.ACCOUNT | VmFlag.WRITE | VmFlag.HUGETLB | VmFlag.SHARED | VmFlag.NORESERVE):
            if not m.vm_enough_memory(npages):
                raise syscall_error(errno.ENOMEM, "mprotect: not enough memory to commit")
            charged = npages
            newflags |= VmFlag.ACCOUNT
    elif oldflags & VmFlag.ACCOUNT and vma.vm_file is None and vma.anon_vma is None:
        newflags &= ~VmFlag.ACCOUNT
    try:
        vma = vma_modify_flags(mm, vma, start, end, newflags)
    except OSError:
        m.vm_unacct_memory(charged)
        raise
    change_protection(task, vma, start, end)
    if oldflags & VmFlag.ACCOUNT and not newflags & VmFlag.ACCOUNT:
        m.vm_unacct_memory(npages)
    vm_stat_account(mm, oldflags, -npages)
    vm_stat_account(mm, newflags, npages)
    return vma


def change_protection(task: Task, vma: Vma, start: int, end: int) -> None:
    """Mirrors change_pte_range(): rewrite present PTEs with the new protection, then flush the TLB."""
    m = task.machine
    try_writable = bool(vma.vm_flags & VmFlag.WRITE)  # vma_wants_manual_pte_write_upgrade()
    changed = 0
    for row, lo, hi in pte_ranges(m, vma.mm, start, end):
        for k in m.ptpool.tables[row, lo:hi].nonzero()[0] + lo:
            old = int(m.ptpool.tables[row, k])
            if not pte_present(old):
                continue
            new = pte_modify(old, vma.vm_page_prot)
            if try_writable and not pte_write(new) and can_change_pte_writable(m, vma, new):
                new = pte_mkwrite(new)
            if new != old:
                set_entry(m, row, int(k), new)
                changed += 1
    if changed:
        flush_tlb_mm_range(m, vma.mm, start, end)


def can_change_pte_writable(m: Machine, vma: Vma, pte: int) -> bool:
    """Mirrors can_change_pte_writable(): exclusive anon pages, or dirty shared ones, may become writable."""
    if not pte_present(pte) or pte & 1 == 0:  # PROT_NONE entries never do
        return False
    if not vma.vm_flags & VmFlag.SHARED:
        if pte_special(pte):
            return False
        flags = int(m.frames.flags[pte_pfn(pte)])
        return bool(flags & PG.ANON and flags & PG.ANON_EXCLUSIVE)
    return pte_dirty(pte)
