"""A batched first-touch path: N anonymous faults resolved at once, exactly as N single ones would be.

When the MMU loop traps on a never-touched page of a private anonymous VMA, the accesses that follow
it often first-touch more pages of it (a memset, a p.touch(), a random fill). Taking those faults one at
a time costs a trip from the compiled loop into Python per page. This path looks ahead in the batch,
finds the run of accesses in which every page is either new (one do_anonymous_page() fault at its first
touch) or already mapped so the access passes without a trap, and performs those faults together, in
first-touch order: page-table pages and frames are allocated in the same order, PTEs get
the same values, and every counter (pgfault, min_flt, perf page-faults/minor-faults, RSS, LRU,
the simulated clock and the MMU's own event counts for the trapping walks) moves as it would.
tests/unit/mm/test_fault_batch.py holds the two paths equal, array by array.

It applies only where nothing could differ: the VMA is private anonymous and allows the access, no THP
could be used, and every page of the run has an empty PTE. With a timed event pending, a batch runs up to
it: it takes only the faults one-at-a-time faults would all have taken before the MMU loop's next look at
the clock could find the event due (``_before_deadline``), so the event runs at the same access, at the
same time, on the same state; the faults after it go one at a time until it has run. When free
frames are short it takes the longest prefix of the run they can serve (zero-page reads need frames only
for page tables), and leaves the rest, and the fault that finds no frame (VM_FAULT_OOM), to the
ordinary path. Its look-ahead grows with the run, so it never costs more than the faults it saves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_SPECIAL, X86_PF_PROT, X86_PF_WRITE
from ..clock import NO_DEADLINE
from ..constants import PAGE_SHIFT
from ..hw.mmu import leaf_entries
from ..hw.tlb import LAT_L1, LAT_STLB, LAT_WALK
from ..kernel.task import account_system_time, account_user_time
from ..stats import PerfEvent, SimEvent
from .fault import mm_account_fault
from .huge_memory import TvaType, thp_vma_allowable_order
from .mm_inline import lruvec_add_folio
from .page_alloc import alloc_pages_bulk, nr_free_frames
from .pgtable import pmd_alloc, pte_alloc, pte_table, set_ptes_scattered
from .rmap import anon_vma_prepare, folio_add_new_anon_rmap
from .types import FaultFlag, FaultKind, Vma, VmFaultResult, VmFlag
from .vma import find_vma

if TYPE_CHECKING:
    from ..kernel.task import Task

LOOKAHEAD = 1 << 16  # the most accesses one batch looks at
FIRST_WINDOW = 1 << 10  # the look-ahead starts this short and grows 8x while the run fills it
TABLE_FRAMES = 3  # frames a 2 MiB region without a PTE table may take: PTE table, PMD table, PUD table


def try_fault_batch(task: Task, addrs: np.ndarray, writes: np.ndarray, i: int, va: int, err: int) -> bool:
    """Resolve the fault at ``addrs[i]`` and the first-touch faults right after it; False to decline.

    The look-ahead costs in proportion to the faults it resolves: it starts short and grows only while
    the run fills it, and never looks further than free frames could serve (a write run) or than the time
    left before the next event allows (``_deadline_room``). When frames are
    short, the batch is the longest prefix (in first-touch order) whose frames are all free, so no
    allocation inside it can fail; zero-page reads need frames only for new page tables.
    """
    m, mm = task.machine, task.mm
    if err & X86_PF_PROT or va < 0:
        return False
    write = bool(err & X86_PF_WRITE)
    if write and nr_free_frames(m) < 2:
        return False
    vma = find_vma(mm, va)
    if (vma is None or vma.vm_start > va or vma.vm_file is not None
            or vma.vm_flags & (VmFlag.SHARED | VmFlag.LOCKED)
            or not vma.vm_flags & (VmFlag.WRITE if write else VmFlag.READ)
            or thp_vma_allowable_order(vma, vma.vm_flags, TvaType.PAGEFAULT)):  # a fault here may map a THP
        return False
    room = _deadline_room(task, write)  # the most faults the next event leaves time for
    if room < 2:
        return False
    most = nr_free_frames(m) if write else LOOKAHEAD  # pages a run could get frames for
    most = min(most, room)
    window = min(FIRST_WINDOW, room)
    while True:
        vpns, at, filled = _first_touch_run(m.ptpool.tables, mm.pgd, addrs, writes, i, window, write,
                                            vma.vm_start, vma.vm_end)
        if not filled or window >= LOOKAHEAD or i + window >= addrs.shape[0] or vpns.shape[0] >= most:
            break
        window *= 8
    vpns = _affordable_prefix(task, _before_deadline(task, vpns, at, write), write)
    if vpns.shape[0] < 2:
        return False
    _do_anonymous_pages(task, vma, vpns, write)
    return True


def _before_deadline(task: Task, vpns: np.ndarray, at: np.ndarray, write: bool) -> np.ndarray:
    """The prefix of ``vpns`` (first touched ``at`` accesses after the trapping one) that may be faulted in
    together without moving the next event: all of it when no event is pending.

    The MMU loop looks at the clock before each access. After a batch of the first r + 1 faults the clock
    is ahead of where one-at-a-time faults would have it, until the access that took the last of them: from
    there on the two agree. So the batch may take them if, even with every access costing the most one
    can (a full walk), the clock stays short of the deadline up to that access:
    now + r * walk + (r + 1) * fault + at[r] * walk < deadline.
    """
    deadline = task.machine.clock.next_deadline()
    if deadline == NO_DEADLINE:
        return vpns
    m = task.machine
    walk = int(m.tlb.lat[LAT_L1] + m.tlb.lat[LAT_STLB] + m.tlb.lat[LAT_WALK])  # the dearest access
    fault = m.cost.fault_cycles(_fault_kind(write))
    r = np.arange(vpns.shape[0], dtype=np.int64)
    clock_then = m.clock.now + r * walk + (r + 1) * fault + at * walk
    return vpns[:int(np.searchsorted(clock_then, deadline, side="left"))]


def _deadline_room(task: Task, write: bool) -> int:
    """An upper bound on the faults ``_before_deadline`` can let a batch take now (LOOKAHEAD with no event
    pending): r + 1 faults need now + r * walk + (r + 1) * fault + at[r] * walk < deadline, and at[r] >= r."""
    m = task.machine
    deadline = m.clock.next_deadline()
    if deadline == NO_DEADLINE:
        return LOOKAHEAD
    walk = int(m.tlb.lat[LAT_L1] + m.tlb.lat[LAT_STLB] + m.tlb.lat[LAT_WALK])
    per_fault = m.cost.fault_cycles(_fault_kind(write)) + 2 * walk
    return min(LOOKAHEAD, max(0, (deadline - m.clock.now + 2 * walk - 1) // per_fault))


def _fault_kind(write: bool) -> FaultKind:
    return FaultKind.DO_ANONYMOUS_PAGE if write else FaultKind.DO_ANONYMOUS_PAGE_ZERO


def _affordable_prefix(task: Task, vpns: np.ndarray, write: bool) -> np.ndarray:
    """The longest prefix of ``vpns`` whose frames (a data frame per page for a write, page tables for
    each 2 MiB region that has none yet, counted at its first page) are all free now."""
    m = task.machine
    regions, first = np.unique(vpns >> 9, return_index=True)
    missing = np.array([not pte_table(m, task.mm, int(r) << 21) for r in regions.tolist()], dtype=bool)
    need = np.full(vpns.shape[0], 1 if write else 0, dtype=np.int64)
    need[first[missing]] += TABLE_FRAMES
    affordable = int(np.searchsorted(np.cumsum(need), nr_free_frames(m), side="right"))
    return vpns[:affordable]


def _first_touch_run(tables: np.ndarray, pgd: int, addrs: np.ndarray, writes: np.ndarray, i: int, window: int,
                     write: bool, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The pages the accesses from ``addrs[i]`` on (at most ``window`` of them) would each fault in once,
    in the order they first touch them; where each is first touched (counted from ``i``); and whether
    the run went on to the window's end.

    The run lasts while every access is inside the VMA, has the same write flag, and touches either a page with
    no PTE (its first touch faults; later touches find it mapped) or one whose PTE lets the access through
    without a trap (present, and writable for a write). It stops before anything else.
    """
    seg = addrs[i:i + window]
    ok = (seg >= lo) & (seg < hi)
    if writes.shape[0] != 1:
        ok &= writes[i:i + seg.shape[0]].astype(bool) == write
    all_ok = bool(ok.all())
    pages = seg[:int(np.argmin(ok)) if not all_ok else seg.shape[0]] >> PAGE_SHIFT
    sequential = pages.shape[0] > 0 and bool(np.all(pages[1:] >= pages[:-1]))
    if sequential:  # the common case, without a sort
        new = np.empty(pages.shape[0], dtype=bool)
        new[0] = True
        new[1:] = pages[1:] != pages[:-1]
        first = np.flatnonzero(new)
        uniq, inverse = pages[first], np.cumsum(new) - 1
    else:
        uniq, first, inverse = np.unique(pages, return_index=True, return_inverse=True)
    leaves = leaf_entries(tables, pgd, uniq)
    none = leaves == 0
    through = (leaves & _PAGE_PRESENT) != 0
    if write:
        through &= (leaves & _PAGE_RW) != 0
    passes = (none | through)[inverse]
    all_pass = bool(passes.all())
    stop = int(np.argmin(passes)) if not all_pass else pages.shape[0]
    faulting = none & (first < stop)
    order: np.ndarray = uniq[faulting]
    at: np.ndarray = first[faulting]
    filled = all_ok and all_pass
    if sequential:
        return order, at, filled  # already in first-touch order
    by_touch = np.argsort(at, kind="stable")
    return order[by_touch], at[by_touch], filled


