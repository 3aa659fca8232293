"""The main arena's bins: glibc's doubly linked free lists, in glibc's orders (malloc/malloc.c).

Bin 1 is the unsorted bin; bins 2..63 are the small bins (one chunk size each, 16 bytes apart, below
MIN_LARGE_SIZE = 1024); bins 64..126 are the large bins (size ranges, kept sorted largest first, with the
fd_nextsize/bk_nextsize skip list linking the first chunk of each size). As in glibc each bin is a list
head whose fd is the first chunk and bk the last: chunks enter the unsorted and small bins at the head
and leave from the tail (FIFO). The links are dicts keyed by chunk address; a bin's head is the negative
key ``-index`` (glibc's bin_at(), which lives in libc's own data, not in the heap).

Each change of a chunk's links is reported through ``touch(chunk + 16)`` (fd/bk) or ``touch(chunk + 32)``
(fd_nextsize/bk_nextsize): the allocator stores there, as glibc writes those words into the heap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

NBINS = 128
UNSORTED = 1
SMALLBIN_WIDTH = 16
MIN_LARGE_SIZE = 64 * SMALLBIN_WIDTH  # 1024 on 64-bit


def in_smallbin_range(sz: int) -> bool:
    """Mirrors in_smallbin_range()."""
    return sz < MIN_LARGE_SIZE


def smallbin_index(sz: int) -> int:
    """Mirrors smallbin_index() (SMALLBIN_CORRECTION 0 on 64-bit)."""
    return sz >> 4


def largebin_index(sz: int) -> int:
    """Mirrors largebin_index_64()."""
    if sz >> 6 <= 48:
        return 48 + (sz >> 6)
    if sz >> 9 <= 20:
        return 91 + (sz >> 9)
    if sz >> 12 <= 10:
        return 110 + (sz >> 12)
    if sz >> 15 <= 4:
        return 119 + (sz >> 15)
    if sz >> 18 <= 2:
        return 124 + (sz >> 18)
    return 126


def bin_index(sz: int) -> int:
    """Mirrors bin_index()."""
    return smallbin_index(sz) if in_smallbin_range(sz) else largebin_index(sz)


def bin_at(i: int) -> int:
    """The key of bin ``i``'s list head."""
    return -i


