"""The buddy allocator: physical memory in free blocks of 2**order pages, and per-CPU lists for order 0.

Mirrors mm/page_alloc.c of Linux 6.18. Free memory sits in ``free_area[order]`` lists of naturally
aligned blocks (order 0 to MAX_PAGE_ORDER = 10, 4 KiB to 4 MiB), linked through the frame table's link
columns; the first page of a free block is PageBuddy and records the block's order. An allocation takes the
smallest block that fits (__rmqueue_smallest) and puts the halves it does not need back on the lists
(expand); a freed block merges with its buddy, the block it was split from, for as long as that buddy
is free (__free_one_page), and goes to the tail of its list when the next merge looks likely
(buddy_merge_likely), so it stays free longer.

Order-0 pages go through the per-CPU list (struct per_cpu_pages): an allocation pops its head, refilled
with ``batch`` pages (more after refills without frees: alloc_factor) from the buddy lists when empty
(rmqueue_bulk); a free pushes onto the head, so the last page freed is the first reused, and once
``count`` reaches ``high`` the oldest pages at the tail go back to the buddy lists (free_pcppages_bulk).
Pages on the per-CPU list are not free pages in nr_free_pages (NR_FREE_PAGES counts the buddy lists only,
as in Linux), so MemFree leaves them out. account_freepages() is the one writer of that counter.

At boot every frame but the zero page is freed in the largest aligned blocks, to the tail of the lists
(memblock_free_all). Watermarks (min_free_kbytes, watermark_scale_factor) are computed as Linux does for
one zone, only to size the per-CPU list; nothing checks them yet.

The list-walking hot paths are compiled with numba (``@njit``, plain Python syntax: NUMBA_DISABLE_JIT=1
runs them as Python). ``alloc_pages_bulk(n)`` is ``n`` alloc_page() calls in one compiled loop.

Simplified: one node, one zone ("Normal", the whole of RAM: issue #10 brings zones, watermark checks and
the slow path; an allocation fails only when no page is free); one migrate type (MIGRATE_MOVABLE: no
pageblocks, fallbacks, CMA or highatomic reserves; they come with compaction); no page shuffling (off on
this host: page_alloc.shuffle=N), guard pages or free page reporting; one CPU. Linux 6.18 also keeps
orders 1..3 and pageblock_order on per-CPU lists (pcp_allowed_order): here only order 0. Linux 6.7+
tunes pcp->high between high_min and high_max (raised on refills, lowered each second by vmstat's
decay_pcp_high): here high stays at high_min, the value it starts from.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from ..constants import PAGE_SIZE
from ..errors import kernel_bug
from ..hw.physmem import PG, FrameTable
from ..settings import BY_PATH
from ..stats import NodeStat
from .list import NEXT, PREV, list_add, list_add_tail, list_del, list_empty
from .mm_inline import lruvec_del_folio

if TYPE_CHECKING:
    from ..machine import Machine

MAX_PAGE_ORDER = 10
NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1
PAGEBLOCK_ORDER = 9  # pageblock_order = HPAGE_PMD_ORDER on x86-64
PCP_BATCH_SCALE_MAX = 5  # CONFIG_PCP_BATCH_SCALE_MAX (default, and this host's)
MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8
PG_BUDDY = PG.BUDDY

# struct zone as one int64 vector the compiled code reads and writes (Zone below gives it names).
Z_START_PFN = 0  # zone_start_pfn
Z_END_PFN = 1  # zone_end_pfn(): zone_start_pfn + spanned_pages
Z_NR_FREE = 2  # free_area[order].nr_free at Z_NR_FREE + order
Z_FREE_LIST = Z_NR_FREE + NR_PAGE_ORDERS  # list-head row of free_area[order].free_list at + order
Z_PCP_LIST = Z_FREE_LIST + NR_PAGE_ORDERS  # per_cpu_pages: list-head row of lists[0]
Z_PCP_COUNT = Z_PCP_LIST + 1  # pages on the per-CPU list
Z_PCP_HIGH = Z_PCP_LIST + 2  # free to the buddy lists when count reaches this
Z_PCP_HIGH_MIN = Z_PCP_LIST + 3
Z_PCP_HIGH_MAX = Z_PCP_LIST + 4
Z_PCP_BATCH = Z_PCP_LIST + 5  # chunk size for buddy add/remove
Z_PCP_ALLOC_FACTOR = Z_PCP_LIST + 6  # batch << alloc_factor pages per refill, raised by refills, halved by frees
Z_PCP_FREE_COUNT = Z_PCP_LIST + 7  # consecutive frees, halved by allocations (sizes the bulk free)
Z_FREE_PAGES = Z_PCP_LIST + 8  # vm_stat[NR_FREE_PAGES]: written by account_freepages() only
Z_SIZE = Z_PCP_LIST + 9


class PerCpuPages:
    """Mirrors struct per_cpu_pages (include/linux/mmzone.h): a read-only view of the zone's vector."""

    def __init__(self, state: np.ndarray) -> None:
        self._s = state

    def _get(self, index: int) -> int:
        return int(self._s[index])

    @property
    def list_head(self) -> int:
        """The list-head row of lists[0] (order 0, MIGRATE_MOVABLE)."""
        return self._get(Z_PCP_LIST)

    @property
    def count(self) -> int:
        return self._get(Z_PCP_COUNT)

    @property
    def high(self) -> int:
        return self._get(Z_PCP_HIGH)

    @property
    def high_min(self) -> int:
        return self._get(Z_PCP_HIGH_MIN)

    @property
    def high_max(self) -> int:
        return self._get(Z_PCP_HIGH_MAX)

    @property
    def batch(self) -> int:
        return self._get(Z_PCP_BATCH)

    @property
    def alloc_factor(self) -> int:
        return self._get(Z_PCP_ALLOC_FACTOR)

    @property
    def free_count(self) -> int:
        return self._get(Z_PCP_FREE_COUNT)


