"""The page cache: an address_space maps file offsets (in pages) to the frames that cache them.

Mirrors struct address_space (include/linux/fs.h: i_pages, nrpages, i_mmap) and the lookups of
mm/filemap.c that the fault path uses: filemap_get_folio(), __filemap_add_folio(),
page_cache_delete(), and filemap_map_pages() (fault-around: map what is cached, start no I/O).
The same object serves shmem files now, regular files and the swap cache later.

``i_pages`` is a sorted mapping (sortedcontainers.SortedDict, as the XArray is ordered by index), so
range lookups (fault-around, truncation, mincore) cost what they find, not the length of the range.
``i_mmap`` holds the VMAs that map this file (Linux: an interval tree keyed by pgoff), which is how a
reverse-map walk (rmap_walk_file()) finds every PTE that maps one of its pages.

Simplified: every folio in the cache is order 0 (large page-cache folios come with files); no
shadow entries (workingset) and no tags (dirty, writeback) yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from sortedcontainers import SortedDict

from ..arch.x86.pgtable import pfn_pte, pte_index
from ..constants import PAGE_SHIFT
from ..stats import NodeStat
from .pgtable import pte_alloc, set_pte_at
from .rmap import folio_add_file_rmap_pte
from .types import VmFault, VmFaultResult

if TYPE_CHECKING:
    from ..machine import Machine
    from .types import Vma


class AddressSpace:
    """Mirrors struct address_space: the cached pages of one inode and the VMAs that map it.

    ``id`` is what a cached frame's ``mapping`` column holds; ``m.mappings[id]`` is this object.
    """

    def __init__(self, m: Machine, host: int) -> None:
        self.machine = m
        self.host = host  # the inode number
        self.id = m.register_mapping(self)
        self.i_pages: SortedDict[int, int] = SortedDict()  # index (pages) -> pfn
        self.i_mmap: dict[Vma, None] = {}  # the VMAs mapping this file, in the order they were linked

    @property
    def nrpages(self) -> int:
        return len(self.i_pages)

    def vma_link(self, vma: Vma) -> None:
        """Mirrors vma_link_file() -> __vma_link_file(): ``vma`` now maps this file."""
        self.i_mmap[vma] = None

    def vma_unlink(self, vma: Vma) -> None:
        """Mirrors unlink_file_vma(): ``vma`` no longer maps this file."""
        self.i_mmap.pop(vma, None)

    def release(self) -> None:
        """The inode is gone (its pages must already be deleted): forget the id."""
        self.machine.unregister_mapping(self.id)


def filemap_get_folio(mapping: AddressSpace, index: int) -> int:
    """Mirrors filemap_get_folio(): the PFN cached at ``index``, or -1. Takes no reference."""
    return int(mapping.i_pages.get(index, -1))


def filemap_add_folio(m: Machine, mapping: AddressSpace, pfn: int, index: int) -> None:
    """Mirrors __filemap_add_folio(): insert a new frame at ``index``; the cache holds the caller's reference.

    Counts NR_FILE_PAGES (shmem adds NR_SHMEM itself, as shmem_add_to_page_cache() does).
    """
    m.frames.mapping[pfn] = mapping.id
    m.frames.index[pfn] = index
    mapping.i_pages[index] = pfn
    m.counters.mod_node_state(NodeStat.NR_FILE_PAGES, 1)


def page_cache_delete(m: Machine, mapping: AddressSpace, index: int) -> int:
    """Mirrors page_cache_delete(): take the frame at ``index`` out of the cache; returns its PFN.

    The caller drops the cache's reference (folio_put()).
    """
    pfn = int(mapping.i_pages.pop(index))
    m.counters.mod_node_state(NodeStat.NR_FILE_PAGES, -1)
    return pfn


def cached_range(mapping: AddressSpace, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The cached (index, pfn) pairs with start <= index < end, in index order (next_uptodate_folio())."""
    pages = mapping.i_pages
    for index in pages.irange(start, end, inclusive=(True, False)):
        yield index, pages[index]


def filemap_map_pages(vmf: VmFault, start_pgoff: int, end_pgoff: int) -> int:
    """Mirrors filemap_map_pages() (-> filemap_map_order0_folio()): map every cached page of
    [start_pgoff, end_pgoff] whose PTE is empty, with no I/O; NOPAGE if the faulting page was one.

    Each mapped page takes a reference and an rmap count (set_pte_range()); the PTEs are young
    (x86 keeps prefaulted PTEs young) with the VMA's vm_page_prot. Returns VmFaultResult.NONE when
    nothing is cached there (the caller reads).
    """
    vma = vmf.vma
    m = vma.mm.machine
    f = vma.vm_file
    if f is None:
        return VmFaultResult.NONE
    found = list(cached_range(f.mapping, start_pgoff, end_pgoff + 1))  # next_uptodate_folio()
    if not found:
        return VmFaultResult.NONE
    row = pte_alloc(m, vma.mm, vmf.pmd, vmf.address)
    if not row:
        return VmFaultResult.OOM
    ret = VmFaultResult.NONE
    for index, pfn in found:
        addr = vma.vm_start + ((index - vma.vm_pgoff) << PAGE_SHIFT)
        if m.ptpool.tables[row, pte_index(addr)] != 0:  # !pte_none(): skip
            continue
        if addr == vmf.address:
            ret = VmFaultResult.NOPAGE
        m.frames.refcount[pfn] += 1  # folio_ref_inc()
        folio_add_file_rmap_pte(m, vma, pfn)
        set_pte_at(m, row, addr, pfn_pte(pfn, vma.vm_page_prot))
    return ret
