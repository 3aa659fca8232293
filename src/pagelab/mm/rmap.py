"""Reverse-map bookkeeping: which folios are mapped, how often, and the anon_vma of a VMA.

Mirrors mm/rmap.c: anon_vma_prepare() (with find_mergeable_anon_vma()), folio_add_new_anon_rmap(),
folio_add_file_rmap_pte(), folio_remove_rmap_pte(). The per-mm RSS counters move here too, as
Linux's callers do right beside these calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hw.physmem import PG
from ..stats import MM_ANONPAGES, MM_SHMEMPAGES, NodeStat
from .types import VM_ACCESS_FLAGS, Vma
from .vma import find_vma_next, find_vma_prev, linear_page_index

if TYPE_CHECKING:
    from ..machine import Machine


def anon_vma_prepare(vma: Vma) -> int:
    """Mirrors anon_vma_prepare(): give ``vma`` an anon_vma, reusing a compatible neighbour's.

    find_mergeable_anon_vma() reuses the anon_vma of an adjacent VMA that could merge with this one.
    """
    if vma.anon_vma is None:
        mm = vma.mm
        for other in (find_vma_prev(mm, vma), find_vma_next(mm, vma)):
            if (other is not None and other.anon_vma is not None and other.vm_file is None
                    and (other.vm_end == vma.vm_start or other.vm_start == vma.vm_end)
                    and (other.vm_flags ^ vma.vm_flags) & ~VM_ACCESS_FLAGS == 0):
                vma.anon_vma = other.anon_vma
                break
        else:
            vma.anon_vma = mm.machine.next_object_id()
    return vma.anon_vma


def folio_add_new_anon_rmap(m: Machine, vma: Vma, pfn: int, addr: int) -> None:
    """Mirrors folio_add_new_anon_rmap(): a new, exclusive anon page mapped once at ``addr``."""
    frames = m.frames
    frames.flags[pfn] |= PG.ANON | PG.SWAPBACKED | PG.UPTODATE | PG.ANON_EXCLUSIVE
    frames.mapping[pfn] = anon_vma_prepare(vma)  # set already by the caller; returns its id
    frames.index[pfn] = linear_page_index(vma, addr)
    frames.mapcount[pfn] = 1
    m.counters.mod_node_state(NodeStat.NR_ANON_MAPPED, 1)
    vma.mm.rss[MM_ANONPAGES] += 1


def folio_add_file_rmap_pte(m: Machine, vma: Vma, pfn: int) -> None:
    """Mirrors folio_add_file_rmap_pte() for a shmem page: one more mapping."""
    frames = m.frames
    frames.mapcount[pfn] += 1
    if frames.mapcount[pfn] == 1:
        m.counters.mod_node_state(NodeStat.NR_FILE_MAPPED, 1)
    vma.mm.rss[MM_SHMEMPAGES] += 1


def folio_remove_rmap_pte(m: Machine, vma: Vma, pfn: int) -> None:
    """Mirrors folio_remove_rmap_pte(): one mapping of ``pfn`` is gone (the caller drops the ref)."""
    frames = m.frames
    frames.mapcount[pfn] -= 1
    anon = bool(frames.flags[pfn] & PG.ANON)
    if frames.mapcount[pfn] == 0:
        m.counters.mod_node_state(NodeStat.NR_ANON_MAPPED if anon else NodeStat.NR_FILE_MAPPED, -1)
    vma.mm.rss[MM_ANONPAGES if anon else MM_SHMEMPAGES] -= 1