class Zone:
    """Mirrors struct zone: free_area[] lists, the per-CPU pageset, managed pages and watermarks.

    The one zone modelled spans every frame; ``managed_pages`` are those given to the buddy allocator
    (all but the zero page). Watermarks are in pages, as ``_watermark[]``.
    """

    def __init__(self, frames: FrameTable, name: str, start_pfn: int, end_pfn: int) -> None:
        self.name = name
        self.state = np.zeros(Z_SIZE, dtype=np.int64)
        self.state[Z_START_PFN], self.state[Z_END_PFN] = start_pfn, end_pfn
        for order in range(NR_PAGE_ORDERS):  # zone_init_free_lists()
            self.state[Z_FREE_LIST + order] = frames.alloc_list_head()
        self.state[Z_PCP_LIST] = frames.alloc_list_head()  # per_cpu_pages_init()
        self.pcp = PerCpuPages(self.state)
        self.managed_pages = 0
        self.watermark_min = self.watermark_low = self.watermark_high = 0
        self.min_free_kbytes = 0

    def nr_free(self, order: int) -> int:
        """free_area[order].nr_free: free blocks of that order."""
        return int(self.state[Z_NR_FREE + order])

    def free_list(self, order: int) -> int:
        """The list-head row of free_area[order].free_list[MIGRATE_MOVABLE]."""
        return int(self.state[Z_FREE_LIST + order])

    @property
    def free_pages(self) -> int:
        """zone_page_state(zone, NR_FREE_PAGES): pages in the buddy lists (not the per-CPU list)."""
        return int(self.state[Z_FREE_PAGES])


# --- the buddy lists (compiled) -------------------------------------------------------------------

@njit(cache=True)
def page_is_buddy(flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray, buddy: int, order: int) -> bool:
    """Mirrors page_is_buddy(): ``buddy`` is in the zone, free, and heads a block of ``order``."""
    if buddy < zs[Z_START_PFN] or buddy >= zs[Z_END_PFN]:
        return False
    return bool((flags[buddy] & PG_BUDDY) != 0 and order_col[buddy] == order)


@njit(cache=True)
def _add_to_free_list(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray,
                      pfn: int, order: int, to_tail: bool) -> None:
    """set_buddy_order() + __add_to_free_list(): ``pfn`` heads a free block of ``order``."""
    order_col[pfn] = order
    flags[pfn] |= PG_BUDDY
    if to_tail:
        list_add_tail(links, pfn, zs[Z_FREE_LIST + order])
    else:
        list_add(links, pfn, zs[Z_FREE_LIST + order])
    zs[Z_NR_FREE + order] += 1


