"""The VMA tree: lookups, links, splits and merges keep it sorted and its gap index exact, and the
top-down unmapped-area search answers exactly what a walk over every VMA answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pagelab as pl
from pagelab.errors import KernelBug
from pagelab.mm.types import Vma
from pagelab.mm.vma import (
    find_vma,
    find_vma_next,
    find_vma_prev,
    vm_unmapped_area_topdown,
    vma_link,
    vma_set_range,
    vmas_in_range,
)
from pagelab.mm.vma_tree import GapIndex

P = pl.PAGE_SIZE
RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


def walk_topdown(vmas: list[Vma], length: int, low: int, high: int) -> int:
    """The search as the simulator did it before the tree: every VMA, from the top (the oracle)."""
    hi = high
    for vma in reversed(vmas):
        if vma.vm_start >= hi:
            continue
        if vma.vm_end <= hi and hi - vma.vm_end >= length and hi - length >= low:
            return hi - length
        hi = min(hi, vma.vm_start)
    return hi - length if hi - length >= low else -1


def walk_find(vmas: list[Vma], addr: int) -> Vma | None:
    return next((v for v in vmas if v.vm_end > addr), None)


def check_against_walks(mm, rnd) -> None:
    mm.vmas.check()
    vmas = list(mm.vmas)
    assert len(vmas) == len(mm.vmas)
    assert list(reversed(mm.vmas)) == vmas[::-1]
    for i, v in enumerate(vmas):
        assert mm.vmas[i] is v and mm.vmas.index(v) == i
        assert find_vma_prev(mm, v) is (vmas[i - 1] if i else None)
        assert find_vma_next(mm, v) is (vmas[i + 1] if i + 1 < len(vmas) else None)
    points = [v.vm_start for v in vmas] + [v.vm_end for v in vmas] + [rnd.randrange(0, 1 << 47) for _ in range(8)]
    for addr in points + [a - 1 for a in points if a] + [0]:
        assert find_vma(mm, addr) is walk_find(vmas, addr)
    for _ in range(8):
        lo = rnd.choice(points)
        hi = lo + rnd.randrange(0, 1 << rnd.randrange(12, 40))
        assert vmas_in_range(mm, lo, hi) == [v for v in vmas if v.vm_start < hi and v.vm_end > lo]
    high = mm.mmap_base
    for length in [P, 2 * P, 3 * P, 16 * P, 1 << 30, 1 << 46] + [rnd.randrange(1, 64) * P for _ in range(6)]:
        for low, hi in [(P, high), (1 << 16, high), (rnd.choice(points) or P, high),
                        (P, rnd.choice(points) or high), (P, rnd.randrange(P, 1 << 47) & ~(P - 1))]:
            assert vm_unmapped_area_topdown(mm, length, low, hi) == walk_topdown(vmas, length, low, hi), \
                (length, low, hi)


ops = st.lists(st.tuples(st.sampled_from(["mmap", "mmap", "hint", "fixed", "munmap", "mprotect", "madvise"]),
                         st.integers(0, 63), st.integers(1, 8), st.integers(0, 3)), min_size=1, max_size=60)


@settings(max_examples=40, deadline=None)
@given(ops, st.randoms(use_true_random=False))
def test_random_syscalls_keep_the_tree_exact(script, rnd):
    m = pl.Machine(ram="64MiB", seed=3)
    p = m.spawn("vma")
    mm = p.task.mm
    base = p.mmap(None, 64 * P, RW, ANON)
    p.munmap(base, 64 * P)  # a free window of 64 pages just below mmap_base's first mapping
    prots = [pl.PROT_READ, RW, pl.PROT_NONE, pl.PROT_READ | pl.PROT_EXEC]
    for op, page, n, k in script:
        addr = base + page * P
        try:
            if op == "mmap":
                p.mmap(None, n * P, prots[k], ANON)
            elif op == "hint":
                p.mmap(addr, n * P, prots[k], ANON)
            elif op == "fixed":
                p.mmap(addr, n * P, prots[k], ANON | pl.MAP_FIXED)
            elif op == "munmap":
                p.munmap(addr, n * P)
            elif op == "mprotect":
                p.mprotect(addr, n * P, prots[k])
            else:
                p.madvise(addr, n * P, [pl.MADV_RANDOM, pl.MADV_SEQUENTIAL, pl.MADV_NORMAL, pl.MADV_DONTNEED][k])
        except OSError:
            pass
        check_against_walks(mm, rnd)


def test_many_holes_the_search_finds_the_highest_that_fits():
    """One-page holes everywhere and a two-page hole low down: a two-page mmap goes to the two-page hole."""
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("holes")
    mm = p.task.mm
    a = p.mmap(None, 2047 * P, RW, ANON)  # not a multiple of 2 MiB: placed right below mmap_base, unpadded
    for i in range(1, 2047, 2):
        p.munmap(a + i * P, P)
    p.munmap(a + 2 * P, P)  # pages 1..3: a three-page hole at the bottom
    assert p.mmap(None, 2 * P, RW, ANON) == a + 2 * P
    assert p.mmap(None, P, RW, ANON) == a + 2045 * P  # the highest one-page hole
    assert p.mmap(None, P, RW, ANON) == a + 2043 * P
    mm.vmas.check()


def test_links_overlaps_and_stale_bounds_are_kernel_bugs():
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("bug")
    mm = p.task.mm
    a = p.mmap(None, 4 * P, RW, ANON)
    vma = find_vma(mm, a)
    clash = Vma(mm=mm, vm_start=a + P, vm_end=a + 2 * P, vm_flags=vma.vm_flags, vm_pgoff=0, vm_page_prot=0)
    with pytest.raises(KernelBug):
        vma_link(mm, clash)
    with pytest.raises(KernelBug):
        vma_link(mm, Vma(mm=mm, vm_start=a - P, vm_end=a - P, vm_flags=0, vm_pgoff=0, vm_page_prot=0))
    with pytest.raises(ValueError):
        mm.vmas.remove(clash)
    b = p.mmap(None, P, RW | pl.PROT_EXEC, ANON)
    with pytest.raises(KernelBug):
        vma_set_range(mm, find_vma(mm, b), b, a + P)  # would overlap the VMA above
    vma.vm_start += P  # assigned behind the tree's back: check() notices
    with pytest.raises(KernelBug):
        mm.vmas.check()


def test_gap_index_blocks_split_and_answer_like_a_scan():
    import random

    rnd = random.Random(5)
    gaps = GapIndex()
    ref: dict[int, int] = {}
    for _ in range(5000):
        top = rnd.randrange(0, 4000) * P
        size = rnd.choice([0, P, 2 * P, 3 * P, rnd.randrange(1, 100) * P])
        gaps.set(top, size)
        if size:
            ref[top] = size
        else:
            ref.pop(top, None)
        if rnd.random() < 0.3:
            victim = rnd.randrange(0, 4000) * P
            gaps.discard(victim)
            ref.pop(victim, None)
    assert gaps.items() == sorted(ref.items()) and len(gaps) == len(ref)
    for _ in range(500):
        bound, length = rnd.randrange(-P, 4100 * P), rnd.randrange(1, 120) * P
        want = max((t for t, s in ref.items() if t <= bound and s >= length), default=-1)
        assert gaps.highest(bound, length) == want


def test_gap_index_blocks_stay_few_under_churn():
    """Many gaps come and go: blocks join again, so there are never many more than the gaps need."""
    import random

    rnd = random.Random(9)
    gaps = GapIndex()
    live: set[int] = set()
    for round_ in range(4):
        for _ in range(4000):
            top = rnd.randrange(0, 1 << 20) * P
            gaps.set(top, P)
            live.add(top)
        for top in rnd.sample(sorted(live), len(live) - 300 * (round_ + 1)):
            gaps.discard(top)
            live.discard(top)
        assert gaps.items() == [(t, P) for t in sorted(live)]
        assert gaps.blocks() <= 2 * len(live) // 256 + 2
        assert gaps.highest(1 << 60, P) == max(live)
