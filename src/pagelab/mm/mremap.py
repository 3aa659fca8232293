"""mremap(): grow, shrink or move a mapping, its page-table entries moving with it (no faults).

Mirrors mm/mremap.c of 6.18: SYSCALL_DEFINE5(mremap) -> do_mremap() (check_mremap_params(),
vrm_remap_type()), mremap_at() (shrink_vma(), expand_vma(): vma_expandable() and
expand_vma_in_place(), else move_vma()), mremap_to() (MREMAP_FIXED and MREMAP_DONTUNMAP),
remap_is_valid(), vrm_set_new_addr(), move_vma() (prep_move_vma(), vrm_calc_charge(),
copy_vma_and_data() -> copy_vma() + move_page_tables(), dontunmap_complete(), unmap_source_vma()),
and move_page_tables() with move_huge_pmd() (a PMD leaf moves whole when both ends are 2 MiB
aligned, else it is split first), move_normal_pmd() (a whole PTE table moves when both ends are
aligned and the destination has none) and move_ptes().

The moved VMA keeps its vm_pgoff (copy_vma(): new_pgoff), so an anonymous page's rmap index and
anon_vma stay valid without touching the page; a file VMA is added to the file's i_mmap. The old
range is then unmapped with its commit charge carried over to the new VMA.

Simplified: no hugetlb, no userfaultfd, no mseal (EPERM), no VM_DONTEXPAND/VM_PFNMAP mappings
(none can be made here); page tables of the old range are freed by the munmap, as in the kernel,
but no PTE-table page is shared across a partial move (each move_ptes() copies entries).
"""

from __future__ import annotations

import dataclasses
import errno
import resource
from typing import TYPE_CHECKING

from ..arch.x86.pgtable import _PAGE_PSE, PTRS_PER_TABLE, pmd_index
from ..arch.x86.tlb import flush_tlb_mm_range
from ..constants import (
    MAP_FIXED,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE_MASK,
    PAGE_SHIFT,
    PMD_SIZE,
    TASK_SIZE,
)
from ..errors import kernel_bug, syscall_error
from ..fs.file import File
from .huge_memory import _pmd_key, split_huge_pmd
from .mmap import (
    MLOCK_LIMIT_PAGES,
    ULONG_MASK,
    _gather,
    _get_unmapped_area,
    _unmap_vmas,
    do_munmap,
    may_expand_vm,
    vm_stat_account,
    vma_merge_new_range,
)
from .pgtable import pmd_alloc, pmd_offset, pmdp_get, pte_alloc, pte_offset_map, set_entry
from .types import MmStruct, Vma, VmFlag
from .vma import (
    find_vma_intersection,
    find_vma_next,
    is_mergeable,
    merge_pair,
    vma_link,
    vma_lookup,
    vma_set_page_prot,
    vma_set_range,
)

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine

MREMAP_VALID = MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP
VM_LOCKED_MASK = VmFlag.LOCKED | VmFlag.LOCKONFAULT
MAP_SHARED_FLAG = 0x01


def _page_align(n: int) -> int:
    return (n + ~PAGE_MASK) & PAGE_MASK & ULONG_MASK