@njit(cache=True)
def _del_page_from_free_list(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray,
                             pfn: int, order: int) -> None:
    """Mirrors __del_page_from_free_list(): unlink, __ClearPageBuddy, set_page_private(page, 0)."""
    list_del(links, pfn)
    flags[pfn] &= ~PG_BUDDY
    order_col[pfn] = 0
    zs[Z_NR_FREE + order] -= 1


@njit(cache=True)
def buddy_merge_likely(flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray, pfn: int, buddy_pfn: int,
                       order: int) -> bool:
    """Mirrors buddy_merge_likely(): is the buddy of the next-higher block free? Then the block just
    freed goes to the tail of its list, to be merged rather than reused soon."""
    if order >= MAX_PAGE_ORDER - 1:
        return False
    higher = buddy_pfn & pfn
    return page_is_buddy(flags, order_col, zs, higher ^ (1 << (order + 1)), order + 1)


@njit(cache=True)
def _free_one_page(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray,
                   pfn: int, order: int, to_tail: bool) -> None:
    """Mirrors __free_one_page(): merge the block at ``pfn`` with its free buddies, then list it.

    ``to_tail`` is FPI_TO_TAIL; without it the block goes to the tail only if buddy_merge_likely().
    The caller accounts the freed pages.
    """
    buddy_pfn = 0
    while order < MAX_PAGE_ORDER:
        buddy_pfn = pfn ^ (1 << order)  # __find_buddy_pfn()
        if not page_is_buddy(flags, order_col, zs, buddy_pfn, order):
            break
        _del_page_from_free_list(links, flags, order_col, zs, buddy_pfn, order)
        pfn = pfn & buddy_pfn
        order += 1
    if not to_tail:
        to_tail = buddy_merge_likely(flags, order_col, zs, pfn, buddy_pfn, order)
    _add_to_free_list(links, flags, order_col, zs, pfn, order, to_tail)


@njit(cache=True)
def split_large_buddy(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray,
                      pfn: int, order: int, to_tail: bool) -> None:
    """Mirrors split_large_buddy() (free_one_page()): free a block in pageblock-sized pieces."""
    end = pfn + (1 << order)
    order = min(order, PAGEBLOCK_ORDER)
    while pfn < end:
        _free_one_page(links, flags, order_col, zs, pfn, order, to_tail)
        pfn += 1 << order


@njit(cache=True)
def expand(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray, pfn: int, low: int,
           high: int) -> int:
    """Mirrors expand(): split the block of ``high`` at ``pfn`` down to ``low``, listing each upper half
    at the head of its list; returns the pages put back."""
    size = 1 << high
    nr_added = 0
    while high > low:
        high -= 1
        size >>= 1
        _add_to_free_list(links, flags, order_col, zs, pfn + size, high, False)
        nr_added += size
    return nr_added


@njit(cache=True)
def _rmqueue_smallest(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray,
                      order: int) -> int:
    """Mirrors __rmqueue_smallest() + page_del_and_expand(): the first block of the smallest order
    >= ``order`` that has one, split down to ``order``; its PFN, or -1. The caller accounts 2**order."""
    for current_order in range(order, NR_PAGE_ORDERS):
        head = zs[Z_FREE_LIST + current_order]
        if list_empty(links, head):
            continue
        pfn = int(links[NEXT, head])
        _del_page_from_free_list(links, flags, order_col, zs, pfn, current_order)
        expand(links, flags, order_col, zs, pfn, order, current_order)
        return pfn
    return -1


@njit(cache=True)
def _free_pages_memory(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray,
                       start: int, end: int) -> int:
    """Mirrors __free_pages_memory() -> __free_pages_core(): free [start, end) in the largest aligned
    blocks, each to the tail of its list (FPI_TO_TAIL); returns the pages freed."""
    freed = 0
    while start < end:
        order = 0
        while order < MAX_PAGE_ORDER and (start == 0 or not (start >> order) & 1):  # min(MAX, __ffs(start))
            order += 1
        while start + (1 << order) > end:
            order -= 1
        split_large_buddy(links, flags, order_col, zs, start, order, True)
        freed += 1 << order
        start += 1 << order
    return freed


# --- the per-CPU list (compiled) ------------------------------------------------------------------

