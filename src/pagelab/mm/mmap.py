"""mmap() and munmap() for anonymous memory: argument checks, placement, VMA creation and removal.

Mirrors arch/x86/kernel/sys_x86_64.c: sys_mmap(); mm/mmap.c: ksys_mmap_pgoff(), do_mmap(),
round_hint_to_min(), __get_unmapped_area()'s checks, calc_vm_flag_bits(); mm/vma.c: mmap_region()
-> __mmap_region() (__mmap_setup(), vms_gather_munmap_vmas()), do_vmi_munmap() ->
do_vmi_align_munmap(), vm_stat_account() (split_vma() and vma_modify_flags() are in mm/vma.py).

The arguments are C values (pagelab.abi converts Python values the way a C call would): addresses
and lengths are unsigned 64-bit, prot and flags are ints (sign-extended into the kernel's unsigned
long, as glibc passes them). Each check returns the errno the real kernel returns, in the kernel's
order, before any side effect the kernel would not have made (checked against the host kernel in
tests/real/).

vm.max_map_count (Mirrors mm/vma.c): mmap() refuses only when the mm already holds more than the
limit, so it may reach the limit plus one; every split that mprotect() or madvise() asks for
(split_vma()) refuses at the limit; munmap() refuses only the split that cuts a VMA in three (the
start split of a range that ends inside the same VMA), so unmapping a VMA's first or last page
works at the limit. A change that merges with a neighbour instead of splitting needs no new VMA.

File mappings take the descriptor's struct file (EBADF, EACCES, ENODEV-free: every file here is on ext4)
and are placed by thp_get_unmapped_area() as ext4's are; MAP_POPULATE is done by sys_mmap() (mm_populate()).

RLIMIT_AS and RLIMIT_DATA are checked by may_expand_vm() as the kernel does (mmap, mprotect, mremap, brk).
Simplified: no MAP_HUGETLB, MAP_GROWSDOWN stacks or MAP_DROPPABLE: each is
checked as the kernel checks it and then raises NotModelled before anything changes (MAP_HUGETLB
after its page-size check: hugetlbfs has more checks of its own).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..arch.x86.tlb import flush_tlb_mm_range
from ..constants import (
    MAP_32BIT,
    MAP_ANONYMOUS,
    MAP_DENYWRITE,
    MAP_EXECUTABLE,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_GROWSDOWN,
    MAP_HUGETLB,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_STACK,
    MAP_SYNC,
    MAP_TYPE,
    MAP_UNINITIALIZED,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    TASK_SIZE,
    page_align,
)
from ..errors import NotModelled, syscall_error
from ..fs.ext4 import ext4_file_mmap
from ..fs.file import FMODE_READ, FMODE_WRITE, File
from .memory import unmap_page_range
from .mlock import mlock_future_ok, mlock_mmap_region, mm_populate_range, munlock_unmapped
from .pgtable import free_pgtables
from .shmem import SHMEM_ANON_VM_OPS, ShmemFile
from .types import VM_ACCESS_FLAGS, MmStruct, Vma, VmFlag
from .vma import (
    find_vma_intersection,
    find_vma_prev,
    get_unmapped_area,
    is_mergeable,
    merge_pair,
    split_vma,
    vm_get_page_prot,
    vma_link,
    vma_set_page_prot,
    vma_set_range,
    vma_unlink,
    vmas_in_range,
)

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine

ULONG_MASK = (1 << 64) - 1
MAX_ERRNO = 4095  # include/linux/err.h: the top 4095 values of an unsigned long are error codes
MAP_DROPPABLE = 0x08  # a MAP_TYPE value (include/uapi/linux/mman.h, Linux 6.11+)
MAP_SHARED_VALIDATE = 0x03
# LEGACY_MAP_MASK (include/linux/mman.h): the flags MAP_SHARED_VALIDATE accepts without asking the file
LEGACY_MAP_MASK = (MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE | MAP_EXECUTABLE
                   | MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK
                   | MAP_STACK | MAP_HUGETLB)
MAX_LFS_PAGES = ((1 << 63) - 1) >> PAGE_SHIFT  # MAX_LFS_FILESIZE in pages (file_mmap_ok())
MAP_HUGE_SHIFT = 26
MAP_HUGE_MASK = 0x3F
HUGE_PAGE_SHIFTS = (21, 30)  # the hstates of x86-64: 2 MiB, and 1 GiB with pdpe1gb
VM_SYNC = 0x00800000  # calc_vm_flag_bits(): MAP_SYNC sets it even on anonymous memory ("sf")
MLOCK_LIMIT_PAGES = (8 << 20) >> PAGE_SHIFT  # RLIMIT_MEMLOCK's default (include/uapi/linux/resource.h)
MAP_32BIT_BEGIN, MAP_32BIT_END, MAP_32BIT_RANDOM = 0x40000000, 0x80000000, 0x02000000  # find_start_end()


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


def calc_vm_flag_bits(flags: int) -> int:
    """Mirrors calc_vm_flag_bits(): MAP_GROWSDOWN, MAP_LOCKED, MAP_SYNC and MAP_STACK as VM_* flags."""
    vm_flags = VmFlag.NONE
    if flags & MAP_GROWSDOWN:
        vm_flags |= VmFlag.GROWSDOWN
    if flags & MAP_LOCKED:
        vm_flags |= VmFlag.LOCKED
    if flags & MAP_SYNC:
        vm_flags |= VM_SYNC
    if flags & MAP_STACK:
        vm_flags |= VmFlag.NOHUGEPAGE
    return vm_flags


def do_mmap(task: Task, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    """Mirrors sys_mmap() -> ksys_mmap_pgoff() -> do_mmap() -> mmap_region() for anonymous memory."""
    mm, m = task.mm, task.machine
    off = offset & ULONG_MASK
    if off & ~PAGE_MASK:
        raise syscall_error(errno.EINVAL, "mmap: offset not page aligned")
    file = None
    if not flags & MAP_ANONYMOUS:
        file = task.files.fget(fd)  # ksys_mmap_pgoff(): EBADF
    elif flags & MAP_HUGETLB:  # ksys_mmap_pgoff(): hstate_sizelog(), ALIGN(len, huge_page_size), then do_mmap()
        shift = (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK
        if shift not in (0, *HUGE_PAGE_SHIFTS):
            raise syscall_error(errno.EINVAL, f"mmap: no huge page size of 2**{shift} bytes")
        huge = 1 << (shift or HUGE_PAGE_SHIFTS[0])
        if not (length + huge - 1) & ~(huge - 1) & ULONG_MASK:
            raise syscall_error(errno.EINVAL, "mmap: length is 0 once rounded to the huge page size")
        raise NotModelled("mmap: MAP_HUGETLB (hugetlbfs) is not modelled")
    if length == 0:
        raise syscall_error(errno.EINVAL, "mmap: length is 0")
    if flags & MAP_FIXED_NOREPLACE:
        flags |= MAP_FIXED
    if not flags & MAP_FIXED:
        addr = round_hint_to_min(m, addr)
    length = page_align(length) & ULONG_MASK
    if length == 0:
        raise syscall_error(errno.ENOMEM, "mmap: length overflows")
    if (off >> PAGE_SHIFT) + (length >> PAGE_SHIFT) > ULONG_MASK:
        raise syscall_error(errno.EOVERFLOW, "mmap: offset + length overflows")
    if len(mm.vmas) > m.settings.vm.max_map_count:
        raise syscall_error(errno.ENOMEM, "mmap: too many mappings (vm.max_map_count)")
    vm_flags = calc_vm_prot_bits(prot) | calc_vm_flag_bits(flags) | mm.def_flags | VmFlag.MAYREAD \
        | VmFlag.MAYWRITE | VmFlag.MAYEXEC
    addr = _get_unmapped_area(task, addr, length, flags, off if file is not None else -1)
    if flags & MAP_FIXED_NOREPLACE and find_vma_intersection(mm, addr, addr + length):
        raise syscall_error(errno.EEXIST, "mmap: MAP_FIXED_NOREPLACE range is in use")
    _check_mlock(task, flags, vm_flags, length)
    kind = flags & MAP_TYPE
    if file is not None:
        vm_flags = _file_vm_flags(file, kind, prot, vm_flags, off, length, flags)
        return mmap_region(task, addr, length, vm_flags, off >> PAGE_SHIFT, _unmodelled(flags, kind), file)
    if kind == MAP_SHARED:
        if vm_flags & VmFlag.GROWSDOWN:
            raise syscall_error(errno.EINVAL, "mmap: MAP_GROWSDOWN on shared memory")
        pgoff = 0
        vm_flags |= VmFlag.SHARED | VmFlag.MAYSHARE
    elif kind in (MAP_PRIVATE, MAP_DROPPABLE):
        if kind == MAP_DROPPABLE and (flags & (MAP_LOCKED | MAP_HUGETLB) or vm_flags & VmFlag.GROWSDOWN):
            raise syscall_error(errno.EINVAL, "mmap: MAP_DROPPABLE with MAP_LOCKED or MAP_GROWSDOWN")
        pgoff = addr >> PAGE_SHIFT
    else:
        raise syscall_error(errno.EINVAL, f"mmap: mapping type {kind:#x} (MAP_SHARED or MAP_PRIVATE needed)")
    if flags & MAP_NORESERVE and m.settings.vm.overcommit_memory != 2:
        vm_flags |= VmFlag.NORESERVE
    return mmap_region(task, addr, length, vm_flags, pgoff, _unmodelled(flags, kind))


def _file_vm_flags(file: File, kind: int, prot: int, vm_flags: int, off: int, length: int, flags: int) -> int:
    """Mirrors do_mmap()'s checks for a file mapping, in the kernel's order: EOVERFLOW (file_mmap_ok():
    the offset range overflows the file's maximum), EACCES (a shared writable mapping of a descriptor
    not open for writing; any mapping of one not open for reading), EINVAL (an unknown type, or
    MAP_GROWSDOWN). A shared mapping of a read-only descriptor is not VM_SHARED and cannot become
    writable (no VM_MAYWRITE)."""
    if (off >> PAGE_SHIFT) + (length >> PAGE_SHIFT) > MAX_LFS_PAGES:
        raise syscall_error(errno.EOVERFLOW, "mmap: offset + length past the largest file size")
    if kind in (MAP_SHARED, MAP_SHARED_VALIDATE):
        known = LEGACY_MAP_MASK | (0 if file.inode.is_dir else MAP_SYNC)  # ext4 files have FOP_MMAP_SYNC, dirs not
        if kind == MAP_SHARED_VALIDATE and flags & ~known:
            raise syscall_error(errno.EOPNOTSUPP, f"mmap: MAP_SHARED_VALIDATE with unknown flags {flags:#x}")
        if prot & PROT_WRITE and not file.f_mode & FMODE_WRITE:
            raise syscall_error(errno.EACCES, "mmap: MAP_SHARED with PROT_WRITE on a descriptor not open for writing")
        vm_flags |= VmFlag.SHARED | VmFlag.MAYSHARE
        if not file.f_mode & FMODE_WRITE:
            vm_flags &= ~(VmFlag.MAYWRITE | VmFlag.SHARED)
    elif kind != MAP_PRIVATE:
        raise syscall_error(errno.EINVAL, f"mmap: mapping type {kind:#x} (MAP_SHARED or MAP_PRIVATE needed)")
    if not file.f_mode & FMODE_READ:
        raise syscall_error(errno.EACCES, "mmap: descriptor not open for reading")
    if file.inode.is_dir:  # a directory's file_operations have no ->mmap
        raise syscall_error(errno.ENODEV, "mmap: the file cannot be mapped (a directory)")
    if vm_flags & VmFlag.GROWSDOWN:
        raise syscall_error(errno.EINVAL, "mmap: MAP_GROWSDOWN on a file")
    if vm_flags & VM_SYNC:  # ext4_file_mmap(): VM_SYNC needs DAX (daxdev_mapping_supported()); no DAX here
        raise syscall_error(errno.EOPNOTSUPP, "mmap: MAP_SYNC on a file without DAX")
    return vm_flags


def _get_unmapped_area(task: Task, addr: int, length: int, flags: int, file_off: int = -1) -> int:
    """Mirrors __get_unmapped_area(): find (or take) the range, then its checks (ENOMEM, EINVAL, EPERM)."""
    m = task.machine
    fixed = bool(flags & MAP_FIXED)

    def search(size: int) -> int:
        if flags & MAP_32BIT and not fixed and size <= TASK_SIZE:
            return _get_unmapped_area_32bit(task, addr, size)
        return get_unmapped_area(task.mm, addr, size, fixed)

    found = -1
    if file_off >= 0 and not fixed:  # ext4's ->get_unmapped_area: thp_get_unmapped_area() with the offset
        found = thp_get_unmapped_area(search, addr, length, file_off)
    elif file_off < 0 and not addr and not flags & MAP_SHARED and length % PMD_SIZE == 0:
        found = thp_get_unmapped_area(search, addr, length)  # larger anonymous mappings are THP aligned
    addr = found if found >= 0 else search(length)
    if addr < 0:
        raise syscall_error(errno.ENOMEM, "mmap: no room in the address space")
    if addr > ULONG_MASK - MAX_ERRNO:  # IS_ERR_VALUE(): a MAP_FIXED address in the last 4095 bytes reads as -errno
        raise syscall_error(ULONG_MASK + 1 - addr, f"mmap: MAP_FIXED address {addr:#x} is an error value")
    if addr > TASK_SIZE - length:
        raise syscall_error(errno.ENOMEM, "mmap: range ends above TASK_SIZE")
    if addr & ~PAGE_MASK:
        raise syscall_error(errno.EINVAL, "mmap: MAP_FIXED address not page aligned")
    if addr < m.settings.vm.mmap_min_addr and not task.capable("CAP_SYS_RAWIO"):
        raise syscall_error(errno.EPERM, "mmap: address below vm.mmap_min_addr")  # security_mmap_addr()
    return addr


def thp_get_unmapped_area(search: Callable[[int], int], addr: int, length: int, off: int = 0) -> int:
    """Mirrors __thp_get_unmapped_area() (file offset ``off``; 0 for anonymous memory): search a gap
    PMD_SIZE longer than asked, then place the mapping at the 2 MiB boundary inside it (top-down: if
    the gap already starts aligned, one PMD_SIZE up). ``search(length)`` is the ordinary search, ``addr``
    the hint (0 here, or a MAP_FIXED 0). -1 when the padded search fails (the caller retries without
    the padding).

    __get_unmapped_area() takes this path for a private anonymous mapping with no hint whose length
    is a multiple of PMD_SIZE, whatever the THP mode (measured here: 2, 4 and 6 MiB aligned 3 of 3).
    """
    off_align = (off + PMD_SIZE - 1) & ~(PMD_SIZE - 1)
    if off + length <= off_align or off + length - off_align < PMD_SIZE:
        return -1  # no whole aligned 2 MiB of the file inside the mapping: no reason to align
    ret = search(length + PMD_SIZE)
    if ret < 0:
        return -1
    if ret == addr:  # the hint (or a MAP_FIXED 0) is taken as it is
        return addr
    off_sub = (off - ret) & (PMD_SIZE - 1)
    return ret + PMD_SIZE if not off_sub else ret + off_sub  # MMF_TOPDOWN is set for every mm here


def _get_unmapped_area_32bit(task: Task, hint: int, length: int) -> int:
    """Mirrors arch_get_unmapped_area() with MAP_32BIT (arch/x86/kernel/sys_x86_64.c): a free hint, else
    the lowest gap in [1 GiB + a random offset below 32 MiB (find_start_end()), 2 GiB); -1 means ENOMEM."""
    mm = task.mm
    begin, end = MAP_32BIT_BEGIN, MAP_32BIT_END
    begin += task.machine.rng("mmap32").randrange(MAP_32BIT_RANDOM >> PAGE_SHIFT) << PAGE_SHIFT
    if length > end:
        return -1
    hint &= PAGE_MASK
    if hint and hint <= TASK_SIZE - length and find_vma_intersection(mm, hint, hint + length) is None:
        return hint
    low = begin
    for vma in vmas_in_range(mm, begin, end):  # unmapped_area(): bottom-up
        if vma.vm_start >= low + length:
            break
        low = max(low, vma.vm_end)
    return low if low + length <= end else -1


def _check_mlock(task: Task, flags: int, vm_flags: int, length: int) -> None:
    """Mirrors do_mmap()'s lock checks (mlock, issue #9): can_do_mlock() for MAP_LOCKED (EPERM), then
    mlock_future_ok() for a VM_LOCKED mapping, MAP_LOCKED or mlockall(MCL_FUTURE)'s def_flags (EAGAIN)."""
    from .mlock import can_do_mlock, mlock_future_ok

    if flags & MAP_LOCKED and not can_do_mlock(task):
        raise syscall_error(errno.EPERM, "mmap: MAP_LOCKED with RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK")
    if not mlock_future_ok(task, vm_flags, length):
        raise syscall_error(errno.EAGAIN, "mmap: a locked mapping beyond RLIMIT_MEMLOCK")


