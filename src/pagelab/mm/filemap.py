"""The page cache: an address_space maps file offsets (in pages) to the folios that cache them.

Mirrors struct address_space (include/linux/fs.h: i_pages, nrpages, i_mmap, a_ops) and mm/filemap.c:
the cache itself (filemap_get_folio(), __filemap_add_folio(), page_cache_delete()), the fault side
(filemap_fault() with do_sync_mmap_readahead() / do_async_mmap_readahead(), and fault-around:
filemap_map_pages() -> filemap_map_pmd() / filemap_map_folio_range() / filemap_map_order0_folio()),
and the read() side (filemap_read() -> filemap_get_pages()). The same object serves shmem files.

``i_pages`` is a sorted mapping (sortedcontainers.SortedDict, as the XArray is ordered by index) from
the first index of each folio to its head PFN: a large folio is one entry covering 2**order indices
(the XArray's multi-index entry), so range lookups (fault-around, truncation, mincore) cost what they
find. ``i_mmap`` holds the VMAs that map this file (Linux: an interval tree keyed by pgoff), which is
how a reverse-map walk (rmap_walk_file()) finds every PTE that maps one of its pages.

A folio under read I/O is PG_locked and not PG_uptodate; ``io`` holds the Event of the request that
will complete it, which is what a task waiting on the folio lock sleeps on (folio_wait_bit()).

Simplified: no shadow entries (workingset, with reclaim), no XArray tags (dirty and writeback are read
off the frames' flags), no invalidate_lock, no HWPoison, no memcg.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from sortedcontainers import SortedDict

from ..constants import PAGE_SHIFT, PAGE_SIZE
from ..errors import kernel_bug
from ..hw.physmem import PG
from ..stats import NodeStat
from .mm_inline import lruvec_add_folio

if TYPE_CHECKING:
    from ..clock import Event
    from ..kernel.task import Task
    from ..machine import Machine
    from .readahead import FileRaState
    from .types import Vma

HPAGE_PMD_ORDER = 9
MAX_PAGECACHE_ORDER = HPAGE_PMD_ORDER  # min(MAX_XAS_ORDER, PMD_ORDER) on x86-64 (include/linux/pagemap.h)


class AddressSpaceOperations(Protocol):
    """Mirrors struct address_space_operations: what a filesystem does for the page cache (fs/ext4.py's
    Ext4Aops). ->readahead starts the reads of newly added, locked folios ((index, head) pairs, in index
    order) for ``task``'s I/O accounting, and finishes each folio (folio_end_read()) when its data is in;
    ->read_folio is the same for one folio. page_mkwrite is in the file's vm_ops, as in Linux."""

    def readahead(self, mapping: AddressSpace, folios: list[tuple[int, int]], task: Task | None) -> None: ...


class AddressSpace:
    """Mirrors struct address_space: the cached folios of one inode and the VMAs that map it.

    ``id`` is what a cached frame's ``mapping`` column holds; ``m.mappings[id]`` is this object.
    ``host`` is the inode (an fs/inode.py Inode, or the inode number of a shmem file); ``a_ops`` its
    address_space_operations; ``max_order`` the largest folio order the filesystem accepts
    (mapping_set_large_folios(): MAX_PAGECACHE_ORDER; 0 for a mapping without large folios).
    """

    def __init__(self, m: Machine, host: Any, a_ops: AddressSpaceOperations | None = None,
                 max_order: int = 0) -> None:
        self.machine = m
        self.host = host
        self.a_ops = a_ops
        self.max_order = max_order
        self.id = m.register_mapping(self)
        self.i_pages: SortedDict[int, int] = SortedDict()  # first index of a folio -> its head pfn
        self.nrpages = 0
        self.i_mmap: dict[Vma, None] = {}  # the VMAs mapping this file, in the order they were linked
        self.io: dict[int, Event] = {}  # head pfn of a folio under I/O -> the completion to wait for
        self.writeback: dict[int, Event] = {}  # head pfn of a folio under writeback -> its bio's completion

    def vma_link(self, vma: Vma) -> None:
        """Mirrors vma_link_file() -> __vma_link_file(): ``vma`` now maps this file."""
        self.i_mmap[vma] = None

    def vma_unlink(self, vma: Vma) -> None:
        """Mirrors unlink_file_vma(): ``vma`` no longer maps this file."""
        self.i_mmap.pop(vma, None)

    def release(self) -> None:
        """The inode is gone (its pages must already be deleted): forget the id."""
        self.machine.unregister_mapping(self.id)


