"""The buddy allocator: boot layout, splitting and merging, the per-CPU list, bulk == single, folios."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pagelab as pl
from pagelab.hw.physmem import PG, FrameTable
from pagelab.mm.debug import check_compound_pages, check_free_lists
from pagelab.mm.folio import Folio, split_folio_to_order
from pagelab.mm.list import list_add, list_add_tail, list_del, list_empty, list_entries
from pagelab.mm.page_alloc import (
    MAX_PAGE_ORDER,
    NR_PAGE_ORDERS,
    Z_PCP_ALLOC_FACTOR,
    Z_PCP_BATCH,
    Z_PCP_COUNT,
    Z_PCP_FREE_COUNT,
    Z_PCP_HIGH,
    Z_PCP_LIST,
    Zone,
    _free_one_page,
    _rmqueue_smallest,
    account_freepages,
    alloc_page,
    alloc_pages,
    alloc_pages_bulk,
    default_min_free_kbytes,
    drain_all_pages,
    expand,
    folio_alloc,
    free_frozen_pages,
    free_pages,
    free_unref_folios,
    nr_free_frames,
    nr_pcp_alloc,
    nr_pcp_free,
    put_page,
    split_page,
    zone_batchsize,
    zone_highsize,
    zone_watermarks,
)


def free_blocks(m: pl.Machine) -> dict[int, list[int]]:
    """The free blocks of each order, in list order (head first)."""
    return {o: list_entries(m.frames.links, m.zone.free_list(o), m.frames.nr_frames).tolist()
            for o in range(NR_PAGE_ORDERS)}


def pcp_list(m: pl.Machine) -> list[int]:
    return list_entries(m.frames.links, m.zone.pcp.list_head, m.frames.nr_frames).tolist()


def state(m: pl.Machine) -> dict[str, object]:
    f = m.frames
    return {"flags": f.flags.copy(), "refcount": f.refcount.copy(), "order": f.order.copy(),
            "head_offset": f.head_offset.copy(), "links": f.links.copy(), "zone": m.zone.state.copy(),
            "vmstat": m.vmstat()}


def assert_same(a: dict[str, object], b: dict[str, object]) -> None:
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


# --- boot ------------------------------------------------------------------------------------------

def test_boot_frees_every_frame_in_the_largest_aligned_blocks():
    """memblock_free_all(): pfn 0 (the zero page) stays reserved; 1..16384 go to the tail of the lists in the
    largest blocks their alignment allows, so each list holds its blocks in address order."""
    m = pl.Machine(ram="64MiB", seed=0)
    blocks = free_blocks(m)
    assert blocks[0] == [1, 16384]
    assert all(blocks[o] == [1 << o] for o in range(1, MAX_PAGE_ORDER))
    assert blocks[MAX_PAGE_ORDER] == list(range(1024, 16384, 1024))
    assert m.zone.free_pages == m.vmstat()["nr_free_pages"] == m.totalram_pages == nr_free_frames(m)
    assert m.zone.managed_pages == m.totalram_pages and m.zone.pcp.count == 0
    check_free_lists(m)


def test_buddyinfo_is_linux_format():
    """frag_show_print(): "Node %d, zone %8s " then "%6lu " for each order 0..10, then a newline."""
    m = pl.Machine(ram="64MiB", seed=0)
    assert m.read("/proc/buddyinfo") == ("Node 0, zone   Normal      2      1      1      1      1      1"
                                         "      1      1      1      1     15 \n")
    p = m.spawn("b")
    a = p.mmap(None, 6 * pl.MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    p.touch(a, 6 * pl.MiB, write=True)
    text = m.read("/proc/buddyinfo")
    assert re.fullmatch(r"Node 0, zone   Normal (( {5}\d| {4}\d\d| {3}\d{3}| {2}\d{4}| \d{5}|\d{6}) ){11}\n", text)
    assert [int(x) for x in text.split()[4:]] == [m.zone.nr_free(o) for o in range(NR_PAGE_ORDERS)]


# --- sizes: this host's /proc/zoneinfo as the reference ----------------------------------------------

def test_batch_and_high_as_this_hosts_zoneinfo():
    """Linux 6.18 on this host (2 CPUs, min_free_kbytes 67584): DMA managed 3840, low 30 -> batch 1, high_min
    15, high_max 240; DMA32 772808, low 6171 -> 63, 3085, 48300; Normal 1867776, low 14916 -> 63, 7458, 116736."""
    for managed, low, batch, high_min, high_max in ((3840, 30, 1, 15, 240), (772808, 6171, 63, 3085, 48300),
                                                     (1867776, 14916, 63, 7458, 116736)):
        assert zone_batchsize(managed) == batch
        assert zone_highsize(managed, low, batch, 2, 0) == high_min
        assert zone_highsize(managed, low, batch, 2, 8) == high_max


def test_watermarks_as_this_hosts_zoneinfo():
    """__setup_per_zone_wmarks() with min_free_kbytes 67584 over 2644424 lowmem pages: (min, low, high)."""
    lowmem = 3840 + 772808 + 1867776
    assert zone_watermarks(3840, lowmem, 67584, 10) == (24, 30, 36)
    assert zone_watermarks(772808, lowmem, 67584, 10) == (4937, 6171, 7405)
    assert zone_watermarks(1867776, lowmem, 67584, 10) == (11933, 14916, 17899)


@pytest.mark.parametrize("thp, kbytes, low, high", [("madvise", 3200, 1000, 1000), ("never", 1024, 320, 320)])
def test_a_machines_watermarks_and_pcp_size(thp, kbytes, low, high):
    """64 MiB, one zone, one CPU: min_free_kbytes = sqrt(16 x 65536 kB) = 1024, raised with THP to 5 % of the
    pages above the high watermark (800 pages); the per-CPU list's high is the low watermark, batch 3."""
    m = pl.Machine(ram="64MiB", seed=0, thp=thp)
    assert m.zone.min_free_kbytes == kbytes == default_min_free_kbytes(16384, thp == "madvise", 10)
    assert m.zone.watermark_low == low and m.zone.pcp.high == m.zone.pcp.high_min == high
    assert m.zone.pcp.batch == 3 and m.zone.pcp.high_max == 16384 // 8
    big = pl.Machine(ram="2GiB", seed=0)
    assert big.zone.pcp.batch == 63  # as on every zone above 1 GiB