def _unmodelled(flags: int, kind: int) -> str:
    """What a valid mmap() asks for that the simulator does not model (empty if nothing)."""
    names = ["MAP_GROWSDOWN"] if flags & MAP_GROWSDOWN else []
    if kind == MAP_DROPPABLE:
        names.append("MAP_DROPPABLE")
    return "|".join(names)


def round_hint_to_min(m: Machine, hint: int) -> int:
    """Mirrors round_hint_to_min(): a hint below mmap_min_addr becomes mmap_min_addr."""
    hint &= PAGE_MASK
    if hint and hint < m.settings.vm.mmap_min_addr:
        return page_align(m.settings.vm.mmap_min_addr)
    return hint


def accountable_mapping(vm_flags: int) -> bool:
    """Mirrors accountable_mapping(): private writable memory without MAP_NORESERVE is charged."""
    return (vm_flags & (VmFlag.NORESERVE | VmFlag.SHARED | VmFlag.WRITE)) == VmFlag.WRITE


def mmap_region(task: Task, addr: int, length: int, vm_flags: int, pgoff: int, unmodelled: str = "",
                file: File | None = None) -> int:
    """Mirrors __mmap_region(): gather what MAP_FIXED replaces, charge commit, then merge or create the VMA.

    As in the kernel, a commit failure leaves the gather's splits behind (the old VMAs are put back, cut);
    a shared mapping whose shmem charge fails comes after vms_clean_up_area() and leaves a gap instead.
    """
    mm, m = task.mm, task.machine
    end = addr + length
    npages = length >> PAGE_SHIFT
    old = vmas_in_range(mm, addr, end)
    if old:
        _check_gather(mm, old[0], addr, end)
    nr_accounted = sum((min(v.vm_end, end) - max(v.vm_start, addr)) >> PAGE_SHIFT
                       for v in old if v.vm_flags & VmFlag.ACCOUNT)
    nr_pages = sum((min(v.vm_end, end) - max(v.vm_start, addr)) >> PAGE_SHIFT for v in old)
    if not may_expand_vm(task, vm_flags, npages - nr_pages):  # __mmap_prepare(): RLIMIT_AS, RLIMIT_DATA
        _gather(mm, addr, end)
        raise syscall_error(errno.ENOMEM, "mmap: over RLIMIT_AS or RLIMIT_DATA")
    charged = 0
    if accountable_mapping(vm_flags):
        charged = npages - nr_accounted
        if charged and not m.vm_enough_memory(charged):
            _gather(mm, addr, end)
            raise syscall_error(errno.ENOMEM, "mmap: not enough memory to commit (vm.overcommit_memory)")
        vm_flags |= VmFlag.ACCOUNT
    shared = bool(vm_flags & VmFlag.SHARED) and file is None
    shmem_charged = shared and not vm_flags & VmFlag.NORESERVE
    if shmem_charged and not m.vm_enough_memory(npages):  # shmem_zero_setup() -> shmem_acct_size()
        m.vm_unacct_memory(charged)
        if old:  # vms_abort_munmap_vmas() once the PTEs are cleared: a gap where the mapping failed
            _unmap_vmas(task, _gather(mm, addr, end), addr, end)
        raise syscall_error(errno.ENOMEM, "mmap: not enough memory to commit (vm.overcommit_memory)")
    if unmodelled:
        m.vm_unacct_memory(charged + (npages if shmem_charged else 0))
        raise NotModelled(f"mmap: {unmodelled} is not modelled")
    if old:
        _unmap_vmas(task, _gather(mm, addr, end), addr, end, unaccount=not vm_flags & VmFlag.ACCOUNT)
    from .mremap import ksm_vma_flags  # mremap (issue #9): prctl(PR_SET_MEMORY_MERGE) marks new VMAs "mg"
    vm_flags = ksm_vma_flags(mm, file, vm_flags)
    vma = Vma(mm=mm, vm_start=addr, vm_end=end, vm_flags=vm_flags, vm_pgoff=pgoff,
              vm_page_prot=vm_get_page_prot(vm_flags))
    if file is not None:  # __mmap_new_file_vma(): get_file(), ->mmap(), then the page protection
        vma.vm_file = file
        ext4_file_mmap(vma)
        vma_set_page_prot(vma)
        vma_link(mm, vma)
        file.get(vma)
    elif shared:
        vma.vm_file = ShmemFile(m, npages, charged=shmem_charged)  # shmem_zero_setup()
        vma.vm_ops = SHMEM_ANON_VM_OPS
        vma_link(mm, vma)
        vma.vm_file.get(vma)
    else:
        vma = vma_merge_new_range(mm, vma)
    vm_stat_account(mm, vm_flags, npages)
    mlock_mmap_region(mm, vma, npages)  # mlock (issue #9): __mmap_region()'s VM_LOCKED step
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