def i_size_pages(mapping: AddressSpace) -> int:
    """DIV_ROUND_UP(i_size_read(mapping->host), PAGE_SIZE): the pages the file covers (max_idx)."""
    host = mapping.host
    size = getattr(host, "i_size", None)
    return (1 << 62) if size is None else (int(size) + PAGE_SIZE - 1) >> PAGE_SHIFT


def folio_nr(m: Machine, head: int) -> int:
    """folio_nr_pages() of the folio whose head is ``head``."""
    frames = m.frames
    return 1 << int(frames.order[head]) if frames.flags[head] & PG.HEAD else 1


def filemap_get_folio(mapping: AddressSpace, index: int) -> int:
    """Mirrors filemap_get_folio(): the head PFN of the folio caching ``index``, or -1. Takes no reference."""
    pages = mapping.i_pages
    k = pages.bisect_right(index) - 1
    if k < 0:
        return -1
    first, head = pages.peekitem(k)
    if index - first < folio_nr(mapping.machine, head):
        return int(head)
    return -1


def folio_file_page(m: Machine, head: int, index: int) -> int:
    """Mirrors folio_file_page(): the PFN of the page of folio ``head`` that caches ``index``."""
    return head + index - int(m.frames.index[head])


def page_cache_next_miss(mapping: AddressSpace, index: int, max_scan: int) -> int:
    """Mirrors page_cache_next_miss(): the first index >= ``index`` with no folio, looking at most
    ``max_scan`` indices on (index + max_scan when all are cached)."""
    stop = index + max_scan
    while index < stop:
        head = filemap_get_folio(mapping, index)
        if head < 0:
            return index
        index = int(mapping.machine.frames.index[head]) + folio_nr(mapping.machine, head)
    return stop


def page_cache_prev_miss(mapping: AddressSpace, index: int, max_scan: int) -> int:
    """Mirrors page_cache_prev_miss(): the last index <= ``index`` with no folio, looking at most
    ``max_scan`` indices back (index - max_scan when all are cached; -1, ULONG_MAX, past index 0)."""
    stop = index - max_scan
    while index > stop:
        if index < 0:
            return -1
        head = filemap_get_folio(mapping, index)
        if head < 0:
            return index
        index = int(mapping.machine.frames.index[head]) - 1
    return stop


def filemap_add_folio_locked(m: Machine, mapping: AddressSpace, folio: int, index: int) -> None:
    """Mirrors __filemap_add_folio(): insert the folio with head ``folio`` at ``index`` (aligned to its
    size); the cache holds the caller's reference. Every page records the mapping and its own index.
    Counts NR_FILE_PAGES (and NR_FILE_THPS for a PMD-sized folio); shmem adds NR_SHMEM itself, as
    shmem_add_to_page_cache() does. The caller has checked that the range is free."""
    nr = folio_nr(m, folio)
    kernel_bug(bool(index & (nr - 1)), f"__filemap_add_folio: index {index} not aligned to {nr} pages")
    frames = m.frames
    frames.mapping[folio:folio + nr] = mapping.id
    frames.index[folio:folio + nr] = range(index, index + nr)
    mapping.i_pages[index] = folio
    mapping.nrpages += nr
    m.counters.mod_node_state(NodeStat.NR_FILE_PAGES, nr)
    if nr == 1 << HPAGE_PMD_ORDER:
        m.counters.mod_node_state(NodeStat.NR_FILE_THPS, nr)


def filemap_range_has_folio(mapping: AddressSpace, start: int, end: int) -> bool:
    """Whether any folio caches an index in [start, end) (the -EEXIST test of __filemap_add_folio())."""
    if filemap_get_folio(mapping, start) >= 0:
        return True
    return any(True for _ in mapping.i_pages.irange(start, end, inclusive=(True, False)))


def filemap_add_folio(m: Machine, mapping: AddressSpace, folio: int, index: int) -> bool:
    """Mirrors filemap_add_folio(): __filemap_add_folio() then folio_add_lru() (the inactive file list).

    Returns False (-EEXIST) when part of the range is cached already; the caller still owns the folio.
    """
    if filemap_range_has_folio(mapping, index, index + folio_nr(m, folio)):
        return False
    filemap_add_folio_locked(m, mapping, folio, index)
    lruvec_add_folio(m, folio, folio_nr(m, folio), file=True)
    return True


