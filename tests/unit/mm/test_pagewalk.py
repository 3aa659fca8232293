"""The one page-table walker (mm/pagewalk.py): what it visits, the holes it reports, actions, PMD leaves.

The tests build real page tables (mmap + touch at addresses that straddle 2 MiB, 1 GiB and 512 GiB
boundaries) and compare what the walker reports with the tables read directly from the pool.
"""

from __future__ import annotations

import errno
import random
import time

import numpy as np
import pytest

import pagelab as pl
from pagelab.arch.x86.pgtable import PGDIR_SHIFT, PMD_SHIFT, PTE_PFN_MASK, PUD_SHIFT
from pagelab.mm.pagewalk import (
    ACTION_AGAIN,
    ACTION_CONTINUE,
    DEPTH_NO_VMA,
    DEPTH_PGD,
    DEPTH_PMD,
    DEPTH_PUD,
    MmWalkOps,
    walk_page_range,
    walk_page_range_novma,
    walk_page_range_vma,
    walk_page_vma,
)
from pagelab.mm.pgtable import ptep_get

P = 4096
MiB2 = 1 << PMD_SHIFT
GiB = 1 << PUD_SHIFT
GiB512 = 1 << PGDIR_SHIFT
RW = pl.PROT_READ | pl.PROT_WRITE
FIXED = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS | pl.MAP_FIXED


def _row(m, e):
    return (int(e) & PTE_PFN_MASK) >> 12


def _levels(m, mm, addr):
    """(PGD entry, PUD entry, PMD entry) covering ``addr``, 0 below the first empty one, read raw."""
    t = m.ptpool.tables
    g = int(t[mm.pgd, (addr >> PGDIR_SHIFT) & 511])
    u = int(t[_row(m, g), (addr >> PUD_SHIFT) & 511]) if g else 0
    d = int(t[_row(m, u), (addr >> PMD_SHIFT) & 511]) if u else 0
    return g, u, d


@pytest.fixture
def layout():
    """A process whose tables straddle the 512 GiB, 1 GiB and 2 MiB boundaries, sparsely filled."""
    m = pl.Machine(ram="256MiB", seed=3)
    p = m.spawn("walked")
    regions = [(GiB512 - 6 * MiB2, 12 * MiB2), (3 * GiB - MiB2 - 8 * P, 2 * MiB2 + 16 * P), (7 * GiB, 64 * P)]
    for start, length in regions:
        p.mmap(start, length, RW, FIXED)
    touched = [GiB512 - 5 * MiB2 + 3 * P, GiB512 - P, GiB512, GiB512 + 4 * MiB2 + 7 * P,
               3 * GiB - 8 * P, 3 * GiB - P, 3 * GiB, 3 * GiB + MiB2 + 5 * P, 7 * GiB + 63 * P]
    for a in touched:
        p.store(a, 1)
    return m, p, regions, touched


def _recorder(events, *, pte=False, hole=True):
    def pmd_entry(pmd, addr, end, walk):
        events.append(("pmd", addr, end, walk.vma))
        return 0

    def pte_entry(row, addr, end, walk):
        events.append(("pte", addr, end, ptep_get(walk.machine, row, addr)))
        return 0

    def pte_hole(addr, end, depth, walk):
        events.append(("hole", addr, end, depth))
        return 0

    return MmWalkOps(pmd_entry=pmd_entry, pte_entry=pte_entry if pte else None, pte_hole=pte_hole if hole else None)


