"""mremap (mm/mremap.py), MADV_REMOVE on shared memory and prctl(PR_SET/GET_MEMORY_MERGE) on the simulator,
against docs/facts/mremap.md; mm/debug.check_machine after every call."""

from __future__ import annotations

import errno

import pytest
from tests.support.smaps import smaps_field

import pagelab as pl
from pagelab.mm.debug import check_machine

P = 4096
MiB = 1 << 20
RW = pl.PROT_READ | pl.PROT_WRITE
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
SHANON = pl.MAP_SHARED | pl.MAP_ANONYMOUS
MAYMOVE, FIXED, DONTUNMAP = pl.MREMAP_MAYMOVE, pl.MREMAP_FIXED, pl.MREMAP_DONTUNMAP


@pytest.fixture
def m():
    return pl.Machine()


@pytest.fixture
def p(m):
    return m.spawn("mremap")


def minflt(p):
    return p.rusage().ru_minflt


def vmas(m, p, lo, hi):
    out = []
    for line in m.read(f"/proc/{p.pid}/maps").splitlines():
        a, b = (int(x, 16) for x in line.split()[0].split("-"))
        if b > lo and a < hi:
            out.append((a, b, line.split()[1]))
    return out



def test_grow_in_place_and_shrink(m, p):
    a = p.mmap(None, 8 * P, RW, ANON)
    p.munmap(a + 4 * P, 4 * P)
    p.touch(a, 4 * P, write=True)
    assert p.mremap(a, 4 * P, 8 * P) == a
    check_machine(m)
    assert vmas(m, p, a, a + 8 * P) == [(a, a + 8 * P, "rw-p")]
    assert p.mremap(a, 8 * P, 2 * P) == a
    check_machine(m)
    assert vmas(m, p, a, a + 8 * P) == [(a, a + 2 * P, "rw-p")]
    assert smaps_field(m, p, a, "Rss") == 8


def test_move_keeps_pages_without_faults(m, p):
    a = p.mmap(None, 5 * P, RW, ANON)
    p.mprotect(a + 4 * P, P, pl.PROT_READ)  # the next page is taken: no growing in place
    p.touch(a, 4 * P, write=True)
    p.store(a + 3 * P + 7, 42)
    with pytest.raises(OSError) as e:
        p.mremap(a, 4 * P, 8 * P)
    assert e.value.errno == errno.ENOMEM
    q = p.mremap(a, 4 * P, 8 * P, MAYMOVE)
    check_machine(m)
    assert q != a
    f0 = minflt(p)
    p.touch(q, 4 * P)
    assert minflt(p) - f0 == 0
    assert p.load(q + 3 * P + 7) == 42
    assert smaps_field(m, p, q, "Rss") == 16
    assert vmas(m, p, a, a + 4 * P) == []  # the old range is unmapped
    p.touch(q + 4 * P, 4 * P, write=True)  # the grown tail faults as fresh memory
    assert minflt(p) - f0 == 4
    check_machine(m)


@pytest.mark.parametrize("aligned, ahp", [(True, 2048), (False, 0)])
def test_thp_move(m, p, aligned, ahp):
    raw = p.mmap(None, 16 * MiB, RW, ANON)
    h = (raw + 2 * MiB - 1) & ~(2 * MiB - 1)
    p.madvise(h, 2 * MiB, pl.MADV_HUGEPAGE)
    p.touch(h, 2 * MiB, write=True)
    assert smaps_field(m, p, h, "AnonHugePages") == 2048
    dst = ((raw + 10 * MiB) & ~(2 * MiB - 1)) + (0 if aligned else P)
    f0 = minflt(p)
    n = p.mremap(h, 2 * MiB, 2 * MiB, MAYMOVE | FIXED, dst)
    check_machine(m)
    assert n == dst
    p.touch(n, 2 * MiB)
    assert minflt(p) - f0 == 0
    assert smaps_field(m, p, n, "AnonHugePages") == ahp
    assert smaps_field(m, p, n, "Rss") == 2048
    p.munmap(raw, 16 * MiB + P)
    check_machine(m)


