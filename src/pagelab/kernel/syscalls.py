"""System-call entry points: thin wrappers from the Process API into mm/.

Mirrors the SYSCALL_DEFINEs of mm/mmap.c, mm/mprotect.c, mm/madvise.c and kernel/sys.c
(getrusage). Each runs as one kernel entry (``@syscall``: host signals wait until it returns, as
Linux delivers signals on the way back to user mode) and hands over to the mm function named like
Linux's.
"""

from __future__ import annotations

import errno
import resource
from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec, TypeVar

import numpy as np

from ..constants import (
    MAP_NONBLOCK,
    MAP_POPULATE,
    PAGE_SHIFT,
    PAGE_SIZE,
    PR_GET_MEMORY_MERGE,
    PR_GET_THP_DISABLE,
    PR_SET_MEMORY_MERGE,
    PR_SET_THP_DISABLE,
    PR_THP_DISABLE_EXCEPT_ADVISED,
)
from ..errors import NotModelled, syscall_error
from ..fs.open import do_ftruncate, do_sys_open
from ..fs.read_write import ksys_lseek, ksys_read, ksys_write
from ..mm import mlock
from ..mm.fadvise import generic_fadvise
from ..mm.filemap import filemap_cachestat
from ..mm.madvise import do_madvise, mm_populate
from ..mm.mincore import do_mincore
from ..mm.mlock import mm_populate_range
from ..mm.mmap import do_mmap, do_munmap
from ..mm.mmap import sys_brk as mmap_sys_brk
from ..mm.mprotect import do_mprotect
from ..mm.mremap import do_mremap, vma_ksm_compatible
from ..mm.msync import do_msync
from ..mm.page_writeback import write_inode_now
from ..mm.types import MMF_DISABLE_THP_COMPLETELY, MMF_DISABLE_THP_EXCEPT_ADVISED, MMF_VM_MERGE_ANY, VmFlag
from ..mm.vma import find_vma
from . import sys as ksys
from .exec import Loaded, do_execveat_common
from .exit import do_wait
from .fork import kernel_clone
from .task import Task, task_cputime

_P = ParamSpec("_P")
_R = TypeVar("_R")


