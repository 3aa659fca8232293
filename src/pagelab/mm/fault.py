"""The generic page-fault path: from handle_mm_fault() down to the leaf handlers that set the PTE.

Mirrors the fault half of mm/memory.c. A fault arrives from arch/x86/fault.py (or from a GUP-style
populate) as (vma, address, flags); handle_mm_fault() builds a VmFault, walks and allocates down to
the PMD, and handle_pte_fault() dispatches:

    none PTE, anonymous VMA  -> do_anonymous_page   zero page on read, new zeroed page on write
    none PTE, VMA with ops   -> do_fault            vm_ops->fault; do_read_fault (with fault-around
                                                    through vm_ops->map_pages) / do_shared_fault
    present, write, RO PTE   -> do_wp_page          reuse an exclusive page, or wp_page_copy
    present otherwise        -> a spurious fault: just mark the PTE young (and dirty)

mm_account_fault() is the one place that counts pgfault, min_flt/maj_flt and perf's minor/major
faults. Handlers report what happened in VmFaultResult flags and never count generic events.

Simplified: no locking or retries (so never VM_FAULT_RETRY), no swap entries yet, no THP or mTHP,
no userfaultfd, no NUMA hinting, no memcg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch.x86.pgtable import (
    _PAGE_DIRTY,
    _PAGE_PSE,
    _PAGE_RW,
    PTRS_PER_TABLE,
    pfn_pmd,
    pfn_pte,
    pmd_none,
    pmd_trans_huge,
    pte_index,
    pte_mkdirty,
    pte_mkspecial,
    pte_mkwrite,
    pte_mkyoung,
    pte_none,
    pte_pfn,
    pte_present,
    pte_special,
    pte_write,
)
from ..arch.x86.tlb import flush_tlb_page
from ..constants import HPAGE_PMD_NR, PAGE_MASK, PAGE_SHIFT
from ..errors import KernelBug, NotModelled
from ..hw.physmem import PG
from ..stats import PerfEvent, VmEvent
from .huge_memory import (
    HPAGE_PMD_ORDER,
    PMD_MASK,
    TvaType,
    create_huge_pmd,
    do_huge_pmd_wp_page,
    huge_pmd_set_accessed,
    split_huge_pmd,
    thp_vma_allowable_order,
    thp_vma_suitable_order,
    vma_thp_disabled,
)
from .mm_inline import folio_add_lru_vma
from .page_alloc import alloc_page, put_page
from .page_writeback import folio_mark_dirty
from .pgtable import pmd_alloc, pmdp_get, pte_alloc, pte_offset, ptep_get_and_clear, set_pmd_at, set_pte_at, set_ptes
from .rmap import (
    anon_vma_prepare,
    folio_add_file_rmap_pmd,
    folio_add_file_rmap_ptes,
    folio_add_new_anon_rmap,
    folio_move_anon_rmap,
    folio_remove_rmap_pte,
    mm_counter_file,
)
from .types import (
    VM_FAULT_ERROR,
    FaultFlag,
    FaultKind,
    Vma,
    VmFault,
    VmFaultResult,
    VmFlag,
    add_mm_counter,
    vma_is_anonymous,
)
from .vma import linear_page_index

if TYPE_CHECKING:
    from ..machine import Machine

def handle_mm_fault(vma: Vma, address: int, flags: int, regs: bool) -> VmFault:
    """Mirrors handle_mm_fault(): resolve one fault; ``regs`` is False for GUP-made faults.

    Returns the VmFault, whose ``result`` attribute holds the VmFaultResult.
    """
    vmf = VmFault(vma=vma, address=address & PAGE_MASK, real_address=address,
                  pgoff=linear_page_index(vma, address), flags=flags)
    vmf.path.append("handle_mm_fault")
    ret = _handle_mm_fault(vmf)
    mm_account_fault(vma, regs, flags, ret)
    vmf.result = ret
    return vmf


def _handle_mm_fault(vmf: VmFault) -> int:
    """Mirrors __handle_mm_fault(): allocate the PUD and PMD tables, try a huge PMD, else the PTE level.

    An empty PMD in a VMA that may have THPs goes to create_huge_pmd(); a PMD leaf is handled whole
    (a write to a read-only one: wp_huge_pmd(); otherwise only its A/D bits); a FALLBACK goes on to
    handle_pte_fault().
    """
    vma = vmf.vma
    m = vma.mm.machine
    vmf.pmd = pmd_alloc(m, vma.mm, vmf.address)
    if not vmf.pmd:
        return VmFaultResult.OOM
    orig = pmdp_get(m, vmf.pmd, vmf.address)
    if pmd_none(orig) and thp_vma_allowable_order(vma, vma.vm_flags, TvaType.PAGEFAULT):
        ret = create_huge_pmd(vmf)
        if not ret & VmFaultResult.FALLBACK:
            return ret
    elif pmd_trans_huge(orig):
        vmf.orig_pmd = orig
        if vmf.flags & FaultFlag.WRITE and not orig & _PAGE_RW:
            if not vma_is_anonymous(vma):  # wp_huge_pmd(): a file PMD is split (zapped) and refaulted
                split_huge_pmd(m, vma, vmf.pmd, vmf.address)
                return handle_pte_fault(vmf)
            ret = do_huge_pmd_wp_page(vmf)  # wp_huge_pmd()
            if not ret & VmFaultResult.FALLBACK:
                return ret
        else:
            return huge_pmd_set_accessed(vmf)
    return handle_pte_fault(vmf)


def handle_pte_fault(vmf: VmFault) -> int:
    """Mirrors handle_pte_fault(): a decision tree and nothing else."""
    m = vmf.vma.mm.machine
    vmf.path.append("handle_pte_fault")
    pte_row = pte_offset(m, vmf.pmd, vmf.address)
    vmf.orig_pte = int(m.ptpool.tables[pte_row, pte_index(vmf.address)]) if pte_row else 0
    if pte_none(vmf.orig_pte):
        return do_anonymous_page(vmf) if vma_is_anonymous(vmf.vma) else do_fault(vmf)
    if not pte_present(vmf.orig_pte):
        raise NotModelled("do_swap_page: swap entries are not modelled yet")
    if vmf.flags & FaultFlag.WRITE and not pte_write(vmf.orig_pte):
        return do_wp_page(vmf)
    # Spurious fault (the TLB held a stale entry): mark the PTE young, and dirty on a write.
    entry = pte_mkyoung(vmf.orig_pte)
    if vmf.flags & FaultFlag.WRITE:
        entry = pte_mkdirty(entry)
    set_pte_at(m, pte_row, vmf.address, entry)
    vmf.handler = FaultKind.SPURIOUS
    return VmFaultResult.NONE


def do_anonymous_page(vmf: VmFault) -> int:
    """Mirrors do_anonymous_page(): the zero page on a read, a new zeroed page on a write.

    Simplified: no mTHP (alloc_anon_folio picks order 0), no memcg charge.
    """
    vma, m = vmf.vma, vmf.vma.mm.machine
    vmf.path.append("do_anonymous_page")
    if vma.vm_flags & VmFlag.SHARED:
        return VmFaultResult.SIGBUS
    row = pte_alloc(m, vma.mm, vmf.pmd, vmf.address)
    if not row:
        return VmFaultResult.OOM
    if not vmf.flags & FaultFlag.WRITE:
        # Read fault: map the shared zero page read-only; nothing is allocated or charged to RSS.
        set_pte_at(m, row, vmf.address, pte_mkspecial(pfn_pte(m.zero_pfn, vma.vm_page_prot)))
        vmf.handler = FaultKind.DO_ANONYMOUS_PAGE_ZERO
        return VmFaultResult.NONE
    anon_vma_prepare(vma)  # vmf_anon_prepare()
    pfn = alloc_page(m, 0)  # alloc_anon_folio(): a zeroed order-0 folio
    if pfn < 0:
        return VmFaultResult.OOM
    entry = pfn_pte(pfn, vma.vm_page_prot)
    if vma.vm_flags & VmFlag.WRITE:
        entry = pte_mkwrite(pte_mkdirty(entry))
    folio_add_new_anon_rmap(m, vma, pfn, vmf.pgoff)
    folio_add_lru_vma(m, vma, pfn, 1)
    set_pte_at(m, row, vmf.address, entry)
    vmf.page = pfn
    vmf.handler = FaultKind.DO_ANONYMOUS_PAGE
    return VmFaultResult.NONE


def do_fault(vmf: VmFault) -> int:
    """Mirrors do_fault(): a fault on an empty PTE of a VMA with vm_ops: a read (do_read_fault), a write
    to a private mapping (do_cow_fault) or to a shared one (do_shared_fault); SIGBUS without ->fault."""
    vmf.path.append("do_fault")
    ops = vmf.vma.vm_ops
    if ops is None or ops.fault is None:
        return VmFaultResult.SIGBUS
    if not vmf.flags & FaultFlag.WRITE:
        return do_read_fault(vmf)
    if not vmf.vma.vm_flags & VmFlag.SHARED:
        return do_cow_fault(vmf)
    return do_shared_fault(vmf)


def do_read_fault(vmf: VmFault) -> int:
    """Mirrors do_read_fault(): fault-around first (map what is cached, no I/O); if that did not map
    the faulting page, ->fault (which may read, or ask for a retry) and finish_fault()."""
    vmf.path.append("do_read_fault")
    if should_fault_around(vmf):
        ret = do_fault_around(vmf)
        if ret:
            vmf.handler = FaultKind.DO_FAULT_AROUND
            return ret
    ret = _do_fault(vmf)
    if ret & (VM_FAULT_ERROR | VmFaultResult.NOPAGE | VmFaultResult.RETRY):
        return ret
    vmf.handler = FaultKind.DO_READ_FAULT
    return ret | finish_fault(vmf)


def do_cow_fault(vmf: VmFault) -> int:
    """Mirrors do_cow_fault(): a write to a private file mapping where nothing is mapped: ->fault finds
    the page-cache page (reading it if it must), and a new anonymous page gets a copy of its 4 KiB.
    No fault-around. The page-cache reference is dropped once copied."""
    vma, m = vmf.vma, vmf.vma.mm.machine
    vmf.path.append("do_cow_fault")
    anon_vma_prepare(vma)  # vmf_anon_prepare()
    ret = _do_fault(vmf)
    if ret & (VM_FAULT_ERROR | VmFaultResult.NOPAGE | VmFaultResult.RETRY):
        return ret
    new = alloc_page(m, 0)  # folio_prealloc()
    if new < 0:
        put_page(m, vmf.page)
        return VmFaultResult.OOM
    m.frames.copy_data(new, vmf.page)  # copy_mc_user_highpage()
    vmf.cow_page = new
    vmf.handler = FaultKind.DO_COW_FAULT
    ret |= finish_fault(vmf)
    put_page(m, vmf.page)
    return ret


def do_shared_fault(vmf: VmFault) -> int:
    """Mirrors do_shared_fault(): a write to a shared mapping where nothing is mapped: ->fault, then
    ->page_mkwrite if the file has one (the filesystem's chance to allocate blocks and dirty the
    folio), finish_fault() mapping it writable and dirty, and fault_dirty_shared_page()."""
    vmf.path.append("do_shared_fault")
    ret = _do_fault(vmf)
    if ret & (VM_FAULT_ERROR | VmFaultResult.NOPAGE | VmFaultResult.RETRY):
        return ret
    ops = vmf.vma.vm_ops
    if ops is not None and ops.page_mkwrite is not None:
        tmp = ops.page_mkwrite(vmf)
        if tmp & (VM_FAULT_ERROR | VmFaultResult.NOPAGE):
            put_page(vmf.vma.mm.machine, vmf.page)
            return tmp
    vmf.handler = FaultKind.DO_SHARED_FAULT
    ret |= finish_fault(vmf)
    if not ret & VM_FAULT_ERROR:
        fault_dirty_shared_page(vmf)
    return ret


def fault_dirty_shared_page(vmf: VmFault) -> None:
    """Mirrors fault_dirty_shared_page(): the folio just made writable in a shared file mapping is dirty
    (folio_mark_dirty(): a shmem folio gets PG_dirty without writeback accounting, as shmem's
    noop_dirty_folio() does; balance_dirty_pages_ratelimited() throttles the writer, see page_writeback).
    Measured: a child reading shmem its parent wrote sees it as Shared_Dirty."""
    m = vmf.vma.mm.machine
    if vmf.page >= 0:
        folio_mark_dirty(m, int(m.frames.compound_head(vmf.page)))


def _do_fault(vmf: VmFault) -> int:
    """Mirrors __do_fault(): call vma->vm_ops->fault, which leaves a referenced page in vmf.page."""
    ops = vmf.vma.vm_ops
    if ops is None:
        raise KernelBug("__do_fault on an anonymous VMA")
    return ops.fault(vmf)


def finish_fault(vmf: VmFault) -> int:
    """Mirrors finish_fault(): map the page ->fault found (or the private copy of a COW fault).

    An empty PMD and a PMD-sized folio: do_set_pmd(). A large page-cache folio is mapped whole when it
    lies inside the VMA and one page table and no PTE of it is present (measured on 6.18: a shared
    write fault maps the whole folio); otherwise the one page. The ->fault reference becomes the
    mapping's; each further page takes one more.
    """
    vma, m = vmf.vma, vmf.vma.mm.machine
    is_cow = bool(vmf.flags & FaultFlag.WRITE) and not vma.vm_flags & VmFlag.SHARED
    page = vmf.cow_page if is_cow else vmf.page
    frames = m.frames
    folio = int(frames.compound_head(page))
    if not is_cow and not pmd_present_table(m, vmf) and frames.flags[folio] & PG.HEAD \
            and int(frames.order[folio]) == HPAGE_PMD_ORDER:
        ret = do_set_pmd(vmf, folio)
        if ret != VmFaultResult.FALLBACK:
            if ret != VmFaultResult.NONE:
                put_page(m, vmf.page)
            return ret
    row = pte_alloc(m, vma.mm, vmf.pmd, vmf.address)
    if not row:
        put_page(m, page)
        return VmFaultResult.OOM
    nr, addr = 1, vmf.address
    if not is_cow and frames.flags[folio] & PG.HEAD:
        nr_pages = 1 << int(frames.order[folio])
        idx = page - folio
        vma_off = vmf.pgoff - vma.vm_pgoff
        pte_off = pte_index(vmf.address)
        if not (vma_off < idx or vma_off + nr_pages - idx > vma.pages or pte_off < idx
                or pte_off + nr_pages - idx > PTRS_PER_TABLE):
            first = vmf.address - (idx << PAGE_SHIFT)
            if not m.ptpool.tables[row, pte_index(first):pte_index(first) + nr_pages].any():
                nr, addr, page = nr_pages, first, folio
    if nr == 1 and m.ptpool.tables[row, pte_index(addr)] != 0:  # vmf_pte_changed(): raced, mapped already
        put_page(m, vmf.cow_page if is_cow else vmf.page)
        return VmFaultResult.NOPAGE
    frames.refcount[folio] += nr - 1  # folio_ref_add(): the ->fault reference is the first page's
    set_pte_range(vmf, row, folio, page, nr, addr)
    return VmFaultResult.NONE


def pmd_present_table(m: Machine, vmf: VmFault) -> bool:
    """!pmd_none(*vmf->pmd): a PTE table (or a leaf) is installed for vmf.address."""
    return not pmd_none(pmdp_get(m, vmf.pmd, vmf.address))


def set_pte_range(vmf: VmFault, row: int, folio: int, page: int, nr: int, addr: int) -> None:
    """Mirrors set_pte_range(): PTEs for pages [page, page + nr) of ``folio`` from ``addr`` in PTE table
    ``row``, young (x86 keeps prefaulted PTEs young too), dirty and writable (if the VMA is) on a
    write; the rmap: a new anonymous page for a COW copy, else the file folio's counts and RSS."""
    vma, m = vmf.vma, vmf.vma.mm.machine
    entry = pfn_pte(page, vma.vm_page_prot)
    write = bool(vmf.flags & FaultFlag.WRITE) and addr <= vmf.address < addr + (nr << PAGE_SHIFT)
    if write:
        entry = pte_mkdirty(entry)
        if vma.vm_flags & VmFlag.WRITE:
            entry = pte_mkwrite(entry)
    if write and not vma.vm_flags & VmFlag.SHARED:  # the COW copy (nr == 1)
        folio_add_new_anon_rmap(m, vma, page, vmf.pgoff)
        folio_add_lru_vma(m, vma, page, 1)
    else:
        folio_add_file_rmap_ptes(m, vma, page, nr)
    set_ptes(m, row, addr, entry, nr)


