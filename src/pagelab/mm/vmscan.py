"""Reclaiming a given list of folios: what MADV_PAGEOUT asks for.

Mirrors mm/vmscan.c: reclaim_pages() -> reclaim_folio_list() -> shrink_folio_list(ignore_references=true)
and the helpers it leans on: folio_isolate_lru() / folio_putback_lru() (the isolation reference), the
unmapping through the reverse map (try_to_unmap(), mm/rmap.c) and __remove_mapping() (the folio leaves
its page cache and is freed). Measured on this host (6.18, no swap, no MGLRU; docs/facts/pageout.md):

- anon folios (swap-backed): no swap slot can be allocated (folio_alloc_swap() fails), so each is
  activated (pgactivate); a large one is split first (split_folio_to_list(): thp_split_page, and
  thp_split_pmd for its PMD, plus thp_swpout_fallback for a PMD-sized one), then its pages activated;
- shmem folios: unmapped from every mapping; a dirty one goes to pageout() -> shmem_writeout(), which
  has no swap either and redirties it: activated, kept in the shmem file; a clean one (never written)
  leaves the shmem file and is freed;
- page-cache folios: unmapped from every mapping (a dirty PTE makes the folio dirty); a clean one is
  removed from the page cache and freed; a dirty one is not written (only kswapd writes file folios
  from reclaim): it counts in nr_vmscan_immediate_reclaim and is activated;
- MADV_FREE'd (lazily free) anon folios: discarded if no PTE was written since (pglazyfreed), else
  swap-backed again and activated.
reclaim_pages() counts neither pgscan_* nor pgsteal_* (those are shrink_inactive_list()'s; measured: 0).

Left for issue #10 (reclaim under pressure): the LRU lists' order (real lists over the frame table),
shrink_lruvec() / shrink_inactive_list() / shrink_active_list() with folio_referenced() and the scan
counters, kswapd and direct reclaim, writeback of dirty file folios from kswapd (pageout() to the
filesystem, PG_reclaim and folio_rotate_reclaimable(): PG_reclaim is not set here), workingset shadow
entries left in the page cache by __remove_mapping(), and swap: add_to_swap(), the swap cache, swap
entries in PTEs, pswpout. Then the anon and shmem branches below swap instead of activating.
Simplified: one node, no memcg; mlocked folios never reach here (madvise refuses VM_LOCKED and skips
folios mapped elsewhere); a folio held by someone else (an extra reference) is kept, as
__remove_mapping()'s folio_ref_freeze() would fail.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import _PAGE_DIRTY, _PAGE_PSE
from ..constants import HPAGE_PMD_NR, PAGE_SHIFT, PAGE_SIZE, PMD_SIZE
from ..hw.mmu import leaf_entries
from ..hw.physmem import PG
from ..stats import NodeStat, VmEvent
from .filemap import AddressSpace, page_cache_delete
from .huge_memory import PMD_MASK, split_folio, split_huge_pmd_address
from .memory import zap_page_range_single
from .mm_inline import folio_nr_pages, lruvec_add_folio, lruvec_del_folio
from .page_alloc import put_page
from .rmap import rmap_walk
from .truncate import filemap_remove_folio

if TYPE_CHECKING:
    from ..machine import Machine
    from .types import Vma


def folio_isolate_lru(m: Machine, folio: int) -> bool:
    """Mirrors folio_isolate_lru(): take an evictable folio off its LRU list, holding a reference for the
    caller's private list. False if it is not on an LRU list (someone else isolated it, or a per-CPU
    batch has not added it yet). Simplified: unevictable folios are refused here (madvise would put
    them straight back)."""
    frames = m.frames
    flags = int(frames.flags[folio])
    if not flags & PG.LRU or flags & PG.UNEVICTABLE:
        return False
    frames.refcount[folio] += 1  # folio_get()
    lruvec_del_folio(m, folio)
    return True


def folio_putback_lru(m: Machine, folio: int) -> None:
    """Mirrors folio_putback_lru(): back on the list its flags name (PG_active, file or anon), and the
    isolation reference dropped."""
    flags = int(m.frames.flags[folio])
    lruvec_add_folio(m, folio, int(folio_nr_pages(m, folio)), file=not flags & PG.SWAPBACKED)
    put_page(m, folio)


def reclaim_pages(m: Machine, folios: list[int]) -> int:
    """Mirrors reclaim_pages(): reclaim the isolated folios ``folios`` (head PFNs, each holding its
    isolation reference); the ones that stay go back on the LRU. Returns the pages reclaimed."""
    if not folios:
        return 0
    return reclaim_folio_list(m, folios)


def reclaim_folio_list(m: Machine, folios: list[int]) -> int:
    """Mirrors reclaim_folio_list(): shrink_folio_list() with ignore_references (may_unmap, may_swap,
    may_writepage all set), then folio_putback_lru() for what it kept."""
    nr_reclaimed, kept = shrink_folio_list(m, folios)
    for folio in kept:
        folio_putback_lru(m, folio)
    return nr_reclaimed


def shrink_folio_list(m: Machine, folios: list[int]) -> tuple[int, list[int]]:
    """Mirrors shrink_folio_list(..., ignore_references=true) for isolated folios; returns (pages
    reclaimed, folios kept).

    The form reclaim_pages() uses: references are not checked (folio_check_references(), and the
    ignore_references=false form shrink_inactive_list() uses, are issue #10's). Folios split here (large
    anon folios) put their other pages on the list, as split_folio_to_list() does. pgactivate is counted
    once at the end, as the kernel does.
    """
    frames, c = m.frames, m.counters
    todo = deque(folios)
    kept: list[int] = []
    nr_reclaimed = pgactivate = 0
    while todo:
        folio = todo.popleft()
        flags = int(frames.flags[folio])
        nr = int(folio_nr_pages(m, folio))
        activate = False
        if flags & PG.ANON and flags & PG.SWAPBACKED:  # anon: folio_alloc_swap() fails without swap
            if flags & PG.HEAD:
                if not flags & PG.PARTIALLY_MAPPED and nr >= HPAGE_PMD_NR:
                    c.count_vm_event(VmEvent.THP_SWPOUT_FALLBACK)
                todo.extendleft(reversed(_split_isolated_folio(m, folio)))  # split_folio_to_list()
                nr = 1  # activate_locked_split
            activate = True
        else:
            if _folio_mapped(m, folio):
                if flags & PG.ANON and _any_pte_dirty(m, folio):  # lazyfree folio written again
                    frames.flags[folio] = (flags & ~PG.LAZYFREE) | PG.SWAPBACKED | PG.DIRTY  # try_to_unmap_one()
                    kept.append(folio)
                    pgactivate += _activate(m, folio, nr)
                    continue
                try_to_unmap(m, folio)
            flags = int(frames.flags[folio])
            if flags & PG.ANON:  # a clean lazyfree folio: discard it
                c.count_vm_event(VmEvent.PGLAZYFREED, nr)
                put_page(m, folio)  # the isolation reference, the last one
                nr_reclaimed += nr
                continue
            if flags & PG.DIRTY:
                if not flags & PG.SWAPBACKED:  # folio_is_file_lru(): only kswapd writes it, later
                    c.mod_node_state(NodeStat.NR_VMSCAN_IMMEDIATE, nr)
                # shmem: pageout() -> shmem_writeout() finds no swap and redirties it (AOP_WRITEPAGE_ACTIVATE)
                activate = True
            elif _remove_mapping(m, folio):
                nr_reclaimed += nr
                continue
        if activate:
            pgactivate += _activate(m, folio, nr)
        kept.append(folio)
    if pgactivate:
        c.count_vm_event(VmEvent.PGACTIVATE, pgactivate)
    return nr_reclaimed, kept


def _activate(m: Machine, folio: int, nr: int) -> int:
    """shrink_folio_list()'s activate_locked: PG_active, unless the folio is mlocked; the pages counted."""
    if m.frames.flags[folio] & PG.MLOCKED:
        return 0
    m.frames.flags[folio] |= PG.ACTIVE
    return nr