def may_expand_vm(task: Task, flags: int, npages: int) -> bool:
    """Mirrors may_expand_vm(): total_vm within RLIMIT_AS, and data_vm within RLIMIT_DATA for a data mapping
    (private writable, not a stack), with the kernel's Valgrind exception for a soft RLIMIT_DATA of 0.

    Simplified: no ignore_rlimit_data boot parameter (its default, off)."""
    mm = task.mm
    if mm.total_vm + npages > _rlimit(task, _RLIMIT_AS) >> PAGE_SHIFT:
        return False
    if (flags & (VmFlag.WRITE | VmFlag.SHARED | VmFlag.GROWSDOWN)) == VmFlag.WRITE:  # is_data_mapping()
        soft = _rlimit(task, _RLIMIT_DATA)
        if mm.data_vm + npages > soft >> PAGE_SHIFT:
            hard = task.rlim.get(_RLIMIT_DATA, (ULONG_MASK, ULONG_MASK))[1]
            return soft == 0 and mm.data_vm + npages <= hard >> PAGE_SHIFT
    return True


def vm_stat_account(mm: MmStruct, flags: int, npages: int) -> None:
    """Mirrors vm_stat_account(): total_vm, and data_vm for private writable mappings."""
    mm.total_vm += npages
    mm.update_hiwater_vm()
    if (flags & (VmFlag.WRITE | VmFlag.SHARED | VmFlag.GROWSDOWN)) == VmFlag.WRITE:
        mm.data_vm += npages


