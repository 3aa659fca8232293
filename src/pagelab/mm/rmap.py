"""Reverse-map bookkeeping: which folios are mapped, how often, and the anon_vma of a VMA.

Mirrors mm/rmap.c: struct anon_vma, anon_vma_prepare() (with find_mergeable_anon_vma()),
folio_add_new_anon_rmap(), folio_add_file_rmap_pte(), folio_remove_rmap_pte(), and rmap_walk()
(rmap_walk_anon() / rmap_walk_file()): from a frame's ``mapping`` column to the anon_vma or
address_space (``m.mappings``), from there to the VMAs, and in each to the PTE that maps the page.
The per-mm RSS counters move here too, as Linux's callers do right beside these calls.

fork() (anon_vma_fork()) links the child's VMA into every anon_vma of the parent's VMA and gives it one
of its own, for the pages it will copy; vma->anon_vma_chain lists them all. The per-folio mm ids of
CONFIG_MM_ID (folio_add_return_large_mapcount() ...) tell whether a large folio may be mapped by more than
one mm, which decides copy-on-write reuse of a THP's pages.

Simplified: no anon_vma reuse in anon_vma_clone() (each forked VMA gets a fresh anon_vma), no degree or
root; an anon_vma lives while a VMA links it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import _PAGE_PRESENT, _PAGE_PROTNONE, _PAGE_PSE, PTE_PFN_MASK
from ..constants import PAGE_SHIFT
from ..errors import kernel_bug
from ..hw.mmu import leaf_entries
from ..hw.physmem import PG
from ..stats import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, NodeStat
from .mm_inline import mlock_vma_folio, munlock_vma_folio
from .types import VM_ACCESS_FLAGS, Vma, VmFlag, add_mm_counter
from .vma import find_vma_next, find_vma_prev

if TYPE_CHECKING:
    from ..machine import Machine


class AnonVma:
    """Mirrors struct anon_vma: the VMAs whose anonymous pages may carry this ``id`` in ``mapping``.

    ``vmas`` stands for the anon_vma_chain's interval tree (rb_root): every linked VMA using it.
    """

    def __init__(self, m: Machine) -> None:
        self.machine = m
        self.id = m.register_mapping(self)
        self.vmas: dict[Vma, None] = {}

    def vma_link(self, vma: Vma) -> None:
        """Mirrors anon_vma_chain_link(): ``vma`` may now hold pages of this anon_vma."""
        self.vmas[vma] = None

    def vma_unlink(self, vma: Vma) -> None:
        """Mirrors unlink_anon_vmas(): the last VMA gone frees the anon_vma (put_anon_vma())."""
        self.vmas.pop(vma, None)
        if not self.vmas:
            self.machine.unregister_mapping(self.id)


def anon_vma_prepare(vma: Vma) -> int:
    """Mirrors anon_vma_prepare(): give ``vma`` an anon_vma, reusing a compatible neighbour's.

    find_mergeable_anon_vma() reuses the anon_vma of an adjacent VMA that could merge with this one.
    Returns the anon_vma's id (what the ``mapping`` column of its pages holds).
    """
    if vma.anon_vma is None:
        mm = vma.mm
        for other in (find_vma_prev(mm, vma), find_vma_next(mm, vma)):
            if (other is not None and other.anon_vma is not None and other.vm_file is None
                    and len(other.anon_vma_chain) == 1  # reusable_anon_vma(): list_is_singular()
                    and (other.vm_end == vma.vm_start or other.vm_start == vma.vm_end)
                    and (other.vm_flags ^ vma.vm_flags) & ~VM_ACCESS_FLAGS == 0):
                vma.anon_vma = other.anon_vma
                break
        else:
            vma.anon_vma = AnonVma(mm.machine)
        vma.anon_vma_chain.append(vma.anon_vma)
        vma.anon_vma.vma_link(vma)
    return vma.anon_vma.id


def anon_vma_fork(vma: Vma, pvma: Vma) -> None:
    """Mirrors anon_vma_fork(): the child's ``vma`` is linked into every anon_vma of the parent's ``pvma``
    (anon_vma_clone(): the pages they share are found from either side), then gets an anon_vma of its own
    for the pages it will copy. Nothing when the parent's VMA has none."""
    vma.anon_vma, vma.anon_vma_chain = None, []
    if pvma.anon_vma is None:
        return
    vma.anon_vma_chain = list(pvma.anon_vma_chain)
    for anon_vma in vma.anon_vma_chain:
        anon_vma.vma_link(vma)
    vma.anon_vma = AnonVma(vma.mm.machine)
    vma.anon_vma_chain.append(vma.anon_vma)
    vma.anon_vma.vma_link(vma)


