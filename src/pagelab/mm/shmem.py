"""Shared anonymous memory: the shmem (tmpfs) file behind MAP_SHARED|MAP_ANONYMOUS.

Mirrors mm/shmem.c: shmem_zero_setup() gives each shared anonymous mapping an unlinked tmpfs file
("/dev/zero (deleted)" in /proc/PID/maps); shmem_fault() finds the page in that file's page cache
or allocates a zeroed one. There is no zero page here: a read fault allocates, and since tmpfs has
no write-notify, a later write does not fault. Pages live as long as the file, i.e. until the last
mapping goes, not when one process's PTEs are zapped.

Simplified: no swap (pages stay resident), no huge pages, no size limit but RAM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hw.physmem import PG
from ..stats import NodeStat
from .page_alloc import alloc_page, lru_add, put_page

if TYPE_CHECKING:
    from ..machine import Machine


class ShmemFile:
    """An unlinked tmpfs inode: its page cache (pgoff -> pfn) and a count of VMAs using it."""

    def __init__(self, m: Machine, size_pages: int, charged: bool) -> None:
        self.machine = m
        self.charged = charged  # shmem_acct_size() charged size_pages to Committed_AS
        self.ino = m.next_inode()
        self.id = m.next_object_id()  # what frame.mapping holds for its pages
        self.size_pages = size_pages
        self.pages: dict[int, int] = {}
        self.refs = 1

    @property
    def name(self) -> str:
        return "/dev/zero (deleted)"

    def get(self) -> None:
        self.refs += 1

    def put(self) -> None:
        """Drop a reference (a VMA went away); the last one frees the pages (shmem_evict_inode)."""
        self.refs -= 1
        if self.refs == 0:
            shmem_truncate(self)
            if self.charged:
                self.machine.vm_unacct_memory(self.size_pages)


def shmem_get_folio(f: ShmemFile, pgoff: int) -> int:
    """Mirrors shmem_get_folio_gfp(SGP_CACHE): the cached page at ``pgoff``, or a new zeroed one.

    Returns the PFN with an extra reference for the caller, or -1 when memory is out.
    """
    m = f.machine
    pfn = f.pages.get(pgoff)
    if pfn is None:
        pfn = alloc_page(m, PG.SWAPBACKED | PG.UPTODATE)
        if pfn < 0:
            return -1
        m.frames.mapping[pfn] = f.id
        m.frames.index[pfn] = pgoff
        f.pages[pgoff] = pfn  # the page cache's own reference is the allocation's
        lru_add(m, pfn)
        m.counters.mod_node_state(NodeStat.NR_FILE_PAGES, 1)
        m.counters.mod_node_state(NodeStat.NR_SHMEM, 1)
    m.frames.refcount[pfn] += 1
    return pfn


def shmem_truncate(f: ShmemFile, start: int = 0, end: int | None = None) -> None:
    """Mirrors shmem_undo_range(): drop the cached pages of [start, end) (page offsets; all by default).

    Pages still mapped keep their mappings' references; the caller unmaps them first where it must.
    """
    m = f.machine
    for pgoff in sorted(p for p in f.pages if start <= p and (end is None or p < end)):
        pfn = f.pages.pop(pgoff)
        m.counters.mod_node_state(NodeStat.NR_FILE_PAGES, -1)
        m.counters.mod_node_state(NodeStat.NR_SHMEM, -1)
        put_page(m, pfn)
