"""The C library calls the real backend makes, through ctypes (no compiler needed).

Each wrapper raises OSError with the kernel's errno, as the simulator does. ``install_fault_reporter``
puts an SA_SIGINFO handler on SIGSEGV and SIGBUS that writes (signo, si_code, si_addr) to a pipe and
then lets the signal kill the process, so the parent learns the real si_code without a C helper.
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long
MAP_FAILED = ctypes.c_void_p(-1).value
PR_SET_NAME = 15
FAULT_FRAME = struct.Struct("<iiQ")


def _raise(what: str) -> None:
    e = ctypes.get_errno()
    raise OSError(e, f"{what}: {os.strerror(e)}")


def mmap(addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    r = _libc.mmap(addr or None, length, prot, flags, fd, offset)
    if r == MAP_FAILED:
        _raise("mmap")
    return r or 0


def munmap(addr: int, length: int) -> None:
    if _libc.munmap(addr, length) != 0:
        _raise("munmap")


def mprotect(addr: int, length: int, prot: int) -> None:
    if _libc.mprotect(addr, length, prot) != 0:
        _raise("mprotect")


def madvise(addr: int, length: int, advice: int) -> None:
    if _libc.madvise(addr, length, advice) != 0:
        _raise("madvise")


def msync(addr: int, length: int, flags: int) -> None:
    """msync(2)."""
    if _libc.msync(addr, length, flags) != 0:
        _raise("msync")


SYS_cachestat = 451  # x86-64 (and every architecture: include/uapi/asm-generic/unistd.h), Linux 6.5+
CACHESTAT_FIELDS = ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")


class CachestatRange(ctypes.Structure):
    """``struct cachestat_range`` of include/uapi/linux/mman.h."""

    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class Cachestat(ctypes.Structure):
    """``struct cachestat`` of include/uapi/linux/mman.h."""

    _fields_ = [(name, ctypes.c_uint64) for name in CACHESTAT_FIELDS]


def cachestat(fd: int, offset: int, length: int, flags: int = 0) -> dict[str, int]:
    """cachestat(2) (Linux 6.5+, no glibc wrapper): the page-cache state of [offset, offset + length) of
    ``fd``'s file (length 0: to the end of the file), as a dict of the five ``struct cachestat`` fields."""
    rng = CachestatRange(offset, length)
    out = Cachestat()
    if _libc.syscall(ctypes.c_long(SYS_cachestat), ctypes.c_long(fd), ctypes.byref(rng), ctypes.byref(out),
                     ctypes.c_ulong(flags)) != 0:
        _raise("cachestat")
    return {name: int(getattr(out, name)) for name in CACHESTAT_FIELDS}


MINCORE_CHUNK = 1 << 30  # bytes of address space per mincore() call: a vector of 256 KiB at most