def _split_isolated_folio(m: Machine, folio: int) -> list[int]:
    """split_folio_to_list() of an isolated anon THP: its PMD mappings split first (unmap_folio() with
    TTU_SPLIT_HUGE_PMD), then the folio; each new folio still in use gets an isolation reference and
    joins the list. Returns the new folios after the first (pages holding only zeros were remapped to
    the zero page and freed by the split)."""
    frames = m.frames
    nr = 1 << int(frames.order[folio])
    if frames.entire_mapcount[folio]:
        for vma, addr in rmap_walk(m, folio):
            split_huge_pmd_address(m, vma, addr)
    split_folio(m, folio)
    tails = [pfn for pfn in range(folio + 1, folio + nr) if frames.refcount[pfn] > 0]
    frames.refcount[tails] += 1
    return tails


def _folio_mapped(m: Machine, folio: int) -> bool:
    """folio_mapped(): some page of the folio is mapped by a PTE or PMD."""
    frames = m.frames
    if frames.flags[folio] & PG.HEAD:
        return bool(frames.large_mapcount[folio] or frames.entire_mapcount[folio])
    return bool(frames.mapcount[folio] > 0)


def _mappings(m: Machine, folio: int) -> list[tuple[Vma, int, int]]:
    """Every (VMA, start, end) whose page-table entries map some page of the folio (rmap_walk()); a PMD
    leaf gives its whole 2 MiB."""
    frames = m.frames
    nr = int(folio_nr_pages(m, folio))
    out: dict[tuple[int, int], tuple[Vma, int, int]] = {}
    pages = np.flatnonzero(frames.mapcount[folio:folio + nr] > 0) + folio
    if frames.flags[folio] & PG.HEAD and frames.entire_mapcount[folio]:
        pages = np.union1d(pages, [folio])  # the PMD mappings, found through the head page
    for pfn in pages.tolist():
        for vma, addr in rmap_walk(m, pfn):
            leaf = int(leaf_entries(m.ptpool.tables, vma.mm.pgd, np.array([addr >> PAGE_SHIFT], dtype=np.int64))[0])
            start = addr & PMD_MASK if leaf & _PAGE_PSE else addr
            end = start + (PMD_SIZE if leaf & _PAGE_PSE else PAGE_SIZE)
            out[(id(vma), start)] = (vma, start, end)
    return list(out.values())


