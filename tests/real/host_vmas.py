"""How the host kernel splits and merges anonymous VMAs: prints VMA counts as JSON (run in a fresh process)."""

from __future__ import annotations

import ctypes
import json

from pagelab.real.libc import _libc as libc  # the same ctypes bindings the real backend uses

P = 4096


def vmas_in(lo: int, hi: int) -> list[str]:
    out = []
    for line in open("/proc/self/maps"):
        s, e = (int(x, 16) for x in line.split()[0].split("-"))
        if s < hi and e > lo:
            out.append(f"{max(s, lo) - lo:x}-{min(e, hi) - lo:x} {line.split()[1]}")
    return out


def main() -> None:
    g = libc.mmap(None, 64 * P, 0, 0x22, -1, 0)  # a PROT_NONE arena to place things in
    lo, hi = g + 8 * P, g + 56 * P
    libc.munmap(lo, hi - lo)  # a hole with PROT_NONE walls, so nothing else lands next to it
    res = {}
    a = libc.mmap(lo + 16 * P, 16 * P, 3, 0x22 | 0x100000, -1, 0)  # MAP_FIXED_NOREPLACE
    b = libc.mmap(lo, 16 * P, 3, 0x22 | 0x10, -1, 0)
    libc.mmap(lo + 32 * P, 8 * P, 3, 0x22 | 0x10, -1, 0)
    res["three adjacent anon mmaps"] = vmas_in(lo, hi)
    libc.mprotect(a + 4 * P, 4 * P, 1)
    res["mprotect RO in the middle"] = vmas_in(lo, hi)
    libc.mprotect(a + 4 * P, 4 * P, 3)
    res["mprotect back to RW"] = vmas_in(lo, hi)
    ctypes.memset(b, 1, 1)  # b gets an anon_vma
    libc.mprotect(b + 8 * P, 8 * P, 1)
    libc.mprotect(b + 8 * P, 8 * P, 3)
    res["mprotect back after a write"] = vmas_in(lo, hi)
    libc.madvise(a, 4 * P, 14)  # MADV_HUGEPAGE on part
    res["madvise HUGEPAGE on part"] = vmas_in(lo, hi)
    libc.munmap(a + 8 * P, 2 * P)
    res["munmap a hole"] = vmas_in(lo, hi)
    libc.mmap(lo + 44 * P, 4 * P, 3, 0x21 | 0x10, -1, 0)
    res["shared anon beside"] = vmas_in(lo, hi)
    print(json.dumps(res))


main()
