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

The kernel-level core lives in the package, pagelab.workload.tlb_reach (``random_offsets``,
``tlb_result``/``TlbResult``, ``run_kernel``, the table), which is also ``pagelab tlb``; this script adds
the hardware-only run (``map_by_hand``, ``run_hw``) and the host run. Which perf event counts what, and
what the estimated time leaves out: see that module's docstring. In short, STLB misses = page walks =
perf's dTLB-load-misses; L1 dTLB misses = perf's dTLB-loads on AMD; the time is translation only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from pagelab.hw.cpu import CpuModel, get_cpu_model
from pagelab.hw.mmu import MMU_DONE, mmu_run
from pagelab.hw.ptpool import PageTablePool
from pagelab.hw.tlb import LAT_WALK, Tlb
from pagelab.stats import SimEvent
from pagelab.workload.tlb_reach import TlbResult, format_ratios, format_table, random_offsets, run_kernel, tlb_result

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
    if result.walk_cycles != result.walks * int(tlb.lat[LAT_WALK]):
        raise RuntimeError(f"run_hw: the MMU charged walks other than {int(tlb.lat[LAT_WALK])} cycles each")
    return result


def print_results(cpu: CpuModel, results: list[TlbResult]) -> None:
    """The table for one CPU model (its geometry with sources, a row per run) and the 4 KiB / 2 MiB ratios."""
    print("\n".join(format_table(cpu, results)))
    if len(results) == 2:
        print(format_ratios(*results))


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
