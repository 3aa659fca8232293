"""The foundation's fault counts, each one measured on the real kernel here (Linux 6.18, THP madvise).

The same scenarios run on the host kernel in tests/real/test_real_kernel.py; the numbers below are
the ones that run gives (and linux-mm-facts.md records).
"""

from __future__ import annotations

import pytest
from tests.conftest import ANON, RW, SHARED_ANON

import pagelab as pl
from pagelab.mm.page_alloc import nr_free_frames
from pagelab.observe.parse import parse_smaps, parse_status


def rss_kb(m: pl.Machine, p: pl.Process) -> int:
    return parse_smaps(m.read(f"/proc/{p.pid}/smaps_rollup"))[0]["Rss"]


def faults(p: pl.Process) -> tuple[int, int]:
    r = p.rusage()
    return r.ru_minflt, r.ru_majflt


def test_write_one_byte_per_page_64mib(machine):
    p = machine.spawn("w")
    a = p.mmap(None, 64 * pl.MiB, RW, ANON)
    p.touch(a, 64 * pl.MiB, write=True)
    assert faults(p) == (16384, 0)
    assert rss_kb(machine, p) == 65536
    assert parse_status(machine.read(f"/proc/{p.pid}/status"))["RssAnon"] == 65536


def test_read_then_write_takes_two_faults_per_page(machine):
    p = machine.spawn("rw")
    a = p.mmap(None, 64 * pl.MiB, RW, ANON)
    p.touch(a, 64 * pl.MiB)
    assert faults(p) == (16384, 0)
    assert rss_kb(machine, p) == 0  # the zero page is not charged
    p.touch(a, 64 * pl.MiB, write=True)
    assert faults(p) == (32768, 0)
    assert rss_kb(machine, p) == 65536


def test_write_to_untouched_prot_read_page_is_segv_accerr(machine):
    p = machine.spawn("ro")
    a = p.mmap(None, 4096, pl.PROT_READ, ANON)
    with pytest.raises(pl.SegmentationFault) as exc:
        p.store(a, 1)
    assert exc.value.si_code == "SEGV_ACCERR" and exc.value.addr == a
    assert faults(p) == (0, 0)  # not counted in rusage ...
    assert p.task.perf[pl.PerfEvent.PAGE_FAULTS] == 1  # ... but perf's page-faults saw the trap
    assert not p.alive
    with pytest.raises(pl.ProcessDead):
        p.load(a)


def test_read_of_munmapped_address_is_segv_maperr(machine):
    p = machine.spawn("unmapped")
    a = p.mmap(None, 8192, RW, ANON)
    p.store(a + 4096, 7)
    p.munmap(a, 8192)
    with pytest.raises(pl.SegmentationFault) as exc:
        p.load(a + 4096 + 12)
    assert exc.value.si_code == "SEGV_MAPERR" and exc.value.addr == a + 4096 + 12
    assert faults(p) == (1, 0)


def test_madv_dontneed_drops_pages_and_they_fault_again(machine):
    p = machine.spawn("dontneed")
    a = p.mmap(None, 16 * pl.MiB, RW, ANON)
    p.touch(a, 16 * pl.MiB, write=True)
    p.madvise(a, 16 * pl.MiB, pl.MADV_DONTNEED)
    assert rss_kb(machine, p) == 0
    before = faults(p)[0]
    p.touch(a, 16 * pl.MiB, write=True)
    assert faults(p)[0] - before == 4096


def test_shared_anonymous_read_allocates_and_write_then_is_free(machine):
    p = machine.spawn("shm")
    a = p.mmap(None, 256 * 4096, RW, SHARED_ANON)
    p.touch(a, 256 * 4096)
    assert faults(p) == (256, 0)  # no zero page; fault-around finds nothing cached
    p.touch(a, 256 * 4096, write=True)
    assert faults(p) == (256, 0)  # tmpfs has no write-notify: the PTEs are already writable
    smaps = parse_smaps(machine.read(f"/proc/{p.pid}/smaps_rollup"))[0]
    assert smaps["Pss_Shmem"] == 1024 and smaps["Anonymous"] == 0


def test_shared_anonymous_refault_after_dontneed_uses_fault_around(machine):
    p = machine.spawn("shm")
    a = p.mmap(None, 256 * 4096, RW, SHARED_ANON)
    p.touch(a, 256 * 4096, write=True)
    p.madvise(a, 256 * 4096, pl.MADV_DONTNEED)
    before = faults(p)[0]
    p.touch(a, 256 * 4096)
    # The pages stay in the shmem page cache; each read fault maps a 16-page, VA-aligned window.
    aligned = (a >> 12) % 16 == 0
    assert faults(p)[0] - before == (16 if aligned else 17)


