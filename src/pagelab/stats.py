"""Counters with Linux's names: /proc/vmstat events and gauges, per-mm RSS, perf software events.

Mirrors include/linux/vm_event_item.h (enum vm_event_item), include/linux/mmzone.h (enum
node_stat_item / zone_stat_item), include/linux/mm_types_task.h (MM_* rss counters) and
include/uapi/linux/perf_event.h (PERF_COUNT_SW_PAGE_FAULTS*). Each enum member's *value* is the exact
text Linux prints, so no parallel name table can drift. Only events this simulator models are listed:
an absent line means "not modelled", never a silent zero.

Simulator-only figures (TLB hits, page walks, cycles) live in ``SimEvent`` so they can never pass
for kernel numbers.
"""

from __future__ import annotations

import enum

import numpy as np

from .constants import HPAGE_PMD_NR


class VmEvent(enum.Enum):
    """Mirrors enum vm_event_item (include/linux/vm_event_item.h): the event lines of /proc/vmstat."""

    __hash__ = object.__hash__  # members are singletons; Enum's Python-level hash is slow

    PGPGIN = "pgpgin"  # KiB read from block devices (submit_bio(): count_vm_events(PGPGIN, sectors / 2))
    PGPGOUT = "pgpgout"  # KiB written to block devices
    PGACTIVATE = "pgactivate"  # folios moved to an active list (folio_activate(), shrink_folio_list())
    PGDEACTIVATE = "pgdeactivate"  # folios moved to an inactive list (folio_deactivate(): MADV_COLD)
    PGLAZYFREE = "pglazyfree"
    PGFAULT = "pgfault"
    PGMAJFAULT = "pgmajfault"
    PGLAZYFREED = "pglazyfreed"  # MADV_FREE'd folios reclaim discarded (MADV_PAGEOUT here)
    PGREUSE = "pgreuse"
    DROP_PAGECACHE = "drop_pagecache"
    DROP_SLAB = "drop_slab"
    # --- mlock (issue #9): the unevictable LRU's events, in vm_event_item's order ---
    UNEVICTABLE_PGCULLED = "unevictable_pgs_culled"  # moved to the unevictable list
    UNEVICTABLE_PGSCANNED = "unevictable_pgs_scanned"  # scanned by reclaim's unevictable walk (none here)
    UNEVICTABLE_PGRESCUED = "unevictable_pgs_rescued"  # moved back to an evictable list
    UNEVICTABLE_PGMLOCKED = "unevictable_pgs_mlocked"
    UNEVICTABLE_PGMUNLOCKED = "unevictable_pgs_munlocked"
    UNEVICTABLE_PGCLEARED = "unevictable_pgs_cleared"  # PG_mlocked still set when the folio was freed
    UNEVICTABLE_PGSTRANDED = "unevictable_pgs_stranded"  # munlocked but could not be isolated (none here)
    THP_FAULT_ALLOC = "thp_fault_alloc"
    THP_FAULT_FALLBACK = "thp_fault_fallback"
    THP_FILE_MAPPED = "thp_file_mapped"  # a file folio mapped by a PMD (do_set_pmd())
    THP_SPLIT_PAGE = "thp_split_page"
    THP_DEFERRED_SPLIT_PAGE = "thp_deferred_split_page"
    THP_SPLIT_PMD = "thp_split_pmd"
    THP_ZERO_PAGE_ALLOC = "thp_zero_page_alloc"
    THP_ZERO_PAGE_ALLOC_FAILED = "thp_zero_page_alloc_failed"
    THP_SWPOUT_FALLBACK = "thp_swpout_fallback"  # a THP reclaim split because no swap space took it whole


class NodeStat(enum.Enum):
    """Mirrors node_stat_item / zone_stat_item gauges: the ``nr_*`` lines of /proc/vmstat (in pages)."""

    __hash__ = object.__hash__

    NR_FREE_PAGES = "nr_free_pages"
    NR_INACTIVE_ANON = "nr_inactive_anon"
    NR_ACTIVE_ANON = "nr_active_anon"
    NR_INACTIVE_FILE = "nr_inactive_file"
    NR_ACTIVE_FILE = "nr_active_file"
    NR_UNEVICTABLE = "nr_unevictable"
    NR_ANON_MAPPED = "nr_anon_pages"
    NR_FILE_MAPPED = "nr_mapped"
    NR_FILE_PAGES = "nr_file_pages"
    NR_DIRTY = "nr_dirty"
    NR_WRITEBACK = "nr_writeback"
    NR_SHMEM = "nr_shmem"
    NR_FILE_THPS = "nr_file_hugepages"  # PMD-sized page-cache folios, kept in pages, printed in THPs
    NR_FILE_PMDMAPPED = "nr_file_pmdmapped"  # file pages mapped by PMDs, kept in pages, printed in THPs
    NR_ANON_THPS = "nr_anon_transparent_hugepages"  # kept in pages; /proc/vmstat prints it in THPs
    NR_VMSCAN_IMMEDIATE = "nr_vmscan_immediate_reclaim"  # dirty file folios reclaim met (to reclaim when written)
    NR_PAGETABLE = "nr_page_table_pages"
    NR_MLOCK = "nr_mlock"  # a zone stat in Linux (mlock, issue #9); one zone here


