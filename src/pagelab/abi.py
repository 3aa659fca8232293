"""How Python values become the arguments of a system call or a memory access, on both backends.

A C program calls ``mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)``; the
compiler converts each argument to the parameter's type, and the kernel sees those bits. The Process
API takes Python values, so one module decides, for the simulator and for ``pagelab.real`` alike
(where the parent checks before anything reaches the child), what a value means as a C argument:

- A value must be an integer (``int``, ``bool``, a numpy integer: anything with ``__index__``); a
  float, a string or None where no pointer is optional raise TypeError, before any side effect.
- An integer converts to a C type of w bits if it fits either its signed or its unsigned w-bit form,
  and then converts as C converts it: ``-4096`` passed as ``size_t`` is ``2**64 - 4096``, ``0xFFFFFFFF``
  passed as ``int`` is ``-1``. ctypes (what the real backend calls libc with) masks anything silently;
  here an integer that fits neither form raises OverflowError, as Python's own ``os`` functions do.
- The kernel then checks the C values (alignment, wrap-around, unknown bits) and answers with an
  errno: those checks live in mm/, in the kernel's order, never here.

Memory accesses (load, store, touch, access) are not system calls: their addresses are 64-bit
virtual addresses, integers in [0, 2**64); anything else raises the same ValueError from every
method of both backends (``address_error``).

Mirrors the glibc prototypes of mmap(2), munmap(2), mprotect(2), madvise(2), mincore(2), exit(3) on
x86-64 (LP64: long and size_t are 64 bits, int is 32).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

ADDRESS_BITS = 64
_U64 = 1 << 64


def _integer(value: object, what: str) -> int:
    """``value`` as a Python int (anything with __index__), else TypeError naming ``what``."""
    if isinstance(value, (float, np.floating)):
        raise TypeError(f"{what} must be an integer, not float ({value!r})")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None


def c_unsigned(value: object, what: str, bits: int = 64) -> int:
    """Convert like C to an unsigned ``bits``-bit parameter (unsigned long, size_t, a pointer)."""
    n = _integer(value, what)
    if not -(1 << (bits - 1)) <= n < 1 << bits:
        raise OverflowError(f"{what} {n} does not fit a {bits}-bit C argument")
    return n & ((1 << bits) - 1)


def c_signed(value: object, what: str, bits: int = 32) -> int:
    """Convert like C to a signed ``bits``-bit parameter (int, long, off_t)."""
    n = c_unsigned(value, what, bits)
    return n - (1 << bits) if n >> (bits - 1) else n


def c_pointer(value: object, what: str = "addr") -> int:
    """A ``void *`` parameter: None is NULL, an integer converts as unsigned long."""
    return 0 if value is None else c_unsigned(value, what)


def c_ulong(value: object, what: str) -> int:
    return c_unsigned(value, what, 64)


def c_int(value: object, what: str) -> int:
    return c_signed(value, what, 32)


def c_long(value: object, what: str) -> int:
    return c_signed(value, what, 64)


# --- system calls: one converter per glibc prototype --------------------------------------------

def mmap_args(addr: object, length: object, prot: object, flags: object, fd: object,
              offset: object) -> tuple[int, int, int, int, int, int]:
    """``void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)``."""
    return (c_pointer(addr), c_ulong(length, "length"), c_int(prot, "prot"), c_int(flags, "flags"),
            c_int(fd, "fd"), c_long(offset, "offset"))


def munmap_args(addr: object, length: object) -> tuple[int, int]:
    """``int munmap(void *addr, size_t length)``."""
    return c_pointer(addr), c_ulong(length, "length")


def mprotect_args(addr: object, length: object, prot: object) -> tuple[int, int, int]:
    """``int mprotect(void *addr, size_t length, int prot)``."""
    return c_pointer(addr), c_ulong(length, "length"), c_int(prot, "prot")


def madvise_args(addr: object, length: object, advice: object) -> tuple[int, int, int]:
    """``int madvise(void *addr, size_t length, int advice)``."""
    return c_pointer(addr), c_ulong(length, "length"), c_int(advice, "advice")


def mincore_args(addr: object, length: object) -> tuple[int, int]:
    """``int mincore(void *addr, size_t length, unsigned char *vec)`` (the vector is the return value)."""
    return c_pointer(addr), c_ulong(length, "length")


def prctl_args(option: object, arg2: object = 0, arg3: object = 0, arg4: object = 0,
               arg5: object = 0) -> tuple[int, int, int, int, int]:
    """``int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)``."""
    return (c_int(option, "option"), c_ulong(arg2, "arg2"), c_ulong(arg3, "arg3"), c_ulong(arg4, "arg4"),
            c_ulong(arg5, "arg5"))


def exit_status(code: object) -> int:
    """``void exit(int status)``: the parent sees ``status & 0xff``."""
    return c_int(code, "exit status")


def wait_args(pid: object, options: object) -> tuple[int, int]:
    """``pid_t waitpid(pid_t pid, int *wstatus, int options)``: both C ints."""
    return c_int(pid, "pid"), c_int(options, "options")


# --- mlock, rlimits and capabilities (issue #9) ----------------------------------------------------
# int mlock(const void *addr, size_t len); int mlock2(const void *addr, size_t len, unsigned int flags);
# int munlock(const void *addr, size_t len); int mlockall(int flags); int getrlimit(int resource, struct
# rlimit *); int setrlimit(int resource, const struct rlimit *) with rlim_t (unsigned long) fields.

def mlock_args(addr: object, length: object) -> tuple[int, int]:
    """mlock(2) and munlock(2)."""
    return c_pointer(addr), c_ulong(length, "length")


def mlock2_args(addr: object, length: object, flags: object) -> tuple[int, int, int]:
    """mlock2(2): glibc's ``unsigned int flags``, which the kernel reads as an int."""
    return c_pointer(addr), c_ulong(length, "length"), c_signed(flags, "flags", 32)