def test_pmd_entries_and_holes_tile_the_range_and_name_the_empty_level(layout):
    m, p, regions, _ = layout
    mm = p.task.mm
    rnd = random.Random(5)
    lo, hi = GiB512 - 7 * MiB2, GiB512 + 7 * MiB2
    cuts = [(lo, hi), (3 * GiB - 2 * MiB2, 3 * GiB + 2 * MiB2), (0, 1 << 47)]
    cuts += [tuple(sorted(rnd.sample(range(0, 8 * GiB, P), 2))) for _ in range(40)]
    for start, end in cuts:
        events = []
        assert walk_page_range_novma(mm, start, end, _recorder(events)) == 0
        assert events[0][1] == start and events[-1][2] == end
        for (_, _, e1, _), (_, s2, _, _) in zip(events, events[1:], strict=False):
            assert e1 == s2  # in address order, no gap, no overlap
        for kind, a, e, extra in events:
            g, u, d = _levels(m, mm, a)
            if kind == "pmd":
                assert d != 0 and a >> PMD_SHIFT == (e - 1) >> PMD_SHIFT
            else:
                level = {DEPTH_PGD: (g,), DEPTH_PUD: (u,), DEPTH_PMD: (d,)}[extra]
                assert level == (0,) and (extra == DEPTH_PGD or (g if extra == DEPTH_PUD else u))
                span = {DEPTH_PGD: GiB512, DEPTH_PUD: GiB, DEPTH_PMD: MiB2}[extra]
                assert a // span == (e - 1) // span  # one entry's worth at most


def test_pte_entry_visits_every_page_of_existing_tables(layout):
    m, p, _, touched = layout
    start, end = GiB512 - 3 * P, GiB512 + 3 * P  # crosses the 512 GiB (and so 1 GiB, 2 MiB) boundary
    events = []
    walk_page_range(p.task.mm, start, end, _recorder(events, pte=True, hole=False))
    ptes = [(a, e, v) for kind, a, e, v in events if kind == "pte"]
    assert [a for a, _, _ in ptes] == list(range(start, end, P))
    assert all(e == a + P for a, e, _ in ptes)
    assert {a for a, _, v in ptes if v} == {a for a in touched if start <= a < end}


def test_vma_gaps_are_holes_of_depth_minus_one(layout):
    m, p, regions, _ = layout
    start, end = 3 * GiB - MiB2 - 16 * P, 7 * GiB + 128 * P
    events = []
    walk_page_range(p.task.mm, start, end, _recorder(events))
    gaps = [(a, e) for kind, a, e, d in events if kind == "hole" and d == DEPTH_NO_VMA]
    (b, blen), (c, clen) = regions[1], regions[2]
    assert gaps == [(start, b), (b + blen, c), (c + clen, end)]
    vmas = {id(v) for kind, _, _, v in events if kind == "pmd"}
    assert None not in vmas and len(vmas) == 2


def test_actions_continue_again_and_a_stop_value(layout):
    m, p, _, _ = layout
    mm = p.task.mm
    seen = []

    def pmd_entry(pmd, addr, end, walk):
        seen.append(("pmd", addr))
        if addr == 3 * GiB and seen.count(("pmd", addr)) == 1:
            walk.action = ACTION_AGAIN  # once: called again for the same entry
        elif addr >= 3 * GiB + MiB2:
            walk.action = ACTION_CONTINUE  # skip its PTEs
        return 0

    def pte_entry(row, addr, end, walk):
        seen.append(("pte", addr))
        return 0

    ops = MmWalkOps(pmd_entry=pmd_entry, pte_entry=pte_entry)
    walk_page_range(mm, 3 * GiB - 2 * P, 3 * GiB + MiB2 + 8 * P, ops)
    assert seen.count(("pmd", 3 * GiB)) == 2
    ptes = [a for k, a in seen if k == "pte"]
    assert ptes == list(range(3 * GiB - 2 * P, 3 * GiB + MiB2, P))

    def stop(row, addr, end, walk):
        return 7 if addr == 3 * GiB + 5 * P else 0

    assert walk_page_range(mm, 3 * GiB - 2 * P, 3 * GiB + MiB2, MmWalkOps(pte_entry=stop)) == 7

    def forever(pmd, addr, end, walk):
        walk.action = ACTION_AGAIN
        return 0

    with pytest.raises(pl.KernelBug, match="ACTION_AGAIN"):
        walk_page_range(mm, 3 * GiB, 3 * GiB + P, MmWalkOps(pmd_entry=forever))


