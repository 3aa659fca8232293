"""Whole-machine consistency checks, in the spirit of CONFIG_DEBUG_VM.

``check_machine(m)`` recomputes from the page tables what the kernel keeps in counters (map counts,
reference counts, RSS, the LRU and page-table gauges, free frames) and raises KernelBug naming the
first disagreement. Tests call it after every step of random syscall sequences; users can too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import _PAGE_PRESENT, _PAGE_PROTNONE, _PAGE_SPECIAL, PTE_PFN_MASK
from ..errors import kernel_bug
from ..hw.physmem import PG
from ..stats import MM_ANONPAGES, MM_SHMEMPAGES, NodeStat

if TYPE_CHECKING:
    from ..machine import Machine
    from .types import MmStruct


def pte_rows(m: Machine, mm: MmStruct) -> list[int]:
    """The pool rows of every PTE table of ``mm`` (walking PGD -> PUD -> PMD)."""
    rows: list[int] = []
    tables = m.ptpool.tables
    for e3 in tables[mm.pgd][tables[mm.pgd] != 0]:
        pud = (int(e3) & PTE_PFN_MASK) >> 12
        for e2 in tables[pud][tables[pud] != 0]:
            pmd = (int(e2) & PTE_PFN_MASK) >> 12
            rows.extend((int(e) & PTE_PFN_MASK) >> 12 for e in tables[pmd][tables[pmd] != 0])
    return rows


def check_machine(m: Machine) -> None:
    """Raise KernelBug if any counter disagrees with the page tables and the frame table."""
    frames, pool = m.frames, m.ptpool
    n = frames.nr_frames
    mapped = np.zeros(n, dtype=np.int64)
    for task in m.tasks.values():
        if not task.alive:
            continue
        mm = task.mm
        rows = pte_rows(m, mm)
        ptes = pool.tables[rows].ravel() if rows else np.zeros(0, dtype=np.int64)
        normal = ((ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0) & ((ptes & _PAGE_SPECIAL) == 0)
        pfns = (ptes[normal] & PTE_PFN_MASK) >> 12
        anon = (frames.flags[pfns] & PG.ANON) != 0
        kernel_bug(int(anon.sum()) != mm.rss[MM_ANONPAGES], f"pid {task.pid}: RssAnon != anon PTEs")
        kernel_bug(int((~anon).sum()) != mm.rss[MM_SHMEMPAGES], f"pid {task.pid}: RssShmem != shmem PTEs")
        kernel_bug(mm.nr_ptes != len(rows), f"pid {task.pid}: nr_ptes != PTE tables")
        mapped += np.bincount(pfns, minlength=n)
    kernel_bug(not np.array_equal(mapped, frames.mapcount), "mapcount != PTEs mapping the frame")
    flags = frames.flags
    anon = (flags & PG.ANON) != 0
    table = (flags & PG.TABLE) != 0
    shmem = ((flags & (PG.SWAPBACKED | PG.ANON)) == PG.SWAPBACKED) & (frames.refcount > 0)
    batch_refs = np.bincount(np.asarray(m.cpu_fbatches.pending(), dtype=np.int64), minlength=n)
    kernel_bug(bool((frames.refcount[anon] != frames.mapcount[anon] + batch_refs[anon]).any()),
               "anon refcount != mapcount + per-CPU batch references")
    kernel_bug(bool((frames.refcount[shmem] != frames.mapcount[shmem] + 1).any()),
               "shmem refcount != mapcount + page-cache reference")
    used = int(anon.sum() + table.sum() + shmem.sum()) + 1  # + the zero page
    kernel_bug(used + frames.nr_free != n, f"free {frames.nr_free} + used {used} != total {n}")
    free = frames.free_stack[:frames.nr_free]
    kernel_bug(bool(frames.refcount[free].any() or flags[free].any()), "a free frame is still in use")
    kernel_bug(np.unique(free).shape[0] != free.shape[0], "a frame is on the free list twice")
    live = pool.pfn >= 0
    kernel_bug(int(live.sum()) != int(table.sum()) or pool.nr_tables != int(table.sum()),
               "page-table pool and frame table disagree")
    counted = (pool.tables[live] != 0).sum(axis=1)
    kernel_bug(not np.array_equal(counted, pool.used[live]), "a table's used count is wrong")
    g = m.counters.gauges
    lazy = (flags & PG.LAZYFREE) != 0
    checks = {
        NodeStat.NR_FREE_PAGES: frames.nr_free,
        NodeStat.NR_ANON_MAPPED: int((anon & (frames.mapcount > 0)).sum()),
        NodeStat.NR_SHMEM: int(shmem.sum()),
        NodeStat.NR_PAGETABLE: int(table.sum()),
        NodeStat.NR_INACTIVE_ANON: int(((flags & PG.LRU) != 0).sum() - lazy.sum()),
        NodeStat.NR_INACTIVE_FILE: int(lazy.sum()),
    }
    for item, expected in checks.items():
        kernel_bug(g[item] != expected, f"{item.value} is {g[item]}, the frames say {expected}")