# --- splitting, and changing flags over part of a VMA (mm/vma.c) ---------------------------------

def _check_gather(mm: MmStruct, first: Vma, start: int, end: int) -> None:
    """Mirrors vms_gather_munmap_vmas()'s limit: only a split that cuts ``first`` in three is refused."""
    if first.vm_start < start and end < first.vm_end and len(mm.vmas) >= mm.machine.settings.vm.max_map_count:
        raise syscall_error(errno.ENOMEM, "munmap: splitting would exceed vm.max_map_count")


def _gather(mm: MmStruct, start: int, end: int) -> list[Vma]:
    """Mirrors vms_gather_munmap_vmas(): split the VMAs at ``start`` and ``end`` (__split_vma(), which
    does not check the limit: the caller did); returns the VMAs inside [start, end)."""
    vmas = vmas_in_range(mm, start, end)
    if vmas and vmas[0].vm_start < start:
        split_vma(mm, vmas[0], start, new_below=True)
    if vmas and vmas[-1].vm_end > end:
        split_vma(mm, vmas[-1], end, new_below=False)
    return vmas


# --- munmap ---------------------------------------------------------------------------------------

def do_munmap(task: Task, start: int, length: int) -> None:
    """Mirrors do_vmi_munmap() -> do_vmi_align_munmap(): split at the ends, zap, free, unlink."""
    mm = task.mm
    if start & ~PAGE_MASK or start > TASK_SIZE or length > TASK_SIZE - start:
        raise syscall_error(errno.EINVAL, "munmap: address not page aligned or range outside user space")
    end = start + page_align(length)
    if end == start:
        raise syscall_error(errno.EINVAL, "munmap: length is 0")
    first = find_vma_intersection(mm, start, end)
    if first is None:
        return
    _check_gather(mm, first, start, end)
    _unmap_vmas(task, _gather(mm, start, end), start, end)


