"""The MMU loop: clock deadline, no-JIT runs, and (on page tables built by hand) 4 KiB and 2 MiB translations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.profiles import scale

import pagelab as pl
from pagelab.hw.cpu import CpuModel, TlbLevel, TlbShare, get_cpu_model
from pagelab.hw.mmu import (
    LEVEL_PMD,
    LEVEL_PTE,
    MMU_DONE,
    MMU_PAGE_FAULT,
    PF_PROT,
    PF_USER,
    PF_WRITE,
    leaf_entries,
    leaf_pfns,
    mmu_run,
    walk,
)
from pagelab.hw.ptpool import PageTablePool
from pagelab.hw.tlb import ASID_SHIFT, HUGE_TAG, L1_2M, L1_4K, STLB, STLB_2M, Tlb, tlb_find
from pagelab.stats import SimEvent

SCRIPT = """
import json, pagelab as pl
m = pl.Machine(ram="64MiB", seed=4)
p = m.spawn("nojit")
a = p.mmap(None, 64 * 4096, 3, 0x22)
p.touch(a, 64 * 4096)
p.touch(a, 64 * 4096, write=True, stride=2048)
p.access([a + 4096 * i for i in (3, 9, 3, 60, 9)] * 5)
q = m.spawn("segv")
b = q.mmap(None, 4096, 1, 0x22)
try:
    q.store(b, 1)  # SEGV_ACCERR: the fault path gets the MMU's address as it reports it
except pl.SegmentationFault as exc:
    segv = [exc.addr == b, exc.si_code]
print(json.dumps({"vmstat": m.vmstat(), "sim": m.counters.sim.tolist(), "now": m.now_ns,
                  "minflt": p.rusage().ru_minflt, "tlb": m.tlb.tag.tolist(), "segv": segv}))
