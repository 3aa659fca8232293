"""Taking folios out of the page cache: invalidation (clean, unused folios only) and truncation (all).

Mirrors mm/truncate.c: mapping_evict_folio() / invalidate_mapping_pages() (what POSIX_FADV_DONTNEED
and drop_caches use: a folio that is dirty, under writeback, locked or mapped stays) and
truncate_inode_pages_range() (ftruncate, unlink: every folio past the cut goes, mapped ones after
unmap_mapping_range() zapped their PTEs); filemap_remove_folio() (mm/filemap.c) does the removal.

Simplified: no shadow entries are left behind (workingset comes with reclaim), so cachestat's
nr_evicted stays 0, as measured on this host for evictions that are not reclaim.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hw.physmem import PG
from .filemap import AddressSpace, cached_folios, folio_nr, page_cache_delete
from .mm_inline import lruvec_del_folio
from .page_alloc import put_page

if TYPE_CHECKING:
    from ..machine import Machine

_BUSY = PG.DIRTY | PG.WRITEBACK | PG.LOCKED


def filemap_remove_folio(m: Machine, mapping: AddressSpace, first: int, folio: int) -> None:
    """Mirrors filemap_remove_folio(): out of the cache and off the LRU; the cache's reference is
    dropped (the folio is freed unless someone else holds it)."""
    from ..stats import NodeStat

    page_cache_delete(m, mapping, first)
    flags = int(m.frames.flags[folio])
    if flags & PG.DIRTY:  # folio_account_cleaned(): truncating a dirty folio
        m.counters.mod_node_state(NodeStat.NR_DIRTY, -folio_nr(m, folio))
        m.frames.flags[folio] &= ~PG.DIRTY
    if flags & PG.LRU:
        lruvec_del_folio(m, folio)
    put_page(m, folio)


def mapping_evict_folio(m: Machine, mapping: AddressSpace, first: int, folio: int) -> bool:
    """Mirrors mapping_evict_folio(): remove a clean, unlocked, unmapped folio that nobody else holds
    (its only reference is the cache's); False if it must stay."""
    frames = m.frames
    if frames.flags[folio] & _BUSY:
        return False
    nr = folio_nr(m, folio)
    if frames.mapcount[folio:folio + nr].any() or frames.entire_mapcount[folio]:
        return False
    if int(frames.refcount[folio]) > 1:  # folio_ref_count() > folio_nr_pages() + ...: someone holds it
        return False
    filemap_remove_folio(m, mapping, first, folio)
    return True


def invalidate_mapping_pages(m: Machine, mapping: AddressSpace, start: int, end: int) -> int:
    """Mirrors invalidate_mapping_pages() (mapping_try_invalidate()): evict the unused clean folios lying
    wholly in [start, end] (page indices, inclusive); returns how many pages went."""
    gone = 0
    for first, folio in list(cached_folios(mapping, start, end + 1)):
        nr = folio_nr(m, folio)
        if first < start or first + nr - 1 > end:  # a large folio sticking out is left alone
            continue
        if mapping_evict_folio(m, mapping, first, folio):
            gone += nr
    return gone


def truncate_inode_pages_range(m: Machine, mapping: AddressSpace, start: int) -> None:
    """Mirrors truncate_inode_pages_range(mapping, start << PAGE_SHIFT, -1) for a cut at a page
    boundary: every folio from page ``start`` on leaves the cache, dirty or not (the caller unmapped
    them first), once its writeback has finished (folio_wait_writeback()). A large folio straddling
    the cut is truncate_inode_partial_folio()'s: its pages from the cut on are zeroed
    (folio_zero_range()), with its pages below the cut still mapped and dirty as they were.

    It is split (split_cache_folio()) when nothing maps it, and its pages from the cut on leave the cache;
    otherwise it stays whole, zeroed past the cut, as when Linux's split fails."""
    from .page_writeback import folio_wait_writeback

    for first, folio in list(cached_folios(mapping, start, 1 << 62)):
        if m.frames.flags[folio] & PG.WRITEBACK:
            folio_wait_writeback(m, mapping, folio)
        if first < start:
            frames = m.frames
            nr = folio_nr(m, folio)
            for pfn in range(folio + start - first, folio + nr):
                if frames.page_bytes(pfn) is not None:
                    frames.set_page_bytes(pfn, None)
            if split_cache_folio(m, mapping, first, folio):
                for index in range(start, first + nr):
                    filemap_remove_folio(m, mapping, index, folio + index - first)
            continue
        filemap_remove_folio(m, mapping, first, folio)


def split_cache_folio(m: Machine, mapping: AddressSpace, first: int, folio: int) -> bool:
    """Mirrors split_folio() of a page-cache folio to order 0, as truncate_inode_partial_folio() asks:
    each page becomes a folio of its own in the cache (the cache's reference each, dirty and LRU state
    kept, NR_FILE_THPS down for a PMD-sized one). False (the folio stays whole) if anything still maps it
    or it is locked, as a split that cannot unmap or freeze the folio fails.

    Simplified: a mapped folio is not split (Linux unmaps it, splits and remaps it)."""
    from ..stats import NodeStat
    from .folio import Folio, split_folio_to_order

    frames = m.frames
    nr = folio_nr(m, folio)
    if nr == 1 or frames.flags[folio] & PG.LOCKED or frames.mapcount[folio:folio + nr].any() \
            or frames.entire_mapcount[folio] or frames.large_mapcount[folio]:
        return False
    refs = int(frames.refcount[folio])
    on_lru = bool(frames.flags[folio] & PG.LRU)
    m.deferred_split_queue.pop(folio, None)
    split_folio_to_order(m, Folio(folio, nr.bit_length() - 1), 0)
    frames.refcount[folio + 1:folio + nr] = 1  # folio_ref_unfreeze(): the cache's reference
    frames.refcount[folio] = refs
    if on_lru:
        frames.flags[folio:folio + nr] |= PG.LRU
    del mapping.i_pages[first]
    for i in range(nr):
        mapping.i_pages[first + i] = folio + i
    if nr == 512:
        m.counters.mod_node_state(NodeStat.NR_FILE_THPS, -nr)
    return True
