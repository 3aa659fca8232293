"""The seed's TLB claim at the hardware level: a 4 GiB working set thrashes the TLB with 4 KiB pages,
and 2 MiB pages cure it (a benchmark script, not a test).

1. Hardware only, no kernel: the working set is mapped by hand in a PageTablePool, once with 4 KiB
   leaves (PTEs) and once with 2 MiB leaves (PMDs with PS), and N random 8-byte loads run through
   hw/mmu.py ``mmu_run`` on a fresh TLB of each CPU model. Printed per model and page size: L1 dTLB
   misses, STLB hits, STLB misses (= page walks), walk cycles and the estimated translation time, with
   the TLB geometry's source.
2. Through the simulated kernel (``run_kernel``): the same loads over a mapping with MADV_HUGEPAGE (THP
   at fault time) and with MADV_NOHUGEPAGE, written once, then read through ``Process.access``.
3. This host: bench/tlb_random.c (compiled here with gcc) does the same random loads over the same
   size with MADV_HUGEPAGE and with MADV_NOHUGEPAGE, under ``perf stat -e dTLB-load-misses,dTLB-loads``
   when perf can count them. It changes no host setting.

The core is reusable: ``random_offsets`` draws the loads, ``tlb_result`` turns any run's SimEvent
counters into a ``TlbResult`` (a kernel-level scenario can feed it ``m.counters.sim`` deltas around
``p.access``), ``run_hw`` is the hardware-only run, ``run_kernel`` the one through the kernel and
``print_results`` the table.

"dTLB misses" as perf counts them are page walks: on AMD family 17h and later perf's dTLB-load-misses is
event 0xf045 "L2 DTLB misses (PT walks)" and dTLB-loads is 0xff45 "all L2 DTLB accesses", i.e. L1 DTLB
misses (arch/x86/events/amd/core.c: amd_hw_cache_event_ids_f17h); on Intel dTLB-load-misses counts loads
that missed every TLB level and walked (DTLB_LOAD_MISSES.*). Both figures are printed: the L1 dTLB misses
(perf's dTLB-loads on AMD) and the STLB misses (perf's dTLB-load-misses).
Simplified: the simulated time is translation only (L1 hit, STLB hit, walk cycles of the CPU model);
the data-cache misses of random loads over 4 GiB are not modelled, nor the cost of a walk whose PTE
misses the caches (the model's walk costs ``walk_cycles`` whatever it touches).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pagelab.hw.cpu import CpuModel, get_cpu_model
from pagelab.hw.mmu import MMU_DONE, mmu_run
from pagelab.hw.ptpool import PageTablePool
from pagelab.hw.tlb import LAT_WALK, Tlb
from pagelab.stats import SimEvent

HERE = Path(__file__).resolve().parent
GiB = 1 << 30
PAGE_4K = 1 << 12
PAGE_2M = 1 << 21
BASE_VA = 0x10_0000_0000  # 64 GiB: 1 GiB-aligned, well inside the user half
# Entry bits (x86-64): present, writable, user, accessed; PS marks a PMD leaf; _PAGE_TABLE for upper levels.
P, RW, US, A, D, PS = 1, 2, 4, 32, 64, 128
LEAF = P | RW | US | A
TABLE = P | RW | US | A | D
FIRST_PFN = 1 << 20  # frames of the working set start at 4 GiB physical (2 MiB-aligned)


@dataclass(frozen=True, slots=True)
class TlbResult:
    """TLB figures of one run of loads."""

    label: str
    cpu: str
    loads: int
    l1_misses: int  # loads that missed the L1 dTLB (perf's dTLB-loads on AMD Zen)
    stlb_hits: int
    walks: int  # loads that missed the STLB too: page walks (perf's dTLB-load-misses)
    walk_cycles: int
    cycles: int  # all translation cycles: L1 hits, STLB hits and walks
    ns: float  # cycles at the CPU's clock

    def per_load(self, field: str) -> float:
        return float(getattr(self, field)) / self.loads


def tlb_result(label: str, cpu: CpuModel, sim_delta: np.ndarray, cycles: int) -> TlbResult:
    """A TlbResult from SimEvent counter deltas (``m.counters.sim`` after minus before) and clock cycles.

    Works for any run of loads that completed without faults, hardware-only or through a Machine.
    """
    loads = int(sim_delta[SimEvent.LOADS])
    hits = int(sim_delta[SimEvent.DTLB_4K_HIT] + sim_delta[SimEvent.DTLB_2M_HIT])
    walks = int(sim_delta[SimEvent.STLB_MISS])
    return TlbResult(label=label, cpu=cpu.name, loads=loads, l1_misses=loads - hits,
                     stlb_hits=int(sim_delta[SimEvent.STLB_HIT]), walks=walks,
                     walk_cycles=walks * cpu.walk_cycles, cycles=cycles, ns=cycles * 1000 / cpu.freq_mhz)


def random_offsets(size: int, n: int, seed: int) -> np.ndarray:
    """``n`` uniformly random 8-byte-aligned offsets into ``size`` bytes (int64), from ``seed``."""
    return np.random.default_rng(seed).integers(0, size // 8, n, dtype=np.int64) * 8


def map_by_hand(pool: PageTablePool, cr3: int, va: int, size: int, page_size: int, first_pfn: int) -> None:
    """Map [va, va + size) to frames first_pfn.. with leaves of ``page_size`` (4 KiB PTEs or 2 MiB PMDs).

    ``va`` and ``size`` must be 1 GiB-aligned: each GiB gets a PUD entry, a PMD table, and (for 4 KiB
    pages) 512 PTE tables. Upper-level entries hold the next table's row, as hw/ptpool.py describes.
    """
    if va % GiB or size % GiB or page_size not in (PAGE_4K, PAGE_2M):
        raise ValueError("map_by_hand: 1 GiB-aligned va and size, 4 KiB or 2 MiB pages")
    backing = iter(range(1, 1 << 30))  # backing frames of the page-table pages (not part of the working set)
    for g in range(size // GiB):
        gva = va + g * GiB
        pgd_i = (gva >> 39) & 511
        if pool.tables[cr3, pgd_i] == 0:
            pool.tables[cr3, pgd_i] = (pool.alloc(next(backing), 3) << 12) | TABLE
        pud = int(pool.tables[cr3, pgd_i]) >> 12
        pmd = pool.alloc(next(backing), 2)
        pool.tables[pud, (gva >> 30) & 511] = (pmd << 12) | TABLE
        pfn0 = first_pfn + g * (GiB >> 12)
        if page_size == PAGE_2M:
            pool.tables[pmd, :] = ((pfn0 + np.arange(512, dtype=np.int64) * 512) << 12) | LEAF | PS
            continue
        for j in range(512):
            pte = pool.alloc(next(backing), 1)
            pool.tables[pmd, j] = (pte << 12) | TABLE
            pool.tables[pte, :] = ((pfn0 + j * 512 + np.arange(512, dtype=np.int64)) << 12) | LEAF


def run_hw(cpu: CpuModel, page_size: int, size: int, n: int, seed: int = 0, warm: int | None = None) -> TlbResult:
    """Map ``size`` bytes by hand with ``page_size`` leaves and run ``n`` random loads through mmu_run.

    A fresh TLB first takes ``warm`` loads (default n // 10, other random offsets), which are not counted.
    """
    pool = PageTablePool(capacity=size // GiB * 520 + 8)
    cr3 = pool.alloc(0, 4)
    map_by_hand(pool, cr3, BASE_VA, size, page_size, FIRST_PFN)
    tlb = Tlb(cpu)
    ev = np.zeros(len(SimEvent), dtype=np.int64)
    clock = np.zeros(1, dtype=np.int64)
    load = np.zeros(1, dtype=np.uint8)
    warm = n // 10 if warm is None else warm

    def run(addrs: np.ndarray) -> None:
        out = mmu_run(pool.tables, cr3, 1, addrs, load, 0, tlb.tag, tlb.val, tlb.age, tlb.geom, tlb.lat,
                      tlb.tick, ev, clock, 1 << 62)
        if out[0] != MMU_DONE:
            raise RuntimeError(f"run_hw: the MMU stopped: {out}")

    if warm:
        run(BASE_VA + random_offsets(size, warm, seed + 1))
    addrs = BASE_VA + random_offsets(size, n, seed)
    ev0, c0 = ev.copy(), int(clock[0])
    run(addrs)
    label = "4 KiB" if page_size == PAGE_4K else "2 MiB"
    result = tlb_result(label, cpu, ev - ev0, int(clock[0]) - c0)
    assert result.walk_cycles == result.walks * int(tlb.lat[LAT_WALK])
    return result


def run_kernel(cpu: CpuModel, huge: bool, size: int, n: int, seed: int = 0, warm: int | None = None) -> TlbResult:
    """The same loads through the simulated kernel: a private anonymous mapping of ``size`` bytes with
    MADV_HUGEPAGE (THP at fault time, enabled=madvise as on this host) or MADV_NOHUGEPAGE, written once
    per 4 KiB page, then ``warm`` uncounted and ``n`` counted random loads through ``Process.access``.
    """
    import pagelab as pl  # the kernel: only this run needs it

    m = pl.Machine(ram=f"{size * 5 // 4 >> 20}MiB", cpu=cpu, thp="madvise", seed=seed)
    p = m.spawn("tlb")
    a = p.mmap(None, size, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    p.madvise(a, size, pl.MADV_HUGEPAGE if huge else pl.MADV_NOHUGEPAGE)
    p.touch(a, size, write=True)
    p.access(a + random_offsets(size, n // 10 if warm is None else warm, seed + 1))
    sim0, c0 = m.counters.sim.copy(), int(m.clock_cycles[0])
    p.access(a + random_offsets(size, n, seed))
    rollup = m.read(f"/proc/{p.pid}/smaps_rollup")
    thp_kb = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("AnonHugePages:"))
    label = f"THP ({thp_kb >> 10} MiB)" if huge else "4 KiB"
    return tlb_result(label, cpu, m.counters.sim - sim0, int(m.clock_cycles[0]) - c0)


def print_results(cpu: CpuModel, results: list[TlbResult]) -> None:
    """The table for one CPU model, its geometry with sources, and the 4 KiB / 2 MiB ratios."""
    print(cpu.describe())
    print(f"  {'pages':14s} {'loads':>11s} {'L1 dTLB misses':>15s} {'STLB hits':>11s} {'STLB misses':>12s} "
          f"{'walk cycles':>13s} {'est. time':>10s} {'ns/load':>8s}   (STLB misses = page walks = "
          f"perf's dTLB-load-misses)")
    for r in results:
        print(f"  {r.label:14s} {r.loads:11,d} {r.l1_misses:15,d} {r.stlb_hits:11,d} {r.walks:12,d} "
              f"{r.walk_cycles:13,d} {r.ns / 1e6:8.2f}ms {r.ns / r.loads:8.2f}")
    small = next((r for r in results if r.label == "4 KiB"), None)
    huge = next((r for r in results if r.label != "4 KiB"), None)
    if small and huge:
        def ratio(a: int, b: int) -> str:
            return f"{a / b:.1f}x" if b else f"{a:,} vs none"
        print(f"  4 KiB / 2 MiB: L1 dTLB misses {ratio(small.l1_misses, huge.l1_misses)}, "
              f"STLB misses (walks) {ratio(small.walks, huge.walks)}, time {small.ns / huge.ns:.2f}x")


def run_host(size_mib: int, n: int, seed: int = 0) -> list[dict[str, object]]:
    """bench/tlb_random.c with MADV_NOHUGEPAGE and MADV_HUGEPAGE, under perf stat if it counts dTLB events."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None or not sys.platform.startswith("linux"):
        return []
    perf = shutil.which("perf")
    out: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "tlb_random")
        subprocess.run([cc, "-O2", "-o", exe, str(HERE / "tlb_random.c")], check=True)
        for mode in ("nohuge", "huge"):
            cmd = [exe, str(size_mib), str(n), mode, str(seed)]
            csv = os.path.join(tmp, "perf.csv")
            if perf:
                cmd = [perf, "stat", "-x", ",", "-o", csv, "-e", "dTLB-load-misses,dTLB-loads", "--"] + cmd
            proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
            r: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
            if perf:
                for line in Path(csv).read_text().splitlines():
                    fields = line.split(",")
                    if len(fields) > 2 and fields[2].startswith("dTLB"):
                        r["perf_" + fields[2]] = fields[0]  # a count, or "<not supported>"
            out.append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gib", type=int, default=4, help="working set (default 4 GiB)")
    ap.add_argument("--loads", type=int, default=10_000_000, help="random loads per run (default 10 M)")
    ap.add_argument("--cpu", action="append", help="CPU model(s) (default: zen3 (this host), skylake, nehalem)")
    ap.add_argument("--host-loads", type=int, default=2_000_000, help="loads of the host run (default 2 M)")
    ap.add_argument("--no-host", action="store_true", help="skip the run on this host")
    ap.add_argument("--no-kernel", action="store_true", help="skip the run through the simulated kernel")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    size = a.size_gib * GiB
    print(f"# bench_tlb: working set {a.size_gib} GiB, {a.loads:,} random 8-byte loads, seed {a.seed}")
    summary = []
    for name in a.cpu or ["zen3", "skylake", "nehalem"]:
        cpu = get_cpu_model(name)
        results = [run_hw(cpu, page, size, a.loads, a.seed) for page in (PAGE_4K, PAGE_2M)]
        print_results(cpu, results)
        print(json.dumps({"cpu": name, "results": [asdict(r) for r in results]}))
        small, huge = results
        summary.append(f"{name}: walks {small.walks:,} (4K) vs {huge.walks:,} (2M), "
                       f"L1 dTLB misses {small.l1_misses:,} vs {huge.l1_misses:,}")
        print()
        if not a.no_kernel:
            print(f"through the kernel (Machine(thp='madvise'), MADV_NOHUGEPAGE vs MADV_HUGEPAGE), cpu {name}:")
            results = [run_kernel(cpu, huge_pages, size, a.loads, a.seed) for huge_pages in (False, True)]
            print_results(cpu, results)
            print(json.dumps({"cpu": name, "kernel": True, "results": [asdict(r) for r in results]}))
            summary.append(f"{name} (kernel): walks {results[0].walks:,} (4K) vs {results[1].walks:,} (THP)")
            print()
    if not a.no_host:
        host = run_host(a.size_gib * 1024, a.host_loads, a.seed)
        for r in host:
            print(json.dumps(r))
        if len(host) == 2:
            nohuge, huge_r = host
            misses = [r.get("perf_dTLB-load-misses", "no perf") for r in host]
            print(f"host: {nohuge['ns_per_load']} ns/load with 4 KiB pages, {huge_r['ns_per_load']} ns/load with "
                  f"THP (AnonHugePages {huge_r['anon_huge_kb']} kB); perf dTLB-load-misses: {misses[0]} / {misses[1]}")
            ratio = float(str(nohuge["ns_per_load"])) / float(str(huge_r["ns_per_load"]))
            summary.append(f"host: time per load 4K/THP = {ratio:.2f}x")
    print("summary: " + "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
