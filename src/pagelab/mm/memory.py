"""Copying page tables at fork; tearing mappings down: zapping PTEs over a range, the whole address space at exit.

Mirrors the non-fault half of mm/memory.c: copy_page_range() (fork: copy_pte_range(), copy_present_ptes()),
unmap_page_range() -> zap_pmd_range() -> zap_pte_range(),
zap_page_range_single() (MADV_DONTNEED), unmap_vmas(); and mm/mmap.c: exit_mmap(). The walk down to
the PMD level is the one page-table walker (mm/pagewalk.py, zap_walk_ops), which skips empty upper
entries; a huge PMD is zapped whole (zap_huge_pmd()) or split first when the range covers part of it.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..arch.x86.pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    PTE_PFN_MASK,
    pmd_index,
    pmd_trans_huge,
)
from ..arch.x86.tlb import flush_tlb_mm_range, release_asid
from ..constants import PAGE_SHIFT, PMD_SIZE
from ..errors import kernel_bug
from ..hw.physmem import PG
from ..stats import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES
from .huge_memory import copy_huge_pmd, mm_put_huge_zero_folio, split_huge_pmd, zap_huge_pmd
from .mm_inline import lruvec_del_folio
from .page_alloc import free_unref_folios, put_page
from .page_writeback import folio_mark_dirty
from .pagewalk import MmWalk, MmWalkOps, walk_page_range_vma, walk_vma
from .pgtable import (
    free_all_pgtables,
    get_and_clear_full_ptes,
    get_ptes,
    modify_prot_commit_ptes,
    pgtable_free,
    pmd_alloc,
    pmdp_get,
    pte_alloc,
    pte_offset_map,
    set_entry,
)
from .rmap import (
    folio_dup_file_rmap_ptes,
    folio_remove_rmap_ptes,
    folio_remove_rmap_ptes_exclusive,
    folio_try_dup_anon_rmap_ptes,
)
from .types import MmStruct, Vma, VmFlag, add_mm_counter
from .vma import vma_unlink

if TYPE_CHECKING:
    from ..machine import Machine


def unmap_page_range(m: Machine, vma: Vma, start: int, end: int, reclaim_pt: bool = False) -> int:
    """Mirrors unmap_page_range(): clear the mappings of [start, end) in ``vma`` and drop their pages.

    Returns how many present entries were cleared (a zapped huge PMD counts 1); the caller flushes the
    TLB when it is not 0 (tlb_finish_mmu()). ``reclaim_pt`` is zap_details.reclaim_pt (MADV_DONTNEED,
    CONFIG_PT_RECLAIM): a PTE table whose whole 2 MiB the range covers is freed once empty.
    """
    cleared = [0, int(reclaim_pt)]
    err = walk_page_range_vma(vma, start, end, ZAP_WALK_OPS, cleared)
    kernel_bug(err != 0, f"unmap_page_range: [{start:#x}, {end:#x}) is not inside the VMA")
    return cleared[0]


def zap_pmd_range(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors zap_pmd_range()'s loop body, as the zap walk's pmd_entry: a huge PMD that [addr, end)
    covers whole goes to zap_huge_pmd(); part of one is split first (__split_huge_pmd()); then the PTEs."""
    m, vma = walk.machine, walk_vma(walk)
    if pmd_trans_huge(pmdp_get(m, pmd, addr)):
        if end - addr != PMD_SIZE:
            split_huge_pmd(m, vma, pmd, addr)
        elif zap_huge_pmd(m, vma, pmd, addr):
            walk.private[0] += 1
            return 0
    walk.private[0] += zap_pte_range(m, vma, pmd, addr, end)
    if walk.private[1] and end - addr == PMD_SIZE:  # reclaim_pt_is_enabled(): the zap covered the whole table
        try_to_free_pte(m, vma.mm, pmd, addr)
    return 0