def test_pud_entry_continue_skips_the_levels_below(layout):
    m, p, _, _ = layout
    calls = []

    def pud_entry(pud, addr, end, walk):
        calls.append(("pud", addr, end))
        walk.action = ACTION_CONTINUE if addr < 3 * GiB else walk.action
        return 0

    def pmd_entry(pmd, addr, end, walk):
        calls.append(("pmd", addr, end))
        return 0

    ops = MmWalkOps(pud_entry=pud_entry, pmd_entry=pmd_entry)
    walk_page_range_novma(p.task.mm, 3 * GiB - 2 * MiB2, 3 * GiB + 2 * MiB2, ops)
    assert calls == [("pud", 3 * GiB - 2 * MiB2, 3 * GiB), ("pud", 3 * GiB, 3 * GiB + 2 * MiB2),
                     ("pmd", 3 * GiB, 3 * GiB + MiB2), ("pmd", 3 * GiB + MiB2, 3 * GiB + 2 * MiB2)]


def test_test_walk_pre_and_post_vma_and_pfnmap(layout):
    m, p, regions, _ = layout
    mm = p.task.mm
    log = []
    skip_first = MmWalkOps(
        test_walk=lambda s, e, w: 1 if w.vma.vm_start == regions[1][0] else 0,
        pre_vma=lambda s, e, w: log.append(("pre", s, e)) or 0,
        post_vma=lambda w: log.append(("post", w.vma.vm_start)),
        pmd_entry=lambda pmd, a, e, w: log.append(("pmd", a)) or 0,
    )
    walk_page_range(mm, regions[1][0], regions[2][0] + regions[2][1], skip_first)
    assert log[0] == ("pre", regions[2][0], regions[2][0] + regions[2][1]) and log[-1] == ("post", regions[2][0])
    assert all(a >= regions[2][0] for k, a, *_ in log if k == "pmd")
    assert walk_page_range(mm, 0, 1 << 47, MmWalkOps(test_walk=lambda s, e, w: -errno.EIO)) == -errno.EIO
    vma = next(v for v in mm.vmas if v.vm_start == regions[2][0])
    vma.vm_flags |= pl.mm.types.VmFlag.PFNMAP  # walk_page_test(): skipped, reported as a hole if asked
    events = []
    walk_page_vma(vma, _recorder(events))
    assert events == [("hole", vma.vm_start, vma.vm_end, DEPTH_NO_VMA)]


def test_bad_ranges_are_einval(layout):
    m, p, regions, _ = layout
    mm = p.task.mm
    vma = next(iter(mm.vmas))
    ops = MmWalkOps()
    assert walk_page_range(mm, 5 * P, 5 * P, ops) == -errno.EINVAL
    assert walk_page_range_vma(vma, vma.vm_start - P, vma.vm_end, ops) == -errno.EINVAL
    assert walk_page_range_vma(vma, vma.vm_start, vma.vm_end + P, ops) == -errno.EINVAL
    assert walk_page_range_novma(mm, 0, 0, ops) == -errno.EINVAL


def test_a_64_tib_prot_none_mapping_costs_its_tables_not_its_length():
    m = pl.Machine(ram="256MiB", seed=0)
    p = m.spawn("sparse")
    length = 64 << 40
    a = p.mmap(None, length, pl.PROT_NONE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS | pl.MAP_NORESERVE)
    mid = a + length // 2 + 5 * MiB2
    p.mprotect(mid, 4 * P, RW)
    p.touch(mid, 4 * P, write=True)
    t0 = time.perf_counter()
    holes = []
    ops = MmWalkOps(pmd_entry=lambda pmd, s, e, w: 0, pte_hole=lambda s, e, d, w: holes.append(d) or 0)
    walk_page_range(p.task.mm, a, a + length, ops)
    # one hole per empty entry of the tables that exist: 128 or 129 PGD entries, then one populated path
    assert 127 <= holes.count(DEPTH_PGD) <= 129 and holes.count(DEPTH_PUD) == 511
    assert holes.count(DEPTH_PMD) == 511 and len(holes) == holes.count(DEPTH_PGD) + 1022
    rss = [line.split()[1] for line in m.read(f"/proc/{p.pid}/smaps").splitlines() if line.startswith("Rss:")]
    assert sorted(rss) == ["0", "0", "16"]
    assert p.mincore(mid - GiB, 2 * GiB).sum() == 4
    p.mprotect(a, length, pl.PROT_READ)
    p.madvise(a, length, pl.MADV_DONTNEED)
    rss = [line.split()[1] for line in m.read(f"/proc/{p.pid}/smaps").splitlines() if line.startswith("Rss:")]
    assert set(rss) == {"0"} and p.mincore(mid, 4 * P).sum() == 0
    p.munmap(a, length)
    assert m.ptpool.nr_tables == 1  # the PGD
    assert time.perf_counter() - t0 < 5.0  # a walk per page would take hours