"""


def run(env_extra):
    env = dict(os.environ, **env_extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_same_results_with_numba_disabled():
    jit = run({})
    assert jit["segv"] == [True, "SEGV_ACCERR"]
    assert run({"NUMBA_DISABLE_JIT": "1"}) == jit


def test_a_timed_event_runs_mid_batch_at_its_time():
    m = pl.Machine(ram="64MiB", cpu="tiny", seed=0)
    p = m.spawn("clock")
    a = p.mmap(None, 4096, 3, 0x22)
    p.store(a, 1)
    fired = []
    start = int(m.clock_cycles[0])
    m.clock.schedule(start + 500, lambda: fired.append(int(m.clock_cycles[0])))
    p.access([a] * 1000)  # 1 cycle each on the tiny CPU
    assert fired == [start + 500]
    assert int(m.clock_cycles[0]) == start + 1000


def test_run_advances_time_and_runs_due_events():
    m = pl.Machine(ram="64MiB", seed=0)
    seen = []
    m.clock.schedule(m.clock.ns_to_cycles(2_000_000_000), lambda: seen.append(m.now_ns))
    m.run(seconds=1)
    assert not seen and m.now_ns == 1_000_000_000
    m.run(seconds=1.5)
    assert seen == [2_000_000_000] and m.now_ns == 2_500_000_000


# --- Hardware-level tests: page tables built by hand in a PageTablePool, no kernel. ----------------------

P, RW_, US, A, D, PS = 1, 2, 4, 32, 64, 128
PAT_HUGE = 1 << 12  # in a PMD leaf, bit 12 is PAT, not part of the PFN
TABLE = P | RW_ | US | A | D  # what Linux puts in an upper-level entry (_PAGE_TABLE)
LEAF = P | RW_ | US
MiB2 = 1 << 21


class Tables:
    """A PageTablePool with one address space (CR3) and helpers that install leaves by hand."""

    def __init__(self) -> None:
        self.pool = PageTablePool()
        self.cr3 = self.pool.alloc(pfn=900_000, level=4)

    def table(self, va: int, level: int) -> int:
        """The row of the table at ``level`` (1 = PTE table) covering ``va``, allocated on demand."""
        row = self.cr3
        for lv in range(4, level, -1):
            idx = (va >> (3 + 9 * lv)) & 511
            e = int(self.pool.tables[row, idx])
            if e == 0:
                child = self.pool.alloc(pfn=900_000 + self.pool.nr_tables, level=lv - 1)
                self.pool.tables[row, idx] = (child << 12) | TABLE
                e = int(self.pool.tables[row, idx])
            assert not e & PS, "a PMD leaf is in the way"
            row = e >> 12 & ((1 << 40) - 1)
        return row

    def map_4k(self, va: int, pfn: int, flags: int = LEAF) -> None:
        self.pool.tables[self.table(va, 1), (va >> 12) & 511] = (pfn << 12) | flags

    def map_2m(self, va: int, pfn: int, flags: int = LEAF) -> None:
        assert va % MiB2 == 0 and pfn % 512 == 0
        self.pool.tables[self.table(va, 2), (va >> 21) & 511] = (pfn << 12) | flags | PS

    def pmd(self, va: int) -> int:
        return int(self.pool.tables[self.table(va, 2), (va >> 21) & 511])

    def pte(self, va: int) -> int:
        return int(self.pool.tables[self.table(va, 1), (va >> 12) & 511])


class Cpu:
    """One CPU's TLBs, SimEvent counters and clock, driving mmu_run over a Tables."""

    def __init__(self, t: Tables, cpu: str | CpuModel = "skylake") -> None:
        self.t, self.model = t, get_cpu_model(cpu)
        self.tlb = Tlb(self.model)
        self.ev = np.zeros(len(SimEvent), dtype=np.int64)
        self.clock = np.zeros(1, dtype=np.int64)

    def run(self, addrs: list[int], write: bool | list[bool] = False, start: int = 0) -> tuple[int, int, int, int]:
        a = np.array(addrs, dtype=np.int64)
        w = np.array([write] if isinstance(write, bool) else write, dtype=np.uint8)
        tlb = self.tlb
        out = mmu_run(self.t.pool.tables, self.t.cr3, 1, a, w, start, tlb.tag, tlb.val, tlb.age, tlb.geom,
                      tlb.lat, tlb.tick, self.ev, self.clock, 1 << 62)
        return tuple(int(x) for x in out)  # type: ignore[return-value]

    def count(self, e: SimEvent) -> int:
        return int(self.ev[e])

    def cached(self, level: int, va: int) -> int | None:
        """The entry TLB ``level`` holds for ``va`` (None if it holds none), looked up by its page size."""
        huge = level in (L1_2M, STLB_2M)
        setkey = va >> 21 if huge else va >> 12
        key = (1 << ASID_SHIFT) | (HUGE_TAG if huge else 0) | setkey
        row, way = tlb_find(self.tlb.tag, self.tlb.geom, level, key, setkey)
        return None if way < 0 else int(self.tlb.val[row, way])


HUGE_VA = 0x4000_0000  # 1 GiB: a 2 MiB-aligned user address
SMALL_VA = 0x7000_0000


def test_walk_stops_at_a_pmd_leaf_or_a_missing_level():
    t = Tables()
    t.map_2m(HUGE_VA, 512 * 7)
    t.map_4k(SMALL_VA + 5 * 4096, 1234)
    row, idx, e, level = walk(t.pool.tables, t.cr3, HUGE_VA + 3 * 4096 + 17)
    assert (level, row, idx, e) == (LEVEL_PMD, t.table(HUGE_VA, 2), (HUGE_VA >> 21) & 511, t.pmd(HUGE_VA))
    row, idx, e, level = walk(t.pool.tables, t.cr3, SMALL_VA + 5 * 4096)
    assert (level, row, idx, e) == (LEVEL_PTE, t.table(SMALL_VA, 1), 5, (1234 << 12) | LEAF)
    assert walk(t.pool.tables, t.cr3, 1 << 46)[2:] == (0, 4)  # no PUD table there
    assert walk(t.pool.tables, t.cr3, HUGE_VA + (1 << 30))[2:] == (0, 3)  # no PMD table there
    assert walk(t.pool.tables, t.cr3, SMALL_VA + MiB2)[2:] == (0, 2)  # PMD entry empty
    assert walk(t.pool.tables, t.cr3, SMALL_VA)[2:] == (0, 1)  # PTE empty


