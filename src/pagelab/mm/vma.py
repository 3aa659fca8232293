"""The VMAs of an address space: lookup, placement, split and merge.

Mirrors mm/vma.c and mm/mmap.c: find_vma(), find_vma_intersection(), the top-down
unmapped-area search (mm/mmap.c: generic_get_unmapped_area_topdown() -> vm_unmapped_area()),
__split_vma() and split_vma() (with vm.max_map_count), vma_modify_flags() and the merge rules of
is_mergeable_vma()/is_mergeable_anon_vma().
The VMAs live in a VmaTree (mm/vma_tree.py: the maple tree's part), so lookup, link, unlink, split,
merge and the unmapped-area search each cost O(log n) in the number of VMAs, as in the kernel.
Simplified: no stack VMA, so no guard gaps.
"""

from __future__ import annotations

import errno

from ..arch.x86.pgtable import (
    PAGE_COPY_EXEC,
    PAGE_COPY_NOEXEC,
    PAGE_NONE,
    PAGE_READONLY,
    PAGE_READONLY_EXEC,
    PAGE_SHARED,
    PAGE_SHARED_EXEC,
)
from ..constants import PAGE_SHIFT, PAGE_SIZE, TASK_SIZE
from ..errors import syscall_error
from .types import MmStruct, Vma, VmFlag


def vm_get_page_prot(vm_flags: int) -> int:
    """Mirrors vm_get_page_prot() / protection_map[] (mm/mmap.c, arch/x86/mm/pgprot.c).

    Private writable mappings get read-only PTEs (PAGE_COPY): a write must fault to copy or allocate.
    """
    r = bool(vm_flags & VmFlag.READ)
    w = bool(vm_flags & VmFlag.WRITE)
    x = bool(vm_flags & VmFlag.EXEC)
    if not (r or w or x):
        return PAGE_NONE
    if vm_flags & VmFlag.SHARED and w:
        return PAGE_SHARED_EXEC if x else PAGE_SHARED
    if w:
        return PAGE_COPY_EXEC if x else PAGE_COPY_NOEXEC
    return PAGE_READONLY_EXEC if x else PAGE_READONLY


def vma_wants_writenotify(vma: Vma) -> bool:
    """Mirrors vma_wants_writenotify(): a shared writable mapping whose file wants to know of the first
    write to each page (->page_mkwrite: a regular file on ext4; not shmem)."""
    f = vma.vm_flags
    if (f & (VmFlag.WRITE | VmFlag.SHARED)) != (VmFlag.WRITE | VmFlag.SHARED):
        return False
    return vma.vm_ops is not None and vma.vm_ops.page_mkwrite is not None


def vma_page_prot(vma: Vma) -> int:
    """The PTE protection vma_set_page_prot() gives ``vma``: its flags', read-only (as if private) where
    write-notify wants the first write to each page to fault."""
    flags = vma.vm_flags
    if vma_wants_writenotify(vma):
        flags &= ~VmFlag.SHARED
    return vm_get_page_prot(flags)


def vma_set_page_prot(vma: Vma) -> None:
    """Mirrors vma_set_page_prot()."""
    vma.vm_page_prot = vma_page_prot(vma)


def find_vma(mm: MmStruct, addr: int) -> Vma | None:
    """Mirrors find_vma(): the first VMA with vm_end > addr (it may start above addr), or None."""
    return mm.vmas.find(addr)


def vma_lookup(mm: MmStruct, addr: int) -> Vma | None:
    """Mirrors vma_lookup(): the VMA containing addr, or None."""
    vma = mm.vmas.find(addr)
    return vma if vma is not None and vma.vm_start <= addr else None


def find_vma_intersection(mm: MmStruct, start: int, end: int) -> Vma | None:
    """Mirrors find_vma_intersection(): the first VMA that overlaps [start, end)."""
    vma = mm.vmas.find(start)
    return vma if vma is not None and vma.vm_start < end else None


def vmas_in_range(mm: MmStruct, start: int, end: int) -> list[Vma]:
    """The VMAs overlapping [start, end), in address order (a snapshot list)."""
    return mm.vmas.in_range(start, end)


def find_vma_prev(mm: MmStruct, vma: Vma) -> Vma | None:
    """Mirrors vma_prev(): the VMA directly below ``vma`` in address order, or None."""
    return mm.vmas.prev(vma)


def find_vma_next(mm: MmStruct, vma: Vma) -> Vma | None:
    """Mirrors vma_next(): the VMA directly above ``vma`` in address order, or None."""
    return mm.vmas.next(vma)