# --- splitting and merging -------------------------------------------------------------------------

def small_zone(nr: int = 64) -> tuple[FrameTable, Zone]:
    frames = FrameTable(nr)
    return frames, Zone(frames, "Normal", 0, nr)


def zone_lists(frames: FrameTable, zone: Zone) -> dict[int, list[int]]:
    return {o: list_entries(frames.links, zone.free_list(o), frames.nr_frames).tolist()
            for o in range(NR_PAGE_ORDERS) if zone.nr_free(o)}


def test_freeing_merges_buddies_up_to_the_zone_edge():
    frames, zone = small_zone(64)
    for pfn in range(64):
        _free_one_page(frames.links, frames.flags, frames.order, zone.state, pfn, 0, False)
    assert zone_lists(frames, zone) == {6: [0]}  # the order-6 buddy (64) is outside the zone
    assert frames.flags[0] & PG.BUDDY and frames.order[0] == 6 and not (frames.flags[1:] & PG.BUDDY).any()


def test_expand_puts_the_upper_halves_back_at_the_heads():
    frames, zone = small_zone(64)
    _free_one_page(frames.links, frames.flags, frames.order, zone.state, 16, 3, False)
    _free_one_page(frames.links, frames.flags, frames.order, zone.state, 40, 1, False)
    pfn = _rmqueue_smallest(frames.links, frames.flags, frames.order, zone.state, 0)
    assert pfn == 40  # the smallest block that fits: order 1 before order 3
    assert zone_lists(frames, zone) == {0: [41], 3: [16]}
    assert _rmqueue_smallest(frames.links, frames.flags, frames.order, zone.state, 1) == 16
    assert zone_lists(frames, zone) == {0: [41], 1: [18], 2: [20]}
    assert expand(frames.links, frames.flags, frames.order, zone.state, 32, 0, 2) == 3
    assert zone_lists(frames, zone) == {0: [33, 41], 1: [34, 18], 2: [20]}


