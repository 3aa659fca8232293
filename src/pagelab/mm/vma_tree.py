"""The VMAs of one address space, in address order, with the free gaps between them indexed.

Mirrors the maple tree of struct mm_struct (mm->mm_mt, lib/maple_tree.c) as mm/ uses it: find_vma() (a
walk to the first VMA ending above an address), vma_prev()/vma_next(), vma_iter_store() and
vma_iter_clear() (link, unlink, resize), and the gap tracking of its allocation-range nodes that lets
unmapped_area_topdown() ask mas_empty_area_rev() for the highest free gap of a given size without
visiting every VMA. Each operation is O(log n) in the number of VMAs (the gap search O(n / 256) block
maxima at worst, a few hundred compares at vm.max_map_count).

Simplified: a sortedcontainers SortedDict keyed by vm_start holds the VMAs instead of a maple tree, and
the gaps live in a two-level blocked list: gap sizes in blocks of at most 512, keyed by the start of the
VMA above each gap, with each block's largest gap beside it (as a maple node keeps a gap per slot and its
largest in the parent). A linked VMA's bounds change only through ``set_range()`` (vma_set_range() +
vma_iter_store()), never by assignment: the tree is keyed by them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sortedcontainers import SortedDict

from ..errors import KernelBug, kernel_bug

if TYPE_CHECKING:
    from .types import Vma

_LOAD = 256  # a gap block splits in two past 2 * _LOAD entries and joins a neighbour below _LOAD / 2


class GapIndex:
    """Free gaps keyed by their top (the start of the VMA above), in blocks with each block's largest.

    ``highest(bound, length)`` is mas_empty_area_rev()'s question: the highest top at or below ``bound``
    whose gap is at least ``length`` long. Gaps of size 0 (adjacent VMAs) are not kept.
    """

    __slots__ = ("_tops", "_sizes", "_maxes", "_firsts")

    def __init__(self) -> None:
        self._tops: list[list[int]] = []  # per block, ascending
        self._sizes: list[list[int]] = []  # per block, the gap below each top
        self._maxes: list[int] = []  # per block, its largest gap
        self._firsts: list[int] = []  # per block, its lowest top (what a key is bisected against)

    def __len__(self) -> int:
        return sum(len(t) for t in self._tops)

    def _block(self, top: int) -> int:
        return max(bisect_right(self._firsts, top) - 1, 0)

    def set(self, top: int, size: int) -> None:
        """Record the gap of ``size`` bytes below ``top`` (size 0 forgets it)."""
        if size <= 0:
            self.discard(top)
            return
        if not self._tops:
            self._tops.append([top])
            self._sizes.append([size])
            self._maxes.append(size)
            self._firsts.append(top)
            return
        b = self._block(top)
        tops, sizes = self._tops[b], self._sizes[b]
        j = bisect_left(tops, top)
        if j < len(tops) and tops[j] == top:
            old, sizes[j] = sizes[j], size
            if size >= self._maxes[b]:
                self._maxes[b] = size
            elif old == self._maxes[b]:
                self._maxes[b] = max(sizes)
            return
        tops.insert(j, top)
        sizes.insert(j, size)
        self._firsts[b] = tops[0]
        self._maxes[b] = max(self._maxes[b], size)
        if len(tops) > 2 * _LOAD:
            self._split(b)

    def _split(self, b: int) -> None:
        """Cut block ``b`` in two halves."""
        tops, sizes = self._tops[b], self._sizes[b]
        half = len(tops) // 2
        self._tops.insert(b + 1, tops[half:])
        self._sizes.insert(b + 1, sizes[half:])
        del tops[half:], sizes[half:]
        self._maxes[b:b + 1] = [max(sizes), max(self._sizes[b + 1])]
        self._firsts.insert(b + 1, self._tops[b + 1][0])

    def _join(self, b: int) -> None:
        """Fold a block that has shrunk below half a load into a neighbour (splitting again if too big),
        so the number of blocks stays within twice the gaps over _LOAD, whatever came and went."""
        lo = b if b + 1 < len(self._tops) else b - 1
        self._tops[lo] += self._tops.pop(lo + 1)
        self._sizes[lo] += self._sizes.pop(lo + 1)
        del self._maxes[lo + 1], self._firsts[lo + 1]
        self._maxes[lo] = max(self._sizes[lo])
        if len(self._tops[lo]) > 2 * _LOAD:
            self._split(lo)

    def discard(self, top: int) -> None:
        """Forget the gap below ``top``, if one is recorded."""
        if not self._tops:
            return
        b = self._block(top)
        tops, sizes = self._tops[b], self._sizes[b]
        j = bisect_left(tops, top)
        if j == len(tops) or tops[j] != top:
            return
        del tops[j]
        old = sizes.pop(j)
        if not tops:
            del self._tops[b], self._sizes[b], self._maxes[b], self._firsts[b]
            return
        self._firsts[b] = tops[0]
        if old == self._maxes[b]:
            self._maxes[b] = max(sizes)
        if len(tops) < _LOAD // 2 and len(self._tops) > 1:
            self._join(b)

    def blocks(self) -> int:
        return len(self._tops)

    def highest(self, bound: int, length: int) -> int:
        """The highest top <= ``bound`` with a gap of at least ``length`` below it, or -1."""
        b = bisect_right(self._firsts, bound) - 1
        if b < 0:
            return -1
        sizes = self._sizes[b]
        for j in range(bisect_right(self._tops[b], bound) - 1, -1, -1):
            if sizes[j] >= length:
                return self._tops[b][j]
        maxes = self._maxes
        for lower in range(b - 1, -1, -1):
            if maxes[lower] >= length:
                sizes = self._sizes[lower]
                for j in range(len(sizes) - 1, -1, -1):
                    if sizes[j] >= length:
                        return self._tops[lower][j]
        return -1

    def items(self) -> list[tuple[int, int]]:
        """Every (top, size), ascending (for checks)."""
        return [(t, s) for tops, sizes in zip(self._tops, self._sizes, strict=True)
                for t, s in zip(tops, sizes, strict=True)]


class VmaTree:
    """The VMAs of an mm in address order: ``len()``, iteration (also ``reversed()``), ``[i]``, and
    the lookups and updates mm/ needs, each O(log n). The gap below each VMA is kept in a GapIndex;
    each VMA's neighbours are linked, as vm_prev/vm_next were before the maple tree, so vma_prev() and
    vma_next() cost a dict lookup."""

    __slots__ = ("_by_start", "_prev", "_next", "gaps")

    def __init__(self) -> None:
        self._by_start: SortedDict = SortedDict()  # vm_start -> Vma
        self._prev: dict[int, Vma | None] = {}  # vm_start -> the VMA below
        self._next: dict[int, Vma | None] = {}  # vm_start -> the VMA above
        self.gaps = GapIndex()

    # --- a read-only sequence ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_start)

    def __bool__(self) -> bool:
        return bool(self._by_start)

    def __iter__(self) -> Iterator[Vma]:
        """A snapshot of the VMAs, lowest first: the tree may change while the caller walks it."""
        vmas: list[Vma] = list(self._by_start.values())
        return iter(vmas)

    def __reversed__(self) -> Iterator[Vma]:
        vmas: list[Vma] = list(self._by_start.values())
        return reversed(vmas)

    def __getitem__(self, i: int) -> Vma:
        vma: Vma = self._by_start.peekitem(i)[1]
        return vma

    def __contains__(self, vma: object) -> bool:
        start = getattr(vma, "vm_start", None)
        return start is not None and self._by_start.get(start) is vma

    def index(self, vma: Vma) -> int:
        """The position of ``vma`` in address order (ValueError if it is not linked)."""
        self._linked(vma)
        i: int = self._by_start.index(vma.vm_start)
        return i

    def _linked(self, vma: Vma) -> None:
        if self._by_start.get(vma.vm_start) is not vma:
            raise ValueError(f"VMA {vma.vm_start:#x}-{vma.vm_end:#x} is not in this tree")

    # --- lookups ------------------------------------------------------------------------------
    def _at_or_below(self, addr: int) -> Vma | None:
        """The VMA with the highest vm_start <= addr, or None."""
        i = self._by_start.bisect_right(addr)
        if not i:
            return None
        vma: Vma = self._by_start.peekitem(i - 1)[1]
        return vma

    def find(self, addr: int) -> Vma | None:
        """Mirrors find_vma(): the first VMA with vm_end > addr (it may start above addr), or None."""
        vma = self._at_or_below(addr)
        if vma is None:
            return self._by_start.peekitem(0)[1] if self._by_start else None
        return vma if vma.vm_end > addr else self._next[vma.vm_start]

    def prev(self, vma: Vma) -> Vma | None:
        """Mirrors vma_prev(): the VMA below ``vma``, or None."""
        self._linked(vma)
        return self._prev[vma.vm_start]

    def next(self, vma: Vma) -> Vma | None:
        """Mirrors vma_next(): the VMA above ``vma``, or None."""
        self._linked(vma)
        return self._next[vma.vm_start]

    def in_range(self, start: int, end: int) -> list[Vma]:
        """The VMAs overlapping [start, end), in address order."""
        out = []
        vma = self.find(start)
        while vma is not None and vma.vm_start < end:
            out.append(vma)
            vma = self._next[vma.vm_start]
        return out

    # --- updates (vma_iter_store / vma_iter_clear) ----------------------------------------------
    def add(self, vma: Vma) -> None:
        """Link ``vma``; it must not overlap a linked VMA."""
        start, end = vma.vm_start, vma.vm_end
        below = self._at_or_below(start)
        if below is not None:
            above = self._next[below.vm_start]
        else:
            above = self._by_start.peekitem(0)[1] if self._by_start else None
        if start >= end or (below is not None and below.vm_end > start) or (above is not None
                                                                            and above.vm_start < end):
            raise KernelBug(f"vma_link: {start:#x}-{end:#x} is empty or overlaps a mapped VMA")
        self._by_start[start] = vma
        self._prev[start], self._next[start] = below, above
        if below is not None:
            self._next[below.vm_start] = vma
        if above is not None:
            self._prev[above.vm_start] = vma
            self.gaps.set(above.vm_start, above.vm_start - end)
        self.gaps.set(start, start - (below.vm_end if below is not None else 0))

    def remove(self, vma: Vma) -> None:
        """Unlink ``vma`` (ValueError if it is not linked)."""
        self._linked(vma)
        start = vma.vm_start
        del self._by_start[start]
        below, above = self._prev.pop(start), self._next.pop(start)
        self.gaps.discard(start)
        if below is not None:
            self._next[below.vm_start] = above
        if above is not None:
            self._prev[above.vm_start] = below
            self.gaps.set(above.vm_start, above.vm_start - (below.vm_end if below is not None else 0))

    def set_range(self, vma: Vma, start: int, end: int) -> None:
        """Mirrors vma_set_range() + vma_iter_store(): move a linked VMA's bounds to [start, end)."""
        if start != vma.vm_start:
            self.remove(vma)
            vma.vm_start, vma.vm_end = start, end
            self.add(vma)
            return
        self._linked(vma)
        above = self._next[start]
        if end <= start or (above is not None and end > above.vm_start):
            raise KernelBug(f"vma_set_range: {start:#x}-{end:#x} is empty or overlaps the next VMA")
        vma.vm_end = end
        if above is not None:
            self.gaps.set(above.vm_start, above.vm_start - end)

    def clear(self) -> None:
        self._by_start.clear()
        self._prev.clear()
        self._next.clear()
        self.gaps = GapIndex()

    # --- the gap search -------------------------------------------------------------------------
    def highest_gap(self, length: int, low_limit: int, high_limit: int) -> int:
        """Mirrors unmapped_area_topdown(): the highest start of ``length`` free bytes in [low_limit, high_limit).

        The gap that reaches ``high_limit`` (clipped to it) is looked at first, then the GapIndex for
        gaps wholly below the VMA under ``high_limit``. Returns -1 (ENOMEM) if none fits.
        """
        top_vma = self._at_or_below(high_limit - 1)  # the highest VMA starting below high_limit
        if top_vma is None or high_limit - top_vma.vm_end >= length:
            return high_limit - length if high_limit - length >= low_limit else -1
        top = self.gaps.highest(top_vma.vm_start, length)
        return top - length if top >= 0 and top - length >= low_limit else -1

    def check(self) -> None:
        """Raise KernelBug unless the VMAs are sorted, non-empty, disjoint, linked in order, and the gaps
        index them exactly (CONFIG_DEBUG_VM_MAPLE_TREE's validate_mm() in spirit)."""
        prev_end = 0
        want = []
        below = None
        for start, vma in self._by_start.items():
            kernel_bug(start != vma.vm_start, f"vma tree: keyed {start:#x}, VMA starts at {vma.vm_start:#x}")
            kernel_bug(self._prev.get(start, vma) is not below or (below is not None
                       and self._next.get(below.vm_start) is not vma), f"vma tree: links broken at {start:#x}")
            below = vma
            kernel_bug(vma.vm_start >= vma.vm_end, f"vma tree: empty or inverted VMA at {start:#x}")
            kernel_bug(vma.vm_start < prev_end, f"vma tree: VMA at {start:#x} overlaps the one below")
            if vma.vm_start > prev_end:
                want.append((vma.vm_start, vma.vm_start - prev_end))
            prev_end = vma.vm_end
        kernel_bug(below is not None and self._next.get(below.vm_start, below) is not None,
                   "vma tree: the last VMA has a next")
        kernel_bug(len(self._prev) != len(self._by_start) or len(self._next) != len(self._by_start),
                   "vma tree: stale links")
        kernel_bug(self.gaps.items() != want, "vma tree: the gap index disagrees with the VMAs")
