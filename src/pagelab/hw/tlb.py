"""The TLBs of one CPU: L1 dTLB for 4 KiB pages, L1 dTLB for 2 MiB pages, and a shared STLB.

Each structure is set-associative with LRU replacement. All three live in one set of arrays so the
compiled MMU loop takes a handful of arguments: row ``geom[level, 0] + set`` of ``tag``/``val``/``age``
is one set, its first ``geom[level, 2]`` columns are the ways.

A tag is ``asid << 40 | size_bit << 39 | virtual page number`` (-1 = invalid): entries are tagged with
the PCID of the address space that filled them, as Linux uses PCIDs on CPUs that have them, so a
context switch does not flush (arch/x86/mm/tlb.c). ``val`` caches the leaf entry (PFN, RW, D) as it was
when the entry was filled; ``age`` is the LRU stamp.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .cpu import CpuModel

L1_4K = 0
L1_2M = 1
STLB = 2

ASID_SHIFT = 40
HUGE_TAG = 1 << 39

LAT_L1 = 0
LAT_STLB = 1
LAT_WALK = 2


class Tlb:
    """The TLB arrays of one CPU, shaped by a CpuModel."""

    def __init__(self, cpu: CpuModel) -> None:
        levels = (cpu.l1_dtlb_4k, cpu.l1_dtlb_2m, cpu.stlb)
        self.geom = np.zeros((3, 3), dtype=np.int64)
        row = 0
        for i, lv in enumerate(levels):
            self.geom[i] = (row, lv.sets, lv.ways)
            row += lv.sets
        max_ways = max(lv.ways for lv in levels)
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
    """Insert ``key -> entry`` into TLB ``level``, evicting the least recently used way."""
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
    """Invalidate the 4 KiB and 2 MiB translations of ``va`` in every level."""
    vpn = va >> 12
    vpn2 = va >> 21
    key4 = (asid << ASID_SHIFT) | vpn
    key2 = (asid << ASID_SHIFT) | HUGE_TAG | vpn2
    for level in range(3):
        row, way = tlb_find(tag, geom, level, key4, vpn)
        if way >= 0:
            tag[row, way] = -1
        row, way = tlb_find(tag, geom, level, key2, vpn2)
        if way >= 0:
            tag[row, way] = -1
