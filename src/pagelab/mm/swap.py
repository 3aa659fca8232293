"""Per-CPU folio batches: LRU changes are queued per CPU and applied 31 at a time.

Mirrors mm/swap.c: struct cpu_fbatches, folio_batch_add_and_move(), folio_batch_move_lru(),
lru_lazyfree() and lru_add_drain(). A queued folio holds a reference until its batch is applied.
The batching is visible to users: after MADV_FREE of 256 pages, smaps shows LazyFree for 248 (8 x 31)
until something drains the batch (the kernel maintainers chose not to drain there; see the thread
on lru_lazyfree_pvecs). ``pagelab validate`` checks this against the host.

Simplified: one CPU; only the lazyfree batch is modelled (new anonymous pages go on the LRU at
once instead of through the lru_add batch), so LRU gauges can differ from the kernel's by up to 31.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..hw.physmem import PG
from ..stats import NodeStat, VmEvent
from .page_alloc import put_page

if TYPE_CHECKING:
    from ..machine import Machine

FOLIO_BATCH_SIZE = 31


@dataclass(slots=True)
class CpuFolioBatches:
    """Mirrors struct cpu_fbatches (one CPU): folios waiting for an LRU change."""

    lru_lazyfree: list[int] = field(default_factory=list)

    def pending(self) -> list[int]:
        return list(self.lru_lazyfree)


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


def folio_batch_move_lru(m: Machine, batch: list[int]) -> None:
    """Mirrors folio_batch_move_lru(batch, lru_lazyfree): apply the change, then drop the references."""
    for pfn in batch:
        if m.frames.flags[pfn] & PG.LRU:  # folio_test_clear_lru(): only folios on an LRU list
            lru_lazyfree(m, pfn)
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
    """Mirrors lru_add_drain(): apply this CPU's pending batches now."""
    if m.cpu_fbatches.lru_lazyfree:
        folio_batch_move_lru(m, m.cpu_fbatches.lru_lazyfree)
