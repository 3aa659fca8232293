"""Walking and building a process's page tables from the kernel side.

Mirrors pgd_offset()/pud_alloc()/pmd_alloc()/pte_alloc() (include/linux/mm.h, mm/memory.c),
set_pte_at()/ptep_get_and_clear(), and free_pgtables()/free_pgd_range() (mm/memory.c). Page-table
pages are real frames, so ``PageTables:`` in meminfo and ``VmPTE:`` in status are counted from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..arch.x86.pgtable import (
    _PAGE_TABLE,
    PGDIR_SHIFT,
    PMD_SHIFT,
    PTE_PFN_MASK,
    PUD_SHIFT,
    pgd_index,
    pmd_index,
    pte_index,
    pud_index,
)
from ..errors import kernel_bug
from ..hw.physmem import PG
from ..stats import NodeStat
from .page_alloc import alloc_page, free_frame
from .vma import find_vma_intersection

if TYPE_CHECKING:
    from ..machine import Machine
    from .types import MmStruct

_SHIFT = {4: PGDIR_SHIFT, 3: PUD_SHIFT, 2: PMD_SHIFT, 1: 12}


def entry_row(entry: int) -> int:
    """The pool row an upper-level entry points to."""
    return (entry & PTE_PFN_MASK) >> 12


def pgtable_alloc(m: Machine, mm: MmStruct, level: int) -> int:
    """Mirrors pagetable_alloc() + the ctor: a zeroed page-table page of ``level``; row, or 0 on OOM."""
    pfn = alloc_page(m, PG.TABLE)
    if pfn < 0:
        return 0
    m.counters.mod_node_state(NodeStat.NR_PAGETABLE, 1)
    if level == 3:
        mm.nr_puds += 1
    elif level == 2:
        mm.nr_pmds += 1
    elif level == 1:
        mm.nr_ptes += 1
    return m.ptpool.alloc(pfn, level)


def pgtable_free(m: Machine, mm: MmStruct | None, row: int) -> None:
    """Mirrors pagetable_free(): give a page-table page back."""
    level = int(m.ptpool.level[row])
    if mm is not None:
        if level == 3:
            mm.nr_puds -= 1
        elif level == 2:
            mm.nr_pmds -= 1
        elif level == 1:
            mm.nr_ptes -= 1
    pfn = m.ptpool.free(row)
    m.counters.mod_node_state(NodeStat.NR_PAGETABLE, -1)
    free_frame(m, pfn)


def _next_table(m: Machine, mm: MmStruct, row: int, idx: int, level: int, alloc: bool) -> int:
    """Follow (or, with ``alloc``, create) entry ``idx`` of table ``row`` to a table of ``level``."""
    e = int(m.ptpool.tables[row, idx])
    if e:
        return entry_row(e)
    if not alloc:
        return 0
    child = pgtable_alloc(m, mm, level)
    if child:
        set_entry(m, row, idx, (child << 12) | _PAGE_TABLE)
    return child


def pmd_alloc(m: Machine, mm: MmStruct, addr: int) -> int:
    """Mirrors pud_alloc() + pmd_alloc(): the row of the PMD table covering ``addr`` (0 on OOM)."""
    pud = _next_table(m, mm, mm.pgd, pgd_index(addr), 3, True)
    if not pud:
        return 0
    return _next_table(m, mm, pud, pud_index(addr), 2, True)


def pmd_offset(m: Machine, mm: MmStruct, addr: int) -> int:
    """The row of the PMD table covering ``addr``, or 0 if the walk stops above it."""
    pud = _next_table(m, mm, mm.pgd, pgd_index(addr), 3, False)
    return _next_table(m, mm, pud, pud_index(addr), 2, False) if pud else 0


def pte_alloc(m: Machine, mm: MmStruct, pmd: int, addr: int) -> int:
    """Mirrors pte_alloc(): the row of the PTE table under PMD table ``pmd`` for ``addr`` (0 on OOM)."""
    return _next_table(m, mm, pmd, pmd_index(addr), 1, True)


def pte_offset(m: Machine, pmd: int, addr: int) -> int:
    """The row of the PTE table under PMD table ``pmd`` for ``addr``, or 0 if there is none yet."""
    e = int(m.ptpool.tables[pmd, pmd_index(addr)])
    return entry_row(e) if e else 0


def pte_table(m: Machine, mm: MmStruct, addr: int) -> int:
    """The row of the PTE table covering ``addr``, or 0 if there is none."""
    pmd = pmd_offset(m, mm, addr)
    return pte_offset(m, pmd, addr) if pmd else 0


def pte_ranges(m: Machine, mm: MmStruct, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """The PTE tables under [start, end): (row, first index, end index) for each one that exists."""
    for _addr, row, lo, hi in pte_tables_at(m, mm, start, end):
        yield row, lo, hi


def pte_tables_at(m: Machine, mm: MmStruct, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """pte_ranges() with the address each piece starts at: (addr, row, first index, end index).

    Mirrors the pgd/pud/pmd loops of zap_page_range()/change_protection()/walk_page_range(), which skip
    a 512 GiB, 1 GiB or 2 MiB region whose upper table entry is empty (pXd_none()): the cost follows the
    tables that exist, not the length of the range.
    """
    addr = start
    while addr < end:
        pud = _next_table(m, mm, mm.pgd, pgd_index(addr), 3, False)
        pmd = _next_table(m, mm, pud, pud_index(addr), 2, False) if pud else 0
        row = pte_offset(m, pmd, addr) if pmd else 0
        shift = PMD_SHIFT if pmd else PUD_SHIFT if pud else PGDIR_SHIFT
        chunk_end = min((addr | ((1 << shift) - 1)) + 1, end)
        if row:
            yield addr, row, pte_index(addr), pte_index(chunk_end - 1) + 1
        addr = chunk_end


def set_entry(m: Machine, row: int, idx: int, value: int) -> None:
    """Write one entry, keeping the table's count of non-empty entries (set_pte_at / pte_clear)."""
    tables = m.ptpool.tables
    old = int(tables[row, idx])
    tables[row, idx] = value
    if old == 0 and value != 0:
        m.ptpool.used[row] += 1
    elif old != 0 and value == 0:
        m.ptpool.used[row] -= 1


