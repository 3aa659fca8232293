"""The batched first-touch path leaves exactly the state and counters one-at-a-time faults leave."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pagelab as pl
from pagelab.mm.page_alloc import nr_free_frames

RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


def snapshot(m: pl.Machine) -> dict[str, object]:
    """Every piece of hardware and kernel state a fault can change."""
    f, pt, tlb = m.frames, m.ptpool, m.tlb
    snap = {
        "flags": f.flags.copy(), "refcount": f.refcount.copy(), "mapcount": f.mapcount.copy(),
        "mapping": f.mapping.copy(), "index": f.index.copy(), "order": f.order.copy(),
        "head_offset": f.head_offset.copy(), "links": f.links.copy(), "fingerprint": f.fingerprint.copy(),
        "large_mapcount": f.large_mapcount.copy(), "entire_mapcount": f.entire_mapcount.copy(),
        "nr_pages_mapped": f.nr_pages_mapped.copy(), "huge_zero": m.huge_zero_folio,
        "deferred_split": list(m.deferred_split_queue),
        "zone": m.zone.state.copy(),
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


def test_thp_vmas_beside_batched_ones():
    """THP faults (which the batch leaves to the one-page path) interleaved with batched 4 KiB runs, the
    huge zero page, splits by partial munmap and DONTNEED, and refaults: the same state either way."""
    def script(m):
        p = m.spawn("thp")
        a = p.mmap(None, 8 * pl.MiB, RW, ANON)
        b = p.mmap(None, 8 * pl.MiB, RW, ANON)
        p.madvise(a, 8 * pl.MiB, pl.MADV_HUGEPAGE)
        addrs = np.stack([np.arange(a, a + 8 * pl.MiB, 4096), np.arange(b, b + 8 * pl.MiB, 4096)], 1).ravel()
        p.access(addrs[: addrs.shape[0] // 2])  # reads: huge zero pages in a, zero pages in b
        p.access(addrs, write=True)
        p.munmap(a + 100 * 4096, 4096)
        p.madvise(a + 2 * pl.MiB + 4096, 2 * pl.MiB, pl.MADV_DONTNEED)
        p.touch(a + 2 * pl.MiB, 4 * pl.MiB, write=True)
        p.touch(b, 8 * pl.MiB, write=True)
        p.exit()
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


# --- Batches run up to the next timed event (issue #7, item 5) -------------------------------------------

def witness(m: pl.Machine, name: str) -> tuple[object, ...]:
    """What an event sees when it runs: the time, and the state a batch could have moved too early."""
    tasks = tuple((t.pid, t.min_flt, t.utime_cycles, t.stime_cycles, tuple(t.mm.rss)) for t in m.tasks.values())
    return (name, m.clock.now, nr_free_frames(m), int(m.counters.sim.sum()), tasks)


def run_both_with_events(script, ram: str = "128MiB") -> tuple[list[tuple[object, ...]], list[int]]:
    """run_both(), where ``script(m, log)`` arms events that append what they see to ``log``: the logs must
    match too. Returns the log and how many faults each run took one at a time."""
    import pagelab.arch.x86.entry as entry

    results = []
    for batch in (False, True):
        m = pl.Machine(ram=ram, cpu="skylake", seed=7, batch_faults=batch)
        log: list[tuple[object, ...]] = []
        singles = [0]
        original = entry.handle_page_fault

        def counting(task, va, err, original=original, singles=singles):
            singles[0] += 1
            return original(task, va, err)

        entry.handle_page_fault = counting
        try:
            script(m, log)
        finally:
            entry.handle_page_fault = original
        results.append((snapshot(m), log, singles[0]))
    assert_same(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]
    return results[1][1], [results[0][2], results[1][2]]


FAULT_W = 1450 * 2600 // 1000 + 40  # about the cycles a first-write fault takes on skylake, with its trap walk


def costs(m: pl.Machine) -> tuple[int, int]:
    """(W, F): the cycles of a full walk and of a first-write fault on this machine."""
    from pagelab.hw.tlb import LAT_L1, LAT_STLB, LAT_WALK

    return int(m.tlb.lat[LAT_L1] + m.tlb.lat[LAT_STLB] + m.tlb.lat[LAT_WALK]), m.cost.fault_cycles("do_anonymous_page")


# Offsets of the event from the start of the touch, as (k, extra): at k pages' worth of time plus ``extra``,
# or (None, cycles). Page k traps at k * (F + 2W) + W; a batch of two taken there would move the clock check
# before access k to T + W + 2F, so events just after T + 2F (extra = 2F + small) catch a batch that is one
# fault too long, and any event there must still fire where one-at-a-time faults have it.
OFFSETS = [(None, 0), (None, 1), (None, 39), (None, 41), (0, -1), (0, 0), (2, 7), (1000, 3), (2047, 0),
           (None, 10**9)] + [(k, "2F" + str(x)) for k in (1, 300, 1500) for x in (1, 20, 40, 41)]


@pytest.mark.parametrize(("k", "extra"), OFFSETS)
def test_an_event_at_any_time_fires_at_the_same_access_and_cycle(k, extra):
    def script(m, log):
        p = m.spawn("toucher")
        a = p.mmap(None, 8 * pl.MiB, RW, ANON)
        walk, fault = costs(m)
        more = 2 * fault + int(extra[2:]) if isinstance(extra, str) else extra
        offset = more if k is None else k * (fault + 2 * walk) + walk + more
        m.clock.schedule(m.clock.now + offset, lambda: log.append(witness(m, "once")), name="once")
        p.touch(a, 8 * pl.MiB, write=True)
        log.append(witness(m, "end"))
    log, (single, batched) = run_both_with_events(script)
    assert single == 2048
    assert batched < 40  # the batches ran up to the event and resumed after it


@pytest.mark.parametrize("period", [1, 97, FAULT_W, 3 * FAULT_W + 1, 64 * FAULT_W, 700 * FAULT_W])
def test_a_daemon_armed_throughout_keeps_its_times(period):
    def script(m, log):
        p = m.spawn("toucher")
        a = p.mmap(None, 8 * pl.MiB, RW, ANON)
        m.clock.every(period, lambda: log.append(witness(m, "kdaemon")), name="kdaemon")
        p.touch(a, 6 * pl.MiB)  # zero-page reads
        p.touch(a, 8 * pl.MiB, write=True, stride=1024)  # COW faults and new pages, four accesses a page
        p.touch(a + 8192, 4 * pl.MiB, stride=8192, write=True)
    log, (single, batched) = run_both_with_events(script)
    cow = 1536  # the writes to zero-page PTEs are COW faults: never batched
    assert single == 2 * 1536 + 512
    if period >= 64 * FAULT_W:
        assert batched - cow < 64


def test_events_that_change_memory_under_the_batch():
    """Callbacks unmap pages ahead of the toucher, zap pages behind it, map and write memory of another
    process (taking frames off the free list) and arm further events: all at the same access either way."""
    def script(m, log):
        p = m.spawn("toucher")
        q = m.spawn("other")
        a = p.mmap(None, 16 * pl.MiB, RW, ANON)
        b = q.mmap(None, 4 * pl.MiB, RW, ANON)
        now = m.clock.now

        def other_writes():
            log.append(witness(m, "other writes"))
            q.touch(b, 2 * pl.MiB, write=True)
            m.clock.schedule(m.clock.now + 5 * FAULT_W, lambda: log.append(witness(m, "chained")), name="chained")

        def zap_behind():
            log.append(witness(m, "zap"))
            p.madvise(a, 2 * pl.MiB, pl.MADV_DONTNEED)

        def map_more():
            log.append(witness(m, "map"))
            c = p.mmap(None, pl.MiB, RW, ANON)
            p.munmap(c, 4096)

        def unmap_ahead():
            log.append(witness(m, "unmap"))
            p.munmap(a + 15 * pl.MiB, pl.MiB)

        for k, fn in enumerate([other_writes, zap_behind, map_more, unmap_ahead]):
            m.clock.schedule(now + (300 + 700 * k) * FAULT_W + 13 * k, fn, name=fn.__name__)
        p.touch(a, 8 * pl.MiB, write=True)
        p.touch(a, 8 * pl.MiB, write=True)  # the zapped pages come back
        with pytest.raises(pl.SegmentationFault):
            p.touch(a + 8 * pl.MiB, 8 * pl.MiB, write=True)  # runs into the unmapped tail
        log.append(witness(m, "end"))
    log, _ = run_both_with_events(script)
    assert [w[0] for w in log] == ["other writes", "chained", "zap", "map", "unmap", "end"]


@settings(max_examples=25, deadline=None)
@given(events=st.lists(st.tuples(st.integers(0, 1600 * FAULT_W), st.integers(-1, 1),
                                 st.sampled_from(["log", "write_other", "dontneed", "rearm"])), max_size=6),
       runs=st.lists(st.tuples(st.integers(0, 1023), st.integers(1, 512), st.sampled_from([512, 4096, 8192]),
                               st.booleans()), min_size=1, max_size=4))
def test_random_events_during_random_touches(events, runs):
    def script(m, log):
        p = m.spawn("toucher")
        q = m.spawn("other")
        a = p.mmap(None, 1024 * 4096, RW, ANON)
        b = q.mmap(None, 64 * 4096, RW, ANON)
        now = m.clock.now
        for k, (offset, prio, kind) in enumerate(events):
            def fire(k=k, kind=kind):
                log.append(witness(m, f"{kind}{k}"))
                if kind == "write_other":
                    q.touch(b + 4096 * k, 4096 * 8, write=True)
                elif kind == "dontneed":
                    p.madvise(a + 4096 * 64 * k, 4096 * 64, pl.MADV_DONTNEED)
                elif kind == "rearm":
                    m.clock.schedule(m.clock.now + 50 * FAULT_W, lambda: log.append(witness(m, f"again{k}")))
            m.clock.schedule(now + offset, fire, prio, name=f"{kind}{k}")
        for start, npages, stride, write in runs:
            p.touch(a + start * 4096, min(npages, 1024 - start) * 4096, stride=stride, write=write)
        log.append(witness(m, "end"))
    run_both_with_events(script)
