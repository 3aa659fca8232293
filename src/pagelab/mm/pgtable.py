"""Building, reading and freeing a process's page tables from the kernel side.

Mirrors pgd_offset()/pud_alloc()/pmd_alloc()/pte_alloc()/pte_offset_map() (include/linux/mm.h,
mm/memory.c, mm/pgtable-generic.c), the raw entry accessors (ptep_get(), set_pte_at(), set_ptes(),
ptep_get_and_clear(), get_and_clear_full_ptes(), pmdp_get(), set_pmd_at() ...: the only code in mm/
that touches the pool's entries), and free_pgtables()/free_pgd_range() (mm/memory.c). Page-table pages
are real frames, so ``PageTables:`` in meminfo and ``VmPTE:`` in status are counted from them. Walks
over a range of addresses go through mm/pagewalk.py.

A PMD entry is either a table pointer or a PMD leaf (``_PAGE_PSE``: a 2 MiB page). Nothing here
follows a leaf as if it were a table: the table-following helpers raise KernelBug on one, and
pte_offset_map() returns 0 for it, as the kernel's returns NULL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PSE,
    _PAGE_TABLE,
    PGDIR_SHIFT,
    PMD_SHIFT,
    PTE_PFN_MASK,
    PTRS_PER_TABLE,
    PUD_SHIFT,
    pgd_index,
    pmd_index,
    pte_index,
    pud_index,
)
from ..constants import PAGE_SHIFT
from ..errors import kernel_bug
from ..hw.physmem import PG
from ..stats import NodeStat
from .page_alloc import alloc_page, free_pages
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
    free_pages(m, pfn, 0)  # pagetable_free() -> __free_pages()


def _next_table(m: Machine, mm: MmStruct, row: int, idx: int, level: int, alloc: bool) -> int:
    """Follow (or, with ``alloc``, create) entry ``idx`` of table ``row`` to a table of ``level``."""
    e = int(m.ptpool.tables[row, idx])
    if e:
        kernel_bug(bool(e & _PAGE_PSE), f"page-table walk: entry {idx} of table {row} is a huge leaf, not a table")
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
    """The row of the PTE table under PMD table ``pmd`` for ``addr``, or 0 if there is none yet.

    The caller has dealt with a PMD leaf first (the fault path's huge branch): one here is a KernelBug.
    """
    e = int(m.ptpool.tables[pmd, pmd_index(addr)])
    kernel_bug(bool(e & _PAGE_PSE), "pte_offset: the PMD entry is a huge leaf, not a PTE table")
    return entry_row(e) if e else 0


def pte_table(m: Machine, mm: MmStruct, addr: int) -> int:
    """The row of the PTE table covering ``addr``, or 0 if there is none (a huge PMD is a KernelBug)."""
    pmd = pmd_offset(m, mm, addr)
    return pte_offset(m, pmd, addr) if pmd else 0


def pte_offset_map(m: Machine, pmd: int, addr: int) -> int:
    """Mirrors pte_offset_map(): the PTE table under the entry for ``addr`` of PMD table ``pmd``, or 0
    when that entry is none or a PMD leaf (the kernel's NULL: the caller retries or skips)."""
    e = int(m.ptpool.tables[pmd, pmd_index(addr)])
    return 0 if e == 0 or e & _PAGE_PSE else entry_row(e)


# --- The raw accessors ------------------------------------------------------------------------------
# mm/ reads and writes leaf entries only through these, with Linux's names. ``row`` is a table of the
# pool (what the kernel's pte_t * / pmd_t * points into) and ``addr`` picks the entry, as in
# set_pte_at(mm, addr, ptep, pte). Each keeps the table's count of non-empty entries (``used``). The
# forms with ``nr`` are the batched (folio) versions Linux has: one numpy operation for nr entries.

def set_entry(m: Machine, row: int, idx: int, value: int) -> None:
    """Write one entry, keeping the table's count of non-empty entries (set_pte_at / pte_clear)."""
    tables = m.ptpool.tables
    old = int(tables[row, idx])
    tables[row, idx] = value
    if old == 0 and value != 0:
        m.ptpool.used[row] += 1
    elif old != 0 and value == 0:
        m.ptpool.used[row] -= 1


def _write_ptes(m: Machine, row: int, lo: int, new: np.ndarray) -> None:
    """Write entries [lo, lo + len(new)) of table ``row``, keeping ``used`` (the nr > 1 set_entry())."""
    view = m.ptpool.tables[row, lo:lo + new.shape[0]]
    m.ptpool.used[row] += int(np.count_nonzero(new)) - int(np.count_nonzero(view))
    view[:] = new


def ptep_get(m: Machine, row: int, addr: int) -> int:
    """Mirrors ptep_get(): the PTE for ``addr`` in PTE table ``row``."""
    return int(m.ptpool.tables[row, pte_index(addr)])


def get_ptes(m: Machine, row: int, addr: int, nr: int) -> np.ndarray:
    """ptep_get() for ``nr`` consecutive PTEs from ``addr`` (the nr > 1 case, as folio_pte_batch()
    reads them): a read-only view of the table, valid until the next write to the pool."""
    lo = pte_index(addr)
    kernel_bug(nr < 0 or lo + nr > PTRS_PER_TABLE, "get_ptes: the range leaves the PTE table")
    view = m.ptpool.tables[row, lo:lo + nr]
    view.flags.writeable = False
    return view


def set_pte_at(m: Machine, row: int, addr: int, pte: int) -> None:
    """Mirrors set_pte_at(): install ``pte`` for ``addr`` in PTE table ``row``."""
    set_entry(m, row, pte_index(addr), pte)


def set_ptes(m: Machine, row: int, addr: int, pte: int, nr: int) -> None:
    """Mirrors set_ptes(): map ``nr`` consecutive pages from ``addr``, the PFN advancing by one each
    (pte_next_pfn()), the rest of ``pte`` the same; nr = 1 is set_pte_at()."""
    lo = pte_index(addr)
    kernel_bug(nr < 1 or lo + nr > PTRS_PER_TABLE, "set_ptes: the range leaves the PTE table")
    if nr == 1:
        set_entry(m, row, lo, pte)
        return
    _write_ptes(m, row, lo, pte + (np.arange(nr, dtype=np.int64) << PAGE_SHIFT))


def set_ptes_scattered(m: Machine, rows: np.ndarray, idx: np.ndarray, ptes: np.ndarray) -> None:
    """set_pte_at() for many empty entries at once, of any tables: entry ``idx[k]`` of table ``rows[k]``
    gets ``ptes[k]`` (the batched first-touch path: many faults, each a set_pte_at() of its own)."""
    tables = m.ptpool.tables
    kernel_bug(bool(tables[rows, idx].any()), "set_ptes_scattered: an entry is in use")
    tables[rows, idx] = ptes
    m.ptpool.used += np.bincount(rows, minlength=m.ptpool.used.shape[0]).astype(np.int32)


def ptep_get_and_clear(m: Machine, row: int, addr: int) -> int:
    """Mirrors ptep_get_and_clear(): read the PTE for ``addr`` and clear it."""
    idx = pte_index(addr)
    old = int(m.ptpool.tables[row, idx])
    set_entry(m, row, idx, 0)
    return old


def get_and_clear_full_ptes(m: Machine, row: int, addr: int, nr: int) -> np.ndarray:
    """Mirrors get_and_clear_full_ptes() (zap): clear ``nr`` PTEs from ``addr``; returns the old ones."""
    lo = pte_index(addr)
    kernel_bug(nr < 0 or lo + nr > PTRS_PER_TABLE, "get_and_clear_full_ptes: the range leaves the PTE table")
    old = m.ptpool.tables[row, lo:lo + nr].copy()
    _write_ptes(m, row, lo, np.zeros(nr, dtype=np.int64))
    return old


def modify_prot_commit_ptes(m: Machine, row: int, addr: int, ptes: np.ndarray) -> None:
    """Mirrors modify_prot_commit_ptes() (mprotect): write the new PTEs of ``len(ptes)`` entries from
    ``addr``. Linux commits one folio batch at a time; one call here covers a whole table's worth."""
    lo = pte_index(addr)
    kernel_bug(lo + ptes.shape[0] > PTRS_PER_TABLE, "modify_prot_commit_ptes: the range leaves the PTE table")
    _write_ptes(m, row, lo, ptes)


def clear_young_dirty_ptes(m: Machine, row: int, addr: int, mask: np.ndarray) -> None:
    """Mirrors clear_young_dirty_ptes(CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY) (MADV_FREE): mark old and
    clean the PTEs from ``addr`` where ``mask`` is set (Linux: one call per folio batch)."""
    lo = pte_index(addr)
    kernel_bug(lo + mask.shape[0] > PTRS_PER_TABLE, "clear_young_dirty_ptes: the range leaves the PTE table")
    view = m.ptpool.tables[row, lo:lo + mask.shape[0]]
    view[mask] &= ~(_PAGE_ACCESSED | _PAGE_DIRTY)  # present entries stay non-empty: ``used`` holds


def pgdp_get(m: Machine, pgd: int, addr: int) -> int:
    """Mirrors pgdp_get(): the entry for ``addr`` in PGD ``pgd`` (the P4D is folded into it)."""
    return int(m.ptpool.tables[pgd, pgd_index(addr)])


def pudp_get(m: Machine, pud: int, addr: int) -> int:
    """Mirrors pudp_get(): the entry for ``addr`` in PUD table ``pud``."""
    return int(m.ptpool.tables[pud, pud_index(addr)])


def entries_in_use(m: Machine, row: int, first: int, last: int) -> list[int]:
    """The indexes in [first, last] of table ``row`` whose entry is not empty, found with one numpy scan
    (what a walker that reports no holes visits: pXd_none() entries are skipped anyway)."""
    idx: list[int] = (np.flatnonzero(m.ptpool.tables[row, first:last + 1]) + first).tolist()
    return idx


def pmdp_get(m: Machine, pmd: int, addr: int) -> int:
    """Mirrors pmdp_get(): the entry for ``addr`` in PMD table ``pmd`` (a table pointer or a PMD leaf)."""
    return int(m.ptpool.tables[pmd, pmd_index(addr)])


def set_pmd_at(m: Machine, pmd: int, addr: int, entry: int) -> None:
    """Mirrors set_pmd_at(): install a PMD leaf (or clear with 0) for ``addr`` in PMD table ``pmd``."""
    kernel_bug(entry != 0 and not entry & _PAGE_PSE, "set_pmd_at: not a PMD leaf (pmd_populate links tables)")
    set_entry(m, pmd, pmd_index(addr), entry)


def pmdp_huge_get_and_clear(m: Machine, pmd: int, addr: int) -> int:
    """Mirrors pmdp_huge_get_and_clear(): read the PMD leaf for ``addr`` and clear it."""
    idx = pmd_index(addr)
    old = int(m.ptpool.tables[pmd, idx])
    kernel_bug(not old & _PAGE_PSE, "pmdp_huge_get_and_clear: not a PMD leaf")
    set_entry(m, pmd, idx, 0)
    return old


def pmd_populate(m: Machine, pmd: int, addr: int, pte_row: int) -> None:
    """Mirrors pmd_populate(): link PTE table ``pte_row`` under the entry for ``addr`` of PMD table ``pmd``
    (the entry must be empty: split_huge_pmd() clears the leaf first)."""
    idx = pmd_index(addr)
    kernel_bug(int(m.ptpool.tables[pmd, idx]) != 0, "pmd_populate: the PMD entry is in use")
    set_entry(m, pmd, idx, (pte_row << 12) | _PAGE_TABLE)


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
        kernel_bug(bool(e & _PAGE_PSE), f"free_pgd_range: a huge leaf still maps {lo:#x}")
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
            e = int(tables[row, idx])
            kernel_bug(bool(e & _PAGE_PSE), "free_pgd_range: a huge leaf still maps pages")
            _free_subtree(m, mm, entry_row(e), level - 1)
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
