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
