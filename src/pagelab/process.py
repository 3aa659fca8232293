"""The Process API: what a program does to memory, on the simulated machine.

A Process is the user-space side of a task: it makes system calls (mmap, munmap, mprotect, madvise,
exit) and accesses memory (load, store, touch, access). This module is the API only: it checks the
arguments (``abi``) and calls the kernel: system calls in kernel/syscalls.py, and for accesses the
user-mode run loop in arch/x86/entry.py (the MMU runs them; a trap enters the kernel's fault path and
the loop resumes at the same access). The same API drives the real kernel in ``pagelab.real``.
"""

from __future__ import annotations

import os
import resource
from typing import TYPE_CHECKING

import numpy as np

from . import abi
from .arch.x86.entry import MMU_CHUNK, load_byte, run_user_mode
from .constants import PAGE_SIZE
from .errors import ProcessDead
from .kernel import syscalls
from .kernel.sys import capability_number
from .libc.malloc import Malloc
from .workload.scenario import Op

if TYPE_CHECKING:
    from .kernel.task import Task
    from .machine import Machine

_ONE_READ = np.zeros(1, dtype=np.uint8)
_ONE_WRITE = np.ones(1, dtype=np.uint8)


def _one_address(addr: int) -> np.ndarray:
    """A one-access batch of a checked address (abi.access_address); the MMU sees the upper half as negative."""
    return np.array([addr], dtype=np.uint64).view(np.int64)


