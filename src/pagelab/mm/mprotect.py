"""mprotect(): change the access rights of a range, splitting and merging VMAs as needed.

Mirrors mm/mprotect.c: do_mprotect_pkey(), mprotect_fixup(), change_protection() ->
change_pte_range() and can_change_pte_writable(). Write access to exclusive anonymous pages is
restored in place (no later fault); the zero page and shared clean pages stay read-only.
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
from ..hw.physmem import PG
from .mmap import calc_vm_prot_bits, syscall_error, vm_stat_account
from .pgtable import pte_ranges, set_entry
from .types import VM_ACCESS_FLAGS, Vma, VmFlag
from .vma import find_vma, vm_get_page_prot, vma_modify, vma_try_merge

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine


def do_mprotect(task: Task, start: int, length: int, prot: int) -> None:
    """Mirrors do_mprotect_pkey(): validate, then mprotect_fixup() each VMA of the range in turn."""
    mm = task.mm
    if start & ~PAGE_MASK:
        raise syscall_error(errno.EINVAL, "mprotect: address not page aligned")
    if length == 0:
        return
    end = start + page_align(length)
    if end <= start:
        raise syscall_error(errno.ENOMEM, "mprotect: range wraps around")
    grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
    prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
    if grows == (PROT_GROWSDOWN | PROT_GROWSUP):
        raise syscall_error(errno.EINVAL, "mprotect: PROT_GROWSDOWN and PROT_GROWSUP together")
    if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM):  # arch_validate_prot()
        raise syscall_error(errno.EINVAL, "mprotect: unknown PROT_ bits")
    vma = find_vma(mm, start)
    if vma is None or vma.vm_start >= end or vma.vm_start > start:
        raise syscall_error(errno.ENOMEM, "mprotect: range not fully mapped")
    tmp = start
    while vma is not None and vma.vm_start < end:
        if vma.vm_start > tmp:
            raise syscall_error(errno.ENOMEM, "mprotect: range has a hole")
        newflags = calc_vm_prot_bits(prot) | (vma.vm_flags & ~VM_ACCESS_FLAGS)
        if (newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS:  # VM_MAY* forbids it
            raise syscall_error(errno.EACCES, "mprotect: the mapping does not allow that access")
        nend = min(vma.vm_end, end)
        vma = mprotect_fixup(task, vma, max(tmp, vma.vm_start), nend, newflags)
        tmp = nend
        vma = find_vma(mm, tmp) if tmp < end else None
    if tmp < end:
        raise syscall_error(errno.ENOMEM, "mprotect: range not fully mapped")


def mprotect_fixup(task: Task, vma: Vma, start: int, end: int, newflags: int) -> Vma:
    """Mirrors mprotect_fixup(): commit accounting, split/merge, then change the PTEs."""
    m, mm = task.machine, task.mm
    oldflags = vma.vm_flags
    if newflags == oldflags:
        return vma
    npages = (end - start) >> PAGE_SHIFT
    if not oldflags & (VmFlag.ACCOUNT | VmFlag.WRITE | VmFlag.HUGETLB | VmFlag.SHARED | VmFlag.NORESERVE):
        if newflags & VmFlag.WRITE:
            if not m.vm_enough_memory(npages):
                raise syscall_error(errno.ENOMEM, "mprotect: not enough memory to commit")
            newflags |= VmFlag.ACCOUNT
    elif oldflags & VmFlag.ACCOUNT and vma.vm_file is None and vma.anon_vma is None:
        newflags &= ~VmFlag.ACCOUNT
    vma = vma_modify(mm, vma, start, end)
    vma.vm_flags = newflags
    vma.vm_page_prot = vm_get_page_prot(newflags)
    change_protection(task, vma, start, end)
    if oldflags & ~newflags & VmFlag.ACCOUNT:
        m.vm_unacct_memory(npages)
    vm_stat_account(mm, oldflags, -npages)
    vm_stat_account(mm, newflags, npages)
    return vma_try_merge(mm, vma)


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