def do_mremap(task: Task, addr: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
    """Mirrors SYSCALL_DEFINE5(mremap) -> do_mremap(): returns the (new) address of the mapping.

    Errors as the kernel's, in its order: EINVAL for bad flags, an unaligned address, a zero new length,
    FIXED without MAYMOVE, DONTUNMAP with a resize, overlapping ranges; EFAULT when ``addr`` is not mapped
    or the old range runs past its VMA; ENOMEM when growing in place is impossible and moving is not
    allowed (or no room); EAGAIN when a locked mapping would pass RLIMIT_MEMLOCK.
    """
    mm = task.mm
    implies_new = bool(flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))
    # 6.18's do_mremap() page-aligns both lengths before check_mremap_params() (measured: DONTUNMAP with
    # old_len 4097 and new_len 8192 moves), which checks everything that needs no VMA before the lookup
    # (measured: a new length past TASK_SIZE or an overlapping new range is EINVAL at an unmapped address).
    old_len, new_len = _page_align(old_len), _page_align(new_len)
    # check_mremap_params()
    if flags & ~MREMAP_VALID:
        raise syscall_error(errno.EINVAL, f"mremap: unknown flags {flags:#x}")
    if addr & ~PAGE_MASK:
        raise syscall_error(errno.EINVAL, "mremap: old address not page aligned")
    if not new_len:
        raise syscall_error(errno.EINVAL, "mremap: new length is 0")
    if new_len > TASK_SIZE:
        raise syscall_error(errno.EINVAL, "mremap: new length larger than the address space")
    if implies_new:
        if new_addr > TASK_SIZE - new_len:
            raise syscall_error(errno.EINVAL, "mremap: new range outside user space")
        if new_addr & ~PAGE_MASK:
            raise syscall_error(errno.EINVAL, "mremap: new address not page aligned")
        if not flags & MREMAP_MAYMOVE:
            raise syscall_error(errno.EINVAL, "mremap: MREMAP_FIXED/MREMAP_DONTUNMAP without MREMAP_MAYMOVE")
        if flags & MREMAP_DONTUNMAP and old_len != new_len:
            raise syscall_error(errno.EINVAL, "mremap: MREMAP_DONTUNMAP with a resize")
        if (addr + old_len) & ULONG_MASK > new_addr and new_addr + new_len > addr:  # vrm_overlaps()
            raise syscall_error(errno.EINVAL, "mremap: the new range overlaps the old one")
        if len(mm.vmas) + 2 >= task.machine.settings.vm.max_map_count - 3:
            raise syscall_error(errno.ENOMEM, "mremap: too close to vm.max_map_count")
    vma = vma_lookup(mm, addr)
    if vma is None:
        raise syscall_error(errno.EFAULT, f"mremap: {addr:#x} is not mapped")
    if implies_new:
        return mremap_to(task, vma, addr, old_len, new_len, flags, new_addr)
    if old_len == new_len:  # MREMAP_NO_RESIZE
        return addr
    if old_len > new_len:  # MREMAP_SHRINK: shrink_vma()
        do_munmap(task, addr + new_len, old_len - new_len)
        return addr
    return expand_vma(task, vma, addr, old_len, new_len, flags)