@pytest.mark.parametrize("higher_buddy_free", [False, True])
def test_a_block_goes_to_the_tail_when_its_merge_looks_likely(higher_buddy_free):
    """buddy_merge_likely(): freeing 4 (order 2) while 0 is in use: if 8 (the buddy of 0..7 at order 3) is free,
    4 goes to the tail of its list, to stay free until 0 comes back and they merge."""
    frames, zone = small_zone(64)
    args = (frames.links, frames.flags, frames.order, zone.state)
    _free_one_page(*args, 32, 2, False)
    if higher_buddy_free:
        _free_one_page(*args, 8, 3, False)
    _free_one_page(*args, 4, 2, False)
    assert zone_lists(frames, zone)[2] == ([32, 4] if higher_buddy_free else [4, 32])


# --- the per-CPU list ------------------------------------------------------------------------------

def test_the_first_allocation_refills_the_pcp_list_and_nr_free_pages_leaves_it_out():
    m = pl.Machine(ram="64MiB", seed=0)
    assert alloc_page(m, 0) == 1
    # batch 3, in the order __rmqueue_smallest() gave them: the smallest free blocks first (the two order-0
    # blocks, 1 and 16384), then the order-1 block 2..3 split (3 goes back to the order-0 list)
    assert m.zone.pcp.count == 2 and pcp_list(m) == [16384, 2] and free_blocks(m)[0] == [3]
    assert m.vmstat()["nr_free_pages"] == 16384 - 3 == m.zone.free_pages
    assert m.read("/proc/meminfo").splitlines()[1].split()[1] == str((16384 - 3) * 4)
    assert [alloc_page(m, 0) for _ in range(3)] == [16384, 2, 3]  # the next refill takes 3 << 1 pages
    assert pcp_list(m) == [4, 5, 6, 7, 8] and m.zone.pcp.alloc_factor == 2
    check_free_lists(m)


def test_the_last_page_freed_is_the_first_reused():
    m = pl.Machine(ram="64MiB", seed=0)
    pfns = [alloc_page(m, 0) for _ in range(8)]
    for pfn in (pfns[2], pfns[6], pfns[4]):
        put_page(m, pfn)
    assert pcp_list(m)[:3] == [pfns[4], pfns[6], pfns[2]]
    assert [alloc_page(m, 0) for _ in range(3)] == [pfns[4], pfns[6], pfns[2]]


def test_reaching_high_frees_the_oldest_pages_to_the_buddy_lists():
    m = pl.Machine(ram="64MiB", seed=0)  # high 1000, batch 3
    pfns = alloc_pages_bulk(m, 1200, 0)
    count, free_count = m.zone.pcp.count, m.zone.pcp.free_count
    free_unref_folios(m, pfns)
    # free_frozen_page_commit(): each free pushes on the head and counts (free_count, up to batch << 5); at
    # high pages, nr_pcp_free() = clamp(free_count, batch, high - batch) go back from the tail, oldest first.
    for _ in range(1200):
        count += 1
        free_count = min(free_count + 1, 3 << 5)
        if count >= 1000:
            count -= min(max(free_count, 3), 1000 - 3)
    pcp = pcp_list(m)
    assert len(pcp) == m.zone.pcp.count == count < m.zone.pcp.high
    assert pcp == pfns[::-1][:count].tolist()  # the last freed first; the oldest went back to the buddy lists
    assert m.zone.free_pages + m.zone.pcp.count == nr_free_frames(m) == m.totalram_pages
    check_free_lists(m)
    drain_all_pages(m)
    assert m.zone.pcp.count == 0 and m.zone.free_pages == m.totalram_pages
    check_free_lists(m)


