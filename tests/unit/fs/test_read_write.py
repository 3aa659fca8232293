"""read/pread/write/pwrite/lseek/ftruncate/fadvise/msync (fs/read_write.py and friends): results,
/proc/PID/io accounting, and the errno table of docs/facts/files_page_cache.md item n. Simulator only."""

from __future__ import annotations

import errno
import os

from tests.unit.fs.conftest import SIZE, errno_of

import pagelab as pl
from pagelab.observe.procfs import read_path


def io(m: pl.Machine, p: pl.Process) -> dict[str, int]:
    return {k: int(v) for k, v in (ln.split(": ") for ln in read_path(m, f"/proc/{p.pid}/io").splitlines())}


def test_read_position_eof_and_io_accounting(proc: tuple[pl.Machine, pl.Process]) -> None:
    m, p = proc
    fd = p.open("/d/f")
    assert p.read(fd, 5000) == 5000
    assert p.lseek(fd, 0, os.SEEK_CUR) == 5000
    assert p.read(fd, 5000) == SIZE - 5000
    assert p.read(fd, 5000) == 0
    assert p.pread(fd, 10, SIZE - 4) == 4
    assert p.pread(fd, 10, SIZE + 4096) == 0
    assert p.lseek(fd, 0, os.SEEK_END) == SIZE
    got = io(m, p)
    assert list(got) == ["rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes", "cancelled_write_bytes"]
    assert got["rchar"] == SIZE + 4
    assert got["syscr"] == 5
    assert got["read_bytes"] == 3 * 4096  # whole pages from the disk (readahead of the 3-page file)
    assert got["wchar"] == got["syscw"] == got["write_bytes"] == 0
    assert m.vmstat()["pgpgin"] == 12


def test_write_accounting_and_writeback(proc: tuple[pl.Machine, pl.Process]) -> None:
    m, p = proc
    fd = p.open("/d/f", os.O_RDWR)
    assert p.write(fd, b"x" * 100) == 100
    assert p.pwrite(fd, b"y" * 4096, SIZE) == 4096  # extends the file
    assert m.fs.size("/d/f") == SIZE + 4096
    before = io(m, p)
    assert before["wchar"] == 4196 and before["syscw"] == 2
    assert before["write_bytes"] == 0  # nothing written back yet
    assert p.cachestat(fd)["nr_dirty"] >= 2
    p.fsync(fd)
    after = io(m, p)
    assert after["write_bytes"] > 0 and after["write_bytes"] % 4096 == 0
    assert p.cachestat(fd)["nr_dirty"] == 0


def test_read_write_errno(proc: tuple[pl.Machine, pl.Process]) -> None:
    _m, p = proc
    rd = p.open("/d/f")
    wr = p.open("/d/f", os.O_WRONLY)
    assert errno_of(lambda: p.read(wr, 1)) == errno.EBADF
    assert errno_of(lambda: p.write(rd, b"x")) == errno.EBADF
    assert errno_of(lambda: p.pread(rd, 1, -1)) == errno.EINVAL
    assert errno_of(lambda: p.pwrite(wr, b"x", -1)) == errno.EINVAL
    assert errno_of(lambda: p.ftruncate(rd, 0)) == errno.EINVAL  # not EBADF
    rw = p.open("/d/f", os.O_RDWR)
    assert errno_of(lambda: p.ftruncate(rw, -1)) == errno.EINVAL
    assert errno_of(lambda: p.lseek(rd, 0, 99)) == errno.EINVAL
    assert errno_of(lambda: p.lseek(rd, -1, os.SEEK_SET)) == errno.EINVAL
    p.fsync(rd)  # fsync of a read-only descriptor is fine


def test_fadvise_errno(proc: tuple[pl.Machine, pl.Process]) -> None:
    _m, p = proc
    rd = p.open("/d/f")
    assert errno_of(lambda: p.fadvise(rd, 0, 0, 99)) == errno.EINVAL
    assert errno_of(lambda: p.fadvise(rd, 0, -1, os.POSIX_FADV_NORMAL)) == errno.EINVAL
    p.fadvise(rd, -1, 0, os.POSIX_FADV_NORMAL)  # only len < 0 is checked