def test_populate_faults_count_in_rusage_not_perf(machine):
    p = machine.spawn("populate")
    a = p.mmap(None, 256 * 4096, RW, ANON)
    p.madvise(a, 256 * 4096, pl.MADV_POPULATE_WRITE)
    assert faults(p) == (256, 0)
    assert p.task.perf[pl.PerfEvent.PAGE_FAULTS] == 0
    p.touch(a, 256 * 4096, write=True)
    assert faults(p) == (256, 0)


def test_populate_read_maps_zero_page_so_writes_still_fault(machine):
    p = machine.spawn("populate")
    a = p.mmap(None, 256 * 4096, RW, ANON)
    p.madvise(a, 256 * 4096, pl.MADV_POPULATE_READ)
    p.touch(a, 256 * 4096, write=True)
    assert faults(p) == (512, 0)


def test_mprotect_ro_then_rw_keeps_exclusive_pages_writable(machine):
    p = machine.spawn("mprotect")
    a = p.mmap(None, 256 * 4096, RW, ANON)
    p.touch(a, 256 * 4096, write=True)
    p.mprotect(a, 256 * 4096, pl.PROT_READ)
    p.mprotect(a, 256 * 4096, RW)
    p.touch(a, 256 * 4096, write=True)
    assert faults(p) == (256, 0)


def test_madv_free_pages_keep_data_and_take_no_fault(machine):
    p = machine.spawn("free")
    a = p.mmap(None, 256 * 4096, RW, ANON)
    p.touch(a, 256 * 4096, write=True)
    p.store(a + 100, 42)
    p.madvise(a, 256 * 4096, pl.MADV_FREE)
    # The per-CPU lazyfree batch applies 31 folios at a time: 8 of 256 are still queued (as on the host).
    assert machine.vmstat()["pglazyfree"] == 248
    assert parse_smaps(machine.read(f"/proc/{p.pid}/smaps_rollup"))[0]["LazyFree"] == 992
    p.touch(a, 256 * 4096, write=True)
    assert faults(p) == (256, 0)
    assert p.load(a + 100) == 42


@pytest.mark.parametrize("then", ["munmap", "dontneed"])
def test_munmap_and_dontneed_leave_the_lazyfree_batch_alone(machine, then):
    """Measured on 6.18 (child pinned to one CPU, 3 of 3): 40 pages MADV_FREE'd show LazyFree 124 kB (31
    applied, 9 queued) and still 124 kB after a munmap or MADV_DONTNEED of another page: neither calls
    lru_add_drain() any more (pagelab drained there, 160 kB). MADV_FREE itself still drains first."""
    p = machine.spawn("free")
    a = p.mmap(None, 256 * 4096, RW, ANON)
    p.touch(a, 256 * 4096, write=True)
    p.madvise(a, 40 * 4096, pl.MADV_FREE)
    if then == "munmap":
        p.munmap(a + 200 * 4096, 4096)
    else:
        p.madvise(a + 200 * 4096, 4096, pl.MADV_DONTNEED)
    assert parse_smaps(machine.read(f"/proc/{p.pid}/smaps_rollup"))[0]["LazyFree"] == 124
    p.madvise(a + 100 * 4096, 4096, pl.MADV_FREE)
    assert parse_smaps(machine.read(f"/proc/{p.pid}/smaps_rollup"))[0]["LazyFree"] == 160


def test_madv_willneed_applies_the_lazyfree_batch(machine):
    """madvise_willneed() ends with lru_add_drain() for anon and shmem; measured on 6.18 (pinned, 3 of 3):
    LazyFree 124 -> 160 kB after MADV_WILLNEED of other pages (pagelab did nothing: 124)."""
    p = machine.spawn("free")
    a = p.mmap(None, 256 * 4096, RW, ANON)
    p.touch(a, 256 * 4096, write=True)
    p.madvise(a, 40 * 4096, pl.MADV_FREE)
    p.madvise(a + 100 * 4096, 10 * 4096, pl.MADV_WILLNEED)
    assert parse_smaps(machine.read(f"/proc/{p.pid}/smaps_rollup"))[0]["LazyFree"] == 160