def test_alloc_factor_doubles_the_refills_until_a_free():
    m = pl.Machine(ram="2GiB", seed=0)  # batch 63
    sizes = []
    for _ in range(6):
        alloc_page(m, 0)
        sizes.append(m.zone.pcp.count + 1)
        alloc_pages_bulk(m, m.zone.pcp.count, 0)  # empty the list
    assert sizes == [63, 126, 252, 504, 1008, 2016]  # batch << alloc_factor, up to CONFIG_PCP_BATCH_SCALE_MAX
    put_page(m, alloc_page(m, 0))
    assert m.zone.pcp.alloc_factor == 2  # a free halves it


def ref_alloc_page(m: pl.Machine, flags: int) -> int:
    """rmqueue_pcplist() as Linux writes it: a refill is nr_pcp_alloc() single __rmqueue_smallest() calls,
    each added to the list's tail, then the head is popped."""
    f, zs = m.frames, m.zone.state
    zs[Z_PCP_FREE_COUNT] >>= 1
    head = int(zs[Z_PCP_LIST])
    if list_empty(f.links, head):
        got = 0
        for _ in range(nr_pcp_alloc(zs, 0)):
            pfn = _rmqueue_smallest(f.links, f.flags, f.order, zs, 0)
            if pfn < 0:
                break
            list_add_tail(f.links, pfn, head)
            got += 1
        zs[Z_PCP_COUNT] += got
        if got:
            account_freepages(m, m.zone, -got)
        if not got:
            return -1
    pfn = int(f.links[0, head])
    list_del(f.links, pfn)
    zs[Z_PCP_COUNT] -= 1
    f.flags[pfn], f.refcount[pfn] = flags, 1
    return pfn


def ref_put_page(m: pl.Machine, pfn: int) -> None:
    """free_frozen_page_commit() and free_pcppages_bulk() as Linux writes them: each page pushed on the
    head; at high, nr_pcp_free() pages from the tail, each through __free_one_page() on its own."""
    f, zs = m.frames, m.zone.state
    f.clear(pfn)
    head = int(zs[Z_PCP_LIST])
    zs[Z_PCP_ALLOC_FACTOR] >>= 1
    list_add(f.links, pfn, head)
    zs[Z_PCP_COUNT] += 1
    batch, high = int(zs[Z_PCP_BATCH]), int(zs[Z_PCP_HIGH])
    if zs[Z_PCP_FREE_COUNT] < batch << 5:
        zs[Z_PCP_FREE_COUNT] += 1
    if zs[Z_PCP_COUNT] >= high:
        n = min(int(zs[Z_PCP_COUNT]), nr_pcp_free(zs, batch, high))
        for _ in range(n):
            page = int(f.links[1, head])
            list_del(f.links, page)
            zs[Z_PCP_COUNT] -= 1
            _free_one_page(f.links, f.flags, f.order, zs, page, 0, False)
        account_freepages(m, m.zone, n)


def test_freeing_runs_a_block_at_a_time_equals_page_by_page():
    """free_pcppages_bulk() frees runs of consecutive pages a block at a time: the same lists and columns as
    __free_one_page() on each page, for a zap of memory allocated in order, in order and in reverse."""
    for order in ("ascending", "descending", "interleaved"):
        machines = [pl.Machine(ram="64MiB", seed=0) for _ in range(2)]
        for k, m in enumerate(machines):
            pfns = alloc_pages_bulk(m, 6000, 0)
            pfns = {"ascending": pfns, "descending": pfns[::-1],
                    "interleaved": np.concatenate([pfns[::2], pfns[1::2]])}[order]
            for pfn in pfns.tolist():
                (ref_put_page if k == 0 else put_page)(m, pfn)
        assert_same(state(machines[0]), state(machines[1]))
        check_free_lists(machines[1])


