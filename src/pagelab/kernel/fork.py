"""fork(): a new process with a copy of the parent's address space, which copies no memory.

Mirrors kernel/fork.c: kernel_clone() -> copy_process() -> copy_mm() -> dup_mm() -> dup_mmap(). Each VMA
is duplicated (vm_area_dup()) except those marked MADV_DONTFORK (VM_DONTCOPY); the child's VMA joins the
parent's anon_vmas (anon_vma_fork()), or starts empty for MADV_WIPEONFORK; page tables are copied only
where a page fault could not refill them (copy_page_range(): VMAs with anonymous pages), with every
private writable entry write-protected in both processes, so the first write of either side faults and
copies (or reuses a page nobody shares any more). mlock()s are not inherited (VM_LOCKED is cleared in the
child), nor is mlockall(MCL_FUTURE) (def_flags keep only VM_NOHUGEPAGE). The child shares the parent's
open files (dup_fd()), and inherits its resource limits and capabilities.

Simplified: one thread per process (CLONE_VM threads are not modelled); no vfork, no clone flags;
the child's memory-cgroup, signal and credential state are not modelled.
"""

from __future__ import annotations

import errno
from dataclasses import replace
from typing import TYPE_CHECKING

from ..arch.x86.tlb import flush_tlb_mm_range
from ..constants import TASK_SIZE
from ..errors import syscall_error
from ..fs.file import FdTable
from ..mm.memory import copy_page_range, exit_mmap
from ..mm.mmap import vm_stat_account
from ..mm.pgtable import pgtable_alloc
from ..mm.rmap import anon_vma_fork
from ..mm.types import MMF_INIT_MASK, MmStruct, VmFlag
from ..mm.vma import vma_link
from .task import Task, account_system_time

if TYPE_CHECKING:
    from ..machine import Machine

VM_LOCKED_MASK = VmFlag.LOCKED | VmFlag.LOCKONFAULT  # include/linux/mm.h
VM_INIT_DEF_MASK = VmFlag.NOHUGEPAGE  # what of mm->def_flags a child keeps (include/linux/mm.h)


def mm_alloc(m: Machine, mmap_base: int) -> MmStruct:
    """Mirrors mm_alloc() -> mm_init(): an empty mm with its own PGD and mm id. MemoryError without a page
    for the PGD."""
    mm = MmStruct(machine=m, pgd=0, mmap_base=mmap_base, mm_id=m.alloc_mm_id())
    mm.pgd = pgtable_alloc(m, mm, 4)
    if not mm.pgd:
        raise MemoryError("no memory left for a page directory")
    return mm


def dup_mmap(m: Machine, mm: MmStruct, oldmm: MmStruct) -> int:
    """Mirrors dup_mmap(): duplicate every VMA of ``oldmm`` into ``mm`` and copy what copy_page_range()
    copies. Returns the page-table entries copied (for the cost of the fork). ENOMEM (OSError) when a
    VM_ACCOUNT VMA cannot be charged (strict overcommit) or page tables cannot be had: the caller tears
    the half-made mm down."""
    copied = 0
    mm.total_vm, mm.data_vm = oldmm.total_vm, oldmm.data_vm
    for mpnt in list(oldmm.vmas):
        if mpnt.vm_flags & VmFlag.DONTCOPY:
            vm_stat_account(mm, mpnt.vm_flags, -mpnt.pages)
            continue
        if mpnt.vm_flags & VmFlag.ACCOUNT and not m.vm_enough_memory(mpnt.pages):
            raise syscall_error(errno.ENOMEM, "fork: the commit limit does not allow another copy")
        tmp = replace(mpnt, mm=mm, vm_flags=mpnt.vm_flags & ~VM_LOCKED_MASK, anon_vma=None,
                      anon_vma_chain=[])  # vm_area_dup(), vm_flags_clear(tmp, VM_LOCKED_MASK)
        if not tmp.vm_flags & VmFlag.WIPEONFORK:  # WIPEONFORK: the child starts with none of its pages
            anon_vma_fork(tmp, mpnt)
        vma_link(mm, tmp)
        if tmp.vm_file is not None:
            tmp.vm_file.get(tmp)  # get_file() + vma_interval_tree_insert_after()
        if not tmp.vm_flags & VmFlag.WIPEONFORK:
            copied += copy_page_range(m, tmp, mpnt)
    flush_tlb_mm_range(m, oldmm, 0, TASK_SIZE)  # the parent's write-protected entries
    return copied


def dup_mm(m: Machine, parent: Task) -> tuple[MmStruct, int]:
    """Mirrors dup_mm(): a new mm (mm_init(): flags in MMF_INIT_MASK and def_flags in VM_INIT_DEF_MASK
    inherited), filled by dup_mmap(); hiwater marks start at what it maps. Returns it and the entries
    copied. OSError(ENOMEM) on failure, with nothing left behind."""
    oldmm = parent.mm
    mm = mm_alloc(m, oldmm.mmap_base)
    mm.flags = oldmm.flags & MMF_INIT_MASK
    mm.def_flags = oldmm.def_flags & VM_INIT_DEF_MASK
    mm.start_brk, mm.brk = oldmm.start_brk, oldmm.brk  # brk (issue #9): dup_mm()'s memcpy of the mm_struct
    try:
        copied = dup_mmap(m, mm, oldmm)
    except (OSError, MemoryError) as exc:  # dup_mmap()'s fail_nomem: mmput() of the partial copy
        exit_mmap(m, mm)
        if isinstance(exc, OSError):
            raise
        raise syscall_error(errno.ENOMEM, "fork: no memory for the child's page tables") from exc
    mm.hiwater_rss = mm.get_rss()
    mm.hiwater_vm = mm.total_vm
    return mm, copied


def kernel_clone(parent: Task) -> Task:
    """Mirrors kernel_clone() -> copy_process() for fork(): the child task with a copy of the parent's
    mm, its descriptors (dup_fd(): the same open files, their references taken), its rlimits and
    capabilities; the parent's child. The parent is charged the time copy_process() takes (the cost
    model's figure for a fork plus each page-table entry copied). OSError(ENOMEM) if it cannot be done."""
    m = parent.machine
    mm, copied = dup_mm(m, parent)
    child = Task(m, m.alloc_pid(), parent.comm, mm, ppid=parent.pid)
    mm.owner = child
    child.caps = set(parent.caps)
    child.rlim = dict(parent.rlim)
    child.files = FdTable()
    for fd, f in parent.files.fds.items():  # dup_fd()
        f.f_count += 1
        child.files.fds[fd] = f
    child.parent = parent
    parent.children.append(child)
    m.tasks[child.pid] = child
    account_system_time(parent, m.cost.fork_cycles(copied))
    return child

