"""The page cache (mm/filemap.py) against docs/facts/files_page_cache.md: folio layouts, cachestat,
drop_caches, pgpgin and holes. Simulator only, with this host's read_ahead_kb (8192)."""

from __future__ import annotations

import errno
import os
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pagelab as pl
from pagelab.mm.filemap import folio_nr

MiB = 1 << 20
HOST_RA = {"/sys/block/vda/queue/read_ahead_kb": 8192}


def host_machine() -> pl.Machine:
    return pl.Machine(settings=HOST_RA, disk="virtio")


def layout(m: pl.Machine, path: str) -> list[tuple[int, int]]:
    """(first index, order) of every cached folio of ``path``, ascending."""
    mapping = m.fs.lookup(path).i_mapping
    assert mapping is not None
    return [(int(i), folio_nr(m, int(h)).bit_length() - 1) for i, h in mapping.i_pages.items()]


def orders(m: pl.Machine, path: str) -> dict[int, int]:
    return dict(sorted(Counter(o for _, o in layout(m, path)).items()))


def check_cache(m: pl.Machine, path: str) -> None:
    """Folios never overlap, each is aligned to its size, and nrpages is the sum of their sizes."""
    mapping = m.fs.lookup(path).i_mapping
    assert mapping is not None
    end = 0
    total = 0
    for index, order in layout(m, path):
        assert index >= end, f"folio at {index} overlaps the one ending at {end}"
        assert index % (1 << order) == 0
        end = index + (1 << order)
        total += 1 << order
    assert mapping.nrpages == total


def read_all(p: pl.Process, fd: int, chunk: int) -> int:
    total = 0
    while n := p.read(fd, chunk):
        total += n
    return total


def test_cold_64mib_read_in_1mib_chunks_gives_the_readahead_ramp() -> None:
    """Fact sheet f: 512 x order 0, 256 x order 2, 128 x order 4, 32 x order 6, 8 x order 8, 17 x order 9."""
    m = host_machine()
    m.fs.create("/f", 64 * MiB)
    p = m.spawn("t")
    fd = p.open("/f")
    assert read_all(p, fd, MiB) == 64 * MiB
    assert orders(m, "/f") == {0: 512, 2: 256, 4: 128, 6: 32, 8: 8, 9: 17}
    lay = layout(m, "/f")
    assert lay[512] == (512, 2) and lay[768] == (1536, 4) and lay[-17] == (30 * 256, 9)
    check_cache(m, "/f")


def test_16mib_read_ramp_is_cut_at_eof() -> None:
    """Fact sheet f: 16 MiB by 1 MiB reads: 512/256/128 then 8 x order 6 = 904 folios."""
    m = host_machine()
    m.fs.create("/f", 16 * MiB)
    p = m.spawn("t")
    fd = p.open("/f")
    read_all(p, fd, MiB)
    assert orders(m, "/f") == {0: 512, 2: 256, 4: 128, 6: 8}


