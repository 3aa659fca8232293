"""System-call argument cases and the errno each must give, run on the simulator and the host kernel.

Each case gets a backend with mmap/munmap/mprotect/madvise and returns nothing or raises OSError.
Expected values were read off Linux 6.18 on this machine (tests/real/test_errno_vs_kernel.py keeps
checking them there).
"""

from __future__ import annotations

import errno

import pagelab as pl

RW = pl.PROT_READ | pl.PROT_WRITE
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
P = 4096


def _hole(b):
    """Three pages with the middle one unmapped; returns the start."""
    a = b.mmap(None, 3 * P, RW, ANON)
    b.munmap(a + P, P)
    return a


CASES = {
    "mmap length 0": (lambda b: b.mmap(None, 0, RW, ANON), errno.EINVAL),
    "mmap neither shared nor private": (lambda b: b.mmap(None, P, RW, pl.MAP_ANONYMOUS), errno.EINVAL),
    "mmap anonymous MAP_SHARED_VALIDATE": (lambda b: b.mmap(None, P, RW, pl.MAP_SHARED_VALIDATE
                                                           | pl.MAP_ANONYMOUS), errno.EINVAL),
    "mmap MAP_FIXED unaligned": (lambda b: b.mmap(0x10000001, P, RW, ANON | pl.MAP_FIXED), errno.EINVAL),
    "mmap offset unaligned": (lambda b: b.mmap(None, P, RW, ANON, -1, 1), errno.EINVAL),
    "mmap no MAP_ANONYMOUS and fd -1": (lambda b: b.mmap(None, P, RW, pl.MAP_PRIVATE), errno.EBADF),
    "mmap length 2**62": (lambda b: b.mmap(None, 1 << 62, RW, ANON), errno.ENOMEM),
    "mmap length 2**47": (lambda b: b.mmap(None, 1 << 47, RW, ANON), errno.ENOMEM),
    "mmap MAP_FIXED at TASK_SIZE": (lambda b: b.mmap(0x7FFFFFFFF000, P, RW, ANON | pl.MAP_FIXED), errno.ENOMEM),
    "mmap MAP_FIXED_NOREPLACE over a mapping": (
        lambda b: b.mmap(b.mmap(None, 3 * P, RW, ANON) + P, P, RW, ANON | pl.MAP_FIXED_NOREPLACE), errno.EEXIST),
    "mmap 1 TiB, more than RAM (heuristic overcommit)": (lambda b: b.mmap(None, 1 << 40, RW, ANON), errno.ENOMEM),
    "mmap 1 TiB with MAP_NORESERVE": (lambda b: b.mmap(None, 1 << 40, RW, ANON | pl.MAP_NORESERVE), 0),
    "mmap 1 TiB read-only (not accounted)": (lambda b: b.mmap(None, 1 << 40, pl.PROT_READ, ANON), 0),
    "mmap unknown prot bit": (lambda b: b.mmap(None, P, 0x80, ANON), 0),
    "mmap unaligned hint": (lambda b: b.mmap(0x10000001, P, RW, ANON), 0),
    "munmap length 0": (lambda b: b.munmap(b.mmap(None, P, RW, ANON), 0), errno.EINVAL),
    "munmap unaligned": (lambda b: b.munmap(b.mmap(None, P, RW, ANON) + 1, P), errno.EINVAL),
    "munmap of nothing": (lambda b: b.munmap(0x100000000, P), 0),
    "munmap past TASK_SIZE": (lambda b: b.munmap(0x7FFFFFFFF000, 2 * P), errno.EINVAL),
    "munmap unaligned length": (lambda b: b.munmap(b.mmap(None, P, RW, ANON), 100), 0),
    "mprotect unaligned": (lambda b: b.mprotect(b.mmap(None, P, RW, ANON) + 1, P, pl.PROT_READ), errno.EINVAL),
    "mprotect length 0": (lambda b: b.mprotect(b.mmap(None, P, RW, ANON), 0, pl.PROT_READ), 0),
    "mprotect unmapped": (lambda b: b.mprotect(0x100000000, P, pl.PROT_READ), errno.ENOMEM),
    "mprotect unknown prot bit": (lambda b: b.mprotect(b.mmap(None, P, RW, ANON), P, 0x80), errno.EINVAL),
    "mprotect PROT_SEM": (lambda b: b.mprotect(b.mmap(None, P, RW, ANON), P, 0x8), 0),
    "mprotect range with a hole": (lambda b: b.mprotect(_hole(b), 3 * P, pl.PROT_READ), errno.ENOMEM),
    "madvise unknown advice": (lambda b: b.madvise(b.mmap(None, P, RW, ANON), P, 999), errno.EINVAL),
    "madvise unaligned": (lambda b: b.madvise(b.mmap(None, P, RW, ANON) + 1, P, pl.MADV_DONTNEED), errno.EINVAL),
    "madvise length 0": (lambda b: b.madvise(b.mmap(None, P, RW, ANON), 0, pl.MADV_DONTNEED), 0),
    "madvise unmapped": (lambda b: b.madvise(0x100000000, P, pl.MADV_DONTNEED), errno.ENOMEM),
    "madvise range with a hole": (lambda b: b.madvise(_hole(b), 3 * P, pl.MADV_DONTNEED), errno.ENOMEM),
    "madvise unaligned length": (lambda b: b.madvise(b.mmap(None, P, RW, ANON), 100, pl.MADV_DONTNEED), 0),
    "madvise MADV_FREE on shared anon": (
        lambda b: b.madvise(b.mmap(None, P, RW, pl.MAP_SHARED | pl.MAP_ANONYMOUS), P, pl.MADV_FREE), errno.EINVAL),
    "madvise MADV_WIPEONFORK on shared anon": (
        lambda b: b.madvise(b.mmap(None, P, RW, pl.MAP_SHARED | pl.MAP_ANONYMOUS), P, pl.MADV_WIPEONFORK),
        errno.EINVAL),
    "madvise POPULATE_WRITE on read-only": (
        lambda b: b.madvise(b.mmap(None, P, pl.PROT_READ, ANON), P, pl.MADV_POPULATE_WRITE), errno.EINVAL),
    "madvise HUGEPAGE": (lambda b: b.madvise(b.mmap(None, P, RW, ANON), P, pl.MADV_HUGEPAGE), 0),
}


def run_case(backend, name: str) -> int:
    """Run one case; the errno it raised, or 0."""
    fn, _ = CASES[name]
    try:
        fn(backend)
    except OSError as exc:
        return exc.errno
    return 0