def vma_link(mm: MmStruct, vma: Vma) -> None:
    """Mirrors vma_link(): insert a VMA into the address space (KernelBug if it overlaps one), and into
    its anon_vma's set of VMAs (anon_vma_clone()), so reverse-map walks find it."""
    mm.vmas.add(vma)
    for anon_vma in vma.anon_vma_chain:
        anon_vma.vma_link(vma)


def vma_unlink(mm: MmStruct, vma: Vma) -> None:
    """Mirrors vma_iter_clear() + unlink_anon_vmas() on unmap: take a VMA out of the address space.

    Its file mapping (i_mmap) is left to the file's put(), which the caller makes."""
    mm.vmas.remove(vma)
    for anon_vma in vma.anon_vma_chain:
        anon_vma.vma_unlink(vma)


def vma_set_range(mm: MmStruct, vma: Vma, start: int, end: int) -> None:
    """Mirrors vma_set_range() + vma_iter_store(): move a linked VMA's bounds (vm_pgoff is the caller's).

    The only way a linked VMA's vm_start or vm_end may change: the tree is keyed by them.
    """
    mm.vmas.set_range(vma, start, end)


def vma_pages(vma: Vma) -> int:
    return (vma.vm_end - vma.vm_start) >> PAGE_SHIFT


def linear_page_index(vma: Vma, addr: int) -> int:
    """Mirrors linear_page_index(): the file (or anon) page offset that ``addr`` maps."""
    return ((addr - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff


def vm_unmapped_area_topdown(mm: MmStruct, length: int, low_limit: int, high_limit: int) -> int:
    """Mirrors unmapped_area_topdown(): the highest gap of ``length`` bytes below ``high_limit``.

    As Linux asks the maple tree's gap tracking (mas_empty_area_rev()), this asks the VMA tree's gap
    index, so the search costs O(log n), not a walk over every VMA. Returns the start address, or
    -ENOMEM's stand-in -1.
    """
    return mm.vmas.highest_gap(length, low_limit, high_limit)


def get_unmapped_area(mm: MmStruct, addr: int, length: int, fixed: bool) -> int:
    """Mirrors __get_unmapped_area() for anonymous memory; -1 means ENOMEM.

    A MAP_FIXED address is returned as is; a hint is used (rounded down to a page) when the range is
    free and inside [mmap_min_addr, TASK_SIZE]; otherwise the search runs top-down from mmap_base.
    """
    if length > TASK_SIZE:
        return -1
    if fixed:
        return addr
    low = max(PAGE_SIZE, mm.machine.settings.vm.mmap_min_addr)
    if addr:
        addr &= ~(PAGE_SIZE - 1)
        if (addr >= low and TASK_SIZE - length >= addr
                and find_vma_intersection(mm, addr, addr + length) is None):
            return addr
    return vm_unmapped_area_topdown(mm, length, low, mm.mmap_base)


def split_vma(mm: MmStruct, vma: Vma, addr: int, new_below: bool) -> Vma:
    """Mirrors __split_vma(): cut ``vma`` at ``addr``; returns the new VMA (below or above ``addr``).

    Both halves keep the anon_vma and the file; the upper half's pgoff moves with it. A PMD leaf that
    straddles ``addr`` is split first (vma_adjust_trans_huge()).
    """
    from .huge_memory import vma_adjust_trans_huge  # huge_memory builds on this module

    vma_adjust_trans_huge(vma, addr)
    new = Vma(mm=mm, vm_start=vma.vm_start, vm_end=vma.vm_end, vm_flags=vma.vm_flags,
              vm_pgoff=vma.vm_pgoff, vm_page_prot=vma.vm_page_prot, vm_file=vma.vm_file,
              anon_vma=vma.anon_vma, anon_vma_chain=list(vma.anon_vma_chain), vm_ops=vma.vm_ops)
    if new_below:
        new.vm_end = addr
        vma.vm_pgoff += (addr - vma.vm_start) >> PAGE_SHIFT
        vma_set_range(mm, vma, addr, vma.vm_end)
    else:
        new.vm_start = addr
        new.vm_pgoff += (addr - vma.vm_start) >> PAGE_SHIFT
        vma_set_range(mm, vma, vma.vm_start, addr)
    vma_link(mm, new)
    if new.vm_file is not None:
        new.vm_file.get(new)
    return new


def is_mergeable(a: Vma, b: Vma) -> bool:
    """Mirrors is_mergeable_vma() + is_mergeable_anon_vma() for ``a`` directly below ``b``.

    Same flags, same file with contiguous offsets, and anon_vmas that are equal, or only one of them set
    on a VMA that was not forked with its parents' anon_vmas (vma_had_uncowed_parents(): its
    anon_vma_chain holds more than its own).
    """
    if a.vm_end != b.vm_start or a.vm_flags != b.vm_flags or a.vm_file is not b.vm_file:
        return False
    if a.vm_pgoff + vma_pages(a) != b.vm_pgoff:
        return False
    if a.anon_vma is None or b.anon_vma is None:
        return len(a.anon_vma_chain) <= 1 and len(b.anon_vma_chain) <= 1
    return a.anon_vma == b.anon_vma


def merge_pair(mm: MmStruct, a: Vma, b: Vma) -> Vma:
    """Merge ``b`` into ``a`` (a directly below b); returns the survivor ``a``."""
    if a.anon_vma is None and b.anon_vma is not None:
        a.anon_vma, a.anon_vma_chain = b.anon_vma, list(b.anon_vma_chain)  # dup_anon_vma()
        for anon_vma in a.anon_vma_chain:
            anon_vma.vma_link(a)
    vma_unlink(mm, b)
    vma_set_range(mm, a, a.vm_start, b.vm_end)
    if b.vm_file is not None:
        b.vm_file.put(b)
    return a


def vma_try_merge(mm: MmStruct, vma: Vma) -> Vma:
    """Mirrors vma_merge_existing_range() after a change: merge ``vma`` with its neighbours if allowed."""
    prev = find_vma_prev(mm, vma)
    if prev is not None and is_mergeable(prev, vma):
        vma = merge_pair(mm, prev, vma)
    nxt = find_vma_next(mm, vma)
    if nxt is not None and is_mergeable(vma, nxt):
        vma = merge_pair(mm, vma, nxt)
    return vma


def vma_modify(mm: MmStruct, vma: Vma, start: int, end: int) -> Vma:
    """Mirrors the split half of vma_modify(): return a VMA covering exactly [start, end) of ``vma``."""
    if vma.vm_start < start:
        split_vma(mm, vma, start, new_below=True)
    if vma.vm_end > end:
        split_vma(mm, vma, end, new_below=False)
    return vma


def split_vma_checked(mm: MmStruct, vma: Vma, addr: int, new_below: bool) -> Vma:
    """Mirrors split_vma(): ENOMEM when the mm already holds vm.max_map_count VMAs, else __split_vma()."""
    if len(mm.vmas) >= mm.machine.settings.vm.max_map_count:
        raise syscall_error(errno.ENOMEM, "split would exceed vm.max_map_count")
    return split_vma(mm, vma, addr, new_below)


def vma_modify_flags(mm: MmStruct, vma: Vma, start: int, end: int, newflags: int) -> Vma:
    """Mirrors vma_modify_flags() -> vma_modify(): give [start, end) of ``vma`` the flags ``newflags``.

    First the merge: if the range touches an end of ``vma`` and the neighbour there is compatible with
    the new flags (vma_merge_existing_range()), no VMA is added. Otherwise each needed split goes
    through split_vma() and its vm.max_map_count check; a second split that fails leaves the first in
    place, as in the kernel. Returns the VMA now holding [start, end) (merged with its neighbours).
    """
    if not _merges_existing(mm, vma, start, end, newflags):
        if vma.vm_start < start:
            split_vma_checked(mm, vma, start, new_below=True)
        if vma.vm_end > end:
            split_vma_checked(mm, vma, end, new_below=False)
    vma = vma_modify(mm, vma, start, end)
    vma.vm_flags = newflags
    vma_set_page_prot(vma)
    return vma_try_merge(mm, vma)


def _merges_existing(mm: MmStruct, vma: Vma, start: int, end: int, newflags: int) -> bool:
    """Mirrors vma_merge_existing_range()'s decision: does [start, end) with ``newflags`` join a neighbour?"""
    piece = Vma(mm=mm, vm_start=start, vm_end=end, vm_flags=newflags,
                vm_pgoff=vma.vm_pgoff + ((start - vma.vm_start) >> PAGE_SHIFT), vm_page_prot=0,
                vm_file=vma.vm_file, anon_vma=vma.anon_vma, anon_vma_chain=vma.anon_vma_chain, vm_ops=vma.vm_ops)
    if start == vma.vm_start:
        prev = find_vma_prev(mm, vma)
        if prev is not None and is_mergeable(prev, piece):
            return True
    if end == vma.vm_end:
        nxt = find_vma_next(mm, vma)
        if nxt is not None and is_mergeable(piece, nxt):
            return True
    return False
