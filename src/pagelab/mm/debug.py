"""Whole-machine consistency checks, in the spirit of CONFIG_DEBUG_VM.

``check_machine(m)`` recomputes from the page tables what the kernel keeps in counters (map counts,
reference counts, RSS, the LRU and page-table gauges, free pages), checks the buddy free lists, the
per-CPU list and compound pages, checks each address space's VMAs (sorted, disjoint, page-aligned,
inside user space, protections and accounting that match their flags, no PTE outside a VMA or more
permissive than it; validate_mm() in mm/vma.c), and raises KernelBug naming the first disagreement.
Tests call it after every step of random syscall sequences; users can too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import (
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    _PAGE_USER,
    PTE_PFN_MASK,
    pmd_trans_huge,
)
from ..constants import HPAGE_PMD_NR, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PMD_SIZE, TASK_SIZE
from ..errors import kernel_bug
from ..hw.physmem import PG
from ..stats import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, NodeStat
from .list import list_entries
from .page_alloc import NR_PAGE_ORDERS, Z_END_PFN, Z_START_PFN
from .pagewalk import MmWalk, MmWalkOps, walk_page_range_novma
from .pgtable import pmdp_get, pte_offset_map
from .rmap import AnonVma, rmap_walk
from .shmem import ShmemFile
from .types import MMF_HUGE_ZERO_FOLIO, VmFlag
from .vma import vma_page_prot

if TYPE_CHECKING:
    from ..machine import Machine
    from .types import MmStruct


@dataclass(slots=True)
class PageTableScan:
    """Every PTE table and PMD leaf of an address space: (pool row, first address it maps) and
    (PMD leaf entry, address), from one walk of all its page tables."""

    tables: list[tuple[int, int]] = field(default_factory=list)
    leaves: list[tuple[int, int]] = field(default_factory=list)


def _scan_pmd_entry(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    m, scan = walk.machine, walk.private
    entry = pmdp_get(m, pmd, addr)
    base = addr & ~(PMD_SIZE - 1)
    if pmd_trans_huge(entry):
        scan.leaves.append((entry, base))
    else:
        scan.tables.append((pte_offset_map(m, pmd, addr), base))
    return 0


_SCAN_WALK_OPS = MmWalkOps(pmd_entry=_scan_pmd_entry)


def scan_page_tables(m: Machine, mm: MmStruct) -> PageTableScan:
    """Every PTE table and PMD leaf of ``mm``, VMAs or not (walk_page_range_novma() over the whole
    4-level address space, as ptdump walks it), so tables left outside every VMA are found too."""
    scan = PageTableScan()
    walk_page_range_novma(mm, 0, 1 << 48, _SCAN_WALK_OPS, scan)
    return scan


def pte_tables(m: Machine, mm: MmStruct) -> list[tuple[int, int]]:
    """(pool row, first virtual address it maps) of every PTE table of ``mm``."""
    return scan_page_tables(m, mm).tables


def pte_rows(m: Machine, mm: MmStruct) -> list[int]:
    """The pool rows of every PTE table of ``mm``."""
    return [row for row, _ in pte_tables(m, mm)]


def check_vmas(m: Machine, mm: MmStruct, pid: int, scan: PageTableScan | None = None) -> None:
    """Mirrors validate_mm() (mm/vma.c): the VMA tree, each VMA's bounds, protection and accounting,
    and that every PTE and PMD leaf lies inside a VMA and grants no more than it (no write, no access
    under PROT_NONE). ``scan``: the page tables of ``mm`` if the caller has walked them already."""
    mm.vmas.check()
    vmas = list(mm.vmas)
    total = data = 0
    for v in vmas:
        where = f"pid {pid}: VMA {v.vm_start:#x}-{v.vm_end:#x}"
        kernel_bug(bool((v.vm_start | v.vm_end) & ~PAGE_MASK), f"{where} is not page aligned")
        kernel_bug(not 0 <= v.vm_start < v.vm_end <= TASK_SIZE, f"{where} is empty or outside user space")
        kernel_bug(v.vm_page_prot != vma_page_prot(v), f"{where}: vm_page_prot does not match vm_flags")
        kernel_bug(bool(v.vm_flags & VmFlag.SHARED) and v.vm_file is None, f"{where}: shared without a file")
        kernel_bug((v.vm_file is None) != (v.vm_ops is None), f"{where}: a file without vm_ops, or vm_ops without one")
        kernel_bug(bool(v.vm_flags & VmFlag.ACCOUNT and v.vm_flags & (VmFlag.SHARED | VmFlag.NORESERVE)),
                   f"{where}: VM_ACCOUNT on a shared or NORESERVE mapping")
        total += v.pages
        if (v.vm_flags & (VmFlag.WRITE | VmFlag.SHARED | VmFlag.GROWSDOWN)) == VmFlag.WRITE:
            data += v.pages
    kernel_bug(mm.total_vm != total or mm.data_vm != data, f"pid {pid}: total_vm/data_vm != the VMAs' pages")
    starts = np.array([v.vm_start for v in vmas], dtype=np.int64)
    ends = np.array([v.vm_end for v in vmas], dtype=np.int64)
    writable = np.array([bool(v.vm_flags & VmFlag.WRITE) for v in vmas], dtype=bool)
    accessible = np.array([bool(v.vm_flags & (VmFlag.READ | VmFlag.WRITE | VmFlag.EXEC)) for v in vmas],
                          dtype=bool)
    tables = m.ptpool.tables
    scan = scan_page_tables(m, mm) if scan is None else scan
    pieces = [(tables[row][idx := np.flatnonzero(tables[row])], base + (idx.astype(np.int64) << PAGE_SHIFT))
              for row, base in scan.tables]
    if scan.leaves:  # a PMD leaf must lie in one VMA whole: check its first and last page
        leaves = np.array([e for e, _ in scan.leaves], dtype=np.int64)
        addrs = np.array([a for _, a in scan.leaves], dtype=np.int64)
        kernel_bug(bool(((leaves & PTE_PFN_MASK) >> PAGE_SHIFT & (HPAGE_PMD_NR - 1)).any()),
                   f"pid {pid}: a PMD leaf maps a PFN not aligned to 2 MiB")
        pieces.append((np.repeat(leaves, 2), np.stack([addrs, addrs + PMD_SIZE - PAGE_SIZE], axis=1).ravel()))
        last = np.searchsorted(ends, addrs + PMD_SIZE - PAGE_SIZE, side="right")
        kernel_bug(bool((np.searchsorted(ends, addrs, side="right") != last).any()),
                   f"pid {pid}: a PMD leaf straddles two VMAs")
    for ptes, vas in pieces:
        k = np.searchsorted(ends, vas, side="right")
        inside = (k < len(vmas)) & (starts[np.minimum(k, max(len(vmas) - 1, 0))] <= vas) if vmas else k < 0
        if not inside.all():
            kernel_bug(True, f"pid {pid}: a PTE or PMD leaf maps {int(vas[~inside][0]):#x}, outside every VMA")
        kernel_bug(bool((((ptes & _PAGE_RW) != 0) & ~writable[k]).any()), f"pid {pid}: a writable PTE in a "
                   "VMA without VM_WRITE")
        kernel_bug(bool((((ptes & (_PAGE_PRESENT | _PAGE_USER)) != 0) & ~accessible[k]).any()),
                   f"pid {pid}: an accessible PTE in a PROT_NONE VMA")


def committed_pages(m: Machine) -> int:
    """Committed_AS recomputed: VM_ACCOUNT VMAs of live tasks plus charged shmem files (each once)."""
    pages = 0
    files = {}
    for task in m.tasks.values():
        if task.alive:
            for v in task.mm.vmas:
                if v.vm_flags & VmFlag.ACCOUNT:
                    pages += v.pages
                if v.vm_file is not None:
                    files[id(v.vm_file)] = v.vm_file
    return pages + sum(f.size_pages for f in files.values() if isinstance(f, ShmemFile) and f.charged)


def _check_list(m: Machine, head: int, what: str) -> np.ndarray:
    """The entries of the list at ``head``, after checking that it is a well-formed circular list."""
    links, n = m.frames.links, m.frames.nr_frames
    entries = list_entries(links, head, n)
    kernel_bug(entries.shape[0] > n, f"{what}: the list does not lead back to its head")
    kernel_bug(bool((entries >= n).any()), f"{what}: a list head is linked in as an entry")
    chain = np.concatenate(([head], entries, [head]))
    kernel_bug(not np.array_equal(links[1, chain[1:]], chain[:-1]), f"{what}: a prev link is wrong")
    kernel_bug(np.unique(entries).shape[0] != entries.shape[0], f"{what}: a frame is on the list twice")
    return entries


def check_free_lists(m: Machine) -> np.ndarray:
    """The buddy allocator's free lists and per-CPU list are sound (as CONFIG_DEBUG_VM's checks in
    mm/page_alloc.c); returns which frames are free, on either.

    Every block on free_area[order] is PageBuddy with that order, aligned, inside the zone, and overlaps
    no other free block; nr_free is each list's length; no other page is PageBuddy; the per-CPU list
    holds ``count`` pages that are not PageBuddy; no free page has flags, references or mappings left;
    NR_FREE_PAGES is the buddy lists' pages.
    """
    frames, zone = m.frames, m.zone
    n = frames.nr_frames
    start, end = int(zone.state[Z_START_PFN]), int(zone.state[Z_END_PFN])
    free = np.zeros(n, dtype=bool)
    nr_blocks = nr_pages = 0
    for order in range(NR_PAGE_ORDERS):
        what = f"free_area[{order}]"
        heads = _check_list(m, zone.free_list(order), what)
        kernel_bug(heads.shape[0] != zone.nr_free(order), f"{what}: nr_free {zone.nr_free(order)}, "
                   f"{heads.shape[0]} blocks listed")
        kernel_bug(bool(((heads < start) | (heads + (1 << order) > end)).any()), f"{what}: a block outside the zone")
        kernel_bug(bool((heads & ((1 << order) - 1)).any()), f"{what}: a block not aligned to its order")
        kernel_bug(bool(((frames.flags[heads] & PG.BUDDY) == 0).any() or (frames.order[heads] != order).any()),
                   f"{what}: a block that is not PageBuddy of order {order}")
        pages = (heads[:, None] + np.arange(1 << order)).ravel()
        kernel_bug(bool(free[pages].any()), f"{what}: free blocks overlap")
        free[pages] = True
        nr_blocks += heads.shape[0]
        nr_pages += pages.shape[0]
    kernel_bug(int(((frames.flags & PG.BUDDY) != 0).sum()) != nr_blocks, "a PageBuddy page on no free list")
    kernel_bug(zone.free_pages != nr_pages, f"NR_FREE_PAGES {zone.free_pages}, the free lists hold {nr_pages}")
    pcp = _check_list(m, zone.pcp.list_head, "the per-CPU list")
    kernel_bug(pcp.shape[0] != zone.pcp.count, f"per-CPU list: count {zone.pcp.count}, {pcp.shape[0]} listed")
    kernel_bug(bool(free[pcp].any()), "a page on the per-CPU list is also in a free block")
    kernel_bug(zone.pcp.count >= max(zone.pcp.high, 1), "the per-CPU list holds high pages or more")
    free[pcp] = True
    kernel_bug(bool((frames.flags[free] & ~PG.BUDDY).any() or frames.refcount[free].any()
                    or frames.mapcount[free].any() or frames.head_offset[free].any()),
               "a free frame still has flags, references, mappings or a compound head")
    return free


def check_compound_pages(m: Machine) -> None:
    """Every compound page (large folio) is well formed: a PG_head page of order >= 1, naturally
    aligned, whose tails point back at it, are neither heads nor free, and hold no references; folio-wide
    map counts and orders appear only on heads (and orders on free blocks)."""
    frames = m.frames
    heads = np.flatnonzero(frames.flags & PG.HEAD)
    tails = 0
    for head in heads.tolist():
        order = int(frames.order[head])
        nr = 1 << order
        kernel_bug(order < 1 or head & (nr - 1) != 0 or head + nr > frames.nr_frames,
                   f"pfn {head}: a head of order {order} that is not an aligned compound page")
        rows = slice(head + 1, head + nr)
        kernel_bug(not np.array_equal(frames.head_offset[rows], np.arange(1, nr)), f"pfn {head}: a tail page "
                   "does not point at its head")
        kernel_bug(bool((frames.flags[rows] & (PG.HEAD | PG.BUDDY)).any() or frames.refcount[rows].any()),
                   f"pfn {head}: a tail page is a head, free, or holds references")
        tails += nr - 1
    kernel_bug(int((frames.head_offset != 0).sum()) != tails, "a tail page outside every compound page")
    not_head = (frames.flags & PG.HEAD) == 0
    kernel_bug(bool((frames.large_mapcount[not_head] | frames.entire_mapcount[not_head]
                     | frames.nr_pages_mapped[not_head]).any()), "folio map counts on a page that is no folio's head")
    kernel_bug(bool((frames.order[not_head & ((frames.flags & PG.BUDDY) == 0)] != 0).any()),
               "an order on a page that heads neither a folio nor a free block")


def check_mm_ids(m: Machine, large: np.ndarray, per_mm: list[tuple[int, np.ndarray]]) -> None:
    """CONFIG_MM_ID's bookkeeping holds (include/linux/rmap.h): on each large folio, a slot never counts
    more mappings than its mm has (an mm that takes a freed slot while it maps the folio already starts
    short: "We might have other mappings already", and the folio stays maybe-shared); a folio that more
    than one mm maps is marked maybe-shared; one that is not is mapped by one mm, whose slot counts exactly
    its mappings."""
    frames = m.frames
    n = frames.nr_frames
    mms = np.zeros(n, dtype=np.int64)  # how many mms map each folio
    exact = np.zeros(n, dtype=bool)  # a slot's count equals its mm's mappings
    for mm_id, by_folio in per_mm:
        mms += by_folio > 0
        for slot in (0, 1):
            mine = large & (frames.mm_id[slot] == mm_id)
            kernel_bug(bool((frames.mm_id_mapcount[slot][mine] > by_folio[mine]).any()),
                       f"mm id {mm_id}: a folio's per-mm mapcount is above its mappings in that mm")
            exact |= mine & (frames.mm_id_mapcount[slot] == by_folio)
    kernel_bug(bool((large & (mms > 1) & ~frames.mm_ids_shared).any()),
               "a large folio mapped by two mms is not marked maybe-shared")
    alone = large & (mms == 1) & ~frames.mm_ids_shared
    kernel_bug(bool((alone & ~exact).any()), "an exclusive large folio's slot does not count its mappings")


def check_machine(m: Machine) -> None:
    """Raise KernelBug if any counter disagrees with the page tables and the frame table."""
    frames, pool = m.frames, m.ptpool
    n = frames.nr_frames
    mapped = np.zeros(n, dtype=np.int64)  # PTE mappings per page
    entire = np.zeros(n, dtype=np.int64)  # PMD mappings per folio (on its head)
    per_mm: list[tuple[int, np.ndarray]] = []  # (mm id, mappings of each large folio by that mm)
    for task in m.tasks.values():
        if not task.alive:
            continue
        mm = task.mm
        scan = scan_page_tables(m, mm)
        check_vmas(m, mm, task.pid, scan)
        rows = [row for row, _ in scan.tables]
        ptes = pool.tables[rows].ravel() if rows else np.zeros(0, dtype=np.int64)
        normal = ((ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0) & ((ptes & _PAGE_SPECIAL) == 0)
        pfns = (ptes[normal] & PTE_PFN_MASK) >> 12
        hflags = frames.flags[frames.compound_head(pfns)]  # folio flags live on the head
        anon = (hflags & PG.ANON) != 0
        shm = ~anon & ((hflags & PG.SWAPBACKED) != 0)
        heads = _pmd_mapped_folios(m, scan)
        huge_anon = (frames.flags[heads] & PG.ANON) != 0
        huge_shm = ~huge_anon & ((frames.flags[heads] & PG.SWAPBACKED) != 0)
        rss_anon = int(anon.sum()) + HPAGE_PMD_NR * int(huge_anon.sum())
        rss_shmem = int(shm.sum()) + HPAGE_PMD_NR * int(huge_shm.sum())
        rss_file = int((~anon & ~shm).sum()) + HPAGE_PMD_NR * int((~huge_anon & ~huge_shm).sum())
        kernel_bug(rss_anon != mm.rss[MM_ANONPAGES], f"pid {task.pid}: RssAnon != anon PTEs and PMDs")
        kernel_bug(rss_shmem != mm.rss[MM_SHMEMPAGES], f"pid {task.pid}: RssShmem != shmem PTEs and PMDs")
        kernel_bug(rss_file != mm.rss[MM_FILEPAGES], f"pid {task.pid}: RssFile != file PTEs and PMDs")
        # x86 deposits a page-table page with every anonymous PMD leaf (pgtable_trans_huge_deposit()); a
        # page-cache folio's PMD has none (arch_needs_pgtable_deposit() is false)
        deposits = sum(1 for e, _ in scan.leaves
                       if m.frames.flags[(e & PTE_PFN_MASK) >> PAGE_SHIFT] & (PG.ANON | PG.ZERO | PG.SWAPBACKED))
        kernel_bug(mm.nr_ptes != len(rows) + deposits, f"pid {task.pid}: nr_ptes != PTE tables + "
                   "tables deposited under PMD leaves")
        mapped += np.bincount(pfns, minlength=n)
        entire += np.bincount(heads, minlength=n)
        by_folio = np.bincount(frames.compound_head(pfns), minlength=n) + np.bincount(heads, minlength=n)
        per_mm.append((mm.mm_id, by_folio))
    kernel_bug(not np.array_equal(mapped, frames.mapcount), "mapcount != PTEs mapping the frame")
    kernel_bug(not np.array_equal(entire, frames.entire_mapcount), "entire_mapcount != PMDs mapping the folio")
    large = (frames.flags & PG.HEAD) != 0
    nr_pages = np.where(large, np.left_shift(1, frames.order.astype(np.int64)), 1)
    folio_maps = np.bincount(frames.compound_head(np.arange(n)), weights=mapped, minlength=n).astype(np.int64)
    kernel_bug(bool((frames.large_mapcount[large] != folio_maps[large] + entire[large]).any()),
               "large_mapcount != PTEs and PMDs mapping the folio")
    check_mm_ids(m, large, per_mm)
    flags = frames.flags
    anon = (flags & PG.ANON) != 0
    table = (flags & PG.TABLE) != 0
    shmem = ((flags & (PG.SWAPBACKED | PG.ANON)) == PG.SWAPBACKED) & (frames.refcount > 0)
    batch_refs = np.bincount(np.asarray(m.cpu_fbatches.all_pending(), dtype=np.int64), minlength=n)
    maps = np.where(large, frames.large_mapcount, frames.mapcount)  # a folio holds a reference per mapping
    kernel_bug(bool((frames.refcount[anon] != maps[anon] + batch_refs[anon]).any()),
               "anon refcount != mappings + per-CPU batch references")
    # a folio truncated while a per-CPU batch still holds it (MADV_COLD's lru_deactivate) is out of its
    # cache (mapping cleared by page_cache_delete()): only the batch holds it, until the batch is applied
    cached = (frames.mapping != 0).astype(np.int64)
    kernel_bug(bool((frames.refcount[shmem] != frames.mapcount[shmem] + cached[shmem] + batch_refs[shmem]).any()),
               "shmem refcount != mapcount + page-cache reference")
    # page-cache folios of regular files (heads and order-0 pages): one reference per mapping plus the cache's
    cache = ((flags & (PG.ANON | PG.SWAPBACKED | PG.TABLE | PG.ZERO | PG.RESERVED)) == 0) \
        & (frames.refcount > 0) & (frames.head_offset == 0)
    kernel_bug(bool((frames.refcount[cache] != maps[cache] + cached[cache] + batch_refs[cache]).any()),
               "page-cache refcount != mappings + the cache's reference")
    free = check_free_lists(m)
    check_compound_pages(m)
    used = int(nr_pages[anon].sum() + table.sum() + nr_pages[shmem].sum() + nr_pages[cache].sum()) + 1
    if m.huge_zero_folio >= 0:  # the huge zero folio, once allocated, until its shrinker frees it
        used += HPAGE_PMD_NR
        holders = sum(1 for t in m.tasks.values() if t.alive and t.mm.flags & MMF_HUGE_ZERO_FOLIO)
        kernel_bug(int(frames.refcount[m.huge_zero_folio]) != 1 + holders,
                   "huge zero folio refcount != 1 + the mms that mapped it (MMF_HUGE_ZERO_FOLIO)")
    nr_free = int(free.sum())
    kernel_bug(used + nr_free != n, f"free {nr_free} (buddy and per-CPU lists) + used {used} != total {n}")
    live = pool.pfn >= 0
    kernel_bug(int(live.sum()) != int(table.sum()) or pool.nr_tables != int(table.sum()),
               "page-table pool and frame table disagree")
    counted = (pool.tables[live] != 0).sum(axis=1)
    kernel_bug(not np.array_equal(counted, pool.used[live]), "a table's used count is wrong")
    kernel_bug(m.committed_pages != committed_pages(m), f"Committed_AS {m.committed_pages} pages, the VMAs "
               f"and shmem files account for {committed_pages(m)}")
    g = m.counters.gauges
    lazy = (flags & PG.LAZYFREE) != 0
    unevictable = (flags & PG.UNEVICTABLE) != 0
    active = (flags & PG.ACTIVE) != 0
    evictable = ((flags & PG.LRU) != 0) & ~unevictable
    lazy &= evictable  # an mlocked lazyfree folio sits on the unevictable list
    checks = {
        NodeStat.NR_FREE_PAGES: int(free.sum()) - m.zone.pcp.count,
        NodeStat.NR_ANON_MAPPED: _anon_mapped_pages(m, anon, large, entire),
        NodeStat.NR_ANON_THPS: int(nr_pages[anon & (entire > 0)].sum()),
        NodeStat.NR_SHMEM: int((shmem & (cached != 0)).sum()),
        NodeStat.NR_FILE_PAGES: int((shmem & (cached != 0)).sum() + nr_pages[cache & (cached != 0)].sum()),
        NodeStat.NR_DIRTY: int(nr_pages[cache & ((flags & PG.DIRTY) != 0)].sum()),
        NodeStat.NR_WRITEBACK: int(nr_pages[cache & ((flags & PG.WRITEBACK) != 0)].sum()),
        NodeStat.NR_FILE_PMDMAPPED: int(nr_pages[cache & (entire > 0)].sum()),
        NodeStat.NR_PAGETABLE: int(table.sum()),
        NodeStat.NR_INACTIVE_ANON: int(nr_pages[evictable & ~cache & ~active].sum() - nr_pages[lazy].sum()),
        NodeStat.NR_ACTIVE_ANON: int(nr_pages[evictable & ~cache & active].sum()),  # MADV_PAGEOUT/COLD (issue #9)
        NodeStat.NR_INACTIVE_FILE: int(nr_pages[lazy].sum() + nr_pages[cache & evictable & ~active].sum()),
        NodeStat.NR_ACTIVE_FILE: int(nr_pages[cache & evictable & active].sum()),
        NodeStat.NR_UNEVICTABLE: int(nr_pages[((flags & PG.LRU) != 0) & unevictable].sum()),  # mlock (issue #9)
        NodeStat.NR_MLOCK: int(nr_pages[(flags & PG.MLOCKED) != 0].sum()),
    }
    for item, expected in checks.items():
        kernel_bug(g[item] != expected, f"{item.value} is {g[item]}, the frames say {expected}")


def _pmd_mapped_folios(m: Machine, scan: PageTableScan) -> np.ndarray:
    """The head PFNs of the folios PMD leaves map: vm_normal_page_pmd(), so not the huge zero page (a
    special PMD, or PG_zero frames)."""
    leaves = np.array([e for e, _ in scan.leaves], dtype=np.int64)
    heads = (leaves & PTE_PFN_MASK) >> PAGE_SHIFT
    normal = ((leaves & _PAGE_SPECIAL) == 0) & ((m.frames.flags[heads] & PG.ZERO) == 0)
    out: np.ndarray = heads[normal]
    return out


def _anon_mapped_pages(m: Machine, anon: np.ndarray, large: np.ndarray, entire: np.ndarray) -> int:
    """NR_ANON_MAPPED recomputed: an order-0 anon page counts if mapped; a large anon folio counts all
    its pages once a PMD maps it, else those of its pages PTEs map (__folio_add_rmap())."""
    frames = m.frames
    small = anon & ~large & (frames.mapcount > 0)
    heads = np.flatnonzero(anon & large)
    pages = int(small.sum())
    for head in heads.tolist():
        nr = 1 << int(frames.order[head])
        pages += nr if entire[head] else int((frames.mapcount[head:head + nr] > 0).sum())
    return pages


def check_rmap(m: Machine) -> None:
    """Every mapped frame's reverse map finds exactly its mappings: rmap_walk() (anon_vma or
    address_space -> VMAs -> PTE) returns mapcount places, each a PTE of a live mm mapping the frame.
    Costs a walk per mapped frame: for small machines (tests), not host-sized ones."""
    frames = m.frames
    for pfn in np.flatnonzero(frames.mapcount > 0).tolist():
        found = rmap_walk(m, pfn)
        kernel_bug(len(found) != int(frames.mapcount[pfn]),
                   f"pfn {pfn}: rmap_walk found {len(found)} mappings, mapcount {int(frames.mapcount[pfn])}")
    live = {id(t.mm) for t in m.tasks.values() if t.alive}
    for owner in m.mappings.values():
        vmas = owner.vmas if isinstance(owner, AnonVma) else owner.i_mmap
        for vma in vmas:
            kernel_bug(id(vma.mm) not in live or vma not in vma.mm.vmas,
                       f"mapping {owner.id}: a VMA that is not linked in a live mm")
    for task in m.tasks.values():
        if task.alive:
            for vma in task.mm.vmas:
                kernel_bug(vma.anon_vma is not None and vma not in vma.anon_vma.vmas,
                           f"pid {task.pid}: a VMA missing from its anon_vma")
                kernel_bug(vma.vm_file is not None and vma not in vma.vm_file.mapping.i_mmap,
                           f"pid {task.pid}: a VMA missing from its file's i_mmap")
