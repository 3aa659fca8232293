"""mmap() and munmap() for anonymous memory: argument checks, placement, VMA creation and removal.

Mirrors arch/x86/kernel/sys_x86_64.c: sys_mmap(); mm/mmap.c: ksys_mmap_pgoff(), do_mmap(),
round_hint_to_min(), accountable_mapping(); mm/vma.c: mmap_region() -> __mmap_region(),
do_vmi_munmap() -> do_vmi_align_munmap(), vm_stat_account(). Each check returns the errno the
real kernel returns, in the kernel's order (checked against the host kernel in tests/real/).

Simplified: anonymous mappings only (file mappings come with the page cache); no RLIMIT_AS; no
MAP_HUGETLB, MAP_GROWSDOWN stacks, MAP_LOCKED or MAP_POPULATE (mlock and populate come later).
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from ..arch.x86.tlb import flush_tlb_mm_range
from ..constants import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_GROWSDOWN,
    MAP_HUGETLB,
    MAP_LOCKED,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_TYPE,
    PAGE_MASK,
    PAGE_SHIFT,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    TASK_SIZE,
    page_align,
)
from ..errors import NotModelled
from .memory import zap_pte_range
from .pgtable import free_pgtables
from .shmem import ShmemFile
from .swap import lru_add_drain
from .types import MmStruct, Vma, VmFlag
from .vma import (
    find_vma_intersection,
    get_unmapped_area,
    is_mergeable,
    merge_pair,
    split_vma,
    vm_get_page_prot,
    vma_link,
    vma_set_range,
    vma_unlink,
    vmas_in_range,
)

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine


def syscall_error(code: int, what: str) -> OSError:
    return OSError(code, f"{what}: {errno.errorcode[code]} ({os.strerror(code)})")


def calc_vm_prot_bits(prot: int) -> int:
    """Mirrors calc_vm_prot_bits(): PROT_* -> VM_READ/WRITE/EXEC (other bits are ignored)."""
    flags = VmFlag.NONE
    if prot & PROT_READ:
        flags |= VmFlag.READ
    if prot & PROT_WRITE:
        flags |= VmFlag.WRITE
    if prot & PROT_EXEC:
        flags |= VmFlag.EXEC
    return flags


def do_mmap(task: Task, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    """Mirrors sys_mmap() -> ksys_mmap_pgoff() -> do_mmap() -> mmap_region() for anonymous memory."""
    mm, m = task.mm, task.machine
    if offset & ~PAGE_MASK:
        raise syscall_error(errno.EINVAL, "mmap: offset not page aligned")
    if not flags & MAP_ANONYMOUS:
        if fd < 0:
            raise syscall_error(errno.EBADF, "mmap: no MAP_ANONYMOUS and no file descriptor")
        raise NotModelled("mmap of files comes with the page cache")
    if flags & (MAP_HUGETLB | MAP_GROWSDOWN | MAP_LOCKED | MAP_POPULATE):
        raise NotModelled("mmap: MAP_HUGETLB, MAP_GROWSDOWN, MAP_LOCKED and MAP_POPULATE are not modelled yet")
    if length == 0:
        raise syscall_error(errno.EINVAL, "mmap: length is 0")
    if flags & MAP_FIXED_NOREPLACE:
        flags |= MAP_FIXED
    if not flags & MAP_FIXED:
        addr = round_hint_to_min(m, addr)
    length = page_align(length) & ((1 << 64) - 1)
    if length == 0 or length >= 1 << 64:
        raise syscall_error(errno.ENOMEM, "mmap: length overflows")
    if len(mm.vmas) > m.settings.vm.max_map_count:
        raise syscall_error(errno.ENOMEM, "mmap: too many mappings (vm.max_map_count)")
    addr = get_unmapped_area(mm, addr, length, bool(flags & MAP_FIXED))
    if addr < 0:
        raise syscall_error(errno.ENOMEM, "mmap: no room in the address space")
    if addr > TASK_SIZE - length:
        raise syscall_error(errno.ENOMEM, "mmap: range ends above TASK_SIZE")
    if addr & ~PAGE_MASK:
        raise syscall_error(errno.EINVAL, "mmap: MAP_FIXED address not page aligned")
    if addr < m.settings.vm.mmap_min_addr and not task.capable("CAP_SYS_RAWIO"):
        raise syscall_error(errno.EPERM, "mmap: address below vm.mmap_min_addr")  # security_mmap_addr()
    if flags & MAP_FIXED_NOREPLACE and find_vma_intersection(mm, addr, addr + length):
        raise syscall_error(errno.EEXIST, "mmap: MAP_FIXED_NOREPLACE range is in use")
    vm_flags = calc_vm_prot_bits(prot) | VmFlag.MAYREAD | VmFlag.MAYWRITE | VmFlag.MAYEXEC
    kind = flags & MAP_TYPE
    if kind == MAP_SHARED:
        pgoff = 0
        vm_flags |= VmFlag.SHARED | VmFlag.MAYSHARE
    elif kind == MAP_PRIVATE:
        pgoff = addr >> PAGE_SHIFT
    else:
        raise syscall_error(errno.EINVAL, "mmap: flags must hold exactly one of MAP_SHARED and MAP_PRIVATE")
    if flags & MAP_NORESERVE and m.settings.vm.overcommit_memory != 2:
        vm_flags |= VmFlag.NORESERVE
    return mmap_region(task, addr, length, vm_flags, pgoff)


def round_hint_to_min(m: Machine, hint: int) -> int:
    """Mirrors round_hint_to_min(): a hint below mmap_min_addr becomes mmap_min_addr."""
    hint &= PAGE_MASK
    if hint and hint < m.settings.vm.mmap_min_addr:
        return page_align(m.settings.vm.mmap_min_addr)
    return hint


def mmap_region(task: Task, addr: int, length: int, vm_flags: int, pgoff: int) -> int:
    """Mirrors __mmap_region(): unmap what MAP_FIXED covers, charge commit, merge or create the VMA."""
    mm, m = task.mm, task.machine
    end = addr + length
    npages = length >> PAGE_SHIFT
    if find_vma_intersection(mm, addr, end):
        do_munmap(task, addr, length)
    shared = bool(vm_flags & VmFlag.SHARED)
    if not shared and (vm_flags & (VmFlag.NORESERVE | VmFlag.SHARED | VmFlag.WRITE)) == VmFlag.WRITE:
        if not m.vm_enough_memory(npages):  # accountable_mapping()
            raise syscall_error(errno.ENOMEM, "mmap: not enough memory to commit (vm.overcommit_memory)")
        vm_flags |= VmFlag.ACCOUNT
    vma = Vma(mm=mm, vm_start=addr, vm_end=end, vm_flags=vm_flags, vm_pgoff=pgoff,
              vm_page_prot=vm_get_page_prot(vm_flags))
    if shared:
        # shmem_zero_setup(): a tmpfs file backs the mapping; shmem_acct_size() charges it.
        if not vm_flags & VmFlag.NORESERVE and not m.vm_enough_memory(npages):
            raise syscall_error(errno.ENOMEM, "mmap: not enough memory to commit (vm.overcommit_memory)")
        vma.vm_file = ShmemFile(m, npages, charged=not vm_flags & VmFlag.NORESERVE)
        vma_link(mm, vma)
    else:
        vma_merge_new_range(mm, vma)
    vm_stat_account(mm, vm_flags, npages)
    return addr


def vma_merge_new_range(mm: MmStruct, vma: Vma) -> Vma:
    """Mirrors vma_merge_new_range(): extend a compatible neighbour instead of adding a VMA."""
    below = find_vma_intersection(mm, vma.vm_start - 1, vma.vm_start) if vma.vm_start else None
    above = find_vma_intersection(mm, vma.vm_end, vma.vm_end + 1)
    if below is not None and is_mergeable(below, vma):
        vma_set_range(mm, below, below.vm_start, vma.vm_end)
        vma = below
    else:
        vma_link(mm, vma)
    if above is not None and is_mergeable(vma, above):
        vma = merge_pair(mm, vma, above)
    return vma


def vm_stat_account(mm: MmStruct, flags: int, npages: int) -> None:
    """Mirrors vm_stat_account(): total_vm, and data_vm for private writable mappings."""
    mm.total_vm += npages
    mm.update_hiwater_vm()
    if (flags & (VmFlag.WRITE | VmFlag.SHARED | VmFlag.GROWSDOWN)) == VmFlag.WRITE:
        mm.data_vm += npages


def do_munmap(task: Task, start: int, length: int) -> None:
    """Mirrors do_vmi_munmap() -> do_vmi_align_munmap(): split at the ends, zap, free, unlink."""
    mm, m = task.mm, task.machine
    if start & ~PAGE_MASK or start > TASK_SIZE or length > TASK_SIZE - start:
        raise syscall_error(errno.EINVAL, "munmap: address not page aligned or range outside user space")
    end = start + page_align(length)
    if end == start:
        raise syscall_error(errno.EINVAL, "munmap: length is 0")
    vmas = vmas_in_range(mm, start, end)
    if not vmas:
        return
    first, last = vmas[0], vmas[-1]
    if first.vm_start < start:
        if len(mm.vmas) >= m.settings.vm.max_map_count:
            raise syscall_error(errno.ENOMEM, "munmap: splitting would exceed vm.max_map_count")
        split_vma(mm, first, start, new_below=True)
    if last.vm_end > end:
        split_vma(mm, last, end, new_below=False)
    lru_add_drain(m)  # unmap_region()
    mm.update_hiwater_rss()
    for vma in vmas:
        zap_pte_range(m, vma, vma.vm_start, vma.vm_end)
    flush_tlb_mm_range(m, mm, start, end)
    for vma in vmas:
        vma_unlink(mm, vma)
        vm_stat_account(mm, vma.vm_flags, -vma.pages)
        if vma.vm_flags & VmFlag.ACCOUNT:
            m.vm_unacct_memory(vma.pages)
        if vma.vm_file is not None:
            vma.vm_file.put()
    free_pgtables(m, mm, start, end)
