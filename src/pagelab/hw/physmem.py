"""The frame table: one row per physical page frame, kept as numpy columns (struct-of-arrays).

Mirrors the parts of ``struct page`` / ``struct folio`` (include/linux/mm_types.h, page-flags.h) that
the memory manager needs. There is no Python object per page: ``HOST_BYTES_PER_PAGE_*`` in machine.py
give what a frame costs the host.

Columns (one entry per PFN unless said otherwise):

- ``flags``: PG_* bits (``PG`` below). A folio's flags live on its head row; a tail row keeps only
  per-page bits (PG_anon_exclusive), as in Linux.
- ``refcount``: ``_refcount``. A folio's references are counted on its head; tails stay 0.
- ``mapcount``: the per-page ``_mapcount`` (0-based here: the number of page-table entries mapping the
  page; Linux stores it minus one). Kept for every page, as Linux does with CONFIG_PAGE_MAPCOUNT=y.
- ``large_mapcount``, ``entire_mapcount``, ``nr_pages_mapped``: ``folio->_large_mapcount`` (every mapping
  of any page of the folio), ``_entire_mapcount`` (PMD mappings of the whole folio) and
  ``_nr_pages_mapped`` (pages mapped by PTEs), 0-based, meaningful on the head row of a large folio only.
  Linux keeps them in the first tail page (page[1]) because a struct page has no room for them in the
  head; a column has room, so they sit on the head row.
- ``mm_id``, ``mm_id_mapcount``, ``mm_ids_shared``: CONFIG_MM_ID's ``folio->_mm_id[2]``, ``_mm_id_mapcount[2]``
  (0-based: mappings by that mm; an id of 0 is MM_ID_DUMMY, a free slot) and FOLIO_MM_IDS_SHARED_BIT, on the
  head row of a large folio: which two mms map it and whether it may be mapped by more than one.
- ``mapping``: the id of the owner (an anon_vma for anonymous pages, as Linux tags folio->mapping with
  PAGE_MAPPING_ANON; an address_space for shmem and files). ``index``: the page offset in that owner.
- ``order``: the buddy order of a free block (on its first page: page_private() of a PageBuddy page), or
  the folio order on a head page (folio_order(), kept by Linux in page[1]'s flags).
- ``head_offset``: how far a tail page lies from its head (page - compound_head(page)); 0 for a head or
  a page not in a compound page (Linux encodes PageTail in bit 0 of page->compound_head).
- ``links``: ``links[0]`` is ``next`` and ``links[1]`` is ``prev`` of the page's list_head, which the buddy
  free lists, the per-CPU lists and the LRU lists share (the union of page->buddy_list, pcp_list and
  lru). The columns have ``LIST_HEADS`` rows more than frames: list heads (the sentinels of circular
  lists, as ``struct list_head`` in struct free_area) are rows ``nr_frames`` and up, handed out by
  ``alloc_list_head()``.
- ``fingerprint``: a 64-bit digest of the page's contents: 0 for a page of zeros (the zero page, every
  freshly allocated page), and a function of the contents only, so pages with equal bytes have equal
  fingerprints (what KSM will compare). The bytes themselves are kept only for pages that hold a
  non-zero byte.

The table holds columns only: which lists exist and what they mean is the kernel's business (mm/).
"""

from __future__ import annotations

import numpy as np

from ..errors import kernel_bug
from ..flags import Flags

PAGE_SIZE = 4096  # hw/ does not import the kernel's constants
LIST_HEADS = 64  # list-head rows after the frames in the link columns
_FP_SEED = np.uint64(0x9E3779B97F4A7C15)


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
    ANON_EXCLUSIVE = 1 << 12  # PG_anon_exclusive (per page, also on tails)
    LAZYFREE = 1 << 13  # MADV_FREE'd: anon but !swapbacked
    HEAD = 1 << 14  # PG_head: the first page of a compound page (a large folio)
    BUDDY = 1 << 15  # PageBuddy(): the first page of a free block on a buddy free list (a page type in Linux)
    READAHEAD = 1 << 16  # PG_readahead (PG_reclaim's other meaning)
    WRITEBACK = 1 << 17  # PG_writeback
    MLOCKED = 1 << 18  # PG_mlocked
    KSM = 1 << 19  # folio_test_ksm(): a KSM page (PAGE_MAPPING_KSM in Linux's mapping)
    LARGE_RMAPPABLE = 1 << 20  # PG_large_rmappable: a large folio the rmap code tracks (THP, mTHP)
    PARTIALLY_MAPPED = 1 << 21  # PG_partially_mapped: on the deferred split queue, some pages unmapped
    SWAPCACHE = 1 << 22  # PG_swapcache
    WORKINGSET = 1 << 23  # PG_workingset


