"""mprotect(): change the access rights of a range, splitting and merging VMAs as needed.

Mirrors mm/mprotect.c: do_mprotect_pkey(), mprotect_fixup(), change_protection() ->
change_pmd_range() -> change_pte_range() and can_change_pte_writable(). The walk down to the PMD
level is the one page-table walker (mm/pagewalk.py); each PTE table is rewritten with one numpy
pass. Write access to exclusive anonymous pages is restored in place (no later fault); the zero page
and shared clean pages stay read-only. Splits are refused at vm.max_map_count (split_vma() in
mm/vma.c) unless the change merges instead.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    PTE_PFN_MASK,
    pmd_trans_huge,
)
from ..arch.x86.tlb import flush_tlb_mm_range
from ..constants import (
    PAGE_MASK,
    PAGE_SHIFT,
    PMD_SIZE,
    PROT_EXEC,
    PROT_GROWSDOWN,
    PROT_GROWSUP,
    PROT_READ,
    PROT_SEM,
    PROT_WRITE,
    page_align,
)
from ..errors import kernel_bug, syscall_error
from ..hw.physmem import PG
from .huge_memory import change_huge_pmd, split_huge_pmd
from .mmap import ULONG_MASK, calc_vm_prot_bits, may_expand_vm, vm_stat_account
from .pagewalk import MmWalk, MmWalkOps, walk_page_range_vma, walk_vma
from .pgtable import get_ptes, modify_prot_commit_ptes, pmdp_get, pte_offset_map
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
        if not may_expand_vm(task, newflags, npages) and may_expand_vm(task, oldflags, npages):
            raise syscall_error(errno.ENOMEM, "mprotect: the area turning into data passes RLIMIT_DATA")
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
    if (oldflags & (VmFlag.WRITE | VmFlag.SHARED | VmFlag.LOCKED)) == VmFlag.LOCKED and newflags & VmFlag.WRITE:
        from .mlock import populate_vma_page_range  # mlock (issue #9): "trigger COW to avoid major fault
        populate_vma_page_range(task, vma, start, end)  # on access" (measured: 16 GUP faults, perf 0)
    return vma


def change_protection(task: Task, vma: Vma, start: int, end: int) -> None:
    """Mirrors change_protection(): give the present entries of [start, end) the VMA's new protection
    (change_pmd_range() per PMD entry), then flush the TLB if any entry changed."""
    m = task.machine
    changed = [0]
    err = walk_page_range_vma(vma, start, end, CHANGE_PROT_WALK_OPS, changed)
    kernel_bug(err != 0, f"change_protection: [{start:#x}, {end:#x}) is not inside the VMA")
    if changed[0]:
        flush_tlb_mm_range(m, vma.mm, start, end)


def change_pmd_range(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors change_pmd_range()'s loop body, as the walk's pmd_entry: a huge PMD that [addr, end)
    covers whole goes to change_huge_pmd(); part of one is split first (__split_huge_pmd())."""
    m, vma = walk.machine, walk_vma(walk)
    if pmd_trans_huge(pmdp_get(m, pmd, addr)):
        if end - addr != PMD_SIZE:
            split_huge_pmd(m, vma, pmd, addr)
        else:
            ret = change_huge_pmd(m, vma, pmd, addr, vma.vm_page_prot)
            if ret:
                walk.private[0] += ret > 1  # HPAGE_PMD_NR: changed (1: locked but unchanged)
                return 0
    walk.private[0] += change_pte_range(m, vma, pmd, addr, end)
    return 0


CHANGE_PROT_WALK_OPS = MmWalkOps(pmd_entry=change_pmd_range)


def change_pte_range(m: Machine, vma: Vma, pmd: int, addr: int, end: int) -> int:
    """Mirrors change_pte_range(): pte_modify() each present PTE of [addr, end) under PMD table ``pmd``
    to ``vma.vm_page_prot``, restoring write where can_change_pte_writable() allows (the VMA is
    writable: MM_CP_TRY_CHANGE_WRITABLE). Returns how many PTEs changed. Empty entries stay empty.
    """
    row = pte_offset_map(m, pmd, addr)
    if not row:
        return 0
    ptes = get_ptes(m, row, addr, (end - addr) >> PAGE_SHIFT)
    present = (ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0
    keep = PTE_PFN_MASK | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SPECIAL  # pte_modify()
    new = np.where(present, (ptes & keep) | (vma.vm_page_prot & ~keep), ptes)
    if vma.vm_flags & VmFlag.WRITE:  # vma_wants_manual_pte_write_upgrade()
        new[can_change_pte_writable(m, vma, new)] |= _PAGE_RW
    differ = new != ptes
    if not differ.any():
        return 0
    modify_prot_commit_ptes(m, row, addr, new)
    return int(differ.sum())


def can_change_pte_writable(m: Machine, vma: Vma, ptes: np.ndarray) -> np.ndarray:
    """Mirrors can_change_pte_writable() for each of ``ptes`` (already pte_modify()'d, not writable yet):
    exclusive anon pages of a private mapping, or dirty pages of a shared one, may become writable;
    PROT_NONE and empty entries never do, nor the zero page."""
    ok: np.ndarray = ((ptes & _PAGE_PRESENT) != 0) & ((ptes & _PAGE_RW) == 0)
    if vma.vm_flags & VmFlag.SHARED:
        ok &= (ptes & _PAGE_DIRTY) != 0
        return ok
    ok &= (ptes & _PAGE_SPECIAL) == 0  # vm_normal_page(): not the zero page
    pfns = (ptes[ok] & PTE_PFN_MASK) >> PAGE_SHIFT
    frames = m.frames
    anon = (frames.flags[frames.compound_head(pfns)] & PG.ANON) != 0  # PageAnon(): the folio's flag
    ok[ok] = anon & ((frames.flags[pfns] & PG.ANON_EXCLUSIVE) != 0)  # PageAnonExclusive(): the page's
    return ok
