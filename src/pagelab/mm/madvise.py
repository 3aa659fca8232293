"""madvise(): advice that changes VMA flags, drops pages, marks them lazily free, or populates.

Mirrors mm/madvise.c: do_madvise() -> madvise_walk_vmas() -> madvise_vma_behavior(), with
madvise_dontneed_single_vma(), madvise_free_single_vma(), madvise_populate() and
madvise_update_vma(). Errors follow the kernel: unknown advice, an unaligned start or a range
that wraps around is EINVAL; a range with a hole is ENOMEM after the advice was applied to the
mapped parts; a flag change refused by vm.max_map_count is EAGAIN.

MADV_COLD and MADV_PAGEOUT (issue #9): madvise_cold() / madvise_pageout() ->
madvise_cold_or_pageout_pte_range(); PAGEOUT reclaims through mm/vmscan.py: reclaim_pages() (no swap
yet: anon and dirty shmem folios are activated; see that module for what is left to issue #10).

Not modelled yet (raise NotModelled once the kernel's own checks pass): MADV_COLLAPSE, MADV_HWPOISON,
MADV_SOFT_OFFLINE, MADV_GUARD_INSTALL/REMOVE.
"""

from __future__ import annotations

import errno
from os import POSIX_FADV_WILLNEED
from typing import TYPE_CHECKING

import numpy as np

from .. import constants as C
from ..arch.x86.pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    PTE_PFN_MASK,
    pmd_pfn,
    pmd_trans_huge,
    pte_index,
)
from ..arch.x86.tlb import flush_tlb_mm_range
from ..constants import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PMD_SIZE, page_align
from ..errors import NotModelled, kernel_bug, syscall_error
from ..fs.file import File
from ..hw.physmem import PG
from ..kernel.tracepoint import leaf_of, record_fault
from .fadvise import generic_fadvise
from .fault import handle_mm_fault
from .filemap import AddressSpace
from .huge_memory import (
    PMD_MASK,
    deferred_split_folio,
    is_huge_zero_pmd,
    madvise_free_huge_pmd,
    split_folio,
    split_huge_pmd_address,
)
from .memory import zap_page_range_single
from .mmap import ULONG_MASK
from .page_writeback import folio_mark_dirty
from .pagewalk import ACTION_AGAIN, MmWalk, MmWalkOps, walk_page_range_vma, walk_vma
from .pgtable import (
    clear_young_dirty_ptes,
    get_ptes,
    pmd_offset,
    pmdp_get,
    pte_offset_map,
    ptep_get,
    set_pmd_at,
)
from .rmap import folio_maybe_mapped_shared, rmap_walk
from .shmem import ShmemFile, shmem_truncate
from .swap import folio_deactivate, folio_mark_lazyfree, lru_add_drain
from .truncate import split_cache_folio
from .types import FaultFlag, MmStruct, Vma, VmFault, VmFaultResult, VmFlag, vma_is_anonymous
from .vma import find_vma, linear_page_index, vma_modify_flags
from .vmscan import folio_isolate_lru, reclaim_pages, try_to_unmap

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
    if behavior in (C.MADV_COLD, C.MADV_PAGEOUT):  # --- MADV_COLD / MADV_PAGEOUT (issue #9) ---
        madvise_cold_or_pageout(task, vma, start, end, behavior == C.MADV_PAGEOUT)
        return vma
    if behavior in _NOT_MODELLED:
        raise NotModelled(f"madvise({_NOT_MODELLED[behavior]}) is not modelled yet")
    if behavior in (C.MADV_DONTNEED, C.MADV_DONTNEED_LOCKED):
        forbidden = VmFlag.PFNMAP | VmFlag.HUGETLB
        if behavior == C.MADV_DONTNEED:
            forbidden |= VmFlag.LOCKED
        if vma.vm_flags & forbidden:
            raise syscall_error(errno.EINVAL, "madvise(MADV_DONTNEED): locked or special mapping")
        zap_page_range_single(m, vma, start, end, reclaim_pt=True)  # madvise_dontneed_single_vma()
        return vma
    if behavior == C.MADV_FREE:
        if vma.vm_flags & (VmFlag.PFNMAP | VmFlag.LOCKED | VmFlag.HUGETLB):
            raise syscall_error(errno.EINVAL, "madvise(MADV_FREE): locked or special mapping")
        if vma.vm_file is not None or vma.vm_flags & VmFlag.SHARED:  # !vma_is_anonymous()
            raise syscall_error(errno.EINVAL, "madvise(MADV_FREE): only private anonymous memory")
        madvise_free_single_vma(m, vma, start, end)
        return vma
    if behavior == C.MADV_WILLNEED:  # madvise_willneed(): anon and shmem swap readahead (nothing is swapped
        lru_add_drain(m)  # out), then "Push any new pages onto the LRU now" (measured: the batch is applied)
        f = vma.vm_file
        if isinstance(f, File):  # a regular file: vfs_fadvise(POSIX_FADV_WILLNEED) of the range
            offset = (linear_page_index(vma, start)) << PAGE_SHIFT
            generic_fadvise(task, f, offset, end - start, POSIX_FADV_WILLNEED)
        return vma
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
    if not isinstance(f, ShmemFile):
        raise NotModelled("madvise(MADV_REMOVE) on a regular file (ext4 hole punching)")
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
    """Mirrors madvise_free_single_vma(): walk [start, end) with madvise_free_walk_ops, flush if needed.

    The pages it marks keep their data and cost no fault when written again; reclaim may drop them
    instead of swapping them (pglazyfree counts them, pglazyfreed counts those reclaim frees).
    """
    lru_add_drain(m)
    changed = [0]
    err = walk_page_range_vma(vma, start, end, MADVISE_FREE_WALK_OPS, changed)
    kernel_bug(err != 0, f"madvise_free_single_vma: walk error {err}")
    if changed[0]:
        flush_tlb_mm_range(m, vma.mm, start, end)


