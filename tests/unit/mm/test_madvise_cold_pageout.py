"""MADV_COLD / MADV_PAGEOUT on the simulator (mm/madvise.py, mm/vmscan.py, folio_(de)activate in mm/swap.py),
against docs/facts/pageout.md: what the process sees (Rss, AnonHugePages, mincore, data) and the /proc/vmstat
deltas, exactly; mm/debug.check_machine after the advice and after each case."""

from __future__ import annotations

import os
import random

import pytest
from tests.support.pageout_cases import CASES, RW, N, P, locked_errno, resident, run_case, smaps_field

import pagelab as pl
from pagelab.errors import BusError, SegmentationFault
from pagelab.mm.debug import check_machine

MiB = 1 << 20
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS

# case: (what the process sees, the vmstat deltas that must match exactly; unlisted VMSTAT keys must be 0)
EXPECTED: dict[str, tuple[dict[str, object], dict[str, int]]] = {
    "anon_pageout": ({"Rss": 4096, "resident": N, "extra": 9},
                     {"pgactivate": N, "nr_active_anon": N, "nr_inactive_anon": -N}),
    "anon_cold_fresh": ({"Rss": 4096, "resident": N}, {}),
    # 33 batches of 31 moved; the 1024th page waits in the per-CPU lru_deactivate batch
    "anon_cold_after_pageout": ({"Rss": 4096, "resident": N},
                                {"pgdeactivate": 1023, "nr_active_anon": -1023, "nr_inactive_anon": 1023}),
    # split (PMD and folio), no swap for the THP: thp_swpout_fallback; the 502 zero-filled pages go to the
    # zero page (and are freed), the 10 written ones are activated
    "thp_pageout_whole": ({"AnonHugePages before": 2048, "AnonHugePages": 0, "Rss": 40, "byte": 7},
                          {"pgactivate": 10, "thp_split_page": 1, "thp_split_pmd": 1, "thp_swpout_fallback": 1,
                           "nr_active_anon": 10, "nr_inactive_anon": -512}),
    "thp_pageout_half": ({"AnonHugePages before": 2048, "AnonHugePages": 0, "Rss": 40, "byte": 7},
                         {"pgactivate": 5, "thp_split_page": 1, "thp_split_pmd": 1,
                          "nr_active_anon": 5, "nr_inactive_anon": -507}),
    "thp_cold_half": ({"AnonHugePages before": 2048, "AnonHugePages": 0, "Rss": 40, "byte": 7},
                      {"thp_split_page": 1, "thp_split_pmd": 1, "nr_inactive_anon": -502}),
    "thp_zero_pageout_whole": ({"AnonHugePages before": 2048, "AnonHugePages": 0, "Rss": 0, "byte": 0},
                               {"pgactivate": 1, "thp_split_page": 1, "thp_split_pmd": 1,
                                "thp_swpout_fallback": 1, "nr_inactive_anon": -512}),
    "file_clean_pageout": ({"Rss": 0, "resident": 0, "extra": (5, True)},
                           {"nr_inactive_file": -N, "nr_file_pages": -N}),
    "file_clean_cold": ({"Rss": 4096, "resident": N}, {}),
    "file_half_shared": ({"Rss": 2048, "resident": N // 2, "extra": 2048},
                         {"nr_inactive_file": -N // 2, "nr_file_pages": -N // 2}),
    "file_dirty_pageout": ({"Rss": 0, "resident": N, "extra": 11},
                           {"pgactivate": N, "nr_vmscan_immediate_reclaim": N, "nr_active_file": N,
                            "nr_inactive_file": -N}),
    "file_private_half_cow": ({"Rss": 2048, "resident": N // 2, "extra": (0, 5)},
                              {"pgactivate": N // 2, "nr_active_anon": N // 2, "nr_inactive_anon": -N // 2,
                               "nr_inactive_file": -N // 2, "nr_file_pages": -N // 2}),
    "shmem_written": ({"Rss": 0, "resident": N, "extra": 13},
                      {"pgactivate": N, "nr_active_anon": N, "nr_inactive_anon": -N}),
    "shmem_read_only": ({"Rss": 0, "resident": 0, "extra": 0},
                        {"nr_inactive_anon": -N, "nr_file_pages": -N, "nr_shmem": -N}),
    "anon_shared_with_child": ({"Rss": 4096, "resident": N, "extra": None}, {}),
    # 992 pages: none waits in the lazyfree batch (with 1024, PAGEOUT's lru_add_drain() moves the last first)
    "lazyfree_rewritten": ({"Rss": 40, "resident": 10},
                           {"pgactivate": 10, "pglazyfreed": 982, "nr_active_anon": 10, "nr_inactive_file": -992}),
}


def test_every_case_has_its_facts():
    assert set(EXPECTED) == set(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_case_matches_the_fact_sheet(name):
    m = pl.Machine(ram="256MiB")
    seen, deltas = run_case(m, name, lambda: check_machine(m))
    want_seen, want_deltas = EXPECTED[name]
    assert seen == want_seen
    assert deltas == {k: want_deltas.get(k, 0) for k in deltas}


def test_locked_and_unaligned_are_einval():
    assert locked_errno(pl.Machine(ram="256MiB")) == ["EINVAL"] * 4


def test_deactivate_batch_is_drained_by_the_next_madvise():
    """The page left in lru_deactivate moves (pgdeactivate 1) when PAGEOUT drains the batches."""
    m = pl.Machine(ram="256MiB")
    p = m.spawn("t")
    a = p.mmap(None, N * P, RW, ANON)
    p.touch(a, N * P, write=True)
    p.madvise(a, N * P, pl.MADV_PAGEOUT)
    p.madvise(a, N * P, pl.MADV_COLD)
    assert len(m.cpu_fbatches.lru_deactivate) == 1
    check_machine(m)
    v0 = m.vmstat()
    p.madvise(a, N * P // 2, pl.MADV_PAGEOUT)
    v1 = m.vmstat()
    assert v1["pgdeactivate"] - v0["pgdeactivate"] == 1
    assert v1["pgactivate"] - v0["pgactivate"] == N // 2
    assert not m.cpu_fbatches.lru_deactivate
    check_machine(m)
    p.madvise(a, N * P // 2, pl.MADV_COLD)  # 512 = 16 x 31 + 16
    assert m.vmstat()["pgdeactivate"] - v1["pgdeactivate"] == 496
    p.exit()
    check_machine(m)


def test_pageout_then_exit_and_refault_keep_the_machine_consistent():
    """Pages activated by PAGEOUT are freed by exit from the active lists; a dropped file page refaults."""
    m = pl.Machine(ram="256MiB")
    m.fs.create("/f", 64 * P)
    p = m.spawn("t")
    a = p.mmap(None, 64 * P, RW, ANON)
    p.touch(a, 64 * P, write=True)
    fd = p.open("/f", os.O_RDWR)
    f = p.mmap(None, 64 * P, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    p.touch(f, 64 * P)
    p.madvise(a, 64 * P, pl.MADV_PAGEOUT)
    p.madvise(f, 64 * P, pl.MADV_PAGEOUT)
    assert m.vmstat()["nr_active_anon"] >= 64
    r0 = p.rusage()
    p.touch(f, 64 * P)
    assert p.rusage().ru_majflt > r0.ru_majflt
    check_machine(m)
    p.mlock(a, 64 * P)  # active pages to the unevictable list and back
    p.munlock(a, 64 * P)
    check_machine(m)
    p.exit()
    check_machine(m)
    assert m.vmstat()["nr_active_anon"] == 0


def test_cold_on_a_whole_thp_keeps_it_whole():
    """A range covering the whole PMD: the THP is not split (COLD of a fresh THP moves nothing)."""
    m = pl.Machine(ram="256MiB")
    p = m.spawn("t")
    raw = p.mmap(None, 4 * MiB, RW, ANON)
    h = (raw + 2 * MiB - 1) & ~(2 * MiB - 1)
    p.madvise(h, 2 * MiB, pl.MADV_HUGEPAGE)
    p.touch(h, 2 * MiB, write=True)
    v0 = m.vmstat()
    p.madvise(h, 2 * MiB, pl.MADV_COLD)
    v1 = m.vmstat()
    assert v1["thp_split_page"] == v0["thp_split_page"] and v1["nr_anon_transparent_hugepages"] == 1
    p.madvise(h, 2 * MiB, pl.MADV_PAGEOUT)  # then split, activated, and COLD deactivates the pieces
    p.store(h, 1)
    p.madvise(h, 2 * MiB, pl.MADV_COLD)
    check_machine(m)


def test_pageout_of_part_of_a_large_file_folio_splits_and_unmaps_it_reclaiming_nothing():
    """split_folio() of a page-cache folio does not map its pages again (remap_page() remaps anon folios
    only): the whole folio leaves the page tables, its pages stay cached (measured on the host: Rss -16 kB
    and -64 kB for 3 pages inside a 4- and a 16-page folio, mincore unchanged, nothing dropped)."""
    m = pl.Machine(ram="256MiB")
    m.fs.create("/big", 8 * MiB, content=b"\x03")
    p = m.spawn("t")
    fd = p.open("/big", os.O_RDWR)
    while p.read(fd, MiB):  # a cold read() pass: readahead makes large folios
        pass
    f = p.mmap(None, 8 * MiB, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    p.touch(f, 8 * MiB)
    target = f + 2 * MiB + 5 * P
    rss0, v0 = smaps_field(m, p, f, "Rss"), m.vmstat()
    p.madvise(target, 3 * P, pl.MADV_PAGEOUT)
    v1 = m.vmstat()
    check_machine(m)
    assert resident(p, f, 8 * MiB) == 2048
    assert v1["nr_file_pages"] == v0["nr_file_pages"] and v1["pgactivate"] == v0["pgactivate"]
    dropped = rss0 - smaps_field(m, p, f, "Rss")
    assert dropped > 12 and dropped % 4 == 0  # more than the 3 pages asked: the whole folio was unmapped
    r0 = p.rusage()
    p.touch(f, 8 * MiB)  # its pages come back by minor faults: still cached
    assert p.rusage().ru_majflt == r0.ru_majflt and smaps_field(m, p, f, "Rss") == rss0
    check_machine(m)


def test_a_folio_left_in_the_deactivate_batch_outlives_its_shmem_file():
    """COLD leaves the folios of 4 active shmem pages in lru_deactivate (fewer than 31); the exit frees the
    shmem file, the batch still holds them; the next drain moves and frees them."""
    m = pl.Machine(ram="256MiB")
    p = m.spawn("t")
    s = p.mmap(None, 4 * P, RW, pl.MAP_SHARED | pl.MAP_ANONYMOUS)
    p.touch(s, 4 * P, write=True)
    p.madvise(s, 4 * P, pl.MADV_PAGEOUT)  # written shmem: unmapped, activated
    p.touch(s, 4 * P)
    p.madvise(s, 4 * P, pl.MADV_COLD)
    held = list(m.cpu_fbatches.lru_deactivate)
    assert len(held) == 4
    p.exit()
    check_machine(m)
    assert m.vmstat()["nr_shmem"] == 0
    q = m.spawn("q")
    a = q.mmap(None, P, RW, ANON)
    q.madvise(a, P, pl.MADV_COLD)  # lru_add_drain(): pgdeactivate 4, then the batch's references go
    assert not m.cpu_fbatches.lru_deactivate
    assert m.vmstat()["nr_active_anon"] == 0 and not m.frames.refcount[held].any()  # freed
    check_machine(m)


def test_mlock_clears_pg_active_so_munlock_puts_pages_back_inactive():
    """__mlock_folio(): folio_clear_active() when a folio moves to the unevictable list."""
    m = pl.Machine(ram="256MiB")
    p = m.spawn("t")
    a = p.mmap(None, 4 * P, RW, ANON)
    p.touch(a, 4 * P, write=True)
    p.madvise(a, 4 * P, pl.MADV_PAGEOUT)
    assert m.vmstat()["nr_active_anon"] == 4
    p.mlock(a, 4 * P)
    p.munlock(a, 4 * P)
    v = m.vmstat()
    assert (v["nr_active_anon"], v["nr_inactive_anon"], v["nr_unevictable"]) == (0, 4, 0)
    check_machine(m)


def test_an_mlocked_lazyfree_folio_goes_back_to_the_file_list_on_munlock():
    """A MADV_FREE'd folio lives on the file LRU (folio_is_file_lru(): !swapbacked); mlock moves it to the
    unevictable list, munlock (here through munmap's rmap removal) puts it back on the file list."""
    m = pl.Machine(ram="256MiB")
    p = m.spawn("t")
    a = p.mmap(None, 4 * P, RW, ANON)
    p.touch(a, 4 * P, write=True)
    p.madvise(a, 4 * P, pl.MADV_FREE)
    p.madvise(a, 4 * P, pl.MADV_COLD)  # drains the lazyfree batch
    p.mlock(a, 2 * P)
    check_machine(m)
    p.munlock(a, P)
    check_machine(m)
    p.munmap(a, 4 * P)
    check_machine(m)
    assert m.vmstat()["nr_inactive_file"] == 0 and m.vmstat()["nr_unevictable"] == 0


def _random_run(seed: int, steps: int = 60) -> None:
    """Random COLD/PAGEOUT mixed with the calls that change the same folios (touch, store, MADV_FREE,
    MADV_DONTNEED, fork, mlock/munlock, munmap, exit) over anon, shmem, THP-advised, shared and private
    file mappings; check_machine after every step and after every process has exited."""
    rng = random.Random(seed)
    m = pl.Machine(ram="128MiB", seed=seed)
    m.fs.create("/f", 4 * MiB, content=b"\x09")
    procs = [m.spawn("a")]
    regions: dict[int, list[tuple[int, int]]] = {}
    for _ in range(steps):
        alive = [q for q in procs if q.task.alive]
        if not alive:
            break
        p = rng.choice(alive)
        op = rng.randrange(12)
        try:
            if op == 0 or not regions.get(p.pid):
                kind = rng.choice(["anon", "shanon", "file", "pfile", "thp"])
                n = rng.choice([16, 64, 512, 1024])
                if kind in ("anon", "thp"):
                    a = p.mmap(None, n * P, RW, ANON)
                    if kind == "thp":
                        p.madvise(a, n * P, pl.MADV_HUGEPAGE)
                elif kind == "shanon":
                    a = p.mmap(None, n * P, RW, pl.MAP_SHARED | pl.MAP_ANONYMOUS)
                else:
                    fd = p.open("/f", os.O_RDWR)
                    if rng.random() < 0.5:
                        while p.read(fd, MiB):
                            pass
                    a = p.mmap(None, n * P, RW, pl.MAP_SHARED if kind == "file" else pl.MAP_PRIVATE, fd, 0)
                regions.setdefault(p.pid, []).append((a, n))
                continue
            a, n = rng.choice(regions[p.pid])
            lo = rng.randrange(n)
            hi = rng.randrange(lo + 1, n + 1)
            s, length = a + lo * P, (hi - lo) * P
            if op in (1, 2):
                p.touch(s, length, write=rng.random() < 0.5)
            elif op == 3:
                p.store(s, rng.randrange(1, 255))
            elif op in (4, 5):
                p.madvise(s, length, pl.MADV_PAGEOUT)
            elif op == 6:
                p.madvise(s, length, pl.MADV_COLD)
            elif op == 7:
                p.madvise(s, length, rng.choice([pl.MADV_FREE, pl.MADV_DONTNEED]))
            elif op == 8 and len(procs) < 4:
                c = p.fork()
                procs.append(c)
                regions[c.pid] = list(regions[p.pid])
            elif op == 9:
                if rng.random() < 0.5:
                    p.mlock(s, length)
                else:
                    p.munlock(s, length)
            elif op == 10:
                p.munmap(s, length)
                if lo == 0 and hi == n:
                    regions[p.pid].remove((a, n))
            elif op == 11 and p is not procs[0]:
                p.exit()
                if p.ppid == procs[0].pid:
                    procs[0].wait(p.pid)
        except (OSError, SegmentationFault, BusError):
            pass  # a range unmapped earlier, EINVAL on locked memory, ...: the machine must stay consistent
        check_machine(m)
    for q in procs:
        if q.task.alive:
            q.exit()
    check_machine(m)


@pytest.mark.parametrize("seed", range(int(os.environ.get("PAGELAB_PAGEOUT_SEEDS", "4"))))
def test_random_cold_and_pageout_keep_the_machine_consistent(seed):
    """PAGELAB_PAGEOUT_SEEDS=100 for a long run (100 seeds were clean when this was written)."""
    _random_run(seed)