def folio_move_anon_rmap(m: Machine, folio: int, vma: Vma) -> None:
    """Mirrors folio_move_anon_rmap(): an anon folio now exclusive to ``vma`` moves to its own anon_vma,
    so later reverse-map walks need not visit the other processes (do_wp_page() reusing it)."""
    kernel_bug(vma.anon_vma is None, "folio_move_anon_rmap: the VMA has no anon_vma")
    assert vma.anon_vma is not None
    frames = m.frames
    nr = 1 << int(frames.order[folio]) if frames.flags[folio] & PG.HEAD else 1
    frames.mapping[folio:folio + nr] = vma.anon_vma.id


# --- CONFIG_MM_ID: which mms map a large folio (include/linux/rmap.h) ------------------------------

def folio_add_return_large_mapcount(m: Machine, folio: int, diff: int, vma: Vma) -> int:
    """Mirrors folio_add_return_large_mapcount(): ``diff`` more mappings of large folio ``folio`` by
    ``vma``'s mm; the mm takes a free slot if it has none, and the folio is marked maybe-shared when a
    second mm maps it (or another mapping existed already). Returns the new large mapcount."""
    frames = m.frames
    mm_id = vma.mm.mm_id
    total = int(frames.large_mapcount[folio]) + diff
    frames.large_mapcount[folio] = total
    ids = frames.mm_id[:, folio]
    if ids[0] == mm_id:
        frames.mm_id_mapcount[0, folio] += diff
    elif ids[1] == mm_id:
        frames.mm_id_mapcount[1, folio] += diff
    elif ids[0] == 0:
        frames.mm_id[0, folio], frames.mm_id_mapcount[0, folio] = mm_id, diff
        if total != diff:
            frames.mm_ids_shared[folio] = True
    elif ids[1] == 0:
        frames.mm_id[1, folio], frames.mm_id_mapcount[1, folio] = mm_id, diff
        frames.mm_ids_shared[folio] = True
    return total


def folio_sub_return_large_mapcount(m: Machine, folio: int, diff: int, vma: Vma) -> int:
    """Mirrors folio_sub_return_large_mapcount(): ``diff`` mappings by ``vma``'s mm are gone. A slot
    whose mm maps nothing more is freed, and when one slot then holds every mapping the folio is
    exclusive again (only then: a slot still in use keeps the shared mark). Returns the new mapcount."""
    frames = m.frames
    mm_id = vma.mm.mm_id
    total = int(frames.large_mapcount[folio]) - diff
    frames.large_mapcount[folio] = total
    for slot in (0, 1):
        if frames.mm_id[slot, folio] == mm_id:
            frames.mm_id_mapcount[slot, folio] -= diff
            if frames.mm_id_mapcount[slot, folio] > 0:
                return total
            frames.mm_id_mapcount[slot, folio] = 0
            frames.mm_id[slot, folio] = 0
            break
    if total in (int(frames.mm_id_mapcount[0, folio]), int(frames.mm_id_mapcount[1, folio])):
        frames.mm_ids_shared[folio] = False
    return total