def _do_anonymous_pages(task: Task, vma: Vma, vpns: np.ndarray, write: bool) -> None:
    """do_anonymous_page() for each page of ``vpns``, in that order.

    Frames come off the free list in the order single faults would take them: a page whose 2 MiB region has
    no PTE table yet is preceded by that table's frames (pmd_alloc(), pte_alloc()); between two such events
    the data frames are taken in bulk.
    """
    m, mm = task.machine, task.mm
    k = vpns.shape[0]
    if write:
        anon_vma_prepare(vma)
    regions, first = np.unique(vpns >> 9, return_index=True)
    rows = {int(r): pte_table(m, mm, int(r) << 21) for r in regions.tolist()}
    events = sorted(int(j) for r, j in zip(regions.tolist(), first.tolist(), strict=True) if not rows[r])
    pfn_parts = []
    done = 0
    for j in [*events, k]:
        if write and j > done:
            pfn_parts.append(alloc_pages_bulk(m, j - done, 0))
        if j < k:
            addr = int(vpns[j]) << PAGE_SHIFT
            rows[int(vpns[j]) >> 9] = pte_alloc(m, mm, pmd_alloc(m, mm, addr), addr)
        done = j
    row_of = np.array([rows[int(r)] for r in regions.tolist()], dtype=np.int64)[
        np.searchsorted(regions, vpns >> 9)]
    idx = (vpns & 511).astype(np.int64)
    if write:  # do_anonymous_page()'s write half, for k pages: the same helpers with nr = k
        pfns = np.concatenate(pfn_parts)
        folio_add_new_anon_rmap(m, vma, pfns, vpns - (vma.vm_start >> PAGE_SHIFT) + vma.vm_pgoff, k)
        lruvec_add_folio(m, pfns, k)
        ptes = (pfns << PAGE_SHIFT) | (vma.vm_page_prot | _PAGE_RW | _PAGE_DIRTY)
    else:
        ptes = np.full(k, (m.zero_pfn << PAGE_SHIFT) | vma.vm_page_prot | _PAGE_SPECIAL)
    set_ptes_scattered(m, row_of, idx, ptes)
    # What k trips through exc_page_fault() -> handle_mm_fault() -> mm_account_fault() count: perf's
    # page-faults is do_user_addr_fault()'s perf_sw_event(), the rest mm_account_fault().
    task.perf[PerfEvent.PAGE_FAULTS] += k
    mm_account_fault(vma, True, FaultFlag.USER | (FaultFlag.WRITE if write else 0), VmFaultResult.NONE, k)
    # What the trapping walks cost the MMU (the first one it already counted when it stopped),
    # and what the kernel spent on the k faults.
    lat = m.tlb.lat
    walk = int(lat[LAT_L1] + lat[LAT_STLB] + lat[LAT_WALK]) * (k - 1)
    m.counters.sim[SimEvent.STLB_MISS] += k - 1
    m.counters.sim[SimEvent.WALK_TRAPS] += k - 1
    account_user_time(task, walk)
    account_system_time(task, m.cost.fault_cycles(_fault_kind(write)) * k)