@pytest.mark.parametrize(("size", "chunk"), [(16 * MiB, 4096), (64 * MiB, MiB)])
def test_fadv_random_reads_make_order0_folios_only(size: int, chunk: int) -> None:
    """Fact sheet f: FADV_RANDOM then read() in 4 KiB or 1 MiB chunks: order 0 only (16384 for 64 MiB)."""
    m = host_machine()
    m.fs.create("/f", size)
    p = m.spawn("t")
    fd = p.open("/f")
    p.fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    read_all(p, fd, chunk)
    assert orders(m, "/f") == {0: size // 4096}


def test_create_cached_keeps_folios_of_the_write_size() -> None:
    """Rule 11: write() makes folios by write size: 1 MiB writes -> order 8, 4 KiB writes -> order 0."""
    m = host_machine()
    m.fs.create("/big", 16 * MiB, cached=True)
    m.fs.create("/small", MiB, cached=True, written_in=4096)
    assert orders(m, "/big") == {8: 16}
    assert orders(m, "/small") == {0: 256}
    check_cache(m, "/big")


def test_create_uncached_is_cold_and_pgpgin_counts_kib_read() -> None:
    m = host_machine()
    m.fs.create("/f", 8 * MiB)
    assert layout(m, "/f") == []
    p = m.spawn("t")
    fd = p.open("/f")
    before = m.vmstat()
    assert p.cachestat(fd)["nr_cache"] == 0
    read_all(p, fd, MiB)
    after = m.vmstat()
    assert after["pgpgin"] - before["pgpgin"] == 8 * 1024
    assert after["pgmajfault"] == before["pgmajfault"]  # read() is not a fault (rule 13)
    assert after["nr_file_pages"] - before["nr_file_pages"] == 2048
    r = p.rusage()
    assert (r.ru_minflt, r.ru_majflt) == (0, 0)


def test_sparse_file_read_costs_no_io() -> None:
    """Rule 12: a hole is read as zeros and cached, but adds no pgpgin and no read_bytes."""
    m = host_machine()
    m.fs.create("/s", 4 * MiB, sparse=True)
    p = m.spawn("t")
    fd = p.open("/s")
    before = m.vmstat()["pgpgin"]
    assert read_all(p, fd, MiB) == 4 * MiB
    assert m.vmstat()["pgpgin"] == before
    assert p.task.ioac_read_bytes == 0
    assert p.task.ioac_rchar == 4 * MiB
    assert p.cachestat(fd)["nr_cache"] == 1024


def test_cachestat_fields_and_ranges() -> None:
    m = host_machine()
    m.fs.create("/f", 4 * MiB, cached=True)
    p = m.spawn("t")
    fd = p.open("/f", os.O_RDWR)
    assert p.cachestat(fd) == {"nr_cache": 1024, "nr_dirty": 0, "nr_writeback": 0, "nr_evicted": 0,
                               "nr_recently_evicted": 0}
    assert p.pwrite(fd, b"x" * 8192, 4096) == 8192
    assert p.cachestat(fd)["nr_dirty"] == 256  # the whole order-8 folio (1 MiB written at once) is dirty
    assert p.cachestat(fd, 2 * MiB, MiB)["nr_cache"] == 256
    assert p.cachestat(fd, 2 * MiB, MiB)["nr_dirty"] == 0
    assert p.cachestat(fd, 64 * MiB, 4096)["nr_cache"] == 0  # beyond EOF: ok, nothing cached
    p.fsync(fd)
    assert p.cachestat(fd)["nr_dirty"] == 0 and p.cachestat(fd)["nr_writeback"] == 0
    p.fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    stat = p.cachestat(fd)
    assert stat["nr_cache"] == 0
    assert stat["nr_evicted"] == 0 and stat["nr_recently_evicted"] == 0  # rule 15: no shadow entries


def test_cachestat_errors() -> None:
    from pagelab.kernel import syscalls

    m = host_machine()
    m.fs.create("/f", 8192)
    p = m.spawn("t")
    fd = p.open("/f")
    with pytest.raises(OSError) as e:
        syscalls.sys_cachestat(p.task, fd, 0, 0, 1)
    assert e.value.errno == errno.EINVAL
    p.close(fd)
    with pytest.raises(OSError) as e:
        p.cachestat(fd)
    assert e.value.errno == errno.EBADF


def test_dirty_pages_count_in_meminfo_and_vmstat_until_fsync() -> None:
    m = host_machine()
    m.fs.create("/f", 4 * MiB, cached=True, written_in=4096)
    p = m.spawn("t")
    fd = p.open("/f", os.O_RDWR)
    p.pwrite(fd, b"\1" * (16 * 4096), 0)
    assert m.vmstat()["nr_dirty"] == 16
    assert p.cachestat(fd)["nr_dirty"] == 16
    p.fdatasync(fd)
    assert m.vmstat()["nr_dirty"] == 0 and m.vmstat()["nr_writeback"] == 0


def test_drop_caches_evicts_only_unmapped_clean_folios() -> None:
    m = host_machine()
    m.fs.create("/f", 4 * MiB, cached=True, written_in=4096)
    p = m.spawn("t")
    fd = p.open("/f", os.O_RDWR)
    a = p.mmap(None, MiB, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    p.touch(a, MiB)  # pages 0-255 mapped
    p.pwrite(fd, b"\1" * 4096, 2 * MiB)  # page 512 dirty
    m.drop_caches(1)
    stat = p.cachestat(fd)
    assert stat["nr_cache"] == 256 + 1
    assert stat["nr_dirty"] == 1
    assert [i for i, _ in layout(m, "/f")] == [*range(256), 512]
    assert m.vmstat()["drop_pagecache"] == 1
    with pytest.raises(ValueError):
        m.drop_caches(5)


def test_fadv_dontneed_leaves_mapped_and_dirty_pages() -> None:
    """Rule 15: DONTNEED evicts clean unmapped folios; a dirty page is only sent to writeback."""
    m = host_machine()
    m.fs.create("/f", MiB, cached=True, written_in=4096)
    p = m.spawn("t")
    fd = p.open("/f", os.O_RDWR)
    a = p.mmap(None, 64 * 1024, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    p.load(a)  # fault-around maps pages 0-15
    p.pwrite(fd, b"\1", 100 * 4096)
    p.fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    cached = [i for i, _ in layout(m, "/f")]
    assert cached[:16] == list(range(16))
    assert set(cached[16:]) <= {100}
    assert p.cachestat(fd)["nr_dirty"] == 0  # its writeback was started


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3 * MiB), st.integers(1, 600 * 1024)),
                min_size=1, max_size=12),
       st.booleans())
def test_random_reads_never_leave_overlapping_folios(ops: list[tuple[bool, int, int]], random_advice: bool) -> None:
    """Any read()/pread() sequence: folios disjoint and aligned, nrpages = their sizes, nr_file_pages too."""
    m = pl.Machine(settings={"/sys/block/vda/queue/read_ahead_kb": 512}, disk="virtio")
    m.fs.create("/f", 3 * MiB + 12345)
    p = m.spawn("t")
    fd = p.open("/f")
    if random_advice:
        p.fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    for positional, offset, n in ops:
        if positional:
            got = p.pread(fd, n, offset)
            assert got == max(0, min(n, 3 * MiB + 12345 - offset))
        else:
            p.read(fd, n)
        check_cache(m, "/f")
    mapping = m.fs.lookup("/f").i_mapping
    assert mapping is not None
    assert m.vmstat()["nr_file_pages"] == mapping.nrpages