def folio_reset_mm_ids(m: Machine, folio: int) -> None:
    """The mm-id state of a folio that nothing maps any more (a split, a new compound page)."""
    frames = m.frames
    frames.mm_id[:, folio] = 0
    frames.mm_id_mapcount[:, folio] = 0
    frames.mm_ids_shared[folio] = False


def folio_add_new_anon_rmap(m: Machine, vma: Vma, pfns: int | np.ndarray, index: int | np.ndarray,
                            nr: int = 1) -> None:
    """Mirrors folio_add_new_anon_rmap(RMAP_EXCLUSIVE) for ``nr`` new order-0 folios (one PFN, or an
    array of them with their page indices): each is anon, exclusive and mapped once; NR_ANON_MAPPED and
    the mm's MM_ANONPAGES grow by ``nr`` (add_mm_counter(), which Linux's callers do beside this call).
    A fault maps one (nr = 1); the batched first-touch path maps many with the same code."""
    frames = m.frames
    frames.flags[pfns] |= PG.ANON | PG.SWAPBACKED | PG.UPTODATE | PG.ANON_EXCLUSIVE
    frames.mapping[pfns] = anon_vma_prepare(vma)  # set already by the caller; returns its id
    frames.index[pfns] = index
    frames.mapcount[pfns] = 1
    m.counters.mod_node_state(NodeStat.NR_ANON_MAPPED, nr)
    add_mm_counter(vma.mm, MM_ANONPAGES, nr)


def folio_remove_rmap_ptes_exclusive(m: Machine, vma: Vma, pfns: np.ndarray) -> None:
    """folio_remove_rmap_pte() for order-0 anon folios each mapped exactly once (the caller checked):
    the nr > 1 form zap uses for the common case. Their mapcounts drop to 0, NR_ANON_MAPPED and
    MM_ANONPAGES by ``len(pfns)``."""
    if vma.vm_flags & VmFlag.LOCKED:  # mlock (issue #9): __folio_remove_rmap() -> munlock_vma_folio()
        for pfn in pfns.tolist():
            munlock_vma_folio(m, vma, pfn)
    m.frames.mapcount[pfns] = 0
    m.counters.mod_node_state(NodeStat.NR_ANON_MAPPED, -pfns.shape[0])
    add_mm_counter(vma.mm, MM_ANONPAGES, -pfns.shape[0])


def mm_counter_file(m: Machine, folio: int) -> int:
    """Mirrors mm_counter_file(): MM_SHMEMPAGES for a shmem folio (swap-backed), else MM_FILEPAGES."""
    return MM_SHMEMPAGES if m.frames.flags[folio] & PG.SWAPBACKED else MM_FILEPAGES


def folio_add_file_rmap_ptes(m: Machine, vma: Vma, pfn: int, nr: int) -> None:
    """Mirrors folio_add_file_rmap_ptes() + the caller's add_mm_counter(): pages [pfn, pfn + nr) of one
    page-cache folio are mapped once more. Pages newly mapped count in NR_FILE_MAPPED (unless a PMD maps
    the folio already); the mm's file (or shmem) RSS grows by ``nr``. The references are the caller's."""
    frames = m.frames
    head = pfn - int(frames.head_offset[pfn])
    pages = slice(pfn, pfn + nr)
    first = int((frames.mapcount[pages] == 0).sum())
    frames.mapcount[pages] += 1
    if frames.flags[head] & PG.HEAD:
        folio_add_return_large_mapcount(m, head, nr, vma)
        frames.nr_pages_mapped[head] += first
        if frames.entire_mapcount[head]:
            first = 0
    if first:
        m.counters.mod_node_state(NodeStat.NR_FILE_MAPPED, first)
    vma.mm.rss[mm_counter_file(m, head)] += nr
    if not frames.flags[head] & PG.HEAD:  # mlock (issue #9): small folios only, as __folio_add_file_rmap()
        mlock_vma_folio(m, vma, head)