ops = st.lists(st.one_of(st.tuples(st.just("alloc"), st.integers(1, 700)),
                         st.tuples(st.just("free"), st.integers(0, 2**32))), min_size=1, max_size=12)


@settings(max_examples=30, deadline=None)
@given(ops=ops)
def test_bulk_equals_single_equals_linux_stepwise(ops):
    """alloc_pages_bulk(n) leaves what n alloc_page() calls leave, and both what Linux's page-at-a-time refill
    (rmqueue_bulk() calling __rmqueue_smallest() batch times) leaves; free_unref_folios() what put_page() on each
    leaves, and both what Linux's page-at-a-time free_pcppages_bulk() leaves: the same pages, lists, columns."""
    machines = [pl.Machine(ram="16MiB", seed=0) for _ in range(3)]
    got: list[list[int]] = [[], [], []]
    for op, arg in ops:
        for k, m in enumerate(machines):
            live = got[k]
            if op == "alloc":
                if k == 0:
                    new = [p for p in (ref_alloc_page(m, 0) for _ in range(arg)) if p >= 0]
                elif k == 1:
                    new = [p for p in (alloc_page(m, 0) for _ in range(arg)) if p >= 0]
                else:
                    new = alloc_pages_bulk(m, arg, 0).tolist()
                live.extend(new)
            elif live:
                rng = np.random.default_rng(arg)
                victims = rng.permutation(len(live))[:rng.integers(1, len(live) + 1)]
                pfns = [live[i] for i in sorted(victims.tolist(), reverse=True)]
                for i in sorted(victims.tolist(), reverse=True):
                    live.pop(i)
                if k == 2:
                    free_unref_folios(m, np.array(pfns, dtype=np.int64))
                else:
                    for pfn in pfns:
                        (ref_put_page if k == 0 else put_page)(m, pfn)
    assert got[0] == got[1] == got[2]
    assert_same(state(machines[0]), state(machines[1]))
    assert_same(state(machines[0]), state(machines[2]))
    check_free_lists(machines[2])


def test_running_out_of_memory():
    m = pl.Machine(ram="16MiB", seed=0)
    total = nr_free_frames(m)
    pfns = alloc_pages_bulk(m, total + 10, PG.ANON)
    assert pfns.shape[0] == total and np.unique(pfns).shape[0] == total and 0 not in pfns
    assert alloc_page(m, 0) == -1 and alloc_pages(m, 3, 0) == -1 and folio_alloc(m, 9, 0) == -1
    assert m.vmstat()["nr_free_pages"] == 0 and nr_free_frames(m) == 0
    free_unref_folios(m, pfns)
    drain_all_pages(m)
    assert m.zone.free_pages == total
    check_free_lists(m)


# --- compound pages and folios ---------------------------------------------------------------------

def test_a_folio_is_compound_and_its_last_reference_frees_it_whole():
    m = pl.Machine(ram="64MiB", seed=0)
    free = m.zone.free_pages
    head = folio_alloc(m, 9, PG.ANON | PG.UPTODATE)
    assert head % 512 == 0 and m.frames.flags[head] & PG.HEAD and m.frames.order[head] == 9
    assert m.frames.flags[head] & PG.LARGE_RMAPPABLE and m.frames.refcount[head] == 1
    assert m.frames.head_offset[head + 1:head + 512].tolist() == list(range(1, 512))
    assert not m.frames.flags[head + 1:head + 512].any() and not m.frames.refcount[head + 1:head + 512].any()
    assert m.zone.free_pages == free - 512  # orders above 0 bypass the per-CPU list
    check_compound_pages(m)
    m.frames.refcount[head] += 1  # folio_get()
    put_page(m, head + 300)  # a tail's put drops the head's reference
    assert m.frames.refcount[head] == 1
    put_page(m, head + 7)
    assert m.zone.free_pages == free and not m.frames.head_offset.any()
    assert m.frames.flags[head] == PG.BUDDY and m.frames.order[head] == 9  # a free block again
    assert free_blocks(m) == free_blocks(pl.Machine(ram="64MiB", seed=0))  # the order-9 block merged back
    check_free_lists(m)