def test_a_huge_leaf_translates_every_subpage_and_fills_the_2m_tlbs():
    t = Tables()
    t.map_2m(HUGE_VA, 512 * 3)
    c = Cpu(t)
    assert c.run([HUGE_VA + 4096 * 9 + 8]) == (MMU_DONE, 1, 0, 0)
    assert c.count(SimEvent.STLB_MISS) == 1
    pmd = t.pmd(HUGE_VA)
    assert pmd == (512 * 3) << 12 | LEAF | PS | A  # Accessed set in the PMD, not Dirty
    assert c.cached(L1_2M, HUGE_VA) == pmd and c.cached(STLB_2M, HUGE_VA) == pmd
    assert c.cached(L1_4K, HUGE_VA) is None and c.cached(STLB, HUGE_VA) is None
    c.run([HUGE_VA + 4096 * k for k in range(512)])  # every subpage: one 2 MiB entry serves them all
    assert c.count(SimEvent.DTLB_2M_HIT) == 512 and c.count(SimEvent.STLB_MISS) == 1
    subpages = leaf_pfns(t.pool.tables, t.cr3, np.arange(512, dtype=np.int64) + (HUGE_VA >> 12))
    assert subpages.tolist() == list(range(512 * 3, 512 * 4))


def test_a_store_sets_dirty_in_the_pmd_after_a_load_filled_a_clean_entry():
    t = Tables()
    t.map_2m(HUGE_VA, 512)
    c = Cpu(t)
    c.run([HUGE_VA])
    c.run([HUGE_VA + 4096 * 100], write=True)  # the clean L1 entry cannot take a store: walk to set D
    assert c.count(SimEvent.DIRTY_WALKS) == 1 and c.count(SimEvent.STLB_MISS) == 2
    assert t.pmd(HUGE_VA) & (A | D) == A | D
    assert c.cached(L1_2M, HUGE_VA) == t.pmd(HUGE_VA)
    c.run([HUGE_VA + 4096 * k for k in range(0, 512, 7)], write=True)
    assert c.count(SimEvent.STLB_MISS) == 2 and c.count(SimEvent.DTLB_2M_HIT) == len(range(0, 512, 7))


SEPARATE_STLB_2M = replace(get_cpu_model("skylake"), name="separate", stlb_2m_mode=TlbShare.SEPARATE,
                           stlb_2m=TlbLevel(32, 8, "test: a 2 MiB STLB array of its own"))


@pytest.mark.parametrize("cpu, stlb_hits, walks, huge_in_stlb, entries", [
    ("skylake", 1, 5, 5, 4 + 5),  # the 1536-entry STLB holds both sizes
    ("nehalem", 0, 6, 0, 4),  # its STLB holds 4 KiB translations only: walk again
    ("zen3", 0, 5, 5, 5 + 5),  # a fully associative 64-entry L1: no eviction
    (SEPARATE_STLB_2M, 1, 5, 0, 4 + 5),  # 2 MiB entries in their own array, none in the 4 KiB STLB
])
def test_a_huge_entry_evicted_from_the_l1_hits_the_stlb_where_the_cpu_keeps_2m_entries(cpu, stlb_hits, walks,
                                                                                       huge_in_stlb, entries):
    t = Tables()
    vas = [HUGE_VA + k * 8 * MiB2 for k in range(5)]  # 8 sets in Skylake's 2 MiB L1: all in one 4-way set
    for k, va in enumerate(vas):
        t.map_2m(va, 512 * (k + 1))
    c = Cpu(t, cpu)
    c.run(vas, write=True)
    c.run([vas[0]], write=True)  # evicted from a 4-way L1 set (not on zen3)
    assert (c.count(SimEvent.STLB_HIT), c.count(SimEvent.STLB_MISS)) == (stlb_hits, walks)
    assert c.cached(STLB_2M, vas[0]) == (None if cpu == "nehalem" else t.pmd(vas[0]))
    first, sets = c.tlb.geom[STLB, :2]
    stlb_tags = c.tlb.tag[first:first + sets]
    assert int(((stlb_tags >= 0) & (stlb_tags & HUGE_TAG != 0)).sum()) == huge_in_stlb
    assert c.tlb.entries() == entries  # L1 + STLB, nothing anywhere else