def prctl(option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    result = int(_libc.prctl(option, arg2, arg3, arg4, arg5))
    if result < 0:
        _raise("prctl")
    return result


def mincore(addr: int, length: int) -> bytes:
    """mincore(2), one call per MINCORE_CHUNK of the range, so the vector grows only as far as the kernel
    answered: a huge length fails (ENOMEM at its first hole, or past the end of user space) as one call
    would, without first allocating a vector of up to 2**52 bytes."""
    out = bytearray()
    while True:
        n = min(length, MINCORE_CHUNK)
        pages = (n + 4095) // 4096
        vec = ctypes.create_string_buffer(max(pages, 1))
        if _libc.mincore(addr, n, vec) != 0:
            _raise("mincore")
        out += vec.raw[:pages]
        addr, length = addr + n, length - n
        if not length:
            return bytes(out)


def set_comm(name: str) -> None:
    """prctl(PR_SET_NAME): what /proc/PID/status shows as Name."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _libc.prctl(PR_SET_NAME, ctypes.addressof(buf), 0, 0, 0)


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_heap(nbytes: int) -> None:
    """Make malloc keep and reuse its heap: no mmap'd chunks, no trimming, ``nbytes`` pre-faulted.

    After this the child's own allocations reuse resident heap pages instead of faulting in new ones.
    """
    _libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # glibc's maximum (HEAP_MAX_SIZE / 2 on 64-bit)
    _libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    _libc.malloc.restype = ctypes.c_void_p
    _libc.malloc.argtypes = [ctypes.c_size_t]
    _libc.free.argtypes = [ctypes.c_void_p]
    chunks = [_libc.malloc(16 << 20) for _ in range(max(nbytes >> 24, 1))]
    for p in chunks:
        if p:
            ctypes.memset(p, 0, 16 << 20)
    for p in chunks:
        if p:
            _libc.free(p)


class _SigInfo(ctypes.Structure):
    _fields_ = [("si_signo", ctypes.c_int), ("si_errno", ctypes.c_int), ("si_code", ctypes.c_int),
                ("_pad", ctypes.c_int), ("si_addr", ctypes.c_void_p)]


_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(_SigInfo), ctypes.c_void_p)


class _SigAction(ctypes.Structure):
    _fields_ = [("sa_sigaction", _HANDLER), ("sa_mask", ctypes.c_ulong * 16), ("sa_flags", ctypes.c_int),
                ("sa_restorer", ctypes.c_void_p)]


SA_SIGINFO = 4
_keep: list[object] = []  # the callback must outlive the handler registration


def install_fault_reporter(fd: int, record_fd: int = -1, signals: tuple[int, ...] = (11, 7)) -> None:
    """On SIGSEGV/SIGBUS, write FAULT_FRAME(signo, si_code, si_addr) to ``fd`` and die of the signal.

    The same report is first written at offset 0 of ``record_fd`` (a memfd the parent holds, if not -1): a read
    of the pipe can be lost to an interrupt in the parent, a pread() of the record cannot."""

    def handler(sig: int, info: Any, _ctx: Any) -> None:
        i = info.contents
        report = b"\xff\xff\xff\xff" + FAULT_FRAME.pack(sig, i.si_code, i.si_addr or 0)
        if record_fd >= 0:
            os.pwrite(record_fd, report, 0)
        os.write(fd, report)
        dfl = _SigAction()
        _libc.sigaction(sig, ctypes.byref(dfl), None)  # SIG_DFL: the re-executed access kills us

    cb = _HANDLER(handler)
    _keep.append(cb)
    for sig in signals:
        act = _SigAction()
        act.sa_sigaction = cb
        act.sa_flags = SA_SIGINFO
        if _libc.sigaction(sig, ctypes.byref(act), None) != 0:
            _raise("sigaction")


SYS_OPENAT2 = 437
RESOLVE_IN_ROOT = 0x10  # include/uapi/linux/openat2.h: resolve as if the dirfd were the root ("/", "..")
# VALID_OPEN_FLAGS (include/linux/fcntl.h), x86-64 octal values: what open(2) keeps of its flags
VALID_OPEN_FLAGS = (0o3 | 0o100 | 0o200 | 0o400 | 0o1000 | 0o2000 | 0o4000 | 0o10000 | 0o20000 | 0o40000
                    | 0o100000 | 0o200000 | 0o400000 | 0o1000000 | 0o2000000 | 0o4000000 | 0o10000000
                    | 0o20000000)
O_CREAT, O_TMPFILE_BIT = 0o100, 0o20000000


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def open_in_root(dirfd: int, path: str, flags: int, mode: int) -> int:
    """open(2) of ``path`` as a process chrooted to directory ``dirfd`` would (openat2(RESOLVE_IN_ROOT)):
    the kernel walks every component itself ("f/x" is ENOTDIR, "missing/.." ENOENT), and ".." never
    leaves the root. The flags are open(2)'s (VALID_OPEN_FLAGS kept, the mode only with O_CREAT or
    O_TMPFILE), so the answers are open(2)'s. Returns the descriptor; OSError with the kernel's errno."""
    rel = path.lstrip("/") or "."
    how = _OpenHow(flags & VALID_OPEN_FLAGS, mode & 0o7777 if flags & (O_CREAT | O_TMPFILE_BIT) else 0,
                   RESOLVE_IN_ROOT)
    fd = _libc.syscall(SYS_OPENAT2, ctypes.c_int(dirfd), ctypes.c_char_p(os.fsencode(rel)), ctypes.byref(how),
                       ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        _raise("openat2")
    return int(fd)


# --- fork (issue #9): the controller takes a forked process's pipe ends from its parent -----------------
SYS_PIDFD_GETFD = 438  # x86-64 and asm-generic, Linux 5.6+
PR_SET_CHILD_SUBREAPER = 36


def pidfd_getfd(pidfd: int, targetfd: int) -> int:
    """pidfd_getfd(2): a duplicate, in this process and close-on-exec, of descriptor ``targetfd`` of the
    process ``pidfd`` names (PTRACE_MODE_ATTACH_REALCREDS: a descendant of the same user, or CAP_SYS_PTRACE)."""
    fd = _libc.syscall(ctypes.c_long(SYS_PIDFD_GETFD), ctypes.c_int(pidfd), ctypes.c_int(targetfd),
                       ctypes.c_uint(0))
    if fd < 0:
        _raise("pidfd_getfd")
    return int(fd)


# --- mremap (issue #9) ---
# x86-64; the raw syscall, so MREMAP_DONTUNMAP passes new_address (glibc reads it only with MREMAP_FIXED)
SYS_mremap = 25


def mremap(addr: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
    """mremap(2) through syscall(2); returns the new address or raises OSError with the kernel's errno."""
    ret = _libc.syscall(ctypes.c_long(SYS_mremap), ctypes.c_ulong(addr), ctypes.c_ulong(old_len),
                        ctypes.c_ulong(new_len), ctypes.c_ulong(flags), ctypes.c_ulong(new_addr))
    if ret == -1:
        _raise("mremap")
    return int(ret) & ((1 << 64) - 1)


