"""The MMU loop: what the silicon does on every memory access, compiled with numba.

For each access of a batch: look the page up in the L1 dTLBs, then the STLB; on a miss walk the
4-level page table from CR3 (``walk``: down to a PTE, or to a PMD with the PS bit set, a 2 MiB leaf);
check the permission; set the Accessed (and, on a write, Dirty) bit in the leaf entry, the PMD for a
huge page; fill the TLBs of that page size, as far as the CPU model caches it; charge the cycles to the
simulated clock. The loop makes no decisions.
When an access cannot complete it stops and reports a trap (batch index, address, x86 error code);
the kernel handles it and calls the loop again at the same index, as a CPU re-executes the faulting
instruction. It also stops when the simulated clock reaches ``deadline``.

``mmu_run`` is written in plain Python syntax: with NUMBA_DISABLE_JIT=1 the same source runs as
ordinary Python, for debugging and teaching.

Simplified: no paging-structure caches (a walk costs ``walk_cycles`` whatever its depth), no 1 GiB
pages (PS in a PUD is not looked at), permissions checked in the leaf only (Linux sets RW and US in
every upper-level entry), no instruction fetches, no accesses that straddle a page (each access is one
address).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .tlb import ASID_SHIFT, HUGE_TAG, L1_2M, L1_4K, LAT_L1, LAT_STLB, LAT_WALK, STLB, STLB_2M, tlb_fill, tlb_find

# Outcomes of mmu_run.
MMU_DONE = 0
MMU_PAGE_FAULT = 1  # #PF: index, address and error code are valid
MMU_GP_FAULT = 2  # #GP: a non-canonical address
MMU_DEADLINE = 3  # the simulated clock reached the deadline

# Bits the loop reads (the same as arch/x86/pgtable.py; hw/ does not import the kernel).
P = 1
RW = 2
US = 4
A = 32
D = 64
PS = 128
PFN_MASK = ((1 << 52) - 1) & ~4095
HPAGE_PFN_MASK = ((1 << 52) - 1) & ~((1 << 21) - 1)  # a PMD leaf: bits 21..51 (bit 12 is PAT there)
LEVEL_PTE = 1  # walk() levels: where the walk stopped
LEVEL_PMD = 2
PF_PROT = 1
PF_WRITE = 2
PF_USER = 4
USER_VA_END = 1 << 47  # 4-level paging: 48-bit canonical addresses, user half below 2**47

# Indices into the SimEvent array (stats.SimEvent).
EV_ACCESSES = 0
EV_LOADS = 1
EV_STORES = 2
EV_DTLB_4K_HIT = 3
EV_DTLB_2M_HIT = 4
EV_STLB_HIT = 5
EV_STLB_MISS = 6
EV_WALK_TRAPS = 7
EV_DIRTY_WALKS = 8


@njit(cache=True)
def mmu_run(tables: np.ndarray, cr3: int, asid: int, addrs: np.ndarray, writes: np.ndarray, start: int,
            tag: np.ndarray, val: np.ndarray, age: np.ndarray, geom: np.ndarray, lat: np.ndarray, tick: np.ndarray,
            ev: np.ndarray, clock: np.ndarray, deadline: int) -> tuple[int, int, int, int]:
    """Run accesses ``addrs[start:]`` (``writes`` per access, or one flag for all) through the MMU.

    Returns (outcome, index, address, error_code). ``clock[0]`` counts cycles; ``ev`` the SimEvents.
    """
    n = addrs.shape[0]
    one_flag = writes.shape[0] == 1
    base = asid << ASID_SHIFT
    i = start
    while i < n:
        if clock[0] >= deadline:
            return MMU_DEADLINE, i, 0, 0
        va = addrs[i]
        w = writes[0] if one_flag else writes[i]
        if va < 0 or va >= USER_VA_END:
            if va < -USER_VA_END or va >= USER_VA_END:
                return MMU_GP_FAULT, i, va, 0
            # A canonical kernel address: the walk finds a supervisor page (or none).
            return MMU_PAGE_FAULT, i, va, PF_USER | (PF_WRITE if w else 0)
        stamp = tick[0] + 1  # LRU stamp; only a completed access consumes it
        vpn = va >> 12
        vpn2 = va >> 21
        need = (RW | D) if w else 0
        # L1 dTLB, 4 KiB then 2 MiB. A write that finds an entry without RW+D walks (to set D, or to fault).
        row, way = tlb_find(tag, geom, L1_4K, base | vpn, vpn)
        hit_ev = EV_DTLB_4K_HIT
        if way < 0 and tick[1]:  # tick[1]: a 2 MiB translation was ever cached (else none can be)
            row, way = tlb_find(tag, geom, L1_2M, base | HUGE_TAG | vpn2, vpn2)
            hit_ev = EV_DTLB_2M_HIT
        if way >= 0 and (val[row, way] & need) == need:
            age[row, way] = stamp
            ev[hit_ev] += 1
            _count_access(ev, w)
            tick[0] = stamp
            clock[0] += lat[LAT_L1]
            i += 1
            continue
        if way < 0:
            # STLB: 4 KiB, then 2 MiB translations (in the same array or their own, as the CPU model says).
            srow, sway = tlb_find(tag, geom, STLB, base | vpn, vpn)
            huge = False
            if sway < 0 and tick[1]:
                srow, sway = tlb_find(tag, geom, STLB_2M, base | HUGE_TAG | vpn2, vpn2)
                huge = True
            if sway >= 0 and (val[srow, sway] & need) == need:
                entry = val[srow, sway]
                age[srow, sway] = stamp
                if huge:
                    tlb_fill(tag, val, age, geom, L1_2M, base | HUGE_TAG | vpn2, vpn2, entry, stamp)
                else:
                    tlb_fill(tag, val, age, geom, L1_4K, base | vpn, vpn, entry, stamp)
                ev[EV_STLB_HIT] += 1
                _count_access(ev, w)
                tick[0] = stamp
                clock[0] += lat[LAT_L1] + lat[LAT_STLB]
                i += 1
                continue
        else:
            ev[EV_DIRTY_WALKS] += 1
        ev[EV_STLB_MISS] += 1
        clock[0] += lat[LAT_L1] + lat[LAT_STLB] + lat[LAT_WALK]
        t, idx, e, level = walk(tables, cr3, va)
        if e & P == 0:
            ev[EV_WALK_TRAPS] += 1
            return MMU_PAGE_FAULT, i, va, PF_USER | (PF_WRITE if w else 0)
        if (w and (e & RW) == 0) or (e & US) == 0:
            ev[EV_WALK_TRAPS] += 1
            return MMU_PAGE_FAULT, i, va, PF_PROT | PF_USER | (PF_WRITE if w else 0)
        e2 = e | A | (D if w else 0)
        if e2 != e:
            tables[t, idx] = e2  # in the PTE, or in the PMD of a 2 MiB page
        if level == LEVEL_PMD:
            tick[1] = 1
            if geom[STLB_2M, 2]:  # the STLB holds 2 MiB entries (not on every CPU)
                tlb_fill(tag, val, age, geom, STLB_2M, base | HUGE_TAG | vpn2, vpn2, e2, stamp)
            tlb_fill(tag, val, age, geom, L1_2M, base | HUGE_TAG | vpn2, vpn2, e2, stamp)
        else:
            tlb_fill(tag, val, age, geom, STLB, base | vpn, vpn, e2, stamp)
            tlb_fill(tag, val, age, geom, L1_4K, base | vpn, vpn, e2, stamp)
        _count_access(ev, w)
        tick[0] = stamp
        i += 1
    return MMU_DONE, n, 0, 0


@njit(cache=True)
def walk(tables: np.ndarray, cr3: int, va: int) -> tuple[int, int, int, int]:
    """Walk the page table rooted at row ``cr3`` to the entry that maps ``va``.

    Returns (row, index, entry, level): ``tables[row, index]`` is ``entry``, the last entry read, at
    ``level`` (4 = PGD, 3 = PUD, 2 = PMD, 1 = PTE). The walk stops early at an entry that is not
    present (then ``entry & P`` is 0) or at a PMD with PS set, a 2 MiB leaf (level 2). So a present
    entry is a leaf, of a 4 KiB page at level 1 or a 2 MiB page at level 2. Reads only.
    Mirrors walk() in xv6's kernel/vm.c, and the walk x86 hardware does (P4D folded).
    """
    t = cr3
    for level in range(4, LEVEL_PTE, -1):
        idx = (va >> (3 + 9 * level)) & 511
        e = tables[t, idx]
        if e & P == 0 or (level == LEVEL_PMD and e & PS != 0):
            return t, idx, e, level
        t = (e & PFN_MASK) >> 12  # upper-level entries hold the next table's row
    idx = (va >> 12) & 511
    return t, idx, tables[t, idx], LEVEL_PTE


@njit(cache=True)
def _count_access(ev: np.ndarray, w: int) -> None:
    ev[EV_ACCESSES] += 1
    if w:
        ev[EV_STORES] += 1
    else:
        ev[EV_LOADS] += 1


@njit(cache=True)
def leaf_entries(tables: np.ndarray, cr3: int, vpns: np.ndarray) -> np.ndarray:
    """The leaf entry a walk would find for each page number (0 where a level is missing).

    A PMD leaf (huge page) is returned as is, PS bit set; a PTE as is, present or not (a swap entry).
    Reads only: no A/D bits, no TLB fill. ``leaf_pfns`` gives the 4 KiB frame instead.
    """
    out = np.zeros(vpns.shape[0], dtype=np.int64)
    for k in range(vpns.shape[0]):
        _, _, e, level = walk(tables, cr3, vpns[k] << 12)
        if level == LEVEL_PTE or e & P != 0:
            out[k] = e
    return out


@njit(cache=True)
def leaf_pfns(tables: np.ndarray, cr3: int, vpns: np.ndarray) -> np.ndarray:
    """The 4 KiB frame each page number maps to, -1 where no present leaf maps it.

    For a PMD leaf the frame is the huge page's first frame (bits 21..51 of the PMD) plus the
    page's index in it (``vpn & 511``), so a store into a huge page lands in its own 4 KiB subpage.
    Reads only, as ``leaf_entries``.
    """
    out = np.full(vpns.shape[0], -1, dtype=np.int64)
    for k in range(vpns.shape[0]):
        vpn = vpns[k]
        _, _, e, level = walk(tables, cr3, vpn << 12)
        if e & P == 0:
            continue
        if level == LEVEL_PMD:
            out[k] = ((e & HPAGE_PFN_MASK) >> 12) + (vpn & 511)
        else:
            out[k] = (e & PFN_MASK) >> 12
    return out