def test_split_page_gives_each_page_its_own_reference():
    m = pl.Machine(ram="64MiB", seed=0)
    pfn = alloc_pages(m, 2, PG.TABLE)
    assert m.frames.refcount[pfn:pfn + 4].tolist() == [1, 0, 0, 0]
    assert (m.frames.flags[pfn:pfn + 4] == PG.TABLE).all()
    split_page(m, pfn, 2)
    assert m.frames.refcount[pfn:pfn + 4].tolist() == [1, 1, 1, 1]
    for p in range(pfn, pfn + 4):
        free_pages(m, p, 0)
    drain_all_pages(m)
    assert m.zone.free_pages == m.totalram_pages
    with pytest.raises(pl.KernelBug):
        free_frozen_pages(m, 8, 3)  # a free block freed again


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_folios_of_every_order_allocated_split_and_freed_in_any_order_leave_the_lists_as_at_boot(data):
    """The issue's test: folios of every order 0..10 (plus non-compound allocations split with split_page(), and
    folios split to a lower order), freed in random order, interleaved; after the per-CPU list is drained the
    buddy allocator holds exactly the free blocks it held at boot (the same blocks of each order, counts and
    columns; the order within a list depends on the order of the frees, as in Linux)."""
    m = pl.Machine(ram="32MiB", seed=0)
    boot_blocks = {o: sorted(v) for o, v in free_blocks(m).items()}
    boot = state(m)
    orders = data.draw(st.permutations(range(NR_PAGE_ORDERS)))
    orders += data.draw(st.lists(st.integers(0, MAX_PAGE_ORDER), max_size=12))
    live: list[tuple[int, int]] = []  # (head pfn, order) of each folio or page to put
    for order in orders:
        how = data.draw(st.sampled_from(["folio", "pages", "split"]))
        if how == "folio" or order == 0:
            head = folio_alloc(m, order, PG.ANON | PG.UPTODATE)
            if head >= 0:
                live.append((head, order))
        elif how == "pages":
            head = alloc_pages(m, order, 0)
            if head >= 0:
                split_page(m, head, order)
                live.extend((p, 0) for p in range(head, head + (1 << order)))
        else:
            head = folio_alloc(m, order, PG.ANON | PG.DIRTY)
            if head >= 0:
                new_order = data.draw(st.integers(0, order - 1))
                for f in split_folio_to_order(m, Folio(head, order), new_order):
                    m.frames.refcount[f.pfn] = 1  # folio_ref_unfreeze(): the caller's
                    live.append((f.pfn, f.order))
        while live and data.draw(st.booleans()):
            put_page(m, live.pop(data.draw(st.integers(0, len(live) - 1)))[0])
        check_free_lists(m)
        check_compound_pages(m)
    for i in data.draw(st.permutations(range(len(live)))):
        put_page(m, live[i][0])
    drain_all_pages(m)
    check_free_lists(m)
    assert {o: sorted(v) for o, v in free_blocks(m).items()} == boot_blocks
    after = state(m)
    for k in ("flags", "refcount", "order", "head_offset"):
        assert np.array_equal(after[k], boot[k]), k
    assert np.array_equal(after["zone"][:13], boot["zone"][:13])  # zone span and nr_free per order
    assert after["vmstat"]["nr_free_pages"] == boot["vmstat"]["nr_free_pages"]