@njit(cache=True)
def nr_pcp_alloc(zs: np.ndarray, order: int) -> int:
    """Mirrors nr_pcp_alloc(): how many pages a refill takes; doubles (alloc_factor) after each refill
    that fits, up to batch << CONFIG_PCP_BATCH_SCALE_MAX."""
    base_batch = zs[Z_PCP_BATCH]
    high = zs[Z_PCP_HIGH]
    if high < base_batch:
        return 1
    batch = base_batch if order else base_batch << zs[Z_PCP_ALLOC_FACTOR]
    if not order:
        max_nr_alloc = max(high - zs[Z_PCP_COUNT] - base_batch, base_batch)
        if batch <= max_nr_alloc and zs[Z_PCP_ALLOC_FACTOR] < PCP_BATCH_SCALE_MAX:
            zs[Z_PCP_ALLOC_FACTOR] += 1
        batch = min(batch, max_nr_alloc)
    if batch > 1:
        batch = max(batch >> order, 2)
    return int(batch)


@njit(cache=True)
def _take_block(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray, order: int,
                count: int) -> tuple[int, int]:
    """Up to ``count`` successive __rmqueue_smallest(order) calls while they split one block: (its first
    PFN, how many order-``order`` blocks they take from it, from its start up), or (-1, 0).

    The calls find a block of the smallest order j that has one, so every list below j is empty; each
    call then takes the next piece of that block in address order, and t calls leave on the lists just
    the aligned pieces of what is left of it ([t << order, 2**j) split greedily), one per list. Those
    are put back here directly: the lists end as after the t calls, at a cost per block, not per page.
    """
    for current_order in range(order, NR_PAGE_ORDERS):
        head = zs[Z_FREE_LIST + current_order]
        if list_empty(links, head):
            continue
        pfn = int(links[NEXT, head])
        _del_page_from_free_list(links, flags, order_col, zs, pfn, current_order)
        take = min(count, 1 << (current_order - order))
        k, size = take << order, 1 << current_order
        while k < size:  # what expand() leaves after those calls
            low = 0
            while not (k >> low) & 1:
                low += 1
            _add_to_free_list(links, flags, order_col, zs, pfn + k, low, False)
            k += 1 << low
        return pfn, take
    return -1, 0


@njit(cache=True)
def rmqueue_bulk(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray, order: int,
                 count: int, list_head: int) -> int:
    """Mirrors rmqueue_bulk(): ``count`` __rmqueue() calls, each block added to the tail of ``list_head``
    (so the per-CPU list holds them in the order they came); how many it got."""
    got = 0
    while got < count:
        pfn, take = _take_block(links, flags, order_col, zs, order, count - got)
        if take == 0:
            break
        for q in range(take):
            list_add_tail(links, pfn + (q << order), list_head)
        got += take
    return got


@njit(cache=True)
def _alloc_pages_order0(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, refcount: np.ndarray,
                        zs: np.ndarray, page_flags: int, out: np.ndarray) -> tuple[int, int]:
    """``out.shape[0]`` order-0 allocations, one after another (rmqueue() + post_alloc_hook() each):
    (how many succeeded, pages taken off the buddy lists).

    Each allocation pops the head of the per-CPU list (rmqueue_pcplist()); an empty list is refilled
    first (rmqueue_bulk(), nr_pcp_alloc() pages), and the allocations that follow take the refill's first
    pages straight away, without linking them in and out of the list: the lists, counts and columns end
    as after the pops.
    """
    n = out.shape[0]
    head = zs[Z_PCP_LIST]
    taken = 0
    i = 0
    while i < n:
        zs[Z_PCP_FREE_COUNT] >>= 1  # rmqueue_pcplist(): an allocation halves the consecutive-free count
        if not list_empty(links, head):
            pfn = int(links[NEXT, head])
            list_del(links, pfn)
            zs[Z_PCP_COUNT] -= 1
            flags[pfn] = page_flags
            refcount[pfn] = 1  # set_page_refcounted()
            out[i] = pfn
            i += 1
            continue
        want = nr_pcp_alloc(zs, 0)  # __rmqueue_pcplist() -> rmqueue_bulk()
        got = 0
        while got < want:
            pfn, take = _take_block(links, flags, order_col, zs, 0, want - got)
            if take == 0:
                break
            for q in range(take):
                page = pfn + q
                if i < n:
                    if got + q:
                        zs[Z_PCP_FREE_COUNT] >>= 1
                    links[NEXT, page] = links[PREV, page] = page
                    flags[page] = page_flags
                    refcount[page] = 1
                    out[i] = page
                    i += 1
                else:
                    list_add_tail(links, page, head)
                    zs[Z_PCP_COUNT] += 1
            got += take
        taken += got
        if got == 0:
            break
    return i, taken