@dataclass
class Bins:
    """The arena's bins (struct malloc_state's bins[] and binmap) and a map of the free chunks they hold."""

    touch: Callable[[int], None]
    fd: dict[int, int] = field(default_factory=dict)
    bk: dict[int, int] = field(default_factory=dict)
    fd_nextsize: dict[int, int] = field(default_factory=dict)  # only the first chunk of each size in a large bin
    bk_nextsize: dict[int, int] = field(default_factory=dict)
    size: dict[int, int] = field(default_factory=dict)  # every binned chunk -> its size
    below: dict[int, int] = field(default_factory=dict)  # a binned chunk's end -> the chunk (prev_size/prev_inuse)

    def __post_init__(self) -> None:
        for i in range(1, NBINS):
            self.fd[-i] = self.bk[-i] = -i

    def copy(self, touch: Callable[[int], None]) -> Bins:
        return Bins(touch, dict(self.fd), dict(self.bk), dict(self.fd_nextsize), dict(self.bk_nextsize),
                    dict(self.size), dict(self.below))

    def first(self, b: int) -> int:
        return self.fd[b]

    def last(self, b: int) -> int:
        return self.bk[b]

    def chunks(self, i: int) -> Iterator[int]:
        """Bin ``i``'s chunks from the last to the first (mtrim()'s walk: p = last(bin); p = p->bk)."""
        p = self.bk[-i]
        while p != -i:
            yield p
            p = self.bk[p]

    def nonempty_from(self, i: int) -> Iterator[int]:
        """The binmap search: the non-empty bins at index ``i`` and above, in order."""
        for j in range(max(i, 2), NBINS):
            if self.fd[-j] != -j:
                yield j

    def _set_fd(self, p: int, v: int) -> None:
        self.fd[p] = v
        if p >= 0:
            self.touch(p + 16)

    def _set_bk(self, p: int, v: int) -> None:
        self.bk[p] = v
        if p >= 0:
            self.touch(p + 16)

    def _set_nextsize(self, p: int, fwd: int | None = None, bck: int | None = None) -> None:
        if fwd is not None:
            self.fd_nextsize[p] = fwd
        if bck is not None:
            self.bk_nextsize[p] = bck
        self.touch(p + 32)

    def link(self, p: int, size: int, bck: int, fwd: int) -> None:
        """p->bk = bck; p->fd = fwd; fwd->bk = p; bck->fd = p (the insertion every bin uses)."""
        self.size[p] = size
        self.below[p + size] = p
        self._set_bk(p, bck)
        self._set_fd(p, fwd)
        self._set_bk(fwd, p)
        self._set_fd(bck, p)

    def insert_unsorted(self, p: int, size: int) -> None:
        """At the head of the unsorted bin (free(), malloc_consolidate(), a split's remainder)."""
        bck = bin_at(UNSORTED)
        self.link(p, size, bck, self.fd[bck])

    def unlink_chunk(self, p: int) -> None:
        """Mirrors unlink_chunk(): take ``p`` out of whatever bin holds it, rerouting the skip list."""
        fd, bk = self.fd.pop(p), self.bk.pop(p)
        size = self.size.pop(p)
        del self.below[p + size]
        self._set_bk(fd, bk)
        self._set_fd(bk, fd)
        if p not in self.fd_nextsize:
            return
        nfd, nbk = self.fd_nextsize.pop(p), self.bk_nextsize.pop(p)
        if fd >= 0 and fd not in self.fd_nextsize:  # the next chunk has p's size: it heads the group now
            if nfd == p:
                self._set_nextsize(fd, fd, fd)
            else:
                self._set_nextsize(fd, nfd, nbk)
                self._set_nextsize(nfd, bck=fd)
                self._set_nextsize(nbk, fwd=fd)
        elif nfd != p:
            self._set_nextsize(nfd, bck=nbk)
            self._set_nextsize(nbk, fwd=nfd)

    def place(self, victim: int, size: int) -> None:
        """_int_malloc()'s "place chunk in bin": a small bin at its head, a large bin in size order (a size
        already there: in the second position, so the skip list keeps its node)."""
        if in_smallbin_range(size):
            bck = bin_at(smallbin_index(size))
            self.link(victim, size, bck, self.fd[bck])
            return
        bck = bin_at(largebin_index(size))
        fwd = self.fd[bck]
        if fwd == bck:
            self._set_nextsize(victim, victim, victim)
        elif size < self.size[self.bk[bck]]:
            fwd, bck = bck, self.bk[bck]
            head = self.fd[fwd]
            self._set_nextsize(victim, head, self.bk_nextsize[head])
            self._set_nextsize(self.bk_nextsize[victim], fwd=victim)
            self._set_nextsize(head, bck=victim)
        else:
            while size < self.size[fwd]:
                fwd = self.fd_nextsize[fwd]
            if size == self.size[fwd]:
                fwd = self.fd[fwd]
            else:
                self._set_nextsize(victim, fwd, self.bk_nextsize[fwd])
                self._set_nextsize(fwd, bck=victim)
                self._set_nextsize(self.bk_nextsize[victim], fwd=victim)
            bck = self.bk[fwd]
        self.link(victim, size, bck, fwd)

    def large_best_fit(self, i: int, nb: int) -> int:
        """_int_malloc()'s large-request search of bin ``i``: the smallest chunk of at least ``nb``, the
        second of its size if there is one (0 if none fits)."""
        b = bin_at(i)
        victim = self.fd[b]
        if victim == b or self.size[victim] < nb:
            return 0
        victim = self.bk_nextsize[victim]
        while self.size[victim] < nb:
            victim = self.bk_nextsize[victim]
        nxt = self.fd[victim]
        if victim != self.bk[b] and nxt >= 0 and self.size[nxt] == self.size[victim]:
            victim = nxt
        return victim
