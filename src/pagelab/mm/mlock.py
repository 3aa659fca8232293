"""mlock(), mlock2(), munlock(), mlockall(), munlockall(): VM_LOCKED mappings and their pages.

Mirrors mm/mlock.c: can_do_mlock(), do_mlock(), apply_vma_lock_flags(), mlock_fixup(),
mlock_vma_pages_range() (mlock_pte_range()), count_mm_mlocked_page_nr(), apply_mlockall_flags(),
SYSCALL_DEFINE(mlock, mlock2, munlock, mlockall, munlockall); mm/gup.c: __mm_populate() and
populate_vma_page_range(); mm/mmap.c: mlock_future_ok() (MAP_LOCKED, mlockall(MCL_FUTURE) mappings).

Locking a range sets VM_LOCKED (and VM_LOCKONFAULT for MLOCK_ONFAULT) on its VMAs, charges mm->locked_vm
against RLIMIT_MEMLOCK (CAP_IPC_LOCK bypasses it; a limit of 0 without it is EPERM), mlocks the pages
already mapped, then populates the rest through GUP (faults counted in min_flt and pgfault, not in perf's
page-faults, as measured: docs/facts/mlock.md). Folios of a locked VMA carry PG_mlocked and sit on the
unevictable LRU (mm/mm_inline.py: mlock_folio(), munlock_folio(), folio_add_lru_vma()).

Errors as the kernel's: EINVAL for unknown flags or a range that wraps; EPERM (can_do_mlock());
ENOMEM over the limit, or for a range with a hole (the VMAs before the hole stay locked, nothing is
populated); a populate failure is translated by __mlock_posix_error_return() (EFAULT -> ENOMEM, ENOMEM
-> EAGAIN): mlock() of a PROT_NONE mapping is ENOMEM with the VMA left VM_LOCKED and charged.

Simplified: no folio->mlock_count (a folio mapped by two VM_LOCKED VMAs is munlocked when either lets go);
no per-CPU mlock folio batch (its effect is applied at once, as mlock_drain_local() does at the end of
each call); no mlock of large folios partly inside the range (a PTE-mapped large folio is mlocked whole).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import _PAGE_PRESENT, _PAGE_SPECIAL, PTE_PFN_MASK, pmd_trans_huge
from ..constants import PAGE_MASK, PAGE_SHIFT, TASK_SIZE, page_align
from ..errors import kernel_bug, syscall_error
from ..hw.physmem import PG
from .mm_inline import VM_SPECIAL, mlock_folio, munlock_folio
from .pagewalk import ACTION_AGAIN, ACTION_CONTINUE, MmWalk, MmWalkOps, walk_page_range_vma
from .pgtable import get_ptes, pmdp_get, pte_offset_map
from .types import VM_FAULT_ERROR, FaultFlag, MmStruct, Vma, VmFaultResult, VmFlag
from .vma import find_vma, vma_modify_flags, vmas_in_range

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine

MLOCK_ONFAULT = 0x01  # include/uapi/asm-generic/mman-common.h
MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4  # arch/x86 uses the generic values
VM_LOCKED_MASK = VmFlag.LOCKED | VmFlag.LOCKONFAULT
RLIMIT_MEMLOCK = 8
_ULONG = (1 << 64) - 1


def rlimit_memlock_pages(task: Task) -> int:
    """rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT: the soft limit, in pages (RLIM_INFINITY stays huge)."""
    return task.rlim[RLIMIT_MEMLOCK][0] >> PAGE_SHIFT


def can_do_mlock(task: Task) -> bool:
    """Mirrors can_do_mlock(): a non-zero RLIMIT_MEMLOCK, or CAP_IPC_LOCK."""
    return task.rlim[RLIMIT_MEMLOCK][0] != 0 or task.capable("CAP_IPC_LOCK")


def mlock_future_ok(task: Task, vm_flags: int, nbytes: int) -> bool:
    """Mirrors mlock_future_ok() (mm/mmap.c): may a new VM_LOCKED mapping of ``nbytes`` be charged?
    The limit is inclusive: locked_vm + the new pages may equal it."""
    if not vm_flags & VmFlag.LOCKED or task.capable("CAP_IPC_LOCK"):
        return True
    return task.mm.locked_vm + (nbytes >> PAGE_SHIFT) <= rlimit_memlock_pages(task)


def mlock_mmap_region(mm: MmStruct, vma: Vma, npages: int) -> None:
    """Mirrors __mmap_region()'s VM_LOCKED step: a special mapping does not stay locked; any other new
    locked mapping is charged to mm->locked_vm. Call after the VMA is in place (``vma`` holds the range)."""
    if vma.vm_flags & VmFlag.LOCKED:
        if vma.vm_flags & (VM_SPECIAL | VmFlag.HUGETLB):
            vma.vm_flags &= ~VM_LOCKED_MASK
        else:
            mm.locked_vm += npages


def munlock_unmapped(task: Task, vmas: list[Vma]) -> None:
    """What unmapping VM_LOCKED VMAs does to the lock count: vms_gather_munmap_vmas() counts their pages
    and vms_complete_munmap_vmas() takes them off mm->locked_vm. (Zapping their pages munlocks each folio:
    mm/rmap.py's removal calls munlock_vma_folio(), as __folio_remove_rmap() does.)"""
    for vma in vmas:
        if vma.vm_flags & VmFlag.LOCKED:
            task.mm.locked_vm -= vma.pages


# --- the pages of a range --------------------------------------------------------------------------

def _present_folios_pmd(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """mlock_pte_range()'s reading: the heads of the normal folios mapped in [addr, end) of one PMD
    (vm_normal_folio(): the zero pages are skipped), collected in walk.private."""
    m = walk.machine
    entry = pmdp_get(m, pmd, addr)
    if pmd_trans_huge(entry):
        if entry & _PAGE_PRESENT and not entry & _PAGE_SPECIAL:
            walk.private.append(np.array([(entry & PTE_PFN_MASK) >> PAGE_SHIFT], dtype=np.int64))
        walk.action = ACTION_CONTINUE
        return 0
    row = pte_offset_map(m, pmd, addr)
    if not row:
        walk.action = ACTION_AGAIN
        return 0
    ptes = get_ptes(m, row, addr, (end - addr) >> PAGE_SHIFT)
    normal = ptes[((ptes & _PAGE_PRESENT) != 0) & ((ptes & _PAGE_SPECIAL) == 0)]
    if normal.shape[0]:
        pfns = ((normal & PTE_PFN_MASK) >> PAGE_SHIFT).astype(np.int64)
        walk.private.append(np.asarray(m.frames.compound_head(pfns)))
    walk.action = ACTION_CONTINUE
    return 0


_PRESENT_FOLIOS_OPS = MmWalkOps(pmd_entry=_present_folios_pmd)


def mlock_vma_pages_range(m: Machine, vma: Vma, start: int, end: int, *, lock: bool) -> None:
    """Mirrors mlock_vma_pages_range() -> mlock_pte_range(): mlock (``lock``) or munlock every folio
    mapped in [start, end) of ``vma``, each once, in address order."""
    found: list[np.ndarray] = []
    err = walk_page_range_vma(vma, start, end, _PRESENT_FOLIOS_OPS, found)
    kernel_bug(err != 0, f"mlock_vma_pages_range: walk error {err}")
    if not found:
        return
    heads = np.concatenate(found)
    _, first = np.unique(heads, return_index=True)
    for folio in heads[np.sort(first)].tolist():
        if m.frames.flags[folio] & PG.ZERO:
            continue
        if lock:
            mlock_folio(m, folio)
        else:
            munlock_folio(m, folio)


# --- VMA flags --------------------------------------------------------------------------------------

def mlock_fixup(task: Task, vma: Vma, start: int, end: int, newflags: int) -> Vma:
    """Mirrors mlock_fixup(): give [start, end) of ``vma`` the lock flags in ``newflags``; mm->locked_vm
    follows (only a change of VM_LOCKED counts); pages already mapped are mlocked or munlocked. Special,
    hugetlb and unchanged VMAs are left alone. Returns the VMA now holding the range."""
    oldflags = vma.vm_flags
    if newflags == oldflags or oldflags & (VM_SPECIAL | VmFlag.HUGETLB):
        return vma
    vma = vma_modify_flags(task.mm, vma, start, end, newflags)
    nr_pages = (end - start) >> PAGE_SHIFT
    if not newflags & VmFlag.LOCKED:
        task.mm.locked_vm -= nr_pages
    elif not oldflags & VmFlag.LOCKED:
        task.mm.locked_vm += nr_pages
    if not (newflags & VmFlag.LOCKED and oldflags & VmFlag.LOCKED):  # "mlocking twice would be wrong"
        mlock_vma_pages_range(task.machine, vma, start, end, lock=bool(newflags & VmFlag.LOCKED))
    return vma


def apply_vma_lock_flags(task: Task, start: int, length: int, flags: int) -> None:
    """Mirrors apply_vma_lock_flags(): set ``flags`` (VM_LOCKED, VM_LOCKONFAULT, or 0 to unlock) on every
    VMA of [start, start + length). EINVAL if the range wraps; ENOMEM if it starts in a hole or has one
    (the VMAs before the hole keep their new flags, as in the kernel)."""
    end = start + length
    if end > _ULONG:
        raise syscall_error(errno.EINVAL, "mlock: the range wraps around")
    if end == start:
        return
    vma = find_vma(task.mm, start)
    if vma is None or vma.vm_start > start:
        raise syscall_error(errno.ENOMEM, "mlock: the range starts in an unmapped hole")
    nstart = start
    tmp = vma.vm_start
    for vma in vmas_in_range(task.mm, start, end):
        if vma.vm_start != tmp:
            raise syscall_error(errno.ENOMEM, "mlock: the range has an unmapped hole")
        newflags = (vma.vm_flags & ~VM_LOCKED_MASK) | flags
        tmp = min(vma.vm_end, end)
        mlock_fixup(task, vma, nstart, tmp, newflags)
        nstart = tmp
    if tmp < end:
        raise syscall_error(errno.ENOMEM, "mlock: the range runs past the last mapping")


def count_mm_mlocked_page_nr(mm: MmStruct, start: int, length: int) -> int:
    """Mirrors count_mm_mlocked_page_nr(): the pages of [start, start + len) already in VM_LOCKED VMAs."""
    end = start + length if length else _ULONG  # len 0 counts to the top, as the kernel's ULONG_MAX
    count = 0
    for vma in vmas_in_range(mm, start, end):
        if vma.vm_flags & VmFlag.LOCKED:
            count += (min(vma.vm_end, end) - max(vma.vm_start, start)) >> PAGE_SHIFT
    return count


# --- population (mm/gup.c) --------------------------------------------------------------------------

def populate_vma_page_range(task: Task, vma: Vma, start: int, end: int) -> int:
    """Mirrors populate_vma_page_range() -> __get_user_pages(): fault in [start, end) of ``vma`` the way
    mlock and MAP_POPULATE do (FOLL_POPULATE, not for VM_LOCKONFAULT: then only the pages already mapped
    are mlocked). A private writable VMA is faulted for writing (COW broken); others for reading, with
    FOLL_FORCE unless the VMA is PROT_NONE, which GUP refuses (check_vma_flags(): -EFAULT). The faults
    count in min_flt and pgfault, not in perf (faultin_page(): no regs). Returns 0 or -errno."""
    from .madvise import GUP_WALK_OPS, faultin_page, follow_page

    m, mm = task.machine, task.mm
    if vma.vm_flags & (VmFlag.IO | VmFlag.PFNMAP):
        return -errno.EFAULT
    if not vma.vm_flags & (VmFlag.READ | VmFlag.WRITE | VmFlag.EXEC):
        return -errno.EFAULT  # no FOLL_FORCE for an inaccessible VMA: check_vma_flags() refuses
    if not vma.vm_flags & VmFlag.LOCKONFAULT:
        write = (vma.vm_flags & (VmFlag.WRITE | VmFlag.SHARED)) == VmFlag.WRITE
        flags = FaultFlag.WRITE if write else FaultFlag.NONE
        missing: list[int] = []
        err = walk_page_range_vma(vma, start, end, GUP_WALK_OPS, (missing, write))
        kernel_bug(err != 0, f"populate_vma_page_range: walk error {err}")
        for a in missing:
            if follow_page(m, mm, a, write):
                continue  # an earlier fault mapped it (fault-around, a huge page)
            vmf = faultin_page(task, vma, a, flags, retry_tried=False)
            if vmf.result & VM_FAULT_ERROR:
                if vma.vm_flags & VmFlag.LOCKED:
                    mlock_vma_pages_range(m, vma, start, end, lock=True)
                if vmf.result & VmFaultResult.OOM:
                    return -errno.ENOMEM
                return -errno.EFAULT
    if vma.vm_flags & VmFlag.LOCKED:  # follow_page_mask(FOLL_MLOCK) / the fault path mlock what is mapped
        mlock_vma_pages_range(m, vma, start, end, lock=True)
    return 0


def mm_populate_range(task: Task, start: int, length: int, ignore_errors: bool) -> int:
    """Mirrors __mm_populate(): populate_vma_page_range() over each VMA of [start, start + len); stops at
    the first error unless ``ignore_errors`` (MAP_POPULATE, MAP_LOCKED and mlockall(MCL_CURRENT) ignore
    them). Returns 0 or -errno."""
    end = start + length
    nstart = start
    while nstart < end:
        vma = find_vma(task.mm, nstart)
        if vma is None or vma.vm_start >= end:
            break
        nstart = max(nstart, vma.vm_start)
        nend = min(end, vma.vm_end)
        if not vma.vm_flags & VM_SPECIAL:
            ret = populate_vma_page_range(task, vma, nstart, nend)
            if ret < 0 and not ignore_errors:
                return ret
        nstart = nend
    return 0


def mlock_posix_error(err: int) -> int:
    """Mirrors __mlock_posix_error_return(): EFAULT becomes ENOMEM, ENOMEM becomes EAGAIN."""
    return {errno.EFAULT: errno.ENOMEM, errno.ENOMEM: errno.EAGAIN}.get(err, err)


# --- the system calls -------------------------------------------------------------------------------

def do_mlock(task: Task, start: int, length: int, flags: int) -> None:
    """Mirrors do_mlock(): EPERM without the right to lock; the pages to lock (those of the range already
    locked are not counted twice once over the limit) checked against RLIMIT_MEMLOCK (ENOMEM) unless
    CAP_IPC_LOCK; the VMA flags applied; then the range populated (errors as __mlock_posix_error_return())."""
    if not can_do_mlock(task):
        raise syscall_error(errno.EPERM, "mlock: RLIMIT_MEMLOCK is 0 and no CAP_IPC_LOCK")
    length = page_align(length + (start & ~PAGE_MASK)) & _ULONG
    start &= PAGE_MASK
    lock_limit = rlimit_memlock_pages(task)
    locked = (length >> PAGE_SHIFT) + task.mm.locked_vm
    cap = task.capable("CAP_IPC_LOCK")
    if locked > lock_limit and not cap:
        locked -= count_mm_mlocked_page_nr(task.mm, start, length)
    if locked > lock_limit and not cap:
        raise syscall_error(errno.ENOMEM, "mlock: RLIMIT_MEMLOCK exceeded")
    apply_vma_lock_flags(task, start, length, flags)
    ret = mm_populate_range(task, start, length, ignore_errors=False)
    if ret:
        err = mlock_posix_error(-ret)
        raise syscall_error(err, "mlock: the range could not be populated")


def sys_mlock(task: Task, start: int, length: int) -> None:
    """Mirrors SYSCALL_DEFINE2(mlock)."""
    do_mlock(task, start, length, VmFlag.LOCKED)


def sys_mlock2(task: Task, start: int, length: int, flags: int) -> None:
    """Mirrors SYSCALL_DEFINE3(mlock2): EINVAL for flags other than MLOCK_ONFAULT."""
    if flags & ~MLOCK_ONFAULT:
        raise syscall_error(errno.EINVAL, f"mlock2: unknown flags {flags:#x}")
    do_mlock(task, start, length, VmFlag.LOCKED | (VmFlag.LOCKONFAULT if flags & MLOCK_ONFAULT else 0))


def sys_munlock(task: Task, start: int, length: int) -> None:
    """Mirrors SYSCALL_DEFINE2(munlock): apply_vma_lock_flags() with no lock flags (no limit check)."""
    length = page_align(length + (start & ~PAGE_MASK)) & _ULONG
    start &= PAGE_MASK
    apply_vma_lock_flags(task, start, length, 0)


def apply_mlockall_flags(task: Task, flags: int) -> None:
    """Mirrors apply_mlockall_flags(): mm->def_flags for MCL_FUTURE (VM_LOCKED, and VM_LOCKONFAULT with
    MCL_ONFAULT); with MCL_CURRENT every VMA gets the lock flags (errors ignored). 0 unlocks all."""
    mm = task.mm
    mm.def_flags &= ~VM_LOCKED_MASK
    if flags & MCL_FUTURE:
        mm.def_flags |= VmFlag.LOCKED
        if flags & MCL_ONFAULT:
            mm.def_flags |= VmFlag.LOCKONFAULT
        if not flags & MCL_CURRENT:
            return
    to_add = 0
    if flags & MCL_CURRENT:
        to_add = VmFlag.LOCKED | (VmFlag.LOCKONFAULT if flags & MCL_ONFAULT else 0)
    for vma in list(mm.vmas):
        try:
            mlock_fixup(task, vma, vma.vm_start, vma.vm_end, (vma.vm_flags & ~VM_LOCKED_MASK) | to_add)
        except OSError:
            pass  # "Ignore errors" (a split refused by vm.max_map_count)


def sys_mlockall(task: Task, flags: int) -> None:
    """Mirrors SYSCALL_DEFINE1(mlockall): EINVAL for no flags, unknown ones or MCL_ONFAULT alone; EPERM
    (can_do_mlock()); with MCL_CURRENT, ENOMEM unless total_vm fits RLIMIT_MEMLOCK or CAP_IPC_LOCK;
    then every mapping populated (mm_populate(0, TASK_SIZE), errors ignored)."""
    if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
        raise syscall_error(errno.EINVAL, f"mlockall: bad flags {flags:#x}")
    if not can_do_mlock(task):
        raise syscall_error(errno.EPERM, "mlockall: RLIMIT_MEMLOCK is 0 and no CAP_IPC_LOCK")
    if flags & MCL_CURRENT and task.mm.total_vm > rlimit_memlock_pages(task) and not task.capable("CAP_IPC_LOCK"):
        raise syscall_error(errno.ENOMEM, "mlockall: the address space is larger than RLIMIT_MEMLOCK")
    apply_mlockall_flags(task, flags)
    if flags & MCL_CURRENT:
        mm_populate_range(task, 0, TASK_SIZE, ignore_errors=True)


def sys_munlockall(task: Task) -> None:
    """Mirrors SYSCALL_DEFINE0(munlockall): apply_mlockall_flags(0)."""
    apply_mlockall_flags(task, 0)