def test_dontunmap(m, p):
    a = p.mmap(None, 4 * P, RW, ANON)
    p.touch(a, 4 * P, write=True)
    p.store(a, 7)
    q = p.mremap(a, 4 * P, 4 * P, MAYMOVE | DONTUNMAP)
    check_machine(m)
    f0 = minflt(p)
    assert p.load(q) == 7
    p.touch(q, 4 * P)
    assert minflt(p) - f0 == 0
    assert smaps_field(m, p, a, "Rss") == 0
    assert p.load(a) == 0
    p.touch(a, 4 * P)
    assert minflt(p) - f0 == 4
    check_machine(m)
    s = p.mmap(None, 4 * P, RW, SHANON)
    p.store(s, 3)
    t = p.mremap(s, 4 * P, 4 * P, MAYMOVE | DONTUNMAP)  # allowed on shared memory on 6.18
    assert p.load(t) == 3
    check_machine(m)
    p.munmap(q, 4 * P)
    p.munmap(a, 4 * P)
    check_machine(m)


def test_duplicate_shared(m, p):
    s = p.mmap(None, 4 * P, RW, SHANON)
    p.store(s, 1)
    d = p.mremap(s, 0, 4 * P, MAYMOVE)
    assert d != s
    assert p.load(d) == 1
    p.store(d, 9)
    assert p.load(s) == 9
    check_machine(m)
    with pytest.raises(OSError) as e:
        p.mremap(s, 0, 4 * P)
    assert e.value.errno == errno.ENOMEM
    a = p.mmap(None, 4 * P, RW, ANON)
    with pytest.raises(OSError) as e:
        p.mremap(a, 0, 4 * P, MAYMOVE)
    assert e.value.errno == errno.EINVAL


ERRNO_CASES = [  # (old offset, old pages, new pages, flags, new offset or None) -> errno, from the fact sheet
    (0, 4, 4, FIXED, 8, errno.EINVAL),
    (0, 4, 4, MAYMOVE | FIXED, 2, errno.EINVAL),
    (0, 4, 4, MAYMOVE | FIXED, 0, errno.EINVAL),
    (0, 4, 0, MAYMOVE, None, errno.EINVAL),
    (0, 4, 4, DONTUNMAP, None, errno.EINVAL),
    (0, 4, 8, MAYMOVE | DONTUNMAP, None, errno.EINVAL),
    (0, 4, 4, 8, None, errno.EINVAL),
    (0, 2, 4, 0, None, errno.ENOMEM),
    (0, 20, 24, MAYMOVE, None, errno.EFAULT),
]


@pytest.mark.parametrize("off, old, new, flags, dst, err", ERRNO_CASES)
def test_errno(m, p, off, old, new, flags, dst, err):
    a = p.mmap(None, 16 * P, RW, ANON)
    p.touch(a, 16 * P, write=True)
    with pytest.raises(OSError) as e:
        p.mremap(a + off * P, old * P, new * P, flags, 0 if dst is None else a + dst * P)
    assert e.value.errno == err
    check_machine(m)


def test_errno_unaligned_and_unmapped(m, p):
    a = p.mmap(None, 16 * P, RW, ANON)
    for args, err in [((a + 1, P, P, MAYMOVE), errno.EINVAL), ((a, 4 * P, 4 * P, MAYMOVE | FIXED, a + 8 * P + 1),
                      errno.EINVAL), ((0x10000, P, 2 * P, MAYMOVE), errno.EFAULT),
                      ((a, 4 * P, (1 << 64) - P, MAYMOVE), errno.EINVAL)]:
        with pytest.raises(OSError) as e:
            p.mremap(*args)
        assert e.value.errno == err, args
    check_machine(m)


def test_fixed_moves_and_shrinks(m, p):
    a = p.mmap(None, 16 * P, RW, ANON)
    p.touch(a, 16 * P, write=True)
    assert p.mremap(a, 4 * P, 8 * P, MAYMOVE | FIXED, a + 4 * P) == a + 4 * P
    check_machine(m)
    b = p.mmap(None, 16 * P, RW, ANON)
    p.touch(b, 16 * P, write=True)
    assert p.mremap(b, 4 * P, 2 * P, MAYMOVE | FIXED, b + 12 * P) == b + 12 * P
    check_machine(m)
    assert smaps_field(m, p, b + 12 * P, "Rss") >= 8


