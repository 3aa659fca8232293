"""TLB maintenance the x86 kernel does: PCID assignment on context switch, range and full flushes.

Mirrors arch/x86/mm/tlb.c: switch_mm_irqs_off() -> choose_new_asid() (TLB_NR_DYN_ASIDS = 6
address spaces keep their entries across switches; a 7th takes a slot round-robin and that slot is
flushed), and flush_tlb_mm_range() (up to tlb_single_page_flush_ceiling = 33 pages are flushed one
INVLPG at a time, anything larger flushes the whole address space).
Simplified: one CPU, so no IPIs or shootdowns; a flush of an mm that holds no PCID slot has nothing
to do (Linux bumps tlb_gen and flushes lazily on the next switch, with the same result).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...constants import PAGE_SIZE
from ...stats import SimEvent

if TYPE_CHECKING:
    from ...machine import Machine
    from ...mm.types import MmStruct

TLB_NR_DYN_ASIDS = 6
TLB_SINGLE_PAGE_FLUSH_CEILING = 33


class CpuTlbState:
    """Mirrors struct tlb_state: which mm owns each PCID slot, and the round-robin cursor."""

    def __init__(self) -> None:
        self.owners: list[MmStruct | None] = [None] * TLB_NR_DYN_ASIDS
        self.next_asid = 0
        self.loaded: MmStruct | None = None


def switch_mm(m: Machine, mm: MmStruct) -> int:
    """Mirrors switch_mm_irqs_off(): make ``mm`` current; returns its PCID slot.

    Without PCID (``CpuModel.pcid`` False) every switch to another mm is a CR3 write that flushes
    the whole TLB, and all address spaces share slot 0.
    """
    st = m.cpu_tlbstate
    if not m.cpu.pcid:
        if st.loaded is not mm:
            if st.loaded is not None:
                st.loaded.asid = -1
            m.tlb.tag[:] = -1
            m.counters.sim[SimEvent.TLB_FLUSH_MM] += 1
            mm.asid = 0
            st.owners[0] = mm
            st.loaded = mm
        return 0
    st.loaded = mm
    if mm.asid >= 0:
        return mm.asid
    asid = st.next_asid  # choose_new_asid(): no slot held, take the next one round-robin
    st.next_asid = (asid + 1) % TLB_NR_DYN_ASIDS
    old = st.owners[asid]
    if old is not None:
        old.asid = -1
        m.counters.sim[SimEvent.TLB_ASID_RECYCLE] += 1
    m.tlb.flush_asid(asid)
    st.owners[asid] = mm
    mm.asid = asid
    return asid


def release_asid(m: Machine, mm: MmStruct) -> None:
    """An mm is torn down: flush its entries and free its slot."""
    if mm.asid >= 0:
        m.tlb.flush_asid(mm.asid)
        m.cpu_tlbstate.owners[mm.asid] = None
        mm.asid = -1
    if m.cpu_tlbstate.loaded is mm:
        m.cpu_tlbstate.loaded = None


def flush_tlb_mm_range(m: Machine, mm: MmStruct, start: int, end: int) -> None:
    """Mirrors flush_tlb_mm_range(): INVLPG each page up to the ceiling, else flush the mm."""
    if mm.asid < 0 or end <= start:
        return
    npages = (end - start) // PAGE_SIZE
    if npages <= TLB_SINGLE_PAGE_FLUSH_CEILING:
        for addr in range(start, end, PAGE_SIZE):
            m.tlb.flush_page(mm.asid, addr)
        m.counters.sim[SimEvent.TLB_FLUSH_ONE] += npages
    else:
        m.tlb.flush_asid(mm.asid)
        m.counters.sim[SimEvent.TLB_FLUSH_MM] += 1


def flush_tlb_page(m: Machine, mm: MmStruct, addr: int) -> None:
    """Mirrors flush_tlb_page(): drop one page's translation (ptep_clear_flush's flush)."""
    flush_tlb_mm_range(m, mm, addr, addr + PAGE_SIZE)