def test_msync_errno(proc: tuple[pl.Machine, pl.Process]) -> None:
    _m, p = proc
    rd = p.open("/d/f")
    a = p.mmap(None, 3 * 4096, pl.PROT_READ, pl.MAP_SHARED, rd, 0)
    assert errno_of(lambda: p.msync(a + 100, 4096, 4)) == errno.EINVAL
    assert errno_of(lambda: p.msync(a, 4096, 4 | 1)) == errno.EINVAL
    assert errno_of(lambda: p.msync(a, 4096, 8)) == errno.EINVAL
    p.msync(a, 0, 4)
    p.msync(a, 3 * 4096, 2)  # MS_INVALIDATE of a file mapping
    p.munmap(a + 4096, 4096)
    assert errno_of(lambda: p.msync(a, 3 * 4096, 4)) == errno.ENOMEM  # a gap


def test_msync_of_unmapped_ranges_is_enomem(proc: tuple[pl.Machine, pl.Process]) -> None:
    """Item n: msync over an unmapped range, or (MS_SYNC or MS_ASYNC) over a gap, is ENOMEM (sys_msync()
    sets error = -ENOMEM at the top of each loop pass, so its early exits return it)."""
    _m, p = proc
    rd = p.open("/d/f")
    a = p.mmap(None, 3 * 4096, pl.PROT_READ, pl.MAP_SHARED, rd, 0)
    p.munmap(a + 4096, 4096)
    for flags in (1, 4):
        assert errno_of(lambda flags=flags: p.msync(a + 4096, 4096, flags)) == errno.ENOMEM
        assert errno_of(lambda flags=flags: p.msync(a, 3 * 4096, flags)) == errno.ENOMEM


def test_seek_data_and_hole_of_a_sparse_file() -> None:
    m = pl.Machine(disk="virtio")
    m.fs.create("/s", 1 << 20, sparse=True)
    p = m.spawn("t")
    fd = p.open("/s")
    assert errno_of(lambda: p.lseek(fd, 0, os.SEEK_DATA)) == errno.ENXIO
    assert p.lseek(fd, 0, os.SEEK_HOLE) == 0
    assert errno_of(lambda: p.lseek(fd, 1 << 20, os.SEEK_HOLE)) == errno.ENXIO


def test_ftruncate_grow_then_read_zeros_and_content_round_trip() -> None:
    m = pl.Machine(disk="virtio")
    m.fs.create("/c", 8192, content=b"ab")
    p = m.spawn("t")
    fd = p.open("/c", os.O_RDWR)
    a = p.mmap(None, 4 * 4096, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    assert [p.load(a + i) for i in range(4)] == [97, 98, 97, 98]
    p.pwrite(fd, b"\x05", 1)
    assert p.load(a + 1) == 5  # the mapping sees the page cache
    p.ftruncate(fd, 3 * 4096)
    assert m.fs.size("/c") == 3 * 4096
    assert p.load(a + 2 * 4096 + 7) == 0


def test_read_larger_than_memory_is_a_short_read_not_enomem() -> None:
    """filemap_read() returns the bytes already read when the page cache runs out of memory midway
    ("already_read ? already_read : error"); the file position moves by that much. (No reclaim is
    modelled, so the cache fills the machine.)"""
    from pagelab.mm.debug import check_machine

    m = pl.Machine(ram="128MiB", seed=0)
    m.fs.create("/big", 1 << 30)
    p = m.spawn("t")
    fd = p.open("/big")
    n = p.read(fd, 1 << 30)
    assert 0 < n < 1 << 30 and n % 4096 == 0
    assert p.lseek(fd, 0, os.SEEK_CUR) == n
    check_machine(m)