# Zone gauges Linux prints before the node ones; on a one-zone, one-node machine they equal them.
ZONE_MIRRORS = {
    "nr_zone_inactive_anon": NodeStat.NR_INACTIVE_ANON,
    "nr_zone_active_anon": NodeStat.NR_ACTIVE_ANON,
    "nr_zone_inactive_file": NodeStat.NR_INACTIVE_FILE,
    "nr_zone_active_file": NodeStat.NR_ACTIVE_FILE,
    "nr_zone_unevictable": NodeStat.NR_UNEVICTABLE,
}


class MmCounter(enum.IntEnum):
    """Mirrors the MM_* rss counters of struct mm_struct (include/linux/mm_types_task.h)."""

    MM_FILEPAGES = 0
    MM_ANONPAGES = 1
    MM_SWAPENTS = 2
    MM_SHMEMPAGES = 3


# The same indices as plain ints, for the fault path (IntEnum attribute access is slow).
MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES = 0, 1, 2, 3


class PerfEvent(enum.Enum):
    """perf's software page-fault events, named as ``perf stat -e`` names them."""

    __hash__ = object.__hash__

    PAGE_FAULTS = "page-faults"
    PAGE_FAULTS_MIN = "minor-faults"
    PAGE_FAULTS_MAJ = "major-faults"


class SimEvent(enum.IntEnum):
    """Simulator-only hardware figures, kept in one int64 array the compiled MMU loop updates.

    The value is the index into that array. These are not Linux counters.
    """

    ACCESSES = 0
    LOADS = 1
    STORES = 2
    DTLB_4K_HIT = 3
    DTLB_2M_HIT = 4
    STLB_HIT = 5
    STLB_MISS = 6  # = page walks started
    WALK_TRAPS = 7  # walks that ended in a #PF
    DIRTY_WALKS = 8  # TLB hits that walked anyway to set the Dirty bit
    TLB_FLUSH_ONE = 9  # single-page invalidations (INVLPG / INVPCID addr)
    TLB_FLUSH_MM = 10  # whole-address-space flushes
    TLB_ASID_RECYCLE = 11  # a PCID slot given to another mm (its entries flushed)

    @property
    def text(self) -> str:
        return "sim_" + self.name.lower()


N_SIM_EVENTS = len(SimEvent)


class Counters:
    """One machine's event counters and gauges; ``count_vm_event`` is the only way events move."""

    def __init__(self) -> None:
        self.events: dict[VmEvent, int] = dict.fromkeys(VmEvent, 0)
        self.gauges: dict[NodeStat, int] = dict.fromkeys(NodeStat, 0)
        self.sim = np.zeros(N_SIM_EVENTS, dtype=np.int64)

    def count_vm_event(self, ev: VmEvent, n: int = 1) -> None:
        """Mirrors count_vm_events() (include/linux/vmstat.h)."""
        self.events[ev] += n

    def mod_node_state(self, item: NodeStat, delta: int) -> None:
        """Mirrors mod_node_page_state() / __mod_lruvec_state() (mm/vmstat.c)."""
        self.gauges[item] += delta

    def vmstat(self) -> dict[str, int]:
        """The modelled /proc/vmstat lines as a dict, in Linux's order: zone, node gauges, then events."""
        out: dict[str, int] = {"nr_free_pages": self.gauges[NodeStat.NR_FREE_PAGES]}
        for name, item in ZONE_MIRRORS.items():
            out[name] = self.gauges[item]
        out[NodeStat.NR_MLOCK.value] = self.gauges[NodeStat.NR_MLOCK]  # a zone stat: after nr_zone_*
        for item in NodeStat:
            if item is not NodeStat.NR_FREE_PAGES and item is not NodeStat.NR_MLOCK:
                out[item.value] = self.gauges[item]
        for item in (NodeStat.NR_ANON_THPS, NodeStat.NR_FILE_THPS, NodeStat.NR_FILE_PMDMAPPED):
            out[item.value] //= HPAGE_PMD_NR  # vmstat_item_print_in_thp()
        for ev in VmEvent:
            out[ev.value] = self.events[ev]
        return out

    def sim_events(self) -> dict[str, int]:
        return {ev.text: int(self.sim[ev]) for ev in SimEvent}
