"""Readahead: how the page cache is filled ahead of the reader, in windows that grow, with folios that grow.

Mirrors mm/readahead.c (Linux 6.18). A struct file carries a file_ra_state: the most recent window
``[start, start + size)`` whose last ``async_size`` pages are "ahead"; the folio at ``start + size -
async_size`` gets PG_readahead, and when a reader (read(), a fault, fault-around skips it) meets that
marker, page_cache_async_ra() starts the next window before the reader stalls. Windows start from the
request size (get_init_ra_size()) and ramp up x4 / x2 to ``ra_pages`` (read_ahead_kb / 4);
asynchronous windows raise the preferred folio order by 2 each time (``ra->order += 2``), so a long
sequential read ends in PMD-sized folios; page_cache_ra_order() clamps the order to the mapping's
maximum and ilog2(size), aligns it to the index and never allocates past EOF. POSIX_FADV_RANDOM
(FMODE_RANDOM) reads exactly what is asked, in order-0 folios (force_page_cache_ra()).

                |<----- async_size ---------|
    |------------------- size -------------------->|
    |==================#===========================|
    ^start             ^folio marked with PG_readahead

Simplified: no memory-pressure fallbacks beyond "the allocation failed: stop" (no reclaim yet),
no blk-cgroup congestion, no workingset PSI accounting, no readahead_expand(); ``bdi->io_pages`` is
the device's largest request (max_sectors_kb) as on this host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..constants import PAGE_SHIFT
from ..hw.physmem import PG
from .filemap import (
    AddressSpace,
    filemap_add_folio,
    filemap_get_folio,
    filemap_read_folios,
    folio_nr,
    i_size_pages,
    page_cache_next_miss,
    page_cache_prev_miss,
)
from .page_alloc import folio_alloc, put_page

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine

ULONG_MAX = (1 << 64) - 1
RA_CHUNK_PAGES = (2 << 20) >> PAGE_SHIFT  # force_page_cache_ra(): 2 MiB at a time


@dataclass(slots=True)
class FileRaState:
    """Mirrors struct file_ra_state (include/linux/fs.h), in pages; ``prev_pos`` in bytes (-1: none yet)."""

    ra_pages: int = 32  # the maximum window, from the bdi (read_ahead_kb / 4)
    start: int = 0
    size: int = 0
    async_size: int = 0
    order: int = 0  # preferred folio order of the most recent readahead
    mmap_miss: int = 0
    prev_pos: int = -1


@dataclass(slots=True)
class ReadaheadControl:
    """Mirrors struct readahead_control: a batch of new folios ``[_index, _index + _nr_pages)`` to read.

    ``task`` is whose I/O this is (for /proc/PID/io); ``folios`` the (index, head) pairs added so far
    and not yet submitted (read_pages() hands them to the filesystem).
    """

    mapping: AddressSpace
    ra: FileRaState
    index: int
    random: bool = False  # ractl->file->f_mode & FMODE_RANDOM
    task: Task | None = None
    nr_pages: int = 0
    folios: list[tuple[int, int]] = field(default_factory=list)


def read_pages(ractl: ReadaheadControl) -> None:
    """Mirrors read_pages(): hand the batch's locked folios to ->readahead (the filesystem starts the I/O)."""
    if ractl.folios:
        filemap_read_folios(ractl.mapping, ractl.folios, ractl.task)
    ractl.index += ractl.nr_pages
    ractl.nr_pages = 0
    ractl.folios = []


def ra_alloc_folio(m: Machine, ractl: ReadaheadControl, index: int, mark: int, order: int) -> int:
    """Mirrors ra_alloc_folio(): a locked folio of ``order`` at ``index``, PG_readahead if it holds
    ``mark``; 0, or -ENOMEM / -EEXIST as a negative number."""
    folio = folio_alloc(m, order, PG.LOCKED)  # filemap_alloc_folio(); added locked, not uptodate
    if folio < 0:
        return -12
    if index == mark & ~((1 << order) - 1):
        m.frames.flags[folio] |= PG.READAHEAD
    if not filemap_add_folio(m, ractl.mapping, folio, index):
        m.frames.flags[folio] &= ~(PG.LOCKED | PG.READAHEAD)
        put_page(m, folio)
        return -17
    ractl.nr_pages += 1 << order
    ractl.folios.append((index, folio))
    return 0


