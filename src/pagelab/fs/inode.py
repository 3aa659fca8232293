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

from ..constants import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from ..mm.filemap import AddressSpace

S_IFREG = 0o100000
S_IFDIR = 0o040000


class Inode:
    """One file: ``i_size`` in bytes, ``i_mapping`` its page cache, ``disk_start`` the disk page of its
    page 0, ``allocated[i]`` whether page i has a block (False: a hole), ``data`` the non-zero pages'
    bytes as stored on the disk (page index -> 4096 uint8), ``fingerprint`` per page (0 = zeros)."""

    def __init__(self, ino: int, mode: int = S_IFREG) -> None:
        self.i_ino = ino
        self.i_mode = mode
        self.i_size = 0
        self.i_mapping: AddressSpace | None = None
        self.disk_start = 0
        self.disk_pages = 0  # the extent's length
        self.allocated = np.zeros(0, dtype=bool)
        self.data: dict[int, np.ndarray] = {}
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

    def ensure_pages(self, nr: int) -> None:
        """Grow the per-page columns to cover ``nr`` pages (new ones are holes)."""
        if nr > self.allocated.shape[0]:
            grown = np.zeros(max(nr, 2 * self.allocated.shape[0]), dtype=bool)
            grown[:self.allocated.shape[0]] = self.allocated
            self.allocated = grown

    def is_hole(self, index: int) -> bool:
        return index >= self.allocated.shape[0] or not self.allocated[index]

    def block_of(self, index: int) -> int:
        """The disk page that stores page ``index`` of the file."""
        return self.disk_start + index