@pytest.mark.parametrize("advice", [pl.MADV_NOHUGEPAGE, pl.MADV_HUGEPAGE])
def test_madv_populate_write_dirties_lazily_freed_pages(machine, advice):
    """faultin_page_range() passes FOLL_TOUCH: with FOLL_WRITE, a present clean page found is dirtied
    (folio_mark_dirty(); touch_pmd() for a THP). Measured on 6.18, 8 MiB MADV_FREE'd then 2 MiB
    MADV_POPULATE_WRITE: Private_Dirty 2048 kB, LazyFree 6144 kB (4 KiB pages: 31-page batches leave 2
    queued, 8 kB less). pagelab left them all lazily free."""
    p = machine.spawn("free")
    reserve = p.mmap(None, 10 << 20, RW, ANON)
    a = (reserve + (2 << 20) - 1) & ~((2 << 20) - 1)
    p.madvise(a, 8 << 20, advice)
    p.touch(a, 8 << 20, write=True)
    p.madvise(a, 8 << 20, pl.MADV_FREE)
    p.madvise(a, 2 << 20, pl.MADV_POPULATE_WRITE)
    rollup = parse_smaps(machine.read(f"/proc/{p.pid}/smaps_rollup"))[0]
    queued = 8 if advice == pl.MADV_NOHUGEPAGE else 0
    assert (rollup["Private_Dirty"], rollup["LazyFree"]) == (2048, 6144 - queued)


def test_exit_leaves_the_lazyfree_batch_alone(machine):
    """Measured on 6.18 (pinned, 6 of 6): 40 pages MADV_FREE'd count pglazyfree 31, and still 31 after the
    process exits (exit_mmap() no longer drains); the queued folios stay allocated until a drain."""
    from pagelab.mm.debug import check_machine

    p = machine.spawn("free")
    a = p.mmap(None, 256 * 4096, RW, ANON)
    p.touch(a, 256 * 4096, write=True)
    p.madvise(a, 40 * 4096, pl.MADV_FREE)
    p.exit()
    assert machine.vmstat()["pglazyfree"] == 31 and len(machine.cpu_fbatches.lru_lazyfree) == 9
    check_machine(machine)
    q = machine.spawn("next")
    b = q.mmap(None, 4096, RW, ANON)
    q.touch(b, 4096, write=True)
    q.madvise(b, 4096, pl.MADV_FREE)  # madvise_free_single_vma() drains first: the 9 are applied and freed
    assert machine.vmstat()["pglazyfree"] == 40 and len(machine.cpu_fbatches.lru_lazyfree) == 1
    check_machine(machine)


def test_store_and_load_round_trip_and_data_is_private(machine):
    p = machine.spawn("data")
    a = p.mmap(None, 3 * 4096, RW, ANON)
    assert p.load(a + 5000) == 0
    p.store(a + 5000, 200)
    assert p.load(a + 5000) == 200
    p.madvise(a, 3 * 4096, pl.MADV_DONTNEED)
    assert p.load(a + 5000) == 0  # private anonymous data is gone after MADV_DONTNEED


def test_exit_frees_every_frame_and_page_table(machine):
    free_at_boot = nr_free_frames(machine)
    p = machine.spawn("exit")
    a = p.mmap(None, 8 * pl.MiB, RW, ANON)
    s = p.mmap(None, 1 * pl.MiB, RW, SHARED_ANON)
    p.touch(a, 8 * pl.MiB, write=True)
    p.touch(s, 1 * pl.MiB)
    p.exit()
    assert nr_free_frames(machine) == free_at_boot
    assert machine.ptpool.nr_tables == 0
    vm = machine.vmstat()
    assert vm["nr_anon_pages"] == vm["nr_shmem"] == vm["nr_page_table_pages"] == 0
    # nr_free_pages counts the buddy lists; the last pages freed wait on the per-CPU list (as in Linux)
    assert vm["nr_free_pages"] + machine.zone.pcp.count == free_at_boot
    assert 0 < machine.zone.pcp.count < machine.zone.pcp.high
    assert p.rusage().ru_maxrss == 9 * 1024


def test_noncanonical_address_is_sigsegv_si_kernel(machine):
    p = machine.spawn("gp")
    with pytest.raises(pl.SegmentationFault) as exc:
        p.load(1 << 50)
    assert exc.value.si_code == "SI_KERNEL" and exc.value.addr == 0


def test_kernel_address_is_segv_maperr(machine):
    p = machine.spawn("kaddr")
    with pytest.raises(pl.SegmentationFault) as exc:
        p.load(0xFFFF_FFFF_8100_0000)
    assert exc.value.si_code == "SEGV_MAPERR"


def test_write_accesses_store_zero_on_both_backends_contract(machine):
    p = machine.spawn("zero")
    a = p.mmap(None, 2 * 4096, RW, ANON)
    p.store(a, 9)
    p.store(a + 1, 8)
    p.touch(a, 2 * 4096, write=True)  # writes byte 0 at a and a + 4096
    assert (p.load(a), p.load(a + 1)) == (0, 8)
    p.access([a + 1], write=True)
    assert p.load(a + 1) == 0
