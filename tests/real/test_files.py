"""The real backend's file API (issue #8) on this host's kernel: m.fs, the file calls run in the child, fault
counts from the child's rusage against docs/facts/files_page_cache.md, errno, cachestat, and cleanup."""

from __future__ import annotations

import errno
import gc
import os

import pytest

import pagelab as pl
from pagelab.real import Machine as RealMachine
from pagelab.real.sysfs_io import HostWriteRefused

pytestmark = pytest.mark.real

MiB = 1 << 20
PAGE = 4096
PROT_READ, PROT_WRITE = 1, 2
MAP_SHARED, MAP_PRIVATE = 1, 2
MS_SYNC = 4
MADV_RANDOM = 1


@pytest.fixture(scope="module")
def real():
    with RealMachine() as m:
        yield m


@pytest.fixture(scope="module")
def p(real):
    return real.spawn("files")


def faults(p, ops):
    """(minor, major) faults of one measured phase of ``ops`` [(name, args) or (name, args, kwargs), ...]."""
    before, after = p.run_phase([op if len(op) == 3 else (*op, {}) for op in ops])
    return after.ru_minflt - before.ru_minflt, after.ru_majflt - before.ru_majflt


def touch(addr, length, write=False):
    return ("touch", (addr, length), {"write": write})


