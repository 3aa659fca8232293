"""CPU models: clock frequency, TLB geometry and latencies, each number with its source.

The simulated clock counts CPU cycles; ``CpuModel.freq_mhz`` turns them into nanoseconds.

A data TLB level caches 2 MiB translations in one of three ways (``TlbShare``): in an array of its
own (Intel's L1 dTLBs: 32 entries for 2 MiB pages beside 64 for 4 KiB pages), in the same array as
4 KiB translations, competing for its ways (Intel's STLB since Haswell, every level of AMD Zen), or
not at all (Intel's Nehalem STLB: a 2 MiB translation that misses the L1 is walked again).

Simplified: no 1 GiB entries, no instruction TLBs, LRU replacement everywhere; AMD's L2 DTLB is
skewed-associative with ways assigned by page size, modelled as one set-associative array.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class TlbShare(enum.Enum):
    """Where a TLB level keeps 2 MiB translations."""

    SEPARATE = "separate"  # an array of its own, with its own geometry
    SHARED = "shared"  # the array that holds 4 KiB translations (its entries hold either size)
    NONE = "none"  # nowhere: this level caches 4 KiB translations only


@dataclass(frozen=True, slots=True)
class TlbLevel:
    """One set-associative TLB array: ``entries`` split into ``entries // ways`` sets (a power of two).

    ``source`` says where the geometry comes from.
    """

    entries: int
    ways: int
    source: str = ""

    def __post_init__(self) -> None:
        if self.entries <= 0 or self.ways <= 0 or self.entries % self.ways:
            raise ValueError(f"TLB geometry {self.entries} entries x {self.ways} ways: not whole sets")
        sets = self.entries // self.ways
        if sets & (sets - 1):
            raise ValueError(f"TLB geometry {self.entries} x {self.ways}: {sets} sets is not a power of two")

    @property
    def sets(self) -> int:
        return self.entries // self.ways


@dataclass(frozen=True, slots=True)
class CpuModel:
    """A named CPU: what the MMU loop needs to know about the silicon.

    ``l1_2m`` and ``stlb_2m_mode`` say where each level keeps 2 MiB translations; ``l1_dtlb_2m`` and
    ``stlb_2m`` give the geometry of a separate array (None unless the mode is SEPARATE).
    """

    name: str
    freq_mhz: int
    l1_dtlb_4k: TlbLevel
    l1_dtlb_2m: TlbLevel | None
    stlb: TlbLevel
    l1_hit_cycles: int
    stlb_hit_cycles: int
    walk_cycles: int
    pcid: bool
    sources: str
    l1_2m: TlbShare = TlbShare.SEPARATE
    stlb_2m_mode: TlbShare = TlbShare.SHARED
    stlb_2m: TlbLevel | None = None

    def __post_init__(self) -> None:
        for what, mode, level in (("L1 dTLB", self.l1_2m, self.l1_dtlb_2m), ("STLB", self.stlb_2m_mode, self.stlb_2m)):
            if (mode is TlbShare.SEPARATE) != (level is not None):
                raise ValueError(f"cpu {self.name}: {what} 2 MiB mode {mode.value} with geometry {level}")
        if self.l1_2m is TlbShare.NONE:
            raise ValueError(f"cpu {self.name}: every x86 core caches 2 MiB translations in its L1 dTLB")

    @property
    def stlb_2m_entries(self) -> int:
        """How many 2 MiB translations the STLB can hold at most (0: it holds none)."""
        if self.stlb_2m_mode is TlbShare.SHARED:
            return self.stlb.entries
        return self.stlb_2m.entries if self.stlb_2m is not None else 0

    @property
    def l1_2m_entries(self) -> int:
        """How many 2 MiB translations the L1 dTLB can hold at most."""
        return self.l1_dtlb_2m.entries if self.l1_dtlb_2m is not None else self.l1_dtlb_4k.entries

    def describe(self) -> str:
        """One line per TLB level with its geometry and source, for reports."""
        def geo(lv: TlbLevel) -> str:
            return f"{lv.entries} entries, {'fully associative' if lv.sets == 1 else f'{lv.ways}-way'}"
        l1_2m = geo(self.l1_dtlb_2m) if self.l1_dtlb_2m is not None else "shared with 4 KiB"
        stlb_2m = {TlbShare.SHARED: f"shared with 4 KiB (up to {self.stlb.entries})",
                   TlbShare.NONE: "none"}.get(self.stlb_2m_mode, geo(self.stlb_2m) if self.stlb_2m else "")
        lines = [f"cpu {self.name}: {self.freq_mhz} MHz; L1 hit {self.l1_hit_cycles}, "
                 f"STLB hit +{self.stlb_hit_cycles}, walk +{self.walk_cycles} cycles",
                 f"  L1 dTLB 4 KiB: {geo(self.l1_dtlb_4k)}  [{self.l1_dtlb_4k.source}]",
                 f"  L1 dTLB 2 MiB: {l1_2m}" + (f"  [{self.l1_dtlb_2m.source}]" if self.l1_dtlb_2m else ""),
                 f"  STLB 4 KiB: {geo(self.stlb)}  [{self.stlb.source}]",
                 f"  STLB 2 MiB: {stlb_2m}" + (f"  [{self.stlb_2m.source}]" if self.stlb_2m else ""),
                 f"  sources: {self.sources}"]
        return "\n".join(lines)


_INTEL_ORM_SKL = "Intel ORM 248966-045 Table 2-15 (Skylake)"
_NEHALEM = "RealWorldTech Inside Nehalem (2008); Tom's Hardware Core i7 review p. 11"
_ZEN3_CPUID = "cpuid on this host (AMD EPYC, family 19h model 01h)"

CPU_MODELS: dict[str, CpuModel] = {
    "skylake": CpuModel(
        name="skylake",
        # 2.6 GHz: the clock of the reference VM ("Intel Xeon Processor", Skylake-SP class) on which the
        # kernel-side fault costs in hw/cost.py were measured (linux-mm-facts.md section 12).
        freq_mhz=2600,
        # L1 DTLB 64 x 4-way for 4 KiB, 32 x 4-way for 2 MiB; STLB 1536 entries shared by 4 KiB and 2 MiB,
        # 12-way per the manual (CPUID leaf 2 reports 6-way; we follow the manual).
        l1_dtlb_4k=TlbLevel(64, 4, _INTEL_ORM_SKL),
        l1_dtlb_2m=TlbLevel(32, 4, _INTEL_ORM_SKL),
        stlb=TlbLevel(1536, 12, _INTEL_ORM_SKL),
        stlb_2m_mode=TlbShare.SHARED,  # "STLB: 4 KB and 2/4 MB pages, 1536 entries, 12-way" (same table)
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
    "nehalem": CpuModel(
        name="nehalem",
        # The same clock as skylake, so that runs compare TLB geometry only.
        freq_mhz=2600,
        # L1 DTLB 64 x 4-way (4 KiB) and 32 x 4-way (2 MiB), as Skylake; the second-level TLB holds
        # 4 KiB translations only: 512 entries, 4-way ("operates only with small pages"). 2 MiB
        # translations entered the STLB with Haswell.
        l1_dtlb_4k=TlbLevel(64, 4, _NEHALEM),
        l1_dtlb_2m=TlbLevel(32, 4, _NEHALEM),
        stlb=TlbLevel(512, 4, _NEHALEM),
        stlb_2m_mode=TlbShare.NONE,
        # Latencies: estimates, as skylake's (linux-mm-facts.md section 11).
        l1_hit_cycles=1,
        stlb_hit_cycles=9,
        walk_cycles=30,
        pcid=True,
        sources="Tom's Hardware 'Intel Core i7 (Nehalem)' p. 11 and RealWorldTech 'Inside Nehalem' pp. 4, 8; "
                "clock and latencies as skylake (estimates)",
    ),
    "zen3": CpuModel(
        name="zen3",
        # This host: /proc/cpuinfo "AMD EPYC", cpu family 25 (19h) model 1 (Milan), cpu MHz 2445.
        freq_mhz=2445,
        # CPUID Fn8000_0005 EBX/EAX: L1 DTLB 64 entries, fully associative (assoc 0xFF), for 4 KiB and
        # for 2 MiB pages: one array holding every page size (AMD SOG for family 19h, pub. 56665).
        l1_dtlb_4k=TlbLevel(64, 64, _ZEN3_CPUID + ": Fn8000_0005 EBX=0xff40ff40, EAX=0xff40ff40"),
        l1_dtlb_2m=None,
        l1_2m=TlbShare.SHARED,
        # CPUID Fn8000_0006 EBX: L2 DTLB 2048 entries, assoc code 6 (8-way) for 4 KiB pages;
        # EAX: 2048 entries, assoc code 4 (4-way) for 2 MiB pages: one unified array of 2048 entries.
        # Simplified: 2 MiB entries use the 8-way sets of 4 KiB ones.
        stlb=TlbLevel(2048, 8, _ZEN3_CPUID + ": Fn8000_0006 EBX=0x68004200, EAX=0x48002200"),
        stlb_2m_mode=TlbShare.SHARED,
        # Latencies: estimates, as skylake's (linux-mm-facts.md section 11): the sources at hand give
        # none for Zen 3, so runs compare TLB geometry only.
        l1_hit_cycles=1,
        stlb_hit_cycles=9,
        walk_cycles=30,
        pcid=True,  # /proc/cpuinfo flags: pcid invpcid
        sources="CPUID Fn8000_0005/Fn8000_0006 read on this host; AMD SOG family 19h (56665); "
                "latencies as skylake (estimates, linux-mm-facts.md section 11)",
    ),
    "tiny": CpuModel(
        name="tiny",
        # A teaching model: TLBs small enough to watch entries come and go by hand.
        freq_mhz=1000,
        l1_dtlb_4k=TlbLevel(4, 2, "invented for teaching"),
        l1_dtlb_2m=TlbLevel(2, 2, "invented for teaching"),
        stlb=TlbLevel(16, 4, "invented for teaching"),
        stlb_2m_mode=TlbShare.SHARED,
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


@dataclass(frozen=True, slots=True)
class X86CpuId:
    """One row of a CPU match table: a vendor, a family and model ranges, and the model that stands for them.

    Mirrors struct x86_cpu_id (arch/x86/include/asm/cpu_device_id.h): vendor, family and model as
    /proc/cpuinfo prints them (``vendor_id``, ``cpu family``, ``model``, in decimal there).
    """

    vendor: str
    family: int
    models: tuple[tuple[int, int], ...]  # inclusive ranges, as the kernel's "case 0x00 ... 0x0f:"
    cpu_model: str  # the key in CPU_MODELS
    source: str


# Which cores each model stands for (same TLB geometry). Intel: arch/x86/include/asm/intel-family.h
# (INTEL_NEHALEM* and the "Sky Lake" core family: SKYLAKE*, KABYLAKE*, COMETLAKE*; Cascade Lake and
# Cooper Lake are SKYLAKE_X steppings). AMD: arch/x86/kernel/cpu/amd.c bsp_init_amd() sets
# X86_FEATURE_ZEN3 for family 0x19, models 0x00-0x0f and 0x20-0x5f.
X86_CPU_IDS: tuple[X86CpuId, ...] = (
    X86CpuId("GenuineIntel", 6, ((0x1A, 0x1A), (0x1E, 0x1F), (0x2E, 0x2E)), "nehalem",
             "intel-family.h: INTEL_NEHALEM_EP 0x1A, INTEL_NEHALEM 0x1E, INTEL_NEHALEM_G 0x1F, INTEL_NEHALEM_EX 0x2E"),
    X86CpuId("GenuineIntel", 6, ((0x4E, 0x4E), (0x55, 0x55), (0x5E, 0x5E), (0x8E, 0x8E), (0x9E, 0x9E),
                                 (0xA5, 0xA6)), "skylake",
             "intel-family.h: INTEL_SKYLAKE_L 0x4E, _X 0x55, 0x5E, INTEL_KABYLAKE_L 0x8E, 0x9E, "
             "INTEL_COMETLAKE 0xA5, _L 0xA6 (Sky Lake cores)"),
    X86CpuId("AuthenticAMD", 0x19, ((0x00, 0x0F), (0x20, 0x5F)), "zen3",
             "arch/x86/kernel/cpu/amd.c bsp_init_amd(): X86_FEATURE_ZEN3 for family 0x19 models 0x00-0x0f, 0x20-0x5f"),
)


def x86_match_cpu(vendor: str, family: int, model: int) -> str | None:
    """The name of the CPU model that stands for this CPU, or None when no model does.

    Mirrors x86_match_cpu() in arch/x86/kernel/cpu/match.c: the first row of X86_CPU_IDS whose vendor,
    family and model range match. Takes /proc/cpuinfo's ``vendor_id``, ``cpu family`` and ``model``.
    Simplified: no stepping or feature matching (no model here needs them).
    """
    for row in X86_CPU_IDS:
        if row.vendor == vendor and row.family == family and any(lo <= model <= hi for lo, hi in row.models):
            return row.cpu_model
    return None
