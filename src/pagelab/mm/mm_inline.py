"""Putting folios on and taking them off the LRU lists, and the gauges that count the lists' pages.

Mirrors include/linux/mm_inline.h: folio_lru_list(), lruvec_add_folio() and lruvec_del_folio() with
update_lru_size(); every change of nr_inactive_anon, nr_active_anon, nr_inactive_file (and their zone
mirrors) goes through here. Each function takes one folio or an array of folios (the batched paths:
the first-touch batch, zap), with the same arithmetic for both.

Simplified: the gauges only; the lists' order (the link columns) comes with reclaim (issue #10), which
walks them. New anon and shmem folios go on the inactive anon list (5.9+:
lru_cache_add_inactive_or_unevictable()). PG_active picks the active list: folio_activate() and
folio_deactivate() (mm/swap.py) and reclaim's activation (mm/vmscan.py) move folios between the two.

The unevictable list (issue #9, mlock): a folio with PG_unevictable (and PG_lru) counts in nr_unevictable
instead of its anon or file list; mm/mlock.py moves folios onto it (mlock_folio(): unevictable_pgs_culled)
and off it (munlock_folio(): unevictable_pgs_rescued). folio_add_lru_vma() is the fault path's entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..hw.physmem import PG
from ..stats import NodeStat, VmEvent
from .types import Vma, VmFlag

if TYPE_CHECKING:
    from ..machine import Machine

_HEAD_SHIFT = PG.HEAD.bit_length() - 1
VM_SPECIAL = VmFlag.IO | VmFlag.DONTEXPAND | VmFlag.PFNMAP | VmFlag.MIXEDMAP  # include/linux/mm.h


def folio_nr_pages(m: Machine, folios: int | np.ndarray) -> np.ndarray:
    """Mirrors folio_nr_pages() for one folio head or an array of them (1 for an order-0 folio)."""
    frames = m.frames
    head = (frames.flags[folios] >> _HEAD_SHIFT) & 1
    nr: np.ndarray = np.left_shift(1, frames.order[folios].astype(np.int64) * head)
    return nr


def lruvec_add_folio(m: Machine, folios: int | np.ndarray, nr: int, file: bool = False) -> None:
    """Mirrors folio_add_lru() -> lruvec_add_folio() (``nr`` pages in all): PG_lru set, on the anon list, or
    the file list for page-cache folios (``file``): the inactive one, or the active one for a folio with
    PG_active (folio_lru_list(): a folio put back after isolation, or after munlock, keeps its list)."""
    frames = m.frames
    frames.flags[folios] |= PG.LRU
    if isinstance(folios, int) and not frames.flags[folios] & PG.ACTIVE:
        m.counters.mod_node_state(NodeStat.NR_INACTIVE_FILE if file else NodeStat.NR_INACTIVE_ANON, nr)
        return
    active = int((folio_nr_pages(m, folios) * ((frames.flags[folios] & PG.ACTIVE) != 0)).sum())
    m.counters.mod_node_state(NodeStat.NR_ACTIVE_FILE if file else NodeStat.NR_ACTIVE_ANON, active)
    m.counters.mod_node_state(NodeStat.NR_INACTIVE_FILE if file else NodeStat.NR_INACTIVE_ANON, nr - active)


def lruvec_del_folio(m: Machine, folios: int | np.ndarray) -> None:
    """Mirrors lruvec_del_folio(): take folios (one head or an array) off the LRU list their flags name;
    the folios not on an LRU are left as they are. Page-cache folios (neither anon nor swap-backed) and
    MADV_FREE'd ones sit on the file lists."""
    frames = m.frames
    flags = frames.flags[folios]
    nr = folio_nr_pages(m, folios) * ((flags & PG.LRU) != 0)
    unevictable = (flags & PG.UNEVICTABLE) != 0
    if np.any(unevictable):  # the unevictable list; a folio still mlocked here is being freed
        m.counters.mod_node_state(NodeStat.NR_UNEVICTABLE, -int((nr * unevictable).sum()))
        _clear_mlocked_on_free(m, flags, folios)
        nr = nr * ~unevictable
    lazy = (flags & PG.LAZYFREE) != 0
    file = ((flags & (PG.ANON | PG.SWAPBACKED)) == 0) | lazy  # page cache, and MADV_FREE'd anon
    active = ((flags & PG.ACTIVE) != 0) & ~lazy
    m.counters.mod_node_state(NodeStat.NR_INACTIVE_FILE, -int((nr * (file & ~active)).sum()))
    m.counters.mod_node_state(NodeStat.NR_ACTIVE_FILE, -int((nr * (file & active)).sum()))
    m.counters.mod_node_state(NodeStat.NR_ACTIVE_ANON, -int((nr * (active & ~file)).sum()))
    m.counters.mod_node_state(NodeStat.NR_INACTIVE_ANON, -int((nr * ~(file | active)).sum()))
    frames.flags[folios] = flags & ~(PG.LRU | PG.UNEVICTABLE | PG.MLOCKED)