def folio_add_file_rmap_pte(m: Machine, vma: Vma, pfn: int) -> None:
    """Mirrors folio_add_file_rmap_pte(): folio_add_file_rmap_ptes() of one page."""
    folio_add_file_rmap_ptes(m, vma, pfn, 1)


def folio_add_file_rmap_pmd(m: Machine, vma: Vma, folio: int) -> None:
    """Mirrors folio_add_file_rmap_pmd(): a PMD-sized page-cache folio is mapped whole by one PMD.
    Its pages not mapped by PTEs count in NR_FILE_MAPPED, all of them in NR_FILE_PMDMAPPED; RSS is
    the caller's."""
    frames = m.frames
    nr = 1 << int(frames.order[folio])
    folio_add_return_large_mapcount(m, folio, 1, vma)
    frames.entire_mapcount[folio] += 1
    if frames.entire_mapcount[folio] == 1:
        m.counters.mod_node_state(NodeStat.NR_FILE_PMDMAPPED, nr)
        unmapped = nr - int(frames.nr_pages_mapped[folio])
        if unmapped:
            m.counters.mod_node_state(NodeStat.NR_FILE_MAPPED, unmapped)


def folio_remove_rmap_pte(m: Machine, vma: Vma, pfn: int) -> None:
    """Mirrors folio_remove_rmap_pte(): folio_remove_rmap_ptes() of one page."""
    folio_remove_rmap_ptes(m, vma, pfn, 1)


def folio_remove_rmap_ptes(m: Machine, vma: Vma, pfn: int, nr: int) -> None:
    """Mirrors folio_remove_rmap_ptes() -> __folio_remove_rmap(PTE): one mapping each of pages [pfn, pfn + nr)
    of one folio is gone (the caller drops the references). Pages of a large folio also move the folio's
    counts; when the folio is left partly mapped once all ``nr`` are gone, anon, it is queued for a
    deferred split (deferred_split_folio()). So zap_present_ptes(), which removes a folio's run of PTEs at
    once (folio_pte_batch()), queues nothing when the run is the whole folio."""
    frames = m.frames
    head = pfn - int(frames.head_offset[pfn])
    munlock_vma_folio(m, vma, head)  # mlock (issue #9): __folio_remove_rmap() ends with it
    pages = slice(pfn, pfn + nr)
    frames.mapcount[pages] -= 1
    anon = bool(frames.flags[head] & PG.ANON)
    gone = int((frames.mapcount[pages] == 0).sum())
    unmapped = gone
    if frames.flags[head] & PG.HEAD:
        folio_sub_return_large_mapcount(m, head, nr, vma)
        frames.nr_pages_mapped[head] -= gone
        if frames.entire_mapcount[head]:
            unmapped = 0
    if unmapped:
        m.counters.mod_node_state(NodeStat.NR_ANON_MAPPED if anon else NodeStat.NR_FILE_MAPPED, -unmapped)
        if anon and frames.flags[head] & PG.HEAD and frames.nr_pages_mapped[head] > 0:
            from .huge_memory import deferred_split_folio  # huge_memory builds on this module

            deferred_split_folio(m, head, True)
    vma.mm.rss[MM_ANONPAGES if anon else mm_counter_file(m, head)] -= nr


def folio_add_new_anon_rmap_pmd(m: Machine, vma: Vma, folio: int, index: int) -> None:
    """Mirrors folio_add_new_anon_rmap(RMAP_EXCLUSIVE) for a large folio mapped by one PMD: the folio is
    anon and exclusive (PG_anon_exclusive on its first page), entirely mapped once; NR_ANON_MAPPED and
    NR_ANON_THPS grow by its pages. Every page records the anon_vma and its own index (Linux reads the
    head's; a column per page lets a reverse-map walk start from any page). RSS is the caller's."""
    frames = m.frames
    nr = 1 << int(frames.order[folio])
    frames.flags[folio] |= PG.ANON | PG.SWAPBACKED | PG.UPTODATE | PG.ANON_EXCLUSIVE
    frames.mapping[folio:folio + nr] = anon_vma_prepare(vma)
    frames.index[folio:folio + nr] = index + np.arange(nr, dtype=np.int64)
    frames.entire_mapcount[folio] = 1
    folio_reset_mm_ids(m, folio)
    frames.large_mapcount[folio] = 0
    folio_add_return_large_mapcount(m, folio, 1, vma)
    frames.nr_pages_mapped[folio] = 0
    m.counters.mod_node_state(NodeStat.NR_ANON_MAPPED, nr)
    m.counters.mod_node_state(NodeStat.NR_ANON_THPS, nr)


