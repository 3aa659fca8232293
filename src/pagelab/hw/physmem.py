"""The frame table: one row per physical page frame, kept as numpy columns (struct-of-arrays).

Mirrors the parts of ``struct page`` / ``struct folio`` (include/linux/mm_types.h) that demand
paging needs: flags, the reference count, the map count, ``mapping`` and ``index``. There is no
Python object per page, so a 64 GiB machine (16 M frames) costs about 400 MiB of host memory.

``mapping`` holds a small integer naming the owner: for anonymous pages the anon_vma id (as Linux
tags folio->mapping with PAGE_MAPPING_ANON), for shmem pages the id of the shmem file.

Free frames sit on a LIFO stack (recently freed frames are reused first, like the per-CPU page
lists); the buddy allocator replaces it when memory pressure is modelled.
"""

from __future__ import annotations

import numpy as np

from ..errors import kernel_bug
from ..flags import Flags


class PG(Flags):
    """Page flags we model (include/linux/page-flags.h: enum pageflags), as bits in ``flags``."""

    LOCKED = 1 << 0
    REFERENCED = 1 << 1
    UPTODATE = 1 << 2
    DIRTY = 1 << 3
    LRU = 1 << 4
    ACTIVE = 1 << 5
    RESERVED = 1 << 6
    SWAPBACKED = 1 << 7
    UNEVICTABLE = 1 << 8
    ANON = 1 << 9  # PageAnon(): folio->mapping & PAGE_MAPPING_ANON
    TABLE = 1 << 10  # PageTable(): a page-table page
    ZERO = 1 << 11  # the shared zero page
    ANON_EXCLUSIVE = 1 << 12  # PG_anon_exclusive
    LAZYFREE = 1 << 13  # MADV_FREE'd: anon but !swapbacked


class FrameTable:
    """Per-PFN state of ``nr_frames`` physical frames, and the free-frame stack."""

    def __init__(self, nr_frames: int) -> None:
        kernel_bug(nr_frames < 16, "FrameTable: fewer than 16 frames")
        self.nr_frames = nr_frames
        self.flags = np.zeros(nr_frames, dtype=np.int32)
        self.refcount = np.zeros(nr_frames, dtype=np.int32)
        self.mapcount = np.zeros(nr_frames, dtype=np.int32)
        self.mapping = np.zeros(nr_frames, dtype=np.int64)
        self.index = np.zeros(nr_frames, dtype=np.int64)
        # Stack of free PFNs; the top is free_stack[nr_free - 1]. Filled so that low PFNs go first.
        self.free_stack = np.arange(nr_frames - 1, -1, -1, dtype=np.int64)
        self.nr_free = nr_frames

    def reserve(self, pfn: int) -> None:
        """Take ``pfn`` off the free stack for good (memblock_reserve analogue); only at boot."""
        kernel_bug(self.free_stack[self.nr_free - 1] != pfn, "reserve: not the next free frame")
        self.nr_free -= 1
        self.flags[pfn] = PG.RESERVED
        self.refcount[pfn] = 1

    def pop_one(self) -> int:
        """Take one frame off the free stack (the common case, without building an array)."""
        kernel_bug(self.nr_free == 0, "FrameTable.pop_one: no free frame")
        self.nr_free -= 1
        return int(self.free_stack[self.nr_free])

    def pop(self, n: int) -> np.ndarray:
        """Take ``n`` frames off the free stack, in the order single pops would return them."""
        kernel_bug(n > self.nr_free, "FrameTable.pop: not enough free frames")
        top = self.nr_free
        self.nr_free -= n
        return self.free_stack[top - n:top][::-1].copy()

    def push(self, pfns: np.ndarray | list[int]) -> None:
        """Return frames to the free stack, in order (the last one pushed is reused first)."""
        pfns = np.asarray(pfns, dtype=np.int64)
        n = pfns.shape[0]
        self.free_stack[self.nr_free:self.nr_free + n] = pfns
        self.nr_free += n

    def clear(self, pfns: np.ndarray | int) -> None:
        """Reset the rows of freed frames (what free_pages_prepare leaves: no flags, no owner)."""
        self.flags[pfns] = 0
        self.refcount[pfns] = 0
        self.mapcount[pfns] = 0
        self.mapping[pfns] = 0
        self.index[pfns] = 0