@njit(cache=True)
def _free_run(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray, start: int,
              end: int) -> None:
    """__free_one_page(pfn, 0) for pfn = start, start + 1, ... end - 1 in turn (pages none of which is in a
    free block), done a block at a time: the largest aligned blocks the range holds (as __free_pages_memory()
    cuts a range), each freed whole.

    The same lists result: the pages of an aligned block, freed in address order, merge with buddies inside
    the block until its last page completes it, and only then look outside it, as freeing the block whole
    does; the smaller blocks listed meanwhile are all unlisted again, leaving the other entries' order as it
    was and their own rows as any unlisted page's.
    """
    while start < end:
        order = 0
        while order < MAX_PAGE_ORDER and not (start >> order) & 1:
            order += 1
        while start + (1 << order) > end:
            order -= 1
        _free_one_page(links, flags, order_col, zs, start, order, False)
        start += 1 << order


@njit(cache=True)
def free_pcppages_bulk(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray,
                       count: int) -> int:
    """Mirrors free_pcppages_bulk(): ``count`` pages from the tail (the oldest) of the per-CPU list back
    to the buddy lists, one after another (__free_one_page()); returns how many. Runs of consecutive
    PFNs (what a zap of memory allocated in order gives) are freed a block at a time (_free_run())."""
    count = min(zs[Z_PCP_COUNT], count)
    head = zs[Z_PCP_LIST]
    run_start = run_end = -1
    for _ in range(count):
        pfn = int(links[PREV, head])  # list_last_entry()
        list_del(links, pfn)
        zs[Z_PCP_COUNT] -= 1
        if pfn == run_end:
            run_end += 1
            continue
        if run_start >= 0:
            _free_run(links, flags, order_col, zs, run_start, run_end)
        run_start, run_end = pfn, pfn + 1
    if run_start >= 0:
        _free_run(links, flags, order_col, zs, run_start, run_end)
    return int(count)


@njit(cache=True)
def nr_pcp_free(zs: np.ndarray, batch: int, high: int) -> int:
    """Mirrors nr_pcp_free(): leave at least ``batch`` pages; free more after many frees in a row."""
    if high < batch:
        return 1
    return int(min(max(zs[Z_PCP_FREE_COUNT], batch), high - batch))


@njit(cache=True)
def _free_pages_order0(links: np.ndarray, flags: np.ndarray, order_col: np.ndarray, zs: np.ndarray,
                       pfns: np.ndarray) -> int:
    """free_frozen_page_commit() for each page of ``pfns`` in turn: push it on the head of the per-CPU
    list; at ``high`` pages, free a batch from the tail. Returns the pages that reached the buddy lists."""
    freed = 0
    head = zs[Z_PCP_LIST]
    for i in range(pfns.shape[0]):
        zs[Z_PCP_ALLOC_FACTOR] >>= 1
        list_add(links, pfns[i], head)
        zs[Z_PCP_COUNT] += 1
        batch = zs[Z_PCP_BATCH]
        if zs[Z_PCP_FREE_COUNT] < (batch << PCP_BATCH_SCALE_MAX):
            zs[Z_PCP_FREE_COUNT] += 1
        high = zs[Z_PCP_HIGH]  # nr_pcp_high(): fixed here (see the module docstring)
        if zs[Z_PCP_COUNT] >= high:
            freed += free_pcppages_bulk(links, flags, order_col, zs, nr_pcp_free(zs, batch, high))
    return freed


# --- allocating -----------------------------------------------------------------------------------

def account_freepages(m: Machine, zone: Zone, nr_pages: int) -> None:
    """Mirrors account_freepages(): the one place NR_FREE_PAGES (zone and /proc/vmstat) changes."""
    zone.state[Z_FREE_PAGES] += nr_pages
    m.counters.mod_node_state(NodeStat.NR_FREE_PAGES, nr_pages)


