"""check_machine() notices broken bookkeeping; running out of memory kills cleanly."""

from __future__ import annotations

import pytest

import pagelab as pl
from pagelab.arch.x86.entry import user_pfn
from pagelab.hw.physmem import PG
from pagelab.mm.debug import check_machine
from pagelab.mm.list import list_add
from pagelab.mm.page_alloc import Z_NR_FREE, Z_PCP_COUNT, nr_free_frames

RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


@pytest.mark.parametrize("corrupt", [
    lambda m, pfn: m.frames.mapcount.__setitem__(pfn, 2),
    lambda m, pfn: m.frames.refcount.__setitem__(pfn, 3),
    lambda m, pfn: list_add(m.frames.links, pfn, m.zone.pcp.list_head),  # in use and on the per-CPU list
    lambda m, pfn: list_add(m.frames.links, pfn, m.zone.free_list(0)),  # in use and on a free list
    lambda m, pfn: m.frames.flags.__setitem__(pfn + 1000, PG.BUDDY),  # PageBuddy on no list
    lambda m, pfn: m.zone.state.__setitem__(Z_NR_FREE + 10, m.zone.nr_free(10) + 1),  # nr_free off
    lambda m, pfn: m.zone.state.__setitem__(Z_PCP_COUNT, m.zone.pcp.count + 1),  # pcp count off
    lambda m, pfn: m.frames.head_offset.__setitem__(pfn, 1),  # a tail with no head
    lambda m, pfn: m.ptpool.used.__setitem__(1, 0),
    lambda m, pfn: m.tasks[1000].mm.rss.__setitem__(1, 0),
])
def test_check_machine_catches_corruption(corrupt):
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("victim")
    a = p.mmap(None, 16 * 4096, RW, ANON)
    p.touch(a, 16 * 4096, write=True)
    check_machine(m)
    corrupt(m, user_pfn(p.task, a))
    with pytest.raises(pl.KernelBug):
        check_machine(m)


@pytest.mark.parametrize("batch", [False, True])
def test_out_of_memory_kills_the_faulting_process_and_frees_it(batch):
    m = pl.Machine(ram="16MiB", seed=0, batch_faults=batch, settings={"/proc/sys/vm/overcommit_memory": 1})
    free = nr_free_frames(m)
    p = m.spawn("hog")
    a = p.mmap(None, 32 * pl.MiB, RW, ANON)
    with pytest.raises(pl.OutOfMemoryKill):
        p.touch(a, 32 * pl.MiB, write=True)
    assert not p.alive
    check_machine(m)
    assert nr_free_frames(m) == free
