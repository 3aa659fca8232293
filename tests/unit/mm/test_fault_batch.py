"""The batched first-touch path leaves exactly the state and counters one-at-a-time faults leave."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pagelab as pl

RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


def snapshot(m: pl.Machine) -> dict[str, object]:
    """Every piece of hardware and kernel state a fault can change."""
    f, pt, tlb = m.frames, m.ptpool, m.tlb
    snap = {
        "flags": f.flags.copy(), "refcount": f.refcount.copy(), "mapcount": f.mapcount.copy(),
        "mapping": f.mapping.copy(), "index": f.index.copy(), "free": f.free_stack[:f.nr_free].copy(),
        "tables": pt.tables.copy(), "pt_pfn": pt.pfn.copy(), "pt_used": pt.used.copy(),
        "pt_free": list(pt._free), "tlb_tag": tlb.tag.copy(), "tlb_val": tlb.val.copy(),
        "tlb_age": tlb.age.copy(), "tick": tlb.tick.copy(), "sim": m.counters.sim.copy(),
        "clock": m.clock_cycles.copy(), "vmstat": m.vmstat(),
    }
    for pid, t in m.tasks.items():
        snap[f"task{pid}"] = (t.min_flt, t.maj_flt, dict(t.perf), t.utime_cycles, t.stime_cycles)
        if t.mm is not None:
            snap[f"mm{pid}"] = (list(t.mm.rss), t.mm.nr_ptes, t.mm.nr_pmds, t.mm.nr_puds,
                                [(v.vm_start, v.vm_end, v.vm_flags, v.anon_vma and v.anon_vma.id) for v in t.mm.vmas])
    return snap


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert a[k].shape == b[k].shape and np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


def run_both(script, ram: str = "128MiB") -> None:
    snaps = []
    for batch in (False, True):
        m = pl.Machine(ram=ram, cpu="skylake", seed=7, batch_faults=batch)
        script(m)
        snaps.append(snapshot(m))
    assert_same(*snaps)


def test_sequential_write_read_and_rewrite():
    def script(m):
        p = m.spawn("seq")
        a = p.mmap(None, 10 * pl.MiB + 12288, RW, ANON)
        p.touch(a + 4096, 6 * pl.MiB)  # zero-page reads
        p.touch(a, 10 * pl.MiB + 12288, write=True)  # fresh writes around and after them
        p.touch(a, 10 * pl.MiB, stride=1024, write=True)
        p.madvise(a + pl.MiB, pl.MiB, pl.MADV_DONTNEED)
        p.touch(a, 4 * pl.MiB, stride=512, write=True)
    run_both(script)


def test_mixed_write_masks_and_two_vmas():
    def script(m):
        p = m.spawn("mixed")
        a = p.mmap(None, 4 * pl.MiB, RW, ANON)
        b = p.mmap(None, 4 * pl.MiB, pl.PROT_READ, ANON)
        addrs = np.concatenate([np.arange(b, b + 4 * pl.MiB, 4096), np.arange(a, a + 4 * pl.MiB, 2048)])
        mask = np.zeros(addrs.shape[0], dtype=bool)
        mask[addrs.shape[0] // 2 + 300:] = True
        p.access(addrs, write=mask)
        q = m.spawn("second")
        c = q.mmap(None, 2 * pl.MiB, RW, ANON)
        q.touch(c, 2 * pl.MiB, write=True)
        p.touch(a, 4 * pl.MiB, write=True)
    run_both(script)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(1, 64), st.sampled_from([512, 4096, 8192]),
                          st.booleans()), min_size=1, max_size=6))
def test_random_runs_of_touches(runs):
    def script(m):
        p = m.spawn("runs")
        a = p.mmap(None, 256 * 4096, RW, ANON)
        for start, npages, stride, write in runs:
            n = min(npages, 256 - start) * 4096
            p.touch(a + start * 4096, n, stride=stride, write=write)
    run_both(script)


@settings(max_examples=40, deadline=None)
@given(pre=st.lists(st.tuples(st.integers(0, 1535), st.booleans()), max_size=40),
       order=st.lists(st.integers(0, 1535), min_size=1, max_size=400),
       write=st.sampled_from([False, True, "mixed"]), seed=st.integers(0, 3))
def test_random_first_touch_orders_with_repeats_and_mapped_pages(pre, order, write, seed):
    """Random page orders across three PTE tables, revisits, and pages mapped before (zero page or writable)."""
    def script(m):
        p = m.spawn("random")
        a = p.mmap(None, 1536 * 4096, RW, ANON)
        for page, w in pre:
            p.access([a + page * 4096], write=w)
        addrs = [a + page * 4096 + 8 * (k % 7) for k, page in enumerate(order)]
        if write == "mixed":
            mask = np.random.default_rng(seed).random(len(addrs)) < 0.5
            p.access(addrs, write=mask)
        else:
            p.access(addrs, write=write)
    run_both(script)


NORESERVE = ANON | pl.MAP_NORESERVE


def test_zero_page_reads_beyond_ram_then_writes_until_the_oom_kill():
    """On a 16 MiB machine: 48 MiB of reads need only page tables; writes then run out of frames mid-batch."""
    def script(m):
        p = m.spawn("big")
        a = p.mmap(None, 64 * pl.MiB, RW, NORESERVE)
        p.touch(a, 48 * pl.MiB)
        assert p.rusage().ru_minflt == 48 * 256
        with pytest.raises(pl.OutOfMemoryKill):
            p.touch(a + 48 * pl.MiB, 16 * pl.MiB, write=True)
        assert not p.alive
    run_both(script, ram="16MiB")


@settings(max_examples=30, deadline=None)
@given(hog=st.integers(3850, 4075), runs=st.lists(st.tuples(st.integers(0, 8191), st.integers(1, 700),
                                                              st.sampled_from([1024, 4096, 8192]), st.booleans()),
                                                    min_size=1, max_size=5))
def test_partial_batches_when_frames_are_short(hog, runs):
    """A hog leaves a handful of free frames; batches must stop where single faults would first fail."""
    def script(m):
        h = m.spawn("hog")
        b = h.mmap(None, hog * 4096, RW, ANON)
        h.touch(b, hog * 4096, write=True)
        p = m.spawn("short")
        a = p.mmap(None, 8192 * 4096, RW, NORESERVE)
        for start, npages, stride, write in runs:
            try:
                p.touch(a + start * 4096, min(npages, 8192 - start) * 4096, stride=stride, write=write)
            except pl.OutOfMemoryKill:
                assert not p.alive
                return
    run_both(script, ram="16MiB")


@pytest.mark.parametrize("write", [False, True])
def test_touch_in_pieces_equals_one_access_batch(write):
    """touch() hands the MMU at most 2**18 addresses at a time; the state is that of one access() of them all."""
    snaps = []
    for piecewise in (True, False):
        m = pl.Machine(ram="64MiB", seed=7)
        p = m.spawn("pieces")
        a = p.mmap(None, 5 * pl.MiB, RW, ANON)
        p.touch(a + 8192, 4096, write=True)
        if piecewise:
            p.touch(a, 5 * pl.MiB - 4096, stride=16, write=write)  # 327,424 accesses: two pieces
        else:
            p.access(np.arange(a, a + 5 * pl.MiB - 4096, 16, dtype=np.uint64), write=write)
        snaps.append(snapshot(m))
    assert_same(*snaps)
