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
    _PAGE_RW,
    PTRS_PER_TABLE,
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
from ..constants import PAGE_MASK
from ..errors import KernelBug, NotModelled
from ..hw.physmem import PG
from ..stats import PerfEvent, VmEvent
from .huge_memory import (
    TvaType,
    create_huge_pmd,
    do_huge_pmd_wp_page,
    huge_pmd_set_accessed,
    thp_vma_allowable_order,
)
from .mm_inline import lruvec_add_folio
from .page_alloc import alloc_page, put_page
from .pgtable import pmd_alloc, pmdp_get, pte_alloc, pte_offset, ptep_get_and_clear, set_pte_at
from .rmap import anon_vma_prepare, folio_add_file_rmap_pte, folio_add_new_anon_rmap, folio_remove_rmap_pte
from .types import VM_FAULT_ERROR, FaultFlag, FaultKind, Vma, VmFault, VmFaultResult, VmFlag, vma_is_anonymous
from .vma import linear_page_index

if TYPE_CHECKING:
    from ..machine import Machine

FAULT_AROUND_PAGES = 16  # fault_around_bytes = 64 KiB (mm/memory.c)


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
    lruvec_add_folio(m, pfn, 1)  # folio_add_lru_vma()
    set_pte_at(m, row, vmf.address, entry)
    vmf.page = pfn
    vmf.handler = FaultKind.DO_ANONYMOUS_PAGE
    return VmFaultResult.NONE


def do_fault(vmf: VmFault) -> int:
    """Mirrors do_fault(): dispatch a fault on a VMA with vm_ops (here: shmem); SIGBUS without ->fault."""
    vmf.path.append("do_fault")
    ops = vmf.vma.vm_ops
    if ops is None or ops.fault is None:
        return VmFaultResult.SIGBUS
    if not vmf.flags & FaultFlag.WRITE:
        return do_read_fault(vmf)
    if not vmf.vma.vm_flags & VmFlag.SHARED:
        raise NotModelled("do_cow_fault: private file mappings are not modelled yet")
    return do_shared_fault(vmf)


def do_read_fault(vmf: VmFault) -> int:
    """Mirrors do_read_fault(): try fault-around first, then read the page and map it."""
    vmf.path.append("do_read_fault")
    if should_fault_around(vmf):
        ret = do_fault_around(vmf)
        if ret:
            vmf.handler = FaultKind.DO_FAULT_AROUND
            return ret
    ret = _do_fault(vmf)
    if ret & VM_FAULT_ERROR:
        return ret
    vmf.handler = FaultKind.DO_READ_FAULT
    return finish_fault(vmf)


def do_shared_fault(vmf: VmFault) -> int:
    """Mirrors do_shared_fault(): get the page, map it writable and dirty (tmpfs: no page_mkwrite)."""
    vmf.path.append("do_shared_fault")
    ret = _do_fault(vmf)
    if ret & VM_FAULT_ERROR:
        return ret
    vmf.handler = FaultKind.DO_SHARED_FAULT
    return finish_fault(vmf)


def _do_fault(vmf: VmFault) -> int:
    """Mirrors __do_fault(): call vma->vm_ops->fault, which leaves a referenced page in vmf.page."""
    ops = vmf.vma.vm_ops
    if ops is None:
        raise KernelBug("__do_fault on an anonymous VMA")
    return ops.fault(vmf)


def finish_fault(vmf: VmFault) -> int:
    """Mirrors finish_fault() -> set_pte_range(): install the PTE for vmf.page."""
    vma, m = vmf.vma, vmf.vma.mm.machine
    row = pte_alloc(m, vma.mm, vmf.pmd, vmf.address)
    if not row:
        put_page(m, vmf.page)
        return VmFaultResult.OOM
    entry = pfn_pte(vmf.page, vma.vm_page_prot)  # young: x86 keeps prefaulted PTEs young too
    if vmf.flags & FaultFlag.WRITE:
        entry = pte_mkdirty(entry)
        if vma.vm_flags & VmFlag.WRITE:
            entry = pte_mkwrite(entry)
    folio_add_file_rmap_pte(m, vma, vmf.page)
    set_pte_at(m, row, vmf.address, entry)
    return VmFaultResult.NONE


def should_fault_around(vmf: VmFault) -> bool:
    """Mirrors should_fault_around(): the VMA's ops can map cached pages, and the window is > 1 page."""
    ops = vmf.vma.vm_ops
    return ops is not None and ops.map_pages is not None and FAULT_AROUND_PAGES > 1


def do_fault_around(vmf: VmFault) -> int:
    """Mirrors do_fault_around(): ask vm_ops->map_pages to map the cached pages of a 16-page window.

    The window is aligned by virtual address and clamped to the VMA and to the PTE table; only pages
    already in the page cache are mapped and no I/O starts. Returns NOPAGE if the faulting page itself
    got mapped, NONE if it must be read (the caller goes on to ->fault).
    """
    vma = vmf.vma
    vmf.path.append("do_fault_around")
    pte_off = pte_index(vmf.address)
    vma_off = vmf.pgoff - vma.vm_pgoff  # the page offset of vmf.address within the VMA
    from_pte = max(pte_off & ~(FAULT_AROUND_PAGES - 1), pte_off - min(pte_off, vma_off))
    to_pte = min(from_pte + FAULT_AROUND_PAGES, PTRS_PER_TABLE, pte_off + vma.pages - vma_off) - 1
    ops = vma.vm_ops
    if ops is None or ops.map_pages is None:
        raise KernelBug("do_fault_around without ->map_pages")
    return ops.map_pages(vmf, vmf.pgoff + from_pte - pte_off, vmf.pgoff + to_pte - pte_off)


def do_wp_page(vmf: VmFault) -> int:
    """Mirrors do_wp_page(): a write to a present read-only PTE.

    Shared mappings reuse the page (tmpfs has no page_mkwrite). An anonymous page that is exclusive
    to this mapping is reused in place; anything else (the zero page, a shared anon page) is copied.
    """
    vma, m = vmf.vma, vmf.vma.mm.machine
    vmf.path.append("do_wp_page")
    vmf.page = -1 if pte_special(vmf.orig_pte) else pte_pfn(vmf.orig_pte)  # vm_normal_page()
    if vma.vm_flags & (VmFlag.SHARED | VmFlag.MAYSHARE):
        return wp_page_reuse(vmf)
    if vmf.page >= 0 and m.frames.flags[vmf.page] & PG.ANON and wp_can_reuse_anon_folio(m, vmf.page):
        return wp_page_reuse(vmf)
    return wp_page_copy(vmf)


def wp_can_reuse_anon_folio(m: Machine, pfn: int) -> bool:
    """Mirrors PageAnonExclusive() || wp_can_reuse_anon_folio(): nobody else holds the page."""
    frames = m.frames
    if frames.flags[pfn] & PG.ANON_EXCLUSIVE:
        return True
    if frames.refcount[pfn] > 1:
        return False
    frames.flags[pfn] |= PG.ANON_EXCLUSIVE
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
    lruvec_add_folio(m, new, 1)
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