def syscall(fn: Callable[Concatenate[Task, _P], _R]) -> Callable[Concatenate[Task, _P], _R]:
    """Run a system call as one kernel entry: it completes (or fails) before any host signal is seen.

    Mirrors kernel/entry/common.c: syscall_enter_from_user_mode() ... syscall_exit_to_user_mode().
    """
    def entry(task: Task, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with task.machine.kernel_entry:
            return fn(task, *args, **kwargs)
    return wraps(fn)(entry)


@syscall
def sys_mmap(task: Task, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    """Mirrors vm_mmap_pgoff(): do_mmap(), then mm_populate() for MAP_POPULATE without MAP_NONBLOCK, or
    for a VM_LOCKED mapping (MAP_LOCKED, mlockall(MCL_FUTURE)): __mm_populate() with its errors ignored."""
    ret = do_mmap(task, addr, length, prot, flags, fd, offset)
    vma = find_vma(task.mm, ret)
    if vma is not None and vma.vm_flags & VmFlag.LOCKED:  # mlock (issue #9)
        mm_populate_range(task, ret, (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), ignore_errors=True)
    elif flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE:
        mm_populate(task, ret, (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
    return ret


@syscall
def sys_munmap(task: Task, addr: int, length: int) -> None:
    do_munmap(task, addr, length)


@syscall
def sys_mprotect(task: Task, addr: int, length: int, prot: int) -> None:
    do_mprotect(task, addr, length, prot)


@syscall
def sys_madvise(task: Task, addr: int, length: int, advice: int) -> None:
    do_madvise(task, addr, length, advice)


PR_LAST = 78  # PR_FUTEX_HASH, the highest prctl option of 6.18 (include/uapi/linux/prctl.h)
PR_MAGIC = (0x59616D61, 0x41555856, 0x53564D41)  # PR_SET_PTRACER, PR_GET_AUXV, PR_SET_VMA


@syscall
def sys_prctl(task: Task, option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    """Mirrors prctl(2) (kernel/sys.c) for the options this simulator models: PR_SET_THP_DISABLE and
    PR_GET_THP_DISABLE (prctl_set_thp_disable(), prctl_get_thp_disable()). Other options: NotModelled."""
    mm = task.mm
    if option == PR_GET_THP_DISABLE:
        if arg2 or arg3 or arg4 or arg5:
            raise syscall_error(errno.EINVAL, "prctl(PR_GET_THP_DISABLE): arguments must be 0")
        if mm.flags & MMF_DISABLE_THP_COMPLETELY:
            return 1
        return 1 | PR_THP_DISABLE_EXCEPT_ADVISED if mm.flags & MMF_DISABLE_THP_EXCEPT_ADVISED else 0
    if option == PR_SET_THP_DISABLE:
        if arg4 or arg5 or (not arg2 and arg3) or arg3 & ~PR_THP_DISABLE_EXCEPT_ADVISED:
            raise syscall_error(errno.EINVAL, "prctl(PR_SET_THP_DISABLE): flags only when disabling, "
                                "and only PR_THP_DISABLE_EXCEPT_ADVISED")
        mm.flags &= ~(MMF_DISABLE_THP_COMPLETELY | MMF_DISABLE_THP_EXCEPT_ADVISED)
        if arg2:
            mm.flags |= MMF_DISABLE_THP_EXCEPT_ADVISED if arg3 else MMF_DISABLE_THP_COMPLETELY
        return 0
    if option in (PR_SET_MEMORY_MERGE, PR_GET_MEMORY_MERGE):
        return prctl_memory_merge(task, option, arg2, arg3, arg4, arg5)
    if 1 <= option <= PR_LAST or option in PR_MAGIC:
        raise NotModelled(f"prctl option {option}")
    raise syscall_error(errno.EINVAL, f"prctl: no option {option}")  # the switch's default: -EINVAL


@syscall
def sys_mincore(task: Task, addr: int, length: int) -> np.ndarray:
    """Mirrors mincore(2): see mm/mincore.py."""
    return do_mincore(task, addr, length)


@syscall
def sys_exit(task: Task, code: int) -> None:
    """Mirrors exit(2) -> do_exit(): the address space is torn down."""
    task.do_exit(code)


# --- fork, exit, wait (kernel/fork.c, kernel/exit.c) ----------------------------------------------------

@syscall
def sys_fork(task: Task) -> Task:
    """Mirrors fork(2) -> kernel_clone(): the child task."""
    return kernel_clone(task)


@syscall
def sys_wait4(task: Task, pid: int, options: int) -> tuple[int, int]:
    """Mirrors wait4(2) without the rusage: see kernel/exit.py do_wait()."""
    return do_wait(task, pid, options)


@syscall
def sys_getrusage(task: Task) -> resource.struct_rusage:
    """Mirrors getrusage(RUSAGE_SELF) (kernel/sys.c): times, peak RSS in KiB, fault counts, voluntary switches."""
    freq_hz = task.machine.cpu.freq_mhz * 1_000_000
    maxrss = max(task.mm.hiwater_rss, task.mm.get_rss())
    utime, stime = task_cputime(task)
    return resource.struct_rusage((
        utime / freq_hz, stime / freq_hz, maxrss * 4,
        0, 0, 0, task.min_flt, task.maj_flt, 0, 0, 0, 0, 0, 0, task.nvcsw, 0,
    ))


# --- files (fs/open.c, fs/read_write.c, fs/sync.c, mm/msync.c, mm/fadvise.c, mm/filemap.c: cachestat) -----

@syscall
def sys_open(task: Task, path: str, flags: int, mode: int) -> int:
    return do_sys_open(task, path, flags, mode)


@syscall
def sys_close(task: Task, fd: int) -> None:
    task.files.close_fd(fd)


@syscall
def sys_read(task: Task, fd: int, count: int) -> int:
    return ksys_read(task, fd, count, None)


@syscall
def sys_pread64(task: Task, fd: int, count: int, pos: int) -> int:
    return ksys_read(task, fd, count, pos)


@syscall
def sys_write(task: Task, fd: int, data: bytes) -> int:
    return ksys_write(task, fd, data, None)


@syscall
def sys_pwrite64(task: Task, fd: int, data: bytes, pos: int) -> int:
    return ksys_write(task, fd, data, pos)


@syscall
def sys_lseek(task: Task, fd: int, offset: int, whence: int) -> int:
    return ksys_lseek(task, fd, offset, whence)


@syscall
def sys_ftruncate(task: Task, fd: int, length: int) -> None:
    do_ftruncate(task, fd, length)


@syscall
def sys_fsync(task: Task, fd: int) -> None:
    """Mirrors do_fsync() -> ext4_sync_file(): write the file's dirty folios back and wait (fdatasync
    is the same here: there is no inode metadata to write separately)."""
    write_inode_now(task.machine, task.files.fget(fd).inode, sync=True, task=task)


@syscall
def sys_msync(task: Task, start: int, length: int, flags: int) -> None:
    do_msync(task, start, length, flags)


@syscall
def sys_fadvise64(task: Task, fd: int, offset: int, length: int, advice: int) -> None:
    """Mirrors ksys_fadvise64_64(): EBADF, then generic_fadvise()."""
    generic_fadvise(task, task.files.fget(fd), offset, length, advice)


@syscall
def sys_cachestat(task: Task, fd: int, off: int, length: int, flags: int) -> dict[str, int]:
    """Mirrors cachestat(2) (mm/filemap.c: filemap_cachestat()): EINVAL for flags, EBADF; the range's
    pages cached, dirty, under writeback, evicted and recently evicted (no shadow entries: 0, 0)."""
    if flags:
        raise syscall_error(errno.EINVAL, "cachestat: flags must be 0")
    f = task.files.fget(fd)
    first = off >> PAGE_SHIFT
    last = (1 << 64) - 1 if length == 0 else (off + length - 1) >> PAGE_SHIFT
    return filemap_cachestat(task.machine, f.mapping, first, last)


# --- brk (issue #9) ---------------------------------------------------------------------------------
sys_brk = syscall(mmap_sys_brk)  # SYSCALL_DEFINE1(brk) lives in mm/mmap.py, as in Linux


# --- mremap (issue #9) ------------------------------------------------------------------------------
@syscall
def sys_mremap(task: Task, addr: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
    """Mirrors SYSCALL_DEFINE5(mremap) (mm/mremap.py)."""
    return do_mremap(task, addr, old_len, new_len, flags, new_addr)


def prctl_memory_merge(task: Task, option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    """Mirrors prctl(PR_SET_MEMORY_MERGE / PR_GET_MEMORY_MERGE) (kernel/sys.c): the GET takes no
    argument, the SET only arg2 (any non-zero value enables); no capability is needed (measured as
    uid 65534). SET stores MMF_VM_MERGE_ANY and marks every KSM-compatible VMA VM_MERGEABLE
    (ksm_enable_merge_any()), clearing it again on SET 0 (ksm_disable_merge_any()). Simplified: no
    KSM daemon, so nothing is merged (as here: /sys/kernel/mm/ksm/run is 0)."""
    mm = task.mm
    if option == PR_GET_MEMORY_MERGE:
        if arg2 or arg3 or arg4 or arg5:
            raise syscall_error(errno.EINVAL, "prctl(PR_GET_MEMORY_MERGE): arguments must be 0")
        return 1 if mm.flags & MMF_VM_MERGE_ANY else 0
    if arg3 or arg4 or arg5:
        raise syscall_error(errno.EINVAL, "prctl(PR_SET_MEMORY_MERGE): arg3..arg5 must be 0")
    if arg2:
        mm.flags |= MMF_VM_MERGE_ANY
    else:
        mm.flags &= ~MMF_VM_MERGE_ANY
    for vma in list(mm.vmas):
        if vma_ksm_compatible(vma):
            vma.vm_flags = vma.vm_flags | VmFlag.MERGEABLE if arg2 else vma.vm_flags & ~VmFlag.MERGEABLE
    return 0


# --- mlock, rlimits and capabilities (issue #9) --------------------------------------------------------
@syscall
def sys_mlock(task: Task, start: int, length: int) -> None:
    """Mirrors SYSCALL_DEFINE2(mlock) (mm/mlock.py)."""
    mlock.sys_mlock(task, start, length)


@syscall
def sys_mlock2(task: Task, start: int, length: int, flags: int) -> None:
    """Mirrors SYSCALL_DEFINE3(mlock2) (mm/mlock.py)."""
    mlock.sys_mlock2(task, start, length, flags)


@syscall
def sys_munlock(task: Task, start: int, length: int) -> None:
    """Mirrors SYSCALL_DEFINE2(munlock) (mm/mlock.py)."""
    mlock.sys_munlock(task, start, length)


@syscall
def sys_mlockall(task: Task, flags: int) -> None:
    """Mirrors SYSCALL_DEFINE1(mlockall) (mm/mlock.py)."""
    mlock.sys_mlockall(task, flags)


@syscall
def sys_munlockall(task: Task) -> None:
    """Mirrors SYSCALL_DEFINE0(munlockall) (mm/mlock.py)."""
    mlock.sys_munlockall(task)


@syscall
def sys_getrlimit(task: Task, resource: int) -> tuple[int, int]:
    """Mirrors SYSCALL_DEFINE2(getrlimit) (kernel/sys.py): (soft, hard), RLIM_INFINITY as 2**64 - 1."""
    return ksys.sys_getrlimit(task, resource)


@syscall
def sys_setrlimit(task: Task, resource: int, soft: int, hard: int) -> None:
    """Mirrors SYSCALL_DEFINE2(setrlimit) (kernel/sys.py)."""
    ksys.sys_setrlimit(task, resource, soft, hard)


@syscall
def sys_drop_capability(task: Task, cap: int) -> None:
    """prctl(PR_CAPBSET_DROP) + capset() without ``cap`` (kernel/sys.py: drop_capability())."""
    ksys.drop_capability(task, cap)


# --- exec (issue #9) --------------------------------------------------------------------------------------

@syscall
def sys_execve(task: Task, path: str, argv: list[str], phase: tuple[int, int] | None = None) -> Loaded:
    """Mirrors SYSCALL_DEFINE3(execve) -> do_execveat_common() (kernel/exec.py)."""
    return do_execveat_common(task, path, argv, phase)
