"""msync(): write a shared file mapping's dirty pages back.

Mirrors mm/msync.c: SYSCALL_DEFINE3(msync). MS_SYNC writes back (vfs_fsync_range(): the whole file's
dirty folios here) each shared file VMA of the range and waits; MS_ASYNC does nothing since 2.6.19
(measured: nr_dirty stays); MS_INVALIDATE only fails on mlocked memory (EBUSY). A range with unmapped
parts gives ENOMEM after the work is done (before it for MS_ASYNC alone).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from ..constants import PAGE_MASK, PAGE_SIZE
from ..errors import syscall_error
from .page_writeback import write_inode_now
from .types import VmFlag
from .vma import find_vma

if TYPE_CHECKING:
    from ..kernel.task import Task

MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4


def do_msync(task: Task, start: int, length: int, flags: int) -> None:
    """Mirrors sys_msync(): EINVAL for unknown flags, an unaligned start or MS_SYNC|MS_ASYNC; ENOMEM for
    a range that wraps or holds unmapped addresses; EBUSY for MS_INVALIDATE over VM_LOCKED memory."""
    if flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC):
        raise syscall_error(errno.EINVAL, f"msync: unknown flags {flags:#x}")
    if start & ~PAGE_MASK:
        raise syscall_error(errno.EINVAL, "msync: address not page aligned")
    if flags & MS_ASYNC and flags & MS_SYNC:
        raise syscall_error(errno.EINVAL, "msync: MS_SYNC and MS_ASYNC together")
    end = start + ((length + PAGE_SIZE - 1) & PAGE_MASK)
    if end >= 1 << 64 or end < start:
        raise syscall_error(errno.ENOMEM, "msync: range wraps around")
    if end == start:
        return
    unmapped = False
    vma = find_vma(task.mm, start)
    while True:
        if vma is None:
            raise syscall_error(errno.ENOMEM, "msync: range not mapped")
        if start < vma.vm_start:  # a gap: ENOMEM, at once for MS_ASYNC or when nothing follows in range
            if flags == MS_ASYNC or vma.vm_start >= end:
                raise syscall_error(errno.ENOMEM, "msync: range not mapped")
            start = vma.vm_start
            unmapped = True
        if flags & MS_INVALIDATE and vma.vm_flags & VmFlag.LOCKED:
            raise syscall_error(errno.EBUSY, "msync: MS_INVALIDATE on locked memory")
        file = vma.vm_file
        start = vma.vm_end
        inode = getattr(file, "inode", None)
        if flags & MS_SYNC and inode is not None and vma.vm_flags & VmFlag.SHARED:
            write_inode_now(task.machine, inode, sync=True, task=task)  # vfs_fsync_range()
        if start >= end:
            break
        vma = find_vma(task.mm, start)
    if unmapped:
        raise syscall_error(errno.ENOMEM, "msync: part of the range is not mapped")
