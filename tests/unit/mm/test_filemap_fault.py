"""File faults (mm/filemap_fault.py: filemap_fault, fault-around, PMD mapping; MAP_SHARED write-notify,
MAP_PRIVATE COW), counted as docs/facts/files_page_cache.md counts them (ru_minflt / ru_majflt of the
measured pass only). Simulator only, with this host's read_ahead_kb (8192)."""

from __future__ import annotations

import os

import pytest

import pagelab as pl
from pagelab.observe.procfs import read_path

MiB = 1 << 20


def warm_file(size: int, how: str = "read") -> tuple[pl.Machine, pl.Process, int]:
    """A cold file of ``size`` made warm by 1 MiB reads (``how`` "read"), through a FADV_RANDOM descriptor
    ("rand"), or left cold ("cold"); returns the machine, the process and an O_RDWR descriptor."""
    m = pl.Machine(settings={"/sys/block/vda/queue/read_ahead_kb": 8192}, disk="virtio")
    m.fs.create("/f", size)
    p = m.spawn("t")
    fd = p.open("/f", os.O_RDWR)
    if how != "cold":
        rfd = p.open("/f")
        if how == "rand":
            p.fadvise(rfd, 0, 0, os.POSIX_FADV_RANDOM)
        while p.read(rfd, MiB):
            pass
        p.close(rfd)
    return m, p, fd


def faults(p: pl.Process, addr: int, length: int, *, write: bool = False) -> tuple[int, int]:
    r0 = p.rusage()
    p.touch(addr, length, write=write)
    r1 = p.rusage()
    return r1.ru_minflt - r0.ru_minflt, r1.ru_majflt - r0.ru_majflt


def smaps_field(m: pl.Machine, p: pl.Process, addr: int, name: str) -> int:
    """The kB value of ``name`` in the smaps entry of the VMA starting at ``addr``."""
    text = read_path(m, f"/proc/{p.pid}/smaps")
    entry = text.split(f"{addr:08x}-", 1)[1]
    line = next(ln for ln in entry.splitlines() if ln.startswith(name + ":"))
    return int(line.split()[1])


