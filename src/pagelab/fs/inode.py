"""Inodes: a file's size, where its pages lie on the disk, which are holes, and what they hold.

Mirrors struct inode (include/linux/fs.h: i_ino, i_mode, i_size, i_mapping, dirtied_when) with the
part of ext4's inode that decides I/O: the extent of disk pages the file's pages are stored in and
which of its pages are allocated (a page never written, or cut off by a truncate, is a hole that reads
as zeros with no I/O).

Simplified: a file's blocks are one contiguous extent reserved when it is created (as a file written in
one go on a fresh filesystem is), large enough for its size; a file that grows past it moves to a new
extent (ext4 would add one); no indirect blocks, no journal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sortedcontainers import SortedDict

from ..constants import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from ..mm.filemap import AddressSpace

S_IFREG = 0o100000
S_IFDIR = 0o040000


class Inode:
    """One file: ``i_size`` in bytes, ``i_mapping`` its page cache, ``disk_start`` the disk page of its
    page 0, ``extents`` the runs of pages that have blocks (start -> end, page indices; everything else is
    a hole), ``data`` the non-zero pages' bytes as stored on the disk (page index -> 4096 uint8)."""

    def __init__(self, ino: int, mode: int = S_IFREG) -> None:
        self.i_ino = ino
        self.i_mode = mode
        self.i_size = 0
        self.i_mapping: AddressSpace | None = None
        self.disk_start = 0
        self.disk_pages = 0  # the extent's length
        self.extents: SortedDict[int, int] = SortedDict()  # [start, end) runs of allocated pages, disjoint
        self.data: dict[int, np.ndarray] = {}
        # m.fs.create(content=...): bytes [0, content_end) of the disk hold ``content`` repeated, except the
        # pages ``data`` holds (written since); made page by page when read, so a huge file costs nothing
        self.content: bytes | None = None
        self.content_end = 0
        self.dirtied_when = 0  # ns when its first page was dirtied (0: clean), for the flusher's expiry
        self.i_nlink = 1
        self.i_count = 0  # open files and mappings holding it (an unlinked inode lives until 0)

    @property
    def is_dir(self) -> bool:
        return self.i_mode & S_IFDIR == S_IFDIR

    @property
    def nr_pages(self) -> int:
        """Pages that i_size covers (DIV_ROUND_UP(i_size, PAGE_SIZE))."""
        return (self.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT

    def allocate(self, start: int, end: int) -> None:
        """Pages [start, end) get blocks (ext4_map_blocks() with EXT4_GET_BLOCKS_CREATE): runs merge."""
        if end <= start:
            return
        ext = self.extents
        k = ext.bisect_right(start) - 1
        if k >= 0 and ext.peekitem(k)[1] >= start:  # overlaps or touches the run before
            start = ext.peekitem(k)[0]
            end = max(end, ext.peekitem(k)[1])
        for s in list(ext.irange(start, end)):
            end = max(end, ext.pop(s))
        ext[start] = end

    def punch_from(self, start: int) -> None:
        """Pages from ``start`` on lose their blocks (ext4_truncate())."""
        ext = self.extents
        k = ext.bisect_right(start) - 1
        if k >= 0 and ext.peekitem(k)[1] > start:
            ext[ext.peekitem(k)[0]] = start
        for s in list(ext.irange(start, None)):
            del ext[s]
        for s in [s for s, e in ext.items() if e <= s]:
            del ext[s]

    def is_hole(self, index: int) -> bool:
        ext = self.extents
        k = ext.bisect_right(index) - 1
        return k < 0 or int(ext.peekitem(k)[1]) <= index

    def page_data(self, index: int) -> np.ndarray | None:
        """The bytes the disk holds for page ``index`` (None: all zeros)."""
        data = self.data.get(index)
        if data is not None or self.content is None or index << PAGE_SHIFT >= self.content_end:
            return data
        content = self.content
        start = index << PAGE_SHIFT
        n = min(PAGE_SIZE, self.content_end - start)
        offset = start % len(content)
        chunk = (content * ((n + offset) // len(content) + 1))[offset:offset + n]
        out = np.zeros(PAGE_SIZE, dtype=np.uint8)
        out[:n] = np.frombuffer(chunk, dtype=np.uint8)
        return out if out.any() else None

    def store_page(self, index: int, data: np.ndarray | None) -> None:
        """Page ``index`` on the disk now holds ``data`` (None: zeros), replacing any ``content``."""
        if data is not None:
            self.data[index] = data
        elif self.content is not None and index << PAGE_SHIFT < self.content_end:
            self.data[index] = np.zeros(PAGE_SIZE, dtype=np.uint8)
        else:
            self.data.pop(index, None)

    def truncate_data(self, length: int) -> None:
        """The disk's bytes from ``length`` on are gone (they read as zeros if the file grows again)."""
        keep = (length + PAGE_SIZE - 1) >> PAGE_SHIFT
        for page in [p for p in self.data if p >= keep]:
            del self.data[page]
        if length & (PAGE_SIZE - 1) and keep - 1 in self.data:
            self.data[keep - 1][length & (PAGE_SIZE - 1):] = 0
        self.content_end = min(self.content_end, length)

    def block_of(self, index: int) -> int:
        """The disk page that stores page ``index`` of the file."""
        return self.disk_start + index
