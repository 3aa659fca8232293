"""glibc's malloc model on the simulator, held to the numbers measured with the host's glibc 2.36
(docs/facts/malloc.md: probes p1 and p3)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pagelab as pl
from pagelab.libc.malloc import (
    M_MMAP_MAX,
    M_MMAP_THRESHOLD,
    M_MXFAST,
    M_TOP_PAD,
    M_TRIM_THRESHOLD,
    MallocError,
    request2size,
)

PAGE = 4096
KiB, MiB = 1024, 1 << 20


def memset(p: pl.Process, addr: int, n: int) -> None:
    """What memset(addr, 1, n) does to pages: a write to each page of [addr, addr + n)."""
    start = addr & ~(PAGE - 1)
    p.touch(start, addr + n - start, write=True)


def minflt(p: pl.Process) -> int:
    return p.rusage().ru_minflt


def rss_kb(m: pl.Machine, p: pl.Process) -> int:
    line = next(x for x in m.read(f"/proc/{p.pid}/status").splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1])


def test_request2size() -> None:
    assert [request2size(n) for n in (0, 24, 25, 1024, 128 * KiB - 16)] == [32, 32, 48, 1040, 128 * KiB]


def test_first_malloc_grows_brk_by_132k_after_the_tcache(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    s = p.brk(0)
    a = p.malloc(16)
    assert a == s + 0x290 + 0x10  # the tcache_perthread_struct chunk (0x290) comes first
    assert p.brk(0) - s == 135168  # 0x290 + 128 KiB top pad + MINSIZE, rounded up to a page


def test_mmap_threshold_and_mmapped_chunk_size(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    s = p.brk(0)
    p.malloc(4096)  # the probe's printf() buffer (BUFSIZ), so the heap holds what the host's did
    p.malloc(16)
    a = p.malloc(128 * KiB - 24)  # fits the top chunk after a grow: from the heap
    assert s < a < p.brk(0)
    b = p.malloc(128 * KiB)  # the top chunk still holds it: the threshold only applies in sysmalloc
    assert s < b < p.brk(0)
    c = p.malloc(128 * KiB - 16)  # the top is too small and nb >= 128 KiB: its own mmap
    assert not s <= c < p.brk(0)
    assert c % PAGE == 16
    maps = machine.read(f"/proc/{p.pid}/maps")
    assert f"{c - 16:08x}-{c - 16 + 132 * KiB:08x} rw-p" in maps  # request2size + SIZE_SZ, page-rounded


def test_dynamic_threshold(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    heap = p.brk(0)
    a = p.malloc(MiB)
    assert not heap <= a < heap + (1 << 30)
    p.free(a)  # raises the threshold to 1 MiB + 4 KiB, the trim threshold to twice that
    assert p.libc.mp.mmap_threshold == MiB + PAGE and p.libc.mp.trim_threshold == 2 * (MiB + PAGE)
    b = p.malloc(MiB)
    assert heap <= b < p.brk(0)
    g = p.malloc(40 * MiB)  # above DEFAULT_MMAP_THRESHOLD_MAX (32 MiB): freeing it moves nothing
    p.free(g)
    assert p.libc.mp.mmap_threshold == MiB + PAGE


def test_mallopt_turns_the_dynamic_threshold_off(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    heap = p.brk(0)
    assert p.mallopt(M_MMAP_THRESHOLD, 64 * KiB) == 1
    assert p.mallopt(M_MXFAST, 161) == 0  # over MAX_FAST_SIZE (160): refused, as glibc 2.36 does
    a = p.malloc(MiB)
    p.free(a)
    assert p.libc.mp.mmap_threshold == 64 * KiB
    assert p.mallopt(M_MMAP_MAX, 0) == 1
    b = p.malloc(MiB)  # no mmap allowed: from brk
    assert heap <= b < p.brk(0)
    assert p.mallopt(M_TOP_PAD, 0) == 1 and p.mallopt(M_TRIM_THRESHOLD, 4096) == 1


def test_pattern_a_faults_and_trim_on_free(machine: pl.Machine) -> None:
    """1000 x malloc(1 KiB) + memset: 256 faults on the host (one of them the probe's own array), the heap
    1081344 bytes; freeing them all trims the top to 139264 bytes."""
    p = machine.spawn("a")
    s = p.brk(0)
    f0 = minflt(p)
    ptrs = []
    for _ in range(1000):
        a = p.malloc(KiB)
        memset(p, a, KiB)
        ptrs.append(a)
    assert minflt(p) - f0 == 255
    assert p.brk(0) - s == 1081344
    for a in ptrs:
        p.free(a)
    assert p.brk(0) - s == 139264


def test_pattern_b_threshold_moves_then_no_faults(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    s = p.brk(0)
    for _ in range(1000):
        p.free(p.malloc(KiB))  # the same chunk over and over (tcache); sets up the arena
    f0 = minflt(p)
    a = p.malloc(MiB)
    memset(p, a, MiB)
    assert minflt(p) - f0 == 257  # mmapped: 1 MiB + 4 KiB
    p.free(a)
    f0 = minflt(p)
    a = p.malloc(MiB)
    memset(p, a, MiB)
    assert s <= a < p.brk(0)
    p.free(a)
    f0 = minflt(p)
    a = p.malloc(MiB)
    memset(p, a, MiB)
    assert minflt(p) - f0 == 0  # the heap kept its pages: the trim threshold is now 2 MiB + 8 KiB


def test_pattern_c_rss_stays_high_until_malloc_trim(machine: pl.Machine) -> None:
    """Why RSS stays high after free(): the last chunk pins the top, the freed chunks stay resident until
    malloc_trim(0) gives their pages back with MADV_DONTNEED (the host: 100 MiB, 106 MB -> 2.2 MB)."""
    p = machine.spawn("a")
    ptrs = []
    for _ in range(2048):
        a = p.malloc(KiB)
        memset(p, a, KiB)
        ptrs.append(a)
    brk = p.brk(0)
    before = rss_kb(machine, p)
    assert before >= 2048
    for a in ptrs[:-1]:
        p.free(a)
    assert rss_kb(machine, p) == before and p.brk(0) == brk
    assert p.malloc_trim(0) == 1
    assert rss_kb(machine, p) < 100
    assert p.brk(0) < brk  # the top above the last chunk went too


def test_free_errors(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    p.free(0)
    a = p.malloc(100)
    with pytest.raises(MallocError, match="invalid pointer"):
        p.free(a + 16)
    p.free(a)
    with pytest.raises(MallocError, match="double free"):
        p.free(a)
    assert p.malloc(-1) == 0  # (size_t)-1, as C passes it: over PTRDIFF_MAX
    with pytest.raises(TypeError):
        p.malloc("8")  # type: ignore[arg-type]
    assert p.malloc(1 << 63) == 0


def test_coalescing_reuses_addresses(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    big = [p.malloc(2000) for _ in range(3)]  # past the tcache's sizes
    guard = p.malloc(2000)
    for a in big:
        p.free(a)
    c = p.malloc(5000)  # the three coalesced chunks hold it
    assert c == big[0]
    assert guard > c


def test_deterministic() -> None:
    def run() -> list[int]:
        p = pl.Machine(ram="256MiB", seed=3).spawn("a")
        out = [p.malloc(n) for n in (10, 3000, 200 * KiB, 64)]
        p.free(out[1])
        return out + [p.malloc(1000), p.brk(0)]
    assert run() == run()


@settings(max_examples=int(os.environ.get("PAGELAB_MALLOC_EXAMPLES", "25")), deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 300 * KiB), st.integers(0, 1000)), max_size=60))
def test_heap_tiles_exactly_and_live_chunks_never_overlap(ops: list[tuple[bool, int, int]]) -> None:
    """After any malloc/free sequence: the chunks in use, the binned free chunks and the top chunk tile the
    heap [first chunk, break) with no gap or overlap, and live user ranges never overlap."""
    p = pl.Machine(ram="256MiB", seed=0).spawn("h")
    live: list[tuple[int, int]] = []
    for is_malloc, size, pick in ops:
        if is_malloc or not live:
            a = p.malloc(size)
            live.append((a, size))
        else:
            p.free(live.pop(pick % len(live))[0])
    lib = p.libc
    spans = sorted([*lib.inuse.items(), *lib.freed.items()] + ([(lib.top, lib.top_size)] if lib.top else []))
    if spans:
        assert spans[-1][0] + spans[-1][1] == lib.brk == p.brk(0)
        for (a, n), (b, _) in zip(spans, spans[1:], strict=False):
            assert a + n == b
    ranges = sorted((a, a + max(n, 1)) for a, n in live)
    for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
        assert end <= start


def test_malloc_trim_with_a_minsize_top_grows_the_heap(machine: pl.Machine) -> None:
    """glibc 2.36's systrim() compares a signed -1 as unsigned: with a 32-byte top chunk malloc_trim(0)
    moves the break up a page (the host: "m 16; m 134440; trim 0" -> break 135168 -> 139264)."""
    p = machine.spawn("a")
    s = p.brk(0)
    assert p.malloc(16) - s == 672
    assert p.malloc(134440) - s == 704  # from the top chunk (only sysmalloc() looks at the threshold)
    assert p.libc.top_size == 32
    assert p.malloc_trim(0) == 1
    assert p.brk(0) - s == 139264
    assert p.malloc_trim(65536) == 0


def test_fork_copies_the_break_and_the_allocator(machine: pl.Machine) -> None:
    p = machine.spawn("a")
    a = p.malloc(5000)
    b = p.malloc(5000)
    c = p.fork()
    assert c.brk(0) == p.brk(0)
    c.free(a)  # the child's free list only
    assert c.malloc(5000) == a
    assert p.malloc(5000) not in (a, b)
    heap = [x for x in machine.read(f"/proc/{c.pid}/maps").splitlines() if x.endswith("[heap]")]
    assert len(heap) == 1


def test_mallopt_mmap_threshold_takes_any_value(machine: pl.Machine) -> None:
    """glibc 2.36 sets M_MMAP_THRESHOLD to whatever it is given (the host: 33 MiB and -1 both return 1, and
    malloc(32 MiB), then malloc(100 MiB) come from the heap)."""
    p = machine.spawn("a")
    heap = p.brk(0)
    assert p.mallopt(M_MMAP_THRESHOLD, 33 * MiB) == 1
    a = p.malloc(32 * MiB)
    assert heap <= a < p.brk(0)
    assert p.mallopt(M_MMAP_THRESHOLD, -1) == 1
    b = p.malloc(100 * MiB)
    assert heap <= b < p.brk(0)


def test_brk_blocked_the_arena_continues_in_mmap(machine: pl.Machine) -> None:
    """A mapping above the heap stops brk: sysmalloc() falls back to an mmap, rounded up to 1 MiB the first
    time (glibc 2.36 passes MMAP_AS_MORECORE_SIZE as the rounding), page-rounded after that; the old top is
    fenced off and freed (the host, strace of malloc_replay.c: mmap(NULL, 1048576, ...), then 217088 ...)."""
    p = machine.spawn("a")
    s = p.brk(0)
    p.mmap(s + 40 * PAGE, PAGE, pl.PROT_NONE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS | pl.MAP_FIXED)
    assert p.mallopt(M_MMAP_MAX, 0) == 1  # no mmapped chunks: everything comes from the arena
    a = p.malloc(100 * KiB)
    assert s <= a < p.brk(0)
    before = machine.read(f"/proc/{p.pid}/maps")
    b = p.malloc(100 * KiB)  # the top cannot hold it and brk cannot grow past the mapping
    assert not s <= b < s + 40 * PAGE and b % PAGE == 16
    new = [x for x in machine.read(f"/proc/{p.pid}/maps").splitlines() if x not in before]
    lo, hi = (int(v, 16) for v in new[0].split()[0].split("-"))
    assert hi - lo == MiB and lo == b - 16
    assert not p.libc.contiguous
    c = p.malloc(1 * MiB)  # the second fallback: just page-rounded
    assert c % PAGE == 16 and p.libc.top_size < 300 * KiB


def test_huge_top_pad_wraps_as_size_t(machine: pl.Machine) -> None:
    """mallopt(M_TOP_PAD, -1) stores SIZE_MAX; sysmalloc()'s nb + top_pad + MINSIZE wraps around in size_t, so
    glibc 2.36 still grows the heap by about nb (measured on the host: malloc(200 KiB) with M_MMAP_MAX -5
    succeeds and sbrk(0) moves by 176 KiB past its existing top chunk). It used to raise OverflowError."""
    from pagelab.mm.debug import check_machine

    p = machine.spawn("toppad")
    assert p.mallopt(M_TOP_PAD, -1) == 1 and p.mallopt(M_MMAP_MAX, -5) == 1
    start = p.brk(0)
    a = p.malloc(200 * KiB)
    assert a and start <= a < p.brk(0) <= start + 200 * KiB + 2 * PAGE + 4 * KiB
    memset(p, a, 200 * KiB)
    check_machine(machine)
