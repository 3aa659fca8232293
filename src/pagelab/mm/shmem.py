"""Shared anonymous memory: the shmem (tmpfs) file behind MAP_SHARED|MAP_ANONYMOUS.

Mirrors mm/shmem.c: shmem_zero_setup() gives each shared anonymous mapping an unlinked tmpfs file
("/dev/zero (deleted)" in /proc/PID/maps) and shmem_anon_vm_ops; shmem_fault() finds the page in that
file's page cache (its address_space, mm/filemap.py) or allocates a zeroed one. There is no zero page
here: a read fault allocates, and since tmpfs has no write-notify, a later write does not fault. Pages
live as long as the file, i.e. until the last mapping goes, not when one process's PTEs are zapped.

Simplified: no swap (pages stay resident), no huge pages, no size limit but RAM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import KernelBug
from ..hw.physmem import PG
from ..stats import NodeStat
from .filemap import AddressSpace, cached_range, filemap_add_folio_locked, filemap_get_folio, page_cache_delete
from .filemap_fault import filemap_map_pages
from .mm_inline import lruvec_add_folio
from .page_alloc import alloc_page, put_page
from .types import VmFault, VmFaultResult, VmOperations

if TYPE_CHECKING:
    from ..machine import Machine
    from .types import Vma


class ShmemFile:
    """An unlinked tmpfs inode and its open file: the page cache (``mapping``) and a count of VMAs using it."""

    shmem = True  # shmem_mapping(): fault-around may map a PMD across i_size

    def __init__(self, m: Machine, size_pages: int, charged: bool) -> None:
        self.machine = m
        self.charged = charged  # shmem_acct_size() charged size_pages to Committed_AS
        self.ino = m.next_inode()
        self.mapping = AddressSpace(m, self)  # inode->i_mapping
        self.size_pages = size_pages
        self.refs = 0  # VMAs holding the file (get_file() per VMA)

    @property
    def name(self) -> str:
        return "/dev/zero (deleted)"

    def get(self, vma: Vma) -> None:
        """``vma`` maps the file: get_file() + vma_link_file()."""
        self.refs += 1
        self.mapping.vma_link(vma)

    def put(self, vma: Vma) -> None:
        """``vma`` went away: unlink_file_vma() + fput(); the last one frees the pages (shmem_evict_inode)."""
        self.mapping.vma_unlink(vma)
        self.refs -= 1
        if self.refs == 0:
            shmem_truncate(self)
            self.mapping.release()
            if self.charged:
                self.machine.vm_unacct_memory(self.size_pages)


def shmem_get_folio(f: ShmemFile, pgoff: int) -> int:
    """Mirrors shmem_get_folio_gfp(SGP_CACHE): the cached page at ``pgoff``, or a new zeroed one.

    Returns the PFN with an extra reference for the caller, or -1 when memory is out.
    """
    m = f.machine
    pfn = filemap_get_folio(f.mapping, pgoff)
    if pfn < 0:
        pfn = alloc_page(m, PG.SWAPBACKED | PG.UPTODATE)
        if pfn < 0:
            return -1
        filemap_add_folio_locked(m, f.mapping, pfn, pgoff)  # shmem_add_to_page_cache(): the cache keeps this ref
        m.counters.mod_node_state(NodeStat.NR_SHMEM, 1)
        lruvec_add_folio(m, pfn, 1)  # folio_add_lru()
    m.frames.refcount[pfn] += 1
    return pfn


def shmem_fault(vmf: VmFault) -> int:
    """Mirrors shmem_fault(): vmf.page = the referenced page at vmf.pgoff (allocated if absent)."""
    vmf.path.append("shmem_fault")
    f = vmf.vma.vm_file
    if not isinstance(f, ShmemFile):
        raise KernelBug("shmem_fault on a VMA without a shmem file")
    pfn = shmem_get_folio(f, vmf.pgoff)
    if pfn < 0:
        return VmFaultResult.OOM
    vmf.page = pfn
    return VmFaultResult.NONE


def shmem_truncate(f: ShmemFile, start: int = 0, end: int | None = None) -> None:
    """Mirrors shmem_undo_range(): drop the cached pages of [start, end) (page offsets; all by default).

    Pages still mapped keep their mappings' references; the caller unmaps them first where it must.
    """
    m = f.machine
    stop = end if end is not None else 1 << 62  # all of it (MAX_LFS_FILESIZE in pages, near enough)
    for pgoff, _pfn in list(cached_range(f.mapping, start, stop)):
        pfn = page_cache_delete(m, f.mapping, pgoff)
        m.counters.mod_node_state(NodeStat.NR_SHMEM, -1)
        put_page(m, pfn)


# Mirrors shmem_anon_vm_ops (mm/shmem.c): a constant, as the kernel's is.
SHMEM_ANON_VM_OPS = VmOperations(name="shmem_anon_vm_ops", fault=shmem_fault, map_pages=filemap_map_pages)
