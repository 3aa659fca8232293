"""TLB reach: random loads over a working set the TLBs cannot cover, with 4 KiB pages and with THP.

The seed's claim: a large working set thrashes the TLB with 4 KiB pages, and huge pages cure it. A TLB
entry maps one page, so a TLB of E entries reaches E x 4 KiB with small pages and E x 2 MiB with huge
ones: zen3's 2048-entry L2 DTLB (the STLB) reaches 8 MiB, or 4 GiB of 2 MiB pages. Uniformly random
loads over 4 GiB miss a TLB that reaches 8 MiB nearly every time, and every STLB miss is a page walk;
with 2 MiB pages the same STLB holds the whole working set and the walks stop.

``tlb_reach()`` runs the scenario through the simulated kernel, twice, on fresh machines with
``enabled=madvise`` (as this host): one private anonymous mapping of ``size`` bytes with
madvise(MADV_NOHUGEPAGE) (4 KiB pages) or madvise(MADV_HUGEPAGE) (THP at fault time,
do_huge_pmd_anonymous_page), written once per 4 KiB page, then ``warm`` uncounted random loads and
``loads`` counted ones through ``Process.access`` (the MMU loop: L1 dTLB, STLB, page walk). The
figures come from the SimEvent counters and the clock around the counted loads (``tlb_result``).

What perf calls "dTLB misses" are page walks: on AMD family 17h and later perf's dTLB-load-misses is
event 0xf045 "L2 DTLB misses (PT walks)" and dTLB-loads is 0xff45 "all L2 DTLB accesses", i.e. L1 DTLB
misses (arch/x86/events/amd/core.c: amd_hw_cache_event_ids_f17h); on Intel dTLB-load-misses counts loads
that missed every TLB level and walked (DTLB_LOAD_MISSES.*). Both figures are kept: ``l1_misses`` (perf's
dTLB-loads on AMD) and ``walks`` (STLB misses, perf's dTLB-load-misses). They are simulator figures
(SimEvent), not kernel counters.

Simplified: the estimated time is translation only (an L1 hit, an STLB hit and a walk cost the CPU
model's cycles); the data-cache misses of random loads over gigabytes are not modelled, nor a walk
whose page-table entries miss the caches (a walk costs ``walk_cycles`` whatever it touches).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..constants import (
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    PAGE_SIZE,
    PMD_SIZE,
    PROT_READ,
    PROT_WRITE,
    GiB,
    MiB,
)
from ..hw.cpu import CpuModel, TlbLevel, get_cpu_model
from ..stats import SimEvent

CHUNK = 1 << 20  # loads drawn and run per Process.access call: host memory stays bounded for any count
MIN_RAM = 64 * MiB  # the smallest simulated RAM a run uses
# Host memory one run takes per GiB of working set, measured on this host (max RSS 154 MiB for the
# interpreter and pagelab, ~400 MiB for an 8 GiB run: 31-33 MiB per GiB, either page size), with a margin.
HOST_BYTES_PER_GIB = 40 * MiB


@dataclass(frozen=True, slots=True)
class TlbResult:
    """The TLB figures of one run of loads (simulator figures, not kernel counters).

    ``cycles`` is every translation cycle of the counted loads (L1 hits, STLB hits, walks), ``ns`` the
    same at the CPU's clock. ``faults`` and ``anon_huge_kb`` describe how the working set was mapped
    (0 for a run on page tables built by hand).
    """

    label: str
    cpu: str
    loads: int
    l1_misses: int  # loads that missed the L1 dTLB (perf's dTLB-loads on AMD Zen)
    stlb_hits: int
    walks: int  # loads that missed the STLB too: page walks (perf's dTLB-load-misses)
    walk_cycles: int
    cycles: int
    ns: float
    faults: int = 0  # page faults that mapped the working set
    anon_huge_kb: int = 0  # AnonHugePages of the mapping (smaps_rollup)

    @property
    def ns_per_load(self) -> float:
        return self.ns / self.loads if self.loads else 0.0


MAX_LOADS = 1_000_000_000  # ~100x the default run: loads beyond this would run for hours

def tlb_result(label: str, cpu: CpuModel, sim_delta: np.ndarray, cycles: int, *, faults: int = 0,
               anon_huge_kb: int = 0) -> TlbResult:
    """A TlbResult from SimEvent counter deltas (``m.counters.sim`` after minus before) and clock cycles.

    For a window of loads that took no fault (hardware-only or through a Machine): every load either hit
    the L1 dTLB (4 KiB or 2 MiB entry), or missed it and hit the STLB, or missed both and walked.
    """
    loads = int(sim_delta[SimEvent.LOADS])
    hits = int(sim_delta[SimEvent.DTLB_4K_HIT] + sim_delta[SimEvent.DTLB_2M_HIT])
    walks = int(sim_delta[SimEvent.STLB_MISS])
    return TlbResult(label=label, cpu=cpu.name, loads=loads, l1_misses=loads - hits,
                     stlb_hits=int(sim_delta[SimEvent.STLB_HIT]), walks=walks,
                     walk_cycles=walks * cpu.walk_cycles, cycles=cycles, ns=cycles * 1000 / cpu.freq_mhz,
                     faults=faults, anon_huge_kb=anon_huge_kb)


def offset_chunks(size: int, n: int, seed: int, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """``n`` uniformly random 8-byte-aligned offsets into ``size`` bytes (int64), ``chunk`` at a time.

    One numpy Generator seeded with ``seed`` draws them all, so the chunks joined are one sequence
    whatever ``chunk`` is (``random_offsets`` is that sequence in one array).
    """
    if size < 8 or n < 0 or chunk <= 0:
        raise ValueError(f"offset_chunks: size {size} (at least 8), n {n} (not negative), chunk {chunk}")
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        yield rng.integers(0, size // 8, min(chunk, n - start), dtype=np.int64) * 8


def random_offsets(size: int, n: int, seed: int) -> np.ndarray:
    """``n`` uniformly random 8-byte-aligned offsets into ``size`` bytes (int64), from ``seed``."""
    return np.concatenate([np.zeros(0, dtype=np.int64), *offset_chunks(size, n, seed)])


def check_tlb_args(size: object, loads: object, warm: object, seed: object) -> None:
    """ValueError (TypeError for a non-int) unless the scenario's arguments make sense.

    ``size``: a positive multiple of 2 MiB (a whole number of huge pages, so THP can cover all of it);
    ``loads``: positive; ``warm`` and ``seed``: not negative.
    """
    size_, loads_, warm_, seed_ = (_int_arg(name, value) for name, value in
                               (("size", size), ("loads", loads), ("warm", warm), ("seed", seed)))
    if size_ <= 0 or size_ % PMD_SIZE:
        raise ValueError(f"size must be a positive multiple of 2 MiB (a huge page), got {size_} bytes")
    if not 0 < loads_ <= MAX_LOADS:
        raise ValueError(f"loads must be in 1..{MAX_LOADS:,} (about 10 minutes of simulation), got {loads_}")
    if warm_ < 0:
        raise ValueError(f"warm must not be negative, got {warm_}")
    if seed_ < 0:
        raise ValueError(f"seed must not be negative, got {seed_}")


def tlb_ram(size: int) -> int:
    """The simulated RAM of a run over ``size`` bytes: the working set + 25% (page tables, free blocks
    for THP), at least 64 MiB."""
    return max(size + size // 4, MIN_RAM)


def check_tlb_machine(size: int, cpu: str | CpuModel, seed: int = 0) -> None:
    """ValueError unless this host can hold the machine a run over ``size`` bytes needs, or ``cpu`` names no
    model. Allocates nothing.

    Two checks: Machine()'s own (its RAM against MemAvailable), then the run's measured cost
    (HOST_BYTES_PER_GIB of host memory per GiB of working set: every page is mapped, so the frame table,
    the page tables and the kernel's per-page state are all in use) against MemAvailable.
    """
    from ..machine import check_machine_args, host_mem_available

    check_machine_args(ram=tlb_ram(size), swap=None, disk="nvme", thp="madvise", cpu=cpu, seed=seed,
                       settings=None, batch_faults=True)
    need, available = size // GiB * HOST_BYTES_PER_GIB, host_mem_available()
    if available is not None and need > available:
        raise ValueError(f"a run over it takes about {HOST_BYTES_PER_GIB // MiB} MiB of host memory per GiB, "
                         f"{need / GiB:.1f} GiB, and this host has {available / GiB:.1f} GiB available "
                         f"(MemAvailable): at most {available // HOST_BYTES_PER_GIB} GiB")


def _int_arg(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def run_kernel(cpu: str | CpuModel, huge: bool, size: int, loads: int, seed: int = 0,
               warm: int | None = None) -> TlbResult:
    """Random loads through the simulated kernel over one mapping with THP (``huge``) or 4 KiB pages.

    A fresh Machine (``enabled=madvise``, RAM ``tlb_ram(size)``) maps ``size`` bytes
    private and anonymous, madvise(MADV_HUGEPAGE) or madvise(MADV_NOHUGEPAGE) on all of it, writes one
    byte per 4 KiB page (the faults that map it: one per 2 MiB with THP, do_huge_pmd_anonymous_page),
    then runs ``warm`` (default loads // 10) uncounted loads from stream ``seed + 1`` and ``loads``
    counted ones from stream ``seed``. Deterministic: same arguments, same result.
    """
    from ..machine import Machine  # the kernel: imported when a run needs it

    warm = loads // 10 if warm is None else warm
    check_tlb_args(size, loads, warm, seed)
    model = get_cpu_model(cpu)
    m = Machine(ram=tlb_ram(size), cpu=model, thp="madvise", seed=seed)
    p = m.spawn("tlb")
    a = p.mmap(None, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    p.madvise(a, size, MADV_HUGEPAGE if huge else MADV_NOHUGEPAGE)
    p.touch(a, size, write=True)
    faults = p.task.min_flt + p.task.maj_flt
    for offsets in offset_chunks(size, warm, seed + 1):
        p.access(a + offsets)
    sim0, c0 = m.counters.sim.copy(), int(m.clock_cycles[0])
    for offsets in offset_chunks(size, loads, seed):
        p.access(a + offsets)
    sim, cycles = m.counters.sim - sim0, int(m.clock_cycles[0]) - c0
    rollup = m.read(f"/proc/{p.pid}/smaps_rollup")
    thp_kb = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("AnonHugePages:"))
    label = "THP" if huge else "4 KiB"
    return tlb_result(label, model, sim, cycles, faults=faults, anon_huge_kb=thp_kb)


@dataclass(frozen=True, slots=True)
class TlbReach:
    """The scenario's two runs on one CPU model: ``small`` (4 KiB pages) and ``huge`` (THP)."""

    cpu: CpuModel
    size: int
    loads: int
    warm: int
    seed: int
    small: TlbResult
    huge: TlbResult

    def ratio(self, field: str) -> float | None:
        """``field`` with 4 KiB pages over the same with THP (None when THP's is zero)."""
        a, b = float(getattr(self.small, field)), float(getattr(self.huge, field))
        return a / b if b else None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the arguments, the CPU model with its geometry sources, both results."""
        return {"size": self.size, "loads": self.loads, "warm": self.warm, "seed": self.seed,
                "thp": "madvise", "cpu": cpu_as_dict(self.cpu),
                "results": {"4k": asdict(self.small) | {"ns_per_load": self.small.ns_per_load},
                            "thp": asdict(self.huge) | {"ns_per_load": self.huge.ns_per_load}},
                "ratios": {f: self.ratio(f) for f in ("l1_misses", "walks", "walk_cycles", "ns")}}

    def summary(self) -> str:
        """One greppable line: ``summary: cpu=zen3 size=4GiB ... walks_4k=... walks_thp=... time_ratio=...``."""
        s, h = self.small, self.huge
        time_ratio = self.ratio("ns")
        ratio = "none" if time_ratio is None else f"{time_ratio:.2f}"
        size = _size(self.size).replace(" ", "")
        return (f"summary: cpu={self.cpu.name} size={size} loads={self.loads} seed={self.seed} "
                f"l1_misses_4k={s.l1_misses} l1_misses_thp={h.l1_misses} walks_4k={s.walks} walks_thp={h.walks} "
                f"ns_per_load_4k={s.ns_per_load:.2f} ns_per_load_thp={h.ns_per_load:.2f} time_ratio={ratio}")


def tlb_reach(size: int = 4 << 30, loads: int = 10_000_000, cpu: str | CpuModel = "skylake", seed: int = 0,
              warm: int | None = None) -> TlbReach:
    """The scenario: ``run_kernel`` with 4 KiB pages, then with THP, on the same loads."""
    warm = loads // 10 if warm is None else warm
    check_tlb_args(size, loads, warm, seed)
    model = get_cpu_model(cpu)
    small = run_kernel(model, False, size, loads, seed, warm)
    gc.collect()  # the first machine holds reference cycles: give its memory back before the second is built
    huge = run_kernel(model, True, size, loads, seed, warm)
    return TlbReach(cpu=model, size=size, loads=loads, warm=warm, seed=seed, small=small, huge=huge)


def cpu_as_dict(cpu: CpuModel) -> dict[str, Any]:
    """A CPU model's clock, latencies and TLB levels (entries, ways, source, reach) as plain data."""
    def level(lv: TlbLevel | None, page: int) -> dict[str, Any] | None:
        return None if lv is None else {"entries": lv.entries, "ways": lv.ways, "source": lv.source,
                                        "reach_bytes": lv.entries * page}
    return {"name": cpu.name, "freq_mhz": cpu.freq_mhz, "l1_hit_cycles": cpu.l1_hit_cycles,
            "stlb_hit_cycles": cpu.stlb_hit_cycles, "walk_cycles": cpu.walk_cycles,
            "l1_dtlb_4k": level(cpu.l1_dtlb_4k, PAGE_SIZE), "l1_dtlb_2m": level(cpu.l1_dtlb_2m, PMD_SIZE),
            "l1_2m": cpu.l1_2m.value, "stlb": level(cpu.stlb, PAGE_SIZE), "stlb_2m": level(cpu.stlb_2m, PMD_SIZE),
            "stlb_2m_mode": cpu.stlb_2m_mode.value, "sources": cpu.sources,
            "reach": reach(cpu)}


def reach(cpu: CpuModel) -> dict[str, int]:
    """How many bytes each TLB level maps at most with 4 KiB and with 2 MiB pages."""
    return {"l1_4k": cpu.l1_dtlb_4k.entries * PAGE_SIZE, "l1_2m": cpu.l1_2m_entries * PMD_SIZE,
            "stlb_4k": cpu.stlb.entries * PAGE_SIZE, "stlb_2m": cpu.stlb_2m_entries * PMD_SIZE}


def format_table(cpu: CpuModel, results: list[TlbResult]) -> list[str]:
    """The lines of one CPU model's table: its geometry with sources, then a row per run."""
    r = reach(cpu)
    lines = cpu.describe().splitlines()
    lines.append(f"  TLB reach: L1 dTLB {_size(r['l1_4k'])} with 4 KiB pages, {_size(r['l1_2m'])} with 2 MiB; "
                 f"STLB {_size(r['stlb_4k'])} with 4 KiB pages, " +
                 (f"{_size(r['stlb_2m'])} with 2 MiB" if r["stlb_2m"] else "none with 2 MiB (4 KiB entries only)"))
    kernel = any(x.faults for x in results)  # mapped by the kernel: how (pages mapped by hand: no faults)
    lines.append(f"  {'pages':8s}" + (f" {'faults':>10s} {'AnonHuge':>10s}" if kernel else "") +
                 f" {'loads':>11s} {'L1 dTLB miss':>13s} {'STLB hits':>11s} {'STLB miss':>11s} {'walk cycles':>13s}"
                 f" {'est. time':>10s} {'ns/load':>8s}")
    for x in results:
        lines.append(f"  {x.label:8s}" + (f" {x.faults:10,d} {_size(x.anon_huge_kb << 10):>10s}" if kernel else "") +
                     f" {x.loads:11,d} {x.l1_misses:13,d} {x.stlb_hits:11,d} {x.walks:11,d} {x.walk_cycles:13,d}"
                     f" {x.ns / 1e6:8.2f}ms {x.ns_per_load:8.2f}")
    return lines


def format_ratios(small: TlbResult, huge: TlbResult) -> str:
    """``4 KiB / THP: L1 dTLB misses 1.0x, STLB misses (walks) 9,980,216 vs none, time 4.11x``."""
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}x" if b else f"{a:,.0f} vs none"
    return (f"  {small.label} / {huge.label}: L1 dTLB misses {ratio(small.l1_misses, huge.l1_misses)}, "
            f"STLB misses (walks) {ratio(small.walks, huge.walks)}, "
            f"est. time {ratio(small.ns, huge.ns)}")


def render(report: TlbReach) -> list[str]:
    """The scenario's text report, ending with its summary line."""
    lines = [f"random 8-byte loads over a {_size(report.size)} private anonymous mapping written once: "
             f"{report.warm:,} to warm the TLB, then {report.loads:,} counted",
             "  4 KiB: madvise(MADV_NOHUGEPAGE); THP: madvise(MADV_HUGEPAGE), a huge page at each first write "
             "(transparent_hugepage/enabled=madvise)", ""]
    lines += format_table(report.cpu, [report.small, report.huge])
    lines.append(format_ratios(report.small, report.huge))
    lines += ["", "STLB miss = a page walk = perf's dTLB-load-misses; L1 dTLB miss = perf's dTLB-loads on AMD. "
              "Simulator figures (SimEvent), not kernel counters;",
              "est. time = translation cycles only (L1 hit, STLB hit, walk) at the model's clock.",
              report.summary()]
    return lines


def _size(n: int) -> str:
    """``4 GiB``, ``512 KiB``, ``0``: ``n`` bytes in the largest binary unit that divides it."""
    if n == 0:
        return "0"
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"