def do_set_pmd(vmf: VmFault, folio: int) -> int:
    """Mirrors do_set_pmd(): map the PMD-sized page-cache folio ``folio`` by one PMD leaf at the aligned
    address, if THP is not disabled for the VMA (VM_NOHUGEPAGE, prctl) and the 2 MiB block lies inside
    it congruent with the file; FALLBACK otherwise. Takes over the caller's reference; RSS +512,
    FilePmdMapped, thp_file_mapped."""
    vma, m = vmf.vma, vmf.vma.mm.machine
    haddr = vmf.address & PMD_MASK
    if vma_thp_disabled(vma, vma.vm_flags) or not thp_vma_suitable_order(vma, haddr, HPAGE_PMD_ORDER):
        return VmFaultResult.FALLBACK
    if int(m.frames.order[folio]) != HPAGE_PMD_ORDER:
        return VmFaultResult.FALLBACK
    if not pmd_none(pmdp_get(m, vmf.pmd, haddr)):
        return VmFaultResult.FALLBACK
    entry = pfn_pmd(folio, vma.vm_page_prot) | _PAGE_PSE
    if vmf.flags & FaultFlag.WRITE:
        entry |= _PAGE_DIRTY
        if vma.vm_flags & VmFlag.WRITE:
            entry |= _PAGE_RW
    add_mm_counter(vma.mm, mm_counter_file(m, folio), HPAGE_PMD_NR)
    folio_add_file_rmap_pmd(m, vma, folio)
    set_pmd_at(m, vmf.pmd, haddr, entry)
    m.counters.count_vm_event(VmEvent.THP_FILE_MAPPED)
    vmf.handler = FaultKind.DO_SET_PMD
    return VmFaultResult.NONE


