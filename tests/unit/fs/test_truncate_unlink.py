"""ftruncate of a mapped file inside a large folio, and unlink of an open or mapped file (fs/open.py,
mm/truncate.py, fs/file.py): no lost bytes, zeros past the cut, the cache freed with the last user.
Simulator only; check_machine() after each step."""

from __future__ import annotations

import os

import pytest

import pagelab as pl
from pagelab.mm.debug import check_machine

MiB = pl.MiB


def _setup() -> tuple[pl.Machine, pl.Process, int]:
    """An 8 MiB file of b"abcdefg" repeated, written in 1 MiB writes and cached (order-8 folios)."""
    m = pl.Machine(ram="256MiB", seed=0)
    m.fs.create("/f", 8 * MiB, content=b"abcdefg", cached=True)
    p = m.spawn("t")
    return m, p, p.open("/f", os.O_RDWR)


def test_ftruncate_inside_a_mapped_large_folio_keeps_the_pages_below_and_zeros_the_rest() -> None:
    m, p, fd = _setup()
    a = p.mmap(None, 8 * MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_SHARED, fd, 0)
    p.touch(a, 8 * MiB)
    p.store(a + 3 * MiB - 10, ord("Z"))  # dirty, below the cut, in the folio the cut goes through
    cut = 3 * MiB + 5
    p.ftruncate(fd, cut)
    check_machine(m)
    assert p.load(a + 3 * MiB) == b"abcdefg"[3 * MiB % 7]
    assert p.load(a + cut) == 0  # the rest of the EOF page reads as zeros (folio_zero_range())
    p.ftruncate(fd, 8 * MiB)  # grow again: everything past the old cut is a hole
    assert p.load(a + cut + 1) == 0
    assert p.load(a + 3 * MiB + 8192) == 0
    check_machine(m)
    p.fsync(fd)
    p.munmap(a, 8 * MiB)
    m.fs.evict("/f")
    assert p.cachestat(fd, 0, 0)["nr_cache"] == 0
    b = p.mmap(None, 8 * MiB, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    assert p.load(b + 3 * MiB - 10) == ord("Z")  # the dirty byte below the cut was written back
    assert p.load(b + cut) == 0
    check_machine(m)


def test_ftruncate_shrinks_then_access_past_eof_is_sigbus() -> None:
    m, p, fd = _setup()
    a = p.mmap(None, 8 * MiB, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    p.touch(a, 8 * MiB)
    p.ftruncate(fd, MiB + 100)
    check_machine(m)
    with pytest.raises(pl.BusError):
        p.load(a + 2 * MiB)


@pytest.mark.parametrize("last", ["close", "munmap", "exit"])
def test_unlinked_file_cache_goes_with_its_last_user(last: str) -> None:
    """iput_final(): an unlinked inode is evicted (its cache freed, dirty pages too) when the last
    descriptor or mapping goes."""
    m, p, fd = _setup()
    a = p.mmap(None, 8 * MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_SHARED, fd, 0)
    p.touch(a, 8 * MiB, write=True)
    m.fs.unlink("/f")
    assert not m.fs.exists("/f")
    assert p.load(a + 7) == ord("a")  # still mapped and readable
    assert p.pread(fd, 4096, 0) == 4096
    if last == "exit":
        p.exit()
    elif last == "close":
        p.munmap(a, 8 * MiB)
        assert m.vmstat()["nr_file_pages"] == 2048  # the descriptor still holds it
        p.close(fd)
    else:
        p.close(fd)
        assert m.vmstat()["nr_file_pages"] == 2048  # the mapping still holds it
        p.munmap(a, 8 * MiB)
    vm = m.vmstat()
    assert (vm["nr_file_pages"], vm["nr_dirty"]) == (0, 0)
    check_machine(m)
    m.fs.create("/f", 4096)  # the name is free again


def test_truncate_and_fsync_wait_for_writeback_in_flight() -> None:
    """POSIX_FADV_DONTNEED starts asynchronous writeback of dirty folios; fsync waits for it
    (filemap_fdatawait()), and so does a truncate (folio_wait_writeback()), which must not free a folio
    the disk still writes from (NR_WRITEBACK went wrong for good when it did)."""
    for then in ("fsync", "ftruncate", "unlink"):
        m, p, fd = _setup()
        a = p.mmap(None, 8 * MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_SHARED, fd, 0)
        p.touch(a, 8 * MiB, write=True)
        p.munmap(a, 8 * MiB)
        p.fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        assert m.vmstat()["nr_writeback"] > 0
        if then == "fsync":
            p.fsync(fd)
        elif then == "ftruncate":
            p.ftruncate(fd, 0)
        else:
            m.fs.unlink("/f")
            p.close(fd)
        check_machine(m)
        assert m.vmstat()["nr_writeback"] == 0
        m.run(seconds=1)
        check_machine(m)
        assert m.vmstat()["nr_writeback"] == 0


def test_ftruncate_inside_a_pmd_mapped_folio_splits_it_and_past_eof_is_sigbus() -> None:
    """The cut goes through an order-9 folio mapped by a PMD: the zap removes the PMD, the unmapped
    folio is split (split_cache_folio()) and its pages past the cut leave the cache, so a fault on the
    EOF page cannot map the old PMD-sized folio across EOF again: the next page is SIGBUS."""
    m = pl.Machine(ram="256MiB", seed=0)
    m.fs.create("/f", 8 * MiB, cached=True, written_in=8 * MiB)
    p = m.spawn("t")
    fd = p.open("/f", os.O_RDWR)
    a = p.mmap(None, 8 * MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_SHARED, fd, 0)
    p.touch(a, 8 * MiB, write=True)
    assert m.vmstat()["nr_file_hugepages"] == 4
    p.ftruncate(fd, 3 * MiB + 100)
    check_machine(m)
    assert p.cachestat(fd, 0, 0)["nr_cache"] == 3 * 256 + 1
    assert m.vmstat()["nr_file_hugepages"] == 1
    p.store(a + 3 * MiB + 200, 5)
    check_machine(m)
    with pytest.raises(pl.BusError):
        p.load(a + 3 * MiB + 4096)
