"""Tearing mappings down: zapping PTEs over a range, and the whole address space at exit.

Mirrors the non-fault half of mm/memory.c: zap_pte_range() (via unmap_page_range()),
zap_page_range_single() (MADV_DONTNEED), unmap_vmas(); and mm/mmap.c: exit_mmap().
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch.x86.pgtable import pte_dirty, pte_pfn, pte_present, pte_special
from ..arch.x86.tlb import flush_tlb_mm_range, release_asid
from ..constants import PAGE_SHIFT, PMD_SIZE
from ..hw.physmem import PG
from .page_alloc import put_page
from .pgtable import free_all_pgtables, pte_table, set_entry
from .rmap import folio_remove_rmap_pte
from .types import MmStruct, Vma, VmFlag

if TYPE_CHECKING:
    from ..machine import Machine


def zap_pte_range(m: Machine, vma: Vma, start: int, end: int) -> int:
    """Mirrors zap_pte_range(): clear the PTEs of [start, end) in ``vma`` and drop their pages.

    Returns how many present PTEs were cleared. The caller flushes the TLB.
    """
    mm = vma.mm
    cleared = 0
    addr = start
    while addr < end:
        chunk_end = min((addr | (PMD_SIZE - 1)) + 1, end)
        row = pte_table(m, mm, addr)
        if row:
            first = (addr >> PAGE_SHIFT) & 511
            last = ((chunk_end - 1) >> PAGE_SHIFT) & 511
            entries = m.ptpool.tables[row, first:last + 1]
            for k in entries.nonzero()[0]:
                pte = int(entries[k])
                set_entry(m, row, first + int(k), 0)
                if not pte_present(pte):
                    continue  # swap entries are not modelled yet
                cleared += 1
                if pte_special(pte):
                    continue  # the zero page: no rmap, no reference
                pfn = pte_pfn(pte)
                if pte_dirty(pte) and not m.frames.flags[pfn] & PG.ANON:
                    m.frames.flags[pfn] |= PG.DIRTY  # folio_mark_dirty()
                folio_remove_rmap_pte(m, vma, pfn)
                put_page(m, pfn)  # tlb_remove_page()
        addr = chunk_end
    return cleared


def zap_page_range_single(m: Machine, vma: Vma, start: int, end: int) -> None:
    """Mirrors zap_page_range_single() (MADV_DONTNEED): zap, then flush the TLB; tables stay."""
    vma.mm.update_hiwater_rss()
    if zap_pte_range(m, vma, start, end):
        flush_tlb_mm_range(m, vma.mm, start, end)


def exit_mmap(m: Machine, mm: MmStruct) -> None:
    """Mirrors exit_mmap(): unmap every VMA, free every page-table page, and the PCID slot."""
    mm.update_hiwater_rss()
    for vma in list(mm.vmas):
        zap_pte_range(m, vma, vma.vm_start, vma.vm_end)
    release_asid(m, mm)
    for vma in list(mm.vmas):
        mm.vmas.remove(vma)
        if vma.vm_file is not None:
            vma.vm_file.put()
        if vma.vm_flags & VmFlag.ACCOUNT:
            m.vm_unacct_memory(vma.pages)
    free_all_pgtables(m, mm)
    mm.total_vm = mm.data_vm = 0