def page_cache_ra_unbounded(m: Machine, ractl: ReadaheadControl, nr_to_read: int, lookahead_size: int) -> None:
    """Mirrors page_cache_ra_unbounded(): order-0 folios for [index, index + nr_to_read) that are not
    cached yet, the one at ``nr_to_read - lookahead_size`` marked PG_readahead; each run of new folios
    is submitted when a cached one interrupts it, and the last at the end."""
    index = ractl.index
    mark = nr_to_read - lookahead_size if lookahead_size <= nr_to_read else ULONG_MAX
    i = 0
    while i < nr_to_read:
        if filemap_get_folio(ractl.mapping, index + i) >= 0:  # already present: kick off the batch
            read_pages(ractl)
            ractl.index += 1
            i = ractl.index + ractl.nr_pages - index
            continue
        folio = folio_alloc(m, 0, PG.LOCKED)
        if folio < 0:
            break
        filemap_add_folio(m, ractl.mapping, folio, index + i)
        if i == mark:
            m.frames.flags[folio] |= PG.READAHEAD
        ractl.nr_pages += 1
        ractl.folios.append((index + i, folio))
        i += 1
    read_pages(ractl)


def do_page_cache_ra(m: Machine, ractl: ReadaheadControl, nr_to_read: int, lookahead_size: int) -> None:
    """Mirrors do_page_cache_ra(): page_cache_ra_unbounded(), not past the page holding the last byte."""
    end_index = i_size_pages(ractl.mapping) - 1
    if end_index < 0 or ractl.index > end_index:
        return
    nr_to_read = min(nr_to_read, end_index - ractl.index + 1)
    page_cache_ra_unbounded(m, ractl, nr_to_read, lookahead_size)


def force_page_cache_ra(m: Machine, ractl: ReadaheadControl, nr_to_read: int, io_pages: int) -> None:
    """Mirrors force_page_cache_ra(): read [index, index + nr_to_read) as asked (at most
    max(io_pages, ra_pages)), in 2 MiB chunks, order-0 folios, no marker."""
    if ractl.mapping.a_ops is None:  # no ->read_folio and no ->readahead: nothing can be read
        return
    nr_to_read = min(nr_to_read, max(io_pages, ractl.ra.ra_pages))
    while nr_to_read:
        chunk = min(RA_CHUNK_PAGES, nr_to_read)
        do_page_cache_ra(m, ractl, chunk, 0)
        nr_to_read -= chunk


def get_init_ra_size(size: int, max_pages: int) -> int:
    """Mirrors get_init_ra_size(): the first window for a request of ``size`` pages."""
    newsize = 1 << max(size - 1, 0).bit_length()  # roundup_pow_of_two()
    if newsize <= max_pages // 32:
        return newsize * 4
    if newsize <= max_pages // 4:
        return newsize * 2
    return max_pages


def get_next_ra_size(ra: FileRaState, max_pages: int) -> int:
    """Mirrors get_next_ra_size(): the next window, ramped up from the last."""
    cur = ra.size
    if cur < max_pages // 16:
        return 4 * cur
    if cur <= max_pages // 2:
        return 2 * cur
    return max_pages


def page_cache_ra_order(m: Machine, ractl: ReadaheadControl, ra: FileRaState) -> None:
    """Mirrors page_cache_ra_order(): fill the window ``ra`` with folios of ``ra.order`` (clamped to the
    mapping's maximum and ilog2(size); smaller where the index is not aligned, or near EOF), the one
    holding ``start + size - async_size`` marked; what could not be allocated or was cached already
    falls back to do_page_cache_ra()."""
    mapping = ractl.mapping
    start = index = ractl.index
    limit = i_size_pages(mapping) - 1
    mark = index + ra.size - ra.async_size
    err = 0
    if not mapping.max_order:
        ra.order = 0
    else:
        limit = min(limit, index + ra.size - 1)
        new_order = min(mapping.max_order, ra.order, max(ra.size, 1).bit_length() - 1)
        ra.order = new_order
        while index <= limit:
            order = new_order
            if index & ((1 << order) - 1):
                order = (index & -index).bit_length() - 1  # __ffs(index)
            while order > 0 and index + (1 << order) - 1 > limit:
                order -= 1
            err = ra_alloc_folio(m, ractl, index, mark, order)
            if err:
                break
            index += 1 << order
        read_pages(ractl)
        if not err:
            return
    if ra.size > index - start:  # fallback:
        do_page_cache_ra(m, ractl, ra.size - (index - start), ra.async_size)


