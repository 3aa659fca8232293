"""open/close and mmap of descriptors (fs/open.py, fs/file.py): the errno table of
docs/facts/files_page_cache.md item n. Simulator only."""

from __future__ import annotations

import errno
import os

from tests.unit.fs.conftest import errno_of

import pagelab as pl


def test_first_descriptor_is_3_and_closed_ones_are_ebadf(proc: tuple[pl.Machine, pl.Process]) -> None:
    _m, p = proc
    fd = p.open("/d/f")
    assert fd == 3
    p.close(fd)
    assert errno_of(lambda: p.close(fd)) == errno.EBADF
    assert errno_of(lambda: p.read(fd, 1)) == errno.EBADF
    assert errno_of(lambda: p.read(0, 1)) == errno.EBADF  # the simulated task has no stdin
    assert errno_of(lambda: p.mmap(None, 4096, pl.PROT_READ, pl.MAP_SHARED, fd, 0)) == errno.EBADF
    assert errno_of(lambda: p.fsync(fd)) == errno.EBADF
    assert errno_of(lambda: p.fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)) == errno.EBADF
    assert p.open("/d/f") == 3  # the lowest free descriptor again


def test_open_errors(proc: tuple[pl.Machine, pl.Process]) -> None:
    _m, p = proc
    assert errno_of(lambda: p.open("/d/missing")) == errno.ENOENT
    assert errno_of(lambda: p.open("/d/f", os.O_CREAT | os.O_EXCL | os.O_RDWR)) == errno.EEXIST
    assert errno_of(lambda: p.open("/d", os.O_RDWR)) == errno.EISDIR
    assert errno_of(lambda: p.open("/d/f", os.O_DIRECTORY)) == errno.ENOTDIR


def test_o_creat_needs_the_parent_directory(proc: tuple[pl.Machine, pl.Process]) -> None:
    """Item n: O_CREAT in a missing directory is ENOENT (only m.fs.create implies parent directories)."""
    m, p = proc
    assert errno_of(lambda: p.open("/nodir/x", os.O_CREAT | os.O_RDWR)) == errno.ENOENT
    assert not m.fs.exists("/nodir/x")


def test_directory_descriptors(proc: tuple[pl.Machine, pl.Process]) -> None:
    """Item n: a directory opens read-only (EISDIR only with write access); read() on it is EISDIR, mmap
    ENODEV, posix_fadvise and cachestat succeed (cachestat all zeros)."""
    _m, p = proc
    d = p.open("/d", os.O_RDONLY | os.O_DIRECTORY)
    assert errno_of(lambda: p.read(d, 1)) == errno.EISDIR
    assert errno_of(lambda: p.mmap(None, 4096, pl.PROT_READ, pl.MAP_SHARED, d, 0)) == errno.ENODEV
    p.fadvise(d, 0, 0, os.POSIX_FADV_WILLNEED)
    assert p.cachestat(d)["nr_cache"] == 0
    assert errno_of(lambda: p.open("/d", os.O_RDWR)) == errno.EISDIR


def test_o_creat_makes_an_empty_file(proc: tuple[pl.Machine, pl.Process]) -> None:
    m, p = proc
    fd = p.open("/d/new", os.O_CREAT | os.O_RDWR)
    assert m.fs.exists("/d/new") and m.fs.size("/d/new") == 0
    assert p.write(fd, b"abc") == 3
    assert m.fs.size("/d/new") == 3
    assert errno_of(lambda: m.fs.create("/d/new", 10)) == errno.EEXIST


def test_mmap_permission_errors(proc: tuple[pl.Machine, pl.Process]) -> None:
    _m, p = proc
    rd = p.open("/d/f")
    wr = p.open("/d/f", os.O_WRONLY)
    rw = pl.PROT_READ | pl.PROT_WRITE
    assert errno_of(lambda: p.mmap(None, 4096, rw, pl.MAP_SHARED, rd, 0)) == errno.EACCES
    p.mmap(None, 4096, pl.PROT_READ, pl.MAP_SHARED, rd, 0)
    p.mmap(None, 4096, rw, pl.MAP_PRIVATE, rd, 0)  # a private writable copy is allowed
    shared = p.mmap(None, 4096, pl.PROT_READ, pl.MAP_SHARED, rd, 0)
    assert errno_of(lambda: p.mprotect(shared, 4096, rw)) == errno.EACCES
    for prot, flags in ((pl.PROT_READ, pl.MAP_SHARED), (pl.PROT_WRITE, pl.MAP_SHARED),
                        (pl.PROT_READ, pl.MAP_PRIVATE)):
        assert errno_of(lambda prot=prot, flags=flags: p.mmap(None, 4096, prot, flags, wr, 0)) == errno.EACCES
    assert errno_of(lambda: p.mmap(None, 4096, pl.PROT_READ, pl.MAP_SHARED, rd, 100)) == errno.EINVAL
    assert errno_of(lambda: p.mmap(None, 0, pl.PROT_READ, pl.MAP_SHARED, rd, 0)) == errno.EINVAL
    p.mmap(None, 4096, pl.PROT_READ, pl.MAP_SHARED, rd, 1 << 30)  # no EOF check at mmap time


def test_unlinked_file_lives_while_mapped(proc: tuple[pl.Machine, pl.Process]) -> None:
    m, p = proc
    fd = p.open("/d/f")
    a = p.mmap(None, 4096, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    p.close(fd)
    m.fs.unlink("/d/f")
    assert not m.fs.exists("/d/f")
    assert p.load(a) == 0
    from pagelab.observe.procfs import read_path
    assert "/d/f (deleted)" in read_path(m, f"/proc/{p.pid}/maps")
