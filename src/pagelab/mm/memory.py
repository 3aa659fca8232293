"""Tearing mappings down: zapping PTEs over a range, and the whole address space at exit.

Mirrors the non-fault half of mm/memory.c: zap_pte_range() (via unmap_page_range()),
zap_page_range_single() (MADV_DONTNEED), unmap_vmas(); and mm/mmap.c: exit_mmap().
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_PROTNONE, _PAGE_SPECIAL, PTE_PFN_MASK
from ..arch.x86.tlb import flush_tlb_mm_range, release_asid
from ..constants import PAGE_SHIFT
from ..hw.physmem import PG
from ..stats import MM_ANONPAGES, NodeStat
from .page_alloc import put_page
from .pgtable import free_all_pgtables, pte_ranges
from .rmap import folio_remove_rmap_pte
from .swap import lru_add_drain
from .types import MmStruct, Vma, VmFlag
from .vma import vma_unlink

if TYPE_CHECKING:
    from ..machine import Machine


def zap_pte_range(m: Machine, vma: Vma, start: int, end: int) -> int:
    """Mirrors zap_pte_range(): clear the PTEs of [start, end) in ``vma`` and drop their pages.

    Returns how many present PTEs were cleared. The caller flushes the TLB. Pages mapped once and
    referenced once (the common, exclusive anonymous case) are released together with numpy; the
    rest go through folio_remove_rmap_pte() and put_page() one by one. The order of freeing, and so
    the free list, is the same either way.
    """
    return sum(_zap_table(m, vma, row, lo, hi) for row, lo, hi in pte_ranges(m, vma.mm, start, end))


def _zap_table(m: Machine, vma: Vma, row: int, lo: int, hi: int) -> int:
    """Zap entries [lo, hi) of PTE table ``row``; returns how many were present."""
    tables, frames = m.ptpool.tables, m.frames
    idx = np.flatnonzero(tables[row, lo:hi]) + lo
    if idx.shape[0] == 0:
        return 0
    ptes = tables[row, idx].copy()
    tables[row, idx] = 0  # ptep_get_and_clear_full() on each
    m.ptpool.used[row] -= idx.shape[0]
    present = (ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0  # swap entries are not modelled yet
    normal = present & ((ptes & _PAGE_SPECIAL) == 0)  # the zero page has no rmap and no reference
    pfns = (ptes[normal] & PTE_PFN_MASK) >> PAGE_SHIFT
    dirty = (ptes[normal] & _PAGE_DIRTY) != 0
    flags = frames.flags[pfns]
    simple = ((flags & PG.ANON) != 0) & (frames.mapcount[pfns] == 1) & (frames.refcount[pfns] == 1)
    if simple.all():
        _free_exclusive_anon(m, vma, pfns)
    else:
        for pfn, is_dirty in zip(pfns.tolist(), dirty.tolist(), strict=True):
            if is_dirty and not frames.flags[pfn] & PG.ANON:
                frames.flags[pfn] |= PG.DIRTY  # folio_mark_dirty()
            folio_remove_rmap_pte(m, vma, pfn)
            put_page(m, pfn)  # tlb_remove_page()
    return int(present.sum())


def _free_exclusive_anon(m: Machine, vma: Vma, pfns: np.ndarray) -> None:
    """folio_remove_rmap_pte() + put_page() for anon pages mapped and referenced exactly once."""
    frames, n = m.frames, pfns.shape[0]
    flags = frames.flags[pfns]
    lazy = (flags & PG.LAZYFREE) != 0
    active = ((flags & PG.ACTIVE) != 0) & ~lazy
    on_lru = (flags & PG.LRU) != 0
    m.counters.mod_node_state(NodeStat.NR_ANON_MAPPED, -n)
    m.counters.mod_node_state(NodeStat.NR_INACTIVE_FILE, -int((on_lru & lazy).sum()))
    m.counters.mod_node_state(NodeStat.NR_ACTIVE_ANON, -int((on_lru & active).sum()))
    m.counters.mod_node_state(NodeStat.NR_INACTIVE_ANON, -int((on_lru & ~active & ~lazy).sum()))
    m.counters.mod_node_state(NodeStat.NR_FREE_PAGES, n)
    vma.mm.rss[MM_ANONPAGES] -= n
    frames.clear(pfns)
    frames.push(pfns)
    if m.page_data:
        for pfn in pfns.tolist():
            m.page_data.pop(pfn, None)


def zap_page_range_single(m: Machine, vma: Vma, start: int, end: int) -> None:
    """Mirrors zap_page_range_single() (MADV_DONTNEED): zap, then flush the TLB; tables stay."""
    lru_add_drain(m)
    vma.mm.update_hiwater_rss()
    if zap_pte_range(m, vma, start, end):
        flush_tlb_mm_range(m, vma.mm, start, end)


def exit_mmap(m: Machine, mm: MmStruct) -> None:
    """Mirrors exit_mmap(): unmap every VMA, free every page-table page, and the PCID slot."""
    lru_add_drain(m)
    mm.update_hiwater_rss()
    for vma in list(mm.vmas):
        zap_pte_range(m, vma, vma.vm_start, vma.vm_end)
    release_asid(m, mm)
    for vma in list(mm.vmas):
        vma_unlink(mm, vma)
        if vma.vm_file is not None:
            vma.vm_file.put(vma)
        if vma.vm_flags & VmFlag.ACCOUNT:
            m.vm_unacct_memory(vma.pages)
    free_all_pgtables(m, mm)
    mm.total_vm = mm.data_vm = 0
