"""Tearing mappings down: zapping PTEs over a range, and the whole address space at exit.

Mirrors the non-fault half of mm/memory.c: unmap_page_range() -> zap_pmd_range() -> zap_pte_range(),
zap_page_range_single() (MADV_DONTNEED), unmap_vmas(); and mm/mmap.c: exit_mmap(). The walk down to
the PMD level is the one page-table walker (mm/pagewalk.py, zap_walk_ops), which skips empty upper
entries; a huge PMD is zapped whole (zap_huge_pmd()) or split first when the range covers part of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import (
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_SPECIAL,
    PTE_PFN_MASK,
    pmd_index,
    pmd_trans_huge,
)
from ..arch.x86.tlb import flush_tlb_mm_range, release_asid
from ..constants import PAGE_SHIFT, PMD_SIZE
from ..errors import kernel_bug
from ..hw.physmem import PG
from .huge_memory import mm_put_huge_zero_folio, split_huge_pmd, zap_huge_pmd
from .mm_inline import lruvec_del_folio
from .page_alloc import free_unref_folios, put_page
from .page_writeback import folio_mark_dirty
from .pagewalk import MmWalk, MmWalkOps, walk_page_range_vma, walk_vma
from .pgtable import (
    free_all_pgtables,
    get_and_clear_full_ptes,
    pgtable_free,
    pmdp_get,
    pte_offset_map,
    set_entry,
)
from .rmap import folio_remove_rmap_ptes, folio_remove_rmap_ptes_exclusive
from .types import MmStruct, Vma, VmFlag
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