def test_file_mapping_moves(m, p):
    m.fs.create("/f", size=16 * P)
    fd = p.open("/f", 2)
    f = p.mmap(None, 8 * P, pl.PROT_READ, pl.MAP_PRIVATE, fd, 0)
    p.touch(f, 8 * P)
    f0 = minflt(p)
    q = p.mremap(f, 8 * P, 16 * P, MAYMOVE)
    check_machine(m)
    p.touch(q, 8 * P)
    assert minflt(p) - f0 == 0
    p.munmap(q, 16 * P)
    check_machine(m)


def test_madv_remove_shared(m, p):
    s = p.mmap(None, 4 * MiB, RW, SHANON)
    p.touch(s, 4 * MiB, write=True)
    p.store(s, 5)
    shmem = m.read("/proc/meminfo")
    p.madvise(s, 4 * MiB, pl.MADV_DONTNEED)  # only unmaps: the data stays in the shmem object
    assert p.load(s) == 5
    p.madvise(s, 4 * MiB, pl.MADV_REMOVE)
    check_machine(m)
    assert smaps_field(m, p, s, "Rss") == 0
    assert m.read("/proc/meminfo") != shmem
    assert p.load(s) == 0
    a = p.mmap(None, 4 * P, RW, ANON)
    with pytest.raises(OSError) as e:
        p.madvise(a, 4 * P, pl.MADV_REMOVE)
    assert e.value.errno == errno.EINVAL


def test_memory_merge_prctl(m, p):
    a = p.mmap(None, 4 * P, RW, ANON)
    s = p.mmap(None, 4 * P, RW, SHANON)
    assert p.prctl(pl.PR_GET_MEMORY_MERGE) == 0
    assert p.prctl(pl.PR_SET_MEMORY_MERGE, 1) == 0
    assert p.prctl(pl.PR_GET_MEMORY_MERGE) == 1
    b = p.mmap(None, 4 * P, RW, ANON)

    def flags(addr):
        smaps = m.read(f"/proc/{p.pid}/smaps").splitlines()
        for i, line in enumerate(smaps):
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                if lo <= addr < hi:
                    return next(x for x in smaps[i:] if x.startswith("VmFlags:")).split()[1:]
        raise AssertionError
    assert "mg" in flags(a) and "mg" in flags(b) and "mg" not in flags(s)
    assert p.prctl(pl.PR_SET_MEMORY_MERGE, 2) == 0
    for args in [(pl.PR_SET_MEMORY_MERGE, 1, 1), (pl.PR_GET_MEMORY_MERGE, 1), (pl.PR_GET_MEMORY_MERGE, 0, 1)]:
        with pytest.raises(OSError) as e:
            p.prctl(*args)
        assert e.value.errno == errno.EINVAL
    assert p.prctl(pl.PR_SET_MEMORY_MERGE, 0) == 0
    assert p.prctl(pl.PR_GET_MEMORY_MERGE) == 0
    assert "mg" not in flags(a)
    check_machine(m)


def test_errno_params_checked_before_the_vma_lookup(m, p):
    """6.18's check_mremap_params() runs on page-aligned lengths before the VMA lookup (measured on the host
    with ctypes mremap(): each case below is EINVAL at an unmapped address, and DONTUNMAP of 4097 -> 8192
    bytes moves)."""
    hole = p.mmap(None, 4 * P, RW, ANON)
    p.munmap(hole, 4 * P)
    for args in [(hole, P, 1 << 63, MAYMOVE), (hole, 2 * P, 2 * P, MAYMOVE | FIXED, hole + P),
                 (hole, P, P, MAYMOVE | FIXED, 1 << 47), (hole, 2 * P, 2 * P, MAYMOVE | DONTUNMAP, hole + P)]:
        with pytest.raises(OSError) as e:
            p.mremap(*args)
        assert e.value.errno == errno.EINVAL, args
    a = p.mmap(None, 4 * P, RW, ANON)
    p.store(a, 5)
    d = p.mremap(a, P + 1, 2 * P, MAYMOVE | DONTUNMAP)
    assert d != a and p.load(d) == 5
    check_machine(m)