def mlockall_args(flags: object) -> tuple[int]:
    """mlockall(2)."""
    return (c_int(flags, "flags"),)


def rlimit_resource(res: object) -> int:
    """getrlimit()/setrlimit()'s resource: an int (the kernel checks its range: EINVAL)."""
    return c_int(res, "resource")


def rlim_value(value: object, what: str) -> int:
    """An rlim_t: unsigned 64 bits; Python's resource.RLIM_INFINITY (-1) is the kernel's 2**64 - 1."""
    return c_ulong(value, what)


def rlimit_pair(limits: object) -> tuple[int, int]:
    """setrlimit()'s (soft, hard): a pair of rlim_t values, as Python's resource.setrlimit takes."""
    if not isinstance(limits, (tuple, list)) or len(limits) != 2:
        raise ValueError(f"limits must be a (soft, hard) pair, got {limits!r}")
    return rlim_value(limits[0], "soft limit"), rlim_value(limits[1], "hard limit")


def rlim_to_python(value: int) -> int:
    """A kernel rlim_t as Python's resource module reports it: RLIM_INFINITY is -1."""
    return -1 if value == _U64 - 1 else value


# --- memory accesses -----------------------------------------------------------------------------

def address_error(addr: object) -> ValueError:
    """The one error for an access address outside the 64-bit virtual address space."""
    return ValueError(f"address {addr!r} is outside the 64-bit address space [0, 2**64)")


def access_address(addr: object) -> int:
    """A load or store address: an integer in [0, 2**64)."""
    n = _integer(addr, "address")
    if not 0 <= n < _U64:
        raise address_error(n)
    return n


def store_value(value: object) -> int:
    """The byte a store writes: an integer in 0..255."""
    n = _integer(value, "store value")
    if not 0 <= n <= 255:
        raise ValueError(f"store writes one byte: value must be 0..255, got {n}")
    return n


def touch_args(addr: object, length: object, write: object, stride: object) -> tuple[int, int, bool, int]:
    """touch(addr, length, write=, stride=): a range inside the address space, a positive stride."""
    a = access_address(addr)
    n = _integer(length, "length")
    s = _integer(stride, "stride")
    if n < 0:
        raise ValueError(f"touch needs length >= 0, got {n}")
    if s <= 0:
        raise ValueError(f"touch needs stride > 0, got {s}")
    if n and a + n > _U64:
        raise address_error(a + n - 1)
    return a, n, _flag(write), s


def _flag(write: object) -> bool:
    if not isinstance(write, (bool, np.bool_)):
        raise TypeError(f"write must be a bool, not {type(write).__name__}")
    return bool(write)


