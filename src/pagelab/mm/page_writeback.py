"""Dirty page-cache folios: marking them dirty, accounting it, and writing them back.

Mirrors mm/page-writeback.c: folio_mark_dirty() -> filemap_dirty_folio() -> folio_account_dirtied()
(NR_FILE_DIRTY, the inode's dirtied_when for the flusher's expiry, __mark_inode_dirty());
folio_clear_dirty_for_io() with folio_mkclean() (mm/rmap.c), and writeback_single_inode()'s data pass
(fs/fs-writeback.c, do_writepages(): PG_writeback and NR_WRITEBACK while the bio is in flight).

Simplified: one bdi, no per-memcg dirty accounting, no balance_dirty_pages() throttling yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hw.physmem import PG
from ..stats import NodeStat
from .filemap import folio_nr

if TYPE_CHECKING:
    from ..clock import Event
    from ..fs.inode import Inode
    from ..kernel.task import Task
    from ..machine import Machine
    from .filemap import AddressSpace


def folio_mark_dirty(m: Machine, folio: int) -> bool:
    """Mirrors folio_mark_dirty() for a page-cache folio (head ``folio``): PG_dirty set; if it was clean,
    NR_FILE_DIRTY grows by its pages and the inode is marked dirty (dirtied_when = now, if it was
    clean). Anonymous and shmem folios only get PG_dirty (no writeback accounting). Returns whether
    the folio was clean before."""
    frames = m.frames
    flags = int(frames.flags[folio])
    if flags & PG.DIRTY:
        return False
    frames.flags[folio] = flags | PG.DIRTY
    if flags & (PG.ANON | PG.SWAPBACKED):
        return True
    mapping = m.mappings.get(int(frames.mapping[folio]))
    if mapping is None:  # truncated meanwhile: nothing to account
        return True
    nr = folio_nr(m, folio)
    m.counters.mod_node_state(NodeStat.NR_DIRTY, nr)  # folio_account_dirtied()
    host = getattr(mapping, "host", None)
    if host is not None and getattr(host, "dirtied_when", None) == 0:
        host.dirtied_when = max(m.now_ns, 1)  # __mark_inode_dirty(I_DIRTY_PAGES)
        wb_wakeup_delayed(m)
    return True


def folio_mkclean(m: Machine, folio: int) -> None:
    """Mirrors folio_mkclean() (mm/rmap.c: page_mkclean_one() over rmap_walk()): every PTE or PMD that
    maps a page of the folio is made read-only and clean, so the next write faults (write-notify)."""
    from ..arch.x86.pgtable import _PAGE_DIRTY, _PAGE_PSE, _PAGE_RW, pte_index
    from ..arch.x86.tlb import flush_tlb_page
    from .pgtable import pmd_offset, pmdp_get, pte_offset_map, set_pmd_at
    from .rmap import rmap_walk

    frames = m.frames
    nr = folio_nr(m, folio)
    done: set[tuple[int, int]] = set()
    for pfn in range(folio, folio + nr):
        if not frames.mapcount[pfn] and not frames.entire_mapcount[folio]:
            continue
        for vma, addr in rmap_walk(m, pfn):
            pmd = pmd_offset(m, vma.mm, addr)
            entry = pmdp_get(m, pmd, addr)
            if entry & _PAGE_PSE:
                key = (id(vma.mm), addr & ~((1 << 21) - 1))
                if key not in done and entry & (_PAGE_RW | _PAGE_DIRTY):
                    set_pmd_at(m, pmd, addr & ~((1 << 21) - 1), entry & ~(_PAGE_RW | _PAGE_DIRTY))
                    flush_tlb_page(m, vma.mm, addr)
                done.add(key)
                continue
            row = pte_offset_map(m, pmd, addr)
            i = pte_index(addr)
            pte = int(m.ptpool.tables[row, i])
            if pte & (_PAGE_RW | _PAGE_DIRTY):
                m.ptpool.tables[row, i] = pte & ~(_PAGE_RW | _PAGE_DIRTY)
                flush_tlb_page(m, vma.mm, addr)


def folio_clear_dirty_for_io(m: Machine, folio: int) -> bool:
    """Mirrors folio_clear_dirty_for_io(): write-protect and clean its mappings (folio_mkclean()), clear
    PG_dirty and NR_FILE_DIRTY; False if it was not dirty."""
    frames = m.frames
    if not frames.flags[folio] & PG.DIRTY:
        return False
    folio_mkclean(m, folio)
    frames.flags[folio] &= ~PG.DIRTY
    nr = folio_nr(m, folio)
    m.counters.mod_node_state(NodeStat.NR_DIRTY, -nr)
    return True


def write_inode_now(m: Machine, inode: Inode, *, sync: bool, task: Task | None = None) -> Event | None:
    """Mirrors writeback_single_inode() with WB_SYNC_ALL (fsync, the flusher's expired inodes): every
    dirty folio of the inode is cleaned (folio_clear_dirty_for_io()), put under writeback
    (NR_WRITEBACK) and written as one bio per run of contiguous folios; its bytes reach the disk. With
    ``sync`` the caller waits: the clock runs until the last write completes (``task`` sleeps in I/O
    wait, or the machine idles). Returns the last write's completion (None if nothing was dirty)."""
    from ..block.bio import submit_bio
    from ..kernel.task import io_schedule
    from .filemap import cached_folios

    mapping = inode.i_mapping
    if mapping is None:
        return None
    frames = m.frames
    wb = mapping.writeback
    run: list[tuple[int, int]] = []
    last: Event | None = None

    def flush(run: list[tuple[int, int]]) -> Event:
        heads = [h for _i, h in run]
        first = run[0][0]
        nr = sum(folio_nr(m, h) for h in heads)

        def end_io() -> None:  # folio_end_writeback()
            for h in heads:
                frames.flags[h] &= ~PG.WRITEBACK
                n = folio_nr(m, h)
                m.counters.mod_node_state(NodeStat.NR_WRITEBACK, -n)
                wb.pop(h, None)

        event = submit_bio(m, task, inode.block_of(first), nr, True, end_io)
        for h in heads:
            if frames.flags[h] & PG.WRITEBACK:  # not ended already (a bio may complete at once)
                wb[h] = event
        return event

    for first, head in list(cached_folios(mapping, 0, 1 << 62)):
        if not folio_clear_dirty_for_io(m, head):
            if run:
                last = flush(run)
                run = []
            continue
        nr = folio_nr(m, head)
        frames.flags[head] |= PG.WRITEBACK  # folio_start_writeback()
        m.counters.mod_node_state(NodeStat.NR_WRITEBACK, nr)
        inode.allocate(first, first + nr)
        for i in range(nr):  # the bytes go to the disk
            inode.store_page(first + i, frames.page_bytes(head + i))
        if run and run[-1][0] + folio_nr(m, run[-1][1]) != first:
            last = flush(run)
            run = []
        run.append((first, head))
    if run:
        last = flush(run)
    inode.dirtied_when = 0
    if sync:  # filemap_fdatawait(): this write and any writeback already in flight (an earlier async one)
        wait = max((e for e in wb.values() if e.pending), key=lambda e: e.time, default=None)
        if wait is not None:
            if task is not None:
                io_schedule(task, wait)
            else:
                m.clock.advance_to(wait.time)
    return last


def folio_wait_writeback(m: Machine, mapping: AddressSpace, folio: int) -> None:
    """Mirrors folio_wait_writeback(): a folio under writeback is waited for until its bio completes
    (truncation must not free a folio the disk is still writing from).

    Simplified: no task sleeps; the machine idles until the completion, as write_inode_now(sync=True)
    does without a task."""
    event = mapping.writeback.get(folio)
    if event is not None and event.pending:
        m.clock.advance_to(event.time)


def dirty_background_pages(m: Machine) -> int:
    """Mirrors domain_dirty_limits()' background threshold: dirty_background_bytes, or
    dirty_background_ratio percent of the dirtyable memory (free pages plus file pages)."""
    vm = m.settings.vm
    if int(vm.dirty_background_bytes):
        return int(vm.dirty_background_bytes) >> 12
    dirtyable = m.zone.free_pages + m.counters.gauges[NodeStat.NR_FILE_PAGES]
    return dirtyable * int(vm.dirty_background_ratio) // 100


def wb_wakeup_delayed(m: Machine) -> None:
    """Mirrors wb_wakeup_delayed(): the first dirty inode wakes the flusher dirty_writeback_centisecs later
    (none with 0); it then runs every that long while anything is dirty (wb_workfn())."""
    period_cs = int(m.settings.vm.dirty_writeback_centisecs)
    if not period_cs or (m.flusher is not None and m.flusher.active):
        return
    period = m.clock.ns_to_cycles(period_cs * 10_000_000)
    m.flusher = m.clock.every(period, lambda: wb_workfn(m), name="wb_workfn")


def wb_workfn(m: Machine) -> None:
    """Mirrors wb_workfn() -> wb_do_writeback(): background writeback of every dirty inode while NR_DIRTY is
    above the background threshold (wb_check_background_flush()), else of the inodes dirtied more than
    dirty_expire_centisecs ago (wb_check_old_data_flush()). The flusher sleeps when nothing is dirty."""
    expire_ns = int(m.settings.vm.dirty_expire_centisecs) * 10_000_000
    background = m.counters.gauges[NodeStat.NR_DIRTY] > dirty_background_pages(m)
    dirty = False
    # the dirty inodes: b_dirty is a list of inodes, named or not (an unlinked file still open is written too)
    from .filemap import AddressSpace

    dirty_inodes = [a.host for a in list(m.mappings.values())
                    if isinstance(a, AddressSpace) and bool(getattr(a.host, "dirtied_when", 0))]
    for inode in dirty_inodes:
        if background or m.now_ns - inode.dirtied_when >= expire_ns:
            write_inode_now(m, inode, sync=False)
        dirty |= bool(inode.dirtied_when)
    if not dirty and m.flusher is not None:
        m.flusher.cancel()