def should_fault_around(vmf: VmFault) -> bool:
    """Mirrors should_fault_around(): the VMA's ops can map cached pages, and the window is > 1 page."""
    ops = vmf.vma.vm_ops
    return ops is not None and ops.map_pages is not None and fault_around_pages(vmf.vma.mm.machine) > 1


def fault_around_pages(m: Machine) -> int:
    """Mirrors fault_around_bytes_set(): fault_around_bytes rounded down to a power of two pages, at
    least one (65536 bytes = 16 pages by default)."""
    pages = int(m.settings["/sys/kernel/debug/fault_around_bytes"]) >> PAGE_SHIFT
    return 1 << (pages.bit_length() - 1) if pages else 1


def do_fault_around(vmf: VmFault) -> int:
    """Mirrors do_fault_around(): ask vm_ops->map_pages to map the cached pages of a fault_around_bytes
    window, aligned by virtual address and clamped to the VMA and to the PTE table; no I/O starts.
    Returns NOPAGE if the faulting page itself got mapped, NONE if it must be read (->fault next)."""
    vma = vmf.vma
    vmf.path.append("do_fault_around")
    nr_pages = fault_around_pages(vma.mm.machine)
    pte_off = pte_index(vmf.address)
    vma_off = vmf.pgoff - vma.vm_pgoff  # the page offset of vmf.address within the VMA
    from_pte = max(pte_off & ~(nr_pages - 1), pte_off - min(pte_off, vma_off))
    to_pte = min(from_pte + nr_pages, PTRS_PER_TABLE, pte_off + vma.pages - vma_off) - 1
    ops = vma.vm_ops
    if ops is None or ops.map_pages is None:
        raise KernelBug("do_fault_around without ->map_pages")
    return ops.map_pages(vmf, vmf.pgoff + from_pte - pte_off, vmf.pgoff + to_pte - pte_off)


