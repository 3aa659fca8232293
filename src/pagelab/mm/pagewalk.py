"""The page-table walker: every kernel walk over a range of a process's page tables goes through here.

Mirrors mm/pagewalk.c and include/linux/pagewalk.h: walk_page_range() visits the VMAs of [start, end)
(pte_hole(depth -1) for the gaps between them), and in each walks PGD -> PUD -> PMD -> PTE, calling the
caller's ``MmWalkOps``: ``pud_entry``/``pmd_entry`` once per upper entry that exists, ``pte_entry`` once
per PTE, ``pte_hole`` for each empty upper entry (depth 0: PGD/P4D, 2: PUD, 3: PMD). A callback steers
the walk through ``walk.action`` (ACTION_SUBTREE: go down, ACTION_CONTINUE: skip the subtree,
ACTION_AGAIN: call me again for this entry) and stops it by returning non-zero, which the walk returns.

Upper levels whose entry is empty cost one step (or nothing, without pte_hole), so the cost follows the
page tables that exist, not the length of the range: a 64 TiB PROT_NONE mapping is 128 PGD steps.

A PMD entry is a table pointer or a PMD leaf (a 2 MiB page, ``pmd_trans_huge()``). As in Linux, each
``pmd_entry`` handles leaves itself; the walk descends to ``pte_entry`` only through a table, calling
split_huge_pmd() (mm/huge_memory.py) on a leaf first when walking a VMA.

Speed: the kernel's big walkers (smaps, mincore, zap, mprotect, MADV_FREE) are pmd_entry walkers that
loop over a PTE table themselves; here they read the table's PTEs with one numpy slice (get_ptes() in
mm/pgtable.py). ``pte_entry`` runs Python once per page: for small ranges, tests and teaching.

Entry "pointers": a callback gets the pool row of the table holding its entry (PUD table for pud_entry,
PMD table for pmd_entry, PTE table for pte_entry) plus ``addr``, which picks the entry, as in
pmdp_get(m, pmd, addr); the same convention as ``VmFault.pmd``.

Simplified: no locking (walk_lock), no hugetlb VMAs (not modelled), no install_pte, no PUD leaves (1 GiB
pages are not modelled: one is a KernelBug), no hugepd.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..arch.x86.pgtable import _PAGE_PSE, PGDIR_SHIFT, PMD_SHIFT, PUD_SHIFT
from ..constants import PAGE_SIZE
from ..errors import KernelBug, kernel_bug
from .huge_memory import split_huge_pmd
from .pgtable import entries_in_use, entry_row, pgdp_get, pmdp_get, pte_offset_map, pudp_get
from .types import Vma, VmFlag
from .vma import find_vma

if TYPE_CHECKING:
    from ..machine import Machine
    from .types import MmStruct


class PageWalkAction(enum.IntEnum):
    """Mirrors enum page_walk_action: what the walk does after a pud_entry/pmd_entry callback."""

    ACTION_SUBTREE = 0  # descend to the next level (splitting a huge PMD first, on a VMA walk)
    ACTION_CONTINUE = 1  # go on with the next entry at this level, skipping the subtree
    ACTION_AGAIN = 2  # call the callback again for this entry


ACTION_SUBTREE = PageWalkAction.ACTION_SUBTREE
ACTION_CONTINUE = PageWalkAction.ACTION_CONTINUE
ACTION_AGAIN = PageWalkAction.ACTION_AGAIN

# pte_hole depths (real_depth() with the P4D folded): the level whose entry is empty.
DEPTH_NO_VMA = -1
DEPTH_PGD = 0
DEPTH_PUD = 2
DEPTH_PMD = 3

_AGAIN_LIMIT = 64  # a callback asking ACTION_AGAIN more often than this for one entry is a bug (no hang)

EntryFn = Callable[[int, int, int, "MmWalk"], int]  # (table row, addr, next, walk) -> 0 or stop value
HoleFn = Callable[[int, int, int, "MmWalk"], int]  # (addr, next, depth, walk) -> 0 or stop value
RangeFn = Callable[[int, int, "MmWalk"], int]  # (start, end, walk) -> 0, >0 skip the VMA, <0 error


@dataclass(frozen=True, slots=True)
class MmWalkOps:
    """Mirrors struct mm_walk_ops: the callbacks of one kind of walk (define it once, at module level).

    Each entry callback is ``fn(row, addr, next, walk) -> int`` over [addr, next); ``pte_hole`` is
    ``fn(addr, next, depth, walk)``; ``test_walk``/``pre_vma`` are ``fn(start, end, walk)``, ``post_vma``
    is ``fn(walk)``. Return 0 to go on; anything else ends the walk with that value.
    """

    pgd_entry: EntryFn | None = None
    pud_entry: EntryFn | None = None
    pmd_entry: EntryFn | None = None
    pte_entry: EntryFn | None = None
    pte_hole: HoleFn | None = None
    test_walk: RangeFn | None = None
    pre_vma: RangeFn | None = None
    post_vma: Callable[[MmWalk], None] | None = None


@dataclass(slots=True)
class MmWalk:
    """Mirrors struct mm_walk: the state a callback sees. ``vma`` is None outside VMAs and on a no-VMA walk."""

    ops: MmWalkOps
    mm: MmStruct
    machine: Machine
    vma: Vma | None = None
    action: PageWalkAction = ACTION_SUBTREE
    no_vma: bool = False
    private: Any = None


def walk_vma(walk: MmWalk) -> Vma:
    """``walk.vma`` for a callback of a VMA walk (walk_page_range_vma(), walk_page_vma()), where it is
    never None; KernelBug otherwise."""
    if walk.vma is None:
        raise KernelBug("page walk: a VMA callback without a VMA")
    return walk.vma


def walk_page_range(mm: MmStruct, start: int, end: int, ops: MmWalkOps, private: Any = None) -> int:
    """Mirrors walk_page_range(): walk [start, end) VMA by VMA; gaps go to pte_hole with depth -1.

    ``test_walk`` (or, without one, walk_page_test()'s VM_PFNMAP rule) may skip a VMA. Returns 0, or
    the first non-zero value a callback returned. ``start >= end`` is -EINVAL, as in the kernel.
    """
    if start >= end:
        return -errno.EINVAL
    walk = MmWalk(ops=ops, mm=mm, machine=mm.machine, private=private)
    vma = find_vma(mm, start)
    while True:
        if vma is None or start < vma.vm_start:  # after the last VMA, or in a gap before ``vma``
            walk.vma = None
            nxt = end if vma is None else min(end, vma.vm_start)
            err = ops.pte_hole(start, nxt, DEPTH_NO_VMA, walk) if ops.pte_hole else 0
        else:
            walk.vma = vma
            nxt = min(end, vma.vm_end)
            vma = find_vma(mm, vma.vm_end)
            err = _walk_page_test(start, nxt, walk)
            if err > 0:
                err = 0
            elif err == 0:
                err = _walk_page_range(start, nxt, walk)
        if err:
            return err
        start = nxt
        if start >= end:
            return 0


def walk_page_range_vma(vma: Vma, start: int, end: int, ops: MmWalkOps, private: Any = None) -> int:
    """Mirrors walk_page_range_vma(): walk [start, end) inside one VMA (-EINVAL if it leaves it)."""
    if start >= end or start < vma.vm_start or end > vma.vm_end:
        return -errno.EINVAL
    walk = MmWalk(ops=ops, mm=vma.mm, machine=vma.mm.machine, vma=vma, private=private)
    err = _walk_page_test(start, end, walk)
    if err:
        return 0 if err > 0 else err
    return _walk_page_range(start, end, walk)


def walk_page_vma(vma: Vma, ops: MmWalkOps, private: Any = None) -> int:
    """Mirrors walk_page_vma(): walk the whole of one VMA."""
    return walk_page_range_vma(vma, vma.vm_start, vma.vm_end, ops, private)


def walk_page_range_novma(mm: MmStruct, start: int, end: int, ops: MmWalkOps, private: Any = None) -> int:
    """Mirrors walk_page_range_novma(): walk the page tables of [start, end) whether VMAs cover them or
    not (``walk.vma`` stays None; a PMD leaf goes to pmd_entry and is never split). For checkers."""
    if start >= end:
        return -errno.EINVAL
    walk = MmWalk(ops=ops, mm=mm, machine=mm.machine, no_vma=True, private=private)
    return _walk_pgd_range(start, end, walk)


def _walk_page_test(start: int, end: int, walk: MmWalk) -> int:
    """Mirrors walk_page_test(): the caller's test_walk, else skip VM_PFNMAP VMAs (reporting a hole)."""
    ops = walk.ops
    if ops.test_walk is not None:
        return ops.test_walk(start, end, walk)
    if walk.vma is not None and walk.vma.vm_flags & VmFlag.PFNMAP:
        err = ops.pte_hole(start, end, DEPTH_NO_VMA, walk) if ops.pte_hole else 1
        return err if err else 1
    return 0


def _walk_page_range(start: int, end: int, walk: MmWalk) -> int:
    """Mirrors __walk_page_range(): pre_vma, the table walk, post_vma."""
    ops = walk.ops
    if ops.pre_vma is not None:
        err = ops.pre_vma(start, end, walk)
        if err:
            return err
    err = _walk_pgd_range(start, end, walk)
    if ops.post_vma is not None:
        ops.post_vma(walk)
    return err


def _entries(m: Machine, row: int, addr: int, end: int, shift: int, dense: bool) -> Iterator[tuple[int, int]]:
    """(addr, next) of each entry of table ``row`` that [addr, end) touches: all of them when ``dense``
    (someone wants the holes), else only the non-empty ones, found with one numpy scan of the table."""
    span = 1 << shift
    base = addr & ~((span << 9) - 1)
    first, last = (addr - base) >> shift, (end - 1 - base) >> shift
    kernel_bug(last > 511, f"page walk: [{addr:#x}, {end:#x}) leaves the table")
    idx: Iterable[int]
    if dense:
        idx = range(first, last + 1)
    else:
        idx = entries_in_use(m, row, first, last)
    for i in idx:
        lo = base + (i << shift)
        yield max(addr, lo), min(end, lo + span)


def _walk_pgd_range(addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors walk_pgd_range() + walk_p4d_range() (the P4D is folded into the PGD on 4-level x86)."""
    ops, m = walk.ops, walk.machine
    pgd = walk.mm.pgd
    lower = ops.pud_entry or ops.pmd_entry or ops.pte_entry
    for a, nxt in _entries(m, pgd, addr, end, PGDIR_SHIFT, ops.pte_hole is not None):
        e = pgdp_get(m, pgd, a)
        if e == 0:  # pgd_none() / p4d_none()
            err = ops.pte_hole(a, nxt, DEPTH_PGD, walk) if ops.pte_hole else 0
        else:
            err = ops.pgd_entry(pgd, a, nxt, walk) if ops.pgd_entry else 0
            if not err and lower:
                err = _walk_pud_range(entry_row(e), a, nxt, walk)
        if err:
            return err
    return 0


def _walk_pud_range(pud: int, addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors walk_pud_range(): pud_entry and its action for each PUD entry, then the PMD level."""
    ops = walk.ops
    for a, nxt in _entries(walk.machine, pud, addr, end, PUD_SHIFT, ops.pte_hole is not None):
        err = _again(_pud_entry, pud, a, nxt, walk)
        if err:
            return err
    return 0


def _pud_entry(pud: int, a: int, nxt: int, walk: MmWalk) -> int:
    """One turn of walk_pud_range()'s loop body for the entry at ``a`` (its ``again:`` label)."""
    ops = walk.ops
    e = pudp_get(walk.machine, pud, a)
    if e == 0:  # pud_none()
        return ops.pte_hole(a, nxt, DEPTH_PUD, walk) if ops.pte_hole else 0
    kernel_bug(bool(e & _PAGE_PSE), f"walk_pud_range: a PUD leaf at {a:#x} (1 GiB pages are not modelled)")
    walk.action = ACTION_SUBTREE
    err = ops.pud_entry(pud, a, nxt, walk) if ops.pud_entry else 0
    if err or walk.action != ACTION_SUBTREE or not (ops.pmd_entry or ops.pte_entry):
        return err  # ACTION_AGAIN is seen by _again()
    return _walk_pmd_range(entry_row(e), a, nxt, walk)


def _walk_pmd_range(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors walk_pmd_range(): pmd_entry and its action for each PMD entry, then the PTE level."""
    ops = walk.ops
    for a, nxt in _entries(walk.machine, pmd, addr, end, PMD_SHIFT, ops.pte_hole is not None):
        err = _again(_pmd_entry, pmd, a, nxt, walk)
        if err:
            return err
    return 0


def _pmd_entry(pmd: int, a: int, nxt: int, walk: MmWalk) -> int:
    """One turn of walk_pmd_range()'s loop body: pmd_entry (which must know PMD leaves); then, only if
    there is a pte_entry, split a leaf (VMA walks; a no-VMA walk skips it) and walk the PTE table."""
    ops, m = walk.ops, walk.machine
    e = pmdp_get(m, pmd, a)
    if e == 0:  # pmd_none()
        return ops.pte_hole(a, nxt, DEPTH_PMD, walk) if ops.pte_hole else 0
    walk.action = ACTION_SUBTREE
    err = ops.pmd_entry(pmd, a, nxt, walk) if ops.pmd_entry else 0
    if err or walk.action != ACTION_SUBTREE or ops.pte_entry is None:
        return err
    if e & _PAGE_PSE:
        if walk.vma is None:
            return 0  # nothing to do below a leaf without a VMA
        split_huge_pmd(m, walk.vma, pmd, a)
    return _walk_pte_range(ops.pte_entry, pmd, a, nxt, walk)


def _again(body: EntryFn, row: int, a: int, nxt: int, walk: MmWalk) -> int:
    """Run ``body`` for one entry until it leaves ``walk.action`` other than ACTION_AGAIN (the kernel's
    ``goto again``); a callback that never does is a KernelBug, not a hang."""
    for _ in range(_AGAIN_LIMIT):
        walk.action = ACTION_SUBTREE
        err = body(row, a, nxt, walk)
        if err or walk.action != ACTION_AGAIN:
            return err
    kernel_bug(True, f"page walk: ACTION_AGAIN {_AGAIN_LIMIT} times at {a:#x}")
    return 0


def _walk_pte_range(pte_entry: EntryFn, pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors walk_pte_range() + walk_pte_range_inner(): pte_entry for every PTE of [addr, end), empty
    ones included. No PTE table there (still a leaf) asks the PMD level to try again (ACTION_AGAIN)."""
    row = pte_offset_map(walk.machine, pmd, addr)
    if not row:
        walk.action = ACTION_AGAIN
        return 0
    for a in range(addr, end, PAGE_SIZE):
        err = pte_entry(row, a, a + PAGE_SIZE, walk)
        if err:
            return err
    return 0
