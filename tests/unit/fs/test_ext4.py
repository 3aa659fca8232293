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