def do_wp_page(vmf: VmFault) -> int:
    """Mirrors do_wp_page(): a write to a present read-only PTE.

    Shared mappings reuse the page (write-notify first). An anonymous page that is exclusive to this
    mapping (PageAnonExclusive, or proven so by wp_can_reuse_anon_folio()) is reused in place, still at
    the cost of a fault; anything else (the zero page, a page still shared after fork(), a page-cache
    page of a private mapping) is copied.
    """
    vma, m = vmf.vma, vmf.vma.mm.machine
    vmf.path.append("do_wp_page")
    vmf.page = -1 if pte_special(vmf.orig_pte) else pte_pfn(vmf.orig_pte)  # vm_normal_page()
    if vma.vm_flags & (VmFlag.SHARED | VmFlag.MAYSHARE):
        return wp_page_shared(vmf)
    frames = m.frames
    if vmf.page >= 0 and frames.flags[vmf.page - int(frames.head_offset[vmf.page])] & PG.ANON and (
            frames.flags[vmf.page] & PG.ANON_EXCLUSIVE or wp_can_reuse_anon_folio(m, vmf.page, vma)):
        frames.flags[vmf.page] |= PG.ANON_EXCLUSIVE  # SetPageAnonExclusive()
        return wp_page_reuse(vmf)
    return wp_page_copy(vmf)


