"""CPU models: clock frequency, TLB geometry and latencies, each number with its source.

The simulated clock counts CPU cycles; ``CpuModel.freq_mhz`` turns them into nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class TlbLevel:
    """One set-associative TLB structure: ``entries`` split into ``entries // ways`` sets."""

    entries: int
    ways: int

    @property
    def sets(self) -> int:
        return self.entries // self.ways


@dataclass(frozen=True, slots=True)
class CpuModel:
    """A named CPU: what the MMU loop needs to know about the silicon."""

    name: str
    freq_mhz: int
    l1_dtlb_4k: TlbLevel
    l1_dtlb_2m: TlbLevel
    stlb: TlbLevel  # shared by 4 KiB and 2 MiB translations
    l1_hit_cycles: int
    stlb_hit_cycles: int
    walk_cycles: int
    pcid: bool
    sources: str


CPU_MODELS: dict[str, CpuModel] = {
    "skylake": CpuModel(
        name="skylake",
        # 2.6 GHz: the clock of the reference VM ("Intel Xeon Processor", Skylake-SP class) on which the
        # kernel-side fault costs in hw/cost.py were measured (linux-mm-facts.md section 12).
        freq_mhz=2600,
        # Intel 64 and IA-32 Architectures Optimization Reference Manual 248966-045, Table 2-15 (Skylake):
        # L1 DTLB 64 x 4-way for 4 KiB, 32 x 4-way for 2 MiB; STLB 1536 entries shared by 4 KiB and 2 MiB,
        # 12-way per the manual (CPUID reports 6-way; we follow the manual).
        l1_dtlb_4k=TlbLevel(64, 4),
        l1_dtlb_2m=TlbLevel(32, 4),
        stlb=TlbLevel(1536, 12),
        # Latencies: L1 DTLB hit is folded into the load (1 cycle charged per access); an STLB hit
        # adds 7-12 cycles (9 used); a walk with upper levels in the paging-structure caches and the PTE
        # in L1/L2 costs about 20-40 cycles (30 used) (linux-mm-facts.md section 11).
        l1_hit_cycles=1,
        stlb_hit_cycles=9,
        walk_cycles=30,
        # The reference CPU has pcid and invpcid and no PTI (Meltdown "Not affected").
        pcid=True,
        sources="Intel ORM 248966-045 Table 2-15; linux-mm-facts.md sections 11-12",
    ),
    "tiny": CpuModel(
        name="tiny",
        # A teaching model: TLBs small enough to watch entries come and go by hand.
        freq_mhz=1000,
        l1_dtlb_4k=TlbLevel(4, 2),
        l1_dtlb_2m=TlbLevel(2, 2),
        stlb=TlbLevel(16, 4),
        l1_hit_cycles=1,
        stlb_hit_cycles=10,
        walk_cycles=100,
        pcid=True,
        sources="invented for teaching",
    ),
}


# The same core with PCIDs unused (kernels before 4.14, or booted with nopcid): every switch flushes.
CPU_MODELS["skylake-nopcid"] = replace(CPU_MODELS["skylake"], name="skylake-nopcid", pcid=False,
                                       sources="as skylake; arch/x86/mm/tlb.c without X86_FEATURE_PCID")


def get_cpu_model(name: str | CpuModel) -> CpuModel:
    """Look a model up by name; a ValueError lists the known ones."""
    if isinstance(name, CpuModel):
        return name
    try:
        return CPU_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown cpu model {name!r}; known: {', '.join(sorted(CPU_MODELS))}") from None