def _clear_mlocked_on_free(m: Machine, flags: np.ndarray | int, folios: int | np.ndarray) -> None:
    """Mirrors free_pages_prepare()'s PG_mlocked clearing: a folio freed while still mlocked (nothing
    munlocked it at unmap) leaves nr_mlock and counts in unevictable_pgs_cleared. Every caller of
    lruvec_del_folio() frees the folio next, so it is done here."""
    mlocked = (np.asarray(flags) & PG.MLOCKED) != 0
    if np.any(mlocked):
        n = int((folio_nr_pages(m, folios) * mlocked).sum())
        m.counters.mod_node_state(NodeStat.NR_MLOCK, -n)
        m.counters.count_vm_event(VmEvent.UNEVICTABLE_PGCLEARED, n)


def folio_add_lru_vma(m: Machine, vma: Vma, folio: int, nr: int) -> None:
    """Mirrors folio_add_lru_vma() (mm/swap.c): a new folio mapped into ``vma`` goes on the LRU, or, when
    the VMA is VM_LOCKED (and not VM_SPECIAL), through mlock_new_folio() onto the unevictable list."""
    if (vma.vm_flags & (VmFlag.LOCKED | VM_SPECIAL)) == VmFlag.LOCKED:
        mlock_new_folio(m, folio, nr)
    else:
        lruvec_add_folio(m, folio, nr)


def mlock_new_folio(m: Machine, folio: int, nr: int) -> None:
    """Mirrors mlock_new_folio() -> __mlock_new_folio(): PG_mlocked, nr_mlock and unevictable_pgs_mlocked,
    then (not evictable) PG_unevictable, unevictable_pgs_culled, and onto the unevictable list."""
    frames, c = m.frames, m.counters
    frames.flags[folio] |= PG.MLOCKED | PG.UNEVICTABLE | PG.LRU
    c.mod_node_state(NodeStat.NR_MLOCK, nr)
    c.count_vm_event(VmEvent.UNEVICTABLE_PGMLOCKED, nr)
    c.count_vm_event(VmEvent.UNEVICTABLE_PGCULLED, nr)
    c.mod_node_state(NodeStat.NR_UNEVICTABLE, nr)


def mlock_folio(m: Machine, folio: int) -> None:
    """Mirrors mlock_folio() -> __mlock_folio() for a folio already on an LRU list (mlock_vma_pages_range()
    on a mapped page): PG_mlocked (once: mlock_count is not kept), nr_mlock, unevictable_pgs_mlocked;
    moved to the unevictable list (unevictable_pgs_culled). Not for the zero pages (the caller skips them)."""
    frames, c = m.frames, m.counters
    flags = int(frames.flags[folio])
    if flags & PG.MLOCKED:
        return
    nr = int(folio_nr_pages(m, folio))
    frames.flags[folio] = flags | PG.MLOCKED
    c.mod_node_state(NodeStat.NR_MLOCK, nr)
    c.count_vm_event(VmEvent.UNEVICTABLE_PGMLOCKED, nr)
    if flags & PG.LRU and not flags & PG.UNEVICTABLE:
        lruvec_del_folio(m, folio)
        frames.flags[folio] &= ~PG.ACTIVE  # folio_clear_active(): munlock puts it back inactive
        frames.flags[folio] |= PG.UNEVICTABLE | PG.LRU | PG.MLOCKED
        c.mod_node_state(NodeStat.NR_UNEVICTABLE, nr)
        c.count_vm_event(VmEvent.UNEVICTABLE_PGCULLED, nr)


def munlock_folio(m: Machine, folio: int) -> None:
    """Mirrors munlock_folio() -> __munlock_folio(): PG_mlocked cleared (nr_mlock, unevictable_pgs_munlocked);
    now evictable, the folio leaves the unevictable list for its inactive list (unevictable_pgs_rescued).
    Simplified: no mlock_count, so a folio another VM_LOCKED mapping still maps is munlocked too."""
    frames, c = m.frames, m.counters
    flags = int(frames.flags[folio])
    if not flags & PG.MLOCKED:
        return
    nr = int(folio_nr_pages(m, folio))
    frames.flags[folio] = flags & ~PG.MLOCKED
    c.mod_node_state(NodeStat.NR_MLOCK, -nr)
    c.count_vm_event(VmEvent.UNEVICTABLE_PGMUNLOCKED, nr)
    if flags & PG.UNEVICTABLE:
        frames.flags[folio] &= ~(PG.UNEVICTABLE | PG.LRU)
        c.mod_node_state(NodeStat.NR_UNEVICTABLE, -nr)
        c.count_vm_event(VmEvent.UNEVICTABLE_PGRESCUED, nr)
        lruvec_add_folio(m, folio, nr, file=not flags & PG.SWAPBACKED)  # folio_is_file_lru(): lazyfree too


def mlock_vma_folio(m: Machine, vma: Vma, folio: int) -> None:
    """Mirrors mlock_vma_folio() (mm/internal.h): a folio mapped into a VM_LOCKED (not VM_SPECIAL) VMA
    is mlocked; what __folio_add_file_rmap() / folio_add_anon_rmap_*() do for an existing folio."""
    if (vma.vm_flags & (VmFlag.LOCKED | VM_SPECIAL)) == VmFlag.LOCKED and not m.frames.flags[folio] & PG.ZERO:
        mlock_folio(m, folio)


def munlock_vma_folio(m: Machine, vma: Vma, folio: int) -> None:
    """Mirrors munlock_vma_folio(): a folio unmapped from a VM_LOCKED VMA is munlocked (__folio_remove_rmap())."""
    if vma.vm_flags & VmFlag.LOCKED:
        munlock_folio(m, folio)
