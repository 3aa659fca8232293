"""Readahead (mm/readahead.py) through mmap faults, against docs/facts/files_page_cache.md item f:
read-around ramps, VM_HUGEPAGE windows, VM_RAND_READ, MAP_POPULATE, WILLNEED. Simulator only."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

import pagelab as pl
from pagelab.mm.filemap import folio_nr

MiB = 1 << 20
SIZE = 64 * MiB


def cold_mapping(advice: int | None = None, populate: bool = False) -> tuple[pl.Machine, pl.Process, int]:
    m = pl.Machine(settings={"/sys/block/vda/queue/read_ahead_kb": 8192}, disk="virtio")
    m.fs.create("/f", SIZE)
    p = m.spawn("t")
    fd = p.open("/f")
    flags = pl.MAP_SHARED | (pl.MAP_POPULATE if populate else 0)
    a = p.mmap(None, SIZE, pl.PROT_READ, flags, fd, 0)
    if advice is not None:
        p.madvise(a, SIZE, advice)
    return m, p, a


def orders(m: pl.Machine) -> dict[int, int]:
    mapping = m.fs.lookup("/f").i_mapping
    assert mapping is not None
    return dict(sorted(Counter(folio_nr(m, int(h)).bit_length() - 1 for h in mapping.i_pages.values()).items()))


MMAP_RAMP = {0: 2048, 2: 512, 4: 128, 6: 32, 8: 8, 9: 12}


@pytest.mark.parametrize("advice", [None, pl.MADV_SEQUENTIAL, pl.MADV_NOHUGEPAGE])
def test_mmap_ascending_read_ramp(advice: int | None) -> None:
    """2048 x order 0, 512 x 2, 128 x 4, 32 x 6, 8 x 8, 12 x 9 = 2740 folios; pgpgin = the whole file."""
    m, p, a = cold_mapping(advice)
    p.touch(a, SIZE)
    assert orders(m) == MMAP_RAMP
    assert m.vmstat()["pgpgin"] == SIZE >> 10


def test_map_populate_of_a_cold_file_has_the_ascending_layout() -> None:
    m, _p, _a = cold_mapping(populate=True)
    assert orders(m) == MMAP_RAMP


@pytest.mark.parametrize("order", ["asc", "rand"])
def test_madv_hugepage_windows_are_order9(order: str) -> None:
    m, p, a = cold_mapping(pl.MADV_HUGEPAGE)
    pages = list(range(SIZE >> 12))
    if order == "rand":
        pages = [int(x) for x in np.random.default_rng(1).permutation(len(pages))]
    p.access([a + (i << 12) for i in pages])
    assert orders(m) == {9: 32}


def test_madv_random_reads_one_order0_page_per_fault() -> None:
    m, p, a = cold_mapping(pl.MADV_RANDOM)
    p.touch(a, 2 * MiB)
    assert orders(m) == {0: 512}
    r = p.rusage()
    assert (r.ru_minflt, r.ru_majflt) == (0, 512)


def test_willneed_reads_at_most_ra_pages_order0() -> None:
    """Rule 14: fadvise WILLNEED reads at most ra_pages (2048) order-0 pages, and faults nothing."""
    m = pl.Machine(settings={"/sys/block/vda/queue/read_ahead_kb": 8192}, disk="virtio")
    m.fs.create("/f", 16 * MiB)
    p = m.spawn("t")
    fd = p.open("/f")
    p.fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    assert orders(m) == {0: 2048}
    r = p.rusage()
    assert (r.ru_minflt, r.ru_majflt) == (0, 0)


def test_read_ahead_kb_sets_the_first_window() -> None:
    """The sim's default read_ahead_kb is 128 (ra_pages 32): the first window of a 4 KiB read of a cold file
    is get_init_ra_size(1, 32) = 4 pages (roundup_pow_of_two(1) <= max/32, so x4)."""
    m = pl.Machine(disk="virtio")
    m.fs.create("/f", MiB)
    p = m.spawn("t")
    fd = p.open("/f")
    p.read(fd, 4096)
    assert p.cachestat(fd)["nr_cache"] == 4
