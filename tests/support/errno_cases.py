"""System-call argument cases and the errno each must give, run on the simulator and the host kernel.

Each case gets a backend with mmap/munmap/mprotect/madvise/mincore and returns nothing or raises OSError.
Expected values were read off Linux 6.18 on this machine (tests/real/test_errno_vs_kernel.py keeps
checking them there, in the test process itself, through ctypes as a C program would call them). The
cases past the first 36 come from the differential test (tests/real/test_syscall_differential.py): one
case per kind of argument it explores (negative, zero, wrapping, unaligned, huge, unknown bits, holes),
and the order in which the kernel checks them. Every case is safe to run in any process: ranges the
kernel accepts are the case's own fresh mappings, and absolute addresses are invalid or far from
anything a process maps.
"""

from __future__ import annotations

import errno

import pagelab as pl
from pagelab import constants as C

RW = pl.PROT_READ | pl.PROT_WRITE
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
SHARED = pl.MAP_SHARED | pl.MAP_ANONYMOUS
P = 4096
TASK_SIZE = C.TASK_SIZE
FREE = 0x100000000  # 4 GiB: nothing is mapped there in a 64-bit process (PIE binaries load far higher)


def _map(b, pages=4, prot=RW, flags=ANON):
    return b.mmap(None, pages * P, prot, flags)


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


