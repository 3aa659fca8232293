"""Simulated /proc text has Linux's exact shape, and one parser reads it and the host's real files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import pagelab as pl
from pagelab.mm.page_alloc import nr_free_frames
from pagelab.observe.parse import (
    parse_maps,
    parse_meminfo,
    parse_smaps,
    parse_stat,
    parse_statm,
    parse_status,
    parse_vmstat,
)
from pagelab.observe.procfs import lazyfree_batched

RW, ANON, SHARED = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS, pl.MAP_SHARED | pl.MAP_ANONYMOUS
on_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
NAMES = Path(__file__).parents[2] / "data" / "vmstat_names_linux-6.18.txt"


@pytest.fixture
def busy():
    m = pl.Machine(ram="256MiB", seed=5)
    p = m.spawn("busy")
    a = p.mmap(None, 32 * 4096, RW, ANON)
    s = p.mmap(None, 8 * 4096, RW, SHARED)
    p.touch(a, 16 * 4096, write=True)
    p.touch(a + 16 * 4096, 8 * 4096)
    p.touch(s, 4 * 4096)
    p.touch(s + 4 * 4096, 2 * 4096, write=True)
    return m, p, a, s


def test_vmstat_names_are_linux_names_in_linux_order(busy):
    m, *_ = busy
    linux = NAMES.read_text().split()
    ours = list(parse_vmstat(m.read("/proc/vmstat")))
    assert set(ours) <= set(linux)
    assert ours == sorted(ours, key=linux.index)


@on_linux
def test_vmstat_names_exist_on_this_host(busy):
    m, *_ = busy
    host = parse_vmstat(Path("/proc/vmstat").read_text())
    assert set(m.vmstat()) <= set(host)


@on_linux
def test_meminfo_has_the_hosts_lines_in_the_hosts_order(busy):
    m, *_ = busy
    assert list(parse_meminfo(m.read("/proc/meminfo"))) == list(parse_meminfo(Path("/proc/meminfo").read_text()))


def test_meminfo_values(busy):
    m, *_ = busy
    info = parse_meminfo(m.read("/proc/meminfo"))
    assert info["MemTotal"] == 256 * 1024  # ram is MemTotal: the zero page lives in the kernel image
    assert info["AnonPages"] == 64 and info["Shmem"] == 24 and info["Cached"] == 24
    assert info["MemFree"] == m.vmstat()["nr_free_pages"] * 4  # the buddy lists: not the per-CPU list
    assert info["PageTables"] == m.ptpool.nr_tables * 4


@on_linux
def test_smaps_fields_match_the_hosts(busy):
    m, p, a, s = busy
    ours = parse_smaps(m.read(f"/proc/{p.pid}/smaps"))
    host = [v for v in parse_smaps(Path("/proc/self/smaps").read_text()) if "Rss" in v]
    assert [k for k in ours[0] if k not in ("start", "end", "perms", "pathname")] == \
           [k for k in host[0] if k not in ("start", "end", "perms", "pathname", "ProtectionKey")]
    roll = parse_smaps(m.read(f"/proc/{p.pid}/smaps_rollup"))[0]
    host_roll = parse_smaps(Path("/proc/self/smaps_rollup").read_text())[0]
    assert list(roll) == list(host_roll)


def test_smaps_values_and_vmflags(busy):
    m, p, a, s = busy
    vmas = {v["start"]: v for v in parse_smaps(m.read(f"/proc/{p.pid}/smaps"))}
    anon, shm = vmas[a], vmas[s]
    assert (anon["Rss"], anon["Private_Dirty"], anon["Anonymous"], anon["Size"]) == (64, 64, 64, 128)
    assert anon["VmFlags"] == ["rd", "wr", "mr", "mw", "me", "ac"]
    assert anon["perms"] == "rw-p"
    assert (shm["Rss"], shm["Private_Clean"], shm["Private_Dirty"], shm["Anonymous"]) == (24, 16, 8, 0)
    assert shm["VmFlags"] == ["rd", "wr", "sh", "mr", "mw", "me", "ms"] and shm["perms"] == "rw-s"
    assert shm["pathname"] == "/dev/zero (deleted)"


def test_maps_line_format_matches_linux(busy):
    m, p, a, s = busy
    lines = m.read(f"/proc/{p.pid}/maps").splitlines()
    shm_line = next(line for line in lines if line.endswith("(deleted)"))
    assert shm_line.index("/dev/zero") == 73  # the name column, as show_map_vma pads it
    anon_line = next(line for line in lines if line.startswith(f"{a:x}-"))
    assert anon_line.endswith(" 00000000 00:00 0 ")
    assert [e["start"] for e in parse_maps(m.read(f"/proc/{p.pid}/maps"))] == sorted([a, s])


def test_status_and_stat(busy):
    m, p, a, s = busy
    st = parse_status(m.read(f"/proc/{p.pid}/status"))
    assert (st["VmRSS"], st["RssAnon"], st["RssShmem"], st["VmSize"]) == (88, 64, 24, 160)
    assert st["VmData"] == 128 and st["VmPTE"] == 12
    stat = parse_stat(m.read(f"/proc/{p.pid}/stat"))
    assert len(stat) == 52
    assert (stat["minflt"], stat["majflt"], stat["rss"], stat["comm"]) == (p.rusage().ru_minflt, 0, 22, "busy")


@on_linux
def test_parsers_read_the_hosts_own_files():
    pid = os.getpid()
    assert parse_stat(Path(f"/proc/{pid}/stat").read_text())["pid"] == pid
    assert parse_status(Path(f"/proc/{pid}/status").read_text())["VmRSS"] > 0
    assert parse_maps(Path(f"/proc/{pid}/maps").read_text())
    assert parse_vmstat(Path("/proc/vmstat").read_text())["pgfault"] > 0
    assert parse_meminfo(Path("/proc/meminfo").read_text())["MemTotal"] > 0


@on_linux
def test_status_keys_are_in_the_hosts_order(busy):
    m, p, *_ = busy
    host = list(parse_status(Path("/proc/self/status").read_text()))
    ours = list(parse_status(m.read(f"/proc/{p.pid}/status")))
    assert set(ours) <= set(host) and ours == sorted(ours, key=host.index)


def test_missing_files_are_enoent(busy):
    m, p, *_ = busy
    with pytest.raises(FileNotFoundError):
        m.read("/proc/99999/status")
    with pytest.raises(FileNotFoundError):
        m.read("/proc/cpuinfo")
    assert m.read("/sys/kernel/mm/transparent_hugepage/enabled") == "always [madvise] never\n"
    p.exit()
    with pytest.raises(FileNotFoundError):
        m.read(f"/proc/{p.pid}/smaps")


def test_memtotal_is_ram_and_the_zero_page_is_not_in_it():
    m = pl.Machine(ram="64MiB", seed=0)
    assert m.totalram_pages == 64 * 256
    assert nr_free_frames(m) == m.totalram_pages  # every page of ram is free; the zero page is extra
    assert parse_meminfo(m.read("/proc/meminfo"))["MemFree"] == 64 * 1024


def test_overcommit_guess_admits_exactly_memtotal():
    """__vm_enough_memory(), OVERCOMMIT_GUESS: ENOMEM only for more pages than totalram_pages (+ swap)."""
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("commit")
    total = parse_meminfo(m.read("/proc/meminfo"))["MemTotal"] * 1024
    a = p.mmap(None, total, RW, ANON)
    p.munmap(a, total)
    with pytest.raises(OSError) as exc:
        p.mmap(None, total + 4096, RW, ANON)
    assert exc.value.errno == 12


def test_statm_mirrors_task_statm(busy):
    m, p, a, s = busy
    text = m.read(f"/proc/{p.pid}/statm")
    assert text.endswith("\n") and len(text.split()) == 7
    statm = parse_statm(text)
    st = parse_status(m.read(f"/proc/{p.pid}/status"))
    # size = total_vm, resident = anon + file + shmem, shared = file + shmem, data = data_vm (+ stack_vm)
    assert statm == {"size": 40, "resident": 22, "shared": 6, "text": 0, "lib": 0, "data": 32, "dt": 0}
    assert statm["size"] * 4 == st["VmSize"] and statm["resident"] * 4 == st["VmRSS"]
    assert statm["shared"] * 4 == st["RssFile"] + st["RssShmem"] and statm["data"] * 4 == st["VmData"]
    assert statm["resident"] == parse_stat(m.read(f"/proc/{p.pid}/stat"))["rss"]


def test_statm_of_a_process_that_exited_is_gone(busy):
    m, p, *_ = busy
    p.exit()
    with pytest.raises(FileNotFoundError):
        m.read(f"/proc/{p.pid}/statm")


@on_linux
def test_statm_parser_reads_the_hosts_file():
    statm = parse_statm(Path("/proc/self/statm").read_text())
    status = parse_status(Path("/proc/self/status").read_text())
    assert statm["size"] > 0 and statm["lib"] == 0 and statm["dt"] == 0
    assert statm["text"] * 4 >= status["VmExe"]  # text is page-aligned; VmExe is not


def test_lazyfree_batched_is_what_a_drain_would_add():
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("free")
    a = p.mmap(None, 256 * 4096, RW, ANON)
    p.touch(a, 256 * 4096, write=True)
    p.madvise(a, 256 * 4096, pl.MADV_FREE)
    vma = next(v for v in p.task.mm.vmas if v.vm_start == a)
    smaps = {v["start"]: v for v in parse_smaps(m.read(f"/proc/{p.pid}/smaps"))}
    assert smaps[a]["LazyFree"] == 248 * 4  # 8 batches of 31 applied, 8 folios still in this CPU's batch
    assert lazyfree_batched(m, vma) == 8 * 4096
    p.store(a + 255 * 4096, 1)  # a dirty PTE: a drain would not make that page LazyFree
    assert lazyfree_batched(m, vma) == 7 * 4096
    from pagelab.mm.swap import lru_add_drain

    lru_add_drain(m)
    smaps = {v["start"]: v for v in parse_smaps(m.read(f"/proc/{p.pid}/smaps"))}
    assert smaps[a]["LazyFree"] == 255 * 4 and lazyfree_batched(m, vma) == 0