def folio_add_anon_rmap_ptes(m: Machine, vma: Vma, folio: int, nr: int) -> None:
    """Mirrors folio_add_anon_rmap_ptes() for pages [folio, folio + nr) of a large anon folio (as a PMD
    split maps them): each page's mapcount grows; pages newly mapped count in NR_ANON_MAPPED unless
    the folio is entirely mapped already. PG_anon_exclusive of the first page goes to every page."""
    frames = m.frames
    pages = slice(folio, folio + nr)
    first = int((frames.mapcount[pages] == 0).sum())
    frames.mapcount[pages] += 1
    folio_add_return_large_mapcount(m, folio, nr, vma)
    frames.nr_pages_mapped[folio] += first
    if frames.flags[folio] & PG.ANON_EXCLUSIVE:
        frames.flags[pages] |= PG.ANON_EXCLUSIVE
    if not frames.entire_mapcount[folio] and first:
        m.counters.mod_node_state(NodeStat.NR_ANON_MAPPED, first)


def folio_remove_rmap_pmd(m: Machine, vma: Vma, folio: int) -> None:
    """Mirrors folio_remove_rmap_pmd(): the PMD mapping of a large folio is gone (a page-cache one: its
    NR_FILE_PMDMAPPED and unshared NR_FILE_MAPPED pages drop; the rest is for anon). NR_ANON_THPS drops
    by its pages, NR_ANON_MAPPED by the pages no PTE maps; a folio left partly mapped is queued for a
    deferred split. RSS and the reference are the caller's."""
    frames = m.frames
    munlock_vma_folio(m, vma, folio)  # mlock (issue #9): __folio_remove_rmap() ends with it
    nr_pmdmapped = 1 << int(frames.order[folio])
    folio_sub_return_large_mapcount(m, folio, 1, vma)
    frames.entire_mapcount[folio] -= 1
    if frames.entire_mapcount[folio]:
        return
    nr = nr_pmdmapped - int(frames.nr_pages_mapped[folio])
    if not frames.flags[folio] & PG.ANON:  # a page-cache folio: no deferred split
        m.counters.mod_node_state(NodeStat.NR_FILE_PMDMAPPED, -nr_pmdmapped)
        if nr:
            m.counters.mod_node_state(NodeStat.NR_FILE_MAPPED, -nr)
        return
    m.counters.mod_node_state(NodeStat.NR_ANON_THPS, -nr_pmdmapped)
    if nr:
        m.counters.mod_node_state(NodeStat.NR_ANON_MAPPED, -nr)
        if nr < nr_pmdmapped:
            from .huge_memory import deferred_split_folio

            deferred_split_folio(m, folio, True)


def folio_maybe_mapped_shared(m: Machine, folio: int) -> bool:
    """Mirrors folio_maybe_mapped_shared() (CONFIG_MM_ID) for the head PFN ``folio``: a small folio
    mapped more than once; a large one mapped more than once and marked maybe-shared by its mm ids."""
    frames = m.frames
    if not frames.flags[folio] & PG.HEAD:
        return int(frames.mapcount[folio]) > 1
    if int(frames.large_mapcount[folio]) <= 1:
        return False
    return bool(frames.mm_ids_shared[folio])