def madvise_free_pte_range(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors madvise_free_pte_range(): mark the anon folios of [addr, end) clean and old in their PTEs
    (clear_young_dirty_ptes()) and queue them to become lazily free (folio_mark_lazyfree()).

    A PMD leaf goes to madvise_free_huge_pmd(). A large folio the PTEs map only in part here is split
    first (split_folio(), unless it may be shared), then its pages go on as small folios; one mapped
    whole is marked once. Empty entries and the zero page are left alone. A folio that is PG_dirty (or in
    the swap cache) is skipped unless this mapping is its only one (folio_mapcount() == folio_nr_pages()),
    and cleaned otherwise; a clean one is marked whatever else maps it (6.18 checks sharing only there:
    measured, a parent's MADV_FREE after fork makes its own PTEs clean while the child's stay dirty). The
    PTEs of a table change in one numpy pass; the folios are queued in address order, as the kernel's loop
    does.
    """
    m, vma = walk.machine, walk_vma(walk)
    if pmd_trans_huge(pmdp_get(m, pmd, addr)) and madvise_free_huge_pmd(m, vma, pmd, addr, end):
        return 0
    row = pte_offset_map(m, pmd, addr)
    if not row:
        return 0
    frames = m.frames
    while True:
        ptes = get_ptes(m, row, addr, (end - addr) >> PAGE_SHIFT)
        mask = ((ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0) & ((ptes & _PAGE_SPECIAL) == 0)  # vm_normal_folio()
        pfns = (ptes[mask] & PTE_PFN_MASK) >> PAGE_SHIFT
        heads = np.asarray(frames.compound_head(pfns))
        large = (frames.flags[heads] & PG.HEAD) != 0
        if not large.any() or not _split_partly_mapped_folios(m, heads[large]):
            break  # no large folio here was split: the PTEs stand (else look again: ``nr = 0; continue``)
    flags = frames.flags[heads]
    dirty = (flags & (PG.DIRTY | PG.SWAPCACHE)) != 0
    mapcount = np.where(large, frames.large_mapcount[heads], frames.mapcount[heads])
    nr_pages = np.where(large, np.left_shift(1, frames.order[heads].astype(np.int64)), 1)
    keep = ~dirty | (mapcount == nr_pages)  # a dirty folio only if this mapping is all there is
    mask[mask] = keep
    if not mask.any():
        return 0
    heads = heads[keep]
    folios = heads[np.concatenate(([True], heads[1:] != heads[:-1]))]  # one per folio, in address order
    clear_young_dirty_ptes(m, row, addr, mask)
    walk.private[0] += heads.shape[0]
    for folio in folios.tolist():
        frames.flags[folio] &= ~PG.DIRTY  # folio_clear_dirty()
        folio_mark_lazyfree(m, folio)
    return 0


def _split_partly_mapped_folios(m: Machine, heads: np.ndarray) -> bool:
    """madvise_free_pte_range()'s large-folio rule for the large folios ``heads`` (one entry per PTE that
    maps one of their pages here): a folio with fewer of its pages mapped here than it has
    (madvise_folio_pte_batch() < folio_nr_pages()) is split, unless it may be shared. True if any was."""
    frames = m.frames
    folios, counts = np.unique(heads, return_counts=True)
    split = False
    for folio, nr in zip(folios.tolist(), counts.tolist(), strict=True):
        if nr < 1 << int(frames.order[folio]) and not folio_maybe_mapped_shared(m, folio):
            deferred_split_folio(m, folio, True)  # split_folio() unmaps it first: now partially mapped
            split_folio(m, folio)
            split = True
    return split


MADVISE_FREE_WALK_OPS = MmWalkOps(pmd_entry=madvise_free_pte_range)


# --- MADV_COLD / MADV_PAGEOUT (issue #9) ------------------------------------------------------------------

def can_do_file_pageout(task: Task, vma: Vma) -> bool:
    """Mirrors can_do_file_pageout(): a file mapping whose file the task owns or may write
    (inode_owner_or_capable() or file_permission(MAY_WRITE)). Simplified: the simulator keeps no file
    owners or modes (its files belong to whoever runs it, as the real backend's child owns the files
    it creates), so every file mapping qualifies."""
    return vma.vm_file is not None


def madvise_cold_or_pageout(task: Task, vma: Vma, start: int, end: int, pageout: bool) -> None:
    """Mirrors madvise_cold() and madvise_pageout(): EINVAL on a locked, PFN-map or hugetlb VMA
    (can_madv_lru_vma()); PAGEOUT of a shared file mapping the task may not write does nothing. The
    per-CPU batches are drained first (lru_add_drain()), then [start, end) is walked with cold_walk_ops:
    MADV_COLD deactivates the folios mapped only here, MADV_PAGEOUT reclaims them (reclaim_pages())."""
    m = task.machine
    if vma.vm_flags & (VmFlag.LOCKED | VmFlag.PFNMAP | VmFlag.HUGETLB):
        name = "MADV_PAGEOUT" if pageout else "MADV_COLD"
        raise syscall_error(errno.EINVAL, f"madvise({name}): locked or special mapping")
    anon_only = pageout and not vma_is_anonymous(vma) and not can_do_file_pageout(task, vma)
    if anon_only and vma.vm_flags & VmFlag.MAYSHARE:
        return
    lru_add_drain(m)
    flush = [False]
    err = walk_page_range_vma(vma, start, end, COLD_WALK_OPS, (pageout, anon_only, flush))
    kernel_bug(err != 0, f"madvise_cold_or_pageout: walk error {err}")
    if flush[0]:  # tlb_finish_mmu(): the entries made old
        flush_tlb_mm_range(m, vma.mm, start, end)


def _cold_or_pageout_folio(m: Machine, folio: int, pageout: bool, isolated: list[int]) -> None:
    """The common tail of both levels: PG_referenced cleared, PG_workingset for an active folio, then
    isolated for reclaim (PAGEOUT) or queued for deactivation (COLD)."""
    frames = m.frames
    frames.flags[folio] &= ~PG.REFERENCED  # folio_clear_referenced(); folio_test_clear_young(): no page_idle
    if frames.flags[folio] & PG.ACTIVE:
        frames.flags[folio] |= PG.WORKINGSET
    if pageout:
        if folio_isolate_lru(m, folio):
            isolated.append(folio)
    else:
        folio_deactivate(m, folio)


def _split_large_folio(m: Machine, folio: int) -> bool:
    """split_folio() of a large folio madvise covers in part: unmap_folio() (PMD mappings split: a file
    PMD is zapped), the split, remap_page(). True if it was split. An anon folio's pages are mapped
    again (zero-filled ones to the zero page); a page-cache folio's are not (remap_page() only remaps
    anon folios): every mapping of it is gone and its pages fault back in, so the walk finds no PTE
    left to reclaim there."""
    frames = m.frames
    if frames.flags[folio] & PG.ANON:
        if frames.entire_mapcount[folio]:
            for vma, addr in rmap_walk(m, folio):
                split_huge_pmd_address(m, vma, addr)
        deferred_split_folio(m, folio, True)
        split_folio(m, folio)
        return True
    mapping = m.mappings.get(int(frames.mapping[folio]))
    if not isinstance(mapping, AddressSpace):
        return False
    try_to_unmap(m, folio)
    return split_cache_folio(m, mapping, int(frames.index[folio]), folio)


def madvise_cold_or_pageout_pte_range(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors madvise_cold_or_pageout_pte_range() for [addr, end) under one PMD entry.

    A PMD leaf (THP) mapped only here is handled whole when the range covers its 2 MiB: its Accessed bit
    cleared (COLD), then deactivated or isolated; a range covering part of it splits the folio first,
    then goes on by PTEs. By PTEs: each normal folio mapped only here (folio_maybe_mapped_shared()) and
    on an LRU list, one batch of PTEs per folio; a large folio the range covers in part is split, then
    its pages looked at again. COLD clears the PTEs' Accessed bits. PAGEOUT reclaims what it isolated
    here before returning (reclaim_pages(), once per PMD, as the kernel does).
    """
    m = walk.machine
    pageout, anon_only, flush = walk.private
    frames = m.frames
    isolated: list[int] = []
    entry = pmdp_get(m, pmd, addr)
    if pmd_trans_huge(entry):
        if is_huge_zero_pmd(m, entry):
            return 0
        folio = pmd_pfn(entry)
        if folio_maybe_mapped_shared(m, folio) or anon_only and not frames.flags[folio] & PG.ANON:
            return 0
        if end - addr != PMD_SIZE:
            if not _split_large_folio(m, folio):
                return 0
        else:
            if not pageout and entry & _PAGE_ACCESSED:  # pmdp_invalidate() + pmd_mkold()
                set_pmd_at(m, pmd, addr, entry & ~_PAGE_ACCESSED)
                flush[0] = True
            _cold_or_pageout_folio(m, folio, pageout, isolated)
            if pageout:
                reclaim_pages(m, isolated)
            return 0
    row = pte_offset_map(m, pmd, addr)
    if not row:
        return 0
    n = (end - addr) >> PAGE_SHIFT
    ptes = get_ptes(m, row, addr, n).copy()
    i = 0
    while i < n:
        pte = int(ptes[i])
        if not pte & (_PAGE_PRESENT | _PAGE_PROTNONE) or pte & _PAGE_SPECIAL:  # vm_normal_folio()
            i += 1
            continue
        pfn = (pte & PTE_PFN_MASK) >> PAGE_SHIFT
        folio = pfn - int(frames.head_offset[pfn])
        nr = 1
        if frames.flags[folio] & PG.HEAD:
            nr = _folio_pte_batch(ptes, i, pfn, folio, 1 << int(frames.order[folio]))
            if nr < 1 << int(frames.order[folio]):
                if folio_maybe_mapped_shared(m, folio) or anon_only and not frames.flags[folio] & PG.ANON:
                    i += nr
                    continue
                if _split_large_folio(m, folio):
                    ptes = get_ptes(m, row, addr, n).copy()  # look at the same PTEs again (nr = 0)
                else:
                    i += nr
                continue
        if not frames.flags[folio] & PG.LRU or folio_maybe_mapped_shared(m, folio) \
                or anon_only and not frames.flags[folio] & PG.ANON:
            i += nr
            continue
        if not pageout:
            young = (ptes[i:i + nr] & _PAGE_ACCESSED) != 0
            if young.any():  # clear_young_dirty_ptes(CYDP_CLEAR_YOUNG)
                view = m.ptpool.tables[row, pte_index(addr) + i:pte_index(addr) + i + nr]
                view &= ~_PAGE_ACCESSED
                ptes[i:i + nr] &= ~_PAGE_ACCESSED
                flush[0] = True
        _cold_or_pageout_folio(m, folio, pageout, isolated)
        i += nr
    if pageout:
        reclaim_pages(m, isolated)
    return 0


