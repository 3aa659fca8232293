"""The four anonymous-memory system calls on the host kernel, through libc, raising OSError like pagelab.

A test helper only (the real backend proper is ``pagelab.real``): it lets the same errno cases run on
the simulator and on the kernel of this machine, in-process, on scratch mappings it unmaps again.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
MAP_FAILED = ctypes.c_void_p(-1).value


def _check(rc: int) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class HostSyscalls:
    """mmap/munmap/mprotect/madvise of this process on the host kernel."""

    def __init__(self) -> None:
        self.mapped: list[tuple[int, int]] = []

    def mmap(self, addr, length, prot, flags, fd=-1, offset=0):
        r = _libc.mmap(addr, length, prot, flags, fd, offset)
        if r == MAP_FAILED:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        r = r or 0
        self.mapped.append((r, length))
        return r

    def munmap(self, addr, length):
        _check(_libc.munmap(addr, length))

    def mprotect(self, addr, length, prot):
        _check(_libc.mprotect(addr, length, prot))

    def madvise(self, addr, length, advice):
        _check(_libc.madvise(addr, length, advice))

    def cleanup(self) -> None:
        for addr, length in self.mapped:
            _libc.munmap(addr, (length + 4095) & ~4095 or 4096)
        self.mapped.clear()
