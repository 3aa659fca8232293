"""check_machine() notices broken bookkeeping; running out of memory kills cleanly."""

from __future__ import annotations

import pytest

import pagelab as pl
from pagelab.arch.x86.entry import user_pfn
from pagelab.mm.debug import check_machine

RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


@pytest.mark.parametrize("corrupt", [
    lambda m, pfn: m.frames.mapcount.__setitem__(pfn, 2),
    lambda m, pfn: m.frames.refcount.__setitem__(pfn, 3),
    lambda m, pfn: m.frames.push([pfn]),
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
    free = m.frames.nr_free
    p = m.spawn("hog")
    a = p.mmap(None, 32 * pl.MiB, RW, ANON)
    with pytest.raises(pl.OutOfMemoryKill):
        p.touch(a, 32 * pl.MiB, write=True)
    assert not p.alive
    check_machine(m)
    assert m.frames.nr_free == free