def _any_pte_dirty(m: Machine, folio: int) -> bool:
    """Whether a PTE or PMD mapping the folio is dirty, or the folio itself."""
    if m.frames.flags[folio] & PG.DIRTY:
        return True
    for vma, start, _end in _mappings(m, folio):
        leaf = int(leaf_entries(m.ptpool.tables, vma.mm.pgd, np.array([start >> PAGE_SHIFT], dtype=np.int64))[0])
        if leaf & _PAGE_DIRTY:
            return True
    return False


def try_to_unmap(m: Machine, folio: int) -> None:
    """Mirrors try_to_unmap() -> rmap_walk() -> try_to_unmap_one(): clear every page-table entry mapping
    the folio, in every process, with the TLB flushed and the RSS counters and map counts dropped; a
    dirty entry of a file or shmem folio makes the folio dirty (zap's folio_mark_dirty()). Adjacent
    pages of one VMA are unmapped as one range."""
    runs: dict[int, tuple[Vma, list[tuple[int, int]]]] = {}
    for vma, start, end in sorted(_mappings(m, folio), key=lambda t: (id(t[0]), t[1])):
        _vma, ranges = runs.setdefault(id(vma), (vma, []))
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    for vma, ranges in runs.values():
        for start, end in ranges:
            zap_page_range_single(m, vma, start, end)


def _remove_mapping(m: Machine, folio: int) -> bool:
    """Mirrors __remove_mapping() for a clean, unmapped page-cache or shmem folio: if only the cache and
    the isolation hold it (folio_ref_freeze()), out of the cache (__filemap_remove_folio(): nr_file_pages,
    and nr_shmem for shmem) and freed. Simplified: no workingset shadow entry is left (issue #10)."""
    frames = m.frames
    if int(frames.refcount[folio]) != 2:
        return False
    mapping = m.mappings.get(int(frames.mapping[folio]))
    if mapping is None:
        return False
    index = int(frames.index[folio])
    if not isinstance(mapping, AddressSpace):
        return False
    if frames.flags[folio] & PG.SWAPBACKED:  # shmem: shmem_delete_from_page_cache()'s accounting
        page_cache_delete(m, mapping, index)
        m.counters.mod_node_state(NodeStat.NR_SHMEM, -int(folio_nr_pages(m, folio)))
        put_page(m, folio)  # the cache's reference
    else:
        filemap_remove_folio(m, mapping, index, folio)
    put_page(m, folio)  # the isolation reference: freed
    return True