def rmap_walk(m: Machine, pfn: int) -> list[tuple[Vma, int]]:
    """Mirrors rmap_walk() (rmap_walk_anon() / rmap_walk_file()): every (VMA, address) whose PTE maps ``pfn``.

    From the frame's ``mapping`` to its anon_vma or address_space, to each VMA of it whose range covers
    the page's index, to the leaf entry there (a PMD leaf maps the page if the page lies in it).
    """
    owner = m.mappings.get(int(m.frames.mapping[pfn]))
    if owner is None:
        return []
    index = int(m.frames.index[pfn])
    vmas = owner.vmas if isinstance(owner, AnonVma) else owner.i_mmap
    found = []
    for vma in vmas:
        if not vma.vm_pgoff <= index < vma.vm_pgoff + vma.pages:
            continue
        addr = vma.vm_start + ((index - vma.vm_pgoff) << PAGE_SHIFT)
        leaf = int(leaf_entries(m.ptpool.tables, vma.mm.pgd, np.array([addr >> PAGE_SHIFT], dtype=np.int64))[0])
        if not leaf & (_PAGE_PRESENT | _PAGE_PROTNONE):
            continue
        mapped = (leaf & PTE_PFN_MASK) >> PAGE_SHIFT
        if leaf & _PAGE_PSE:  # a PMD leaf: the 4 KiB page inside it
            mapped = (mapped & ~511) + ((addr >> PAGE_SHIFT) & 511)
        if mapped == pfn:
            found.append((vma, addr))
    return found


# --- fork: one more mapping of pages already mapped (include/linux/rmap.h: __folio_dup_*_rmap) -----------

def folio_try_dup_anon_rmap_ptes(m: Machine, dst_vma: Vma, pfns: np.ndarray) -> None:
    """Mirrors folio_try_dup_anon_rmap_ptes(): the child's PTEs map ``pfns`` (anon pages, each of an
    order-0 folio or a run of one large folio) once more. Each page loses PG_anon_exclusive (the parent's
    and the child's mapping share it now: a write must copy or prove it exclusive again) and gains a
    mapping; a large folio's mm ids record the child's mm. The caller took the references (folio_ref_add())
    and moves the child's RSS. Simplified: no page is ever pinned, so the dup never fails (-EBUSY)."""
    m.frames.flags[pfns] &= ~PG.ANON_EXCLUSIVE
    _dup_ptes(m, dst_vma, pfns)


def folio_dup_file_rmap_ptes(m: Machine, dst_vma: Vma, pfns: np.ndarray) -> None:
    """Mirrors folio_dup_file_rmap_ptes(): the child's PTEs map page-cache (or shmem) pages ``pfns`` once
    more: no NR_FILE_MAPPED change, they were mapped already. References and RSS are the caller's."""
    _dup_ptes(m, dst_vma, pfns)


def _dup_ptes(m: Machine, dst_vma: Vma, pfns: np.ndarray) -> None:
    """The mapping half both dups share: each page one more mapping, each large folio's mm ids the child's
    mm for its pages here (folio_add_large_mapcount())."""
    frames = m.frames
    frames.mapcount[pfns] += 1
    heads = pfns - frames.head_offset[pfns]
    large = (frames.flags[heads] & PG.HEAD) != 0
    if large.any():
        folios, counts = np.unique(heads[large], return_counts=True)
        for folio, nr in zip(folios.tolist(), counts.tolist(), strict=True):
            folio_add_return_large_mapcount(m, folio, nr, dst_vma)


def folio_try_dup_anon_rmap_pmd(m: Machine, dst_vma: Vma, folio: int) -> None:
    """Mirrors folio_try_dup_anon_rmap_pmd(): the child's PMD maps the whole THP ``folio`` too; its first
    page loses PG_anon_exclusive. The reference and RSS are the caller's."""
    frames = m.frames
    frames.flags[folio] &= ~PG.ANON_EXCLUSIVE
    frames.entire_mapcount[folio] += 1
    folio_add_return_large_mapcount(m, folio, 1, dst_vma)
