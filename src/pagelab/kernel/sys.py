"""Resource limits and capabilities: getrlimit(), setrlimit(), prlimit64(), and dropping a capability.

Mirrors kernel/sys.c: do_prlimit() (EINVAL for an unknown resource or soft > hard; EPERM for an
RLIMIT_NOFILE hard limit above fs.nr_open, or for raising a hard limit without CAP_SYS_RESOURCE),
SYSCALL_DEFINE2(getrlimit), SYSCALL_DEFINE2(setrlimit); include/asm-generic/resource.h: INIT_RLIMITS;
kernel/fork.c: set_max_threads() (RLIMIT_NPROC and RLIMIT_SIGPENDING start at max_threads / 2);
kernel/capability.c: capset(2) and security/commoncap.c: cap_prctl_drop() (PR_CAPBSET_DROP), as
``drop_capability()`` does them: the capability leaves the bounding, permitted and effective sets.

Limits are kept in bytes or counts, RLIM_INFINITY as the kernel's 2**64 - 1 (the Process API speaks
Python's resource.RLIM_INFINITY, -1, and converts). The simulator consults RLIMIT_MEMLOCK (mm/mlock.py)
and RLIMIT_DATA (brk); the others are stored and reported.

Simplified: no security_task_setrlimit() (no LSM); no RLIMIT_CPU timer; no user namespaces (capable()
is the task's own set); the inheritable and ambient sets are not kept.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from ..errors import syscall_error
from .task import INIT_RLIMITS, RLIM_INFINITY

if TYPE_CHECKING:
    from .task import Task

RLIM_NLIMITS = 16  # include/uapi/asm-generic/resource.h
RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_CORE, RLIMIT_RSS, RLIMIT_NPROC = 0, 1, 4, 5, 6
RLIMIT_LOCKS, RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_RTPRIO, RLIMIT_RTTIME = 10, 11, 12, 13, 14, 15
RLIMIT_NOFILE = 7
MQ_BYTES_MAX = 819200  # include/uapi/linux/mqueue.h: RLIMIT_MSGQUEUE's INIT_RLIMITS value
NR_OPEN = 1024 * 1024  # fs/file.c: sysctl_nr_open's default (fs.nr_open)
THREAD_SIZE = 16 << 10  # x86-64: 16 KiB kernel stacks
FUTEX_TID_MASK = 0x3FFFFFFF
MIN_THREADS = 20

# include/uapi/linux/capability.h: every capability 6.18 knows, by number.
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)


def capability_number(name: object) -> int:
    """The number of capability ``name`` ("CAP_IPC_LOCK"); TypeError for a non-string, ValueError for an
    unknown name (both backends check this before anything happens)."""
    if not isinstance(name, str):
        raise TypeError(f"capability must be a name like 'CAP_IPC_LOCK', not {type(name).__name__}")
    try:
        return CAPABILITIES.index(name)
    except ValueError:
        raise ValueError(f"unknown capability {name!r} (include/uapi/linux/capability.h)") from None


def default_rlimit(task: Task, resource: int) -> tuple[int, int]:
    """The limit a spawned process has for ``resource`` when the task does not hold it yet: INIT_RLIMITS
    (task.py's for those it keeps), with RLIMIT_NPROC and RLIMIT_SIGPENDING at max_threads / 2 of this
    machine's RAM, as set_max_threads() sets init's at boot."""
    if resource in INIT_RLIMITS:
        return INIT_RLIMITS[resource]
    if resource in (RLIMIT_NPROC, RLIMIT_SIGPENDING):
        threads = task.machine.totalram_pages * 4096 // (8 * THREAD_SIZE)
        threads = max(MIN_THREADS, min(threads, FUTEX_TID_MASK))
        return threads // 2, threads // 2
    if resource == RLIMIT_CORE:
        return 0, RLIM_INFINITY
    if resource == RLIMIT_MSGQUEUE:
        return MQ_BYTES_MAX, MQ_BYTES_MAX
    if resource in (RLIMIT_NICE, RLIMIT_RTPRIO):
        return 0, 0
    return RLIM_INFINITY, RLIM_INFINITY  # CPU, FSIZE, RSS, LOCKS, RTTIME


def do_prlimit(task: Task, resource: int, new: tuple[int, int] | None) -> tuple[int, int]:
    """Mirrors do_prlimit(): returns the old (soft, hard) and installs ``new`` if given. Errors in the
    kernel's order: EINVAL (resource >= RLIM_NLIMITS; soft > hard), EPERM (RLIMIT_NOFILE's hard limit
    above fs.nr_open; a hard limit raised without CAP_SYS_RESOURCE)."""
    if not 0 <= resource < RLIM_NLIMITS:
        raise syscall_error(errno.EINVAL, f"prlimit: no resource {resource}")
    if new is not None:
        soft, hard = new
        if soft > hard:
            raise syscall_error(errno.EINVAL, "setrlimit: the soft limit is above the hard limit")
        if resource == RLIMIT_NOFILE and hard > NR_OPEN:
            raise syscall_error(errno.EPERM, "setrlimit: RLIMIT_NOFILE above fs.nr_open")
    old = task.rlim.get(resource) or default_rlimit(task, resource)
    if new is not None:
        if new[1] > old[1] and not task.capable("CAP_SYS_RESOURCE"):
            raise syscall_error(errno.EPERM, "setrlimit: raising the hard limit needs CAP_SYS_RESOURCE")
        task.rlim[resource] = new
    return old


def sys_getrlimit(task: Task, resource: int) -> tuple[int, int]:
    """Mirrors SYSCALL_DEFINE2(getrlimit) (glibc calls prlimit64(0, resource, NULL, old))."""
    return do_prlimit(task, resource, None)


def sys_setrlimit(task: Task, resource: int, soft: int, hard: int) -> None:
    """Mirrors SYSCALL_DEFINE2(setrlimit) (glibc: prlimit64(0, resource, new, NULL))."""
    do_prlimit(task, resource, (soft, hard))


def drop_capability(task: Task, cap: int) -> None:
    """``prctl(PR_CAPBSET_DROP, cap)`` then ``capset()`` without ``cap`` in the permitted and effective sets
    (what the real backend's child does): the task no longer has it, and cannot get it back. Dropping one
    not held is no error. Simplified: cap_prctl_drop()'s CAP_SETPCAP check is left out (task.caps keeps
    only the capabilities the simulator consults; a spawned process is root and holds it)."""
    task.caps.discard(CAPABILITIES[cap])