def access_addresses(addresses: Any) -> np.ndarray:
    """access()'s addresses: a one-dimensional sequence of integers in [0, 2**64), as uint64."""
    arr = np.asarray(addresses)
    if arr.ndim != 1:
        raise ValueError(f"addresses must be one-dimensional, got an array of shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.uint64)
    kind = arr.dtype.kind
    if kind == "u":
        return np.ascontiguousarray(arr, dtype=np.uint64)
    if kind == "i":
        if int(arr.min()) < 0:
            raise address_error(int(arr.min()))
        return np.ascontiguousarray(arr, dtype=np.uint64)
    if kind == "O":
        return np.array([access_address(a) for a in arr.tolist()], dtype=np.uint64)
    what = "float" if kind == "f" else str(arr.dtype)
    raise TypeError(f"addresses must be integers, not {what}")


def access_writes(write: Any, n: int) -> np.ndarray:
    """access()'s ``write``: one bool for every access, or one flag per address; a bool array."""
    if isinstance(write, (bool, np.bool_)):
        return np.array([bool(write)])
    flags = np.asarray(write)
    if flags.ndim != 1 or flags.shape[0] != n:
        raise ValueError(f"write mask must have one flag per address ({n}), got shape {flags.shape}")
    if flags.dtype.kind == "b":
        return np.ascontiguousarray(flags)
    if flags.dtype.kind in "iu" and (n == 0 or (int(flags.min()) >= 0 and int(flags.max()) <= 1)):
        return np.ascontiguousarray(flags, dtype=bool)
    raise TypeError(f"write mask must hold bools, not {flags.dtype}")


# --- file calls (glibc prototypes: open(const char *, int, mode_t), read(int, void *, size_t), pread(int,
# void *, size_t, off_t), write(int, const void *, size_t), lseek(int, off_t, int), ftruncate(int, off_t),
# fsync(int), msync(void *, size_t, int), posix_fadvise(int, off_t, off_t, int), cachestat(unsigned int,
# struct cachestat_range *, struct cachestat *, unsigned int)) ------------------------------------------

def open_args(path: object, flags: object, mode: object) -> tuple[str, int, int]:
    """open(2): a path (str, bytes or os.PathLike; TypeError otherwise, ValueError with a NUL byte)."""
    import os

    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be str, bytes or os.PathLike, not {type(path).__name__}")
    text = os.fsdecode(os.fspath(path))
    if "\0" in text:
        raise ValueError("embedded null byte in path")
    return text, c_int(flags, "flags"), c_unsigned(mode, "mode", 32)


def fd_arg(fd: object) -> int:
    return c_int(fd, "fd")


def read_args(fd: object, n: object) -> tuple[int, int]:
    return c_int(fd, "fd"), c_ulong(n, "count")


def pread_args(fd: object, n: object, offset: object) -> tuple[int, int, int]:
    return c_int(fd, "fd"), c_ulong(n, "count"), c_long(offset, "offset")


def write_data(data: object) -> bytes:
    """write(2)'s buffer: bytes-like (TypeError otherwise)."""
    if isinstance(data, str) or not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
    return bytes(data)


def lseek_args(fd: object, offset: object, whence: object) -> tuple[int, int, int]:
    return c_int(fd, "fd"), c_long(offset, "offset"), c_int(whence, "whence")


def ftruncate_args(fd: object, length: object) -> tuple[int, int]:
    return c_int(fd, "fd"), c_long(length, "length")


def msync_args(addr: object, length: object, flags: object) -> tuple[int, int, int]:
    return c_pointer(addr), c_ulong(length, "length"), c_int(flags, "flags")


def fadvise_args(fd: object, offset: object, length: object, advice: object) -> tuple[int, int, int, int]:
    return c_int(fd, "fd"), c_long(offset, "offset"), c_long(length, "len"), c_int(advice, "advice")


def cachestat_args(fd: object, offset: object, length: object, flags: object = 0) -> tuple[int, int, int, int]:
    return c_unsigned(fd, "fd", 32), c_unsigned(offset, "off"), c_unsigned(length, "len"), \
        c_unsigned(flags, "flags", 32)


# --- mremap (issue #9) ---
def mremap_args(old_addr: object, old_size: object, new_size: object, flags: object,
                new_addr: object) -> tuple[int, int, int, int, int]:
    """``void *mremap(void *old_address, size_t old_size, size_t new_size, int flags, ... /* void *new_address */)``;
    the raw syscall takes ``flags`` as an unsigned long (an int sign-extended, as glibc passes it)."""
    return (c_pointer(old_addr, "old_addr"), c_ulong(old_size, "old_size"), c_ulong(new_size, "new_size"),
            c_int(flags, "flags") & ((1 << 64) - 1), c_pointer(new_addr, "new_addr"))