def test_create_makes_a_cold_file_and_reads_warm_it_without_buffer_faults(real, p):
    path = real.fs.create("/facts/warm16", 16 * MiB)
    assert path == "/facts/warm16" and real.fs.size(path) == 16 * MiB and real.fs.exists(path)
    assert os.path.isfile(os.path.join(real.fs.root, "facts/warm16"))
    fd = p.open(path)
    assert p.cachestat(fd, 0, 0)["nr_cache"] == 0  # made cold by fsync + POSIX_FADV_DONTNEED
    # 16 reads of 1 MiB into the child's own resident buffer: the file's pages go to the cache, and no
    # fault of the buffer is counted.
    assert faults(p, [("read", (fd, MiB))] * 16) == (0, 0)
    assert p.cachestat(fd, 0, 0)["nr_cache"] == 4096
    assert p.read(fd, MiB) == 0  # at EOF
    # One bare read() of the whole file (8 iovecs of the 2 MiB buffer): no fault either.
    before = p.rusage()
    assert p.pread(fd, 32 * MiB, 0) == 16 * MiB
    after = p.rusage()
    assert (after.ru_minflt - before.ru_minflt, after.ru_majflt - before.ru_majflt) == (0, 0)
    assert p.pread(fd, 2 * MiB, 15 * MiB) == MiB
    # Fact sheet item b (EOF quirk): 235 faults for one read per page of a MAP_SHARED PROT_READ mapping.
    a = p.mmap(None, 16 * MiB, PROT_READ, MAP_SHARED, fd, 0)
    assert faults(p, [touch(a, 16 * MiB)]) == (235, 0)
    p.munmap(a, 16 * MiB)
    # Item e: MAP_PRIVATE, one write per page of the warm file: one COW fault per page.
    a = p.mmap(None, 16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
    assert faults(p, [touch(a, 16 * MiB, write=True)]) == (4096, 0)
    p.munmap(a, 16 * MiB)
    p.close(fd)


def test_shared_writes_msync_and_write_notify(real, p):
    """Item e (MAP_SHARED, 16 MiB warm file): read first 235, then a write per page 4096, msync(MS_SYNC)
    cleans every page (cachestat nr_dirty 0), and the next write pass takes 4096 faults again."""
    path = real.fs.create("/facts/shared16", 16 * MiB)
    fd = p.open(path, os.O_RDWR)
    assert faults(p, [("read", (fd, MiB))] * 16) == (0, 0)
    a = p.mmap(None, 16 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
    assert faults(p, [touch(a, 16 * MiB)]) == (235, 0)
    assert faults(p, [touch(a, 16 * MiB, write=True)]) == (4096, 0)
    assert p.cachestat(fd, 0, 0)["nr_dirty"] == 4096
    assert faults(p, [("msync", (a, 16 * MiB, MS_SYNC))]) == (0, 0)
    stat = p.cachestat(fd, 0, 0)
    assert stat["nr_dirty"] == 0 and stat["nr_writeback"] == 0 and stat["nr_cache"] == 4096
    assert faults(p, [touch(a, 16 * MiB, write=True)]) == (4096, 0)
    p.msync(a, 16 * MiB, MS_SYNC)
    p.munmap(a, 16 * MiB)
    p.close(fd)


def test_cold_file_with_madv_random_takes_one_major_fault_per_page(real, p):
    """Item d: cold file, MADV_RANDOM, one read per page: 0 minor, one major per page (4 MiB: 1024)."""
    path = real.fs.create("/facts/cold4", 4 * MiB)
    fd = p.open(path)
    a = p.mmap(None, 4 * MiB, PROT_READ, MAP_SHARED, fd, 0)
    p.madvise(a, 4 * MiB, MADV_RANDOM)
    assert p.mincore(a, 4 * MiB).sum() == 0
    assert faults(p, [touch(a, 4 * MiB)]) == (0, 1024)
    p.munmap(a, 4 * MiB)
    real.fs.evict(path)
    assert p.cachestat(fd, 0, 0)["nr_cache"] == 0
    p.close(fd)


def test_content_write_pwrite_ftruncate_and_lseek(real, p):
    path = real.fs.create("/c/pattern", 3 * PAGE + 5, content=b"abc", written_in=1000, cached=True)
    assert real.fs.size(path) == 3 * PAGE + 5
    with open(real.fs.host_path(path), "rb") as f:
        assert f.read() == (b"abc" * (3 * PAGE + 5))[:3 * PAGE + 5]
    fd = p.open(path, os.O_RDWR)
    assert p.cachestat(fd, 0, 0)["nr_cache"] == 4  # cached=True keeps the written pages
    a = p.mmap(None, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0)
    assert [p.load(a + i) for i in range(4)] == list(b"abca")
    assert p.lseek(fd, 0, os.SEEK_END) == 3 * PAGE + 5
    assert p.write(fd, b"XY") == 2
    assert p.pwrite(fd, b"Q", 1) == 1
    assert p.load(a + 1) == ord("Q") and p.load(a + 3 * PAGE + 5) == ord("X")
    assert p.cachestat(fd, 0, 0)["nr_dirty"] >= 1
    p.fdatasync(fd)
    p.fsync(fd)
    assert p.cachestat(fd, 0, 0)["nr_dirty"] == 0
    p.ftruncate(fd, PAGE)
    assert real.fs.size(path) == PAGE
    assert p.pread(fd, 10 * PAGE, 0) == PAGE
    p.fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # the mapped page stays: DONTNEED skips mapped folios
    assert p.cachestat(fd, 0, 0)["nr_cache"] == 1
    p.munmap(a, 4 * PAGE)
    p.fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    assert p.cachestat(fd, 0, 0) == {"nr_cache": 0, "nr_dirty": 0, "nr_writeback": 0, "nr_evicted": 0,
                                     "nr_recently_evicted": 0}
    p.close(fd)


def test_sparse_file_is_one_hole(real, p):
    path = real.fs.create("/sparse", 8 * MiB, sparse=True)
    assert real.fs.size(path) == 8 * MiB
    assert os.stat(real.fs.host_path(path)).st_blocks == 0
    fd = p.open(path)
    assert p.read(fd, 8 * MiB) == 8 * MiB
    p.close(fd)


def test_file_calls_run_inside_a_phase(real, p):
    real.fs.create("/phase/f", 4 * MiB)
    fd = p.open("/phase/f")
    p.close(fd)
    # open numbers the descriptor lowest-free from 3, so a later phase can name it.
    minor, major = faults(p, [("open", ("/phase/f",)), ("read", (fd, 4 * MiB)), ("lseek", (fd, 0, 0)),
                              ("pread", (fd, PAGE, 0)), ("fadvise", (fd, 0, 0, os.POSIX_FADV_DONTNEED)),
                              ("close", (fd,))])
    assert (minor, major) == (0, 0)
    with pytest.raises(OSError) as exc:
        p.read(fd, 1)
    assert exc.value.errno == errno.EBADF


def test_o_direct_reads_into_the_aligned_buffer(real, p):
    real.fs.create("/direct", MiB)
    fd = p.open("/direct", os.O_RDONLY | os.O_DIRECT)
    assert p.read(fd, MiB) == MiB
    assert p.cachestat(fd, 0, 0)["nr_cache"] == 0  # direct I/O bypasses the page cache
    p.close(fd)


def _errno(fn, *args):
    with pytest.raises(OSError) as exc:
        fn(*args)
    return exc.value.errno


def test_errno_of_bad_file_calls(real, p):
    real.fs.create("/e/ro", 4 * PAGE)
    fd = p.open("/e/ro")
    assert _errno(p.mmap, None, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == errno.EACCES
    a = p.mmap(None, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)  # private: allowed
    p.munmap(a, 4 * PAGE)
    assert _errno(p.mmap, None, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 1) == errno.EINVAL  # unaligned offset
    assert _errno(p.write, fd, b"x") == errno.EBADF  # not open for writing
    assert _errno(p.read, fd, 1 << 63) == errno.EINVAL  # (ssize_t)count < 0
    assert _errno(p.pread, fd, 1, -1) == errno.EINVAL
    assert _errno(p.pread, 99, 1, -1) == errno.EINVAL  # the offset is checked before the descriptor
    assert _errno(p.lseek, fd, -1, os.SEEK_SET) == errno.EINVAL
    assert _errno(p.ftruncate, fd, PAGE) == errno.EINVAL  # ftruncate of a read-only descriptor
    assert _errno(p.cachestat, 99, 0, 0) == errno.EBADF
    p.close(fd)
    for call, args in [(p.read, (fd, 1)), (p.close, (fd,)), (p.fsync, (fd,)), (p.pwrite, (fd, b"x", 0)),
                       (p.fadvise, (fd, 0, 0, 0)), (p.lseek, (fd, 0, 0))]:
        assert _errno(call, *args) == errno.EBADF
    # The child's own descriptors (stdio, its pipes, perf) are not the caller's files.
    for own in range(0, 12):
        assert _errno(p.read, own, 1) == errno.EBADF
        assert _errno(p.mmap, None, PAGE, PROT_READ, MAP_SHARED, own, 0) == errno.EBADF
    assert _errno(p.open, "/e/missing") == errno.ENOENT
    assert _errno(p.open, "/e/ro", os.O_CREAT | os.O_EXCL | os.O_WRONLY) == errno.EEXIST
    assert _errno(p.open, "/e/ro/") == errno.ENOTDIR
    assert _errno(p.open, "") == errno.ENOENT
    assert _errno(real.fs.create, "/e/ro", PAGE) == errno.EEXIST
    assert _errno(real.fs.size, "/e/missing") == errno.ENOENT
    assert _errno(real.fs.evict, "/e/missing") == errno.ENOENT
    assert _errno(real.fs.unlink, "/e/missing") == errno.ENOENT
    with pytest.raises(ValueError):
        real.fs.create("/e/neg", -1)
    with pytest.raises(TypeError):
        p.write(3, "text")
    with pytest.raises(TypeError):
        p.read(3.0, 1)
    assert p.alive


def test_paths_stay_under_the_private_root_chroot_style(real, p):
    real.fs.create("/top", PAGE)
    root = real.fs.root
    assert real.fs.host_path("/top") == os.path.join(root, "top")
    # '..' at the root stays at the root; a relative path is EINVAL (as on the simulator).
    for name in ("/../../top", "/./top", "//top"):
        assert real.fs.host_path(name) == os.path.join(root, "top")
        fd = p.open(name)
        p.close(fd)
    # open() leaves the walk to the kernel (openat2 RESOLVE_IN_ROOT): a missing or non-directory component fails
    assert _errno(p.open, "/x/../top") == errno.ENOENT
    assert _errno(p.open, "/top/../top") == errno.ENOTDIR
    assert _errno(p.open, "/../../etc/hostname") == errno.ENOENT
    assert _errno(p.open, "top") == errno.EINVAL
    assert _errno(real.fs.create, "rel", PAGE) == errno.EINVAL
    assert real.fs.create("/sub/../made", PAGE) == "/made"
    assert _errno(real.fs.create, "/top/below", PAGE) == errno.ENOTDIR
    real.fs.create("/sub/x", PAGE)
    assert _errno(real.fs.create, "/sub", PAGE) == errno.EISDIR
    assert not real.fs.exists("/etc/hostname")


def test_import_host_uses_the_host_path_and_unlink_only_forgets_it(real, p):
    host = "/etc/hostname"
    assert real.fs.import_host(host) == host
    assert real.fs.exists(host) and real.fs.size(host) == os.stat(host).st_size
    fd = p.open(host)
    assert p.read(fd, MiB) == os.stat(host).st_size
    p.close(fd)
    real.fs.unlink(host)
    assert os.path.exists(host)  # never removed from the host
    assert not real.fs.exists(host)
    assert _errno(real.fs.import_host, "/var/tmp") == errno.EINVAL
    assert _errno(real.fs.import_host, "/nonexistent/pagelab") == errno.ENOENT
    real.fs.create("/gone", PAGE)
    real.fs.unlink("/gone")
    assert not real.fs.exists("/gone") and not os.path.exists(os.path.join(real.fs.root, "gone"))


def test_the_private_root_is_removed_at_close_after_an_exception_and_when_forgotten():
    with RealMachine() as m:
        m.fs.create("/a/b/c", PAGE)
        root = m.fs.root
        assert os.path.isdir(root) and root.startswith("/var/tmp/pagelab-fs-")
    assert not os.path.exists(root)
    with pytest.raises(RuntimeError):
        with RealMachine() as m:
            m.fs.create("/x", PAGE)
            root = m.fs.root
            raise RuntimeError("boom")
    assert not os.path.exists(root)
    m = RealMachine()
    m.fs.create("/y", PAGE)
    root = m.fs.root
    del m
    gc.collect()
    assert not os.path.exists(root)
    # After close, the Machine's paths are gone: a clear ENOENT, nothing made again.
    m = RealMachine()
    m.fs.create("/z", PAGE)
    m.close()
    assert _errno(m.fs.create, "/z2", PAGE) == errno.ENOENT


def test_drop_caches_is_refused_without_the_flag(real):
    with pytest.raises(HostWriteRefused):
        real.drop_caches()
    with pytest.raises(HostWriteRefused):
        real.drop_caches(1)


def test_access_beyond_eof_is_sigbus(real):
    real.fs.create("/bus", PAGE)
    q = real.spawn("sigbus")
    fd = q.open("/bus")
    a = q.mmap(None, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0)
    assert q.load(a) == 0
    with pytest.raises(pl.BusError) as exc:
        q.load(a + PAGE)
    assert exc.value.si_code == "BUS_ADRERR" and exc.value.addr == a + PAGE
    assert not q.alive
