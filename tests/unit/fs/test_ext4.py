"""m.fs (fs/ext4.py) and write()'s folio choice under odd input: a write over a partly cached range, tiny
write() sizes for m.fs.create(cached=True). Simulator only; check_machine() after each."""

from __future__ import annotations

import os

import pagelab as pl
from pagelab.mm.debug import check_machine


def test_write_over_a_partly_cached_range_uses_smaller_folios() -> None:
    """A 16 KiB write at 0 over a cached order-0 folio at index 1: __filemap_get_folio() falls back to
    order 0 where the order-2 folio would overlap, so every byte lands in the cache (none is lost)."""
    m = pl.Machine(ram="256MiB", seed=0)
    p = m.spawn("t")
    fd = p.open("/f", os.O_RDWR | os.O_CREAT)
    assert p.pwrite(fd, b"B" * 4096, 4096) == 4096
    assert p.pwrite(fd, b"A" * 16384, 0) == 16384
    assert p.cachestat(fd, 0, 0)["nr_cache"] == 4
    check_machine(m)
    a = p.mmap(None, 16384, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    assert [p.load(a + i * 4096) for i in range(4)] == [ord("A")] * 4


def test_create_cached_with_writes_smaller_than_a_page() -> None:
    """written_in=1 or 3: each page's folio is made by the first write into it and found by the rest
    (order 0), not one folio per write()."""
    for written_in in (1, 3, 5000):
        m = pl.Machine(ram="256MiB", seed=0)
        m.fs.create("/f", 100_000, written_in=written_in, cached=True, content=b"xy")
        p = m.spawn("t")
        fd = p.open("/f")
        assert p.cachestat(fd, 0, 0)["nr_cache"] == 25
        check_machine(m)
        a = p.mmap(None, 100_000, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
        assert p.load(a + 99_999) == ord("y")


def test_create_refuses_odd_input_as_the_real_backend_does() -> None:
    """The real backend's m.fs.create answers (real/fs.py) and the kernel's errno: EFBIG past s_maxbytes,
    ENOENT for "", EISDIR for a directory name, ENAMETOOLONG, TypeError/ValueError for Python misuse."""
    import errno

    import pytest

    m = pl.Machine(ram="256MiB", seed=0)
    cases: list[tuple[dict[str, object], type[BaseException], int | None]] = [
        ({"path": "/big", "size": (1 << 44) - 4096 + 1}, OSError, errno.EFBIG),
        ({"path": "/big", "size": 1 << 63}, OSError, errno.EFBIG),
        ({"path": "", "size": 1}, OSError, errno.ENOENT),
        ({"path": "/d/", "size": 1}, OSError, errno.EISDIR),
        ({"path": "/d/.", "size": 1}, OSError, errno.EISDIR),
        ({"path": "/" + "n" * 256, "size": 1}, OSError, errno.ENAMETOOLONG),
        ({"path": "/d" * 2048, "size": 1}, OSError, errno.ENAMETOOLONG),
        ({"path": "/w", "size": 1, "written_in": 1.0}, TypeError, None),
        ({"path": "/w", "size": 1, "written_in": 0}, ValueError, None),
        ({"path": "/w", "size": 1, "content": b"x", "sparse": True}, ValueError, None),
        ({"path": "/w", "size": 1, "content": "x"}, TypeError, None),
    ]
    for kwargs, exc, err in cases:
        path, size = kwargs.pop("path"), kwargs.pop("size")
        with pytest.raises(exc) as e:
            m.fs.create(path, size, **kwargs)  # type: ignore[arg-type]
        if err is not None:
            assert isinstance(e.value, OSError) and e.value.errno == err, (path, e.value)
        assert not m.fs.exists("/w") and not m.fs.exists("/big")
    assert m.fs.create("/mv", 3, content=memoryview(b"abc")) == "/mv"
    check_machine(m)


def test_create_with_content_is_lazy_for_a_huge_file() -> None:
    """A 16 TiB file (s_maxbytes) of repeated content costs nothing until read; a truncate cuts the
    content, so a regrown file reads zeros past the cut."""
    m = pl.Machine(ram="256MiB", seed=0)
    size = (1 << 44) - 4096
    m.fs.create("/huge", size, content=b"0123456789")
    p = m.spawn("t")
    fd = p.open("/huge", os.O_RDWR)
    a = p.mmap(None, 8192, pl.PROT_READ, pl.MAP_SHARED, fd, size - 8192)
    assert p.load(a + 8191) == ord("0123456789"[(size - 1) % 10])
    p.munmap(a, 8192)
    p.ftruncate(fd, 5)
    p.ftruncate(fd, 8192)
    m.fs.evict("/huge")
    b = p.mmap(None, 8192, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    assert [p.load(b + i) for i in (0, 4, 5, 4100)] == [ord("0"), ord("4"), 0, 0]
    check_machine(m)


def test_seek_hole_data_treat_clean_cached_holes_as_holes_and_stay_fast() -> None:
    """As measured on this host (ext4, 6.18): after a 1-byte write at 50000 into a 10000-byte file and
    POSIX_FADV_WILLNEED over it all, SEEK_HOLE from 0 is 12288 and SEEK_DATA from 20000 is 49152 (the
    read-ahead zero folios over the hole are no data; the dirty page at 49152 is, delayed allocation);
    a 16 TiB sparse file answers at once."""
    m = pl.Machine(ram="256MiB", seed=0)
    m.fs.create("/f", 10000, content=b"abc")
    p = m.spawn("t")
    fd = p.open("/f", os.O_RDWR)
    assert p.pwrite(fd, b"q", 50000) == 1
    p.fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    assert p.lseek(fd, 0, os.SEEK_HOLE) == 12288
    assert p.lseek(fd, 20000, os.SEEK_DATA) == 49152
    assert p.lseek(fd, 49153, os.SEEK_DATA) == 49153
    assert p.lseek(fd, 49153, os.SEEK_HOLE) == 50001
    m.fs.create("/sparse", (1 << 44) - 4096, sparse=True)
    sfd = p.open("/sparse", os.O_RDWR)
    assert p.lseek(sfd, 0, os.SEEK_HOLE) == 0
    assert p.pwrite(sfd, b"x", 1 << 40) == 1
    assert p.lseek(sfd, 0, os.SEEK_DATA) == 1 << 40
    assert p.lseek(sfd, 1 << 40, os.SEEK_HOLE) == (1 << 40) + 4096
    check_machine(m)
