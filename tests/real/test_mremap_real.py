"""mremap, MADV_REMOVE and prctl(PR_SET/GET_MEMORY_MERGE) on both backends: the same calls, the same results
(addresses relative to the mapping, errno, fault counts, Rss/AnonHugePages), against docs/facts/mremap.md."""

from __future__ import annotations

import errno

import pytest
from tests.support.smaps import smaps_field

import pagelab as pl
from pagelab.real import Machine as RealMachine

pytestmark = pytest.mark.real

P = 4096
MiB = 1 << 20
RW = pl.PROT_READ | pl.PROT_WRITE
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
SHANON = pl.MAP_SHARED | pl.MAP_ANONYMOUS
MAYMOVE, FIXED, DONTUNMAP = pl.MREMAP_MAYMOVE, pl.MREMAP_FIXED, pl.MREMAP_DONTUNMAP


@pytest.fixture(scope="module")
def real():
    with RealMachine() as m:
        yield m



def minflt(p):
    return p.rusage().ru_minflt


def story(m):
    """The fact sheet's mremap cases as one list of observations (both backends must give the same)."""
    p = m.spawn("mremap")
    out: list[object] = []

    def err(*args):
        try:
            p.mremap(*args)
        except OSError as e:
            return errno.errorcode[e.errno]
        return "ok"

    a = p.mmap(None, 5 * P, RW, ANON)
    p.munmap(a + 4 * P, P)
    p.touch(a, 4 * P, write=True)
    out.append(("grow in place", p.mremap(a, 4 * P, 5 * P) == a))
    out.append(("shrink", p.mremap(a, 5 * P, 4 * P) == a, smaps_field(m, p, a, "Rss")))
    p.mmap(a + 4 * P, P, pl.PROT_READ, ANON | pl.MAP_FIXED)
    out.append(("no room", err(a, 4 * P, 8 * P, 0)))
    p.store(a + 7, 42)
    f0 = minflt(p)
    q = p.mremap(a, 4 * P, 8 * P, MAYMOVE)
    p.touch(q, 4 * P)
    out.append(("moved", q != a, minflt(p) - f0, p.load(q + 7), smaps_field(m, p, q, "Rss")))
    f0 = minflt(p)
    r = p.mremap(q, 4 * P, 4 * P, MAYMOVE | DONTUNMAP)
    p.touch(r, 4 * P)
    new_faults = minflt(p) - f0
    p.touch(q, 4 * P)
    out.append(("dontunmap", new_faults, minflt(p) - f0, p.load(r + 7), p.load(q + 7)))
    s = p.mmap(None, 4 * P, RW, SHANON)
    p.store(s, 1)
    d = p.mremap(s, 0, 4 * P, MAYMOVE)
    p.store(d, 9)
    out.append(("duplicate", p.load(s), err(s, 0, 4 * P, 0)))
    b = p.mmap(None, 16 * P, RW, ANON)
    for args in [(b, 4 * P, 4 * P, FIXED, b + 8 * P), (b, 4 * P, 4 * P, MAYMOVE | FIXED, b + 2 * P),
                 (b, 4 * P, 4 * P, MAYMOVE | FIXED, b), (b + 1, P, P, MAYMOVE), (b, 4 * P, 4 * P, 8),
                 (b, 4 * P, 0, MAYMOVE), (b, 4 * P, 4 * P, DONTUNMAP), (b, 4 * P, 8 * P, MAYMOVE | DONTUNMAP),
                 (b, 2 * P, 4 * P, 0), (b, 20 * P, 24 * P, MAYMOVE), (b, 4 * P, (1 << 64) - P, MAYMOVE),
                 (p.mmap(None, P, RW, ANON), 0, P, MAYMOVE)]:
        out.append(("errno", err(*args)))
    p.exit()
    return out


def thp_story(m, aligned):
    p = m.spawn("thp")
    raw = p.mmap(None, 16 * MiB, RW, ANON)
    h = (raw + 2 * MiB - 1) & ~(2 * MiB - 1)
    p.madvise(h, 2 * MiB, pl.MADV_HUGEPAGE)
    p.touch(h, 2 * MiB, write=True)
    before = smaps_field(m, p, h, "AnonHugePages")
    dst = ((raw + 10 * MiB) & ~(2 * MiB - 1)) + (0 if aligned else P)
    f0 = minflt(p)
    n = p.mremap(h, 2 * MiB, 2 * MiB, MAYMOVE | FIXED, dst)
    p.touch(n, 2 * MiB)
    out = (n == dst, before, minflt(p) - f0, smaps_field(m, p, n, "AnonHugePages"), smaps_field(m, p, n, "Rss"))
    p.exit()
    return out


def remove_story(m):
    p = m.spawn("remove")
    s = p.mmap(None, 4 * MiB, RW, SHANON)
    p.touch(s, 4 * MiB, write=True)
    p.store(s, 5)
    p.madvise(s, 4 * MiB, pl.MADV_DONTNEED)
    kept = p.load(s)
    p.touch(s, 4 * MiB)
    p.madvise(s, 4 * MiB, pl.MADV_REMOVE)
    rss = smaps_field(m, p, s, "Rss")
    a = p.mmap(None, 4 * P, RW, ANON)
    try:
        p.madvise(a, 4 * P, pl.MADV_REMOVE)
        private = "ok"
    except OSError as e:
        private = errno.errorcode[e.errno]
    out = (kept, rss, p.load(s), private)
    p.exit()
    return out


def merge_story(m):
    p = m.spawn("merge")
    out = [p.prctl(pl.PR_GET_MEMORY_MERGE), p.prctl(pl.PR_SET_MEMORY_MERGE, 1), p.prctl(pl.PR_GET_MEMORY_MERGE)]
    for args in [(pl.PR_SET_MEMORY_MERGE, 1, 1), (pl.PR_GET_MEMORY_MERGE, 1)]:
        try:
            out.append(p.prctl(*args))
        except OSError as e:
            out.append(errno.errorcode[e.errno])
    a = p.mmap(None, 4 * P, RW, ANON)
    smaps = m.read(f"/proc/{p.pid}/smaps").splitlines()
    start = next(i for i, line in enumerate(smaps) if line.startswith(f"{a:x}-"))
    vmflags = next(x for x in smaps[start:] if x.startswith("VmFlags:"))
    out.append("mg" in vmflags.split())
    out.append(p.prctl(pl.PR_SET_MEMORY_MERGE, 0))
    out.append(p.prctl(pl.PR_GET_MEMORY_MERGE))
    p.exit()
    return out


def test_mremap_both_backends_agree(real):
    sim = story(pl.Machine())
    assert sim == story(real)
    assert ("moved", True, 0, 42, 16) in sim
    assert ("dontunmap", 0, 4, 42, 0) in sim


@pytest.mark.parametrize("aligned, ahp", [(True, 2048), (False, 0)])
def test_thp_move_both_backends(real, aligned, ahp):
    sim = thp_story(pl.Machine(), aligned)
    assert sim == thp_story(real, aligned)
    assert sim == (True, 2048, 0, ahp, 2048)


def test_madv_remove_both_backends(real):
    sim = remove_story(pl.Machine())
    assert sim == remove_story(real)
    assert sim == (5, 0, 0, "EINVAL")


def test_memory_merge_both_backends(real):
    sim = merge_story(pl.Machine())
    assert sim == merge_story(real)
    assert sim == [0, 0, 1, "EINVAL", "EINVAL", True, 0, 0]