def _folio_pte_batch(ptes: np.ndarray, i: int, pfn: int, folio: int, folio_nr: int) -> int:
    """madvise_folio_pte_batch(): how many PTEs from ``i`` map consecutive pages of the same folio."""
    limit = min(ptes.shape[0] - i, folio_nr - (pfn - folio))
    want = pfn + np.arange(limit, dtype=np.int64)
    got = (ptes[i:i + limit] & PTE_PFN_MASK) >> PAGE_SHIFT
    ok = ((ptes[i:i + limit] & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0) & (got == want)
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if bad.shape[0] else limit


COLD_WALK_OPS = MmWalkOps(pmd_entry=madvise_cold_or_pageout_pte_range)


def faultin_page(task: Task, vma: Vma, addr: int, flags: int, retry_tried: bool) -> VmFault:
    """Mirrors faultin_page() with a ``locked`` pointer: the fault may drop the mmap lock for I/O
    (FAULT_FLAG_ALLOW_RETRY); on VM_FAULT_RETRY the caller's loop waits for what it waited on and faults
    again. ``retry_tried``: the retry carries FAULT_FLAG_TRIED (__get_user_pages_locked(), as
    MADV_POPULATE_* does: each retried fault counts as major); without it (populate_vma_page_range()
    for MAP_POPULATE and mlock, whose __mm_populate() loop starts over) it does not (measured: a cold
    MAP_POPULATE counts 0 major faults, MADV_POPULATE_READ 16)."""
    from ..kernel.task import io_schedule

    flags |= FaultFlag.ALLOW_RETRY | FaultFlag.KILLABLE
    while True:
        vmf = handle_mm_fault(vma, addr, flags, regs=False)
        task.charge_fault(vmf, gup=True)
        if not vmf.result & VmFaultResult.RETRY:
            return vmf
        if vmf.wait_for is not None:
            io_schedule(task, vmf.wait_for)
        if retry_tried:
            flags |= FaultFlag.TRIED


def mm_populate(task: Task, start: int, length: int) -> None:
    """Mirrors mm_populate() (MAP_POPULATE, mremap of a locked range): __mm_populate() with errors ignored,
    populate_vma_page_range() over each VMA of [start, start + length) (mm/mlock.py: a private writable
    VMA is populated for writing, every page COW-copied; others for reading; PROT_NONE ones skipped).
    mmap() succeeds whatever the faults did."""
    from .mlock import mm_populate_range  # mlock builds on this module's GUP helpers

    mm_populate_range(task, start, length, ignore_errors=True)


def madvise_populate(task: Task, start: int, end: int, write: bool) -> None:
    """Mirrors madvise_populate() -> faultin_page_range(): fault every page in now, GUP-style.

    These faults count in min_flt (rusage) but not in perf's page-faults. A range the VMA does not
    allow (check_vma_flags() in mm/gup.c) is EINVAL; a hole is ENOMEM. Each 2 MiB piece is walked
    once to find the pages GUP would not find (gup_walk_ops); each is checked again just before its
    fault, since an earlier fault may have mapped it (fault-around, a huge page).
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
        vma_end = min(vma.vm_end, end)
        while addr < vma_end:
            piece_end = min((addr | ((1 << 21) - 1)) + 1, vma_end)
            missing: list[int] = []
            err = walk_page_range_vma(vma, addr, piece_end, GUP_WALK_OPS, (missing, write))
            kernel_bug(err != 0, f"madvise_populate: walk error {err}")
            for a in missing:
                if follow_page(m, mm, a, write):
                    continue  # an earlier fault mapped it
                before = leaf_of(task, a) if m.fault_log is not None else 0
                vmf = faultin_page(task, vma, a, flags, retry_tried=True)
                if m.fault_log is not None:
                    record_fault(task, a, -1, before, vmf, "minor", ("madvise_populate", *vmf.path))
                if vmf.result & VmFaultResult.OOM:
                    raise syscall_error(errno.ENOMEM, "madvise(MADV_POPULATE): out of memory")
                if vmf.result & VmFaultResult.SIGBUS:
                    raise syscall_error(errno.EFAULT, "madvise(MADV_POPULATE): page beyond the end of the file")
            addr = piece_end


def _gup_ok(entries: np.ndarray, write: bool) -> np.ndarray:
    """follow_page_pte()'s test for each entry: present to the MMU, and writable if GUP writes."""
    ok: np.ndarray = (entries & _PAGE_PRESENT) != 0
    if write:
        ok &= (entries & _PAGE_RW) != 0
    return ok


def follow_page(m: Machine, mm: MmStruct, addr: int, write: bool) -> bool:
    """Mirrors follow_page_mask() as GUP uses it: whether ``addr`` is mapped as the access needs
    (a PMD leaf answers for its whole 2 MiB: follow_huge_pmd())."""
    pmd = pmd_offset(m, mm, addr)
    if not pmd:
        return False
    entry = pmdp_get(m, pmd, addr)
    if not pmd_trans_huge(entry):
        row = pte_offset_map(m, pmd, addr)
        entry = ptep_get(m, row, addr) if row else 0
    return bool(entry & _PAGE_PRESENT) and (not write or bool(entry & _PAGE_RW))


def _gup_pmd_entry(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """The pages of [addr, end) under one PMD entry that follow_page() would not find (GUP faults them).

    The pages it finds get FOLL_TOUCH's write half (faultin_page_range() passes FOLL_TOUCH, and FOLL_WRITE
    for MADV_POPULATE_WRITE): a PMD leaf is made young and dirty (touch_pmd()), a PTE-mapped folio whose
    PTE is clean is marked dirty (follow_page_pte(): folio_mark_dirty()), so a lazily freed page that
    MADV_POPULATE_WRITE reaches is dirty again, no longer LazyFree (measured on 6.18). Simplified: the
    read half (pmd_mkyoung, folio_mark_accessed()) is left out."""
    m = walk.machine
    missing, write = walk.private
    entry = pmdp_get(m, pmd, addr)
    if pmd_trans_huge(entry):
        if not entry & _PAGE_PRESENT or (write and not entry & _PAGE_RW):
            missing.extend(range(addr, end, PAGE_SIZE))
        elif write and (entry & (_PAGE_ACCESSED | _PAGE_DIRTY)) != _PAGE_ACCESSED | _PAGE_DIRTY:
            set_pmd_at(m, pmd, addr & PMD_MASK, entry | _PAGE_ACCESSED | _PAGE_DIRTY)  # touch_pmd()
        return 0
    row = pte_offset_map(m, pmd, addr)
    if not row:
        walk.action = ACTION_AGAIN
        return 0
    ptes = get_ptes(m, row, addr, (end - addr) >> PAGE_SHIFT)
    ok = _gup_ok(ptes, write)
    bad = np.flatnonzero(~ok)
    missing.extend((addr + (bad << PAGE_SHIFT)).tolist())
    if write:
        clean = ptes[ok & ((ptes & (_PAGE_SPECIAL | _PAGE_DIRTY)) == 0)]
        if clean.shape[0]:
            pfns = (clean & PTE_PFN_MASK) >> PAGE_SHIFT
            for head in np.unique(np.asarray(m.frames.compound_head(pfns))).tolist():
                folio_mark_dirty(m, int(head))
    return 0


def _gup_hole(addr: int, end: int, depth: int, walk: MmWalk) -> int:
    """No table maps [addr, end): GUP faults every page of it."""
    walk.private[0].extend(range(addr, end, PAGE_SIZE))
    return 0


GUP_WALK_OPS = MmWalkOps(pmd_entry=_gup_pmd_entry, pte_hole=_gup_hole)
