"""The TLB model: geometry, LRU, PCID tagging, and the flushes the kernel must do."""

from __future__ import annotations

import pytest

import pagelab as pl
from pagelab.stats import SimEvent

RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


def sim(m):
    return {e: int(m.counters.sim[e]) for e in SimEvent}


def test_skylake_geometry_from_the_optimization_manual():
    m = pl.Machine(ram="64MiB", cpu="skylake")
    assert m.tlb.geom.tolist() == [[0, 16, 4], [16, 8, 4], [24, 128, 12]]


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
