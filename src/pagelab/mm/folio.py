"""Folios: a head page and its order, as a small value for the slow paths.

Mirrors struct folio (include/linux/mm_types.h) and its accessors in include/linux/mm.h (page_folio(),
folio_order(), folio_nr_pages(), folio_ref_count(), folio_mapcount() ...). A Folio names frame-table rows;
the state itself stays in the table's columns (hw/physmem.py): the flags and reference count on the head
row, the per-page map counts on every row, the folio-wide map counts on the head row of a large folio.
Hot paths work on the columns with numpy; slow paths (a THP fault, a split) pass Folio values around.

``split_folio_to_order`` is the frame-model half of splitting a large folio (mm/huge_memory.c); the
caller unmaps, refreezes references and re-adds to the LRU as split_huge_page_to_list_to_order() does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import kernel_bug
from ..hw.physmem import PG
from .page_alloc import prep_compound_page, put_page

if TYPE_CHECKING:
    from ..machine import Machine

# The flags __split_folio_to_order() copies from the folio to each new folio (PG_referenced, swapbacked,
# swapcache, mlocked, uptodate, active, workingset, locked, unevictable, dirty), plus what Linux derives
# from folio->mapping (anon, KSM, lazyfree: !swapbacked anon).
SPLIT_FLAGS = (PG.REFERENCED | PG.SWAPBACKED | PG.SWAPCACHE | PG.MLOCKED | PG.UPTODATE | PG.ACTIVE
               | PG.WORKINGSET | PG.LOCKED | PG.UNEVICTABLE | PG.DIRTY | PG.ANON | PG.KSM | PG.LAZYFREE)


@dataclass(frozen=True, slots=True)
class Folio:
    """A folio: ``pfn`` of its head page and its ``order`` (0 for a single page)."""

    pfn: int
    order: int = 0

    @property
    def nr_pages(self) -> int:
        """folio_nr_pages()."""
        return 1 << self.order

    def page(self, n: int) -> int:
        """folio_page(): the PFN of page ``n`` of the folio."""
        kernel_bug(not 0 <= n < self.nr_pages, f"folio_page: page {n} of an order-{self.order} folio")
        return self.pfn + n

    def pfns(self) -> np.ndarray:
        """Every page of the folio, head first."""
        return np.arange(self.pfn, self.pfn + self.nr_pages, dtype=np.int64)


def page_folio(m: Machine, pfn: int) -> Folio:
    """Mirrors page_folio(): the folio page ``pfn`` belongs to (its head via compound_head())."""
    frames = m.frames
    kernel_bug(not 0 <= pfn < frames.nr_frames, f"page_folio: pfn {pfn} is not a frame")
    head = pfn - int(frames.head_offset[pfn])
    order = int(frames.order[head]) if frames.flags[head] & PG.HEAD else 0
    return Folio(head, order)


def folio_test_large(folio: Folio) -> bool:
    """folio_test_large(): more than one page."""
    return folio.order > 0


def folio_ref_count(m: Machine, folio: Folio) -> int:
    """folio_ref_count(): the references held on the folio (counted on its head)."""
    return int(m.frames.refcount[folio.pfn])


def folio_get(m: Machine, folio: Folio) -> None:
    """folio_get(): take a reference."""
    m.frames.refcount[folio.pfn] += 1


def folio_put(m: Machine, folio: Folio) -> None:
    """folio_put(): drop a reference; the last one frees the whole folio."""
    put_page(m, folio.pfn)


def folio_mapcount(m: Machine, folio: Folio) -> int:
    """folio_mapcount(): how many page-table entries map some page of the folio (PMD mappings count
    once): _large_mapcount for a large folio, the page's _mapcount otherwise."""
    frames = m.frames
    return int(frames.large_mapcount[folio.pfn] if folio.order else frames.mapcount[folio.pfn])


def folio_entire_mapcount(m: Machine, folio: Folio) -> int:
    """folio_entire_mapcount(): how many PMDs map the whole (large) folio."""
    kernel_bug(not folio.order, "folio_entire_mapcount: not a large folio")
    return int(m.frames.entire_mapcount[folio.pfn])


def split_folio_to_order(m: Machine, folio: Folio, new_order: int) -> list[Folio]:
    """Mirrors __split_folio_to_order() (mm/huge_memory.c): the order-``folio.order`` folio becomes
    2**(order - new_order) folios of ``new_order``, in address order; returns them.

    Each new folio takes the folio's flags in SPLIT_FLAGS, its mapping, and index + its offset; a tail
    row keeps its own per-page bits (PG_anon_exclusive) and map count. New folios of order >= 1 are
    compound and large_rmappable (prep_compound_page()). Left to the caller, as in Linux: references
    (the folio must be frozen: the caller gives each new folio its own, folio_ref_unfreeze()), the LRU
    (lru_add_split_folio()), and folio-wide map counts (a split folio is unmapped first, unmap_folio()).
    """
    frames = m.frames
    old_order = folio.order
    kernel_bug(not 0 <= new_order < old_order, f"split_folio_to_order: order {old_order} to {new_order}")
    kernel_bug(not frames.flags[folio.pfn] & PG.HEAD or int(frames.order[folio.pfn]) != old_order,
               f"split_folio_to_order: pfn {folio.pfn} is not the head of an order-{old_order} folio")
    kernel_bug(bool(frames.large_mapcount[folio.pfn] or frames.entire_mapcount[folio.pfn]),
               "split_folio_to_order: the folio is still mapped (unmap_folio() first)")
    head, step, nr = folio.pfn, 1 << new_order, 1 << old_order
    keep = int(frames.flags[head]) & SPLIT_FLAGS
    tails = np.arange(head + step, head + nr, step, dtype=np.int64)  # the heads of the new folios but the first
    frames.flags[tails] = (frames.flags[tails] & PG.ANON_EXCLUSIVE) | keep
    frames.mapping[tails] = frames.mapping[head]
    frames.index[tails] = int(frames.index[head]) + (tails - head)
    frames.head_offset[head + 1:head + nr] = 0  # clear_compound_head()
    frames.nr_pages_mapped[head] = 0
    if new_order:
        for pfn in [head, *tails.tolist()]:
            prep_compound_page(frames, pfn, new_order)
            frames.flags[pfn] |= PG.LARGE_RMAPPABLE
    else:  # ClearPageCompound()
        frames.flags[head] &= ~(PG.HEAD | PG.LARGE_RMAPPABLE | PG.PARTIALLY_MAPPED)
        frames.order[head] = 0
    return [Folio(head + i, new_order) for i in range(0, nr, step)]
