"""The TLB model: geometry, LRU, PCID tagging, and the flushes the kernel must do."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import pagelab as pl
from pagelab.hw.cpu import get_cpu_model
from pagelab.hw.mmu import leaf_pfns
from pagelab.hw.ptpool import PageTablePool
from pagelab.hw.tlb import ASID_SHIFT, HUGE_TAG, L1_2M, L1_4K, STLB, STLB_2M, Tlb, tlb_fill, tlb_find
from pagelab.stats import SimEvent

RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


def sim(m):
    return {e: int(m.counters.sim[e]) for e in SimEvent}


def test_skylake_geometry_from_the_optimization_manual():
    m = pl.Machine(ram="64MiB", cpu="skylake")
    # L1 4 KiB 16 sets x 4; L1 2 MiB 8 x 4; STLB 128 x 12, which 2 MiB translations share (same rows)
    assert m.tlb.geom.tolist() == [[0, 16, 4], [16, 8, 4], [24, 128, 12], [24, 128, 12]]


def test_where_each_model_keeps_2m_translations():
    # zen3: one fully associative 64-entry L1 for both sizes, one 2048-entry 8-way L2 for both sizes
    assert Tlb(get_cpu_model("zen3")).geom.tolist() == [[0, 1, 64], [0, 1, 64], [1, 256, 8], [1, 256, 8]]
    # nehalem: separate 2 MiB L1, and an STLB of 4 KiB translations only (no ways for 2 MiB ones)
    assert Tlb(get_cpu_model("nehalem")).geom.tolist() == [[0, 16, 4], [16, 8, 4], [24, 128, 4], [0, 1, 0]]


def test_a_level_without_2m_ways_finds_nothing():
    tlb = Tlb(get_cpu_model("nehalem"))
    key = HUGE_TAG | 5
    tlb.tag[:] = key  # even with the key in every slot of the arrays
    assert tlb_find(tlb.tag, tlb.geom, STLB_2M, key, 5)[1] == -1
    assert tlb_find(tlb.tag, tlb.geom, L1_2M, key, 5)[1] == 0


def test_shared_arrays_keep_4k_and_2m_entries_of_one_number_apart_and_invlpg_drops_both():
    tlb = Tlb(get_cpu_model("zen3"))
    va = 0x4000_0000
    k4, k2 = (1 << ASID_SHIFT) | (va >> 12), (1 << ASID_SHIFT) | HUGE_TAG | (va >> 21)
    for level, key, setkey, entry in ((L1_4K, k4, va >> 12, 4), (L1_2M, k2, va >> 21, 2),
                                      (STLB, k4, va >> 12, 4), (STLB_2M, k2, va >> 21, 2)):
        tlb_fill(tlb.tag, tlb.val, tlb.age, tlb.geom, level, key, setkey, entry, 1)
    assert tlb.entries(1) == 4  # two arrays, two entries each
    row, way = tlb_find(tlb.tag, tlb.geom, L1_2M, k2, va >> 21)
    assert tlb.val[row, way] == 2
    tlb.flush_page(1, va + 4096 * 300)  # INVLPG of another 4 KiB page inside the huge page: the 2 MiB entries go
    assert tlb.entries(1) == 2
    tlb.flush_page(1, va)
    assert tlb.entries(1) == 0


def test_repeated_access_hits_the_l1_after_one_walk():
    m = pl.Machine(ram="64MiB")
    p = m.spawn("hit")
    a = p.mmap(None, 4096, RW, ANON)
    p.store(a, 1)
    before = sim(m)
    p.access([a] * 100)
    after = sim(m)
    assert after[SimEvent.DTLB_4K_HIT] - before[SimEvent.DTLB_4K_HIT] == 100
    assert after[SimEvent.STLB_MISS] == before[SimEvent.STLB_MISS]


def test_lru_in_a_set_evicts_to_the_stlb():
    m = pl.Machine(ram="64MiB", cpu="skylake")
    p = m.spawn("lru")
    a = p.mmap(None, 64 * 16 * 4096, RW, ANON)
    same_set = [a + i * 16 * 4096 for i in range(5)]  # 16 sets: pages 16 apart share one
    p.access(same_set, write=True)
    before = sim(m)
    p.access(same_set * 3)  # 5 pages in a 4-way set, cyclic: every L1 lookup misses, the STLB hits
    after = sim(m)
    assert after[SimEvent.STLB_HIT] - before[SimEvent.STLB_HIT] == 15
    assert after[SimEvent.DTLB_4K_HIT] == before[SimEvent.DTLB_4K_HIT]
    assert after[SimEvent.STLB_MISS] == before[SimEvent.STLB_MISS]


def test_pcid_keeps_entries_across_switches_until_a_seventh_mm():
    m = pl.Machine(ram="128MiB")
    procs = [m.spawn(f"p{i}") for i in range(7)]
    addrs = []
    for p in procs[:6]:
        a = p.mmap(None, 4096, RW, ANON)
        p.store(a, 1)
        addrs.append(a)
    for p, a in zip(procs[:6], addrs, strict=True):
        before = sim(m)[SimEvent.DTLB_4K_HIT]
        p.load(a)
        assert sim(m)[SimEvent.DTLB_4K_HIT] == before + 1  # still cached under its PCID
    b = procs[6].mmap(None, 4096, RW, ANON)
    procs[6].store(b, 1)  # takes slot 0 round-robin: procs[0]'s entries are flushed
    assert sim(m)[SimEvent.TLB_ASID_RECYCLE] == 1
    before = sim(m)[SimEvent.STLB_MISS]
    procs[0].load(addrs[0])
    assert sim(m)[SimEvent.STLB_MISS] == before + 1


def test_mprotect_flushes_so_a_stale_writable_entry_cannot_be_used():
    m = pl.Machine(ram="64MiB")
    p = m.spawn("flush")
    a = p.mmap(None, 4096, RW, ANON)
    p.store(a, 1)
    p.store(a, 2)  # the TLB now holds a writable, dirty entry
    p.mprotect(a, 4096, pl.PROT_READ)
    assert p.load(a) == 2
    with pytest.raises(pl.SegmentationFault) as exc:
        p.store(a, 3)
    assert exc.value.si_code == "SEGV_ACCERR"


def test_munmap_of_more_than_33_pages_flushes_the_whole_mm():
    m = pl.Machine(ram="64MiB")
    p = m.spawn("flush")
    a = p.mmap(None, 64 * 4096, RW, ANON)
    p.touch(a, 64 * 4096, write=True)
    p.munmap(a, 8 * 4096)
    assert sim(m)[SimEvent.TLB_FLUSH_ONE] == 8
    p.munmap(a + 8 * 4096, 56 * 4096)
    assert sim(m)[SimEvent.TLB_FLUSH_MM] == 1
    assert m.tlb.entries(p.task.mm.asid) == 0
    with pytest.raises(pl.SegmentationFault):
        p.load(a + 40 * 4096)


def test_cycles_advance_the_clock_at_the_cpu_frequency():
    m = pl.Machine(ram="64MiB", cpu="tiny")
    p = m.spawn("clock")
    a = p.mmap(None, 4096, RW, ANON)
    p.store(a, 1)
    t0 = m.now_ns
    p.access([a] * 1000)
    assert m.now_ns - t0 == 1000  # tiny: 1 GHz, 1 cycle per L1 hit


def test_without_pcid_every_switch_flushes():
    m = pl.Machine(ram="128MiB", cpu="skylake-nopcid")
    p, q = m.spawn("p"), m.spawn("q")
    a = p.mmap(None, 4096, RW, ANON)
    b = q.mmap(None, 4096, RW, ANON)
    p.store(a, 1)
    q.store(b, 1)  # switch: p's entries are gone
    before = sim(m)[SimEvent.STLB_MISS]
    p.load(a)
    assert sim(m)[SimEvent.STLB_MISS] == before + 1
    before = sim(m)[SimEvent.DTLB_4K_HIT]
    p.load(a)  # no switch in between: a hit
    assert sim(m)[SimEvent.DTLB_4K_HIT] == before + 1


def _bench_tlb():
    path = Path(__file__).resolve().parents[3] / "bench" / "bench_tlb.py"
    spec = importlib.util.spec_from_file_location("bench_tlb", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_tlb"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_bench_tlb_maps_by_hand_and_2m_pages_remove_the_walks_that_4k_pages_take():
    """bench/bench_tlb.py's core on 1 GiB: every load translates to its frame, 4 KiB pages walk on almost
    every load (64 + 2048 entries for 262,144 pages), 2 MiB pages (512 of them) fit zen3's L2 DTLB."""
    b = _bench_tlb()
    pool = PageTablePool()
    cr3 = pool.alloc(0, 4)
    b.map_by_hand(pool, cr3, b.BASE_VA, 1 << 30, b.PAGE_4K, b.FIRST_PFN)
    b.map_by_hand(pool, cr3, b.BASE_VA + (1 << 30), 1 << 30, b.PAGE_2M, b.FIRST_PFN + (1 << 18))
    offs = b.random_offsets(2 << 30, 5000, seed=3)
    pfns = leaf_pfns(pool.tables, cr3, (b.BASE_VA + offs) >> 12)
    assert pfns.tolist() == (b.FIRST_PFN + (offs >> 12)).tolist()
    zen3 = get_cpu_model("zen3")
    small = b.run_hw(zen3, b.PAGE_4K, 1 << 30, 20_000, seed=1, warm=20_000)
    huge = b.run_hw(zen3, b.PAGE_2M, 1 << 30, 20_000, seed=1, warm=20_000)  # warm: every huge page touched
    assert small.loads == huge.loads == 20_000
    assert small.walks > 19_500 and huge.walks == 0 and huge.stlb_hits == huge.l1_misses
    assert small.walk_cycles == small.walks * zen3.walk_cycles
    assert small.ns > 3 * huge.ns
    with pytest.raises(ValueError):
        b.map_by_hand(pool, cr3, b.BASE_VA + 4096, 1 << 30, b.PAGE_4K, 0)


def test_bench_tlb_through_the_kernel_maps_thp_and_the_walks_go():
    b = _bench_tlb()
    zen3 = get_cpu_model("zen3")
    small = b.run_kernel(zen3, False, 64 << 20, 5000, seed=2)
    huge = b.run_kernel(zen3, True, 64 << 20, 5000, seed=2)
    assert (small.label, huge.label) == ("4 KiB", "THP")
    assert (small.anon_huge_kb, huge.anon_huge_kb) == (0, 64 << 10)  # AnonHugePages covers the whole mapping
    assert small.walks > 4000 and huge.walks == 0 and huge.loads == 5000