def _args(m: Machine) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the compiled functions work on: the link, flags and order columns and the zone's vector."""
    f = m.frames
    return f.links, f.flags, f.order, m.zone.state


def _alloc_order0(m: Machine, flags: int, out: np.ndarray) -> int:
    """Fill ``out`` with order-0 pages as successive alloc_page() calls would; how many it got."""
    links, pflags, order_col, zs = _args(m)
    got, taken = _alloc_pages_order0(links, pflags, order_col, m.frames.refcount, zs, flags, out)
    if taken:
        account_freepages(m, m.zone, -taken)
    return int(got)


def alloc_page(m: Machine, flags: int) -> int:
    """Mirrors alloc_page(): one zeroed order-0 page with ``flags`` and refcount 1; its PFN, or -1."""
    out = np.empty(1, dtype=np.int64)
    return int(out[0]) if _alloc_order0(m, flags, out) else -1


def alloc_pages_bulk(m: Machine, n: int, flags: int) -> np.ndarray:
    """Mirrors alloc_pages_bulk(): up to ``n`` order-0 pages, exactly those (in that order, leaving the
    allocator in the same state) that ``n`` alloc_page() calls would give; fewer if memory runs out."""
    out = np.empty(n, dtype=np.int64)
    return out[:_alloc_order0(m, flags, out)]


def pcp_allowed_order(order: int) -> bool:
    """Mirrors pcp_allowed_order(): which orders use the per-CPU list (only 0 here; see the module doc)."""
    return order == 0


def alloc_pages(m: Machine, order: int, flags: int) -> int:
    """Mirrors alloc_pages() without __GFP_COMP: 2**order contiguous pages, each with ``flags``; the
    first holds the one reference (split_page() gives every page its own). Head PFN, or -1."""
    kernel_bug(not 0 <= order <= MAX_PAGE_ORDER, f"alloc_pages: order {order}")
    if pcp_allowed_order(order):
        return alloc_page(m, flags)
    links, pflags, order_col, zs = _args(m)
    pfn = int(_rmqueue_smallest(links, pflags, order_col, zs, order))  # rmqueue_buddy()
    if pfn < 0:
        return -1
    account_freepages(m, m.zone, -(1 << order))
    pflags[pfn:pfn + (1 << order)] = flags
    m.frames.refcount[pfn] = 1
    return pfn


def prep_compound_page(frames: FrameTable, pfn: int, order: int) -> None:
    """Mirrors prep_compound_page(): mark ``pfn`` the head of an order-``order`` compound page; tails
    point at it (head_offset), keep no flags of their own and no references."""
    nr = 1 << order
    frames.flags[pfn + 1:pfn + nr] &= PG.ANON_EXCLUSIVE
    frames.head_offset[pfn + 1:pfn + nr] = np.arange(1, nr, dtype=np.int32)
    frames.flags[pfn] |= PG.HEAD
    frames.order[pfn] = order
    frames.large_mapcount[pfn] = frames.entire_mapcount[pfn] = frames.nr_pages_mapped[pfn] = 0
    frames.mm_id[:, pfn] = frames.mm_id_mapcount[:, pfn] = 0  # folio->_mm_ids: no mm maps it yet
    frames.mm_ids_shared[pfn] = False


def folio_alloc(m: Machine, order: int, flags: int) -> int:
    """Mirrors folio_alloc(): a folio of 2**order pages (compound, large_rmappable when order > 0) with
    ``flags`` on its head and refcount 1; the head PFN, or -1."""
    pfn = alloc_pages(m, order, flags)
    if pfn >= 0 and order:
        prep_compound_page(m.frames, pfn, order)
        m.frames.flags[pfn] |= PG.LARGE_RMAPPABLE  # page_rmappable_folio()
    return pfn


def split_page(m: Machine, pfn: int, order: int) -> None:
    """Mirrors split_page(): a non-compound order-``order`` allocation becomes 2**order pages, each with
    its own reference, to be freed one by one."""
    frames = m.frames
    kernel_bug(bool(frames.flags[pfn] & PG.HEAD), "split_page: a compound page (split the folio instead)")
    kernel_bug(int(frames.refcount[pfn]) != 1, "split_page: the page is shared")
    frames.refcount[pfn + 1:pfn + (1 << order)] = 1