def try_to_free_pte(m: Machine, mm: MmStruct, pmd: int, addr: int) -> None:
    """Mirrors try_get_and_clear_pmd() / try_to_free_pte() (mm/pt_reclaim.c, CONFIG_PT_RECLAIM=y on 6.18):
    after a MADV_DONTNEED zap over the whole 2 MiB of the PTE table under the entry for ``addr``, a table
    with no entry left is unlinked from PMD table ``pmd`` and freed (PageTables and VmPTE drop 4 kB), so
    the next fault there finds an empty PMD (and may map a THP)."""
    row = pte_offset_map(m, pmd, addr)
    if row and not m.ptpool.used[row]:
        set_entry(m, pmd, pmd_index(addr), 0)
        pgtable_free(m, mm, row)


ZAP_WALK_OPS = MmWalkOps(pmd_entry=zap_pmd_range)


def zap_pte_range(m: Machine, vma: Vma, pmd: int, addr: int, end: int) -> int:
    """Mirrors zap_pte_range(): clear the PTEs of [addr, end) under PMD table ``pmd`` and drop their pages.

    Returns how many present PTEs were cleared. Pages mapped once and referenced once (the common,
    exclusive anonymous case) are released together with numpy; the rest go through
    folio_remove_rmap_ptes() a run of one folio's pages at a time, then put_page() one by one. The order
    of freeing, and so the free list, is the same either way.
    """
    row = pte_offset_map(m, pmd, addr)
    if not row:
        return 0
    frames = m.frames
    ptes = get_and_clear_full_ptes(m, row, addr, (end - addr) >> PAGE_SHIFT)
    ptes = ptes[ptes != 0]
    if ptes.shape[0] == 0:
        return 0
    present = (ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0  # swap entries are not modelled yet
    normal = present & ((ptes & _PAGE_SPECIAL) == 0)  # the zero page has no rmap and no reference
    pfns = (ptes[normal] & PTE_PFN_MASK) >> PAGE_SHIFT
    dirty = (ptes[normal] & _PAGE_DIRTY) != 0
    flags = frames.flags[pfns]
    simple = (((flags & (PG.ANON | PG.HEAD)) == PG.ANON) & (frames.mapcount[pfns] == 1)  # order-0 anon
              & (frames.refcount[pfns] == 1))
    if simple.all():
        _free_exclusive_anon(m, vma, pfns)
    else:
        heads = pfns - frames.head_offset[pfns]
        # zap_present_ptes()' batches (folio_pte_batch()): runs of PTEs mapping consecutive pages of one folio
        cut = np.flatnonzero((np.diff(pfns) != 1) | (np.diff(heads) != 0)) + 1
        for run, run_dirty in zip(np.split(pfns, cut), np.split(dirty, cut), strict=True):
            first = int(run[0])
            head = first - int(frames.head_offset[first])
            if run_dirty.any() and not frames.flags[head] & PG.ANON:
                folio_mark_dirty(m, head)  # a dirty PTE of a file folio: the data must be written back
            folio_remove_rmap_ptes(m, vma, first, run.shape[0])
            for pfn in run.tolist():
                put_page(m, pfn)  # tlb_remove_page()
    return int(present.sum())


def _free_exclusive_anon(m: Machine, vma: Vma, pfns: np.ndarray) -> None:
    """folio_remove_rmap_pte() + put_page() for order-0 anon pages mapped and referenced exactly once:
    the same helpers as one page's, with nr > 1 (rmap, __folio_put()'s lruvec_del_folio(), the free)."""
    folio_remove_rmap_ptes_exclusive(m, vma, pfns)
    lruvec_del_folio(m, pfns)
    free_unref_folios(m, pfns)


def zap_page_range_single(m: Machine, vma: Vma, start: int, end: int, reclaim_pt: bool = False) -> None:
    """Mirrors zap_page_range_single(): zap, then flush the TLB. Tables stay, except with ``reclaim_pt``
    (madvise_dontneed_single_vma()'s zap_details): PTE tables the range covers whole are freed. No
    lru_add_drain() first (gone since "mm: remove unnecessary calls to lru_add_drain"; measured on 6.18:
    a page MADV_FREE left in the per-CPU lazyfree batch stays there across a MADV_DONTNEED)."""
    vma.mm.update_hiwater_rss()
    if unmap_page_range(m, vma, start, end, reclaim_pt):
        flush_tlb_mm_range(m, vma.mm, start, end)


def exit_mmap(m: Machine, mm: MmStruct) -> None:
    """Mirrors exit_mmap(): unmap every VMA, free every page-table page, and the PCID slot. No
    lru_add_drain() first (6.18 has none; measured: 9 pages MADV_FREE left in the per-CPU lazyfree batch
    are not counted in pglazyfree after the exit): a folio still in a per-CPU batch keeps that reference,
    and is freed when the batch is next applied."""
    mm.update_hiwater_rss()
    for vma in list(mm.vmas):  # unmap_vmas()
        unmap_page_range(m, vma, vma.vm_start, vma.vm_end)
    release_asid(m, mm)
    mm_put_huge_zero_folio(mm)  # __mmput() -> mm_put_huge_zero_folio()
    for vma in list(mm.vmas):
        vma_unlink(mm, vma)
        if vma.vm_file is not None:
            vma.vm_file.put(vma)
        if vma.vm_flags & VmFlag.ACCOUNT:
            m.vm_unacct_memory(vma.pages)
    free_all_pgtables(m, mm)
    mm.total_vm = mm.data_vm = 0


def unmap_mapping_range(m: Machine, mapping: object, start_pgoff: int) -> None:
    """Mirrors unmap_mapping_range(mapping, start, 0, even_cows=1): every VMA mapping the file loses
    its entries for file pages from ``start_pgoff`` on, private COW copies included (truncation)."""
    for vma in list(getattr(mapping, "i_mmap", ())):
        first = max(start_pgoff, vma.vm_pgoff)
        if first >= vma.vm_pgoff + vma.pages:
            continue
        zap_page_range_single(m, vma, vma.vm_start + ((first - vma.vm_pgoff) << PAGE_SHIFT), vma.vm_end)


# --- fork: copying page tables (mm/memory.c: copy_page_range() and below) -------------------------------

def is_cow_mapping(vm_flags: int) -> bool:
    """Mirrors is_cow_mapping(): private and may be written: its pages are copied on write."""
    return vm_flags & (VmFlag.SHARED | VmFlag.MAYWRITE) == VmFlag.MAYWRITE


def vma_needs_copy(dst_vma: Vma, src_vma: Vma) -> bool:
    """Mirrors vma_needs_copy(): only a VMA with anonymous pages (an anon_vma) or raw PFN mappings has its
    page tables copied at fork; file-backed and zero-page-only ones are left for the child to re-fault,
    which is cheaper than copying big read-only mappings."""
    return bool(src_vma.vm_flags & (VmFlag.PFNMAP | VmFlag.MIXEDMAP)) or src_vma.anon_vma is not None


def copy_page_range(m: Machine, dst_vma: Vma, src_vma: Vma) -> int:
    """Mirrors copy_page_range(): copy the parent's entries of ``src_vma`` into the child's ``dst_vma``
    (same addresses), if vma_needs_copy(); returns how many present entries were copied (what the copy
    costs). Raises MemoryError when a page-table page cannot be had (the caller, dup_mmap(), fails the fork
    with ENOMEM)."""
    if not vma_needs_copy(dst_vma, src_vma):
        return 0
    copied = [0]
    walk = CopyWalk(dst_vma, copied)
    err = walk_page_range_vma(src_vma, src_vma.vm_start, src_vma.vm_end, COPY_WALK_OPS, walk)
    if err:
        raise MemoryError("copy_page_range: no memory for the child's page tables")
    return copied[0]


class CopyWalk(NamedTuple):
    """The copy walk's private data: the child's VMA and a one-element count of the entries copied."""

    dst_vma: Vma
    copied: list[int]


def copy_pmd_range(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors copy_pmd_range()'s loop body, as the copy walk's pmd_entry: a PMD leaf goes to
    copy_huge_pmd() (which may leave it for the child to re-fault), a PTE table to copy_pte_range()."""
    m, src_vma = walk.machine, walk_vma(walk)
    dst_vma, copied = walk.private
    dst_pmd = pmd_alloc(m, dst_vma.mm, addr)
    if not dst_pmd:
        return -errno.ENOMEM
    if pmd_trans_huge(pmdp_get(m, pmd, addr)):
        copied[0] += 1
        return copy_huge_pmd(m, dst_vma, src_vma, dst_pmd, pmd, addr)
    return copy_pte_range(m, dst_vma, src_vma, dst_pmd, pmd, addr, end, copied)


COPY_WALK_OPS = MmWalkOps(pmd_entry=copy_pmd_range)


def copy_pte_range(m: Machine, dst_vma: Vma, src_vma: Vma, dst_pmd: int, src_pmd: int, addr: int, end: int,
                   copied: list[int]) -> int:
    """Mirrors copy_pte_range(): the child gets a PTE table (even if the parent's holds no entry) and a
    copy of each present entry of [addr, end) (copy_present_ptes(); ``copied[0]`` counts them). 0, or -ENOMEM."""
    src_row = pte_offset_map(m, src_pmd, addr)
    if not src_row:
        return 0
    dst_row = pte_alloc(m, dst_vma.mm, dst_pmd, addr)
    if not dst_row:
        return -errno.ENOMEM
    ptes = get_ptes(m, src_row, addr, (end - addr) >> PAGE_SHIFT).copy()
    if ptes.any():
        kernel_bug(bool(((ptes != 0) & ((ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0)).any()),
                   "copy_pte_range: a swap entry (not modelled yet)")
        copy_present_ptes(m, dst_vma, src_vma, dst_row, src_row, addr, ptes)
        copied[0] += int(np.count_nonzero(ptes))
    return 0


def copy_present_ptes(m: Machine, dst_vma: Vma, src_vma: Vma, dst_row: int, src_row: int, addr: int,
                      ptes: np.ndarray) -> None:
    """Mirrors copy_present_ptes() -> __copy_present_ptes() for the entries ``ptes`` from ``addr``: each
    page (vm_normal_page(): not the zero page) gains a reference and a mapping (anon: it is no longer
    exclusive; the child's RSS grows by kind); in a COW mapping, writable entries are write-protected in
    both processes; the child's copy is old, and clean in a shared mapping. Linux does this one folio
    batch at a time (folio_pte_batch()); one call here covers the run of a table, with the same helpers."""
    frames = m.frames
    present = ptes != 0
    normal = present & ((ptes & _PAGE_SPECIAL) == 0)
    pfns = (ptes[normal] & PTE_PFN_MASK) >> PAGE_SHIFT
    if pfns.shape[0]:
        heads = pfns - frames.head_offset[pfns]
        np.add.at(frames.refcount, heads, 1)  # folio_get() / folio_ref_add()
        anon = (frames.flags[heads] & PG.ANON) != 0
        folio_try_dup_anon_rmap_ptes(m, dst_vma, pfns[anon])
        folio_dup_file_rmap_ptes(m, dst_vma, pfns[~anon])
        dst_mm = dst_vma.mm
        add_mm_counter(dst_mm, MM_ANONPAGES, int(anon.sum()))
        shmem = (frames.flags[heads[~anon]] & PG.SWAPBACKED) != 0
        add_mm_counter(dst_mm, MM_SHMEMPAGES, int(shmem.sum()))
        add_mm_counter(dst_mm, MM_FILEPAGES, int((~shmem).sum()))
    child = ptes.copy()
    if is_cow_mapping(src_vma.vm_flags):
        writable = present & ((ptes & _PAGE_RW) != 0)
        if writable.any():
            modify_prot_commit_ptes(m, src_row, addr, np.where(writable, ptes & ~_PAGE_RW, ptes))  # wrprotect_ptes()
            child = np.where(writable, child & ~_PAGE_RW, child)
    if src_vma.vm_flags & VmFlag.SHARED:
        child = np.where(present, child & ~_PAGE_DIRTY, child)  # pte_mkclean()
    child = np.where(present, child & ~_PAGE_ACCESSED, child)  # pte_mkold()
    modify_prot_commit_ptes(m, dst_row, addr, child)  # set_ptes() in the child's table
