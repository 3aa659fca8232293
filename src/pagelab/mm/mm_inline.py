"""Putting folios on and taking them off the LRU lists, and the gauges that count the lists' pages.

Mirrors include/linux/mm_inline.h: folio_lru_list(), lruvec_add_folio() and lruvec_del_folio() with
update_lru_size(); every change of nr_inactive_anon, nr_active_anon, nr_inactive_file (and their zone
mirrors) goes through here. Each function takes one folio or an array of folios (the batched paths:
the first-touch batch, zap), with the same arithmetic for both.

Simplified: the gauges only; the lists' order (the link columns) comes with reclaim, which walks them.
New anon and shmem folios go on the inactive anon list (5.9+: lru_cache_add_inactive_or_unevictable()).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..hw.physmem import PG
from ..stats import NodeStat

if TYPE_CHECKING:
    from ..machine import Machine

_HEAD_SHIFT = PG.HEAD.bit_length() - 1


def folio_nr_pages(m: Machine, folios: int | np.ndarray) -> np.ndarray:
    """Mirrors folio_nr_pages() for one folio head or an array of them (1 for an order-0 folio)."""
    frames = m.frames
    head = (frames.flags[folios] >> _HEAD_SHIFT) & 1
    nr: np.ndarray = np.left_shift(1, frames.order[folios].astype(np.int64) * head)
    return nr


def lruvec_add_folio(m: Machine, folios: int | np.ndarray, nr: int, file: bool = False) -> None:
    """Mirrors folio_add_lru() -> lruvec_add_folio() for new folios (``nr`` pages in all): PG_lru set, on
    the inactive anon list, or the inactive file list for page-cache folios (``file``)."""
    m.frames.flags[folios] |= PG.LRU
    m.counters.mod_node_state(NodeStat.NR_INACTIVE_FILE if file else NodeStat.NR_INACTIVE_ANON, nr)


def lruvec_del_folio(m: Machine, folios: int | np.ndarray) -> None:
    """Mirrors lruvec_del_folio(): take folios (one head or an array) off the LRU list their flags name;
    the folios not on an LRU are left as they are. Page-cache folios (neither anon nor swap-backed) and
    MADV_FREE'd ones sit on the file lists."""
    frames = m.frames
    flags = frames.flags[folios]
    nr = folio_nr_pages(m, folios) * ((flags & PG.LRU) != 0)
    lazy = (flags & PG.LAZYFREE) != 0
    file = ((flags & (PG.ANON | PG.SWAPBACKED)) == 0) | lazy  # page cache, and MADV_FREE'd anon
    active = ((flags & PG.ACTIVE) != 0) & ~lazy
    m.counters.mod_node_state(NodeStat.NR_INACTIVE_FILE, -int((nr * (file & ~active)).sum()))
    m.counters.mod_node_state(NodeStat.NR_ACTIVE_FILE, -int((nr * (file & active)).sum()))
    m.counters.mod_node_state(NodeStat.NR_ACTIVE_ANON, -int((nr * (active & ~file)).sum()))
    m.counters.mod_node_state(NodeStat.NR_INACTIVE_ANON, -int((nr * ~(file | active)).sum()))
    frames.flags[folios] = flags & ~PG.LRU