def page_cache_delete(m: Machine, mapping: AddressSpace, index: int) -> int:
    """Mirrors page_cache_delete(): take the folio whose first index is ``index`` out of the cache;
    returns its head PFN. The caller drops the cache's reference (folio_put())."""
    head = int(mapping.i_pages.pop(index))
    nr = folio_nr(m, head)
    mapping.nrpages -= nr
    m.frames.mapping[head:head + nr] = 0
    m.counters.mod_node_state(NodeStat.NR_FILE_PAGES, -nr)
    if nr == 1 << HPAGE_PMD_ORDER:
        m.counters.mod_node_state(NodeStat.NR_FILE_THPS, -nr)
    return head


def cached_folios(mapping: AddressSpace, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(first index, head pfn) of every folio caching an index in [start, end), in index order."""
    pages = mapping.i_pages
    head = filemap_get_folio(mapping, start)
    if head >= 0:
        first = int(mapping.machine.frames.index[head])
        yield first, head
        start = first + 1
    for first in list(pages.irange(start, end, inclusive=(True, False))):
        yield int(first), int(pages[first])


def cached_range(mapping: AddressSpace, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The cached (index, pfn) pairs with start <= index < end, page by page, in index order."""
    m = mapping.machine
    for first, head in cached_folios(mapping, start, end):
        for i in range(max(first, start), min(first + folio_nr(m, head), end)):
            yield i, head + i - first


# --- I/O state of a folio ----------------------------------------------------------------------------

def folio_test_uptodate(m: Machine, folio: int) -> bool:
    return bool(m.frames.flags[folio] & PG.UPTODATE)


def folio_wait_locked(m: Machine, mapping: AddressSpace, folio: int) -> Event | None:
    """The I/O completion a task must sleep on before folio ``folio`` is unlocked, or None if it is not locked."""
    if not m.frames.flags[folio] & PG.LOCKED:
        return None
    event = mapping.io.get(folio)
    kernel_bug(event is None, f"folio {folio} is locked with no I/O to wait for")
    return event


def folio_end_read(m: Machine, mapping: AddressSpace, folio: int, success: bool = True) -> None:
    """Mirrors folio_end_read(): the read of ``folio`` completed: PG_uptodate set (on success), unlocked."""
    flags = m.frames.flags
    if success:
        flags[folio] |= PG.UPTODATE
    flags[folio] &= ~PG.LOCKED
    mapping.io.pop(folio, None)


def file_ra(vma: Vma) -> FileRaState:
    """&vma->vm_file->f_ra: the readahead state of the open file a VMA maps."""
    f = vma.vm_file
    kernel_bug(f is None or getattr(f, "f_ra", None) is None, "file_ra: a VMA without a regular file")
    return f.f_ra  # type: ignore[union-attr]


def filemap_cachestat(m: Machine, mapping: AddressSpace, first: int, last: int) -> dict[str, int]:
    """Mirrors filemap_cachestat(): over pages [first, last], the cached ones, those dirty and those under
    writeback (by their folio's flags), evicted and recently evicted (shadow entries: none here)."""
    out = {"nr_cache": 0, "nr_dirty": 0, "nr_writeback": 0, "nr_evicted": 0, "nr_recently_evicted": 0}
    flags = m.frames.flags
    for start, head in cached_folios(mapping, first, min(last, 1 << 62) + 1):
        nr = min(start + folio_nr(m, head), last + 1) - max(start, first)
        out["nr_cache"] += nr
        if flags[head] & PG.DIRTY:
            out["nr_dirty"] += nr
        if flags[head] & PG.WRITEBACK:
            out["nr_writeback"] += nr
    return out


def filemap_read_folios(mapping: AddressSpace, folios: list[tuple[int, int]], task: Task | None) -> None:
    """Start the reads of new locked folios through ->readahead; a mapping with no a_ops has nothing to
    read them from, so they are finished at once, zero-filled."""
    if mapping.a_ops is None:
        for _index, folio in folios:
            folio_end_read(mapping.machine, mapping, folio)
        return
    mapping.a_ops.readahead(mapping, folios, task)