def test_a_store_to_a_read_only_huge_leaf_faults_and_leaves_the_pmd_clean():
    t = Tables()
    t.map_2m(HUGE_VA, 512, P | US)
    c = Cpu(t)
    assert c.run([HUGE_VA + 4096]) == (MMU_DONE, 1, 0, 0)  # a load is allowed
    out = c.run([HUGE_VA + 4096 * 2 + 1], write=True)  # the L1 holds it read-only: walk, then #PF
    assert out == (MMU_PAGE_FAULT, 0, HUGE_VA + 4096 * 2 + 1, PF_PROT | PF_WRITE | PF_USER)
    assert t.pmd(HUGE_VA) & D == 0 and c.count(SimEvent.WALK_TRAPS) == 1
    t.map_2m(HUGE_VA + MiB2, 1024, P | RW_)  # a supervisor page
    assert c.run([HUGE_VA + MiB2]) == (MMU_PAGE_FAULT, 0, HUGE_VA + MiB2, PF_PROT | PF_USER)
    assert c.run([HUGE_VA + 2 * MiB2], write=True) == (MMU_PAGE_FAULT, 0, HUGE_VA + 2 * MiB2, PF_WRITE | PF_USER)


def test_4k_and_2m_translations_of_different_regions_coexist():
    for cpu in ("skylake", "zen3", "tiny"):
        t = Tables()
        t.map_2m(HUGE_VA, 512 * 5)
        t.map_4k(HUGE_VA + MiB2 + 4096, 77)  # the next 2 MiB is mapped by a PTE table
        t.map_4k(SMALL_VA, 78)
        c = Cpu(t, cpu)
        addrs = [HUGE_VA + 4096 * 3, HUGE_VA + MiB2 + 4096, SMALL_VA + 12] * 3
        assert c.run(addrs, write=[False, True, False] * 3)[0] == MMU_DONE
        assert c.count(SimEvent.STLB_MISS) == 3, cpu
        assert (c.count(SimEvent.DTLB_2M_HIT), c.count(SimEvent.DTLB_4K_HIT)) == (2, 4), cpu
        assert c.cached(L1_2M, HUGE_VA) == t.pmd(HUGE_VA) and c.cached(L1_4K, SMALL_VA) == t.pte(SMALL_VA)
        assert t.pte(HUGE_VA + MiB2 + 4096) & D and not t.pte(SMALL_VA) & D and not t.pmd(HUGE_VA) & D
        vpns = np.array([HUGE_VA + 4096 * 3, HUGE_VA + MiB2 + 4096, SMALL_VA, SMALL_VA + 4096], dtype=np.int64) >> 12
        assert leaf_pfns(t.pool.tables, t.cr3, vpns).tolist() == [512 * 5 + 3, 77, 78, -1]