def wp_page_shared(vmf: VmFault) -> int:
    """Mirrors wp_page_shared(): a write to a read-only PTE of a shared mapping (write-notify). A file
    with ->page_mkwrite is told first (the folio becomes dirty); the PTE is then made writable in place
    (finish_mkwrite_fault() -> wp_page_reuse()) and the folio dirtied (fault_dirty_shared_page())."""
    ops = vmf.vma.vm_ops
    vmf.path.append("wp_page_shared")
    if ops is not None and ops.page_mkwrite is not None and vmf.page >= 0:
        tmp = ops.page_mkwrite(vmf)
        if tmp & (VM_FAULT_ERROR | VmFaultResult.NOPAGE):
            return tmp
        ret = wp_page_reuse(vmf)
        vmf.handler = FaultKind.WP_PAGE_SHARED
        fault_dirty_shared_page(vmf)
        return ret
    return wp_page_reuse(vmf)


def wp_can_reuse_anon_folio(m: Machine, pfn: int, vma: Vma) -> bool:
    """Mirrors wp_can_reuse_anon_folio(): may a write reuse the non-exclusive anon page ``pfn`` in place?

    A small folio: only if the mapping's reference is the only one (not KSM); it then moves to this VMA's
    anon_vma (folio_move_anon_rmap()). A large folio (__wp_can_reuse_large_anon_folio()): only if it is
    mapped more than once, by this mm alone (its mm ids say it is not shared) and every reference is a
    mapping. Simplified: no swap cache, no per-CPU LRU batch references (new folios go on the LRU at once).
    """
    frames = m.frames
    head = pfn - int(frames.head_offset[pfn])
    if frames.flags[head] & PG.HEAD:
        mapcount = int(frames.large_mapcount[head])
        return mapcount > 1 and not frames.mm_ids_shared[head] and mapcount == int(frames.refcount[head])
    if frames.flags[head] & PG.KSM or frames.refcount[head] != 1:
        return False
    folio_move_anon_rmap(m, head, vma)
    return True