def _unmap_vmas(task: Task, vmas: list[Vma], start: int, end: int, *, unaccount: bool = True) -> None:
    """Mirrors vms_clear_ptes() + vms_complete_munmap_vmas(): zap and flush [start, end), take the VMAs
    out with their accounting (their commit charge too, unless ``unaccount`` is False: a new private
    writable mapping takes it over), and free the page tables. No lru_add_drain() first (6.18 has none
    here; measured: a page MADV_FREE left in the per-CPU lazyfree batch stays there across a munmap)."""
    m, mm = task.machine, task.mm
    mm.update_hiwater_rss()
    munlock_unmapped(task, vmas)  # mlock (issue #9): locked_vm, and the folios munlocked as they are zapped
    for vma in vmas:
        unmap_page_range(m, vma, vma.vm_start, vma.vm_end)
    flush_tlb_mm_range(m, mm, start, end)
    for vma in vmas:
        vma_unlink(mm, vma)
        vm_stat_account(mm, vma.vm_flags, -vma.pages)
        if vma.vm_flags & VmFlag.ACCOUNT and unaccount:
            m.vm_unacct_memory(vma.pages)
        if vma.vm_file is not None:
            vma.vm_file.put(vma)
    free_pgtables(m, mm, start, end)


# --- brk (issue #9) -------------------------------------------------------------------------------
# Mirrors mm/mmap.c: SYSCALL_DEFINE1(brk), check_brk_limits(), do_brk_flags(); mm/util.c: randomize_page();
# arch/x86/kernel/process.c: arch_randomize_brk(); fs/binfmt_elf.c: load_elf_binary()'s "brk" handling.
# Measured here (docs/facts/malloc.md): brk(0) returns the break; a break below start_brk, one over
# RLIMIT_DATA, or one running into the next mapping is refused by returning the old break (never an errno);
# the heap VMA is "rw-p" with VmFlags "rd wr mr mw me ac", named [heap] in /proc/PID/maps while it lies
# between start_brk and brk; a shrink unmaps the freed pages (do_vmi_align_munmap()).