def test_leaf_pfns_ignores_pat_and_leaf_entries_returns_the_raw_entry():
    t = Tables()
    t.map_2m(HUGE_VA, 512 * 9, LEAF | PAT_HUGE)
    t.map_4k(SMALL_VA, 5)
    t.pool.tables[t.table(SMALL_VA, 1), 1] = 0x5_0000 << 1  # a swap entry: not present
    vpns = np.array([HUGE_VA + 4096 * 511, SMALL_VA, SMALL_VA + 4096, SMALL_VA + 8192, 1 << 30 + 5], dtype=np.int64)
    vpns[:4] >>= 12
    assert leaf_pfns(t.pool.tables, t.cr3, vpns).tolist() == [512 * 10 - 1, 5, -1, -1, -1]
    assert leaf_entries(t.pool.tables, t.cr3, vpns).tolist() == [t.pmd(HUGE_VA), (5 << 12) | LEAF, 0x5_0000 << 1, 0, 0]


def _reference_walk(tables: np.ndarray, cr3: int, va: int) -> tuple[int, int, int, bool]:
    """The page walk written out plainly: (row, index, entry, huge) of the leaf, or entry 0 if none."""
    row = cr3
    for shift in (39, 30, 21):
        e = int(tables[row, (va >> shift) & 511])
        if not e & P:
            return row, (va >> shift) & 511, 0, False
        if shift == 21 and e & PS:
            return row, (va >> 21) & 511, e, True
        row = (e >> 12) & ((1 << 40) - 1)
    return row, (va >> 12) & 511, int(tables[row, (va >> 12) & 511]), False


@settings(max_examples=scale(40, 400), deadline=None)
@given(cpu=st.sampled_from(["skylake", "nehalem", "zen3", "tiny", SEPARATE_STLB_2M]),
       regions=st.lists(st.tuples(st.booleans(), st.integers(0, 1), st.integers(0, 7)), min_size=1, max_size=12),
       accesses=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 511), st.booleans()), min_size=1, max_size=200))
def test_translations_equal_a_reference_walk(cpu, regions, accesses):
    """Random mixes of 4 KiB and 2 MiB mappings: each access faults or completes as the reference walk says,
    the TLB entry it used translates to the reference's frame, and the A/D bits end up where the reference
    puts them."""
    t = Tables()
    for k, (huge, ro, sparse) in enumerate(regions):  # region k: the k-th 2 MiB of [HUGE_VA, +32 MiB)
        va = HUGE_VA + k * MiB2
        flags = P | US | (0 if ro else RW_)
        if huge:
            t.map_2m(va, 512 * (k + 1), flags)
        else:
            for j in range(0, 512, sparse + 1):  # every (sparse+1)-th page mapped
                t.map_4k(va + j * 4096, 512 * (k + 1) + j, flags)
    ref = t.pool.tables.copy()
    c = Cpu(t, cpu)
    for region, page, write in accesses:
        va = HUGE_VA + region * MiB2 + page * 4096 + 8
        row, idx, e, huge = _reference_walk(ref, t.cr3, va)
        if not e & P:
            expect = (MMU_PAGE_FAULT, 0, va, PF_USER | (PF_WRITE if write else 0))
        elif write and not e & RW_:
            expect = (MMU_PAGE_FAULT, 0, va, PF_PROT | PF_USER | PF_WRITE)
        else:
            expect = (MMU_DONE, 1, 0, 0)
            ref[row, idx] = e | A | (D if write else 0)
        assert c.run([va], write=write) == expect
        if expect[0] == MMU_DONE:
            cached = c.cached(L1_2M if huge else L1_4K, va)
            assert cached is not None and cached & (A | D) == ref[row, idx] & (A | D)
            base_pfn = (cached & ((1 << 52) - 1)) >> 12
            pfn = (base_pfn & ~511) + page if huge else base_pfn
            assert pfn == 512 * (region + 1) + page
    assert np.array_equal(t.pool.tables, ref)
    vpns = (HUGE_VA >> 12) + np.arange(16 * 512, dtype=np.int64)
    expect_pfns = [-1 if not _reference_walk(ref, t.cr3, int(v) << 12)[2] & P else 512 * (k // 512 + 1) + k % 512
                   for k, v in enumerate(vpns)]
    assert leaf_pfns(t.pool.tables, t.cr3, vpns).tolist() == expect_pfns
