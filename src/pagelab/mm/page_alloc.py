"""Allocating and freeing physical frames (order 0).

Mirrors the order-0 fast path of mm/page_alloc.c (alloc_pages() -> rmqueue(), free_unref_page()).
Simplified: one zone, no watermarks, no buddy merging and no reclaim yet; an allocation fails only
when no frame is free, and the fault path then returns VM_FAULT_OOM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..hw.physmem import PG
from ..stats import NodeStat

if TYPE_CHECKING:
    from ..machine import Machine


def alloc_page(m: Machine, flags: int) -> int:
    """Mirrors alloc_page(): one zeroed frame with ``flags`` and refcount 1, or -1 when memory is out."""
    frames = m.frames
    if frames.nr_free == 0:
        return -1
    pfn = frames.pop_one()
    frames.flags[pfn] = flags
    frames.refcount[pfn] = 1
    m.counters.mod_node_state(NodeStat.NR_FREE_PAGES, -1)
    return pfn


def alloc_pages_bulk(m: Machine, n: int, flags: int) -> np.ndarray:
    """Mirrors alloc_pages_bulk(): ``n`` frames in the order ``n`` alloc_page() calls would give them."""
    pfns = m.frames.pop(n)
    m.frames.flags[pfns] = flags
    m.frames.refcount[pfns] = 1
    m.counters.mod_node_state(NodeStat.NR_FREE_PAGES, -n)
    return pfns


def free_frame(m: Machine, pfn: int) -> None:
    """Mirrors free_unref_page(): the frame's last reference is gone; it returns to the free list."""
    frames = m.frames
    frames.clear(pfn)
    frames.push([pfn])
    m.page_data.pop(pfn, None)
    m.counters.mod_node_state(NodeStat.NR_FREE_PAGES, 1)


def put_page(m: Machine, pfn: int) -> None:
    """Mirrors folio_put(): drop one reference and free the frame when none is left."""
    frames = m.frames
    frames.refcount[pfn] -= 1
    if frames.refcount[pfn] == 0:
        if frames.flags[pfn] & PG.LRU:
            lru_del(m, pfn)
        free_frame(m, pfn)


def lru_add(m: Machine, pfn: int, n: int = 1) -> None:
    """Mirrors folio_add_lru(): new anon and shmem folios start on the inactive anon list (5.9+)."""
    m.frames.flags[pfn] |= PG.LRU
    m.counters.mod_node_state(NodeStat.NR_INACTIVE_ANON, n)


def lru_del(m: Machine, pfn: int) -> None:
    """Mirrors lruvec_del_folio(): take a freed folio off its LRU list (the gauge follows)."""
    flags = int(m.frames.flags[pfn])
    m.frames.flags[pfn] = flags & ~PG.LRU
    if flags & PG.LAZYFREE:
        item = NodeStat.NR_INACTIVE_FILE  # MADV_FREE moved it to the inactive file list
    else:
        item = NodeStat.NR_ACTIVE_ANON if flags & PG.ACTIVE else NodeStat.NR_INACTIVE_ANON
    m.counters.mod_node_state(item, -1)