def remap_is_valid(task: Task, vma: Vma, addr: int, old_len: int, new_len: int, flags: int) -> None:
    """Mirrors remap_is_valid(): can ``vma`` be moved or resized to ``new_len`` from ``addr``?"""
    if not old_len and not vma.vm_flags & (VmFlag.SHARED | VmFlag.MAYSHARE):
        raise syscall_error(errno.EINVAL, "mremap: old length 0 duplicates only shared mappings")
    if flags & MREMAP_DONTUNMAP and vma.vm_flags & (VmFlag.DONTEXPAND | VmFlag.PFNMAP):
        raise syscall_error(errno.EINVAL, "mremap: MREMAP_DONTUNMAP of a VM_DONTEXPAND/VM_PFNMAP mapping")
    if old_len > vma.vm_end - addr:
        raise syscall_error(errno.EFAULT, "mremap: the old range runs past its mapping")
    if new_len == old_len:
        return
    pgoff = ((addr - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff
    if pgoff + (new_len >> PAGE_SHIFT) > ULONG_MASK:
        raise syscall_error(errno.EINVAL, "mremap: page offset overflows")
    if vma.vm_flags & (VmFlag.DONTEXPAND | VmFlag.PFNMAP):
        raise syscall_error(errno.EFAULT, "mremap: growing a VM_DONTEXPAND/VM_PFNMAP mapping")
    delta = (new_len - old_len) >> PAGE_SHIFT
    if vma.vm_flags & VmFlag.LOCKED and not _mlock_future_ok(task, delta):
        raise syscall_error(errno.EAGAIN, "mremap: the locked mapping would pass RLIMIT_MEMLOCK")
    if not may_expand_vm(task, vma.vm_flags, delta):
        raise syscall_error(errno.ENOMEM, "mremap: growing passes RLIMIT_AS or RLIMIT_DATA")
    if new_len > TASK_SIZE:  # measured: a new length past the address space is EINVAL
        raise syscall_error(errno.EINVAL, "mremap: new length larger than the address space")


def _mlock_future_ok(task: Task, pages: int) -> bool:
    """Mirrors mlock_future_ok(): CAP_IPC_LOCK, or locked_vm + pages within RLIMIT_MEMLOCK."""
    if task.capable("CAP_IPC_LOCK"):
        return True
    soft = task.rlim.get(resource.RLIMIT_MEMLOCK, (MLOCK_LIMIT_PAGES << PAGE_SHIFT, 0))[0]
    if soft < 0 or soft >= 1 << 63:  # RLIM_INFINITY
        return True
    return task.mm.locked_vm + pages <= soft >> PAGE_SHIFT


def _vm_stat_account(task: Task, vma: Vma, pages: int) -> bool:
    """Mirrors vrm_stat_account(): total_vm/data_vm, and locked_vm for a VM_LOCKED VMA (True then)."""
    vm_stat_account(task.mm, vma.vm_flags, pages)
    if vma.vm_flags & VmFlag.LOCKED:
        task.mm.locked_vm += pages
        return True
    return False


def _charge(task: Task, vma: Vma, pages: int) -> int:
    """Mirrors vrm_calc_charge(): charge ``pages`` to the commit if the VMA is accounted; ENOMEM if refused."""
    if not vma.vm_flags & VmFlag.ACCOUNT:
        return 0
    if not task.machine.vm_enough_memory(pages):
        raise syscall_error(errno.ENOMEM, "mremap: not enough memory to commit")
    return pages


def expand_vma(task: Task, vma: Vma, addr: int, old_len: int, new_len: int, flags: int) -> int:
    """Mirrors expand_vma(): grow in place when [addr, addr + old_len) ends the VMA and the space above
    is free (vma_merge_extend()), else move (MREMAP_MAYMOVE) or ENOMEM."""
    remap_is_valid(task, vma, addr, old_len, new_len, flags)
    delta = new_len - old_len
    end = vma.vm_end + delta
    if (vma.vm_end - addr == old_len and end <= TASK_SIZE
            and find_vma_intersection(vma.mm, vma.vm_end, end) is None):
        _charge(task, vma, delta >> PAGE_SHIFT)
        old_end = vma.vm_end
        vma_set_range(vma.mm, vma, vma.vm_start, end)  # vma_merge_extend(): expand, then merge with next
        nxt = find_vma_next(vma.mm, vma)
        if nxt is not None and is_mergeable(vma, nxt):
            vma = merge_pair(vma.mm, vma, nxt)
        if _vm_stat_account(task, vma, delta >> PAGE_SHIFT):
            _populate(task, old_end, delta)
        return addr
    if not flags & MREMAP_MAYMOVE:
        raise syscall_error(errno.ENOMEM, "mremap: cannot grow in place and MREMAP_MAYMOVE not given")
    new_addr = _set_new_addr(task, vma, addr, new_len, flags, 0)
    return move_vma(task, vma, addr, old_len, new_len, flags, new_addr)


def mremap_to(task: Task, vma: Vma, addr: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
    """Mirrors mremap_to(): move to ``new_addr`` (MREMAP_FIXED: unmapping what is there first), or to a
    new place with ``new_addr`` as a hint (MREMAP_DONTUNMAP alone), shrinking first if asked."""
    mm = task.mm  # the new range and its overlap were checked by do_mremap() (check_mremap_params())
    if flags & MREMAP_FIXED:
        do_munmap(task, new_addr, new_len)
        found = vma_lookup(mm, addr)
        if found is None:
            raise syscall_error(errno.EFAULT, "mremap: the old mapping went with the new range's munmap")
        vma = found
    if old_len > new_len:
        do_munmap(task, addr + new_len, old_len - new_len)
        found = vma_lookup(mm, addr)
        if found is None:
            raise syscall_error(errno.EFAULT, "mremap: the old mapping is gone after the shrink")
        vma = found
        old_len = new_len
    remap_is_valid(task, vma, addr, old_len, new_len, flags)
    if flags & MREMAP_DONTUNMAP and not may_expand_vm(task, vma.vm_flags, old_len >> PAGE_SHIFT):
        raise syscall_error(errno.ENOMEM, "mremap: MREMAP_DONTUNMAP passes RLIMIT_AS or RLIMIT_DATA")
    new_addr = _set_new_addr(task, vma, addr, new_len, flags, new_addr)
    return move_vma(task, vma, addr, old_len, new_len, flags, new_addr)


def _set_new_addr(task: Task, vma: Vma, addr: int, new_len: int, flags: int, new_addr: int) -> int:
    """Mirrors vrm_set_new_addr(): get_unmapped_area() for the moved mapping (MAP_FIXED with
    MREMAP_FIXED, the hint otherwise; MAP_SHARED for a shared VMA; a file's offset for its alignment)."""
    map_flags = MAP_FIXED if flags & MREMAP_FIXED else 0
    if vma.vm_flags & VmFlag.MAYSHARE:
        map_flags |= MAP_SHARED_FLAG
    pgoff = vma.vm_pgoff + ((addr - vma.vm_start) >> PAGE_SHIFT)
    file_off = pgoff << PAGE_SHIFT if isinstance(vma.vm_file, File) else -1
    try:
        return _get_unmapped_area(task, new_addr, new_len, map_flags, file_off)
    except OSError as exc:
        raise syscall_error(exc.errno or errno.ENOMEM, f"mremap: {exc.strerror}") from None


def move_vma(task: Task, vma: Vma, addr: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
    """Mirrors move_vma(): copy the VMA to ``new_addr`` (copy_vma()), move the page-table entries
    (move_page_tables()), account, then unmap the old range (unmap_source_vma()) or, with
    MREMAP_DONTUNMAP, leave it mapped and empty (dontunmap_complete())."""
    m, mm = task.machine, task.mm
    if len(mm.vmas) >= m.settings.vm.max_map_count - 3:  # prep_move_vma()
        raise syscall_error(errno.ENOMEM, "mremap: too close to vm.max_map_count")
    dontunmap = bool(flags & MREMAP_DONTUNMAP)
    _charge(task, vma, (new_len if dontunmap else max(new_len - old_len, 0)) >> PAGE_SHIFT)
    new_pgoff = vma.vm_pgoff + ((addr - vma.vm_start) >> PAGE_SHIFT)
    new_vma = copy_vma(vma, new_addr, new_len, new_pgoff)
    move_page_tables(m, vma, addr, new_vma, new_addr, old_len)
    hiwater_vm = mm.hiwater_vm
    locked = _vm_stat_account(task, new_vma, new_len >> PAGE_SHIFT)
    if dontunmap:
        dontunmap_complete(vma, new_vma, addr, old_len)
    elif old_len:
        unmap_source_vma(task, addr, old_len)
    mm.hiwater_vm = hiwater_vm
    if locked and new_len > old_len:
        _populate(task, new_addr + old_len, new_len - old_len)
    return new_addr


def copy_vma(vma: Vma, new_addr: int, new_len: int, new_pgoff: int) -> Vma:
    """Mirrors copy_vma(): a VMA like ``vma`` at [new_addr, new_addr + new_len) with page offset
    ``new_pgoff``, merged with a compatible neighbour (vma_merge_new_range()) or linked new; a file
    VMA joins the file's i_mmap (get_file() + vma_link_file())."""
    mm = vma.mm
    new = dataclasses.replace(vma, vm_start=new_addr, vm_end=new_addr + new_len, vm_pgoff=new_pgoff)
    if hasattr(new, "anon_vma_chain"):  # anon_vma_clone(): the same anon_vmas, its own chain
        new.anon_vma_chain = list(vma.anon_vma_chain)
    if new.vm_file is not None:
        vma_link(mm, new)
        new.vm_file.get(new)
        return new
    return vma_merge_new_range(mm, new)


def move_page_tables(m: Machine, vma: Vma, old_addr: int, new_vma: Vma, new_addr: int, length: int) -> int:
    """Mirrors move_page_tables(): move every entry mapping [old_addr, old_addr + length) to the same
    offset from ``new_addr``, one PMD extent at a time: a PMD leaf whole when the extent is a whole
    aligned 2 MiB at both ends (move_huge_pmd(), its deposited table with it), else split first; a
    whole PTE table when both ends are aligned and the destination has none (move_normal_pmd());
    otherwise PTE by PTE (move_ptes()). No page is touched, so nothing faults. Returns the bytes moved."""
    mm = vma.mm
    old_end = old_addr + length
    addr, dst = old_addr, new_addr
    while addr < old_end:
        extent = min(old_end - addr, PMD_SIZE - (addr & (PMD_SIZE - 1)), PMD_SIZE - (dst & (PMD_SIZE - 1)))
        old_pmd = pmd_offset(m, mm, addr)
        if not old_pmd or not pmdp_get(m, old_pmd, addr):
            addr, dst = addr + extent, dst + extent
            continue
        entry = pmdp_get(m, old_pmd, addr)
        huge = bool(entry & _PAGE_PSE)
        if extent == PMD_SIZE:  # a whole PMD's worth, both sides aligned: move the entry (move_pgt_entry())
            new_pmd = pmd_alloc(m, mm, dst)
            kernel_bug(not new_pmd, "move_page_tables: no memory for a PMD table")
            if not pmdp_get(m, new_pmd, dst):
                _move_pmd_entry(m, mm, old_pmd, addr, new_pmd, dst, entry, huge=huge)
                addr, dst = addr + extent, dst + extent
                continue
        if huge:
            split_huge_pmd(m, vma, old_pmd, addr)
        move_ptes(m, vma, old_pmd, addr, addr + extent, dst)
        addr, dst = addr + extent, dst + extent
    flush_tlb_mm_range(m, mm, old_addr, old_end)
    return length


def _move_pmd_entry(m: Machine, mm: MmStruct, old_pmd: int, addr: int, new_pmd: int, dst: int, entry: int,
                    huge: bool) -> None:
    """Mirrors move_huge_pmd() / move_normal_pmd(): the PMD entry (a leaf, or a PTE-table pointer) moves."""
    set_entry(m, old_pmd, pmd_index(addr), 0)
    set_entry(m, new_pmd, pmd_index(dst), entry)
    if huge:
        key = _pmd_key(old_pmd, addr)
        if key in mm.pmd_huge_pte:  # pgtable_trans_huge_withdraw() + deposit at the new PMD
            mm.pmd_huge_pte[_pmd_key(new_pmd, dst)] = mm.pmd_huge_pte.pop(key)


def move_ptes(m: Machine, vma: Vma, old_pmd: int, addr: int, end: int, dst: int) -> None:
    """Mirrors move_ptes(): each non-empty PTE of [addr, end) (one PTE table) is cleared and set at the
    same offset from ``dst`` (get_and_clear, set_pte_at), with its A/D/RW bits and its page."""
    old_pte = pte_offset_map(m, old_pmd, addr)
    if not old_pte:
        return
    new_pmd = pmd_alloc(m, vma.mm, dst)
    kernel_bug(not new_pmd, "move_ptes: no memory for a PMD table")
    new_pte = pte_alloc(m, vma.mm, new_pmd, dst)
    kernel_bug(not new_pte, "move_ptes: no memory for a PTE table")
    tables = m.ptpool.tables
    lo = (addr >> PAGE_SHIFT) & (PTRS_PER_TABLE - 1)
    n = (end - addr) >> PAGE_SHIFT
    for i in (tables[old_pte, lo:lo + n].nonzero()[0]).tolist():
        src_idx = lo + i
        val = int(tables[old_pte, src_idx])
        set_entry(m, old_pte, src_idx, 0)
        set_entry(m, new_pte, ((dst >> PAGE_SHIFT) + i) & (PTRS_PER_TABLE - 1), val)


def unmap_source_vma(task: Task, addr: int, length: int) -> None:
    """Mirrors unmap_source_vma(): munmap the old range; an accounted VMA's charge is not given back
    (the moved VMA holds it), so its VM_ACCOUNT is cleared for the unmap and kept on what remains."""
    mm = task.mm
    first = find_vma_intersection(mm, addr, addr + length)
    if first is None:
        return
    vmas = _gather(mm, addr, addr + length)
    _unmap_vmas(task, vmas, addr, addr + length, unaccount=False)


def dontunmap_complete(vma: Vma, new_vma: Vma, addr: int, length: int) -> None:
    """Mirrors dontunmap_complete(): the old VMA stays, now empty, without VM_LOCKED(ONFAULT) (locked_vm
    is not lowered: the kernel's own bookkeeping); its anon_vma link goes when the whole VMA was moved.
    It keeps VM_ACCOUNT on 6.18 (measured: a 1 GiB MREMAP_DONTUNMAP charges 1 GiB more, and unmapping
    the old range gives 1 GiB back)."""
    vma.vm_flags &= ~VM_LOCKED_MASK
    vma_set_page_prot(vma)
    if new_vma is not vma and addr == vma.vm_start and addr + length == vma.vm_end and vma.anon_vma is not None:
        chain = list(getattr(vma, "anon_vma_chain", [vma.anon_vma]))
        for anon_vma in chain:  # unlink_anon_vmas()
            anon_vma.vma_unlink(vma)
        if hasattr(vma, "anon_vma_chain"):
            vma.anon_vma_chain = []
        vma.anon_vma = None


def _populate(task: Task, start: int, length: int) -> None:
    """The mm_populate() do_mremap() runs after growing a VM_LOCKED mapping."""
    from .madvise import mm_populate
    mm_populate(task, start, length)


# --- KSM's VMA flags (mm/ksm.c), for prctl(PR_SET_MEMORY_MERGE) --------------------------------------

def vma_ksm_compatible(vma: Vma) -> bool:
    """Mirrors vma_ksm_compatible(): private mappings (anonymous or file) that are not special."""
    return not vma.vm_flags & (VmFlag.SHARED | VmFlag.MAYSHARE | VmFlag.PFNMAP | VmFlag.IO | VmFlag.DONTEXPAND
                               | VmFlag.HUGETLB | VmFlag.MIXEDMAP)


def ksm_vma_flags(mm: MmStruct, file: object, vm_flags: int) -> int:
    """Mirrors ksm_vma_flags(): a new private mapping of an mm with MMF_VM_MERGE_ANY is VM_MERGEABLE."""
    from .types import MMF_VM_MERGE_ANY
    special = VmFlag.SHARED | VmFlag.MAYSHARE | VmFlag.PFNMAP | VmFlag.IO | VmFlag.DONTEXPAND | VmFlag.HUGETLB \
        | VmFlag.MIXEDMAP
    if mm.flags & MMF_VM_MERGE_ANY and not vm_flags & special:
        return vm_flags | VmFlag.MERGEABLE
    return vm_flags