ELF_ET_DYN_BASE = ((1 << 47) // 3 * 2) & PAGE_MASK  # arch/x86/include/asm/elf.h: 2/3 of TASK_SIZE (0x555555554000)
BRK_RND_RANGE = 1 << 30  # arch_randomize_brk(): randomize_page(mm->brk, SZ_1G) on 64-bit (6.9+)
STACK_GUARD_GAP = 256 << PAGE_SHIFT  # mm/mmap.c: stack_guard_gap's default (256 pages)
SPAWN_IMAGE_END = 0x4078  # a spawned process's notional program: the end of a small gcc PIE's .bss (probe p1)
VM_DATA_DEFAULT_FLAGS = (VmFlag.READ | VmFlag.WRITE | VmFlag.MAYREAD | VmFlag.MAYWRITE  # VM_DATA_FLAGS_TSK_EXEC
                         | VmFlag.MAYEXEC)
_RLIMIT_DATA, _RLIMIT_AS = 2, 9  # resource.RLIMIT_DATA / RLIMIT_AS


def randomize_page(rng_value: int, start: int, range_: int) -> int:
    """Mirrors mm/util.c randomize_page(): a page-aligned address in [start, start + range_) from the random
    value ``rng_value`` (the kernel's get_random_long())."""
    if start & ~PAGE_MASK:
        range_ -= page_align(start) - start
        start = page_align(start)
    range_ = min(range_, ULONG_MASK - start) >> PAGE_SHIFT
    return start if range_ == 0 else start + ((rng_value % range_) << PAGE_SHIFT)


def set_brk_base(m: Machine, mm: MmStruct, elf_brk: int, *, randomize: bool = True) -> None:
    """Mirrors load_elf_binary()'s brk placement: start_brk = brk = the page-aligned end of the image's
    .bss; with randomize_va_space 2, one page more and then arch_randomize_brk() (a page in the next 1 GiB).
    The random value comes from the machine's "brk" stream, so a seed gives the same heap start.

    Simplified: the static-PIE case (ET_DYN without PT_INTERP: brk moved to ELF_ET_DYN_BASE) is the caller's
    (exec passes ELF_ET_DYN_BASE as ``elf_brk``)."""
    brk = page_align(elf_brk)
    if randomize:
        brk = randomize_page(m.rng("brk").getrandbits(64), brk + PAGE_SIZE, BRK_RND_RANGE)
    mm.start_brk = mm.brk = brk


def spawn_brk_base(m: Machine, mm: MmStruct) -> None:
    """The break of a process made by m.spawn() (there is no exec yet): as load_elf_binary() would place it
    for a small PIE loaded at ELF_ET_DYN_BASE + arch_mmap_rnd() (28 random bits of pages)."""
    load_bias = ELF_ET_DYN_BASE + (m.rng("brk").getrandbits(28) << PAGE_SHIFT)
    set_brk_base(m, mm, load_bias + SPAWN_IMAGE_END)


def _rlimit(task: Task, res: int) -> int:
    """rlimit(): the soft limit of ``res`` (RLIM_INFINITY when the task has none recorded)."""
    return task.rlim.get(res, (ULONG_MASK, ULONG_MASK))[0]


def sys_brk(task: Task, brk: int) -> int:
    """Mirrors SYSCALL_DEFINE1(brk): move the program break; returns the new break, or the old one when the
    request is refused (brk(2) reports no errno: glibc's wrapper turns "unchanged" into ENOMEM).

    Simplified: mm->end_data - mm->start_data (the image's data segment) counts as 0 for RLIMIT_DATA, as a
    spawned process has none.
    """
    mm = task.mm
    brk &= ULONG_MASK
    origbrk = mm.brk
    if brk < mm.start_brk:
        return origbrk
    rlim = _rlimit(task, _RLIMIT_DATA)
    if rlim != ULONG_MASK and brk - mm.start_brk > rlim:  # check_data_rlimit()
        return origbrk
    newbrk, oldbrk = page_align(brk) & ULONG_MASK, page_align(mm.brk)
    if newbrk == oldbrk:
        mm.brk = brk
        return brk
    if brk <= mm.brk:  # "Always allow shrinking brk."
        brkvma = find_vma_intersection(mm, newbrk, oldbrk)
        if brkvma is None:
            return origbrk  # the range holds no mapping at all
        try:
            _check_gather(mm, brkvma, newbrk, oldbrk)
        except OSError:
            return origbrk
        mm.brk = brk
        _unmap_vmas(task, _gather(mm, newbrk, oldbrk), newbrk, oldbrk)  # do_vmi_align_munmap()
        return brk
    if newbrk == 0 or newbrk > TASK_SIZE or not check_brk_limits(task, oldbrk, newbrk - oldbrk):
        return origbrk
    nxt = find_vma_intersection(mm, oldbrk, newbrk + PAGE_SIZE + STACK_GUARD_GAP)
    if nxt is not None and newbrk + PAGE_SIZE > _vm_start_gap(nxt):
        return origbrk
    if not do_brk_flags(task, oldbrk, newbrk - oldbrk):
        return origbrk
    mm.brk = brk
    if mm.def_flags & VmFlag.LOCKED:  # mlockall(MCL_FUTURE): the new heap pages are populated
        mm_populate_range(task, oldbrk, newbrk - oldbrk, ignore_errors=True)
    return brk


def _vm_start_gap(vma: Vma) -> int:
    """Mirrors vm_start_gap(): a VM_GROWSDOWN stack keeps stack_guard_gap free below it."""
    if vma.vm_flags & VmFlag.GROWSDOWN:
        return max(vma.vm_start - STACK_GUARD_GAP, 0)
    return vma.vm_start


def check_brk_limits(task: Task, addr: int, length: int) -> bool:
    """Mirrors check_brk_limits(): get_unmapped_area(MAP_FIXED)'s bounds check, then mlock_future_ok()
    for a heap that mlockall(MCL_FUTURE) locks (mm->def_flags)."""
    if length > TASK_SIZE or addr > TASK_SIZE - length:
        return False
    return mlock_future_ok(task, task.mm.def_flags, length)


def do_brk_flags(task: Task, addr: int, length: int) -> bool:
    """Mirrors do_brk_flags(): grow the heap by [addr, addr + length): extend the brk VMA below (the last
    VMA at or above start_brk, vma_prev_limit()) when it ends at ``addr`` and can merge, else a new
    anonymous VMA; charged to total_vm, data_vm and the commit. False where the kernel returns -ENOMEM
    (may_expand_vm(): RLIMIT_AS or RLIMIT_DATA; vm.max_map_count; __vm_enough_memory())."""
    mm, m = task.mm, task.machine
    npages = length >> PAGE_SHIFT
    flags = VM_DATA_DEFAULT_FLAGS | VmFlag.ACCOUNT | mm.def_flags
    if mm.total_vm + npages > _rlimit(task, _RLIMIT_AS) >> PAGE_SHIFT:
        return False
    if mm.data_vm + npages > _rlimit(task, _RLIMIT_DATA) >> PAGE_SHIFT:
        return False
    if len(mm.vmas) > m.settings.vm.max_map_count:
        return False
    if not m.vm_enough_memory(npages):
        return False
    below = [v for v in vmas_in_range(mm, mm.start_brk, addr) if v.vm_start >= mm.start_brk]
    brkvma = below[-1] if below else None
    vma = Vma(mm=mm, vm_start=addr, vm_end=addr + length, vm_flags=flags, vm_pgoff=addr >> PAGE_SHIFT,
              vm_page_prot=vm_get_page_prot(flags))
    if brkvma is not None and brkvma.vm_end == addr and is_mergeable(brkvma, vma):
        vma_set_range(mm, brkvma, brkvma.vm_start, addr + length)  # vma_merge_new_range() with vmg.prev
    else:
        vma_link(mm, vma)
    vm_stat_account(mm, flags, npages)
    if flags & VmFlag.LOCKED:
        mm.locked_vm += npages
    return True


# --- stack expansion (issue #9: exec) ---------------------------------------------------------------
# Mirrors mm/mmap.c: expand_stack_locked() -> expand_downwards(), acct_stack_growth(); the fault path calls
# it (lock_mm_and_find_vma()) for an address below a VM_GROWSDOWN VMA, as the exec'd stack is.

def expand_downwards(task: Task, vma: Vma, address: int) -> bool:
    """Mirrors expand_downwards(): grow the stack VMA down to ``address``'s page; False where the kernel
    returns an error (EPERM below mmap_min_addr, ENOMEM within stack_guard_gap of the VMA below, or over
    RLIMIT_STACK / RLIMIT_AS, or no commit), which the fault path turns into SIGSEGV (SEGV_MAPERR).

    Simplified: no VM_LOCKED population of the new pages (mlock's own business once they fault)."""
    mm, m = task.mm, task.machine
    address &= PAGE_MASK
    if address < m.settings.vm.mmap_min_addr:
        return False
    prev = find_vma_prev(mm, vma)
    if prev is not None and not prev.vm_flags & VmFlag.GROWSDOWN and prev.vm_flags & VM_ACCESS_FLAGS \
            and address - prev.vm_end < STACK_GUARD_GAP:
        return False
    grow = (vma.vm_start - address) >> PAGE_SHIFT
    size = vma.vm_end - address
    if size > _rlimit(task, _RLIMIT_STACK):  # acct_stack_growth()
        return False
    if mm.total_vm + grow > _rlimit(task, _RLIMIT_AS) >> PAGE_SHIFT:  # may_expand_vm()
        return False
    if vma.vm_flags & VmFlag.ACCOUNT and not m.vm_enough_memory(grow):
        return False
    vma_set_range(mm, vma, address, vma.vm_end)
    vma.vm_pgoff -= grow
    vm_stat_account(mm, vma.vm_flags, grow)
    return True


_RLIMIT_STACK = 3  # resource.RLIMIT_STACK