class Process:
    """A simulated process. Bad arguments raise OSError with Linux's errno; an access the kernel
    answers with SIGSEGV raises ``pagelab.SegmentationFault`` and the process is dead afterwards."""

    def __init__(self, machine: Machine, task: Task) -> None:
        self.machine = machine
        self.task = task
        self._malloc: Malloc | None = None  # brk and malloc (issue #9): the glibc allocator, made on first use
        self.exec_stopped = False  # exec (issue #9): the exec'd program is stopped at its exit
        self._exec_status = 0  # exec (issue #9): the exit code it then exits with

    @property
    def pid(self) -> int:
        return self.task.pid

    @property
    def alive(self) -> bool:
        return self.task.alive

    @property
    def ppid(self) -> int:
        """The parent's pid: the forking process's, or 1 (init) for a spawned or orphaned process."""
        return self.task.ppid

    # --- fork, exit, wait (issue #9) -----------------------------------------------------------------
    def fork(self) -> Process:
        """fork(2): a child process with a copy of this one's address space (which copies no memory: each
        side's first write to a private page faults and copies it); returns the child's Process. OSError
        ENOMEM when the copy cannot be charged or made."""
        child = Process(self.machine, syscalls.sys_fork(self._live()))
        if self._malloc is not None:  # brk and malloc (issue #9): the child's libc state is a copy, like its memory
            child._malloc = self._malloc.fork_copy(child)
        return child

    def wait(self, pid: int = -1, options: int = 0) -> tuple[int, int]:
        """waitpid(2): (pid, wait status) of an exited child (``pid`` -1: any), which is reaped; (0, 0)
        with os.WNOHANG while it runs. OSError ECHILD if there is no such child; WaitWouldBlock for a
        blocking wait on a running child (it runs only when called)."""
        return syscalls.sys_wait4(self._live(), *abi.wait_args(pid, options))

    def _live(self) -> Task:
        if not self.task.alive:
            raise ProcessDead(f"process {self.task.pid} has exited")
        if self.exec_stopped:  # exec (issue #9)
            raise ProcessDead(f"process {self.task.pid} ran {self.task.comm!r} and is stopped at its exit: "
                              "read its /proc files and rusage(), then exit() or wait()")
        return self.task

    # --- system calls ---------------------------------------------------------------------------
    def mmap(self, addr: int | None, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
        """mmap(2); returns the mapped address."""
        args = abi.mmap_args(addr, length, prot, flags, fd, offset)
        return syscalls.sys_mmap(self._live(), *args)

    def munmap(self, addr: int, length: int) -> None:
        """munmap(2)."""
        syscalls.sys_munmap(self._live(), *abi.munmap_args(addr, length))

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """mprotect(2)."""
        syscalls.sys_mprotect(self._live(), *abi.mprotect_args(addr, length, prot))

    def madvise(self, addr: int, length: int, advice: int) -> None:
        """madvise(2)."""
        syscalls.sys_madvise(self._live(), *abi.madvise_args(addr, length, advice))

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        """prctl(2); returns its result. Modelled: PR_SET_THP_DISABLE, PR_GET_THP_DISABLE."""
        return syscalls.sys_prctl(self._live(), *abi.prctl_args(option, arg2, arg3, arg4, arg5))

    # --- mremap (issue #9) ---
    def mremap(self, old_addr: int, old_size: int, new_size: int, flags: int = 0, new_addr: int = 0) -> int:
        """mremap(2) (MREMAP_MAYMOVE 1, MREMAP_FIXED 2, MREMAP_DONTUNMAP 4); returns the mapping's address.
        The page-table entries move with the mapping: the pages are not faulted again."""
        args = abi.mremap_args(old_addr, old_size, new_size, flags, new_addr)
        return syscalls.sys_mremap(self._live(), *args)

    # --- mlock, rlimits and capabilities (issue #9) ---
    def mlock(self, addr: int, length: int) -> None:
        """mlock(2): lock [addr, addr + length) in memory, faulting in what is not mapped yet."""
        syscalls.sys_mlock(self._live(), *abi.mlock_args(addr, length))

    def mlock2(self, addr: int, length: int, flags: int) -> None:
        """mlock2(2) (pagelab.MLOCK_ONFAULT: lock pages as they are faulted, populate nothing now)."""
        syscalls.sys_mlock2(self._live(), *abi.mlock2_args(addr, length, flags))

    def munlock(self, addr: int, length: int) -> None:
        """munlock(2)."""
        syscalls.sys_munlock(self._live(), *abi.mlock_args(addr, length))

    def mlockall(self, flags: int) -> None:
        """mlockall(2) (pagelab.MCL_CURRENT 1, MCL_FUTURE 2, MCL_ONFAULT 4)."""
        syscalls.sys_mlockall(self._live(), *abi.mlockall_args(flags))

    def munlockall(self) -> None:
        """munlockall(2)."""
        syscalls.sys_munlockall(self._live())

    def getrlimit(self, res: int) -> tuple[int, int]:
        """getrlimit(2): (soft, hard), resource.RLIM_INFINITY (-1) for no limit, as resource.getrlimit."""
        soft, hard = syscalls.sys_getrlimit(self._live(), abi.rlimit_resource(res))
        return abi.rlim_to_python(soft), abi.rlim_to_python(hard)

    def setrlimit(self, res: int, limits: tuple[int, int]) -> None:
        """setrlimit(2) with (soft, hard), as resource.setrlimit takes them (-1: RLIM_INFINITY)."""
        res = abi.rlimit_resource(res)
        syscalls.sys_setrlimit(self._live(), res, *abi.rlimit_pair(limits))

    def drop_capability(self, name: str) -> None:
        """Drop capability ``name`` (e.g. "CAP_IPC_LOCK") from the bounding, permitted and effective sets
        (prctl(PR_CAPBSET_DROP) + capset(2)); a spawned process starts with root's."""
        syscalls.sys_drop_capability(self._live(), capability_number(name))

    # --- files ----------------------------------------------------------------------------------
    def open(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
        """open(2); returns the descriptor. Paths are absolute, on the machine's filesystem (m.fs)."""
        return syscalls.sys_open(self._live(), *abi.open_args(path, flags, mode))

    def close(self, fd: int) -> None:
        """close(2)."""
        syscalls.sys_close(self._live(), abi.fd_arg(fd))

    def read(self, fd: int, n: int) -> int:
        """read(2) of ``n`` bytes; returns the bytes read. The data lands in a kernel-side buffer that is
        not part of the process's address space (no buffer faults, on either backend)."""
        return syscalls.sys_read(self._live(), *abi.read_args(fd, n))

    def pread(self, fd: int, n: int, offset: int) -> int:
        """pread(2); returns the bytes read (see read())."""
        return syscalls.sys_pread64(self._live(), *abi.pread_args(fd, n, offset))

    def write(self, fd: int, data: bytes) -> int:
        """write(2); returns the bytes written."""
        return syscalls.sys_write(self._live(), abi.fd_arg(fd), abi.write_data(data))

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        """pwrite(2); returns the bytes written."""
        fd, _n, offset = abi.pread_args(fd, 0, offset)
        return syscalls.sys_pwrite64(self._live(), fd, abi.write_data(data), offset)

    def lseek(self, fd: int, offset: int, whence: int = os.SEEK_SET) -> int:
        """lseek(2) (SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE); returns the new position."""
        return syscalls.sys_lseek(self._live(), *abi.lseek_args(fd, offset, whence))

    def ftruncate(self, fd: int, length: int) -> None:
        """ftruncate(2)."""
        syscalls.sys_ftruncate(self._live(), *abi.ftruncate_args(fd, length))

    def fsync(self, fd: int) -> None:
        """fsync(2): the file's dirty pages are written back; returns when they are on the disk."""
        syscalls.sys_fsync(self._live(), abi.fd_arg(fd))

    def fdatasync(self, fd: int) -> None:
        """fdatasync(2) (as fsync here: no separate inode metadata)."""
        syscalls.sys_fsync(self._live(), abi.fd_arg(fd))

    def msync(self, addr: int, length: int, flags: int) -> None:
        """msync(2) (MS_ASYNC 1, MS_INVALIDATE 2, MS_SYNC 4)."""
        syscalls.sys_msync(self._live(), *abi.msync_args(addr, length, flags))

    def fadvise(self, fd: int, offset: int, length: int, advice: int) -> None:
        """posix_fadvise(2) with os.POSIX_FADV_*; errors raise OSError (glibc returns them instead)."""
        syscalls.sys_fadvise64(self._live(), *abi.fadvise_args(fd, offset, length, advice))

    def cachestat(self, fd: int, offset: int = 0, length: int = 0) -> dict[str, int]:
        """cachestat(2) over [offset, offset + length) (0: to the end): nr_cache, nr_dirty, nr_writeback,
        nr_evicted, nr_recently_evicted, in pages."""
        return syscalls.sys_cachestat(self._live(), *abi.cachestat_args(fd, offset, length))

    def exit(self, code: int = 0) -> None:
        """exit(2): the address space is torn down, every frame and page-table page freed. After exec(),
        the program finishes the exit_group() it is stopped in, with its own status (``code`` is unused)."""
        if self.exec_stopped:  # exec (issue #9)
            self.exec_stopped = False
            syscalls.sys_exit(self._live(), self._exec_status)
            return
        syscalls.sys_exit(self._live(), abi.exit_status(code))

    # --- memory accesses ------------------------------------------------------------------------
    def load(self, addr: int) -> int:
        """Read the byte at ``addr`` (faulting it in as the hardware would)."""
        addr = abi.access_address(addr)
        task = self._live()
        run_user_mode(task, _one_address(addr), _ONE_READ)
        return load_byte(task, addr)

    def store(self, addr: int, value: int = 0) -> None:
        """Write the byte ``value`` (0..255) at ``addr``."""
        addr, value = abi.access_address(addr), abi.store_value(value)
        run_user_mode(self._live(), _one_address(addr), _ONE_WRITE, value)

    def touch(self, addr: int, length: int, *, write: bool = False, stride: int = PAGE_SIZE) -> None:
        """Access [addr, addr + length) every ``stride`` bytes: one read (or write) per 4 KiB page by default.

        A write access stores the byte 0, on both backends, so fresh pages stay zero-filled.
        """
        addr, length, write, stride = abi.touch_args(addr, length, write, stride)
        self._live()
        per_call = MMU_CHUNK * stride  # never more than one step's addresses in host memory at once
        for start in range(addr, addr + length, per_call):
            addrs = np.arange(start, min(start + per_call, addr + length), stride, dtype=np.uint64).view(np.int64)
            run_user_mode(self._live(), addrs, _ONE_WRITE if write else _ONE_READ)

    def access(self, addresses: np.ndarray | list[int], *, write: bool | np.ndarray = False) -> None:
        """Access each address in order; ``write`` is one flag or one flag per address."""
        addrs = abi.access_addresses(addresses).view(np.int64)
        run_user_mode(self._live(), addrs, abi.access_writes(write, addrs.shape[0]).view(np.uint8))

    def mincore(self, addr: int, length: int) -> np.ndarray:
        """mincore(2): one byte per page, 1 where a page is resident (the zero page counts)."""
        return syscalls.sys_mincore(self._live(), *abi.mincore_args(addr, length))

    def run_phase(self, ops: list[Op]) -> tuple[resource.struct_rusage, resource.struct_rusage]:
        """Run Process API calls ``[(name, args, kwargs), ...]`` back to back as one measured phase.

        Returns getrusage() right before and right after them (both backends share this contract; the
        real one takes the snapshots inside the child so its own pipe traffic is not counted).
        """
        calls = [(getattr(self, name), args, kwargs) for name, args, kwargs in ops]
        before = self.rusage()
        for fn, args, kwargs in calls:
            fn(*args, **kwargs)
        return before, self.rusage()

    def perf_counts(self) -> dict[str, int]:
        """perf's page-faults, minor-faults and major-faults of this process so far."""
        return {ev.value: n for ev, n in self.task.perf.items()}

    # --- brk and malloc (issue #9) ---
    def brk(self, addr: int) -> int:
        """brk(2), the raw system call: the new break, or the old one if refused; brk(0) reads it."""
        return syscalls.sys_brk(self._live(), abi.c_ulong(addr, "addr"))

    @property
    def libc(self) -> Malloc:
        """This process's glibc allocator (pagelab.libc.malloc), made at its first use."""
        if self._malloc is None:
            self._malloc = Malloc(self)
        return self._malloc

    def malloc(self, n: int) -> int:
        """glibc's malloc(n) (pagelab.libc.malloc) over this process's brk, mmap and stores; 0 if it fails."""
        return self.libc.malloc(abi.c_ulong(n, "size"))

    def free(self, addr: int) -> None:
        """glibc's free(); a pointer malloc did not return raises pagelab.libc.malloc.MallocError (glibc aborts)."""
        self._live()
        self.libc.free(abi.c_ulong(addr, "ptr"))

    def malloc_trim(self, pad: int) -> int:
        """glibc's malloc_trim(pad): 1 if memory went back to the kernel."""
        self._live()
        return self.libc.malloc_trim(abi.c_ulong(pad, "pad"))

    def mallopt(self, param: int, value: int) -> int:
        """glibc's mallopt() (M_TRIM_THRESHOLD -1, M_TOP_PAD -2, M_MMAP_THRESHOLD -3, M_MMAP_MAX -4): 1 or 0."""
        self._live()
        return self.libc.mallopt(abi.c_int(param, "param"), abi.c_int(value, "value"))

    # --- exec (issue #9) ---
    def exec(self, path: str, argv: list[str]) -> None:
        """execve(2) of the host ELF program ``path`` with ``argv`` and an empty environment, then its
        start-up, then a stop at its exit, on both backends alike.

        The kernel part (a new mm, the program, ld.so, the vDSO, the stack, brk) is simulated from the
        ELF files (kernel/exec.py, fs/binfmt_elf.py); the dynamic loader maps the libraries
        (workload/ld_so.py); the program's accesses until its exit come from its start-up profile,
        captured once from a real launch (workload/startup.py). Afterwards the process is stopped in
        exit_group() (PTRACE_EVENT_EXIT on the real backend): /proc/PID/maps, smaps, status and stat,
        and rusage() can be read; every other call raises ProcessDead until exit() lets it finish.
        Errors before the point of no return leave the process unchanged: OSError ENOENT, EACCES,
        ENOEXEC, E2BIG as execve(2) returns them, ProfileError when no profile can be had."""
        from .kernel.exec import check_exec
        from .workload.startup import check_libraries, layout_phase, profile_for, run_startup

        task = self._live()
        path, argv = check_exec(path, argv, task.rlim[resource.RLIMIT_STACK][0])  # ENOENT ... E2BIG first
        profile = profile_for(path, argv)
        check_libraries(profile)  # ProfileError before the point of no return
        loaded = syscalls.sys_execve(task, path, argv, layout_phase(profile))
        run_startup(self, loaded, profile)
        self._exec_status = profile.status
        self.exec_stopped = True

    # --- accounting -----------------------------------------------------------------------------
    def rusage(self) -> resource.struct_rusage:
        """getrusage(RUSAGE_SELF), with the fields Python's resource.struct_rusage has."""
        return syscalls.sys_getrusage(self.task)

    def __repr__(self) -> str:
        state = "alive" if self.task.alive else "dead"
        return f"<pagelab.Process pid={self.pid} {self.task.comm!r} {state}>"
