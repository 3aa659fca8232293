"""madvise(): advice that changes VMA flags, drops pages, marks them lazily free, or populates.

Mirrors mm/madvise.c: do_madvise() -> madvise_walk_vmas() -> madvise_vma_behavior(), with
madvise_dontneed_single_vma(), madvise_free_single_vma(), madvise_populate() and
madvise_update_vma(). Errors follow the kernel: unknown advice, an unaligned start or a range
that wraps around is EINVAL; a range with a hole is ENOMEM after the advice was applied to the
mapped parts; a flag change refused by vm.max_map_count is EAGAIN.

Not modelled yet (raise NotModelled once the kernel's own checks pass): MADV_COLD, MADV_PAGEOUT
(reclaim), MADV_COLLAPSE, MADV_HWPOISON, MADV_SOFT_OFFLINE, MADV_GUARD_INSTALL/REMOVE.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from .. import constants as C
from ..arch.x86.pgtable import pte_mkclean, pte_mkold, pte_pfn, pte_present, pte_special, pte_write
from ..arch.x86.tlb import flush_tlb_mm_range
from ..constants import PAGE_MASK, PAGE_SHIFT, page_align
from ..errors import NotModelled, syscall_error
from ..observe.trace import leaf_of, record
from .fault import handle_mm_fault
from .memory import zap_page_range_single
from .mmap import ULONG_MASK
from .pgtable import pte_ranges, pte_table, set_entry
from .shmem import shmem_truncate
from .swap import folio_mark_lazyfree, lru_add_drain
from .types import FaultFlag, Vma, VmFaultResult, VmFlag
from .vma import find_vma, linear_page_index, vma_modify_flags

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine

_VALID = {
    C.MADV_NORMAL, C.MADV_RANDOM, C.MADV_SEQUENTIAL, C.MADV_WILLNEED, C.MADV_DONTNEED, C.MADV_FREE,
    C.MADV_REMOVE, C.MADV_DONTFORK, C.MADV_DOFORK, C.MADV_MERGEABLE, C.MADV_UNMERGEABLE,
    C.MADV_HUGEPAGE, C.MADV_NOHUGEPAGE, C.MADV_DONTDUMP, C.MADV_DODUMP, C.MADV_WIPEONFORK,
    C.MADV_KEEPONFORK, C.MADV_COLD, C.MADV_PAGEOUT, C.MADV_POPULATE_READ, C.MADV_POPULATE_WRITE,
    C.MADV_DONTNEED_LOCKED, C.MADV_COLLAPSE, C.MADV_HWPOISON, C.MADV_SOFT_OFFLINE,
    C.MADV_GUARD_INSTALL, C.MADV_GUARD_REMOVE,
}
_NOT_MODELLED = {
    C.MADV_COLD: "MADV_COLD", C.MADV_PAGEOUT: "MADV_PAGEOUT",
    C.MADV_COLLAPSE: "MADV_COLLAPSE", C.MADV_HWPOISON: "MADV_HWPOISON",
    C.MADV_SOFT_OFFLINE: "MADV_SOFT_OFFLINE", C.MADV_GUARD_INSTALL: "MADV_GUARD_INSTALL",
    C.MADV_GUARD_REMOVE: "MADV_GUARD_REMOVE",
}


def do_madvise(task: Task, start: int, len_in: int, behavior: int) -> None:
    """Mirrors do_madvise(): check the arguments (madvise_should_skip()), then apply the advice.

    ``start`` and ``len_in`` are unsigned 64-bit, ``behavior`` an int (pagelab.abi).
    """
    if not is_valid_madvise(start, len_in, behavior):
        raise syscall_error(errno.EINVAL, f"madvise: invalid advice {behavior}, unaligned start or wrapping range")
    end = start + page_align(len_in)
    if end == start:
        return
    if behavior in (C.MADV_HWPOISON, C.MADV_SOFT_OFFLINE):  # madvise_inject_error()
        if not task.capable("CAP_SYS_ADMIN"):
            raise syscall_error(errno.EPERM, "madvise: memory-failure injection needs CAP_SYS_ADMIN")
        raise NotModelled(f"madvise({_NOT_MODELLED[behavior]}) is not modelled")
    if behavior in (C.MADV_POPULATE_READ, C.MADV_POPULATE_WRITE):
        return madvise_populate(task, start, end, behavior == C.MADV_POPULATE_WRITE)
    madvise_walk_vmas(task, start, end, behavior)


def is_valid_madvise(start: int, len_in: int, behavior: int) -> bool:
    """Mirrors is_valid_madvise(): a known advice, a page-aligned start, a length that neither rounds
    up to zero nor makes ``start + len`` wrap around."""
    if behavior not in _VALID or start & ~PAGE_MASK:
        return False
    length = page_align(len_in) & ULONG_MASK
    if len_in and not length:
        return False
    return start + length <= ULONG_MASK


def madvise_walk_vmas(task: Task, start: int, end: int, behavior: int) -> None:
    """Mirrors madvise_walk_vmas(): visit each VMA piece of [start, end); a hole means ENOMEM."""
    mm = task.mm
    unmapped = False
    vma = find_vma(mm, start)
    while True:
        if vma is None:
            raise syscall_error(errno.ENOMEM, "madvise: range not fully mapped")
        if start < vma.vm_start:
            unmapped = True
            start = vma.vm_start
            if start >= end:
                break
        tmp = min(vma.vm_end, end)
        vma = madvise_vma_behavior(task, vma, start, tmp, behavior)
        start = max(tmp, vma.vm_end)
        if start >= end:
            break
        vma = find_vma(mm, start)
    if unmapped:
        raise syscall_error(errno.ENOMEM, "madvise: range not fully mapped")


def madvise_vma_behavior(task: Task, vma: Vma, start: int, end: int, behavior: int) -> Vma:
    """Mirrors madvise_vma_behavior(): apply one advice to [start, end) of one VMA.

    A flag change that cannot split the VMA (vm.max_map_count) is EAGAIN, as the kernel reports
    ENOMEM from madvise_update_vma().
    """
    m = task.machine
    if behavior == C.MADV_REMOVE:
        madvise_remove(task, vma, start, end)
        return vma
    if behavior in _NOT_MODELLED:
        raise NotModelled(f"madvise({_NOT_MODELLED[behavior]}) is not modelled yet")
    if behavior in (C.MADV_DONTNEED, C.MADV_DONTNEED_LOCKED):
        forbidden = VmFlag.PFNMAP | VmFlag.HUGETLB
        if behavior == C.MADV_DONTNEED:
            forbidden |= VmFlag.LOCKED
        if vma.vm_flags & forbidden:
            raise syscall_error(errno.EINVAL, "madvise(MADV_DONTNEED): locked or special mapping")
        zap_page_range_single(m, vma, start, end)
        return vma
    if behavior == C.MADV_FREE:
        if vma.vm_flags & (VmFlag.PFNMAP | VmFlag.LOCKED | VmFlag.HUGETLB):
            raise syscall_error(errno.EINVAL, "madvise(MADV_FREE): locked or special mapping")
        if vma.vm_file is not None or vma.vm_flags & VmFlag.SHARED:  # !vma_is_anonymous()
            raise syscall_error(errno.EINVAL, "madvise(MADV_FREE): only private anonymous memory")
        madvise_free_single_vma(m, vma, start, end)
        return vma
    if behavior == C.MADV_WILLNEED:
        return vma  # anonymous memory: swap readahead, and nothing is swapped out
    new = _new_flags(vma, behavior)
    if new == vma.vm_flags:
        return vma
    try:
        return vma_modify_flags(vma.mm, vma, start, end, new)  # madvise_update_vma()
    except OSError as exc:
        if exc.errno == errno.ENOMEM:
            raise syscall_error(errno.EAGAIN, "madvise: splitting would exceed vm.max_map_count") from None
        raise


def _new_flags(vma: Vma, behavior: int) -> int:
    """The vm_flags an advice asks for (madvise_vma_behavior()'s switch), or EINVAL."""
    f = vma.vm_flags
    if behavior == C.MADV_NORMAL:
        return f & ~(VmFlag.SEQ_READ | VmFlag.RAND_READ)
    if behavior == C.MADV_SEQUENTIAL:
        return (f & ~VmFlag.RAND_READ) | VmFlag.SEQ_READ
    if behavior == C.MADV_RANDOM:
        return (f & ~VmFlag.SEQ_READ) | VmFlag.RAND_READ
    if behavior == C.MADV_DONTFORK:
        return f | VmFlag.DONTCOPY
    if behavior == C.MADV_DOFORK:
        if f & VmFlag.IO:
            raise syscall_error(errno.EINVAL, "madvise(MADV_DOFORK): VM_IO mapping")
        return f & ~VmFlag.DONTCOPY
    if behavior == C.MADV_WIPEONFORK:
        if vma.vm_file is not None or f & VmFlag.SHARED:
            raise syscall_error(errno.EINVAL, "madvise(MADV_WIPEONFORK): only private anonymous memory")
        return f | VmFlag.WIPEONFORK
    if behavior == C.MADV_KEEPONFORK:
        return f & ~VmFlag.WIPEONFORK
    if behavior == C.MADV_DONTDUMP:
        return f | VmFlag.DONTDUMP
    if behavior == C.MADV_DODUMP:
        if f & (VmFlag.IO | VmFlag.DONTEXPAND | VmFlag.PFNMAP | VmFlag.MIXEDMAP) and not f & VmFlag.HUGETLB:
            raise syscall_error(errno.EINVAL, "madvise(MADV_DODUMP): special mapping")  # VM_SPECIAL
        return f & ~VmFlag.DONTDUMP
    if behavior == C.MADV_MERGEABLE:  # ksm_madvise(): only for KSM-compatible (private anon) VMAs
        return f | VmFlag.MERGEABLE if not f & VmFlag.SHARED and vma.vm_file is None else f
    if behavior == C.MADV_UNMERGEABLE:
        return f & ~VmFlag.MERGEABLE
    if behavior == C.MADV_HUGEPAGE:  # hugepage_madvise()
        return (f & ~VmFlag.NOHUGEPAGE) | VmFlag.HUGEPAGE
    if behavior == C.MADV_NOHUGEPAGE:
        return (f & ~VmFlag.HUGEPAGE) | VmFlag.NOHUGEPAGE
    raise syscall_error(errno.EINVAL, f"madvise: advice {behavior}")


def madvise_remove(task: Task, vma: Vma, start: int, end: int) -> None:
    """Mirrors madvise_remove() -> vfs_fallocate(PUNCH_HOLE | KEEP_SIZE) -> shmem_fallocate(): free the
    pages of [start, end) from the shmem file behind ``vma``, zapping them first wherever the file is mapped.

    EINVAL on a locked or private mapping (no file), EACCES unless the mapping is shared and may be
    writable (vma_is_shared_maywrite()). The file keeps its size, and so its commit charge.
    """
    m, f = task.machine, vma.vm_file
    if vma.vm_flags & VmFlag.LOCKED or f is None:
        raise syscall_error(errno.EINVAL, "madvise(MADV_REMOVE): needs a shared file mapping")
    if not (vma.vm_flags & VmFlag.SHARED and vma.vm_flags & VmFlag.MAYWRITE):
        raise syscall_error(errno.EACCES, "madvise(MADV_REMOVE): the mapping may not be written")
    first = linear_page_index(vma, start)
    last = first + ((end - start) >> PAGE_SHIFT)
    for other in [v for v in vma.mm.vmas if v.vm_file is f]:  # unmap_mapping_range()
        lo = max(first, other.vm_pgoff)
        hi = min(last, other.vm_pgoff + other.pages)
        if lo < hi:
            zap_page_range_single(m, other, other.vm_start + ((lo - other.vm_pgoff) << PAGE_SHIFT),
                                  other.vm_start + ((hi - other.vm_pgoff) << PAGE_SHIFT))
    shmem_truncate(f, first, last)  # shmem_undo_range()


def madvise_free_single_vma(m: Machine, vma: Vma, start: int, end: int) -> None:
    """Mirrors madvise_free_pte_range(): mark exclusive anon pages clean, old and lazily freeable.

    Such pages keep their data and cost no fault when written again; reclaim may drop them instead
    of swapping them (pglazyfree counts them, pglazyfreed counts those reclaim frees).
    """
    lru_add_drain(m)
    changed = 0
    for row, lo, hi in pte_ranges(m, vma.mm, start, end):
        for k in m.ptpool.tables[row, lo:hi].nonzero()[0] + lo:
            pte = int(m.ptpool.tables[row, k])
            if not pte_present(pte) or pte_special(pte):
                continue
            pfn = pte_pfn(pte)
            if m.frames.mapcount[pfn] != 1:
                continue  # folio_maybe_mapped_shared()
            set_entry(m, row, int(k), pte_mkold(pte_mkclean(pte)))
            changed += 1
            folio_mark_lazyfree(m, pfn)
    if changed:
        flush_tlb_mm_range(m, vma.mm, start, end)


def madvise_populate(task: Task, start: int, end: int, write: bool) -> None:
    """Mirrors madvise_populate() -> faultin_page_range(): fault every page in now, GUP-style.

    These faults count in min_flt (rusage) but not in perf's page-faults. A range the VMA does not
    allow (check_vma_flags() in mm/gup.c) is EINVAL; a hole is ENOMEM.
    """
    mm, m = task.mm, task.machine
    flags = FaultFlag.WRITE if write else FaultFlag.NONE
    addr = start
    while addr < end:
        vma = find_vma(mm, addr)
        if vma is None or vma.vm_start > addr:
            raise syscall_error(errno.ENOMEM, "madvise(MADV_POPULATE): range not fully mapped")
        if vma.vm_flags & (VmFlag.PFNMAP | VmFlag.IO):
            raise syscall_error(errno.EINVAL, "madvise(MADV_POPULATE): VM_IO/VM_PFNMAP mapping")
        need = VmFlag.WRITE if write else VmFlag.READ
        if not vma.vm_flags & need:
            raise syscall_error(errno.EINVAL, "madvise(MADV_POPULATE): the mapping does not allow that access")
        for a in range(addr, min(vma.vm_end, end), 1 << PAGE_SHIFT):
            row = pte_table(m, mm, a)
            pte = int(m.ptpool.tables[row, (a >> PAGE_SHIFT) & 511]) if row else 0
            if pte & 1 and (not write or pte_write(pte)):
                continue  # follow_page_pte() found it
            before = leaf_of(task, a) if m.fault_log is not None else 0
            vmf = handle_mm_fault(vma, a, flags, regs=False)
            if m.fault_log is not None:
                record(task, a, -1, before, vmf, "minor", ("madvise_populate", *vmf.path))
            if vmf.result & VmFaultResult.OOM:
                raise syscall_error(errno.ENOMEM, "madvise(MADV_POPULATE): out of memory")
            task.charge_fault(vmf, gup=True)
        addr = min(vma.vm_end, end)