def wp_page_reuse(vmf: VmFault) -> int:
    """Mirrors wp_page_reuse(): make the existing PTE writable, young and dirty; counts pgreuse."""
    vma, m = vmf.vma, vmf.vma.mm.machine
    vmf.path.append("wp_page_reuse")
    row = pte_offset(m, vmf.pmd, vmf.address)
    entry = pte_mkdirty(pte_mkyoung(vmf.orig_pte))
    if vma.vm_flags & VmFlag.WRITE:
        entry = pte_mkwrite(entry)
    set_pte_at(m, row, vmf.address, entry)
    m.counters.count_vm_event(VmEvent.PGREUSE)  # mm/memory.c: wp_page_reuse()
    vmf.handler = FaultKind.WP_PAGE_REUSE
    return VmFaultResult.NONE


def wp_page_copy(vmf: VmFault) -> int:
    """Mirrors wp_page_copy(): allocate a private copy (zeroed, for the zero page) and map it."""
    vma, m = vmf.vma, vmf.vma.mm.machine
    vmf.path.append("wp_page_copy")
    anon_vma_prepare(vma)
    old = vmf.page
    new = alloc_page(m, 0)
    if new < 0:
        return VmFaultResult.OOM
    if old >= 0:
        m.frames.copy_data(new, old)  # copy_user_highpage()
    row = pte_offset(m, vmf.pmd, vmf.address)
    entry = pfn_pte(new, vma.vm_page_prot)
    if vma.vm_flags & VmFlag.WRITE:
        entry = pte_mkwrite(pte_mkdirty(entry))
    ptep_get_and_clear(m, row, vmf.address)  # ptep_clear_flush()
    flush_tlb_page(m, vma.mm, vmf.address)
    folio_add_new_anon_rmap(m, vma, new, vmf.pgoff)
    folio_add_lru_vma(m, vma, new, 1)
    set_pte_at(m, row, vmf.address, entry)
    if old >= 0:
        folio_remove_rmap_pte(m, vma, old)
        put_page(m, old)
    vmf.page = new
    vmf.handler = FaultKind.WP_PAGE_COPY_ZERO if old < 0 else FaultKind.WP_PAGE_COPY
    return VmFaultResult.NONE


def mm_account_fault(vma: Vma, regs: bool, flags: int, ret: int, nr: int = 1) -> None:
    """Mirrors mm_account_fault(): the single place that counts completed faults (``nr`` of them alike:
    the batched first-touch path counts its faults here too).

    pgfault counts every completed fault, failed ones too; min_flt/maj_flt only successful ones,
    GUP-made ones included; perf's minor-faults/major-faults only those from a user-mode trap.
    """
    if ret & VmFaultResult.RETRY:
        return
    mm = vma.mm
    mm.machine.counters.count_vm_event(VmEvent.PGFAULT, nr)
    if ret & VM_FAULT_ERROR:
        return
    task = mm.owner
    if task is None:
        raise KernelBug("mm_account_fault: an mm without a task")
    major = bool(ret & VmFaultResult.MAJOR) or bool(flags & FaultFlag.TRIED)
    if major:
        task.maj_flt += nr
    else:
        task.min_flt += nr
    if not regs:
        return
    task.perf[PerfEvent.PAGE_FAULTS_MAJ if major else PerfEvent.PAGE_FAULTS_MIN] += nr