# --- freeing --------------------------------------------------------------------------------------

def free_pages_prepare(m: Machine, pfn: int, order: int) -> None:
    """Mirrors free_pages_prepare(): the pages lose their owner, flags, compound metadata and contents."""
    frames = m.frames
    kernel_bug(bool(frames.flags[pfn] & PG.BUDDY), f"free_pages_prepare: pfn {pfn} is already free")
    kernel_bug(bool(frames.head_offset[pfn]), f"free_pages_prepare: pfn {pfn} is a tail page")
    frames.clear(pfn if order == 0 else np.arange(pfn, pfn + (1 << order)))


def free_frozen_pages(m: Machine, pfn: int, order: int) -> None:
    """Mirrors free_frozen_pages(): the 2**order pages at ``pfn`` (no reference left) go back: order 0
    onto the per-CPU list, larger blocks straight to the buddy lists (__free_pages_ok())."""
    free_pages_prepare(m, pfn, order)
    links, flags, order_col, zs = _args(m)
    if pcp_allowed_order(order):
        freed = _free_pages_order0(links, flags, order_col, zs, np.array([pfn], dtype=np.int64))
    else:
        split_large_buddy(links, flags, order_col, zs, pfn, order, False)  # free_one_page()
        freed = 1 << order
    if freed:
        account_freepages(m, m.zone, freed)


def free_unref_folios(m: Machine, pfns: np.ndarray) -> None:
    """Mirrors free_unref_folios(): free order-0 pages whose last reference is gone (their counts are
    not checked), in order: the same as free_frozen_pages() on each, in one compiled loop."""
    m.frames.clear(pfns)
    freed = _free_pages_order0(*_args(m), np.asarray(pfns, dtype=np.int64))
    if freed:
        account_freepages(m, m.zone, freed)


def drain_all_pages(m: Machine) -> None:
    """Mirrors drain_all_pages() (drain_pages_zone()): every page on the per-CPU list goes back to the
    buddy lists, oldest first."""
    freed = free_pcppages_bulk(*_args(m), m.zone.pcp.count)
    if freed:
        account_freepages(m, m.zone, freed)


def free_pages(m: Machine, pfn: int, order: int) -> None:
    """Mirrors __free_pages(): drop the caller's reference to the allocation of 2**order pages at ``pfn``
    (non-compound, or a folio's head) and free it when that was the last."""
    frames = m.frames
    frames.refcount[pfn] -= 1
    if frames.refcount[pfn] == 0:
        free_frozen_pages(m, pfn, order)


def put_page(m: Machine, pfn: int) -> None:
    """Mirrors put_page() -> folio_put(): drop one reference to the folio holding ``pfn`` (counted on
    its head) and free the whole folio when none is left."""
    frames = m.frames
    head = pfn - int(frames.head_offset[pfn])
    frames.refcount[head] -= 1
    if frames.refcount[head] == 0:
        flags = int(frames.flags[head])
        if flags & PG.LRU:
            lruvec_del_folio(m, head)  # __folio_put() -> page_cache_release()
        if flags & PG.HEAD:
            m.deferred_split_queue.pop(head, None)  # folio_unqueue_deferred_split()
        free_frozen_pages(m, head, int(frames.order[head]) if flags & PG.HEAD else 0)


def nr_free_frames(m: Machine) -> int:
    """Frames an order-0 allocation can still get: the buddy lists' free pages plus the per-CPU list's
    (nr_free_pages leaves the latter out, as MemFree does)."""
    return m.zone.free_pages + m.zone.pcp.count


# --- boot: watermarks, the per-CPU list's size, and memblock_free_all() ---------------------------

