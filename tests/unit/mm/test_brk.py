"""brk(2) on the simulator: the facts of docs/facts/malloc.md (measured on this host's 6.18 kernel)."""

from __future__ import annotations

import resource

import pagelab as pl
from pagelab.mm.mmap import BRK_RND_RANGE, ELF_ET_DYN_BASE, SPAWN_IMAGE_END, randomize_page

PAGE = 4096


def heap_lines(m: pl.Machine, p: pl.Process) -> list[str]:
    return [line for line in m.read(f"/proc/{p.pid}/maps").splitlines() if line.endswith("[heap]")]


def test_start_brk_is_randomized_after_the_image_and_deterministic(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    start = p.brk(0)
    assert start % PAGE == 0
    low = ELF_ET_DYN_BASE + SPAWN_IMAGE_END
    assert low < start < low + (1 << 40) + BRK_RND_RANGE + 2 * PAGE
    again = pl.Machine(ram="1GiB", seed=1).spawn("a").brk(0)
    assert again == start
    assert pl.Machine(ram="1GiB", seed=2).spawn("a").brk(0) != start


def test_randomize_page_stays_in_range() -> None:
    assert randomize_page(0, 0x1000, 1 << 30) == 0x1000
    assert randomize_page((1 << 18) + 5, 0x1000, 1 << 30) == 0x1000 + 5 * PAGE
    assert randomize_page(7, 0x1001, 2 * PAGE) == 0x2000  # unaligned start: aligned up, range shrinks to 1 page


def test_grow_shrink_and_heap_vma(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    s = p.brk(0)
    assert heap_lines(machine, p) == []  # no heap VMA until the break moves
    assert p.brk(s - PAGE) == s  # below start_brk: refused, the old break returned
    assert p.brk(s + 1) == s + 1
    assert p.brk(0) == s + 1
    (line,) = heap_lines(machine, p)
    assert line.startswith(f"{s:08x}-{s + PAGE:08x} rw-p 00000000 00:00 0 ")
    assert p.brk(s + 5000) == s + 5000
    assert heap_lines(machine, p)[0].startswith(f"{s:08x}-{s + 2 * PAGE:08x} rw-p")
    smaps = machine.read(f"/proc/{p.pid}/smaps")
    assert "VmFlags: rd wr mr mw me ac \n" in smaps
    p.store(s + 100, 7)
    assert p.load(s + 100) == 7
    assert p.brk(s + PAGE) == s + PAGE  # shrink: the second page goes
    assert heap_lines(machine, p)[0].startswith(f"{s:08x}-{s + PAGE:08x}")
    assert p.brk(s) == s
    assert heap_lines(machine, p) == []  # brk == start_brk: no [heap] (and no VMA)
    assert p.brk(s + 2 * PAGE) == s + 2 * PAGE
    assert p.load(s + 100) == 0  # the page was unmapped by the shrink: a fresh zero page
    assert p.brk(1 << 47) == s + 2 * PAGE  # past TASK_SIZE: refused
    assert p.brk((1 << 64) - 1) == s + 2 * PAGE


def test_brk_grows_into_one_vma_and_counts_data_vm(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    s = p.brk(0)
    for i in range(1, 5):
        assert p.brk(s + i * 33 * PAGE) == s + i * 33 * PAGE
    assert len(heap_lines(machine, p)) == 1
    status = machine.read(f"/proc/{p.pid}/status")
    assert "VmData:\t     528 kB" in status


def test_brk_refused_by_a_mapping_above(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    s = p.brk(0)
    p.mmap(s + 16 * PAGE, PAGE, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS | pl.MAP_FIXED)
    assert p.brk(s + 15 * PAGE) == s + 15 * PAGE  # newbrk + PAGE_SIZE may touch the next VMA's start
    assert p.brk(s + 15 * PAGE + 1) == s + 15 * PAGE  # one byte more would leave no gap page


def test_rlimit_data(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    s = p.brk(0)
    p.setrlimit(resource.RLIMIT_DATA, (64 * 1024, resource.RLIM_INFINITY))
    assert p.brk(s + 64 * 1024) == s + 64 * 1024  # inclusive (no data segment in a spawned process)
    assert p.brk(s + 64 * 1024 + 1) == s + 64 * 1024


def test_shrink_frees_frames(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    s = p.brk(0)
    p.brk(s + 64 * PAGE)
    p.touch(s, 64 * PAGE, write=True)
    assert p.rusage().ru_minflt == 64
    rss = int(machine.read(f"/proc/{p.pid}/statm").split()[1])
    p.brk(s)
    assert int(machine.read(f"/proc/{p.pid}/statm").split()[1]) == rss - 64


def test_rlimit_as_refuses_growth(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    s = p.brk(0)
    p.setrlimit(resource.RLIMIT_AS, (16 * PAGE, resource.RLIM_INFINITY))
    assert p.brk(s + 16 * PAGE) == s + 16 * PAGE  # may_expand_vm(): total_vm + npages <= the limit
    assert p.brk(s + 17 * PAGE) == s + 16 * PAGE