def _byte_digest(offsets: np.ndarray, value: np.ndarray | int) -> np.ndarray:
    """The digest of byte ``value`` at ``offsets`` (splitmix64 of the pair; 0 for a zero byte).

    A page's fingerprint is the sum (mod 2**64) of the digests of its bytes, so it can be updated
    from the old fingerprint, the offset, the old byte and the new one, and depends on the contents only.
    """
    vals = np.broadcast_to(np.asarray(value, dtype=np.uint64), offsets.shape)
    z = (offsets.astype(np.uint64) << np.uint64(8)) | vals
    z = z + _FP_SEED
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.where(vals == 0, np.uint64(0), z)


class FrameTable:
    """Per-PFN state of ``nr_frames`` physical frames (columns only; see the module docstring)."""

    def __init__(self, nr_frames: int) -> None:
        kernel_bug(nr_frames < 16, "FrameTable: fewer than 16 frames")
        kernel_bug(nr_frames + LIST_HEADS >= 2**31, "FrameTable: PFNs must fit the int32 link columns")
        self.nr_frames = nr_frames
        # np.zeros() memory is mapped lazily: a column costs the host only where it is written.
        self.flags = np.zeros(nr_frames, dtype=np.int32)
        self.refcount = np.zeros(nr_frames, dtype=np.int32)
        self.mapcount = np.zeros(nr_frames, dtype=np.int32)
        self.large_mapcount = np.zeros(nr_frames, dtype=np.int32)
        self.entire_mapcount = np.zeros(nr_frames, dtype=np.int32)
        self.nr_pages_mapped = np.zeros(nr_frames, dtype=np.int32)
        self.mm_id = np.zeros((2, nr_frames), dtype=np.int32)
        self.mm_id_mapcount = np.zeros((2, nr_frames), dtype=np.int32)
        self.mm_ids_shared = np.zeros(nr_frames, dtype=np.bool_)
        self.mapping = np.zeros(nr_frames, dtype=np.int32)
        self.index = np.zeros(nr_frames, dtype=np.int64)
        self.order = np.zeros(nr_frames, dtype=np.int8)
        self.head_offset = np.zeros(nr_frames, dtype=np.int32)
        self.links = np.zeros((2, nr_frames + LIST_HEADS), dtype=np.int32)
        self.fingerprint = np.zeros(nr_frames, dtype=np.uint64)
        self._data: dict[int, np.ndarray] = {}  # pfn -> its 4096 bytes, for pages holding a non-zero byte
        self._list_heads = 0

    @staticmethod
    def host_bytes_per_frame() -> int:
        """Bytes of host memory the columns take per frame once every column of it was written."""
        probe = FrameTable(16)
        return sum(a.dtype.itemsize * (a.shape[0] if a.ndim == 2 else 1)
                   for a in vars(probe).values() if isinstance(a, np.ndarray))

    @property
    def next(self) -> np.ndarray:
        """``list_head.next`` of every row (frames, then list heads)."""
        row: np.ndarray = self.links[0]
        return row

    @property
    def prev(self) -> np.ndarray:
        """``list_head.prev`` of every row (frames, then list heads)."""
        row: np.ndarray = self.links[1]
        return row

    def alloc_list_head(self) -> int:
        """A fresh list head (INIT_LIST_HEAD: an empty circular list); its row in the link columns."""
        kernel_bug(self._list_heads >= LIST_HEADS, "alloc_list_head: no list-head rows left")
        row = self.nr_frames + self._list_heads
        self._list_heads += 1
        self.links[0, row] = self.links[1, row] = row
        return row

    def compound_head(self, pfns: np.ndarray | int) -> np.ndarray | int:
        """compound_head(): the head PFN of each page (the page itself unless it is a tail)."""
        if isinstance(pfns, np.ndarray):
            heads: np.ndarray = pfns - self.head_offset[pfns]
            return heads
        return int(pfns) - int(self.head_offset[pfns])

    def clear(self, pfns: np.ndarray | int) -> None:
        """Reset the rows of freed frames, contents included (what free_pages_prepare leaves: a page
        with no flags, no owner, no references; the next user finds it zero-filled, as __GFP_ZERO does)."""
        self.flags[pfns] = 0
        self.refcount[pfns] = 0
        self.mapcount[pfns] = 0
        self.large_mapcount[pfns] = 0
        self.entire_mapcount[pfns] = 0
        self.nr_pages_mapped[pfns] = 0
        self.mm_id[:, pfns] = 0
        self.mm_id_mapcount[:, pfns] = 0
        self.mm_ids_shared[pfns] = False
        self.mapping[pfns] = 0
        self.index[pfns] = 0
        self.order[pfns] = 0
        self.head_offset[pfns] = 0
        self.fingerprint[pfns] = 0
        self._drop_data(pfns)

    # --- page contents ----------------------------------------------------------------------------
    @property
    def nr_data_pages(self) -> int:
        """How many frames hold a non-zero byte (every other frame reads as zeros)."""
        return len(self._data)

    def _drop_data(self, pfns: np.ndarray | int) -> None:
        if not self._data:
            return
        if not isinstance(pfns, np.ndarray):
            self._data.pop(int(pfns), None)
            return
        keys = np.fromiter(self._data.keys(), dtype=np.int64, count=len(self._data))
        for pfn in keys[np.isin(keys, pfns)].tolist():
            del self._data[pfn]

    def read_byte(self, pfn: int, offset: int) -> int:
        """The byte at ``offset`` of frame ``pfn``."""
        kernel_bug(not 0 <= offset < PAGE_SIZE, "read_byte: offset outside the page")
        data = self._data.get(int(pfn))
        return int(data[offset]) if data is not None else 0

    def write_bytes(self, pfns: np.ndarray, offsets: np.ndarray, value: int) -> None:
        """Store byte ``value`` at ``offsets[i]`` of frame ``pfns[i]`` for every i, updating the fingerprints.

        Each fingerprint moves by the digest of the new byte minus that of the old one at each written
        offset, so it stays a function of the contents. Writing 0 where a page holds only zeros changes
        nothing and costs no storage; a page whose bytes all return to 0 gives its storage back.
        """
        pfns = np.asarray(pfns, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        kernel_bug(pfns.shape != offsets.shape, "write_bytes: pfns and offsets differ in length")
        kernel_bug(not 0 <= value <= 255, "write_bytes: not a byte value")
        if pfns.shape[0] == 0 or (value == 0 and not self._data):
            return
        kernel_bug(bool(((offsets < 0) | (offsets >= PAGE_SIZE)).any()), "write_bytes: offset outside the page")
        places = np.unique(pfns * PAGE_SIZE + offsets)  # sorted: grouped by page
        pages, offs = places // PAGE_SIZE, places % PAGE_SIZE
        starts = np.flatnonzero(np.concatenate(([True], pages[1:] != pages[:-1])))
        ends = np.append(starts[1:], places.shape[0])
        new_digest = _byte_digest(offs, value)
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            pfn = int(pages[s])
            data = self._data.get(pfn)
            if data is None:
                if value == 0:
                    continue
                data = self._data[pfn] = np.zeros(PAGE_SIZE, dtype=np.uint8)
            o = offs[s:e]
            old = data[o]
            data[o] = value
            delta = int(new_digest[s:e].sum(dtype=np.uint64)) - int(_byte_digest(o, old).sum(dtype=np.uint64))
            self.fingerprint[pfn] = (int(self.fingerprint[pfn]) + delta) % 2**64
            if value == 0 and not data.any():
                del self._data[pfn]
                self.fingerprint[pfn] = 0

    def page_bytes(self, pfn: int) -> np.ndarray | None:
        """A copy of frame ``pfn``'s 4096 bytes, or None when it holds only zeros."""
        data = self._data.get(int(pfn))
        return None if data is None else data.copy()

    def set_page_bytes(self, pfn: int, data: np.ndarray | None) -> None:
        """Frame ``pfn`` now holds ``data`` (4096 uint8; None = all zeros), its fingerprint recomputed
        (what a read from a device, or a copy into the page cache, leaves in it)."""
        self._drop_data(int(pfn))
        if data is None or not data.any():
            self.fingerprint[pfn] = 0
            return
        kernel_bug(data.shape != (PAGE_SIZE,), "set_page_bytes: not one page of bytes")
        self._data[int(pfn)] = np.array(data, dtype=np.uint8)
        offs = np.flatnonzero(data)
        self.fingerprint[pfn] = int(_byte_digest(offs, data[offs].astype(np.uint64)).sum(dtype=np.uint64))

    def copy_data(self, dst: int, src: int) -> None:
        """copy_user_highpage(): frame ``dst`` gets the bytes and the fingerprint of frame ``src``."""
        self._drop_data(dst)
        data = self._data.get(int(src))
        if data is not None:
            self._data[int(dst)] = data.copy()
        self.fingerprint[dst] = self.fingerprint[src]