def test_novma_walk_sees_every_table_of_the_process(layout):
    m, p, _, touched = layout
    found = []

    def pmd_entry(pmd, addr, end, walk):
        row = _row(m, m.ptpool.tables[pmd, (addr >> PMD_SHIFT) & 511])
        idx = np.flatnonzero(m.ptpool.tables[row])
        found.extend(((addr & ~(MiB2 - 1)) + (i << 12)) for i in idx.tolist())
        return 0

    walk_page_range_novma(p.task.mm, 0, 1 << 48, MmWalkOps(pmd_entry=pmd_entry))
    assert sorted(found) == sorted(touched)


# --- PMD leaves: made by THP faults (do_huge_pmd_anonymous_page()) --------------------------------------

@pytest.fixture
def thp():
    """A process with an 8 MiB MADV_HUGEPAGE mapping: a THP in its second 2 MiB, and one 4 KiB page after
    it (faulted while THP was off, so that 2 MiB has a PTE table)."""
    from pagelab.mm.debug import check_machine

    m = pl.Machine(ram="64MiB", seed=2)
    p = m.spawn("huge")
    a = p.mmap(None, 4 * MiB2, RW, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    p.madvise(a, 4 * MiB2, pl.MADV_HUGEPAGE)
    huge = a + MiB2
    with m.settings.override({"/sys/kernel/mm/transparent_hugepage/enabled": "never"}):
        p.store(huge + MiB2 + 5 * P, 7)
    p.store(huge, 1)  # do_huge_pmd_anonymous_page()
    assert m.vmstat()["thp_fault_alloc"] == 1
    check_machine(m)
    return m, p, a, huge


def _smaps(m, p, start):
    from pagelab.observe.parse import parse_smaps

    return next(v for v in parse_smaps(m.read(f"/proc/{p.pid}/smaps")) if v["start"] == start)


def test_readers_of_a_pmd_leaf_answer_for_the_whole_2_mib(thp):
    from pagelab.mm.debug import check_machine

    m, p, a, huge = thp
    vec = p.mincore(a, 4 * MiB2)
    first = (huge - a) // P
    assert vec[first:first + 512].all() and vec.sum() == 513  # mincore_pte_range(): resident whole
    s = _smaps(m, p, a)
    assert s["Rss"] == 2052 and s["AnonHugePages"] == 2048 and s["Anonymous"] == 2052
    assert s["Private_Dirty"] == 2052 and s["Pss"] == 2052
    rollup = m.read(f"/proc/{p.pid}/smaps_rollup")
    assert "AnonHugePages:      2048 kB" in rollup
    before = p.rusage().ru_minflt
    p.madvise(huge, MiB2, pl.MADV_POPULATE_WRITE)  # GUP finds the huge page: nothing to fault
    p.madvise(a, 4 * MiB2, pl.MADV_POPULATE_READ)
    assert p.rusage().ru_minflt == before + 1 + 511 + 1  # huge zero page, 4 KiB zero pages, huge zero page
    check_machine(m)


def test_check_machine_counts_a_pmd_leaf(thp):
    from pagelab.mm.debug import check_machine, scan_page_tables
    from pagelab.stats import MM_ANONPAGES

    m, p, a, huge = thp
    scan = scan_page_tables(m, p.task.mm)
    assert [addr for _, addr in scan.leaves] == [huge] and len(scan.tables) == 1
    head = (scan.leaves[0][0] & PTE_PFN_MASK) >> 12
    for corrupt, restore in [
        (lambda: p.task.mm.rss.__setitem__(MM_ANONPAGES, p.task.mm.rss[MM_ANONPAGES] - 1),
         lambda: p.task.mm.rss.__setitem__(MM_ANONPAGES, p.task.mm.rss[MM_ANONPAGES] + 1)),
        (lambda: m.frames.entire_mapcount.__setitem__(head, 0),
         lambda: m.frames.entire_mapcount.__setitem__(head, 1)),
        (lambda: setattr(p.task.mm, "nr_ptes", p.task.mm.nr_ptes - 1),
         lambda: setattr(p.task.mm, "nr_ptes", p.task.mm.nr_ptes + 1)),
        (lambda: m.frames.mapcount.__setitem__(head + 3, 1),
         lambda: m.frames.mapcount.__setitem__(head + 3, 0)),
    ]:
        corrupt()
        with pytest.raises(pl.KernelBug):
            check_machine(m)
        restore()
        check_machine(m)


def test_a_pmd_leaf_outside_or_across_vmas_is_a_kernel_bug(thp):
    from pagelab.mm.debug import check_vmas
    from pagelab.mm.pgtable import pmd_alloc, pmdp_get, pmdp_huge_get_and_clear, set_pmd_at
    from pagelab.mm.vma import vma_set_range

    m, p, a, huge = thp
    mm = p.task.mm
    entry = pmdp_get(m, pmd_alloc(m, mm, huge), huge)
    stray = (a & ~(MiB2 - 1)) - 4 * MiB2  # below the mapping: no VMA there
    set_pmd_at(m, pmd_alloc(m, mm, stray), stray, entry)
    with pytest.raises(pl.KernelBug, match="outside every VMA"):
        check_vmas(m, mm, p.pid)
    pmdp_huge_get_and_clear(m, pmd_alloc(m, mm, stray), stray)
    vma = next(v for v in mm.vmas if v.vm_start <= huge < v.vm_end)
    cut = huge + MiB2 // 2
    removed = (vma.vm_end - cut) // P
    vma_set_range(mm, vma, vma.vm_start, cut)  # the VMA now ends inside the leaf
    mm.total_vm -= removed
    mm.data_vm -= removed
    with pytest.raises(pl.KernelBug, match="outside every VMA|straddles"):
        check_vmas(m, mm, p.pid)


def test_the_huge_zero_page_is_resident_but_not_counted():
    m = pl.Machine(ram="64MiB", seed=2)
    p = m.spawn("zero")
    a = p.mmap(None, 2 * MiB2, RW, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    p.madvise(a, 2 * MiB2, pl.MADV_HUGEPAGE)
    huge = a + MiB2
    p.load(huge)  # a read: the huge zero page
    assert m.vmstat()["thp_zero_page_alloc"] == 1
    assert p.mincore(huge, MiB2).all()
    s = _smaps(m, p, a)
    assert s["Rss"] == 0 and s["AnonHugePages"] == 0  # vm_normal_page_pmd(): no page


@pytest.mark.parametrize("what, op", [
    ("thp_split_pmd=0", lambda p, h: p.munmap(h, MiB2)),
    ("thp_split_pmd=1", lambda p, h: p.munmap(h + MiB2 // 2, MiB2 // 2)),
    ("thp_split_pmd=0", lambda p, h: p.madvise(h, MiB2, pl.MADV_DONTNEED)),
    ("thp_split_pmd=1", lambda p, h: p.madvise(h, 8 * P, pl.MADV_DONTNEED)),
    ("thp_split_pmd=0", lambda p, h: p.mprotect(h, MiB2, pl.PROT_READ)),
    ("thp_split_pmd=1", lambda p, h: p.mprotect(h + P, P, pl.PROT_READ)),
    ("thp_split_pmd=0", lambda p, h: p.madvise(h, MiB2, pl.MADV_FREE)),
    ("thp_split_pmd=1", lambda p, h: p.madvise(h, P, pl.MADV_FREE)),
    ("thp_split_pmd=0", lambda p, h: p.exit()),
    ("thp_split_pmd=1", lambda p, h: walk_page_range(p.task.mm, h, h + P, MmWalkOps(pte_entry=lambda *a: 0))),
])
def test_walks_that_change_a_pmd_leaf_use_the_thp_entry_points(thp, what, op):
    """Whole-PMD changes go to the huge_memory.py function for a whole PMD (no split), partial ones to
    split_huge_pmd(): none follows the leaf's PFN as a table, and the books stay right."""
    from pagelab.mm.debug import check_machine, check_rmap

    m, p, a, huge = thp
    op(p, huge)
    assert f"thp_split_pmd={m.vmstat()['thp_split_pmd']}" == what
    check_machine(m)
    check_rmap(m)


def test_no_page_table_helper_follows_a_pmd_leaf(thp):
    from pagelab.mm.pgtable import pmd_offset, pte_alloc, pte_offset, pte_offset_map, pte_table

    m, p, a, huge = thp
    mm = p.task.mm
    pmd = pmd_offset(m, mm, huge)
    assert pte_offset_map(m, pmd, huge) == 0  # the kernel's NULL: a leaf, not a table
    for follow in (lambda: pte_offset(m, pmd, huge), lambda: pte_table(m, mm, huge + P),
                   lambda: pte_alloc(m, mm, pmd, huge)):
        with pytest.raises(pl.KernelBug, match="huge leaf"):
            follow()


@pytest.mark.parametrize("mapped_by", ["pmd", "ptes"])
@pytest.mark.parametrize("off, length, split, lazyfree", [
    (MiB2 // 2, MiB2 // 4, 1, 124),  # part of the folio: split_folio(), then 128 small folios (4 left in the batch)
    (0, MiB2, 0, 512),  # the whole folio: marked once, and never held in the per-CPU batch
    (P, 2 * P, 1, 0),  # two pages: split, both still in the batch
])
def test_madv_free_of_a_thp_as_measured_on_6_18(mapped_by, off, length, split, lazyfree):
    """MADV_FREE over a THP mapped by its PMD or (after a PMD split) by PTEs, with non-zero data (a split
    maps zero-filled pages to the zero page instead): thp_split_page, thp_deferred_split_page (a PTE-mapped
    folio is partially mapped while split_folio() unmaps it), pglazyfree and smaps, as on the host."""
    from pagelab.mm.debug import check_machine, check_rmap

    m = pl.Machine(ram="64MiB", seed=4)
    p = m.spawn("free")
    a = p.mmap(None, 4 * MiB2, RW, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    huge = (a + MiB2 - 1) & ~(MiB2 - 1)
    p.madvise(huge, MiB2, pl.MADV_HUGEPAGE)
    for page in range(huge, huge + MiB2, P):
        p.store(page, 1)
    if mapped_by == "ptes":
        p.mprotect(huge + P, P, pl.PROT_READ)  # splits the PMD; the folio stays large
        p.mprotect(huge + P, P, RW)
    before = m.vmstat()
    p.madvise(huge + off, length, pl.MADV_FREE)
    after = m.vmstat()
    got = {k: after[k] - before[k] for k in ("thp_split_page", "thp_deferred_split_page", "pglazyfree")}
    assert got == {"thp_split_page": split, "thp_deferred_split_page": split if mapped_by == "ptes" else 0,
                   "pglazyfree": lazyfree}
    s = _smaps(m, p, a)
    assert s["Rss"] == 2048 and s["LazyFree"] == 4 * lazyfree
    assert s["AnonHugePages"] == (2048 if mapped_by == "pmd" and not split else 0)
    check_machine(m)
    check_rmap(m)
