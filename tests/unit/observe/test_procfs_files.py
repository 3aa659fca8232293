"""/proc output for files (observe/procfs.py): meminfo's page-cache gauges, /proc/PID/io, smaps and status
of file mappings, in Linux's formats. Simulator only."""

from __future__ import annotations

import os
import re

import pagelab as pl
from pagelab.observe.procfs import read_path

MiB = 1 << 20


def meminfo_kb(m: pl.Machine) -> dict[str, int]:
    return {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in read_path(m, "/proc/meminfo").splitlines())}


def test_meminfo_file_gauges_follow_the_page_cache() -> None:
    m = pl.Machine(disk="virtio")
    base = meminfo_kb(m)
    m.fs.create("/f", 4 * MiB, cached=True)  # 1 MiB writes: 4 order-8 folios, written back by create
    p = m.spawn("t")
    fd = p.open("/f", os.O_RDWR)
    got = meminfo_kb(m)
    assert got["Cached"] - base["Cached"] == 4096
    assert got["Buffers"] == 0
    assert got["Inactive(file)"] + got["Active(file)"] - base["Inactive(file)"] - base["Active(file)"] == 4096
    assert got["Dirty"] == 0 and got["Writeback"] == 0
    p.pwrite(fd, b"z" * 4096, 0)
    assert meminfo_kb(m)["Dirty"] == 1024  # the whole 1 MiB folio is dirty
    a = p.mmap(None, MiB, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    p.touch(a, MiB)
    assert meminfo_kb(m)["Mapped"] - base["Mapped"] == 1024
    p.fsync(fd)
    assert meminfo_kb(m)["Dirty"] == 0
    m.fs.create("/g", 4 * MiB, cached=True, written_in=2 * MiB)
    assert meminfo_kb(m)["FileHugePages"] == 4096  # two order-9 folios


def test_meminfo_format_is_linux_s() -> None:
    text = read_path(pl.Machine(), "/proc/meminfo")
    for line in text.splitlines():
        assert re.fullmatch(r"[A-Za-z0-9_()]+:\s+\d+( kB)?", line), line
        assert len(line.split(":")[0]) + 1 <= 16 or line.startswith("VmallocTotal")
    assert "\nCached:  " in text and "\nFilePmdMapped:  " in text


def test_proc_pid_io_is_registered_and_counts_syscalls() -> None:
    m = pl.Machine(disk="virtio")
    m.fs.create("/f", 64 * 1024)
    p = m.spawn("t")
    assert read_path(m, f"/proc/{p.pid}/io") == ("rchar: 0\nwchar: 0\nsyscr: 0\nsyscw: 0\nread_bytes: 0\n"
                                                 "write_bytes: 0\ncancelled_write_bytes: 0\n")
    fd = p.open("/f", os.O_RDWR)
    p.read(fd, 1000)
    p.write(fd, b"abc")
    text = read_path(m, f"/proc/{p.pid}/io")
    # read_bytes: the default read_ahead_kb (128) makes a 4-page first window
    assert text.startswith("rchar: 1000\nwchar: 3\nsyscr: 1\nsyscw: 1\nread_bytes: 16384\nwrite_bytes: 0\n")


def test_smaps_of_a_private_file_mapping_after_cow() -> None:
    m = pl.Machine(disk="virtio")
    m.fs.create("/f", 64 * 1024, cached=True, written_in=4096)
    p = m.spawn("t")
    fd = p.open("/f")
    a = p.mmap(None, 64 * 1024, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE, fd, 0)
    p.touch(a, 64 * 1024)  # one fault-around: 16 cache pages mapped
    p.store(a)  # one COW copy
    text = read_path(m, f"/proc/{p.pid}/smaps")
    entry = text.split(f"{a:08x}-", 1)[1].split("VmFlags")[0]
    fields = {ln.split(":")[0]: int(ln.split()[1]) for ln in entry.splitlines()[1:] if ln.endswith(" kB")}
    assert entry.splitlines()[0].endswith(" /f")
    assert fields["Rss"] == 64
    assert fields["Anonymous"] == 4
    assert fields["Private_Dirty"] == 4 and fields["Private_Clean"] == 60
    status = read_path(m, f"/proc/{p.pid}/status")
    assert "RssFile:\t      60 kB" in status and "RssAnon:\t       4 kB" in status