def set_pte_at(m: Machine, row: int, addr: int, pte: int) -> None:
    """Mirrors set_pte_at(): install ``pte`` for ``addr`` in PTE table ``row``."""
    set_entry(m, row, pte_index(addr), pte)


def ptep_get_and_clear(m: Machine, row: int, addr: int) -> int:
    """Mirrors ptep_get_and_clear(): read the PTE for ``addr`` and clear it."""
    idx = pte_index(addr)
    old = int(m.ptpool.tables[row, idx])
    set_entry(m, row, idx, 0)
    return old


def free_pgtables(m: Machine, mm: MmStruct, start: int, end: int) -> None:
    """Mirrors free_pgtables() -> free_pgd_range(): free the page-table pages that mapped [start, end)
    and now cover no VMA at all (Linux's floor/ceiling rule). The PTEs must already be zapped."""
    _free_level(m, mm, mm.pgd, 4, 0, start, end)


def _free_level(m: Machine, mm: MmStruct, row: int, level: int, base: int, start: int, end: int) -> None:
    shift = _SHIFT[level]
    span = 1 << shift
    first = max(start - base, 0) >> shift
    last = min((end - 1 - base) >> shift, 511)
    tables = m.ptpool.tables
    for idx in range(first, last + 1):
        e = int(tables[row, idx])
        if not e:
            continue
        lo = base + idx * span
        child = entry_row(e)
        if not mm_has_vma_in(mm, lo, lo + span):
            _free_subtree(m, mm, child, level - 1)
            set_entry(m, row, idx, 0)
        elif level > 2:
            _free_level(m, mm, child, level - 1, lo, start, end)


def _free_subtree(m: Machine, mm: MmStruct, row: int, level: int) -> None:
    tables = m.ptpool.tables
    if level > 1:
        for idx in tables[row].nonzero()[0]:
            _free_subtree(m, mm, entry_row(int(tables[row, idx])), level - 1)
            set_entry(m, row, int(idx), 0)
    kernel_bug(m.ptpool.used[row] != 0, "free_pgd_range: a page table still maps pages")
    pgtable_free(m, mm, row)


def free_all_pgtables(m: Machine, mm: MmStruct) -> None:
    """Mirrors exit_mmap()'s free_pgtables() over everything, then pgd_free()."""
    tables = m.ptpool.tables
    for idx in tables[mm.pgd].nonzero()[0]:
        _free_subtree(m, mm, entry_row(int(tables[mm.pgd, idx])), 3)
        set_entry(m, mm.pgd, int(idx), 0)
    pgtable_free(m, mm, mm.pgd)


def mm_has_vma_in(mm: MmStruct, start: int, end: int) -> bool:
    """Whether any VMA of ``mm`` intersects [start, end)."""
    return find_vma_intersection(mm, start, end) is not None