# --- grown from the differential test ------------------------------------------------------------
CASES.update({
    # mmap: lengths as size_t, in do_mmap()'s order
    "mmap length -1 (PAGE_ALIGN wraps to 0)": (lambda b: b.mmap(None, -1, RW, ANON), errno.ENOMEM),
    "mmap length -4096": (lambda b: b.mmap(None, -P, RW, ANON), errno.ENOMEM),
    "mmap length 2**64-4096": (lambda b: b.mmap(None, (1 << 64) - P, RW, ANON), errno.ENOMEM),
    "mmap length 2**63": (lambda b: b.mmap(None, 1 << 63, RW, ANON), errno.ENOMEM),
    "mmap length TASK_SIZE + 1 page": (lambda b: b.mmap(None, TASK_SIZE + P, C.PROT_READ, ANON), errno.ENOMEM),
    "mmap length 0 beats a bad mapping type": (lambda b: b.mmap(None, 0, RW, pl.MAP_ANONYMOUS | 0xF), errno.EINVAL),
    "mmap length -1 beats MAP_FIXED unaligned": (lambda b: b.mmap(FREE + 1, -1, RW, ANON | pl.MAP_FIXED), errno.ENOMEM),
    # mmap: the mapping type and the flags
    "mmap type 0x04": (lambda b: b.mmap(None, P, RW, pl.MAP_ANONYMOUS | 0x04), errno.EINVAL),
    "mmap type 0x0f": (lambda b: b.mmap(None, P, RW, pl.MAP_ANONYMOUS | 0x0F), errno.EINVAL),
    "mmap flags -1 (MAP_HUGETLB with size bits 63)": (lambda b: b.mmap(None, P, RW, -1), errno.EINVAL),
    "mmap MAP_HUGETLB of 2**20 bytes (no such hstate)": (
        lambda b: b.mmap(None, P, RW, ANON | pl.MAP_HUGETLB | (20 << 26)), errno.EINVAL),
    "mmap MAP_HUGETLB of 2**63 bytes": (lambda b: b.mmap(None, P, RW, ANON | pl.MAP_HUGETLB | (63 << 26)),
                                        errno.EINVAL),
    "mmap MAP_HUGETLB length 0": (lambda b: b.mmap(None, 0, RW, ANON | pl.MAP_HUGETLB), errno.EINVAL),
    "mmap MAP_HUGETLB length -1 (rounds to 0 huge pages)": (lambda b: b.mmap(None, -1, RW, ANON | pl.MAP_HUGETLB),
                                                            errno.EINVAL),
    "mmap MAP_SHARED with MAP_GROWSDOWN": (lambda b: b.mmap(None, P, RW, SHARED | C.MAP_GROWSDOWN), errno.EINVAL),
    "mmap MAP_DROPPABLE with MAP_LOCKED": (lambda b: b.mmap(None, P, RW, pl.MAP_ANONYMOUS | 0x08 | C.MAP_LOCKED),
                                           errno.EINVAL),
    "mmap MAP_DROPPABLE with MAP_GROWSDOWN": (
        lambda b: b.mmap(None, P, RW, pl.MAP_ANONYMOUS | 0x08 | C.MAP_GROWSDOWN), errno.EINVAL),
    "mmap unknown flag bits 0x80|0x200|0x400 ignored": (lambda b: b.mmap(None, P, RW, ANON | 0x680), 0),
    "mmap MAP_STACK": (lambda b: b.mmap(None, P, RW, ANON | C.MAP_STACK), 0),
    "mmap MAP_SYNC on private anonymous memory": (lambda b: b.mmap(None, P, RW, ANON | C.MAP_SYNC), 0),
    "mmap MAP_32BIT": (lambda b: b.mmap(None, P, RW, ANON | C.MAP_32BIT), 0),
    "mmap MAP_32BIT longer than 2 GiB": (lambda b: b.mmap(None, 3 << 30, C.PROT_READ, ANON | C.MAP_32BIT),
                                         errno.ENOMEM),
    "mmap MAP_DENYWRITE|MAP_EXECUTABLE ignored": (lambda b: b.mmap(None, P, RW, ANON | 0x1800), 0),
    # mmap: offset (off_t, only its alignment matters for anonymous memory)
    "mmap offset -1": (lambda b: b.mmap(None, P, RW, ANON, -1, -1), errno.EINVAL),
    "mmap offset 2048": (lambda b: b.mmap(None, P, RW, ANON, -1, 2048), errno.EINVAL),
    "mmap offset -4096": (lambda b: b.mmap(None, P, RW, ANON, -1, -P), 0),
    "mmap offset 2**62": (lambda b: b.mmap(None, P, RW, ANON, -1, 1 << 62), 0),
    "mmap unaligned offset beats a missing fd": (lambda b: b.mmap(None, P, RW, pl.MAP_PRIVATE, -1, 1), errno.EINVAL),
    "mmap missing fd beats length 0": (lambda b: b.mmap(None, 0, RW, pl.MAP_PRIVATE, -1, 0), errno.EBADF),
    "mmap fd 1000 not open": (lambda b: b.mmap(None, P, RW, pl.MAP_PRIVATE, 1000, 0), errno.EBADF),
    "mmap MAP_HUGETLB without MAP_ANONYMOUS and no fd": (
        lambda b: b.mmap(None, P, RW, pl.MAP_PRIVATE | pl.MAP_HUGETLB), errno.EBADF),
    # mmap: prot bits mmap ignores
    "mmap prot -1": (lambda b: b.mmap(None, P, -1, ANON), 0),
    "mmap prot PROT_GROWSDOWN|PROT_READ": (lambda b: b.mmap(None, P, pl.PROT_READ | C.PROT_GROWSDOWN, ANON), 0),
    "mmap prot 0x80": (lambda b: b.mmap(None, P, 0x80 | RW, ANON), 0),
    # mmap: where, as unsigned addresses
    "mmap MAP_FIXED at -4096": (lambda b: b.mmap(-P, P, RW, ANON | pl.MAP_FIXED), errno.ENOMEM),
    "mmap MAP_FIXED at 2**47": (lambda b: b.mmap(1 << 47, P, RW, ANON | pl.MAP_FIXED), errno.ENOMEM),
    "mmap MAP_FIXED over the top of user space": (
        lambda b: b.mmap(TASK_SIZE - P, 2 * P, RW, ANON | pl.MAP_FIXED), errno.ENOMEM),
    "mmap MAP_FIXED at 2**64-1 (IS_ERR_VALUE: -EPERM)": (lambda b: b.mmap(-1, P, RW, ANON | pl.MAP_FIXED),
                                                         errno.EPERM),
    "mmap MAP_FIXED at 2**64-22 (IS_ERR_VALUE: -EINVAL)": (lambda b: b.mmap(-22, P, RW, ANON | pl.MAP_FIXED),
                                                           errno.EINVAL),
    "mmap MAP_FIXED at 2**64-4000 (IS_ERR_VALUE: errno 4000)": (
        lambda b: b.mmap(-4000, P, RW, SHARED | pl.MAP_FIXED), 4000),
    "mmap MAP_FIXED_NOREPLACE unaligned": (lambda b: b.mmap(FREE + 1, P, RW, ANON | pl.MAP_FIXED_NOREPLACE),
                                           errno.EINVAL),
    "mmap MAP_FIXED_NOREPLACE at TASK_SIZE": (lambda b: b.mmap(TASK_SIZE, P, RW, ANON | pl.MAP_FIXED_NOREPLACE),
                                              errno.ENOMEM),
    "mmap hint -4096 is ignored": (lambda b: b.mmap(-P, P, RW, ANON), 0),
    "mmap hint 2**63 is ignored": (lambda b: b.mmap(1 << 63, P, RW, ANON), 0),
    "mmap hint above user space for 1 page": (lambda b: b.mmap(TASK_SIZE, P, RW, ANON), 0),
    # mmap: commit accounting
    "mmap shared anonymous 1 TiB (shmem charge)": (lambda b: b.mmap(None, 1 << 40, RW, SHARED), errno.ENOMEM),
    "mmap shared anonymous 1 TiB MAP_NORESERVE": (lambda b: b.mmap(None, 1 << 40, RW, SHARED | pl.MAP_NORESERVE), 0),
    "mmap shared anonymous 1 TiB read-only (charged too)": (lambda b: b.mmap(None, 1 << 40, pl.PROT_READ, SHARED),
                                                            errno.ENOMEM),
    "mmap MAP_FIXED 1 TiB over a mapping, commit refused": (
        lambda b: b.mmap(b.mmap(FREE, 4 * P, RW, ANON | pl.MAP_FIXED), 1 << 40, RW, ANON | pl.MAP_FIXED),
        errno.ENOMEM),
    # munmap: addresses and lengths as unsigned, do_vmi_munmap()'s checks
    "munmap at -4096": (lambda b: b.munmap(-P, P), errno.EINVAL),
    "munmap length -4096": (lambda b: b.munmap(_map(b), -P), errno.EINVAL),
    "munmap length -1": (lambda b: b.munmap(_map(b), -1), errno.EINVAL),
    "munmap length 2**64-4096": (lambda b: b.munmap(_map(b), (1 << 64) - P), errno.EINVAL),
    "munmap at 2**47": (lambda b: b.munmap(1 << 47, P), errno.EINVAL),
    "munmap at TASK_SIZE, length 0": (lambda b: b.munmap(TASK_SIZE, 0), errno.EINVAL),
    "munmap length TASK_SIZE from 4 GiB": (lambda b: b.munmap(FREE, TASK_SIZE), errno.EINVAL),
    "munmap at 0, length 0": (lambda b: b.munmap(0, 0), errno.EINVAL),
    "munmap the middle page of a mapping": (lambda b: b.munmap(_map(b) + P, P), 0),
    "munmap a range with a hole": (lambda b: b.munmap(_hole(b), 3 * P), 0),
    # mprotect: do_mprotect_pkey()'s order
    "mprotect PROT_GROWSDOWN on an ordinary mapping": (
        lambda b: b.mprotect(_map(b), P, pl.PROT_READ | C.PROT_GROWSDOWN), errno.EINVAL),
    "mprotect PROT_GROWSUP": (lambda b: b.mprotect(_map(b), P, pl.PROT_READ | C.PROT_GROWSUP), errno.EINVAL),
    "mprotect PROT_GROWSDOWN|PROT_GROWSUP": (
        lambda b: b.mprotect(_map(b), P, pl.PROT_READ | C.PROT_GROWSDOWN | C.PROT_GROWSUP), errno.EINVAL),
    "mprotect both grows bits beat length 0 and alignment": (
        lambda b: b.mprotect(_map(b) + 1, 0, C.PROT_GROWSDOWN | C.PROT_GROWSUP), errno.EINVAL),
    "mprotect unaligned beats PROT_GROWSDOWN": (
        lambda b: b.mprotect(_map(b) + 1, P, pl.PROT_READ | C.PROT_GROWSDOWN), errno.EINVAL),
    "mprotect PROT_GROWSDOWN on a hole": (lambda b: b.mprotect(FREE, P, pl.PROT_READ | C.PROT_GROWSDOWN),
                                          errno.ENOMEM),
    "mprotect length -4096 (wraps)": (lambda b: b.mprotect(_map(b), -P, pl.PROT_READ), errno.ENOMEM),
    "mprotect length -1 (rounds to 0, wraps)": (lambda b: b.mprotect(_map(b), -1, pl.PROT_READ), errno.ENOMEM),
    "mprotect at -4096": (lambda b: b.mprotect(-P, P, pl.PROT_READ), errno.ENOMEM),
    "mprotect at 2**47": (lambda b: b.mprotect(1 << 47, P, pl.PROT_READ), errno.ENOMEM),
    "mprotect prot -1": (lambda b: b.mprotect(_map(b), P, -1), errno.EINVAL),
    "mprotect prot 0x10": (lambda b: b.mprotect(_map(b), P, 0x10 | pl.PROT_READ), errno.EINVAL),
    "mprotect prot 1 << 31": (lambda b: b.mprotect(_map(b), P, -(1 << 31)), errno.EINVAL),
    "mprotect unknown prot bit beats a hole": (lambda b: b.mprotect(FREE, P, 0x80), errno.EINVAL),
    "mprotect length 0 beats an unknown prot bit": (lambda b: b.mprotect(_map(b), 0, 0x80), 0),
    "mprotect unaligned beats length 0": (lambda b: b.mprotect(_map(b) + 1, 0, pl.PROT_READ), errno.EINVAL),
    "mprotect wrap beats an unknown prot bit": (lambda b: b.mprotect(_map(b), -P, 0x80), errno.ENOMEM),
    "mprotect PROT_EXEC only": (lambda b: b.mprotect(_map(b), P, pl.PROT_EXEC), 0),
    "mprotect a range that ends in a hole": (lambda b: b.mprotect(_hole(b), 2 * P, pl.PROT_READ), errno.ENOMEM),
    "mprotect shared memory to PROT_NONE and back": (
        lambda b: [b.mprotect(a, P, p) for a in [_map(b, 2, RW, SHARED)] for p in (0, RW)], 0),
    # madvise: is_valid_madvise() (EINVAL) before anything else
    "madvise length -4096 (start + len wraps), MADV_RANDOM": (
        lambda b: b.madvise(_map(b, 8) + 4 * P, -P, pl.MADV_RANDOM), errno.EINVAL),
    "madvise length -4096, MADV_DONTNEED": (lambda b: b.madvise(_map(b, 8) + 4 * P, -P, pl.MADV_DONTNEED),
                                            errno.EINVAL),
    "madvise length -4096, MADV_FREE": (lambda b: b.madvise(_map(b, 8) + 4 * P, -P, pl.MADV_FREE), errno.EINVAL),
    "madvise length -1 (rounds up to 0)": (lambda b: b.madvise(_map(b), -1, pl.MADV_RANDOM), errno.EINVAL),
    "madvise at -4096 (end wraps to 0)": (lambda b: b.madvise(-P, P, pl.MADV_RANDOM), errno.EINVAL),
    "madvise above user space": (lambda b: b.madvise(-2 * P, P, pl.MADV_RANDOM), errno.ENOMEM),
    "madvise advice -1": (lambda b: b.madvise(_map(b), P, -1), errno.EINVAL),
    "madvise advice 1000": (lambda b: b.madvise(_map(b), P, 1000), errno.EINVAL),
    "madvise advice 5 (a gap in the numbering)": (lambda b: b.madvise(_map(b), P, 5), errno.EINVAL),
    "madvise unknown advice beats length 0": (lambda b: b.madvise(_map(b), 0, 999), errno.EINVAL),
    "madvise unaligned beats length 0": (lambda b: b.madvise(_map(b) + 1, 0, pl.MADV_RANDOM), errno.EINVAL),
    "madvise length 0 at -4096": (lambda b: b.madvise(-P, 0, pl.MADV_RANDOM), 0),
    # madvise: per VMA
    "madvise MADV_REMOVE on private memory": (lambda b: b.madvise(_map(b), P, pl.MADV_REMOVE), errno.EINVAL),
    "madvise MADV_REMOVE on shared memory (punches a hole)": (
        lambda b: b.madvise(_map(b, 2, RW, SHARED), P, pl.MADV_REMOVE), 0),
    "madvise MADV_REMOVE on shared read-only memory": (
        lambda b: b.madvise(_map(b, 2, pl.PROT_READ, SHARED), P, pl.MADV_REMOVE), 0),
    "madvise MADV_DODUMP": (lambda b: b.madvise(_map(b), P, pl.MADV_DODUMP), 0),
    "madvise MADV_KEEPONFORK": (lambda b: b.madvise(_map(b), P, pl.MADV_KEEPONFORK), 0),
    "madvise MADV_DONTFORK on shared memory": (lambda b: b.madvise(_map(b, 1, RW, SHARED), P, pl.MADV_DONTFORK), 0),
    "madvise MADV_MERGEABLE on shared memory (ignored)": (
        lambda b: b.madvise(_map(b, 1, RW, SHARED), P, pl.MADV_MERGEABLE), 0),
    "madvise MADV_DONTNEED_LOCKED": (lambda b: b.madvise(_map(b), P, pl.MADV_DONTNEED_LOCKED), 0),
    "madvise MADV_FREE on PROT_NONE": (lambda b: b.madvise(_map(b, 1, pl.PROT_NONE), P, pl.MADV_FREE), 0),
    "madvise MADV_WILLNEED on a hole": (lambda b: b.madvise(FREE, P, pl.MADV_WILLNEED), errno.ENOMEM),
    "madvise MADV_POPULATE_READ on PROT_NONE": (
        lambda b: b.madvise(_map(b, 1, pl.PROT_NONE), P, pl.MADV_POPULATE_READ), errno.EINVAL),
    "madvise MADV_POPULATE_READ on a hole": (lambda b: b.madvise(FREE, P, pl.MADV_POPULATE_READ), errno.ENOMEM),
    "madvise MADV_POPULATE_WRITE on shared read-only": (
        lambda b: b.madvise(_map(b, 1, pl.PROT_READ, SHARED), P, pl.MADV_POPULATE_WRITE), errno.EINVAL),
    "madvise MADV_POPULATE_WRITE over a hole": (lambda b: b.madvise(_hole(b), 3 * P, pl.MADV_POPULATE_WRITE),
                                                errno.ENOMEM),
    # mincore: alignment (EINVAL), then access_ok() of the whole range (ENOMEM), then the VMAs
    "mincore length -1": (lambda b: b.mincore(_map(b), -1), errno.ENOMEM),
    "mincore unaligned": (lambda b: b.mincore(_map(b) + 1, P), errno.EINVAL),
    "mincore unaligned beats a length past user space": (lambda b: b.mincore(_map(b) + 1, -1), errno.EINVAL),
    "mincore length 0": (lambda b: b.mincore(_map(b), 0), 0),
    "mincore length 0 on a hole": (lambda b: b.mincore(FREE, 0), 0),
    "mincore length 1": (lambda b: b.mincore(_map(b), 1), 0),
    "mincore a hole": (lambda b: b.mincore(FREE, P), errno.ENOMEM),
    "mincore a range with a hole": (lambda b: b.mincore(_hole(b), 3 * P), errno.ENOMEM),
    "mincore length TASK_SIZE": (lambda b: b.mincore(_map(b), TASK_SIZE), errno.ENOMEM),
    "mincore at -4096": (lambda b: b.mincore(-P, P), errno.ENOMEM),
    "mincore at 2**47, length 0": (lambda b: b.mincore(1 << 47, 0), errno.ENOMEM),
    "mincore at TASK_SIZE, length 0": (lambda b: b.mincore(TASK_SIZE, 0), 0),
})


def run_case(backend, name: str) -> int:
    """Run one case; the errno it raised, or 0."""
    fn, _ = CASES[name]
    try:
        fn(backend)
    except OSError as exc:
        return exc.errno
    return 0