def ractl_max_pages(ractl: ReadaheadControl, req_size: int, io_pages: int) -> int:
    """Mirrors ractl_max_pages(): ra_pages, or up to the device's optimal I/O for a larger request."""
    max_pages = ractl.ra.ra_pages
    if req_size > max_pages and io_pages > max_pages:
        max_pages = min(req_size, io_pages)
    return max_pages


def page_cache_sync_ra(m: Machine, ractl: ReadaheadControl, req_count: int, io_pages: int) -> None:
    """Mirrors page_cache_sync_ra(): a cache miss at ``ractl.index`` for a request of ``req_count`` pages.

    FMODE_RANDOM (or no readahead): read just the request. A start of file, an oversized read or a
    sequential miss: a new window from get_init_ra_size(). Otherwise the cached history decides: a small
    random read is read as is; a read after ``contig_count`` cached pages gets a window of that size.
    """
    ra = ractl.ra
    index = ractl.index
    random = ractl.random
    if not ra.ra_pages:
        req_count = 1
        random = True
    if random:
        force_page_cache_ra(m, ractl, req_count, io_pages)
        return
    max_pages = ractl_max_pages(ractl, req_count, io_pages)
    prev_index = (ra.prev_pos & ULONG_MAX) >> PAGE_SHIFT
    if not index or req_count > max_pages or (index - prev_index) & ULONG_MAX <= 1:
        ra.start = index
        ra.size = get_init_ra_size(req_count, max_pages)
        ra.async_size = ra.size - req_count if ra.size > req_count else ra.size >> 1
    else:
        miss = page_cache_prev_miss(ractl.mapping, index - 1, max_pages)
        contig_count = index - miss - 1
        if contig_count <= req_count:
            do_page_cache_ra(m, ractl, req_count, 0)
            return
        if miss == -1:  # ULONG_MAX: cached from the beginning, a long-run stream
            contig_count *= 2
        ra.start = index
        ra.size = min(contig_count + req_count, max_pages)
        ra.async_size = 1
    ra.order = 0
    ractl.index = ra.start
    page_cache_ra_order(m, ractl, ra)


def page_cache_async_ra(m: Machine, ractl: ReadaheadControl, folio: int, req_count: int, io_pages: int) -> None:
    """Mirrors page_cache_async_ra(): the reader met the PG_readahead folio ``folio`` at ``ractl.index``.

    The marker is cleared; at the expected index the window moves on and grows, otherwise (interleaved
    streams) it is rebuilt from the cache; the folio order goes up by 2 and the window's end is aligned
    to it.
    """
    ra = ractl.ra
    frames = m.frames
    if not ra.ra_pages or frames.flags[folio] & PG.WRITEBACK:
        return
    frames.flags[folio] &= ~PG.READAHEAD
    max_pages = ractl_max_pages(ractl, req_count, io_pages)
    index = ractl.index
    nr = folio_nr(m, folio)
    expected = (ra.start + ra.size - ra.async_size) & ~(nr - 1)
    if index == expected:
        ra.start += ra.size
        ra.size = max(ra.size, get_next_ra_size(ra, max_pages))
    else:
        start = page_cache_next_miss(ractl.mapping, index + 1, max_pages)
        if not start or start - index > max_pages:
            return
        ra.start = start
        ra.size = start - index + req_count
        ra.size = get_next_ra_size(ra, max_pages)
    ra.order += 2
    align = 1 << min(ra.order, (max_pages & -max_pages).bit_length() - 1)  # ffs(max_pages) - 1
    end = ra.start + ra.size
    aligned_end = end & ~(align - 1)
    if aligned_end > ra.start:
        ra.size -= end - aligned_end
    ra.async_size = ra.size
    ractl.index = ra.start
    page_cache_ra_order(m, ractl, ra)
