"""Transparent huge pages for anonymous memory: eligibility, faults, the huge zero page, and splits.

Mirrors mm/huge_memory.c (6.18): thp_vma_allowable_order() (include/linux/huge_mm.h) and
__thp_vma_allowable_orders() with vma_thp_disabled(); do_huge_pmd_anonymous_page(),
__do_huge_pmd_anonymous_page(), vma_alloc_anon_folio_pmd() and map_anon_folio_pmd(); the huge zero
page (mm_get_huge_zero_folio(), set_huge_zero_folio(), do_huge_zero_wp_pmd()); do_huge_pmd_wp_page()
and huge_pmd_set_accessed(); the PMD-level entry points of the range walkers: zap_huge_pmd(),
change_huge_pmd(), split_huge_pmd() (__split_huge_pmd_locked(), __split_huge_zero_page_pmd()),
madvise_free_huge_pmd(), vma_adjust_trans_huge(); deferred_split_folio() and split_folio().

x86 deposits a page-table page for each anonymous PMD leaf (pgtable_trans_huge_deposit()), so a split
never needs an allocation: ``mm.pmd_huge_pte`` holds them, keyed by the PMD entry, and they count in
VmPTE/PageTables as the kernel counts them (mm_inc_nr_ptes()).

Every number a user reads was measured on this host's kernel: docs/facts/thp_at_fault_time.md.

Simplified: PMD-sized THP only (mTHP orders come with khugepaged and mTHP); no compaction or reclaim
before a THP allocation fails (``defrag`` is read but nothing stalls), so a fault falls back to 4 KiB
pages exactly when no order-9 block is free; the deferred split queue is kept, but its shrinker (the
only thing that splits a queued folio) runs under memory pressure, which comes later; no shmem THP
(shmem_enabled other than never/deny raises NotModelled when it would matter); no userfaultfd, NUMA or
memcg charge.
"""

from __future__ import annotations

