"""The TLBs of one CPU: L1 dTLB for 4 KiB pages, L1 dTLB for 2 MiB pages, and the STLB for each size.

Each structure is set-associative with LRU replacement. All of them live in one set of arrays so the
compiled MMU loop takes a handful of arguments: row ``geom[level, 0] + set`` of ``tag``/``val``/``age``
is one set, its first ``geom[level, 2]`` columns are the ways. The four levels are looked up by page
size: ``L1_4K``/``STLB`` for 4 KiB translations, ``L1_2M``/``STLB_2M`` for 2 MiB ones. Where the CPU
keeps both sizes in one array (``TlbShare.SHARED``) the two levels name the same rows, and the size
bit of the tag keeps the entries apart; where a level holds no 2 MiB entries (``TlbShare.NONE``) it
has no ways: a lookup misses, and the MMU loop does not fill it.

A tag is ``asid << 40 | size_bit << 39 | virtual page number`` (-1 = invalid): entries are tagged with
the PCID of the address space that filled them, as Linux uses PCIDs on CPUs that have them, so a
context switch does not flush (arch/x86/mm/tlb.c). ``val`` caches the leaf entry (PFN, RW, D) as it was
when the entry was filled; ``age`` is the LRU stamp.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .cpu import CpuModel, TlbShare

L1_4K = 0
L1_2M = 1
STLB = 2
STLB_2M = 3
N_LEVELS = 4

ASID_SHIFT = 40
HUGE_TAG = 1 << 39

LAT_L1 = 0
LAT_STLB = 1
LAT_WALK = 2


class Tlb:
    """The TLB arrays of one CPU, shaped by a CpuModel."""

    def __init__(self, cpu: CpuModel) -> None:
        self.geom = np.zeros((N_LEVELS, 3), dtype=np.int64)  # (first row, sets, ways); ways 0 = no array
        row = 0
        for level, lv in ((L1_4K, cpu.l1_dtlb_4k), (L1_2M, cpu.l1_dtlb_2m), (STLB, cpu.stlb),
                          (STLB_2M, cpu.stlb_2m)):
            if lv is not None:
                self.geom[level] = (row, lv.sets, lv.ways)
                row += lv.sets
        for level, base, mode in ((L1_2M, L1_4K, cpu.l1_2m), (STLB_2M, STLB, cpu.stlb_2m_mode)):
            if mode is TlbShare.SHARED:
                self.geom[level] = self.geom[base]
            elif mode is TlbShare.NONE:
                self.geom[level] = (0, 1, 0)
        max_ways = int(self.geom[:, 2].max())
        self.tag = np.full((row, max_ways), -1, dtype=np.int64)
        self.val = np.zeros((row, max_ways), dtype=np.int64)
        self.age = np.zeros((row, max_ways), dtype=np.int64)
        self.tick = np.zeros(2, dtype=np.int64)  # [LRU clock, whether a 2 MiB entry was ever filled]
        self.lat = np.array([cpu.l1_hit_cycles, cpu.stlb_hit_cycles, cpu.walk_cycles], dtype=np.int64)

    def flush_asid(self, asid: int) -> None:
        """Drop every entry of one PCID (INVPCID single-context)."""
        mask = (self.tag >= 0) & ((self.tag >> ASID_SHIFT) == asid)
        self.tag[mask] = -1

    def flush_page(self, asid: int, va: int) -> None:
        """INVLPG: drop the translations of ``va`` (both page sizes) for one PCID."""
        tlb_flush_page(self.tag, self.geom, asid, va)

    def entries(self, asid: int | None = None) -> int:
        """How many valid entries there are (of one PCID, if given)."""
        valid = self.tag >= 0
        if asid is not None:
            valid &= (self.tag >> ASID_SHIFT) == asid
        return int(valid.sum())


@njit(cache=True)
def tlb_find(tag: np.ndarray, geom: np.ndarray, level: int, key: int, setkey: int) -> tuple[int, int]:
    """Row and way of ``key`` in TLB ``level`` (way -1 when absent)."""
    row = geom[level, 0] + (setkey & (geom[level, 1] - 1))
    for way in range(geom[level, 2]):
        if tag[row, way] == key:
            return row, way
    return row, -1


@njit(cache=True)
def tlb_fill(tag: np.ndarray, val: np.ndarray, age: np.ndarray, geom: np.ndarray, level: int, key: int,
             setkey: int, entry: int, stamp: int) -> None:
    """Insert ``key -> entry`` into TLB ``level``, evicting the least recently used way.

    The level must have ways (``geom[level, 2] > 0``): callers test it for STLB_2M, which has none on
    CPUs whose STLB holds no 2 MiB entries. (A test inside this function halves the speed of the MMU
    loop on a walk-bound trace, as measured by bench/bench_mmu.py's scan: it stops LLVM inlining it.)
    """
    row = geom[level, 0] + (setkey & (geom[level, 1] - 1))
    victim = 0
    oldest = age[row, 0]
    for way in range(geom[level, 2]):
        if tag[row, way] == key or tag[row, way] < 0:
            victim = way
            break
        if age[row, way] < oldest:
            oldest = age[row, way]
            victim = way
    tag[row, victim] = key
    val[row, victim] = entry
    age[row, victim] = stamp


@njit(cache=True)
def tlb_flush_page(tag: np.ndarray, geom: np.ndarray, asid: int, va: int) -> None:
    """Invalidate the 4 KiB and 2 MiB translations of ``va`` in every level (INVLPG drops both sizes)."""
    vpn = va >> 12
    vpn2 = va >> 21
    key4 = (asid << ASID_SHIFT) | vpn
    key2 = (asid << ASID_SHIFT) | HUGE_TAG | vpn2
    for level in range(N_LEVELS):
        row, way = tlb_find(tag, geom, level, key4, vpn)
        if way >= 0:
            tag[row, way] = -1
        row, way = tlb_find(tag, geom, level, key2, vpn2)
        if way >= 0:
            tag[row, way] = -1
