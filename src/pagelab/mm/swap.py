"""Per-CPU folio batches: LRU changes are queued per CPU and applied 31 at a time.

Mirrors mm/swap.c: struct cpu_fbatches, folio_batch_add_and_move(), folio_batch_move_lru(),
lru_lazyfree(), lru_deactivate() (folio_deactivate(), MADV_COLD), lru_activate() (folio_activate()) and
lru_add_drain(). A queued folio holds a reference until its batch is applied.
The batching is visible to users: after MADV_FREE of 256 pages, smaps shows LazyFree for 248 (8 x 31)
until something drains the batch (the kernel maintainers chose not to drain there; see the thread
on lru_lazyfree_pvecs). ``pagelab validate`` checks this against the host.

The deactivate batch is visible too (measured on 6.18: MADV_COLD of 1024 active anon pages counts
pgdeactivate 1023 = 33 x 31; the last page moves at the next drain).

Simplified: one CPU; the lazyfree, deactivate and activate batches are modelled, not lru_add (new
anonymous pages go on the LRU at once), lru_move_tail nor lru_deactivate_file, so LRU gauges can differ
from the kernel's by up to 31.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..hw.physmem import PG
from ..stats import NodeStat, VmEvent
from .mm_inline import lruvec_add_folio, lruvec_del_folio
from .page_alloc import put_page

if TYPE_CHECKING:
    from ..machine import Machine

FOLIO_BATCH_SIZE = 31


@dataclass(slots=True)
class CpuFolioBatches:
    """Mirrors struct cpu_fbatches (one CPU): folios waiting for an LRU change."""

    lru_lazyfree: list[int] = field(default_factory=list)
    lru_deactivate: list[int] = field(default_factory=list)
    lru_activate: list[int] = field(default_factory=list)

    def pending(self) -> list[int]:
        """The folios of the lazyfree batch (what smaps' LazyFree waits for)."""
        return list(self.lru_lazyfree)

    def all_pending(self) -> list[int]:
        """Every folio some batch holds a reference on."""
        return self.lru_lazyfree + self.lru_deactivate + self.lru_activate


def folio_mark_lazyfree(m: Machine, pfn: int) -> None:
    """Mirrors folio_mark_lazyfree(): queue an anon, swap-backed folio to become lazily freeable."""
    flags = int(m.frames.flags[pfn])
    if not flags & PG.ANON or not flags & PG.SWAPBACKED or flags & PG.UNEVICTABLE:
        return
    m.frames.refcount[pfn] += 1  # folio_get(): the batch holds a reference
    batch = m.cpu_fbatches.lru_lazyfree
    batch.append(pfn)
    if len(batch) == FOLIO_BATCH_SIZE or flags & PG.HEAD:  # no space left, or !folio_may_be_lru_cached():
        folio_batch_move_lru(m, batch)  # a large folio is never held in a per-CPU batch


def folio_batch_move_lru(m: Machine, batch: list[int], move_fn: Callable[[Machine, int], None] | None = None) -> None:
    """Mirrors folio_batch_move_lru(batch, move_fn) (lru_lazyfree by default): apply the change to the
    folios still on an LRU list, then drop the batch's references."""
    move = lru_lazyfree if move_fn is None else move_fn
    for pfn in batch:
        if m.frames.flags[pfn] & PG.LRU:  # folio_test_clear_lru(): only folios on an LRU list
            move(m, pfn)
    for pfn in batch:
        put_page(m, pfn)  # folios_put()
    batch.clear()


def lru_lazyfree(m: Machine, pfn: int) -> None:
    """Mirrors lru_lazyfree(): anon -> clean, !swapbacked, on the inactive file list; counts pglazyfree."""
    flags = int(m.frames.flags[pfn])
    if not flags & PG.ANON or not flags & PG.SWAPBACKED or flags & PG.UNEVICTABLE:
        return
    nr = 1 << int(m.frames.order[pfn]) if flags & PG.HEAD else 1  # folio_nr_pages()
    m.frames.flags[pfn] = (flags & ~(PG.SWAPBACKED | PG.ACTIVE | PG.REFERENCED | PG.DIRTY)) | PG.LAZYFREE
    m.counters.mod_node_state(NodeStat.NR_ACTIVE_ANON if flags & PG.ACTIVE else NodeStat.NR_INACTIVE_ANON, -nr)
    m.counters.mod_node_state(NodeStat.NR_INACTIVE_FILE, nr)
    m.counters.count_vm_event(VmEvent.PGLAZYFREE, nr)


def lru_add_drain(m: Machine) -> None:
    """Mirrors lru_add_drain() -> lru_add_drain_cpu(): apply this CPU's pending batches now, in its order
    (deactivate, lazyfree, activate)."""
    b = m.cpu_fbatches
    if b.lru_deactivate:
        folio_batch_move_lru(m, b.lru_deactivate, lru_deactivate)
    if b.lru_lazyfree:
        folio_batch_move_lru(m, b.lru_lazyfree)
    if b.lru_activate:
        folio_batch_move_lru(m, b.lru_activate, lru_activate)


# --- activation and deactivation (issue #9: MADV_COLD / MADV_PAGEOUT) -----------------------------------

def _folio_batch_add_and_move(m: Machine, batch: list[int], pfn: int, move_fn: Callable[[Machine, int], None]) -> None:
    """Mirrors folio_batch_add_and_move(): hold a reference, queue; apply the batch when it is full or the
    folio is large (!folio_may_be_lru_cached())."""
    m.frames.refcount[pfn] += 1  # folio_get()
    batch.append(pfn)
    if len(batch) == FOLIO_BATCH_SIZE or m.frames.flags[pfn] & PG.HEAD:
        folio_batch_move_lru(m, batch, move_fn)


def _move_lists(m: Machine, pfn: int, set_flags: int, clear_flags: int) -> int:
    """lruvec_del_folio(), change PG_active/PG_referenced, lruvec_add_folio(): the folio's pages."""
    frames = m.frames
    flags = int(frames.flags[pfn])
    nr = 1 << int(frames.order[pfn]) if flags & PG.HEAD else 1
    lruvec_del_folio(m, pfn)  # not unevictable here: PG_mlocked stays
    frames.flags[pfn] = (flags & ~clear_flags) | set_flags
    lruvec_add_folio(m, pfn, nr, file=not flags & PG.SWAPBACKED)
    return nr


def folio_deactivate(m: Machine, pfn: int) -> None:
    """Mirrors folio_deactivate(): queue an active, evictable folio to move to its inactive list."""
    flags = int(m.frames.flags[pfn])
    if flags & PG.UNEVICTABLE or not flags & PG.ACTIVE:  # no MGLRU on this host (lru_gen_enabled() false)
        return
    _folio_batch_add_and_move(m, m.cpu_fbatches.lru_deactivate, pfn, lru_deactivate)


def lru_deactivate(m: Machine, pfn: int) -> None:
    """Mirrors lru_deactivate(): an active (or referenced) evictable folio goes to the inactive list,
    PG_active and PG_referenced cleared; counts pgdeactivate."""
    flags = int(m.frames.flags[pfn])
    if flags & PG.UNEVICTABLE or not flags & (PG.ACTIVE | PG.REFERENCED):
        return
    nr = _move_lists(m, pfn, 0, PG.ACTIVE | PG.REFERENCED)
    m.counters.count_vm_event(VmEvent.PGDEACTIVATE, nr)


def folio_activate(m: Machine, pfn: int) -> None:
    """Mirrors folio_activate() (what folio_mark_accessed() calls on a folio's second access): queue an
    inactive, evictable folio on the LRU to move to its active list."""
    flags = int(m.frames.flags[pfn])
    if flags & (PG.ACTIVE | PG.UNEVICTABLE) or not flags & PG.LRU:
        return
    _folio_batch_add_and_move(m, m.cpu_fbatches.lru_activate, pfn, lru_activate)


def lru_activate(m: Machine, pfn: int) -> None:
    """Mirrors lru_activate(): PG_active set, to the active list; counts pgactivate."""
    flags = int(m.frames.flags[pfn])
    if flags & (PG.ACTIVE | PG.UNEVICTABLE):
        return
    nr = _move_lists(m, pfn, PG.ACTIVE, 0)
    m.counters.count_vm_event(VmEvent.PGACTIVATE, nr)