import enum
import errno
from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    pfn_pmd,
    pfn_pte,
    pmd_pfn,
    pmd_trans_huge,
    pte_modify,
)
from ..arch.x86.tlb import flush_tlb_page
from ..constants import HPAGE_PMD_NR, PAGE_SHIFT, PMD_SIZE
from ..errors import KernelBug, NotModelled
from ..hw.physmem import PG
from ..stats import MM_ANONPAGES, VmEvent
from .folio import Folio, split_folio_to_order
from .mm_inline import folio_add_lru_vma
from .page_alloc import folio_alloc, put_page
from .pgtable import (
    pgtable_alloc,
    pgtable_free,
    pmd_offset,
    pmd_populate,
    pmdp_get,
    pmdp_huge_get_and_clear,
    pte_offset_map,
    set_pmd_at,
    set_pte_at,
    set_ptes,
)
from .rmap import (
    anon_vma_prepare,
    folio_add_anon_rmap_ptes,
    folio_add_new_anon_rmap_pmd,
    folio_maybe_mapped_shared,
    folio_move_anon_rmap,
    folio_remove_rmap_pmd,
    folio_remove_rmap_pte,
    folio_reset_mm_ids,
    folio_try_dup_anon_rmap_pmd,
    mm_counter_file,
    rmap_walk,
)
from .types import (
    MMF_DISABLE_THP_COMPLETELY,
    MMF_DISABLE_THP_EXCEPT_ADVISED,
    MMF_HUGE_ZERO_FOLIO,
    FaultFlag,
    FaultKind,
    MmStruct,
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

HPAGE_PMD_ORDER = 9
PMD_MASK = ~(PMD_SIZE - 1)
VM_NO_KHUGEPAGED = VmFlag.PFNMAP | VmFlag.IO | VmFlag.DONTEXPAND | VmFlag.MIXEDMAP | VmFlag.HUGETLB
_THP = "/sys/kernel/mm/transparent_hugepage/"


class TvaType(enum.Enum):
    """Mirrors enum tva_type: who asks whether a VMA may have THPs (the answer differs)."""

    SMAPS = "smaps"  # THPeligible in /proc/PID/smaps
    PAGEFAULT = "pagefault"
    KHUGEPAGED = "khugepaged"
    FORCED_COLLAPSE = "forced_collapse"  # MADV_COLLAPSE


# --- eligibility ----------------------------------------------------------------------------------

def hugepage_global_enabled(m: Machine) -> bool:
    """Mirrors hugepage_global_enabled(): ``enabled`` is always or madvise."""
    return bool(m.settings.transparent_hugepage.enabled in ("always", "madvise"))


def hugepage_global_always(m: Machine) -> bool:
    """Mirrors hugepage_global_always(): ``enabled`` is always."""
    return bool(m.settings.transparent_hugepage.enabled == "always")


def _pmd_order_allowed(m: Machine, vm_flags: int) -> bool:
    """thp_vma_allowable_orders()'s sysfs mask for PMD_ORDER: hugepages-2048kB/enabled (always, madvise
    with VM_HUGEPAGE, or inherit: the top-level ``enabled``)."""
    mode = m.settings[_THP + "hugepages-2048kB/enabled"]
    if mode == "always":
        return True
    if mode == "madvise":
        return bool(vm_flags & VmFlag.HUGEPAGE)
    if mode == "inherit":
        return hugepage_global_always(m) or bool(vm_flags & VmFlag.HUGEPAGE) and hugepage_global_enabled(m)
    return False


def thp_vma_suitable_order(vma: Vma, addr: int, order: int) -> bool:
    """Mirrors thp_vma_suitable_order(): the aligned block of 2**order pages around ``addr`` lies inside
    the VMA (and, for a file, its offset is aligned the same way)."""
    size = 1 << (order + PAGE_SHIFT)
    if not vma_is_anonymous(vma) and ((vma.vm_start >> PAGE_SHIFT) - vma.vm_pgoff) % (size >> PAGE_SHIFT):
        return False
    haddr = addr & ~(size - 1)
    return vma.vm_start <= haddr and haddr + size <= vma.vm_end


def vma_thp_disabled(vma: Vma, vm_flags: int, forced_collapse: bool = False) -> bool:
    """Mirrors vma_thp_disabled(): VM_NOHUGEPAGE, or prctl(PR_SET_THP_DISABLE) on the mm ("completely",
    or "except advised" for a VMA without VM_HUGEPAGE and outside MADV_COLLAPSE)."""
    mm_flags = vma.mm.flags
    if vm_flags & VmFlag.NOHUGEPAGE or mm_flags & MMF_DISABLE_THP_COMPLETELY:
        return True
    if vm_flags & VmFlag.HUGEPAGE or forced_collapse:
        return False
    return bool(mm_flags & MMF_DISABLE_THP_EXCEPT_ADVISED)


def thp_vma_allowable_order(vma: Vma, vm_flags: int, tva: TvaType, order: int = HPAGE_PMD_ORDER) -> bool:
    """Mirrors thp_vma_allowable_order() -> __thp_vma_allowable_orders() for the PMD order.

    For a page fault the size is checked later, by the fault handler (thp_vma_suitable_order());
    for smaps and khugepaged the VMA must contain an aligned 2 MiB block. The protection does not
    matter (a PROT_NONE VMA can be THPeligible, measured). A VMA without an anon_vma qualifies for
    smaps and faults only. Shared anonymous memory is shmem: never here unless shmem_enabled asks.
    """
    m = vma.mm.machine
    if order != HPAGE_PMD_ORDER:
        raise NotModelled("mTHP orders other than the PMD order")
    anonymous = vma_is_anonymous(vma)
    if anonymous and tva is not TvaType.FORCED_COLLAPSE and not _pmd_order_allowed(m, vm_flags):
        return False
    in_pf, smaps = tva is TvaType.PAGEFAULT, tva is TvaType.SMAPS
    if vma_thp_disabled(vma, vm_flags, tva is TvaType.FORCED_COLLAPSE):
        return False
    if not in_pf and not smaps and vm_flags & VM_NO_KHUGEPAGED:
        return False
    if not in_pf and not thp_vma_suitable_order(vma, vma.vm_end - PMD_SIZE, order):
        return False
    if not anonymous:  # shmem: shmem_allowable_huge_orders() outside faults; no ->huge_fault for faults
        if not in_pf and m.settings[_THP + "shmem_enabled"] not in ("never", "deny"):
            raise NotModelled("huge pages in shmem (shmem_enabled other than never or deny)")
        return False
    if vma.anon_vma is None:
        return smaps or in_pf
    return True


# --- the huge zero page ---------------------------------------------------------------------------

def get_huge_zero_folio(m: Machine) -> int:
    """Mirrors get_huge_zero_folio(): the machine's huge zero folio, allocated (zeroed, order 9) the first
    time anyone needs it (thp_zero_page_alloc, or thp_zero_page_alloc_failed); -1 if no block is free.
    It stays until the "thp-zero" shrinker frees it under memory pressure."""
    if m.huge_zero_folio < 0:
        pfn = folio_alloc(m, HPAGE_PMD_ORDER, PG.RESERVED | PG.ZERO)
        if pfn < 0:
            m.counters.count_vm_event(VmEvent.THP_ZERO_PAGE_ALLOC_FAILED)
            return -1
        m.counters.count_vm_event(VmEvent.THP_ZERO_PAGE_ALLOC)
        m.huge_zero_folio = pfn  # the shrinker's reference is the allocation's
    return m.huge_zero_folio


def mm_get_huge_zero_folio(mm: MmStruct) -> int:
    """Mirrors mm_get_huge_zero_folio(): each mm takes one reference the first time it maps it."""
    m = mm.machine
    if mm.flags & MMF_HUGE_ZERO_FOLIO:
        return m.huge_zero_folio
    pfn = get_huge_zero_folio(m)
    if pfn >= 0:
        m.frames.refcount[pfn] += 1
        mm.flags |= MMF_HUGE_ZERO_FOLIO
    return pfn


def mm_put_huge_zero_folio(mm: MmStruct) -> None:
    """Mirrors mm_put_huge_zero_folio() at exit: drop this mm's reference (the folio itself stays)."""
    if mm.flags & MMF_HUGE_ZERO_FOLIO:
        mm.machine.frames.refcount[mm.machine.huge_zero_folio] -= 1
        mm.flags &= ~MMF_HUGE_ZERO_FOLIO


def is_huge_zero_pmd(m: Machine, pmd: int) -> bool:
    return m.huge_zero_folio >= 0 and pmd_trans_huge(pmd) and pmd_pfn(pmd) == m.huge_zero_folio


# --- deposited page tables ------------------------------------------------------------------------

def _pmd_key(pmd: int, addr: int) -> int:
    return pmd * 512 + ((addr >> 21) & 511)


def pgtable_trans_huge_deposit(mm: MmStruct, pmd: int, addr: int, pgtable: int) -> None:
    """Mirrors pgtable_trans_huge_deposit(): keep a PTE table for the PMD leaf at ``addr``."""
    key = _pmd_key(pmd, addr)
    if key in mm.pmd_huge_pte:
        raise KernelBug("pgtable_trans_huge_deposit: a table is already deposited there")
    mm.pmd_huge_pte[key] = pgtable


def pgtable_trans_huge_withdraw(mm: MmStruct, pmd: int, addr: int) -> int:
    """Mirrors pgtable_trans_huge_withdraw(): take back the table deposited for the PMD leaf at ``addr``."""
    return mm.pmd_huge_pte.pop(_pmd_key(pmd, addr))


def zap_deposited_table(m: Machine, mm: MmStruct, pmd: int, addr: int) -> None:
    """Mirrors zap_deposited_table(): free the deposited table (mm_dec_nr_ptes())."""
    pgtable_free(m, mm, pgtable_trans_huge_withdraw(mm, pmd, addr))


# --- faults ---------------------------------------------------------------------------------------

def create_huge_pmd(vmf: VmFault) -> int:
    """Mirrors create_huge_pmd(): anonymous VMAs go to do_huge_pmd_anonymous_page() (files: ->huge_fault)."""
    if vma_is_anonymous(vmf.vma):
        return do_huge_pmd_anonymous_page(vmf)
    return VmFaultResult.FALLBACK


def do_huge_pmd_anonymous_page(vmf: VmFault) -> int:
    """Mirrors do_huge_pmd_anonymous_page(): a fault in an empty PMD of an eligible VMA.

    FALLBACK when the aligned 2 MiB block is not inside the VMA. A read maps the huge zero page (if
    ``use_zero_page``): one PMD, a deposited table, no RSS. A write allocates a zeroed THP.
    """
    vma = vmf.vma
    mm, m = vma.mm, vma.mm.machine
    vmf.path.append("do_huge_pmd_anonymous_page")
    haddr = vmf.address & PMD_MASK
    if not thp_vma_suitable_order(vma, haddr, HPAGE_PMD_ORDER):
        return VmFaultResult.FALLBACK
    anon_vma_prepare(vma)  # vmf_anon_prepare()
    if not vmf.flags & FaultFlag.WRITE and m.settings.transparent_hugepage.use_zero_page:
        pgtable = pgtable_alloc(m, mm, 1)  # pte_alloc_one() (+ mm_inc_nr_ptes() at the deposit)
        if not pgtable:
            return VmFaultResult.OOM
        zero = mm_get_huge_zero_folio(mm)
        if zero < 0:
            pgtable_free(m, mm, pgtable)
            m.counters.count_vm_event(VmEvent.THP_FAULT_FALLBACK)
            return VmFaultResult.FALLBACK
        set_huge_zero_folio(mm, vma, vmf.pmd, haddr, pgtable, zero)
        vmf.handler = FaultKind.HUGE_ZERO_PAGE
        return VmFaultResult.NONE
    return __do_huge_pmd_anonymous_page(vmf)


def set_huge_zero_folio(mm: MmStruct, vma: Vma, pmd: int, haddr: int, pgtable: int, zero: int) -> None:
    """Mirrors set_huge_zero_folio(): deposit the table and map the huge zero page read-only (special)."""
    pgtable_trans_huge_deposit(mm, pmd, haddr, pgtable)
    entry = pfn_pmd(zero, vma.vm_page_prot & ~_PAGE_RW) | _PAGE_PSE | _PAGE_SPECIAL
    set_pmd_at(mm.machine, pmd, haddr, entry)


def vma_alloc_anon_folio_pmd(vma: Vma) -> int:
    """Mirrors vma_alloc_anon_folio_pmd(): a zeroed order-9 anonymous folio, or -1 after counting
    thp_fault_fallback (no order-9 block free: nothing is reclaimed or compacted first here)."""
    m = vma.mm.machine
    pfn = folio_alloc(m, HPAGE_PMD_ORDER, 0)
    if pfn < 0:
        m.counters.count_vm_event(VmEvent.THP_FAULT_FALLBACK)
    return pfn  # folio_zero_user(): a freshly allocated frame is all zeros (fingerprint 0) already


def __do_huge_pmd_anonymous_page(vmf: VmFault) -> int:
    """Mirrors __do_huge_pmd_anonymous_page(): allocate the THP and a table to deposit, map the PMD."""
    vma = vmf.vma
    mm, m = vma.mm, vma.mm.machine
    haddr = vmf.address & PMD_MASK
    folio = vma_alloc_anon_folio_pmd(vma)
    if folio < 0:
        return VmFaultResult.FALLBACK
    pgtable = pgtable_alloc(m, mm, 1)
    if not pgtable:
        put_page(m, folio)
        return VmFaultResult.OOM
    pgtable_trans_huge_deposit(mm, vmf.pmd, haddr, pgtable)
    map_anon_folio_pmd(folio, vmf.pmd, vma, haddr)
    vmf.page = folio
    vmf.handler = FaultKind.DO_HUGE_PMD_ANONYMOUS_PAGE
    return VmFaultResult.NONE


def map_anon_folio_pmd(folio: int, pmd: int, vma: Vma, haddr: int) -> None:
    """Mirrors map_anon_folio_pmd(): rmap, LRU, the PMD leaf (dirty, writable if the VMA is), RSS +512,
    thp_fault_alloc."""
    m = vma.mm.machine
    entry = pfn_pmd(folio, vma.vm_page_prot) | _PAGE_PSE | _PAGE_DIRTY
    if vma.vm_flags & VmFlag.WRITE:
        entry |= _PAGE_RW  # maybe_pmd_mkwrite()
    folio_add_new_anon_rmap_pmd(m, vma, folio, linear_page_index(vma, haddr))
    folio_add_lru_vma(m, vma, folio, HPAGE_PMD_NR)
    set_pmd_at(m, pmd, haddr, entry)
    add_mm_counter(vma.mm, MM_ANONPAGES, HPAGE_PMD_NR)
    m.counters.count_vm_event(VmEvent.THP_FAULT_ALLOC)


def do_huge_pmd_wp_page(vmf: VmFault) -> int:
    """Mirrors do_huge_pmd_wp_page(): a write to a read-only PMD leaf of a writable VMA.

    The huge zero page is replaced by a new THP (do_huge_zero_wp_pmd()); an exclusive THP (PageAnonExclusive,
    or a folio_ref_count() of 1: the process it was shared with after fork() has gone) is made writable in
    place; anything else, a THP still shared after fork(), is split (FALLBACK: the PTE path copies one 4 KiB
    page).
    """
    vma = vmf.vma
    m = vma.mm.machine
    vmf.path.append("do_huge_pmd_wp_page")
    haddr = vmf.address & PMD_MASK
    orig = vmf.orig_pmd
    if is_huge_zero_pmd(m, orig):
        ret = do_huge_zero_wp_pmd(vmf)
        if not ret & VmFaultResult.FALLBACK:
            return ret
    else:
        folio = pmd_pfn(orig)
        frames = m.frames
        exclusive = bool(frames.flags[folio] & PG.ANON_EXCLUSIVE)
        if not exclusive and frames.refcount[folio] == 1:  # the only reference: ours (the sharer exited)
            folio_move_anon_rmap(m, folio, vma)
            frames.flags[folio] |= PG.ANON_EXCLUSIVE
            exclusive = True
        if exclusive:  # reuse
            set_pmd_at(m, vmf.pmd, haddr, orig | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_RW)
            flush_tlb_page(m, vma.mm, haddr)
            vmf.handler = FaultKind.DO_HUGE_PMD_WP_PAGE
            return VmFaultResult.NONE
    split_huge_pmd(m, vma, vmf.pmd, vmf.address)  # fallback: __split_huge_pmd()
    return VmFaultResult.FALLBACK


def do_huge_zero_wp_pmd(vmf: VmFault) -> int:
    """Mirrors do_huge_zero_wp_pmd(): allocate a THP and map it where the huge zero page was; the table
    deposited for the zero page stays deposited. FALLBACK if no order-9 block is free."""
    vma = vmf.vma
    m = vma.mm.machine
    vmf.path.append("do_huge_zero_wp_pmd")
    haddr = vmf.address & PMD_MASK
    folio = vma_alloc_anon_folio_pmd(vma)
    if folio < 0:
        return VmFaultResult.FALLBACK
    pmdp_huge_get_and_clear(m, vmf.pmd, haddr)  # pmdp_huge_clear_flush()
    flush_tlb_page(m, vma.mm, haddr)
    map_anon_folio_pmd(folio, vmf.pmd, vma, haddr)
    vmf.page = folio
    vmf.handler = FaultKind.DO_HUGE_ZERO_WP_PMD
    return VmFaultResult.NONE


def huge_pmd_set_accessed(vmf: VmFault) -> int:
    """Mirrors huge_pmd_set_accessed(): the PMD already allowed the access; mark it young (and dirty)."""
    m = vmf.vma.mm.machine
    entry = vmf.orig_pmd | _PAGE_ACCESSED
    if vmf.flags & FaultFlag.WRITE:
        entry |= _PAGE_DIRTY
    set_pmd_at(m, vmf.pmd, vmf.address & PMD_MASK, entry)
    vmf.handler = FaultKind.HUGE_PMD_SET_ACCESSED
    return VmFaultResult.NONE


# --- the range walkers' PMD-level entry points ---------------------------------------------------

def copy_huge_pmd(m: Machine, dst_vma: Vma, src_vma: Vma, dst_pmd: int, src_pmd: int, addr: int) -> int:
    """Mirrors copy_huge_pmd() (fork): a PMD leaf of an anonymous VMA is shared with the child: the huge
    zero page as is, a THP with one more reference and PMD mapping (no longer exclusive), write-protected
    in both, old in the child, and a PTE table deposited for the child's later split. A file PMD is left
    for the child to re-fault. 0, or -ENOMEM if no table could be had."""
    if not vma_is_anonymous(dst_vma):  # "Skip if can be re-fill on fault"
        return 0
    dst_mm = dst_vma.mm
    haddr = addr & PMD_MASK
    pgtable = pgtable_alloc(m, dst_mm, 1)  # pte_alloc_one()
    if not pgtable:
        return -errno.ENOMEM
    orig = pmdp_get(m, src_pmd, haddr)
    if is_huge_zero_pmd(m, orig):
        mm_get_huge_zero_folio(dst_mm)
        pgtable_trans_huge_deposit(dst_mm, dst_pmd, haddr, pgtable)
        set_pmd_at(m, dst_pmd, haddr, orig)
        return 0
    folio = pmd_pfn(orig)
    m.frames.refcount[folio] += 1  # folio_get()
    folio_try_dup_anon_rmap_pmd(m, dst_vma, folio)
    add_mm_counter(dst_mm, MM_ANONPAGES, HPAGE_PMD_NR)
    pgtable_trans_huge_deposit(dst_mm, dst_pmd, haddr, pgtable)
    set_pmd_at(m, src_pmd, haddr, orig & ~_PAGE_RW)  # pmdp_set_wrprotect()
    set_pmd_at(m, dst_pmd, haddr, orig & ~(_PAGE_RW | _PAGE_ACCESSED))  # pmd_mkold(pmd_wrprotect())
    return 0


def zap_huge_pmd(m: Machine, vma: Vma, pmd: int, addr: int) -> int:
    """Mirrors zap_huge_pmd(): clear the PMD leaf at ``addr`` (which the zap covers whole), free its
    deposited table, and for a THP drop its mapping and RSS (the last reference frees the folio).
    1 if it did (the caller flushes the TLB), 0 if the entry was not a leaf (the caller walks the PTEs)."""
    haddr = addr & PMD_MASK
    orig = pmdp_get(m, pmd, haddr)
    if not pmd_trans_huge(orig):
        return 0
    mm = vma.mm
    pmdp_huge_get_and_clear(m, pmd, haddr)
    if not vma_is_anonymous(vma):  # a page-cache folio: no deposited table on x86
        zap_file_pmd(m, vma, orig)
        return 1
    zap_deposited_table(m, mm, pmd, haddr)
    if is_huge_zero_pmd(m, orig):
        return 1
    folio = pmd_pfn(orig)
    folio_remove_rmap_pmd(m, vma, folio)
    add_mm_counter(mm, MM_ANONPAGES, -HPAGE_PMD_NR)
    put_page(m, folio)  # tlb_remove_page_size()
    return 1


def zap_file_pmd(m: Machine, vma: Vma, orig: int) -> None:
    """The page-cache half of zap_huge_pmd() and __split_huge_pmd_locked(): the folio a cleared PMD
    mapped is dirtied if the PMD was (folio_mark_dirty()), loses the mapping and its reference, and the
    mm's file RSS drops by HPAGE_PMD_NR. The caller has cleared the entry."""
    from .page_writeback import folio_mark_dirty  # page_writeback builds on rmap, as this module does

    folio = pmd_pfn(orig)
    if orig & _PAGE_DIRTY:
        folio_mark_dirty(m, folio)
    folio_remove_rmap_pmd(m, vma, folio)
    add_mm_counter(vma.mm, mm_counter_file(m, folio), -HPAGE_PMD_NR)
    put_page(m, folio)


def change_huge_pmd(m: Machine, vma: Vma, pmd: int, addr: int, newprot: int) -> int:
    """Mirrors change_huge_pmd(): give the PMD leaf at ``addr`` (which the mprotect covers whole) the
    protection ``newprot`` (pmd_modify()), restoring write on an exclusive THP of a writable VMA
    (can_change_pmd_writable()). 0 if the entry is not a leaf, 1 if unchanged, HPAGE_PMD_NR if changed."""
    haddr = addr & PMD_MASK
    orig = pmdp_get(m, pmd, haddr)
    if not pmd_trans_huge(orig):
        return 0
    entry = pte_modify(orig, newprot) | _PAGE_PSE
    zero = is_huge_zero_pmd(m, orig)
    if zero:
        entry &= ~_PAGE_RW
    elif (vma.vm_flags & VmFlag.WRITE and not vma.vm_flags & VmFlag.SHARED
          and m.frames.flags[pmd_pfn(orig)] & PG.ANON_EXCLUSIVE):
        entry |= _PAGE_RW
    if entry == orig:
        return 1
    set_pmd_at(m, pmd, haddr, entry)
    return HPAGE_PMD_NR


def split_huge_pmd(m: Machine, vma: Vma, pmd: int, address: int) -> None:
    """Mirrors split_huge_pmd() -> __split_huge_pmd_locked(): if the entry for ``address`` in PMD table
    ``pmd`` is a PMD leaf, replace it by its deposited PTE table mapping the same 512 pages with the
    PMD's bits (the huge zero page: 512 zero-page PTEs). Counts thp_split_pmd; the folio stays a THP,
    now mapped by PTEs (AnonHugePages and nr_anon_transparent_hugepages drop). Else nothing."""
    haddr = address & PMD_MASK
    orig = pmdp_get(m, pmd, haddr)
    if not pmd_trans_huge(orig):
        return
    mm = vma.mm
    m.counters.count_vm_event(VmEvent.THP_SPLIT_PMD)
    pmdp_huge_get_and_clear(m, pmd, haddr)  # pmdp_invalidate()
    flush_tlb_page(m, mm, haddr)  # flush_pmd_tlb_range(): one 2 MiB translation
    if not vma_is_anonymous(vma):  # a file PMD is zapped, not split: its pages fault back in by PTEs
        zap_file_pmd(m, vma, orig)
        return
    pgtable = pgtable_trans_huge_withdraw(mm, pmd, haddr)
    keep = orig & (_PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED)
    prot = (vma.vm_page_prot & ~(_PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED)) | keep
    if is_huge_zero_pmd(m, orig):  # __split_huge_zero_page_pmd(): a zero-page PTE for each address
        zero = pfn_pte(m.zero_pfn, prot & ~_PAGE_RW) | _PAGE_SPECIAL
        for addr in range(haddr, haddr + PMD_SIZE, 1 << PAGE_SHIFT):
            set_pte_at(m, pgtable, addr, zero)
    else:
        folio = pmd_pfn(orig)
        m.frames.refcount[folio] += HPAGE_PMD_NR - 1  # folio_ref_add(): one reference per PTE
        folio_add_anon_rmap_ptes(m, vma, folio, HPAGE_PMD_NR)
        set_ptes(m, pgtable, haddr, pfn_pte(folio, prot), HPAGE_PMD_NR)
        folio_remove_rmap_pmd(m, vma, folio)
    pmd_populate(m, pmd, haddr, pgtable)


def split_huge_pmd_address(m: Machine, vma: Vma, address: int) -> None:
    """Mirrors split_huge_pmd_address(): split the PMD leaf covering ``address``, if there is one."""
    pmd = pmd_offset(m, vma.mm, address)
    if pmd:
        split_huge_pmd(m, vma, pmd, address)


def vma_adjust_trans_huge(vma: Vma, address: int) -> None:
    """Mirrors split_huge_pmd_if_needed() (vma_adjust_trans_huge()): a VMA about to be cut at ``address``
    splits a PMD leaf that straddles the cut, so no PMD maps pages of two VMAs."""
    if address & ~PMD_MASK and vma.vm_start <= (address & PMD_MASK) and (address & PMD_MASK) + PMD_SIZE <= vma.vm_end:
        split_huge_pmd_address(vma.mm.machine, vma, address)


def madvise_free_huge_pmd(m: Machine, vma: Vma, pmd: int, addr: int, next_addr: int) -> bool:
    """Mirrors madvise_free_huge_pmd(): MADV_FREE of the PMD leaf at ``addr``. A THP shared with another
    mapping, or the huge zero page, is left alone; part of one is split at once (split_folio():
    thp_split_pmd and thp_split_page) and False returned, so the caller goes on with the PTEs; a whole,
    exclusive one is marked clean, old and lazily free (True)."""
    from .swap import folio_mark_lazyfree

    haddr = addr & PMD_MASK
    orig = pmdp_get(m, pmd, haddr)
    if not pmd_trans_huge(orig) or is_huge_zero_pmd(m, orig):
        return False
    folio = pmd_pfn(orig)
    frames = m.frames
    if folio_maybe_mapped_shared(m, folio):
        return False
    if next_addr - addr != PMD_SIZE:
        split_huge_pmd(m, vma, pmd, haddr)  # split_folio() unmaps the PMD first
        split_folio(m, folio)
        return False
    frames.flags[folio] &= ~PG.DIRTY
    if orig & (_PAGE_ACCESSED | _PAGE_DIRTY):
        set_pmd_at(m, pmd, haddr, orig & ~(_PAGE_ACCESSED | _PAGE_DIRTY))
        flush_tlb_page(m, vma.mm, haddr)
    folio_mark_lazyfree(m, folio)
    return True


# --- splitting the folio itself -------------------------------------------------------------------

def deferred_split_folio(m: Machine, folio: int, partially_mapped: bool) -> None:
    """Mirrors deferred_split_folio(): queue a THP for the deferred-split shrinker. The first time it
    becomes partially mapped, PG_partially_mapped is set and thp_deferred_split_page counted."""
    frames = m.frames
    if frames.order[folio] <= 1:
        return
    if partially_mapped and not frames.flags[folio] & PG.PARTIALLY_MAPPED:
        frames.flags[folio] |= PG.PARTIALLY_MAPPED
        m.counters.count_vm_event(VmEvent.THP_DEFERRED_SPLIT_PAGE)
    if partially_mapped:
        m.deferred_split_queue[folio] = None


def split_folio(m: Machine, folio: int) -> None:
    """Mirrors split_folio() -> __folio_split() to order 0 for an anonymous THP that no PMD maps.

    unmap_folio() takes its PTE mappings away (the folio-wide map counts go to 0), __split_folio_to_order()
    (mm/folio.py) makes 2**order order-0 folios, each mapping takes its reference back, and remap_page()
    maps each page again, except that a page holding only zeros is mapped to the shared zero page instead
    (RMP_USE_SHARED_ZEROPAGE: try_to_map_unused_to_zeropage(), measured here: Rss drops) and freed.
    Pages nobody maps are freed. Counts thp_split_page. The LRU gauges keep their totals
    (lru_add_split_folio()); references beyond the mappings stay with the first page.
    """
    frames = m.frames
    order = int(frames.order[folio])
    nr = 1 << order
    if frames.entire_mapcount[folio]:
        raise KernelBug("split_folio: the folio is still PMD-mapped (split the PMD first)")
    pages = np.arange(folio, folio + nr, dtype=np.int64)
    mapped = pages[frames.mapcount[pages] > 0]
    ptes = [(pfn, rmap_walk(m, pfn)) for pfn in mapped.tolist()]  # unmap_folio(): where each page is mapped
    on_lru = bool(frames.flags[folio] & PG.LRU)
    extra = int(frames.refcount[folio]) - int(frames.large_mapcount[folio])  # references beyond the mappings
    frames.large_mapcount[folio] = 0
    folio_reset_mm_ids(m, folio)
    split_folio_to_order(m, Folio(folio, order), 0)
    frames.refcount[pages] = frames.mapcount[pages]  # folio_ref_unfreeze(): one reference per mapping
    frames.refcount[folio] += extra
    if on_lru:
        frames.flags[pages] |= PG.LRU  # lru_add_split_folio(): the new folios follow the head on its list
    m.deferred_split_queue.pop(folio, None)
    m.counters.count_vm_event(VmEvent.THP_SPLIT_PAGE)
    unmapped = pages[frames.refcount[pages] == 0].tolist()
    for pfn, where in ptes:  # remap_page(RMP_USE_SHARED_ZEROPAGE)
        if frames.fingerprint[pfn] or frames.flags[pfn] & PG.MLOCKED:
            continue
        for vma, addr in where:
            if vma.vm_flags & VmFlag.LOCKED:
                continue
            row = pte_offset_map(m, pmd_offset(m, vma.mm, addr), addr)
            set_pte_at(m, row, addr, pfn_pte(m.zero_pfn, vma.vm_page_prot) | _PAGE_SPECIAL)
            flush_tlb_page(m, vma.mm, addr)
            folio_remove_rmap_pte(m, vma, pfn)
            put_page(m, pfn)
    for pfn in unmapped:  # free_folio_and_swap_cache()
        frames.refcount[pfn] = 1
        put_page(m, pfn)
