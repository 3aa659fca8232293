"""The anonymous-memory system calls of *this* test process on the host kernel, raising OSError.

A test helper: it lets the errno cases run on the simulator and on the kernel of this machine,
in-process, on scratch mappings it unmaps again. The ctypes bindings are pagelab.real.libc's.
"""

from __future__ import annotations

from pagelab.real import libc


class HostSyscalls:
    """mmap/munmap/mprotect/madvise/mincore of this process on the host kernel."""

    def __init__(self) -> None:
        self.mapped: list[tuple[int, int]] = []

    def mmap(self, addr, length, prot, flags, fd=-1, offset=0):
        r = libc.mmap(addr or 0, length, prot, flags, fd, offset)
        self.mapped.append((r, length))
        return r

    def munmap(self, addr, length):
        libc.munmap(addr, length)

    def mprotect(self, addr, length, prot):
        libc.mprotect(addr, length, prot)

    def madvise(self, addr, length, advice):
        libc.madvise(addr, length, advice)

    def mincore(self, addr, length):
        return libc.mincore(addr, length)

    def cleanup(self) -> None:
        for addr, length in self.mapped:
            try:
                libc.munmap(addr, (length + 4095) & ~4095 or 4096)
            except OSError:
                pass
        self.mapped.clear()