def zone_batchsize(managed_pages: int) -> int:
    """Mirrors zone_batchsize() (with zone_set_pageset_high_and_batch()'s max(1, ...)): about 0.1 % of
    the zone, at most 1 MiB, /4, clamped to 2**n - 1 (63 for zones above 1 GiB)."""
    batch = min(managed_pages >> 10, (1024 * 1024) // PAGE_SIZE) // 4
    batch = max(batch, 1)
    return max(1, (1 << ((batch + batch // 2).bit_length() - 1)) - 1)


def zone_highsize(managed_pages: int, low_wmark: int, batch: int, nr_cpus: int, high_fraction: int) -> int:
    """Mirrors zone_highsize(): the zone's low watermark (or managed / high_fraction) split across the
    node's CPUs, at least 4 batches."""
    total_pages = managed_pages // high_fraction if high_fraction else low_wmark
    return max(total_pages // nr_cpus, batch << 2)


def zone_watermarks(managed_pages: int, lowmem_pages: int, min_free_kbytes: int,
                    watermark_scale_factor: int) -> tuple[int, int, int]:
    """Mirrors __setup_per_zone_wmarks() for a lowmem zone: (min, low, high) in pages."""
    pages_min = min_free_kbytes >> 2
    wmark_min = pages_min * managed_pages // lowmem_pages
    gap = max(wmark_min >> 2, managed_pages * watermark_scale_factor // 10000)
    return wmark_min, wmark_min + gap, wmark_min + 2 * gap


def default_min_free_kbytes(managed_pages: int, thp_enabled: bool, watermark_scale_factor: int) -> int:
    """min_free_kbytes as Linux derives it at boot for one zone: calculate_min_free_kbytes() (sqrt of
    16 x lowmem kB, clamped to 128..262144), then khugepaged's set_recommended_min_free_kbytes() when THP
    is enabled (always or madvise): 2 + 3 x 3 pageblocks per zone, at most 5 % of lowmem above its high
    watermark."""
    kbytes = min(max(math.isqrt(managed_pages * (PAGE_SIZE >> 10) * 16), 128), 262144)
    if thp_enabled:
        high = zone_watermarks(managed_pages, managed_pages, kbytes, watermark_scale_factor)[2]
        recommended = (1 << PAGEBLOCK_ORDER) * (2 + 3 * 3)
        recommended = min(recommended, max(managed_pages - high, 0) // 20) << 2
        kbytes = max(kbytes, recommended)
    return kbytes


def _tunable(m: Machine, path: str) -> int | None:
    return int(m.settings[path]) if path in BY_PATH else None


def setup_per_zone_wmarks(m: Machine, zone: Zone) -> None:
    """Mirrors setup_per_zone_wmarks() + zone_pcp_update(): watermarks, then the per-CPU list's batch
    and high (high_min from the low watermark, high_max from managed / 8), for the machine's CPUs.

    min_free_kbytes and watermark_scale_factor come from the settings when they model them, else they
    are derived as at boot.
    """
    scale = _tunable(m, "/proc/sys/vm/watermark_scale_factor") or 10
    thp = m.settings.transparent_hugepage.enabled in ("always", "madvise")
    kbytes = _tunable(m, "/proc/sys/vm/min_free_kbytes") or default_min_free_kbytes(zone.managed_pages, thp, scale)
    zone.min_free_kbytes = kbytes
    zone.watermark_min, zone.watermark_low, zone.watermark_high = zone_watermarks(
        zone.managed_pages, zone.managed_pages, kbytes, scale)
    nr_cpus = 1  # the simulated machine has one CPU
    batch = zone_batchsize(zone.managed_pages)
    s = zone.state
    s[Z_PCP_BATCH] = batch
    s[Z_PCP_HIGH_MIN] = zone_highsize(zone.managed_pages, zone.watermark_low, batch, nr_cpus, 0)
    s[Z_PCP_HIGH_MAX] = zone_highsize(zone.managed_pages, zone.watermark_low, batch, nr_cpus,
                                      MIN_PERCPU_PAGELIST_HIGH_FRACTION)
    s[Z_PCP_HIGH] = s[Z_PCP_HIGH_MIN]  # nr_pcp_high()'s clamp of the boot value 0


def page_alloc_init(m: Machine, reserved: int) -> Zone:
    """Boot: one zone over every frame (free_area_init()), every frame but the first ``reserved`` (the
    zero page, in the kernel image) freed to the buddy lists (memblock_free_all()), then watermarks and
    the per-CPU list (setup_per_zone_wmarks())."""
    frames = m.frames
    zone = Zone(frames, "Normal", 0, frames.nr_frames)
    zone.managed_pages = frames.nr_frames - reserved
    freed = _free_pages_memory(frames.links, frames.flags, frames.order, zone.state, reserved, frames.nr_frames)
    account_freepages(m, zone, freed)
    setup_per_zone_wmarks(m, zone)
    return zone