# --- mlock, rlimits and capabilities (issue #9): raw system calls, so the kernel's errno comes back as it is ---
SYS_mlock, SYS_munlock, SYS_mlockall, SYS_munlockall = 149, 150, 151, 152  # x86-64
SYS_mlock2 = 325
SYS_prlimit64 = 302
SYS_capget, SYS_capset = 125, 126
PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _syscall(what: str, nr: int, *args: int) -> int:
    r = int(_libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a - (1 << 64) if a >= 1 << 63 else a) for a in args)))
    if r < 0:
        _raise(what)
    return r


def mlock(addr: int, length: int) -> None:
    _syscall("mlock", SYS_mlock, addr, length)


def mlock2(addr: int, length: int, flags: int) -> None:
    _syscall("mlock2", SYS_mlock2, addr, length, flags & 0xFFFFFFFF)


def munlock(addr: int, length: int) -> None:
    _syscall("munlock", SYS_munlock, addr, length)


def mlockall(flags: int) -> None:
    _syscall("mlockall", SYS_mlockall, flags & 0xFFFFFFFF)


def munlockall() -> None:
    _syscall("munlockall", SYS_munlockall)


class _Rlimit64(ctypes.Structure):
    _fields_ = [("rlim_cur", ctypes.c_uint64), ("rlim_max", ctypes.c_uint64)]


def prlimit(resource: int, new: tuple[int, int] | None) -> tuple[int, int]:
    """prlimit64(0, resource, new, old) on this process: the old (soft, hard), RLIM_INFINITY as 2**64 - 1."""
    old = _Rlimit64()
    new_ptr = ctypes.byref(_Rlimit64(*new)) if new is not None else None
    if _libc.syscall(ctypes.c_long(SYS_prlimit64), ctypes.c_long(0), ctypes.c_long(resource & 0xFFFFFFFF),
                     new_ptr, ctypes.byref(old)) != 0:
        _raise("prlimit64")
    return int(old.rlim_cur), int(old.rlim_max)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capability(cap: int) -> None:
    """prctl(PR_CAPBSET_DROP, cap), then capset() without ``cap`` in the effective and permitted sets: this
    process (only) loses it for good. Call it in a child, never in a process the host relies on."""
    if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
        _raise("prctl(PR_CAPBSET_DROP)")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.syscall(ctypes.c_long(SYS_capget), ctypes.byref(header), data) != 0:
        _raise("capget")
    mask = ~(1 << (cap % 32)) & 0xFFFFFFFF
    data[cap // 32].effective &= mask
    data[cap // 32].permitted &= mask
    if _libc.syscall(ctypes.c_long(SYS_capset), ctypes.byref(header), data) != 0:
        _raise("capset")


# --- brk (issue #9): the raw system call (glibc's brk() wrapper turns a refusal into -1/ENOMEM) ---
SYS_brk = 12  # x86-64


def brk(addr: int) -> int:
    """brk(2) through syscall(2): the new break, or the old one if the kernel refused."""
    return int(_libc.syscall(ctypes.c_long(SYS_brk), ctypes.c_ulong(addr))) & ((1 << 64) - 1)