@pytest.mark.parametrize(("advice", "pmd_kb"), [(None, 34816), (pl.MADV_NOHUGEPAGE, 0)])
def test_warm_64mib_shared_read_takes_281_faults(advice: int | None, pmd_kb: int) -> None:
    """Fact sheet b: 281 minor, 0 major; FilePmdMapped 34816 kB (17 PMDs) unless VM_NOHUGEPAGE."""
    m, p, fd = warm_file(64 * MiB)
    a = p.mmap(None, 64 * MiB, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    if advice is not None:
        p.madvise(a, 64 * MiB, advice)
    before = m.vmstat()["thp_file_mapped"]
    assert faults(p, a, 64 * MiB) == (281, 0)
    assert smaps_field(m, p, a, "FilePmdMapped") == pmd_kb
    assert smaps_field(m, p, a, "Rss") == 65536
    assert smaps_field(m, p, a, "Private_Clean") == 65536  # one mapper: "private"
    assert m.vmstat()["thp_file_mapped"] - before == pmd_kb // 2048
    assert m.vmstat()["nr_file_pmdmapped"] == pmd_kb // 2048
    meminfo = read_path(m, "/proc/meminfo")
    assert f"FilePmdMapped:  {pmd_kb:>8} kB" in meminfo
    assert f"FileHugePages:  {17 * 2048:>8} kB" in meminfo
    status = read_path(m, f"/proc/{p.pid}/status")
    assert "RssFile:\t   65536 kB" in status


def test_order0_folios_fault_once_per_16_page_window() -> None:
    """Fact sheet c: warmed through FADV_RANDOM (order 0 only): one fault per 16 pages (1024 for 64 MiB;
    16 MiB here: 256)."""
    _m, p, fd = warm_file(16 * MiB, "rand")
    a = p.mmap(None, 16 * MiB, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    assert faults(p, a, 16 * MiB) == (256, 0)


def test_16mib_eof_quirk_235() -> None:
    """Fact sheet b: the order-6 folio that ends exactly at EOF is mapped 16 pages at a time: 224 + 7 + 4."""
    _m, p, fd = warm_file(16 * MiB)
    a = p.mmap(None, 16 * MiB, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    assert faults(p, a, 16 * MiB) == (235, 0)


def test_cold_ascending_read_has_one_major_fault() -> None:
    """Fact sheet d: cold, ascending: 435-441 minor (435 in the simulator: no timing race) and exactly
    1 major; pgmajfault +1; pgpgin = the file in KiB."""
    m, p, fd = warm_file(64 * MiB, "cold")
    a = p.mmap(None, 64 * MiB, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    before = m.vmstat()
    minor, major = faults(p, a, 64 * MiB)
    assert major == 1, f"majflt {major} (minflt {minor}): only the first fault waits on I/O and retries"
    assert 435 <= minor <= 441
    after = m.vmstat()
    assert after["pgmajfault"] - before["pgmajfault"] == 1
    assert after["pgpgin"] - before["pgpgin"] == 65536
    assert smaps_field(m, p, a, "FilePmdMapped") == 24576


def test_private_write_copies_every_page() -> None:
    """16 MiB warm file, MAP_PRIVATE, one write per page: 4096 faults (do_cow_fault, no fault-around)."""
    m, p, fd = warm_file(16 * MiB)
    a = p.mmap(None, 16 * MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE, fd, 0)
    assert faults(p, a, 16 * MiB, write=True) == (4096, 0)
    assert smaps_field(m, p, a, "Anonymous") == 16384
    assert p.cachestat(fd)["nr_dirty"] == 0  # the page cache is untouched


def test_shared_write_first_faults_once_per_folio_then_msync_write_protects() -> None:
    """Fact sheet item i8: 904 write faults (one per folio, write-first), then MS_ASYNC does nothing
    (0 more faults), MS_SYNC cleans and write-protects: the next pass takes 4096."""
    m, p, fd = warm_file(16 * MiB)
    a = p.mmap(None, 16 * MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_SHARED, fd, 0)
    assert faults(p, a, 16 * MiB, write=True) == (904, 0)
    assert p.cachestat(fd)["nr_dirty"] == 4096
    assert "Dirty:             16384 kB" in read_path(m, "/proc/meminfo")
    assert smaps_field(m, p, a, "Private_Dirty") == 16384
    p.msync(a, 16 * MiB, 1)  # MS_ASYNC
    assert p.cachestat(fd)["nr_dirty"] == 4096
    assert faults(p, a, 16 * MiB, write=True) == (0, 0)
    pgpgout = m.vmstat()["pgpgout"]
    p.msync(a, 16 * MiB, 4)  # MS_SYNC
    assert p.cachestat(fd)["nr_dirty"] == 0
    assert m.vmstat()["pgpgout"] - pgpgout == 16384
    assert smaps_field(m, p, a, "Private_Dirty") == 0
    assert faults(p, a, 16 * MiB, write=True) == (4096, 0)


def test_shared_read_then_write_takes_one_wp_fault_per_page() -> None:
    _m, p, fd = warm_file(16 * MiB)
    a = p.mmap(None, 16 * MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_SHARED, fd, 0)
    assert faults(p, a, 16 * MiB) == (235, 0)
    assert faults(p, a, 16 * MiB, write=True) == (4096, 0)


def test_two_mappers_share_the_cache_pages() -> None:
    m, p, fd = warm_file(MiB)
    q = m.spawn("u")
    qfd = q.open("/f")
    a = p.mmap(None, MiB, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    b = q.mmap(None, MiB, pl.PROT_READ, pl.MAP_SHARED, qfd, 0)
    p.touch(a, MiB)
    q.touch(b, MiB)
    assert smaps_field(m, p, a, "Shared_Clean") == 1024
    assert smaps_field(m, p, a, "Pss") == 512
    assert smaps_field(m, p, a, "Private_Clean") == 0
    assert "/f\n" in read_path(m, f"/proc/{p.pid}/maps")


def test_access_past_eof_is_sigbus() -> None:
    """Item n: a file of 2 pages + 100 bytes; the page holding EOF reads zeros past it, the next page is
    SIGBUS (MAP_SHARED and MAP_PRIVATE)."""
    for flags in (pl.MAP_SHARED, pl.MAP_PRIVATE):
        m = pl.Machine(disk="virtio")
        m.fs.create("/f", 2 * 4096 + 100, content=b"\x07")
        p = m.spawn("t")
        fd = p.open("/f")
        a = p.mmap(None, 4 * 4096, pl.PROT_READ, flags, fd, 0)
        assert p.load(a + 2 * 4096 + 99) == 7
        assert p.load(a + 2 * 4096 + 100) == 0
        with pytest.raises(pl.BusError):
            p.load(a + 3 * 4096)


def test_truncate_unmaps_pages_beyond_the_new_size() -> None:
    m = pl.Machine(disk="virtio")
    m.fs.create("/f", 3 * 4096)
    p = m.spawn("t")
    fd = p.open("/f", os.O_RDWR)
    a = p.mmap(None, 3 * 4096, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    p.touch(a, 3 * 4096)
    p.ftruncate(fd, 4096)
    p.load(a)
    with pytest.raises(pl.BusError):
        p.load(a + 4096)
