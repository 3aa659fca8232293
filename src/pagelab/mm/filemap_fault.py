"""Page faults on file mappings: filemap_fault() and fault-around (filemap_map_pages()).

Mirrors the fault half of mm/filemap.c (Linux 6.18):

    do_read_fault -> do_fault_around -> filemap_map_pages      map what is cached, start no I/O:
                                          filemap_map_pmd         a PMD-sized folio by one PMD
                                          filemap_map_folio_range a large folio whole where it fits
                                          filemap_map_order0_folio
                  -> filemap_fault                              the page is not mapped by fault-around:
        cached:      do_async_mmap_readahead                    met PG_readahead: next window, async
        not cached:  PGMAJFAULT, do_sync_mmap_readahead          read-around (or VM_HUGEPAGE / VM_SEQ_READ
                                                                 windows; none for VM_RAND_READ), then
                                                                 VM_FAULT_RETRY: the task sleeps until the
                                                                 folio is read, and the retried fault
                                                                 (FAULT_FLAG_TRIED) counts as major

The waits happen with the mmap lock dropped (maybe_unlock_mmap_for_io()): the fault returns
VM_FAULT_RETRY with the I/O completion in ``vmf.wait_for`` and the trap code sleeps on it
(arch/x86/fault.py). A retried fault (FAULT_FLAG_TRIED) that still finds a folio locked waits in place.

Simplified: no mmap_miss decrement by workingset folios (no workingset yet), no HWPoison, no
userfaultfd, no VM_EXEC arch folio order (x86 has none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import pmd_none, pmd_trans_huge, pte_index
from ..constants import PAGE_SHIFT
from ..errors import KernelBug, kernel_bug
from ..hw.physmem import PG
from ..kernel.task import io_schedule
from ..stats import VmEvent
from .fault import do_set_pmd, set_pte_range
from .filemap import (
    HPAGE_PMD_ORDER,
    AddressSpace,
    cached_folios,
    file_ra,
    filemap_add_folio,
    filemap_get_folio,
    filemap_read_folios,
    folio_nr,
    folio_test_uptodate,
    folio_wait_locked,
    i_size_pages,
)
from .huge_memory import PMD_MASK
from .page_alloc import folio_alloc
from .pgtable import pmdp_get, pte_alloc
from .readahead import ReadaheadControl, page_cache_async_ra, page_cache_ra_order, page_cache_sync_ra
from .types import FaultFlag, VmFault, VmFaultResult, VmFlag

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine

MMAP_LOTSAMISS = 100
HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER


def fault_flag_allow_retry_first(flags: int) -> bool:
    """Mirrors fault_flag_allow_retry_first(): the first attempt of a fault that may be retried."""
    return bool(flags & FaultFlag.ALLOW_RETRY) and not flags & FaultFlag.TRIED


def maybe_unlock_mmap_for_io(vmf: VmFault, dropped: bool) -> bool:
    """Mirrors maybe_unlock_mmap_for_io(): a first attempt that may retry drops the mmap lock before it
    sleeps on I/O (and must then return VM_FAULT_RETRY); returns whether the lock is dropped."""
    return dropped or (fault_flag_allow_retry_first(vmf.flags) and not vmf.flags & FaultFlag.RETRY_NOWAIT)


def _ractl(vmf: VmFault) -> ReadaheadControl:
    """DEFINE_READAHEAD(ractl, file, ra, mapping, vmf->pgoff) for the faulting task."""
    f = vmf.vma.vm_file
    kernel_bug(f is None, "a file fault on a VMA without a file")
    return ReadaheadControl(mapping=f.mapping, ra=file_ra(vmf.vma), index=vmf.pgoff,  # type: ignore[union-attr]
                            task=vmf.vma.mm.owner)


def _io_pages(vmf: VmFault) -> int:
    f = vmf.vma.vm_file
    return int(getattr(f, "io_pages", 0))


def do_sync_mmap_readahead(vmf: VmFault) -> bool:
    """Mirrors do_sync_mmap_readahead(): the synchronous readahead of a fault that found no folio.

    VM_HUGEPAGE: two PMD-sized folios from the aligned index (one with VM_RAND_READ). VM_RAND_READ
    (without VM_EXEC): none. VM_SEQ_READ: page_cache_sync_ra() of ra_pages. Otherwise, unless the file
    misses more than MMAP_LOTSAMISS times more than it hits: read-around, a ra_pages window centred
    on the fault, the last quarter asynchronous, order-0 folios. Returns whether the mmap lock was
    dropped (the fault must then return VM_FAULT_RETRY).
    """
    vma = vmf.vma
    m = vma.mm.machine
    ra = file_ra(vma)
    ractl = _ractl(vmf)
    vm_flags = vma.vm_flags
    vmf.path.append("do_sync_mmap_readahead")
    if vm_flags & VmFlag.HUGEPAGE:
        dropped = maybe_unlock_mmap_for_io(vmf, False)
        ractl.index &= ~(HPAGE_PMD_NR - 1)
        ra.size = HPAGE_PMD_NR * (1 if vm_flags & VmFlag.RAND_READ else 2)
        ra.async_size = HPAGE_PMD_NR
        ra.order = HPAGE_PMD_ORDER
        page_cache_ra_order(m, ractl, ra)
        return dropped
    if vm_flags & (VmFlag.RAND_READ | VmFlag.EXEC) == VmFlag.RAND_READ or not ra.ra_pages:
        return False
    if vm_flags & VmFlag.SEQ_READ:
        dropped = maybe_unlock_mmap_for_io(vmf, False)
        page_cache_sync_ra(m, ractl, ra.ra_pages, _io_pages(vmf))
        return dropped
    if ra.mmap_miss < MMAP_LOTSAMISS * 10:
        ra.mmap_miss += 1
    if ra.mmap_miss > MMAP_LOTSAMISS:
        return False
    dropped = maybe_unlock_mmap_for_io(vmf, False)
    ra.start = max(0, vmf.pgoff - ra.ra_pages // 2)  # mmap read-around
    ra.size = ra.ra_pages
    ra.async_size = ra.ra_pages // 4
    ra.order = 0
    ractl.index = ra.start
    page_cache_ra_order(m, ractl, ra)
    return dropped


def do_async_mmap_readahead(vmf: VmFault, folio: int) -> bool:
    """Mirrors do_async_mmap_readahead(): a fault found ``folio`` cached; if it carries PG_readahead,
    start the next window (page_cache_async_ra()). A hit also lowers mmap_miss. Returns whether the
    mmap lock was dropped."""
    vma = vmf.vma
    m = vma.mm.machine
    ra = file_ra(vma)
    if vma.vm_flags & VmFlag.RAND_READ or not ra.ra_pages:
        return False
    if ra.mmap_miss:
        ra.mmap_miss -= 1
    if not m.frames.flags[folio] & PG.READAHEAD:
        return False
    dropped = maybe_unlock_mmap_for_io(vmf, False)
    vmf.path.append("do_async_mmap_readahead")
    page_cache_async_ra(m, _ractl(vmf), folio, ra.ra_pages, _io_pages(vmf))
    return dropped


def filemap_fault(vmf: VmFault) -> int:
    """Mirrors filemap_fault(): find (or read) the folio caching vmf.pgoff; vmf.page = its page, with a
    reference for the caller.

    Beyond EOF: SIGBUS. Cached: asynchronous readahead on a PG_readahead folio (first attempt only).
    Not cached: PGMAJFAULT, VM_FAULT_MAJOR, synchronous readahead, then the folio is created if
    readahead did not (__filemap_get_folio(FGP_CREAT)) and read. A folio that is locked (under I/O)
    is waited for: with the mmap lock dropped, as VM_FAULT_RETRY; on a retried fault, in place.
    """
    vma = vmf.vma
    m = vma.mm.machine
    f = vma.vm_file
    kernel_bug(f is None, "filemap_fault on a VMA without a file")
    mapping: AddressSpace = f.mapping  # type: ignore[union-attr]
    index = vmf.pgoff
    vmf.path.append("filemap_fault")
    if index >= i_size_pages(mapping):
        return VmFaultResult.SIGBUS
    ret = VmFaultResult.NONE
    dropped = False
    folio = filemap_get_folio(mapping, index)
    if folio >= 0:
        if not vmf.flags & FaultFlag.TRIED:
            dropped = do_async_mmap_readahead(vmf, folio)
    else:
        m.counters.count_vm_event(VmEvent.PGMAJFAULT)
        ret = VmFaultResult.MAJOR
        dropped = do_sync_mmap_readahead(vmf)
        folio = filemap_get_folio(mapping, index)
        if folio < 0:  # __filemap_get_folio(FGP_CREAT | FGP_FOR_MMAP): one order-0 folio, then read it
            folio = _filemap_create_folio(m, mapping, index, vma.mm.owner)
            if folio < 0:
                return VmFaultResult.OOM
    wait = folio_wait_locked(m, mapping, folio)  # lock_folio_maybe_drop_mmap()
    if wait is not None:
        if vmf.flags & FaultFlag.RETRY_NOWAIT:
            return ret | VmFaultResult.RETRY
        dropped = maybe_unlock_mmap_for_io(vmf, dropped)
        if dropped:
            vmf.wait_for = wait
            return ret | VmFaultResult.RETRY
        task = vma.mm.owner
        if task is None:
            raise KernelBug("filemap_fault: an mm without a task")
        io_schedule(task, wait)  # __folio_lock(): sleep here, the mmap lock held
    if dropped:  # the lock was dropped for readahead: re-find the VMA and come back
        return ret | VmFaultResult.RETRY
    if not folio_test_uptodate(m, folio):  # a read error: not modelled, devices do not fail
        return VmFaultResult.SIGBUS
    vmf.page = folio + index - int(m.frames.index[folio])  # folio_file_page()
    m.frames.refcount[folio] += 1
    return ret


def _filemap_create_folio(m: Machine, mapping: AddressSpace, index: int, task: Task | None) -> int:
    """__filemap_get_folio(FGP_CREAT) + filemap_read_folio() for a fault readahead did not cover: one
    locked order-0 folio, read with ->read_folio. Its head PFN, or -1 with no memory."""
    folio = folio_alloc(m, 0, PG.LOCKED)
    if folio < 0:
        return -1
    filemap_add_folio(m, mapping, folio, index)
    filemap_read_folios(mapping, [(index, folio)], task)  # ->read_folio()
    return folio


# --- fault-around ----------------------------------------------------------------------------------

def next_uptodate_folio(m: Machine, mapping: AddressSpace, start: int, end_pgoff: int) -> list[tuple[int, int]]:
    """Mirrors next_uptodate_folio() over [start, end_pgoff]: the cached folios fault-around may map,
    as (first index, head): not locked, uptodate, not PG_readahead, and below EOF."""
    max_idx = i_size_pages(mapping)
    flags = m.frames.flags
    out = []
    for first, head in cached_folios(mapping, start, end_pgoff + 1):
        f = int(flags[head])
        if f & PG.LOCKED or not f & PG.UPTODATE or f & PG.READAHEAD:
            continue
        if max(first, start) >= max_idx:
            break
        out.append((first, head))
    return out


def filemap_map_pages(vmf: VmFault, start_pgoff: int, end_pgoff: int) -> int:
    """Mirrors filemap_map_pages(): map the uptodate cached folios of [start_pgoff, end_pgoff] with no I/O.

    A PMD-sized first folio may be mapped by one PMD (filemap_map_pmd(), not across i_size); otherwise
    each folio's pages in the window get PTEs where none is present, a large folio whole where it lies
    inside the VMA and one page table and ends before EOF. NOPAGE if the faulting address got mapped.
    Pages mapped count as mmap hits (mmap_miss goes down).
    """
    vma = vmf.vma
    m = vma.mm.machine
    f = vma.vm_file
    if f is None:
        return VmFaultResult.NONE
    mapping: AddressSpace = f.mapping
    folios = next_uptodate_folio(m, mapping, start_pgoff, end_pgoff)
    if not folios:
        return VmFaultResult.NONE
    file_end = i_size_pages(mapping) - 1
    end_pgoff = min(end_pgoff, file_end)
    first, head = folios[0]
    if file_end >= first + folio_nr(m, head) or getattr(mapping.host, "shmem", False):
        if filemap_map_pmd(vmf, head, start_pgoff):
            return VmFaultResult.NOPAGE
    elif pmd_none(pmdp_get(m, vmf.pmd, vmf.address)):
        # No table, and filemap_map_pmd() (which installs the preallocated one) was skipped for a folio
        # reaching EOF: pte_offset_map_lock() finds nothing and nothing is mapped; ->fault and
        # finish_fault() follow (which may map that folio by a PMD: measured, the last 2 MiB of a file).
        return VmFaultResult.NONE
    row = pte_alloc(m, vma.mm, vmf.pmd, vmf.address)
    if not row:
        return VmFaultResult.OOM
    ret = VmFaultResult.NONE
    mapped = 0
    for first, head in folios:
        lo = max(first, start_pgoff)
        hi = min(first + folio_nr(m, head) - 1, end_pgoff)
        if hi < lo:
            continue
        ret |= filemap_map_folio_range(vmf, row, head, first, lo, hi, file_end)
        mapped += hi - lo + 1
    ra = getattr(f, "f_ra", None)
    if ra is not None:
        ra.mmap_miss = max(0, ra.mmap_miss - mapped)
    return ret


def filemap_map_pmd(vmf: VmFault, folio: int, start: int) -> bool:
    """Mirrors filemap_map_pmd(): a PMD leaf there already: done; an empty PMD and a PMD-sized folio:
    try do_set_pmd(). False: map PTEs."""
    m = vmf.vma.mm.machine
    orig = pmdp_get(m, vmf.pmd, vmf.address)
    if pmd_trans_huge(orig):
        return True
    if pmd_none(orig) and m.frames.flags[folio] & PG.HEAD and int(m.frames.order[folio]) == HPAGE_PMD_ORDER:
        m.frames.refcount[folio] += 1  # next_uptodate_folio()'s reference, consumed by the mapping
        if do_set_pmd(vmf, folio) == VmFaultResult.NONE:
            return True
        m.frames.refcount[folio] -= 1
    return False


def filemap_map_folio_range(vmf: VmFault, row: int, folio: int, first: int, lo: int, hi: int, file_end: int) -> int:
    """Mirrors filemap_map_folio_range() / filemap_map_order0_folio(): PTEs for the pages [lo, hi] (file
    indices) of the folio at ``first`` whose entries are empty, in runs; the whole folio instead where
    it lies inside the VMA and one page table and ends before EOF (6.18: "map the large folio fully
    where possible"). NOPAGE if the faulting page was among them."""
    vma = vmf.vma
    m = vma.mm.machine
    nr = folio_nr(m, folio)
    start_addr = vma.vm_start + ((first - vma.vm_pgoff) << PAGE_SHIFT)
    if (nr > 1 and vma.vm_pgoff <= first and first + nr <= vma.vm_pgoff + vma.pages
            and start_addr & PMD_MASK == (start_addr + (nr << PAGE_SHIFT) - 1) & PMD_MASK
            and file_end >= first + nr):
        lo, hi = first, first + nr - 1
    first_pte = pte_index(vma.vm_start + ((lo - vma.vm_pgoff) << PAGE_SHIFT))
    empty = m.ptpool.tables[row, first_pte:first_pte + hi - lo + 1] == 0
    edges = np.flatnonzero(np.diff(np.concatenate(([False], empty, [False])).astype(np.int8)))
    ret = VmFaultResult.NONE
    for s, e in zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True):  # runs of empty PTEs
        index, count = lo + s, e - s
        run_addr = vma.vm_start + ((index - vma.vm_pgoff) << PAGE_SHIFT)
        m.frames.refcount[folio] += count  # folio_ref_add()
        set_pte_range(vmf, row, folio, folio + index - first, count, run_addr)
        if run_addr <= vmf.address < run_addr + (count << PAGE_SHIFT):
            ret = VmFaultResult.NOPAGE
    return ret
